/** Internal: what every webhook verifier shares: constant-time comparison, freshness, replay memory. */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { lowerAscii } from '../ascii-case.js';
import type { DeliveryEvent, WebhookProviderName } from './events.js';

/** A request as a verifier sees it: its headers and the exact bytes of its body. */
export interface RawWebhookRequest {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * A verifier's answer: the request is genuine (with the key that names it for replay checks),
 * refused (401, 403), or not yet known (503: what the check needs could not be had, such as SNS's
 * signing certificate; the provider sends it again later).
 */
export type Verdict =
  | { readonly ok: true; readonly replayKey: string }
  | { readonly ok: false; readonly status: 401 | 403 | 503 };

/** One provider's rules: how to tell a genuine request, and how to read its events. */
export interface WebhookVerifier {
  readonly provider: WebhookProviderName;
  verify(request: RawWebhookRequest, nowMs: number): Verdict | Promise<Verdict>;
  /** The events of a verified body; may act on it first (SNS: confirm a subscription). */
  parse(body: Buffer, nowMs: number): DeliveryEvent[] | Promise<DeliveryEvent[]>;
}

export const FORGED: Verdict = Object.freeze({ ok: false, status: 403 });
/** Passed every check that could be made; the one left needs what could not be had now. */
export const UNVERIFIED_FOR_NOW: Verdict = Object.freeze({ ok: false, status: 503 });

/** Equal strings, compared in constant time for equal lengths (a length mismatch is no secret). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Whether a provider's timestamp (seconds since the epoch) lies within `toleranceMs` of now, either way. */
export function fresh(seconds: unknown, nowMs: number, toleranceMs: number): boolean {
  const value = typeof seconds === 'string' && /^\d{1,12}(\.\d+)?$/.test(seconds) ? Number(seconds) : seconds;
  if (typeof value !== 'number' || !Number.isFinite(value)) return false;
  return Math.abs(nowMs - value * 1000) <= toleranceMs;
}

/** One header's value (the first, when repeated). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * What follows `scheme` in the `Authorization` header, or undefined when it names another scheme
 * or none. As RFC 7235 §2.1 has it, the scheme is case-insensitive (`Basic`, `basic`, `BASIC`;
 * ASCII letters only, see {@link lowerAscii}) and one or more spaces separate it from the
 * credentials.
 */
export function authorization(headers: IncomingHttpHeaders, scheme: string): string | undefined {
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+)$/.exec(header(headers, 'authorization')?.trim() ?? '');
  return match && lowerAscii(match[1]!) === lowerAscii(scheme) ? match[2] : undefined;
}

/** A short digest, for replay keys built from request bytes. */
export function digest(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('base64url');
}

/**
 * Ids seen recently, so that a captured request sent again is refused. Bounded: past `max`
 * entries the oldest is forgotten first; entries older than `ttlMs` (twice the freshness
 * tolerance: by then the timestamp check refuses the request anyway) are dropped.
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #ttlMs: number;

  constructor(max: number, ttlMs: number) {
    this.#max = max;
    this.#ttlMs = ttlMs;
  }

  /** Claims `key`: false when it was seen (or is being handled) already. */
  claim(key: string, nowMs: number): boolean {
    this.#expire(nowMs);
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, nowMs);
    while (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
    }
    return true;
  }

  /** Gives `key` back: handling failed, so the provider's retry must be let through. */
  release(key: string): void {
    this.#seen.delete(key);
  }

  #expire(nowMs: number): void {
    for (const [key, at] of this.#seen) {
      if (nowMs - at <= this.#ttlMs) break;
      this.#seen.delete(key);
    }
  }
}

/** JSON from the body, or undefined when it is not JSON. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
