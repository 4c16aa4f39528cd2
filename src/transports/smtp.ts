import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { ConfigError, connectionFailure, EmailError, type EmailErrorCode, isEmailError } from '../errors.js';
import { loadNodemailer } from '../lazy-deps.js';
import { oneLine } from '../log.js';
import { isLoopback } from '../loopback.js';
import { deliveryRecipients, type EmailMessage } from '../message.js';
import { type RecipientRefusal, type SendResult, type Transport, throwIfAborted } from '../transport.js';
import { type DkimOptions, dkimSigner } from './dkim.js';
import { wireBytes } from './nodemailer-mapping.js';

/** Options of {@link smtpTransport}. */
export interface SmtpTransportOptions {
  /**
   * The server: a host name (`smtp.example.com`), an IPv4 address or an IPv6 address, bare (`::1`)
   * or in brackets (`[::1]`). Nothing else: no scheme, port or credentials (those go in `port`,
   * `user` and `password`); anything else is a `ConfigError` naming `host` that never repeats the value.
   */
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
  /** The message's size in bytes, as sent (DKIM signature included). */
  bytes?: number;
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
  const transporter = loadNodemailer().createTransport(nodemailerOptions);
  const server: Server = {
    host: nodemailerOptions.host ?? '',
    endpoint: `${isIP(nodemailerOptions.host ?? '') === 6 ? `[${nodemailerOptions.host}]` : nodemailerOptions.host}:${nodemailerOptions.port}`,
    implicitTls: nodemailerOptions.secure === true,
  };
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
  const wire = (message: EmailMessage) => wireBytes(message, dkim);
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  return {
    name: 'smtp',
    narrowsRecipients: true,
    ...(dkim === undefined ? {} : { dkim: dkim.identity }),
    describe: () =>
      `smtp ${server.endpoint} (${nodemailerOptions.secure ? 'implicit TLS' : nodemailerOptions.ignoreTLS ? 'plain text' : 'STARTTLS required'}${dkim ? ', DKIM-signed' : ''})`,
    async send(message, context) {
      throwIfAborted(context, 'smtp');
      if (closed)
        throw new EmailError('the SMTP transport is closed', { code: 'aborted', transport: 'smtp' });
      const tracker: Tracker = { handedOver: false };
      // RCPT TO: every recipient, or on a retry of deferred ones only those; headers stay as they were.
      const envelope = { from: message.from.address, to: [...deliveryRecipients(message)] };
      const sending = wire(message).then((raw) => {
        tracker.bytes = raw.length;
        // SIZE= on MAIL FROM (RFC 1870 §6): a server that takes less refuses before the data, and
        // nodemailer refuses at once what is over the SIZE the server's EHLO named.
        const mail = {
          raw,
          envelope: { ...envelope, size: raw.length },
          signal: context.signal,
          [TRACKER]: tracker,
        };
        return transporter.sendMail(mail as Mail.Options);
      });
      inflight.add(sending);
      try {
        return toResult(message, await sending);
      } catch (error) {
        // A DKIM failure is already ours (systemic); the rest is nodemailer's to map.
        throw isEmailError(error) ? error : toEmailError(error, tracker, server);
      } finally {
        inflight.delete(sending);
      }
    },
    async verify() {
      try {
        await transporter.verify();
      } catch (error) {
        throw toEmailError(error, { handedOver: false }, server);
      }
    },
    async close() {
      closed = true;
      await Promise.allSettled(inflight);
      transporter.close();
    },
  };
}

/** What an SMTP transport talks to, for its errors. */
interface Server {
  /** The host name or address connected to. */
  host: string;
  /** `host:port`. */
  endpoint: string;
  implicitTls: boolean;
}

/** nodemailer's answer to one send: who was accepted, who was refused and with which reply. */
function toResult(message: EmailMessage, info: SMTPPool.SentMessageInfo): SendResult {
  const rejectedErrors = (info as { rejectedErrors?: unknown }).rejectedErrors;
  const refusals = Array.isArray(rejectedErrors) ? rejectedErrors.map(toRefusal) : [];
  const deferred = refusals.filter((r) => r.failure === 'transient').map((r) => r.address);
  const later = new Set(deferred);
  return {
    messageId: message.messageId,
    accepted: info.accepted.map(addressOf),
    rejected: info.rejected.map(addressOf).filter((address) => !later.has(address)),
    ...(deferred.length ? { deferred } : {}),
    ...(refusals.length ? { refusals } : {}),
    transport: 'smtp',
    response: info.response,
  };
}

