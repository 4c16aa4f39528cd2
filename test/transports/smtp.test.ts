/** smtpTransport against a real SMTP server (smtp-server) on loopback, with STARTTLS and AUTH. */
import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmailError, isEmailError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { type SmtpTransportOptions, smtpTransport } from '../../src/transports/smtp.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, type SmtpPeerOptions, startSmtpPeer } from '../helpers/smtp-peer.js';
import { type Fault, transportContract } from './contract.js';

const USER = 'mailer';
const PASSWORD = 'correct horse battery staple';

const clientFor = (peer: SmtpPeer, extra: Partial<SmtpTransportOptions> = {}) =>
  smtpTransport({
    host: peer.host,
    port: peer.port,
    user: USER,
    password: PASSWORD,
    ca: peer.cert,
    ...extra,
  });

const faults: Record<Fault, Parameters<SmtpPeer['failNext']>[0]> = {
  transient: { reply: 421, at: 'mail', message: 'Service not available, try later' },
  permanent: { reply: 550, at: 'data', message: 'Message refused' },
  drop: { drop: 'after-data' },
  slow: { delay: 2000, at: 'mail' },
};

transportContract('smtp', async () => {
  const peer = await startSmtpPeer({ users: { [USER]: PASSWORD } });
  return {
    transport: clientFor(peer),
    received: () => Promise.all(peer.messages.map((m) => fromMime(m.raw))),
    faults: {
      inject: (fault, times) => peer.failNext(faults[fault], times),
      attempts: () => peer.transactions,
      badCredentials: () => clientFor(peer, { password: 'wrong' }),
      impatient: (ms) => clientFor(peer, { socketTimeoutMs: ms }),
      deferRecipient: (address, times) => peer.rejectRecipient(address, 450, times),
    },
    close: () => peer.close(),
  };
});

