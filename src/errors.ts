/**
 * The mailroom error family.
 *
 * Mistakes in code or config (a bad message, a missing template field, a malformed variable) throw at
 * once and are never retried. Delivery failures are one {@link EmailError} with a `code` and a
 * `retryable` bit decided in one place ({@link isRetryable}). Every error carries a `Symbol.for`
 * brand, so the guards work even when the package is loaded twice (once as ESM, once as CJS).
 */

import type { RecipientRefusal } from './transport.js';

const BRAND = Symbol.for('mailroom.error');

/** Which member of the family an error is. */
export type MailroomErrorKind = 'delivery' | 'message' | 'template' | 'config';

/** The base of every error mailroom throws. */
export abstract class MailroomError extends Error {
  abstract readonly kind: MailroomErrorKind;
  /** Whether sending the same message again may succeed. Only delivery errors are ever retryable. */
  readonly retryable: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** Why a delivery failed. What to do about it follows from the code: see {@link failureClass}. */
export type EmailErrorCode =
  /** The provider refused our credentials (SMTP 530/535, HTTP 401/403). Systemic. */
  | 'auth'
  /** The provider account cannot send: payment required, sending disabled. Systemic. */
  | 'account'
  /** The transport is configured wrongly in a way only the provider could tell: unknown host or domain. Systemic. */
  | 'config'
  /** TLS could not be set up: bad certificate, STARTTLS missing where required. Systemic. */
  | 'tls'
  /** The provider asked us to slow down (HTTP 429, SMTP rate replies). Transient. */
  | 'rate-limit'
  /** The provider asked us to try again later (SMTP 4xx). Transient. */
  | 'deferred'
  /** The connection failed or dropped. Transient, or ambiguous once the message was handed over. */
  | 'network'
  /** The provider did not answer in time. Transient, or ambiguous once the message was handed over. */
  | 'timeout'
  /** The provider refused this message or all of its recipients (SMTP 5xx, HTTP 400/413). Permanent. */
  | 'rejected'
  /** The provider failed in some other way; transient without a status or with a 5xx one. */
  | 'provider'
  /** Writing the message to disk failed (sandbox). Transient. */
  | 'io'
  /** The caller aborted the send. Never retried. */
  | 'aborted';

/**
 * What a failure means for the message, decided in one place ({@link failureClass}) and trusted by
 * every transport, the retry loop, failover and the Kafka worker:
 * - `transient`: try again later, the message was not delivered;
 * - `ambiguous`: try again, but it may already have been delivered (the connection dropped after
 *   the message was handed over), so the retry may be a duplicate;
 * - `permanent`: this message will never go through as it is; do not retry;
 * - `systemic`: nothing will go through until someone fixes the setup (credentials, TLS, account);
 *   stop and alert rather than churn;
 * - `aborted`: the caller cancelled; not retried.
 */
export type FailureClass = 'transient' | 'ambiguous' | 'permanent' | 'systemic' | 'aborted';

/** The fields every {@link EmailError} is built from. */
export interface EmailErrorOptions {
  code: EmailErrorCode;
  /** The transport that failed. */
  transport: string;
  /** SMTP reply code or HTTP status. */
  status?: number;
  /** The whole message had been handed to the provider before the failure, so it may have been delivered. */
  handedOver?: boolean;
  /** How long the provider asked us to wait (HTTP Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** What the transport talked to, `host:port`. */
  endpoint?: string;
  /** The underlying error's own code (`ECONNREFUSED`, `ENOTFOUND`, `ERR_SSL_WRONG_VERSION_NUMBER` …). */
  causeCode?: string;
  /** Per-recipient replies, when the provider refused recipients one by one. */
  refusals?: readonly RecipientRefusal[];
  cause?: unknown;
}

/**
 * A message could not be delivered.
 *
 * @example
 * ```ts
 * try {
 *   await mail.sendWelcomeEmail({ to, username });
 * } catch (err) {
 *   if (isEmailError(err) && err.failure === 'systemic') alertOnCall(err);
 *   else if (isEmailError(err) && err.retryable) queueForLater(err);
 *   else throw err;
 * }
 * ```
 */
export class EmailError extends MailroomError {
  override readonly name = 'EmailError';
  readonly kind = 'delivery' as const;
  override readonly retryable: boolean;
  /** Why it failed. */
  readonly code: EmailErrorCode;
  /** What it means: transient, ambiguous, permanent, systemic or aborted. */
  readonly failure: FailureClass;
  /** True when the provider may have delivered the message anyway, so a retry may duplicate it. */
  readonly possibleDuplicate: boolean;
  /** The name of the transport that failed (`smtp`, `mailgun`, `sandbox` …). */
  readonly transport: string;
  /** The SMTP reply code or HTTP status, when the provider gave one. */
  readonly status: number | undefined;
  /** How long the provider asked us to wait before the next attempt, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** Attempts `EmailService` made before it gave up, the first included; set when a send throws. */
  readonly attempts: number | undefined = undefined;
  /** What the transport talked to, `host:port` (e.g. `smtp.example.com:587`), when it got that far. */
  readonly endpoint: string | undefined;
  /**
   * The underlying error's own code, kept because log lines drop `cause`: a system error
   * (`ECONNREFUSED`, `ENOTFOUND`, `ECONNRESET` …) or OpenSSL's (`ERR_SSL_WRONG_VERSION_NUMBER` …).
   */
  readonly causeCode: string | undefined;
  /**
   * Why each recipient was refused, when the provider answered per recipient (SMTP `RCPT TO`):
   * with code `deferred`, every recipient was refused and at least one only for now (4xx).
   */
  readonly refusals: readonly RecipientRefusal[] | undefined;

