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
