/**
 * SMTP errors name what they talked to (host:port) and keep the socket's own code, in the message
 * and in the log line; TLS that cannot be set up and unknown hosts are systemic. Real peers on
 * loopback: a plain-text smtp-server, a closed port, and a `.invalid` host (RFC 6761: never resolves).
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmailError, isEmailError } from '../../src/errors.js';
import { EmailService, type FailedEvent } from '../../src/service.js';
import { type SmtpTransportOptions, smtpTransport } from '../../src/transports/smtp.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi Jane' };

/** A port nothing listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('smtpTransport errors', () => {
  const peers: SmtpPeer[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  /** Sends once through a service with retries allowed; returns the error, the failed event and the log lines. */
  const fail = async (options: SmtpTransportOptions) => {
    const transport = smtpTransport({ connectionTimeoutMs: 5_000, ...options });
    closers.push(() => transport.close());
    const logs: Record<string, unknown>[] = [];
    const log = (o: object) => logs.push(o as Record<string, unknown>);
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
      logger: { info: log, warn: log, error: log, debug: log },
    });
    const failed: FailedEvent[] = [];
    mail.on('failed', (e) => failed.push(e));
    const error = (await mail.send(hello).catch((e: unknown) => e)) as EmailError;
    expect(isEmailError(error)).toBe(true);
    const line = logs.find((l) => l.event === 'email.failed')?.error as Record<string, unknown>;
    return { error, attempts: failed[0]?.attempts, line };
  };

  it('implicit TLS against a plain-text server is systemic (tls), not retried, and says which setting to change', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    peers.push(peer);
    const { error, attempts } = await fail({ host: peer.host, port: peer.port, tls: 'implicit' });
    expect([error.code, error.failure, attempts]).toEqual(['tls', 'systemic', 1]);
    expect(error.message).toContain(`127.0.0.1:${peer.port}`);
    expect(error.causeCode).toMatch(/^ERR_SSL_/);
    expect(error.message).toContain(error.causeCode);
    expect(error.message).toContain("tls: 'starttls'");
    expect(peer.messages).toEqual([]);
  });

  it('a server without STARTTLS points at tls: none (SMTP_TLS=none) for a local relay', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    peers.push(peer);
    const { error, attempts } = await fail({ host: peer.host, port: peer.port });
    expect([error.code, error.failure, attempts]).toEqual(['tls', 'systemic', 1]);
    expect(error.message).toContain(`127.0.0.1:${peer.port}`);
    expect(error.message).toContain('SMTP_TLS=none');
    expect(error.message).toContain("tls: 'none'");
  });

  it('a certificate that does not name the host connected to says so, and to connect by a name on it', async () => {
    // The right CA, a certificate issued for localhost only, and a connection to 127.0.0.1.
    const peer = await startSmtpPeer({ certificateNames: 'DNS:localhost' });
    peers.push(peer);
    const { error, attempts } = await fail({ host: '127.0.0.1', port: peer.port, ca: peer.cert });
    expect([error.code, error.failure, attempts]).toEqual(['tls', 'systemic', 1]);
    expect(error.causeCode).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toContain('the certificate does not name 127.0.0.1');
    expect(error.message).toContain('connect by a name on the certificate (DNS:localhost) as host');
    expect(error.message).not.toContain('pass it as ca');
    expect(peer.messages).toEqual([]);
  });

  it('a certificate nobody vouches for says to pass it as ca', async () => {
    const peer = await startSmtpPeer();
    peers.push(peer);
    const { error, attempts } = await fail({ host: peer.host, port: peer.port });
    expect([error.code, error.failure, attempts]).toEqual(['tls', 'systemic', 1]);
    expect(error.causeCode).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(error.message).toContain("to trust a private server's certificate, pass it as ca");
  });

  it('a closed port is transient (network) and names the address and ECONNREFUSED, in the log line too', async () => {
    const port = await closedPort();
    const { error, attempts, line } = await fail({ host: '127.0.0.1', port });
    expect([error.code, error.failure, attempts]).toEqual(['network', 'transient', 3]);
    expect([error.endpoint, error.causeCode]).toEqual([`127.0.0.1:${port}`, 'ECONNREFUSED']);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(line).toMatchObject({ endpoint: `127.0.0.1:${port}`, causeCode: 'ECONNREFUSED' });
    expect(line.message).toContain('ECONNREFUSED');
  });

  it('a host name that does not resolve is systemic (config), named with its port and ENOTFOUND', async () => {
    const { error, attempts, line } = await fail({ host: 'smtp.mailroom-test.invalid', port: 587 });
    expect([error.code, error.failure, attempts]).toEqual(['config', 'systemic', 1]);
    expect([error.endpoint, error.causeCode]).toEqual(['smtp.mailroom-test.invalid:587', 'ENOTFOUND']);
    expect(error.message).toContain('smtp.mailroom-test.invalid:587');
    expect(error.message).toContain('ENOTFOUND');
    expect(line).toMatchObject({ code: 'config', causeCode: 'ENOTFOUND' });
  });

  /** Sends `text` once through the peer; the error, or undefined when it was sent. */
  const sendText = async (peer: SmtpPeer, text: string, pool = true) => {
    const transport = smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert, pool });
    closers.push(() => transport.close());
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      retry: { maxAttempts: 1 },
    });
    return (await mail.send({ ...hello, text }).then(
      () => undefined,
      (e: unknown) => e,
    )) as EmailError | undefined;
  };

  // Pooled or a connection per message, nodemailer takes the envelope by different paths.
  it.each([
    ['pooled', true],
    ['unpooled', false],
  ])('declares SIZE= on MAIL FROM (RFC 1870), %s: the bytes that then arrive', async (_, pool) => {
    const peer = await startSmtpPeer({ size: 100_000 });
    peers.push(peer);
    expect(await sendText(peer, 'Hi Jane', pool)).toBeUndefined();
    expect(peer.declaredSizes).toEqual([peer.messages[0]!.raw.length]);
  });

  it.each([
    ['pooled', true],
    ['unpooled', false],
  ])(
    'a message over the SIZE the server named in EHLO is refused before MAIL FROM, naming both sizes, %s',
    async (_, pool) => {
      const peer = await startSmtpPeer({ size: 2_000 });
      peers.push(peer);
      const error = await sendText(peer, 'x'.repeat(5_000), pool);
      expect([error?.code, error?.failure, error?.possibleDuplicate]).toEqual([
        'rejected',
        'permanent',
        false,
      ]);
      expect(error?.message).toMatch(
        /; the message is \d+ bytes, over the 2000 bytes the server takes \(its SIZE\): nothing was sent$/,
      );
      expect(peer.transactions).toBe(0);
    },
  );

  it("a 552 after the data says the message's size", async () => {
    const peer = await startSmtpPeer({ size: 100_000 });
    peers.push(peer);
    peer.failNext({ reply: 552, at: 'data', message: '5.3.4 Message too big for system' });
    const error = await sendText(peer, 'Hi Jane');
    expect([error?.code, error?.status]).toEqual(['rejected', 552]);
    const bytes = Number(/; the message is (\d+) bytes$/.exec(error?.message ?? '')?.[1]);
    expect(bytes).toBe(peer.declaredSizes[0]);
  });

  it('a reply from the server names the server too', async () => {
    const peer = await startSmtpPeer();
    peers.push(peer);
    peer.rejectRecipient('jane@example.com', 550);
    const { error } = await fail({ host: peer.host, port: peer.port, ca: peer.cert });
    expect([error.code, error.status, error.endpoint]).toEqual(['rejected', 550, `127.0.0.1:${peer.port}`]);
    expect(error.message).toMatch(new RegExp(`^SMTP 550 at 127\\.0\\.0\\.1:${peer.port}: .*550 Recipient`));
    expect(error.refusals).toEqual([
      {
        address: 'jane@example.com',
        failure: 'permanent',
        status: 550,
        response: '550 Recipient jane@example.com refused',
      },
    ]);
  });
});
