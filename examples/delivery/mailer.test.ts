/**
 * Drives the production mailer the way the app does, against a real SMTP server (STARTTLS with a
 * self-signed certificate, AUTH required) and a server that speaks Mailgun's HTTP API, both on
 * loopback. Only the environment points it at them: the code under test is what production runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmailError, type EmailService, isConfigError, isEmailError, type Logger } from 'mailroom-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type MailgunPeer, startMailgunPeer } from '../../test/helpers/mailgun-peer.js';
import { fromMime } from '../../test/helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../../test/helpers/smtp-peer.js';
import { createMailer, sendSignupEmail } from './mailer.js';

const API_KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const DOMAIN = 'mg.acme.example';
const jane = { id: 'u_1001', email: 'jane@example.com', name: 'Jane' };
const verifyLink = 'https://acme.example/verify?token=Zk3pQ9vT2xLm';
const link = { url: verifyLink, id: 'vt_1' };

let smtpPeer: SmtpPeer;
let mailgunPeer: MailgunPeer;
let dir: string;
let mail: EmailService | undefined;
let alerts: EmailError[];
let logs: { level: string; msg: string | undefined; fields: object }[];

beforeEach(async () => {
  smtpPeer = await startSmtpPeer({ users: { mailer: 's3cret-relay-pw' } });
  mailgunPeer = await startMailgunPeer({ apiKey: API_KEY, domains: [DOMAIN] });
  dir = await mkdtemp(join(tmpdir(), 'mailroom-delivery-'));
  alerts = [];
  logs = [];
});

afterEach(async () => {
  await mail?.close();
  mail = undefined;
  await Promise.all([smtpPeer.close(), mailgunPeer.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** The app's mailer, configured the way a deployment would be, with `overrides` on top. */
