/**
 * Sends every built-in email and shows where they went.
 *
 * With no configuration, mailroom uses the sandbox transport: every email becomes files in
 * `.mailroom/outbox` (or `MAILROOM_SANDBOX_DIR`) and nothing leaves this machine.
 *
 *   npx tsx examples/node-script/send-all.ts
 */
import { randomBytes } from 'node:crypto';
import { dirname, extname, relative } from 'node:path';
import { configFromEnv, EmailService, type SendResult, sandboxFiles } from 'mailroom-js';

try {
  await main();
} catch (err) {
  // One line, no stack trace: config mistakes name the variable (e.g. "SMTP_PORT: must be …").
  console.error(`send-all: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}

async function main(): Promise<void> {
  // A demo brand for when APP_NAME is unset. It goes in as a default *under* the real environment,
  // so anything you configured still wins, and the sender name follows the app name too (overriding
  // `appName` on the returned options would leave the From header saying "Mailroom").
  const mail = new EmailService(configFromEnv({ APP_NAME: 'Acme', ...process.env }));

  const to = 'jane@example.com';
  const username = 'Jane';
  const site = mail.app.url ?? 'https://acme.example';
  const token = () => randomBytes(24).toString('base64url');

  const sent: [string, SendResult][] = [
    [
      'Verification',
      await mail.sendVerificationEmail({ to, username, verificationUrl: `${site}/verify?token=${token()}` }),
    ],
    [
      'Password reset',
      await mail.sendPasswordResetEmail({
        to,
        username,
        resetUrl: `${site}/reset-password?token=${token()}`,
        expiresInMinutes: 30,
      }),
    ],
    ['Welcome', await mail.sendWelcomeEmail({ to, username, actionUrl: `${site}/dashboard` })],
    [
      'Security alert',
      await mail.sendSecurityAlert({
        to,
        username,
        event: 'sign-in',
        occurredAt: new Date(),
        timeZone: 'Europe/Berlin',
        device: 'Firefox on Windows',
        location: 'Berlin, Germany',
        secureAccountUrl: `${site}/account/security`,
      }),
    ],
    [
      'Product update',
      await mail.sendProductUpdate({
        to,
        username,
        headline: 'Shared workspaces are here',
        summary: 'Invite your team to a shared workspace and keep every project in one place.',
        actionUrl: `${site}/whats-new`,
      }),
    ],
    [
      'Reminder',
      await mail.sendReminder({
        to,
        username,
        task: 'Finish setting up your profile',
        remaining: [{ label: 'Profile photo', value: 'Not added yet' }],
        actionUrl: `${site}/settings/profile`,
      }),
    ],
    [
      'Order',
      await mail.sendOrderConfirmation({
        to,
        username,
        reference: 'A-1042',
        items: [
          { label: 'Walnut desk lamp', value: '$89.00' },
          { label: 'Delivery', value: '$5.00' },
        ],
        total: '$94.00',
        orderUrl: `${site}/orders/A-1042`,
      }),
    ],
    [
      'Maintenance',
      await mail.sendMaintenanceNotice({
        to,
        username,
        startsAt: new Date(Date.now() + 7 * 24 * 3600_000),
        endsAt: new Date(Date.now() + 7 * 24 * 3600_000 + 2 * 3600_000),
        timeZone: 'Europe/Berlin',
        affected: 'Sign-in and the dashboard may be unavailable for up to two hours.',
        statusUrl: `${site}/status`,
      }),
    ],
  ];

  const files = sent.map(([, result]) => sandboxFiles(result));
  const folder = files[0] && dirname(files[0].eml);
  console.log(
    folder
      ? `Sent ${sent.length} emails to ${to}. Nothing was delivered: the sandbox wrote them to ${show(folder)}/\n`
      : `Sent ${sent.length} emails to ${to} with the ${mail.transport.name} transport.\n`,
  );
  for (const [i, [label, result]] of sent.entries()) {
    const written = files[i];
    if (!written) {
      console.log(`  ${label.padEnd(16)}${result.messageId}`);
      continue;
    }
    // The files of one email share a name: show the HTML's path, and which others sit beside it.
    const others = [written.text, written.eml, written.json].flatMap((p) => (p ? [extname(p)] : []));
    console.log(`  ${label.padEnd(16)}${show(written.html ?? written.eml)}  (+ ${others.join(' ')})`);
  }
  if (folder) {
    console.log('\nOpen a .html file in a browser to see an email, or a .eml file in your mail client.');
    console.log('The .txt is the plain-text part; the .json sums up addresses, subject and template.');
  }
}

/** A path relative to where you ran the script, when it is inside it. */
function show(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' || rel.startsWith('..') ? path : rel;
}