  constructor(message: string, options: EmailErrorOptions) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.transport = options.transport;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.endpoint = options.endpoint;
    this.causeCode = options.causeCode;
    this.refusals = options.refusals;
    this.failure = failureClass(options.code, options.status, options.handedOver ?? false);
    this.retryable = this.failure === 'transient' || this.failure === 'ambiguous';
    this.possibleDuplicate = this.failure === 'ambiguous';
  }
}

/** A message failed validation: `field` names what is wrong (`to[1]`, `subject`, `headers.X-Id` …). */
export class MessageError extends MailroomError {
  override readonly name = 'MessageError';
  readonly kind = 'message' as const;
  readonly field: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

/** Where in a template's sources a {@link TemplateError} was found. */
export interface TemplateLocation {
  /** The part: `subject`, `html`, `text` or `preheader` (or `layout`, `partial @name`). */
  readonly part?: string;
  /** The part's file, for a template defined from a folder (absolute path). */
  readonly file?: string;
  /** The line in that file or part, from 1. */
  readonly line?: number;
}

/**
 * A template could not be found, compiled or rendered: names the template and, where known, the
 * field, and for a mistake in its sources the part or file and the line (`html.eta, line 3`).
 */
export class TemplateError extends MailroomError {
  override readonly name = 'TemplateError';
  readonly kind = 'template' as const;
  readonly template: string;
  readonly field: string | undefined;
  readonly part: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(
    template: string,
    problem: string,
    options: { field?: string; cause?: unknown } & TemplateLocation = {},
  ) {
    const place = options.file ?? options.part;
    const where = place ? `${place}${options.line ? `, line ${options.line}` : ''}: ` : '';
    super(`template "${template}": ${where}${options.field ? `${options.field}: ` : ''}${problem}`, {
      cause: options.cause,
    });
    this.template = template;
    this.field = options.field;
    this.part = options.part;
    this.file = options.file;
    this.line = options.line;
  }
}

/** An option or environment variable is missing or malformed: `option` names it. */
export class ConfigError extends MailroomError {
  override readonly name = 'ConfigError';
  readonly kind = 'config' as const;
  readonly option: string;