describe('smtpTransport', () => {
  const peers: SmtpPeer[] = [];
  const closers: (() => Promise<void> | undefined)[] = [];
  const start = async (options: SmtpPeerOptions = { users: { [USER]: PASSWORD } }) => {
    const peer = await startSmtpPeer(options);
    peers.push(peer);
    return peer;
  };
  const client = (peer: SmtpPeer, extra: Partial<SmtpTransportOptions> = {}) => {
    const transport = clientFor(peer, extra);
    closers.push(() => transport.close());
    return transport;
  };
  const service = (transport: ReturnType<typeof smtpTransport>) =>
    new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    });
  const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi Jane', html: '<p>Hi Jane</p>' };
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  it('upgrades with STARTTLS and authenticates before sending', async () => {
    const peer = await start();
    await service(client(peer)).send(hello);
    expect(peer.messages[0]).toMatchObject({ secure: true, user: USER });
  });

  it('speaks implicit TLS (port 465 style)', async () => {
    const peer = await start({ secure: true, users: { [USER]: PASSWORD } });
    await service(client(peer, { tls: 'implicit' })).send(hello);
    expect(peer.messages[0]?.secure).toBe(true);
  });

  it('refuses to send in plain text when the server offers no STARTTLS: systemic, nothing sent', async () => {
    const peer = await start({ starttls: false, users: { [USER]: PASSWORD } });
    const error = (await service(client(peer))
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure]).toEqual(['tls', 'systemic']);
    expect(peer.authAttempts).toBe(0);
    expect(peer.messages).toEqual([]);
  });

  it('refuses a certificate it cannot trust: systemic, not retried', async () => {
    const peer = await start();
    const untrusting = smtpTransport({ host: peer.host, port: peer.port, user: USER, password: PASSWORD });
    closers.push(() => untrusting.close());
    const mail = service(untrusting);
    let attempts = 0;
    mail.on('failed', (e) => {
      attempts = e.attempts;
    });
    const error = (await mail.send(hello).catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure]).toEqual(['tls', 'systemic']);
    expect(error.message).toContain(`127.0.0.1:${peer.port}`);
    expect(error.message).toContain('pass it as ca');
    expect(error.message).not.toContain('SMTP_TLS=none');
    expect(attempts).toBe(1);
    expect(peer.messages).toEqual([]);
  });

  it('sends plain text only when told to (a local relay)', async () => {
    const peer = await start({ starttls: false });
    await service(client(peer, { tls: 'none', user: undefined, password: undefined } as never)).send(hello);
    expect(peer.messages[0]?.secure).toBe(false);
  });

  it('retries a 450 at RCPT, then delivers', async () => {
    const peer = await start();
    peer.failNext({ reply: 450, at: 'rcpt', message: 'Mailbox busy' });
    const result = await service(client(peer)).send(hello);
    expect(result.attempts).toBe(2);
    expect(peer.transactions).toBe(2);
    expect(peer.messages).toHaveLength(1);
  });

  it('reports recipients refused while others were accepted, without throwing', async () => {
    const peer = await start();
    peer.rejectRecipient('gone@example.com', 550);
    const result = await service(client(peer)).send({
      ...hello,
      to: ['jane@example.com', 'gone@example.com'],
    });
    expect(result.accepted).toEqual(['jane@example.com']);
    expect(result.rejected).toEqual(['gone@example.com']);
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['jane@example.com']);
  });

  it('fails as permanent when every recipient is refused', async () => {
    const peer = await start();
    peer.rejectRecipient('jane@example.com', 550);
    const error = (await service(client(peer))
      .send(hello)
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.status]).toEqual(['rejected', 'permanent', 550]);
    expect(peer.transactions).toBe(1);
  });

  it('retries a connection dropped in the middle of DATA', async () => {
    const peer = await start();
    peer.failNext({ drop: 'data' });
    const result = await service(client(peer)).send(hello);
    expect(result.attempts).toBe(2);
    expect(peer.messages).toHaveLength(1);
  });

  it.each([
    ['mail', 'before the message went out: transient', 'transient', false],
    ['data', 'after the final dot: ambiguous, a possible duplicate', 'ambiguous', true],
  ] as const)('a stall at %s is timed out and retried; %s', async (at, _title, failure, duplicate) => {
    const peer = await start();
    peer.failNext({ delay: 2000, at });
    const mail = service(client(peer, { socketTimeoutMs: 300 }));
    const retried: EmailError[] = [];
    mail.on('retrying', (e) => retried.push(e.error));
    await mail.send(hello);
    expect(retried.map((e) => [e.code, e.failure, e.possibleDuplicate])).toEqual([
      ['timeout', failure, duplicate],
    ]);
    expect(peer.messages).toHaveLength(1);
  });

  it('pools connections: 20 messages over at most 2 connections', async () => {
    const peer = await start();
    const mail = service(client(peer, { pool: { maxConnections: 2 } }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => mail.send({ ...hello, subject: `n${i}` })));
    expect(peer.messages).toHaveLength(20);
    expect(peer.connections).toBeLessThanOrEqual(2);
  });

  it('close() lets sends in flight finish', async () => {
    const peer = await start();
    const transport = clientFor(peer);
    const sending = service(transport).send(hello);
    await transport.close();
    await expect(sending).resolves.toMatchObject({ transport: 'smtp' });
    expect(peer.messages).toHaveLength(1);
    const late = await transport
      .send(createMessage({ ...hello, from: 'a@acme.example' }), { attempt: 1 })
      .catch((e) => e);
    expect(isEmailError(late) && late.code).toBe('aborted');
  });

  it('stops a send when its signal aborts', async () => {
    const peer = await start();
    peer.failNext({ delay: 1000, at: 'mail' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = (await service(client(peer))
      .send({ ...hello, signal: controller.signal })
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.retryable]).toEqual(['aborted', false]);
    expect(peer.messages).toEqual([]);
  });

  it('verify() checks connection and credentials without the password in the error', async () => {
    const peer = await start();
    await expect(client(peer).verify()).resolves.toBeUndefined();
    const error = (await client(peer, { password: 'hunter2-wrong' })
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure]).toEqual(['auth', 'systemic']);
    expect(`${error.message} ${error.stack}`).not.toContain('hunter2-wrong');
  });

  it('writes Message-ID, Date and multipart/alternative with text before HTML', async () => {
    const peer = await start();
    const result = await service(client(peer)).send(hello);
    const raw = peer.messages[0]?.raw.toString('utf8') ?? '';
    expect(raw).toMatch(
      new RegExp(`^Message-ID: ${result.messageId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?$`, 'm'),
    );
    expect(raw).toMatch(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r?$/m);
    expect(raw).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(raw.indexOf('Content-Type: text/plain')).toBeLessThan(raw.indexOf('Content-Type: text/html'));
  });

  it('encodes German, Chinese, Arabic and emoji in names and subjects as RFC 2047 words', async () => {
    const peer = await start();
    const subject = 'Grüße · 你好 · مرحبا · 🎉';
    await service(client(peer)).send({
      ...hello,
      from: { name: 'Jürgen 王 أحمد 🎉', address: 'no-reply@acme.example' },
      subject,
    });
    const raw = peer.messages[0]?.raw.toString('utf8') ?? '';
    const headers = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(/^[\x00-\x7f]*$/.test(headers)).toBe(true);
    expect(headers).toMatch(/^Subject: =\?UTF-8\?[BQ]\?/m);
    const parsed = await fromMime(raw);
    expect(parsed.subject).toBe(subject);
    expect(parsed.fromName).toBe('Jürgen 王 أحمد 🎉');
  });

  it('signs with DKIM, and an independent verifier passes the signature', async () => {
    const peer = await start();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const transport = client(peer, {
      dkim: {
        domainName: 'acme.example',
        keySelector: 'mail2026',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    await service(transport).send(hello);
    const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const lookups: string[] = [];
    const result = await dkimVerify(peer.messages[0]!.raw, {
      resolver: async (name: string, type: string) => {
        lookups.push(`${type} ${name}`);
        if (type === 'TXT' && name === 'mail2026._domainkey.acme.example')
          return [[`v=DKIM1; k=rsa; p=${p}`]];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    } as never);
    expect(lookups).toContain('TXT mail2026._domainkey.acme.example');
    expect(result.results.map((r) => [r.signingDomain, r.status.result])).toEqual([['acme.example', 'pass']]);
  });
});
