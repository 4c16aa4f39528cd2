/**
 * Runs the example app with mail configured from the environment: with nothing set, every email
 * lands in the sandbox folder (.mailroom/outbox) instead of being delivered.
 *
 *   npx tsx examples/express/server.ts
 */
import { configFromEnv, EmailService } from 'mailroom-js';
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const baseUrl = `http://localhost:${port}`;

let mail: EmailService;
try {
  mail = new EmailService(configFromEnv());
} catch (err) {
  // A malformed variable is reported by name, e.g. "MAILROOM_TRANSPORT: must be one of …".
  console.error(`server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

createApp({ mail, baseUrl }).listen(port, () => {
  console.log(`Listening on ${baseUrl} (mail goes through the ${mail.transport.name} transport)`);
  console.log(
    `Try: curl -X POST ${baseUrl}/signup -H 'content-type: application/json' -d '{"email":"jane@example.com","name":"Jane"}'`,
  );
});
