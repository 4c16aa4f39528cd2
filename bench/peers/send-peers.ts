/**
 * The servers of the send bench, in a process of their own so that their CPU time is not taken
 * from the client being measured. Started by bench/send.ts; lives in a subfolder because
 * bench/index.ts runs every .ts file of bench/ itself as a bench.
 *
 * Protocol, one line each way: prints `{"smtp":{"port":…},"mailgun":{"url":…}}` once listening.
 * Then answers each `take` line on stdin with what each server saw since the previous `take`
 * (messages accepted, connections opened, a digest of the last message), and forgets those
 * messages so that memory stays flat over the run. Exits when stdin closes.
 *
 * Usage: node --import tsx send-peers.ts <mailgun api key> <mailgun domain>
 */
import { createInterface } from 'node:readline';
import { copies, type MailgunReceived, startMailgunPeer } from '../../test/helpers/mailgun-peer.js';
import { startSmtpPeer } from '../../test/helpers/smtp-peer.js';

/** What one server saw between two `take`s. */
export interface PeerStats {
  messages: number;
  connections: number;
  /** Emails the messages make: a Mailgun request with recipient variables is one per `to` recipient. */
  recipients: number;
  /** The subject and size of the last message, so the bench can tell mail from an empty shell. */
  last: { subject: string; bytes: number } | undefined;
}
export type PeersStats = Record<'smtp' | 'mailgun', PeerStats>;
export interface PeersAddress {
  smtp: { host: string; port: number };
  mailgun: { url: string };
}

async function main(): Promise<void> {
  const [apiKey, domain] = process.argv.slice(2);
  if (!apiKey || !domain) throw new Error('usage: send-peers.ts <mailgun api key> <mailgun domain>');
  const smtp = await startSmtpPeer({ starttls: false });
  const mailgun = await startMailgunPeer({ apiKey, domains: [domain] });
  const seen = { smtp: 0, mailgun: 0 };

  const take = (): PeersStats => {
    const lastSmtp = smtp.messages.at(-1);
    const lastMailgun = mailgun.messages.at(-1);
    const stats: PeersStats = {
      smtp: {
        messages: smtp.messages.length,
        recipients: smtp.messages.length,
        connections: smtp.connections - seen.smtp,
        last: lastSmtp && {
          // Enough for the bench's plain ASCII subject; this is a sanity check, not a MIME parser.
          subject: /^Subject: (.*)$/im.exec(lastSmtp.raw.toString('latin1'))?.[1]?.trim() ?? '',
          bytes: lastSmtp.raw.length,
        },
      },
      mailgun: {
        messages: mailgun.messages.length,
        recipients: mailgun.messages.reduce((n, m) => n + copies(m).length, 0),
        connections: mailgun.connections - seen.mailgun,
        last: lastMailgun && mailgunDigest(lastMailgun),
      },
    };
    seen.smtp = smtp.connections;
    seen.mailgun = mailgun.connections;
    smtp.messages.length = 0;
    mailgun.messages.length = 0;
    mailgun.requests.length = 0; // a log line per POST, which grows as well
    return stats;
  };

  const address: PeersAddress = { smtp: { host: smtp.host, port: smtp.port }, mailgun: { url: mailgun.url } };
  process.stdout.write(`${JSON.stringify(address)}\n`);

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'take') process.stdout.write(`${JSON.stringify(take())}\n`);
  });
  lines.on('close', async () => {
    await Promise.all([smtp.close(), mailgun.close()]);
    process.exit(0);
  });
}

function mailgunDigest({ fields }: MailgunReceived): PeerStats['last'] {
  const text = fields.text?.[0] ?? '';
  const html = fields.html?.[0] ?? '';
  return { subject: fields.subject?.[0] ?? '', bytes: text.length + html.length };
}

await main();
