/**
 * Runs one of the example apps with mail configured from the environment, and the preview at
 * http://localhost:3000/_mail/. With nothing set, mail goes to the sandbox folder
 * (.mailroom/outbox), which is the folder the preview lists: `npm run demo` fills it.
 *
 *   npx tsx examples/preview/server.ts            # Express
 *   npx tsx examples/preview/server.ts fastify
 */
import { configFromEnv, type EmailServiceOptions, isProduction } from 'mailroom-js';
import { createExpressApp } from './express.js';
import { createFastifyApp } from './fastify.js';

const framework = process.argv[2] ?? 'express';
const port = Number(process.env.PORT ?? 3000);
const baseUrl = `http://localhost:${port}`;

let mailOptions: EmailServiceOptions;
try {
  mailOptions = configFromEnv();
} catch (err) {
  // A malformed variable is reported by name, e.g. "MAILROOM_TRANSPORT: must be one of …".
  console.error(`server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const listening = (error?: Error) => {
  if (error) {
    // E.g. a port already in use: Express 5 passes it to this callback, and Fastify rejects with it.
    console.error(`server: ${error.message}`);
    process.exit(1);
  }
  console.log(`Listening on ${baseUrl} (${framework})`);
  console.log(
    isProduction()
      ? `NODE_ENV=${process.env.NODE_ENV}: production, so the mail preview is off.`
      : `Mail preview: ${baseUrl}/_mail/`,
  );
};

// On this machine only: anyone who can reach the preview can read the captured emails. The
// preview answers localhost; to open the app by another name, pass it, e.g.
// createExpressApp({ mailOptions, allowedHosts: ['myapp.test'] }).
const host = 'localhost';
if (framework === 'express') {
  createExpressApp({ mailOptions }).listen(port, host, listening);
} else if (framework === 'fastify') {
  await createFastifyApp({ mailOptions })
    .listen({ port, host })
    .then(() => listening(), listening);
} else {
  console.error(`server: unknown framework "${framework}" (express or fastify)`);
  process.exit(1);
}
