/**
 * Unit tests of our mapping to nodemailer, with nodemailer-mock standing in for nodemailer.
 * Delivery itself is tested against a real SMTP server in smtp.test.ts.
 */
import nodemailermock from 'nodemailer-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';

// nodemailer is required on first use through lazy-deps, so that is where the mock goes in.
const nodemailer = vi.hoisted(() => ({ createTransport: undefined as unknown as ReturnType<typeof vi.fn> }));
vi.mock('../../src/lazy-deps.js', async (importOriginal) => {
  const mock = (await import('nodemailer-mock')).default;
  nodemailer.createTransport = vi.fn(mock.createTransport);
  return { ...(await importOriginal<object>()), loadNodemailer: () => nodemailer };
});

const { isConfigError, isEmailError } = await import('../../src/errors.js');
const { createMessage } = await import('../../src/message.js');
const { smtpTransport, toNodemailerOptions } = await import('../../src/transports/smtp.js');

const message = createMessage({
  from: 'Acme <no-reply@acme.example>',
  to: 'jane@example.com',
  subject: 'Hi',
  text: 'Hello',
  attachments: [{ filename: 'a.txt', content: 'abc' }],
});

afterEach(() => {
  nodemailermock.mock.reset();
  vi.mocked(nodemailer.createTransport).mockClear();
});

