/**
 * Internal: case mapping of ASCII letters only, for values compared case-insensitively by a
 * protocol (email addresses, HTTP auth schemes). `String.prototype.toLowerCase` maps some other
 * characters onto ASCII ones (U+212A KELVIN SIGN to `k`, U+0130 to `i` and a combining dot), so
 * `\u212Aevin@acme.example` would become `kevin@acme.example`, someone else's mailbox.
 */

/** `value` with `A`–`Z` lower-cased and every other character as it was. */
export function lowerAscii(value: string): string {
  return value.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}