  constructor(option: string, problem: string) {
    super(`${option}: ${problem}`);
    this.option = option;
  }
}

/**
 * The one place that decides what a delivery failure means (see {@link FailureClass}).
 * Transports map their provider's replies to a code (and keep the status); this turns the code into
 * what to do. `handedOver` says the whole message had reached the provider before the failure.
 */
export function failureClass(code: EmailErrorCode, status?: number, handedOver = false): FailureClass {
  switch (code) {
    case 'auth':
    case 'account':
    case 'config':
    case 'tls':
      return 'systemic';
    case 'rejected':
      return 'permanent';
    case 'aborted':
      return 'aborted';
    case 'network':
    case 'timeout':
      return handedOver ? 'ambiguous' : 'transient';
    case 'provider':
      return status === undefined || status >= 500 ? 'transient' : 'permanent';
    default:
      return 'transient';
  }
}

/** Codes of TLS failures: OpenSSL's own (wrong version number, handshake failure …) and Node's. */
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/**
 * What a connection-level failure means, from the underlying error's code, for every transport
 * that opens connections (SMTP, the HTTP APIs): one rule, so an unknown host or a TLS mismatch is
 * the same failure whoever met it.
 * - `ENOTFOUND` (the name does not exist): `config`, systemic: no retry will make it resolve.
 *   `EAI_AGAIN` (the resolver did not answer) stays `network`.
 * - Any TLS failure (a certificate we do not trust, or TLS spoken to a plain-text server: "wrong
 *   version number", "packet length too long", "unknown protocol", "handshake failure" …): `tls`.
 * - A timeout: `timeout`; anything else that broke the connection: `network`.
 * Returns the verdict with the code it was read from (walking `cause`); `undefined` when there is
 * nothing connection-level to judge by.
 */
export function connectionFailure(
  error: unknown,
): { code: EmailErrorCode; causeCode: string | undefined } | undefined {
  const causeCode = systemCode(error);
  if (isOpenSslError(error)) return { code: 'tls', causeCode };
  if (causeCode === undefined) return undefined;
  if (causeCode === 'ENOTFOUND') return { code: 'config', causeCode };
  if (TLS_CODE.test(causeCode)) return { code: 'tls', causeCode };
  if (causeCode === 'ETIMEDOUT' || causeCode === 'UND_ERR_CONNECT_TIMEOUT')
    return { code: 'timeout', causeCode };
  return { code: 'network', causeCode };
}

/**
 * The system or OpenSSL code of an error or of one of its causes: nodemailer keeps it as
 * `originalCode`, fetch as `cause.code`, node:http as `code`. Our own codes (`ESOCKET` …) are skipped.
 */
function systemCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { originalCode, code, cause } = e as { originalCode?: unknown; code?: unknown; cause?: unknown };
    for (const candidate of [originalCode, code]) {
      if (typeof candidate === 'string' && !NODEMAILER_CODES.has(candidate)) return candidate;
    }
    e = cause;
  }
  return undefined;
}

const NODEMAILER_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'EPROTOCOL',
  'EENVELOPE',
  'EMESSAGE',
  'ESTREAM',
  'EAUTH',
  'ENOAUTH',
  'EOAUTH2',
  'ECONFIG',
  'EABORT',
  'EREQUIRETLS',
]);

function isOpenSslError(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { library, message } = e as { library?: unknown; message?: unknown };
    // node:https reports OpenSSL's failures as EPROTO, its words only in the message.
    if (library === 'SSL routines' || (typeof message === 'string' && message.includes('SSL routines')))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether a failure with this code and status is worth another attempt (transient or ambiguous). */
export function isRetryable(code: EmailErrorCode, status?: number, handedOver = false): boolean {
  const failure = failureClass(code, status, handedOver);
  return failure === 'transient' || failure === 'ambiguous';
}

function hasKind(err: unknown, kind?: MailroomErrorKind): boolean {
  if (typeof err !== 'object' || err === null || !(BRAND in err)) return false;
  return kind === undefined || (err as { kind?: unknown }).kind === kind;
}

/** True for any error thrown by mailroom. */
export function isMailroomError(err: unknown): err is MailroomError {
  return hasKind(err);
}

/** True when `err` is a delivery failure ({@link EmailError}). */
export function isEmailError(err: unknown): err is EmailError {
  return hasKind(err, 'delivery');
}

/** True when `err` is a {@link MessageError}. */
export function isMessageError(err: unknown): err is MessageError {
  return hasKind(err, 'message');
}

/** True when `err` is a {@link TemplateError}. */
export function isTemplateError(err: unknown): err is TemplateError {
  return hasKind(err, 'template');
}

/** True when `err` is a {@link ConfigError}. */
export function isConfigError(err: unknown): err is ConfigError {
  return hasKind(err, 'config');
}
