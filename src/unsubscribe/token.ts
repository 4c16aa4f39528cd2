/**
 * Signed unsubscribe tokens: what the `List-Unsubscribe` URL carries so that the one-click POST
 * (RFC 8058) can be trusted without a login. HMAC-SHA256 over a versioned payload, base64url.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError, isMessageError, MessageError } from '../errors.js';
import type { ChoosableCategory } from '../preferences.js';
import { normalise } from '../suppression.js';

/** What a token says: who may turn off which category, and when the email carrying it was made. */
export interface UnsubscribeTokenPayload {
  /** The recipient; lower-cased in the token. */
  address: string;
  /** `product` or `marketing`: the only categories a recipient can turn off. */
  category: ChoosableCategory;
  /** When the token was issued (the send); kept to the second. Default: now. */
  issuedAt?: Date;
}

/** A secret: at least {@link MIN_SECRET_BYTES} bytes, as a string (UTF-8) or bytes. */
export type UnsubscribeSecret = string | Uint8Array;

/** Options of {@link verifyUnsubscribeToken}. */
export interface VerifyUnsubscribeTokenOptions {
  /**
   * The secrets a token may be signed with, newest first: rotate by putting a new secret in front
   * and dropping the oldest once every email signed with it is past `maxAgeDays`. Required, each
   * at least 32 bytes.
   */
  secrets: readonly UnsubscribeSecret[];
  /**
   * How long a token stays good, in days. Default 90: a recipient who finds a months-old email in
   * their inbox and clicks "Unsubscribe" should still be heard, and mailbox providers keep offering
   * the one-click button on old mail. A positive whole number.
   */
  maxAgeDays?: number;
  /** The clock. Default: now. */
  now?: Date;
}

/** A token that verified: the recipient, the category and when the email was sent. */
export interface ValidUnsubscribeToken {
  readonly ok: true;
  /** Lower-cased. */
  readonly address: string;
  readonly category: ChoosableCategory;
  /** To the second. */
  readonly issuedAt: Date;
}

/**
 * Why a token was refused: `malformed` (not a token of ours, or cut short), `forged` (no secret
 * made its signature: tampered, or signed with a secret since dropped), `expired` (older than
 * `maxAgeDays`), `future` (issued more than 5 minutes ahead of this clock).
 */
export type UnsubscribeTokenFailure = 'malformed' | 'forged' | 'expired' | 'future';

/** What {@link verifyUnsubscribeToken} answers. */
export type UnsubscribeTokenResult =
  | ValidUnsubscribeToken
  | { readonly ok: false; readonly reason: UnsubscribeTokenFailure };

/** The shortest secret accepted, in bytes: the HMAC-SHA256 output size (RFC 2104 §3 advises no less). */
export const MIN_SECRET_BYTES = 32;
/** {@link VerifyUnsubscribeTokenOptions.maxAgeDays}'s default. */
export const DEFAULT_MAX_AGE_DAYS = 90;

const VERSION = 'u1';
const MAX_TOKEN_LENGTH = 1024;
const FUTURE_SKEW_SECONDS = 300;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
const CATEGORIES: readonly string[] = ['product', 'marketing'];

/**
 * Signs a token for `address` to turn off `category` mail. The payload is
 * `u1:<category>:<issued, Unix seconds>:<address lower-cased>`; the token is its base64url, a dot,
 * and the base64url HMAC-SHA256 of those bytes under `secret` (about 100 characters for a short
 * address). It is not encrypted: whoever holds the link can read the address, as they can read the
 * email it came in.
 *
 * Throws a `MessageError` naming `address` or `category` for a bad payload, a `ConfigError` naming
 * `secret` for one shorter than 32 bytes.
 *
 * @example
 * ```ts
 * const token = signUnsubscribeToken({ address: 'jane@example.com', category: 'product' }, process.env.SECRET!);
 * const url = `https://acme.example/unsubscribe?token=${token}`;
 * ```
 */
export function signUnsubscribeToken(payload: UnsubscribeTokenPayload, secret: UnsubscribeSecret): string {
  if (typeof payload !== 'object' || payload === null)
    throw new TypeError('signUnsubscribeToken: expected { address, category, issuedAt }');
  const key = secretBytes(secret, 'secret');
  const address = normalise(payload.address);
  if (!CATEGORIES.includes(payload.category))
    throw new MessageError(
      'category',
      'must be product or marketing (the categories a recipient can turn off)',
    );
  const issuedAt = payload.issuedAt ?? new Date();
  if (!(issuedAt instanceof Date) || Number.isNaN(issuedAt.getTime()))
    throw new MessageError('issuedAt', 'must be a valid Date');
  const seconds = Math.floor(issuedAt.getTime() / 1000);
  if (seconds < 0) throw new MessageError('issuedAt', 'must be after 1970');
  const body = Buffer.from(`${VERSION}:${payload.category}:${seconds}:${address}`, 'utf8');
  return `${body.toString('base64url')}.${mac(key, body).toString('base64url')}`;
}

