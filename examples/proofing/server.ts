/**
 * Runs the proofing desk: holds one of each built-in email, then serves the preview, where each
 * can be read and released through the SMTP server the environment configures.
 *
 *   MAILROOM_HOLD=true SMTP_HOST=smtp.acme.example SMTP_USER=… SMTP_PASSWORD=… \
 *     SMTP_FROM_EMAIL=no-reply@acme.example APP_NAME=Acme npx tsx examples/proofing/server.ts
 */
import { createServer } from 'node:http';
import { createDesk } from './desk.js';

const port = Number(process.env.PORT ?? 3025);
let desk: ReturnType<typeof createDesk>;
try {
  desk = createDesk();
} catch (err) {
  console.error(`server: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const to = process.env.PROOF_TO ?? 'jane@example.com';
await desk.mail.sendVerificationEmail({
  to,
  username: 'Jane',
  verificationUrl: 'https://acme.example/verify?t=1',
});
await desk.mail.sendWelcomeEmail({ to, username: 'Jane', actionUrl: 'https://acme.example/start' });

const held = (await desk.hold.list()).filter((email) => email.status === 'held').length;
createServer(desk.preview).listen(port, '127.0.0.1', () => {
  console.log(
    `Proofing desk: http://127.0.0.1:${port}/ (${held} held; release them there, or with mailroom release)`,
  );
});
