/**
 * The mailroom error family.
 *
 * Mistakes in code or config (a bad message, a missing template field, a malformed variable) throw at
 * once and are never retried. Delivery failures are one {@link EmailError} with a `code` and a
 * `retryable` bit decided in one place ({@link isRetryable}). Every error carries a `Symbol.for`
 * brand, so the guards work even when the package is loaded twice (once as ESM, once as CJS).
 */

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

/** Why a delivery failed. */
export type EmailErrorCode =
  /** The transport refused our credentials. */
  | 'auth'
  /** The provider asked us to slow down. */
  | 'rate-limit'
  /** The connection failed or dropped. */
  | 'network'
  /** The provider did not answer in time. */
  | 'timeout'
  /** The provider refused this message or all of its recipients. */
  | 'rejected'
  /** The provider failed in some other way. */
  | 'provider'
  /** Writing the message to disk failed (sandbox). */
  | 'io'
  /** The caller aborted the send. */
  | 'aborted';

/**
 * A message could not be delivered.
 *
 * @example
 * ```ts
 * try {
 *   await mail.sendWelcomeEmail({ to, username });
 * } catch (err) {
 *   if (isEmailError(err) && err.retryable) queueForLater(err);
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
  /** The name of the transport that failed (`smtp`, `sandbox` …). */
  readonly transport: string;
  /** The SMTP reply code or HTTP status, when the provider gave one. */
  readonly status: number | undefined;

  constructor(
    message: string,
    options: { code: EmailErrorCode; transport: string; status?: number; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.transport = options.transport;
    this.status = options.status;
    this.retryable = isRetryable(options.code, options.status);
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

/** A template could not be found, compiled or rendered: names the template and, where known, the field. */
export class TemplateError extends MailroomError {
  override readonly name = 'TemplateError';
  readonly kind = 'template' as const;
  readonly template: string;
  readonly field: string | undefined;

  constructor(template: string, problem: string, options: { field?: string; cause?: unknown } = {}) {
    super(`template "${template}": ${options.field ? `${options.field}: ` : ''}${problem}`, {
      cause: options.cause,
    });
    this.template = template;
    this.field = options.field;
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

/** The one place that decides whether a delivery failure is worth another attempt. */
export function isRetryable(code: EmailErrorCode, status?: number): boolean {
  switch (code) {
    case 'network':
    case 'timeout':
    case 'rate-limit':
    case 'io':
      return true;
    case 'provider':
      return status === undefined || status >= 500;
    default:
      return false;
  }
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
