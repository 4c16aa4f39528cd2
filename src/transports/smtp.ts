/**
 * SMTP delivery with nodemailer: pooled connections, TLS required unless plain text is asked for,
 * timeouts in seconds, optional DKIM. nodemailer's own hidden retries are off, so the service's
 * retry loop is the only one and every failure is classified once.
 */
import { isIP } from 'node:net';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { ConfigError, EmailError, type EmailErrorCode, isEmailError } from '../errors.js';
import type { EmailMessage } from '../message.js';
import { type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { type DkimOptions, dkimSigner } from './dkim.js';
import { buildMime, envelopeOf } from './nodemailer-mapping.js';

/** Options of {@link smtpTransport}. */
export interface SmtpTransportOptions {
  /** The server's host name. */
  host: string;
  /** The server's port. Default 465 with `tls: 'implicit'`, else 587. */
  port?: number;
  /** User name for AUTH (PLAIN or LOGIN, whichever the server offers). */
  user?: string;
  /** Password for AUTH. Never logged, never in an error. */
  password?: string;
  /**
   * `starttls`: plain connect, then an upgrade the server must offer (default, except on port 465);
   * `implicit`: TLS from the first byte (default on port 465);
   * `none`: plain text throughout, for a relay on the same machine. Refused with a password unless
   * the host is a loopback address.
   */
  tls?: 'starttls' | 'implicit' | 'none';
  /** Extra trusted certificates (PEM), e.g. a private relay's. */
  ca?: string | readonly string[];
  /** Check the server's certificate. Default true; turning it off invites a man in the middle. */
  rejectUnauthorized?: boolean;
  /** Our host name in EHLO. Default: the machine's host name. */
  name?: string;
  /**
   * Reuse connections. Default true: up to 5 connections, 100 messages each. `false` opens a
   * connection for every message.
   */
  pool?:
    | boolean
    | {
        /** Connections open at once. Default 5. */
        maxConnections?: number;
        /** Messages per connection before it is replaced. Default 100. */
        maxMessages?: number;
        /** At most `messages` every `perMs` milliseconds. Default: no limit. */
        rateLimit?: { messages: number; perMs: number };
      };
  /** Time to open the TCP connection (ms). Default 10 000. */
  connectionTimeoutMs?: number;
  /** Time for the server's greeting once connected (ms). Default 10 000. */
  greetingTimeoutMs?: number;
  /** Longest silence from the server during a session (ms). Default 30 000. */
  socketTimeoutMs?: number;
  /**
   * Sign every message with DKIM (rsa-sha256, relaxed/relaxed). The key is checked when the
   * transport is built (a `ConfigError` naming `dkim.privateKey` …); a message that cannot be
   * signed fails with a systemic `EmailError` and is never sent unsigned.
   */
  dkim?: DkimOptions;
}

/** An SMTP transport; `close()` waits for sends in flight, then closes the pool. */
export interface SmtpTransport extends Transport {
  readonly name: 'smtp';
  /** Connects and authenticates, without sending. Rejects with an `EmailError`. */
  verify(): Promise<void>;
  /** Lets sends in flight finish, then closes the pool. Later sends fail as `aborted`. */
  close(): Promise<void>;
}

// Carried on the mail options so the stream plugin can tell this send when its last byte left.
const TRACKER = 'mailroomTracker';
interface Tracker {
  handedOver: boolean;
}

/**
 * Sends through an SMTP server with nodemailer.
 *
 * @example
 * ```ts
 * const transport = smtpTransport({
 *   host: 'smtp.example.com',
 *   user: 'apikey',
 *   password: process.env.SMTP_PASSWORD,
 * });
 * ```
 */
export function smtpTransport(options: SmtpTransportOptions): SmtpTransport {
  const nodemailerOptions = toNodemailerOptions(options);
  const dkim = options.dkim === undefined ? undefined : dkimSigner(options.dkim);
  const transporter = nodemailer.createTransport(nodemailerOptions);
  transporter.use('stream', (mail, done) => {
    const tracker = (mail.data as Record<string, unknown>)[TRACKER] as Tracker | undefined;
    // The stream's end is the moment the last byte went to the server and only the final dot remained.
    if (tracker) {
      mail.message.processFunc((input) => {
        input.once('end', () => {
          tracker.handedOver = true;
        });
        return input;
      });
    }
    done();
  });
  // The bytes the sandbox would write, signed; nodemailer only carries them (see buildMime).
  const wire = async (message: EmailMessage) => {
    const source = await buildMime(message);
    return dkim ? dkim.sign(source) : source;
  };
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  return {
    name: 'smtp',
    async send(message, context) {
      throwIfAborted(context, 'smtp');
      if (closed)
        throw new EmailError('the SMTP transport is closed', { code: 'aborted', transport: 'smtp' });
      const tracker: Tracker = { handedOver: false };
      const sending = wire(message).then((raw) => {
        const mail = { raw, envelope: envelopeOf(message), signal: context.signal, [TRACKER]: tracker };
        return transporter.sendMail(mail as Mail.Options);
      });
      inflight.add(sending);
      try {
        const info = await sending;
        return {
          messageId: message.messageId,
          accepted: info.accepted.map(addressOf),
          rejected: info.rejected.map(addressOf),
          transport: 'smtp',
          response: info.response,
        } satisfies SendResult;
      } catch (error) {
        // A DKIM failure is already ours (systemic); the rest is nodemailer's to map.
        throw isEmailError(error) ? error : toEmailError(error, tracker.handedOver);
      } finally {
        inflight.delete(sending);
      }
    },
    async verify() {
      try {
        await transporter.verify();
      } catch (error) {
        throw toEmailError(error, false);
      }
    },
    async close() {
      closed = true;
      await Promise.allSettled(inflight);
      transporter.close();
    },
  };
}

/** Maps a nodemailer error to ours: the SMTP reply code first, then nodemailer's error code. */
function toEmailError(error: unknown, handedOver: boolean): EmailError {
  const err = (error ?? {}) as { code?: string; responseCode?: number; response?: unknown };
  const status = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const code = smtpCode(err.code, status, `${err.response ?? ''} ${(error as Error)?.message ?? ''}`);
  // The server's own words help most ("550 5.1.1 no such user"); they never carry our password.
  const reply =
    typeof err.response === 'string' ? `: ${err.response.replace(/[\r\n]+/g, ' ').slice(0, 200)}` : '';
  const message = `SMTP ${status ?? err.code ?? 'error'}: ${describe(code)}${reply}`;
  return new EmailError(message, {
    code,
    transport: 'smtp',
    ...(status === undefined ? {} : { status }),
    handedOver,
    cause: error,
  });
}

function smtpCode(
  nodemailerCode: string | undefined,
  status: number | undefined,
  text: string,
): EmailErrorCode {
  if (nodemailerCode === 'EABORT') return 'aborted';
  if (nodemailerCode === 'ETLS' || nodemailerCode === 'EREQUIRETLS') return 'tls';
  if (status === 530 || status === 534 || status === 535 || status === 538) return 'auth';
  if (status !== undefined && status >= 400 && status < 500) {
    return /rate limit|too many|throttl/i.test(text) ? 'rate-limit' : 'deferred';
  }
  switch (nodemailerCode) {
    case 'EAUTH':
    case 'ENOAUTH':
    case 'EOAUTH2':
      return 'auth';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EDNS':
      return /ENOTFOUND/.test(text) ? 'config' : 'network';
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EPROTOCOL':
      if (isCertificateError(text)) return 'tls';
      break;
    case 'ECONFIG':
      return 'config';
  }
  // 503 is a bad command sequence, not a verdict on the message (RFC 5321; nodemailer agrees).
  if (status === 503) return 'provider';
  if (status !== undefined && status >= 500) return 'rejected';
  switch (nodemailerCode) {
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EPROTOCOL':
      return 'network';
    case 'EENVELOPE':
    case 'EMESSAGE':
    case 'EMAXRECIPIENTS':
      return 'rejected';
    default:
      return 'provider';
  }
}

function isCertificateError(text: string): boolean {
  return /certificate|self[- ]signed|CERT_|altnames|unable to verify/i.test(text);
}

function describe(code: EmailErrorCode): string {
  switch (code) {
    case 'auth':
      return 'the server refused our credentials';
    case 'tls':
      return 'TLS could not be set up with the server';
    case 'deferred':
      return 'the server asked us to try again later';
    case 'rate-limit':
      return 'the server asked us to slow down';
    case 'rejected':
      return 'the server refused the message';
    case 'timeout':
      return 'the server did not answer in time';
    case 'network':
      return 'the connection failed';
    case 'config':
      return 'the server could not be found';
    case 'aborted':
      return 'the send was aborted';
    default:
      return 'the server failed';
  }
}

function addressOf(entry: string | Mail.Address): string {
  return typeof entry === 'string' ? entry : (entry.address ?? '');
}

/** nodemailer's transport options for ours. Internal; exported for the mapping's unit test. */
export function toNodemailerOptions(options: SmtpTransportOptions): SMTPPool.Options {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('smtpTransport: options are required');
  const { host, user, password } = options;
  if (typeof host !== 'string' || host.trim() === '')
    throw new ConfigError('host', 'an SMTP host is required');
  const tls = options.tls ?? (options.port === 465 ? 'implicit' : 'starttls');
  if (!['starttls', 'implicit', 'none'].includes(tls)) {
    throw new ConfigError('tls', 'must be starttls, implicit or none');
  }
  const port = options.port ?? (tls === 'implicit' ? 465 : 587);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('port', 'must be 1–65535');
  if ((user === undefined) !== (password === undefined)) {
    throw new ConfigError(user === undefined ? 'user' : 'password', 'user and password go together');
  }
  if (tls === 'none' && password !== undefined && !isLoopback(host)) {
    throw new ConfigError(
      'tls',
      'a password is never sent in plain text to another machine; use starttls or implicit',
    );
  }
  const pool = options.pool ?? true;
  const poolOptions = typeof pool === 'object' ? pool : {};
  const rate = poolOptions.rateLimit;
  const ca =
    options.ca === undefined ? undefined : typeof options.ca === 'string' ? [options.ca] : [...options.ca];
  return {
    pool: pool !== false,
    host,
    port,
    secure: tls === 'implicit',
    requireTLS: tls === 'starttls',
    ignoreTLS: tls === 'none',
    ...(options.name ? { name: options.name } : {}),
    ...(user !== undefined ? { auth: { user, pass: password as string } } : {}),
    tls: {
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      minVersion: 'TLSv1.2',
      ...(ca ? { ca } : {}),
    },
    maxConnections: poolOptions.maxConnections ?? 5,
    maxMessages: poolOptions.maxMessages ?? 100,
    ...(rate ? { rateLimit: rate.messages, rateDelta: rate.perMs } : {}),
    // The service's retry loop is the only one: a message nodemailer requeued itself would be
    // sent again without anyone knowing it might be a duplicate.
    maxRequeues: 0,
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    greetingTimeout: options.greetingTimeoutMs ?? 10_000,
    socketTimeout: options.socketTimeoutMs ?? 30_000,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    debug: false,
  } as SMTPPool.Options;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