/** One recipient's refusal at RCPT TO, as nodemailer reports it (`recipient`, `responseCode`, `response`). */
function toRefusal(error: unknown): RecipientRefusal {
  const { recipient, responseCode, response } = (error ?? {}) as {
    recipient?: unknown;
    responseCode?: unknown;
    response?: unknown;
  };
  const status = typeof responseCode === 'number' ? responseCode : undefined;
  return {
    address: typeof recipient === 'string' ? recipient : '',
    // Without a reply code nothing says it may pass later: counted as refused for good.
    failure: status !== undefined && status < 500 ? 'transient' : 'permanent',
    ...(status === undefined ? {} : { status }),
    ...(typeof response === 'string' ? { response: oneLine(response, 200) } : {}),
  };
}

/** The fields of a nodemailer error this file reads. */
interface NodemailerError {
  code?: string;
  responseCode?: number;
  response?: unknown;
  rejectedErrors?: unknown;
}

/** Maps a nodemailer error to ours: the SMTP reply code first, then nodemailer's error code. */
function toEmailError(error: unknown, { handedOver, bytes }: Tracker, server: Server): EmailError {
  const err = (error ?? {}) as NodemailerError;
  const status = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const connection = connectionFailure(error);
  const text = `${err.response ?? ''} ${(error as Error)?.message ?? ''}`;
  const refusals = Array.isArray(err.rejectedErrors) ? err.rejectedErrors.map(toRefusal) : undefined;
  const code = smtpCode(err.code, status, text, connection?.code, refusals !== undefined);
  const causeCode = connection?.causeCode;
  // The server's own words help most ("550 5.1.1 no such user"); they never carry our password.
  const reply = typeof err.response === 'string' ? `: ${oneLine(err.response, 200)}` : '';
  const message =
    `SMTP ${status ?? err.code ?? 'error'} at ${server.endpoint}: ${describe(code)}` +
    `${causeCode ? ` (${causeCode})` : ''}${reply}${hint(code, err, server, text, causeCode)}${sizeHint(err, text, bytes)}`;
  return new EmailError(message, {
    code,
    transport: 'smtp',
    ...(status === undefined ? {} : { status }),
    handedOver,
    endpoint: server.endpoint,
    ...(causeCode ? { causeCode } : {}),
    ...(refusals?.length ? { refusals } : {}),
    cause: error,
  });
}

/**
 * The sizes, when the server refused the message for its size: nodemailer before sending, from the
 * SIZE the server's EHLO named (RFC 1870 §4), or the server with 552 (RFC 1870 §6; RFC 3463's
 * X.3.4, "message too big for system").
 */
function sizeHint(error: NodemailerError, text: string, bytes: number | undefined): string {
  if (bytes === undefined) return '';
  const limit = /Message size larger than allowed (\d+)/.exec(text)?.[1];
  if (error.code === 'EMESSAGE' && limit !== undefined)
    return `; the message is ${bytes} bytes, over the ${limit} bytes the server takes (its SIZE): nothing was sent`;
  if (error.responseCode === 552 || /\b5\.3\.4\b/.test(text)) return `; the message is ${bytes} bytes`;
  return '';
}

/** The setting to look at when TLS cannot be set up: usually a mode the server does not speak. */
function hint(
  code: EmailErrorCode,
  error: NodemailerError,
  server: Server,
  text: string,
  causeCode: string | undefined,
): string {
  if (code !== 'tls') return '';
  // The certificate is trusted but made out to other names: passing it as ca again would not help.
  if (causeCode === 'ERR_TLS_CERT_ALTNAME_INVALID' || /does not match certificate's altnames/i.test(text)) {
    const names = certificateNames(error);
    return `; the certificate does not name ${server.host}, the host connected to: connect by a name on the certificate${names ? ` (${names})` : ''} as host`;
  }
  if (isCertificateError(text)) return "; to trust a private server's certificate, pass it as ca";
  if (server.implicitTls) {
    return "; if this server speaks plain text first (STARTTLS, port 587 or 25), set tls: 'starttls' (SMTP_TLS=starttls)";
  }
  // The server answered STARTTLS with an error: it does not offer it.
  if ((error.code === 'ETLS' && error.responseCode !== undefined) || error.code === 'EREQUIRETLS') {
    return "; the server offers no STARTTLS: for a relay on this machine that speaks only plain text, set tls: 'none' (SMTP_TLS=none)";
  }
  return '';
}