async function startMailer(overrides: Record<string, string> = {}): Promise<EmailService> {
  // The relay's certificate is self-signed: trusting it takes the CA file, as for a private relay.
  const caFile = join(dir, 'relay-ca.pem');
  await writeFile(caFile, smtpPeer.cert);
  const env = {
    MAILGUN_API_KEY: API_KEY,
    MAILGUN_DOMAIN: DOMAIN,
    MAILGUN_BASE_URL: mailgunPeer.url,
    MAILGUN_FROM_ADDRESS: 'Acme <no-reply@mg.acme.example>',
    SMTP_HOST: smtpPeer.host,
    SMTP_PORT: String(smtpPeer.port),
    SMTP_USER: 'mailer',
    SMTP_PASSWORD: 's3cret-relay-pw',
    SMTP_CA_FILE: caFile,
    ...overrides,
  };
  const record =
    (level: string) =>
    (fields: object, msg?: string): void => {
      logs.push({ level, msg, fields });
    };
  const logger: Logger = {
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
  mail = createMailer(env, { onAlert: (error) => alerts.push(error), logger });
  return mail;
}

const logged = (event: string) => logs.filter((line) => (line.fields as { event?: string }).event === event);

describe('the production mailer', () => {
  it('sends through Mailgun, with one Message-ID per idempotency key', async () => {
    const mail = await startMailer();
    await mail.verify(); // the start-up check: reaches the relay, STARTTLS against the CA file, logs in
    expect(smtpPeer.authAttempts).toBe(1);

    const first = await sendSignupEmail(mail, jane, link);
    // The same sign-up sent again (a redelivered job, a replayed request): the same Message-ID.
    const again = await sendSignupEmail(mail, jane, link);
    const otherUser = await sendSignupEmail(
      mail,
      { id: 'u_1002', email: 'joe@example.com', name: 'Joe' },
      { url: 'https://acme.example/verify?token=Qw8rTy5uIo1p', id: 'vt_2' },
    );
    // "Send me the link again": a new link, so a new key and a new Message-ID.
    const newLink = await sendSignupEmail(mail, jane, {
      url: 'https://acme.example/verify?token=Hn4cXw7bRt0s',
      id: 'vt_3',
    });

    expect([first.transport, again.transport, otherUser.transport, newLink.transport]).toEqual([
      'mailgun',
      'mailgun',
      'mailgun',
      'mailgun',
    ]);
    expect(mailgunPeer.messages).toHaveLength(4);
    expect(smtpPeer.transactions).toBe(0);
    const [sent, resent, other] = mailgunPeer.messages;
    expect(sent!.fields.from).toEqual(['Acme <no-reply@mg.acme.example>']);
    expect(sent!.fields.to).toEqual(['jane@example.com']);
    expect(sent!.fields.subject).toEqual(['Verify your email address for Acme']);
    expect(sent!.fields.text![0]).toContain(verifyLink);
    expect(sent!.fields.html![0]).toContain(`href="${verifyLink}"`);

    // A hash of `verify:u_1001:vt_1` at the sender's domain: stable, and the user id is not shown.
    expect(first.messageId).toMatch(/^<[0-9a-f]{32}@mg\.acme\.example>$/);
    expect(first.messageId).not.toContain('u_1001');
    expect(sent!.fields['h:Message-Id']).toEqual([first.messageId]);
    expect(resent!.fields['h:Message-Id']).toEqual([first.messageId]);
    expect(again.messageId).toBe(first.messageId);
    expect(other!.fields['h:Message-Id']).toEqual([otherUser.messageId]);
    expect(otherUser.messageId).not.toBe(first.messageId);
    expect(newLink.messageId).not.toBe(first.messageId);

    expect(alerts).toEqual([]);
    expect(logged('email.sent')).toHaveLength(4);
  });

  it('delivers by SMTP when Mailgun answers 503, without waiting for a retry', async () => {
    mailgunPeer.failNext({ status: 503 }, 2);
    const mail = await startMailer();

    const result = await sendSignupEmail(mail, jane, link);

    expect(result.transport).toBe('smtp');
    expect(result.attempts).toBe(1); // failover happened inside the first attempt
    expect(mailgunPeer.requests.map((r) => r.status)).toEqual([503]);
    expect(mailgunPeer.messages).toEqual([]);
    expect(smtpPeer.messages).toHaveLength(1);
    const received = smtpPeer.messages[0]!;
    expect(received.secure).toBe(true);
    expect(received.user).toBe('mailer');
    expect(received.envelope).toEqual({ mailFrom: 'no-reply@mg.acme.example', rcptTo: ['jane@example.com'] });
    const email = await fromMime(received.raw);
    expect(email.from).toBe('no-reply@mg.acme.example');
    expect(email.subject).toBe('Verify your email address for Acme');
    expect(email.text).toContain(verifyLink);
    // The same Message-ID Mailgun would have carried: the key decides it, not the transport.
    expect(email.messageId).toBe(result.messageId);
    expect(logged('email.failover')).toMatchObject([
      { level: 'warn', fields: { from: 'mailgun', to: 'smtp', code: 'provider', failure: 'transient' } },
    ]);
    expect(alerts).toEqual([]);

    // A transient failure does not bench Mailgun: the next email asks it first again.
    const joe = { id: 'u_1002', email: 'joe@example.com', name: 'Joe' };
    expect((await sendSignupEmail(mail, joe, link)).transport).toBe('smtp');
    expect((await sendSignupEmail(mail, joe, link)).transport).toBe('mailgun');
    expect(mailgunPeer.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(smtpPeer.messages).toHaveLength(2);
  });

  it('alerts once on a wrong Mailgun key, and keeps delivering by SMTP', async () => {
    const mail = await startMailer({ MAILGUN_API_KEY: 'key-revoked-last-tuesday' });

    const first = await sendSignupEmail(mail, jane, link);

    expect(first.transport).toBe('smtp');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ transport: 'mailgun', code: 'auth', status: 401, failure: 'systemic' });
    expect(mailgunPeer.requests.map((r) => r.status)).toEqual([401]);
    expect(smtpPeer.messages).toHaveLength(1);
    expect((await fromMime(smtpPeer.messages[0]!.raw)).text).toContain(verifyLink);

    // Mailgun is skipped while it cools down: no request, no second alert.
    const joe = { id: 'u_1002', email: 'joe@example.com', name: 'Joe' };
    expect((await sendSignupEmail(mail, joe, link)).transport).toBe('smtp');
    expect(alerts).toHaveLength(1);
    expect(mailgunPeer.requests).toHaveLength(1);
    expect(smtpPeer.messages.map((m) => m.envelope.rcptTo)).toEqual([
      ['jane@example.com'],
      ['joe@example.com'],
    ]);

    // Neither the key nor the relay's password reaches a log line or the alert.
    const written = JSON.stringify(logs) + alerts.map((a) => a.message).join('\n');
    expect(written).not.toContain('key-revoked-last-tuesday');
    expect(written).not.toContain('s3cret-relay-pw');
  });

  it('alerts for each transport, and rejects, when both are misconfigured', async () => {
    const mail = await startMailer({ MAILGUN_API_KEY: 'key-revoked-last-tuesday', SMTP_PASSWORD: 'wrong' });

    const error = await sendSignupEmail(mail, jane, link).catch((e: unknown) => e);

    expect(isEmailError(error) && error.failure).toBe('systemic');
    expect(alerts.map((a) => [a.transport, a.code])).toEqual([
      ['mailgun', 'auth'],
      ['smtp', 'auth'],
    ]);
    expect(mailgunPeer.messages).toEqual([]);
    expect(smtpPeer.messages).toEqual([]);
    expect(logged('email.failed')).toHaveLength(1);
  });

  it('refuses to start without a required variable, naming it', async () => {
    const error = await startMailer({ SMTP_HOST: '' }).catch((e: unknown) => e);

    expect(isConfigError(error) && error.option).toBe('SMTP_HOST');
  });
});
