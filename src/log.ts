/**
 * Internal: logging through the logger the user passes (pino-shaped). Log lines carry ids, counts
 * and masked recipients: never a body, a URL from template data, a password or a key.
 */

/** A pino-shaped logger: `logger.info({ …fields }, 'message')`. pino, bunyan-style and console wrappers fit. */
export interface Logger {
  debug?(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  /**
   * Whether lines of `level` are written at all (pino's and winston's `isLevelEnabled`). Optional:
   * when the logger has it and says no, mailroom does not build the line (the per-email ones, such
   * as `email.sent` and `worker.sent`, cost fields and masked addresses for every email).
   */
  isLevelEnabled?(level: string): boolean;
}

/** True when `logger` is there and keeps lines of `level` (see {@link Logger.isLevelEnabled}). */
export function logsAt(
  logger: Logger | undefined,
  level: 'debug' | 'info' | 'warn' | 'error',
): logger is Logger {
  return (
    logger !== undefined && (typeof logger.isLevelEnabled !== 'function' || logger.isLevelEnabled(level))
  );
}

/** `jane.doe@example.com` → `j***@example.com`. */
export function maskAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at <= 0 ? '***' : `${address[0]}***${address.slice(at)}`;
}

const ADDRESS_IN_TEXT = /[^\s<>"'(),;:[\]]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+/g;

/** Masks every address inside a text, e.g. an error message quoting one, before it reaches a log line. */
export function maskAddresses(text: string): string {
  return text.replace(ADDRESS_IN_TEXT, maskAddress);
}

/** Text for a log line, a header or an error message: line breaks folded to spaces, at most `max` characters. */
export function oneLine(text: string, max: number): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, max);
}
