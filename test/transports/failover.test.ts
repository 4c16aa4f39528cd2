/** failoverTransport across a real SMTP server and a Mailgun-speaking server. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EmailError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { failoverTransport } from '../../src/transports/failover.js';
import { mailgunTransport } from '../../src/transports/mailgun.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { type MailgunPeer, startMailgunPeer } from '../helpers/mailgun-peer.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const KEY = 'key-failover-test';
let smtpPeer: SmtpPeer;
let mailgunPeer: MailgunPeer;
const closers: (() => Promise<void> | undefined)[] = [];

beforeEach(async () => {
  smtpPeer = await startSmtpPeer({ users: { mailer: 'pw' } });
  mailgunPeer = await startMailgunPeer({ apiKey: KEY, domains: ['mg.acme.example'] });
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await Promise.all([smtpPeer.close(), mailgunPeer.close()]);
});

const smtp = (password = 'pw') => {
  const t = smtpTransport({
    host: smtpPeer.host,
    port: smtpPeer.port,
    user: 'mailer',
    password,
    ca: smtpPeer.cert,
  });
  closers.push(() => t.close());
  return t;
};
const mailgun = () => mailgunTransport({ apiKey: KEY, domain: 'mg.acme.example', baseUrl: mailgunPeer.url });
const service = (transport: ReturnType<typeof failoverTransport>) =>
  new EmailService({
    transport,
    from: 'Acme <no-reply@acme.example>',
    retry: { maxAttempts: 2, baseDelayMs: 5 },
  });
const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi' };

describe('failoverTransport', () => {
  it('uses the primary while it works', async () => {
    const result = await service(failoverTransport([smtp(), mailgun()])).send(hello);
    expect(result.transport).toBe('smtp');
    expect([smtpPeer.messages.length, mailgunPeer.messages.length]).toEqual([1, 0]);
  });

  it('passes deferred recipients through, and their retry goes to them alone', async () => {
    smtpPeer.rejectRecipient('bob@example.net', 450, 1);
    const result = await service(failoverTransport([smtp(), mailgun()])).send({
      ...hello,
      to: ['jane@example.com', 'bob@example.net'],
    });
    expect(result).toMatchObject({ transport: 'smtp', accepted: ['jane@example.com', 'bob@example.net'] });
    expect(smtpPeer.messages.map((m) => m.envelope.rcptTo)).toEqual([
      ['jane@example.com'],
      ['bob@example.net'],
    ]);
    expect(mailgunPeer.messages).toEqual([]);
  });

  it('never sends a retry meant for deferred recipients through Mailgun, which would reach everyone again', async () => {
    smtpPeer.rejectRecipient('bob@example.net', 450, 1);
    const mail = service(failoverTransport([smtp(), mailgun()]));
    // The retry of bob alone meets a busy SMTP server, so failover reaches for Mailgun.
    mail.on('retrying', () => smtpPeer.failNext({ reply: 421, at: 'mail' }));
    const result = await mail.send({ ...hello, to: ['jane@example.com', 'bob@example.net'] });
    expect(result).toMatchObject({
      accepted: ['jane@example.com'],
      deferred: ['bob@example.net'],
      attempts: 2,
    });
    expect(mailgunPeer.requests).toEqual([]);
    expect(smtpPeer.messages.map((m) => m.envelope.rcptTo)).toEqual([['jane@example.com']]);
  });

  it('moves on after a transient failure and reports who delivered', async () => {
    smtpPeer.failNext({ reply: 421, at: 'mail' });
    const moves: string[] = [];
    const transport = failoverTransport([smtp(), mailgun()], {
      onFailover: (failed, error, next) => moves.push(`${failed.name}:${error.failure}->${next.name}`),
    });
    const result = await service(transport).send(hello);
    expect(result.transport).toBe('mailgun');
    expect(result.attempts).toBe(1);
    expect(moves).toEqual(['smtp:transient->mailgun']);
    expect([smtpPeer.messages.length, mailgunPeer.messages.length]).toEqual([0, 1]);
  });

  it('moves on after a systemic failure and skips that transport while it cools down', async () => {
    const transport = failoverTransport([smtp('wrong'), mailgun()], { cooldownMs: 60_000 });
    const mail = service(transport);
    const first = await mail.send(hello);
    expect(first.transport).toBe('mailgun');
    // Delivered, yet the result says a provider needs a person: alert on it.
    expect(first.failovers?.map((e) => [e.transport, e.code, e.failure])).toEqual([
      ['smtp', 'auth', 'systemic'],
    ]);
    const second = await mail.send(hello);
    expect([second.transport, second.failovers]).toEqual(['mailgun', undefined]);
    expect(smtpPeer.authAttempts).toBe(1);
    expect(mailgunPeer.messages).toHaveLength(2);
  });

  it('does not pass on a permanent refusal: another provider would refuse it too', async () => {
    smtpPeer.failNext({ reply: 550, at: 'data' });
    const error = (await service(failoverTransport([smtp(), mailgun()]))
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.transport, error.failure]).toEqual(['smtp', 'permanent']);
    expect(mailgunPeer.requests).toHaveLength(0);
  });

  it('does not pass on an ambiguous failure: the retry goes to the same transport', async () => {
    smtpPeer.failNext({ drop: 'after-data' });
    const result = await service(failoverTransport([smtp(), mailgun()])).send(hello);
    expect(result.transport).toBe('smtp');
    expect(result.attempts).toBe(2);
    expect(mailgunPeer.requests).toHaveLength(0);
    expect(smtpPeer.messages).toHaveLength(1);
  });

  it('the retry after an ambiguous failure goes first to the transport that may have delivered it, not back to the first', async () => {
    // Attempt 1: SMTP refuses for now (421), Mailgun takes the request and the answer is lost.
    smtpPeer.failNext({ reply: 421, at: 'mail' });
    mailgunPeer.failNext({ drop: 'after-body' });
    const result = await service(failoverTransport([smtp(), mailgun()])).send(hello);
    // Attempt 2 asks Mailgun again (its log can tell), not SMTP, which would deliver a second copy.
    expect([result.transport, result.attempts]).toEqual(['mailgun', 2]);
    expect(smtpPeer.transactions).toBe(1);
    expect(smtpPeer.messages).toHaveLength(0);
  });

  it('throws the last error when every transport fails, and loses nothing silently', async () => {
    smtpPeer.failNext({ reply: 421, at: 'mail' }, 2);
    mailgunPeer.failNext({ status: 503 }, 2);
    const mail = service(failoverTransport([smtp(), mailgun()]));
    const error = (await mail.send(hello).catch((e: unknown) => e)) as EmailError;
    expect([error.transport, error.status, error.retryable]).toEqual(['mailgun', 503, true]);
    expect(smtpPeer.transactions).toBe(2);
    expect(mailgunPeer.requests).toHaveLength(2);
    expect([smtpPeer.messages.length, mailgunPeer.messages.length]).toEqual([0, 0]);
  });

  it('refuses an empty list', () => {
    expect(() => failoverTransport([])).toThrow(TypeError);
    expect(failoverTransport([memoryTransport()]).name).toBe('failover');
  });
});