describe('toNodemailerOptions', () => {
  it('defaults to a pool, STARTTLS required, certificates checked and timeouts in seconds', () => {
    const options = toNodemailerOptions({ host: 'smtp.acme.example', user: 'u', password: 'p' }) as Record<
      string,
      unknown
    >;
    expect(options).toMatchObject({
      pool: true,
      host: 'smtp.acme.example',
      port: 587,
      secure: false,
      requireTLS: true,
      ignoreTLS: false,
      auth: { user: 'u', pass: 'p' },
      tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      maxConnections: 5,
      maxMessages: 100,
      maxRequeues: 0,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  });

  it('uses implicit TLS on port 465 and maps pool, rate limit, CA and timeouts', () => {
    const options = toNodemailerOptions({
      host: 'smtp.acme.example',
      port: 465,
      ca: 'PEM',
      pool: { maxConnections: 2, maxMessages: 10, rateLimit: { messages: 5, perMs: 1000 } },
      connectionTimeoutMs: 1,
      greetingTimeoutMs: 2,
      socketTimeoutMs: 3,
    }) as Record<string, unknown>;
    expect(options).toMatchObject({
      secure: true,
      requireTLS: false,
      port: 465,
      tls: { ca: ['PEM'] },
      maxConnections: 2,
      maxMessages: 10,
      rateLimit: 5,
      rateDelta: 1000,
      connectionTimeout: 1,
      greetingTimeout: 2,
      socketTimeout: 3,
    });
    expect(toNodemailerOptions({ host: 'h.example', pool: false }).pool).toBe(false);
  });

  it('refuses a password in plain text to another machine, but allows a local relay', () => {
    const error = (() => {
      try {
        toNodemailerOptions({ host: 'smtp.acme.example', tls: 'none', user: 'u', password: 'secret' });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('tls');
    expect(String(error)).not.toContain('secret');
    expect(toNodemailerOptions({ host: '127.0.0.1', tls: 'none', user: 'u', password: 'p' }).ignoreTLS).toBe(
      true,
    );
    expect(toNodemailerOptions({ host: 'relay.internal.example', tls: 'none' }).ignoreTLS).toBe(true);
  });

  it('names the option at fault', () => {
    const option = (input: Parameters<typeof toNodemailerOptions>[0]) => {
      try {
        toNodemailerOptions(input);
      } catch (e) {
        return isConfigError(e) ? e.option : e;
      }
    };
    expect(option({ host: '' })).toBe('host');
    expect(option({ host: 'h.example', port: 70000 })).toBe('port');
    expect(option({ host: 'h.example', user: 'u' })).toBe('password');
    expect(option({ host: 'h.example', tls: 'maybe' as never })).toBe('tls');
  });
});

describe('smtpTransport host', () => {
  it.each([
    ['a URL', 'smtp://smtp.acme.example', 'not a URL'],
    ['a host with its port', 'smtp.acme.example:587', 'without a port'],
    ['an address with its port', '127.0.0.1:2525', 'without a port'],
    ['credentials in the host', 'apikey:SECRET@smtp.acme.example', 'without a user name or password'],
    ['credentials before an address', 'u:SECRET@127.0.0.1', 'without a user name or password'],
    ['a trailing space', 'smtp.acme.example ', 'without spaces, line breaks'],
    ['a line break', 'smtp.acme.example\r\nRCPT TO:<x@evil.example>', 'without spaces, line breaks'],
    ['a mistyped IPv4 address', '10.0.0.300', 'an IPv4 or an IPv6 address'],
    ['an empty label', 'smtp..acme.example', 'an IPv4 or an IPv6 address'],
  ])('refuses %s when built, naming host, never repeating the value', (_, host, says) => {
    const error = (() => {
      try {
        smtpTransport({ host, user: 'u', password: 'SECRET' });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('host');
    expect((error as Error).message).toContain(says);
    expect((error as Error).message).toContain('port, user, password');
    expect((error as Error).message).not.toContain('SECRET');
    expect((error as Error).message).not.toContain(host.trim());
    expect(vi.mocked(nodemailer.createTransport)).not.toHaveBeenCalled();
  });

  it.each([
    ['smtp.acme.example', 'smtp.acme.example', 'smtp.acme.example:587'],
    ['localhost', 'localhost', 'localhost:587'],
    ['mail_relay', 'mail_relay', 'mail_relay:587'],
    ['192.0.2.10', '192.0.2.10', '192.0.2.10:587'],
    ['2001:db8::25', '2001:db8::25', '[2001:db8::25]:587'],
    ['[2001:db8::25]', '2001:db8::25', '[2001:db8::25]:587'],
    ['smtp.bücher.example', 'smtp.xn--bcher-kva.example', 'smtp.xn--bcher-kva.example:587'],
  ])('accepts %s, connects to %s and describes it as %s', (host, connects, endpoint) => {
    expect(toNodemailerOptions({ host }).host).toBe(connects);
    expect(smtpTransport({ host }).describe?.()).toBe(`smtp ${endpoint} (STARTTLS required)`);
  });
});

describe('smtpTransport with nodemailer-mock', () => {
  it('hands nodemailer only the message we built and its envelope, Bcc in the envelope alone', async () => {
    const transport = smtpTransport({ host: 'smtp.acme.example', user: 'u', password: 'p' });
    const withBcc = createMessage({ ...message, bcc: 'audit@acme.example' });
    const result = await transport.send(withBcc, { attempt: 1 });
    expect(result.messageId).toBe(withBcc.messageId);
    const [sent] = nodemailermock.mock.getSentMail();
    // No content for nodemailer to interpret (so no attachment path or URL to fetch), access off.
    expect(sent).toMatchObject({ disableFileAccess: true, disableUrlAccess: true, headers: {} });
    for (const key of ['from', 'to', 'bcc', 'subject', 'text', 'html', 'attachments', 'messageId']) {
      expect(sent).not.toHaveProperty(key);
    }
    // size: what MAIL FROM declares as SIZE= (RFC 1870), the bytes handed over.
    expect(sent?.envelope).toEqual({
      from: 'no-reply@acme.example',
      to: ['jane@example.com', 'audit@acme.example'],
      size: (sent!.raw as Buffer).length,
    });
    const raw = String(sent?.raw);
    expect(raw).toContain(`\r\nMessage-ID: ${withBcc.messageId}\r\n`);
    expect(raw).toMatch(/^Subject: Hi\r$/m);
    expect(raw).not.toMatch(/^Bcc:/im);
    expect(vi.mocked(nodemailer.createTransport)).toHaveBeenCalledTimes(1);
    await transport.close?.();
  });

  it('maps a 535 reply to a systemic auth error without the password in it', async () => {
    const failure = Object.assign(new Error('Invalid login: 535 5.7.8 Authentication failed'), {
      code: 'EAUTH',
      responseCode: 535,
      response: '535 5.7.8 Authentication failed',
    });
    nodemailermock.mock.setShouldFailOnce();
    nodemailermock.mock.setFailResponse(failure);
    const transport = smtpTransport({ host: 'smtp.acme.example', user: 'u', password: 'hunter2' });
    const error = await transport.send(message, { attempt: 1 }).catch((e: unknown) => e);
    expect(isEmailError(error) && [error.code, error.failure, error.status]).toEqual([
      'auth',
      'systemic',
      535,
    ]);
    expect(JSON.stringify({ message: (error as Error).message })).not.toContain('hunter2');
  });

  it('says a certificate made out to other names does not name the host, however node words it', async () => {
    nodemailermock.mock.setShouldFailOnce();
    nodemailermock.mock.setFailResponse(
      Object.assign(
        new Error(
          "Hostname/IP does not match certificate's altnames: Host: smtp.acme.example. is not in the cert's altnames: DNS:mail.acme.example",
        ),
        { code: 'ESOCKET' },
      ),
    );
    const error = await smtpTransport({ host: 'smtp.acme.example' })
      .send(message, { attempt: 1 })
      .catch((e: unknown) => e);
    expect(isEmailError(error) && [error.code, error.failure]).toEqual(['tls', 'systemic']);
    expect((error as Error).message).toMatch(
      /; the certificate does not name smtp\.acme\.example, the host connected to: connect by a name on the certificate as host$/,
    );
  });

  it.each([
    [{ code: 'EENVELOPE', responseCode: 450 }, 'deferred', 'transient'],
    [
      { code: 'EENVELOPE', responseCode: 451, response: '451 4.7.1 rate limit exceeded' },
      'rate-limit',
      'transient',
    ],
    [{ code: 'EMESSAGE', responseCode: 550 }, 'rejected', 'permanent'],
    [{ code: 'EPROTOCOL', responseCode: 503 }, 'provider', 'transient'],
    [{ code: 'ETLS' }, 'tls', 'systemic'],
    [{ code: 'ESOCKET', message: 'self-signed certificate' }, 'tls', 'systemic'],
    // nodemailer keeps the socket's own code as originalCode.
    [
      { code: 'EDNS', originalCode: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND smtp.nowhere' },
      'config',
      'systemic',
    ],
    [{ code: 'EDNS', originalCode: 'EAI_AGAIN', message: 'getaddrinfo EAI_AGAIN' }, 'network', 'transient'],
    [{ code: 'ESOCKET', originalCode: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'tls', 'systemic'],
    [{ code: 'ESOCKET', originalCode: 'ERR_SSL_PACKET_LENGTH_TOO_LONG' }, 'tls', 'systemic'],
    [{ code: 'ESOCKET', library: 'SSL routines', reason: 'unknown protocol' }, 'tls', 'systemic'],
    [{ code: 'ESOCKET', originalCode: 'ECONNREFUSED' }, 'network', 'transient'],
    [{ code: 'ETIMEDOUT' }, 'timeout', 'transient'],
    [{ code: 'ECONNECTION' }, 'network', 'transient'],
  ])('maps nodemailer %o to %s (%s)', async (fields, code, failure) => {
    const { message: text = 'failed', ...rest } = fields as { message?: string };
    nodemailermock.mock.setShouldFailOnce();
    nodemailermock.mock.setFailResponse(Object.assign(new Error(text), rest));
    const error = await smtpTransport({ host: 'smtp.acme.example' })
      .send(message, { attempt: 1 })
      .catch((e: unknown) => e);
    expect(isEmailError(error) && [error.code, error.failure]).toEqual([code, failure]);
  });
});