/**
 * Verifies a token from an unsubscribe URL. Never throws for the token, whatever it holds: the
 * answer is `{ ok: true, address, category, issuedAt }` or `{ ok: false, reason }`. Signatures
 * are compared in constant time (`timingSafeEqual`) against each secret in turn.
 *
 * Throws a `ConfigError` naming `secrets` or `secrets[i]` (a secret shorter than 32 bytes) and
 * `maxAgeDays`: those are the caller's mistakes, not the token's.
 *
 * @example
 * ```ts
 * const result = verifyUnsubscribeToken(token, { secrets: [current, previous] });
 * if (result.ok) await preferences.set(result.address, result.category, false, { at: result.issuedAt });
 * ```
 */
export function verifyUnsubscribeToken(
  token: unknown,
  options: VerifyUnsubscribeTokenOptions,
): UnsubscribeTokenResult {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('verifyUnsubscribeToken: expected options { secrets }');
  const keys = secretList(options.secrets, 'secrets');
  const maxAgeDays = checkMaxAgeDays(options.maxAgeDays, 'maxAgeDays');
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new ConfigError('now', 'must be a valid Date');
  return verifyWith(token, keys, maxAgeDays, now);
}

/** Internal: verification with secrets already checked (the handler checks them once). */
export function verifyWith(
  token: unknown,
  keys: readonly Buffer[],
  maxAgeDays: number,
  now: Date,
): UnsubscribeTokenResult {
  const malformed = { ok: false, reason: 'malformed' } as const;
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return malformed;
  const [body64, mac64, extra] = token.split('.');
  if (extra !== undefined || !body64 || !mac64 || !SEGMENT.test(body64) || !SEGMENT.test(mac64))
    return malformed;
  const body = Buffer.from(body64, 'base64url');
  const given = Buffer.from(mac64, 'base64url');
  // base64url's last character may carry unused bits: only the canonical spelling is the token.
  if (body.toString('base64url') !== body64 || given.toString('base64url') !== mac64) return malformed;
  if (given.length !== 32) return malformed;
  if (!keys.some((key) => timingSafeEqual(mac(key, body), given))) return { ok: false, reason: 'forged' };

  const parsed = /^u1:(product|marketing):(\d{1,12}):(.+)$/s.exec(body.toString('utf8'));
  if (!parsed) return malformed;
  const category = parsed[1] as ChoosableCategory;
  const seconds = Number(parsed[2]);
  let address: string;
  try {
    address = normalise(parsed[3] as string);
  } catch (error) {
    if (isMessageError(error)) return malformed;
    throw error;
  }
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (seconds > nowSeconds + FUTURE_SKEW_SECONDS) return { ok: false, reason: 'future' };
  if (nowSeconds - seconds > maxAgeDays * 86_400) return { ok: false, reason: 'expired' };
  return Object.freeze({ ok: true, address, category, issuedAt: new Date(seconds * 1000) });
}

/** Internal: the secrets as bytes, newest first; a `ConfigError` naming `option` or `option[i]`. */
export function secretList(secrets: unknown, option: string): Buffer[] {
  if (!Array.isArray(secrets) || secrets.length === 0)
    throw new ConfigError(option, 'required: a list of secrets, newest first, each at least 32 bytes');
  return secrets.map((secret, i) => secretBytes(secret, `${option}[${i}]`));
}

/** Internal: `maxAgeDays` checked, or its default. */
export function checkMaxAgeDays(value: unknown, option: string): number {
  if (value === undefined) return DEFAULT_MAX_AGE_DAYS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 3650)
    throw new ConfigError(option, 'must be a whole number of days from 1 to 3650');
  return value;
}

function secretBytes(secret: unknown, option: string): Buffer {
  let bytes: Buffer;
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8');
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  // Never the value: a secret in an error message ends up in logs.
  else throw new ConfigError(option, 'must be a string or bytes of at least 32 bytes');
  if (bytes.length < MIN_SECRET_BYTES)
    throw new ConfigError(
      option,
      `is ${bytes.length} bytes; at least ${MIN_SECRET_BYTES} are required (e.g. openssl rand -base64 48)`,
    );
  return bytes;
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}
