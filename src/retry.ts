/**
 * Retries with exponential backoff and full jitter. What is worth retrying is not decided here:
 * an `EmailError`'s `retryable` bit (from `failureClass`) is trusted as it is.
 */
import { EmailError, isEmailError } from './errors.js';

/** How `EmailService` retries a failed send. */
export interface RetryOptions {
  /** Attempts in all, the first included. `1` turns retries off. Default 3. */
  maxAttempts?: number;
  /** No new attempt starts once this long has passed since the first one (ms). Default 60 000. */
  maxElapsedMs?: number;
  /** The backoff's base: the wait before retry n is random in [0, base · 2ⁿ⁻¹] (ms). Default 500. */
  baseDelayMs?: number;
  /** The longest wait the backoff picks; a provider's Retry-After may ask for more (ms). Default 30 000. */
  maxDelayMs?: number;
}

/** The defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY: Readonly<Required<RetryOptions>> = Object.freeze({
  maxAttempts: 3,
  maxElapsedMs: 60_000,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
});

/** Called before each wait: the error that failed `attempt`, and how long we wait before the next. */
export type RetryListener = (error: EmailError, attempt: number, delayMs: number) => void;

/** Frozen options already checked: a queue worker passes the same object with every send. */
const resolvedFrozen = new WeakMap<RetryOptions, Required<RetryOptions>>();

/** Checks retry options once, naming the option at fault. */
export function resolveRetry(options: RetryOptions | false | undefined): Required<RetryOptions> {
  if (options === false) return { ...DEFAULT_RETRY, maxAttempts: 1 };
  const known = options && resolvedFrozen.get(options);
  if (known) return known;
  const resolved = { ...DEFAULT_RETRY, ...options };
  for (const [key, value] of Object.entries(resolved)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`retry.${key} must be a non-negative number`);
    }
  }
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1) {
    throw new TypeError('retry.maxAttempts must be a whole number of at least 1');
  }
  if (options && Object.isFrozen(options)) resolvedFrozen.set(options, resolved);
  return resolved;
}

/**
 * The wait before the attempt after `attempt`: full jitter over an exponential ceiling, and never
 * less than what the provider asked for with Retry-After.
 */
export function backoffDelay(
  attempt: number,
  options: Required<RetryOptions>,
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.max(Math.round(random() * ceiling), retryAfterMs);
}

/**
 * Reads an HTTP `Retry-After` value, either delay-seconds or an HTTP-date, as milliseconds from
 * `now`. Returns undefined for a missing or malformed value; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value == null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Runs `attempt(n)` until it succeeds, fails with an error that is not retryable, runs out of
 * attempts, or would start after `maxElapsedMs`. Rethrows the last error; aborting `signal` stops
 * the wait at once with an `aborted` EmailError.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  options: Required<RetryOptions>,
  context: { signal?: AbortSignal; transport: string; onRetry?: RetryListener },
): Promise<T> {
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!isEmailError(error) || !error.retryable || n >= options.maxAttempts) throw error;
      const delay = backoffDelay(n, options, error.retryAfterMs);
      if (Date.now() - started + delay > options.maxElapsedMs) throw error;
      context.onRetry?.(error, n, delay);
      await sleep(delay, context.signal, context.transport);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined, transport: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () =>
      new EmailError('the send was aborted while waiting to retry', {
        code: 'aborted',
        transport,
        cause: signal?.reason,
      });
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