function smtpCode(
  nodemailerCode: string | undefined,
  status: number | undefined,
  text: string,
  connection: EmailErrorCode | undefined,
  recipients: boolean,
): EmailErrorCode {
  if (nodemailerCode === 'EABORT') return 'aborted';
  if (nodemailerCode === 'ETLS' || nodemailerCode === 'EREQUIRETLS') return 'tls';
  if (status === 530 || status === 534 || status === 535 || status === 538) return 'auth';
  if (status !== undefined && status >= 400 && status < 500) {
    // Refused at RCPT TO ("452 4.5.3 too many recipients" included): those recipients are deferred.
    if (recipients) return 'deferred';
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
    case 'ECONNECTION':
    case 'ESOCKET':
    case 'EPROTOCOL':
      // The socket's own code decides (see connectionFailure): an unknown host is `config`, any
      // TLS failure `tls`, whatever OpenSSL calls it.
      if (isCertificateError(text)) return 'tls';
      if (connection && connection !== 'network') return connection;
      break;
    case 'ECONFIG':
      return 'config';
  }
  // 503 is a bad command sequence, not a verdict on the message (RFC 5321; nodemailer agrees).
  if (status === 503) return 'provider';
  if (status !== undefined && status >= 500) return 'rejected';
  switch (nodemailerCode) {
    case 'EDNS':
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

/**
 * The names on the server's certificate (`DNS:localhost, IP Address:10.0.0.5`), from the error
 * node:tls raises when none matches the host (it carries the peer certificate); one line, short.
 */
function certificateNames(error: unknown): string | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const names = (e as { cert?: { subjectaltname?: unknown } }).cert?.subjectaltname;
    if (typeof names === 'string' && names !== '') return oneLine(names.replace(/\p{Cc}/gu, ' '), 200);
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
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

/** A server reply as one line of at most 200 characters. */

function addressOf(entry: string | Mail.Address): string {
  return typeof entry === 'string' ? entry : (entry.address ?? '');
}

/** nodemailer's transport options for ours. Internal; exported for the mapping's unit test. */
export function toNodemailerOptions(options: SmtpTransportOptions): SMTPPool.Options {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('smtpTransport: options are required');
  const { user, password } = options;
  const host = checkHost(options.host);
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

const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/**
 * The host as nodemailer connects to it: a host name, an IPv4 address, or an IPv6 address without
 * its brackets. The error never repeats the value: a mistaken `user:password@host` holds a secret.
 */
function checkHost(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError('host', 'an SMTP host is required');
  }
  const bracketed = /^\[(.*)\]$/.exec(value)?.[1];
  if (bracketed !== undefined && isIP(bracketed) === 6) return bracketed;
  if (isIP(value) !== 0) return value;
  // An international name connects by its ASCII form (punycode); '' when it is not a name at all.
  // (Spaces and controls first: the URL rules would quietly drop a line break from a name.)
  const ascii = /[\s\p{Cc}]/u.test(value) ? '' : /^[\x21-\x7e]*$/.test(value) ? value : domainToASCII(value);
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  const labels = name.split('.');
  // A name ending in digits only is a mistyped IPv4 address (`10.0.0.300`), never a host name.
  const numeric = /^\d+$/.test(labels.at(-1) ?? '');
  if (name.length <= 253 && labels.every((label) => HOST_LABEL.test(label)) && !numeric) return ascii;
  throw new ConfigError('host', `must be a host name, an IPv4 or an IPv6 address only${hostProblem(value)}`);
}

/** What a malformed host holds that belongs elsewhere, said without repeating it. */
function hostProblem(value: string): string {
  const where =
    '; the port, user and password are options of their own (port, user, password; SMTP_PORT, SMTP_USER, SMTP_PASSWORD)';
  if (/[\s\p{Cc}]/u.test(value)) return `, without spaces, line breaks or control characters${where}`;
  if (value.includes('://')) return `, not a URL${where}`;
  if (value.includes('@')) return `, without a user name or password in it${where}`;
  if (/:\d*$/.test(value)) return `, without a port${where}`;
  return where;
}
