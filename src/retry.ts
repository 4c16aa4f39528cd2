/**
 * Retries with exponential backoff and full jitter. What is worth retrying is not decided here:
 * an `EmailError`'s `retryable` bit (from `failureClass`) is trusted as it is. Recipients the
 * provider deferred are retried on their own, within the same budget.
 */
import { lowerAscii } from './ascii-case.js';
import { EmailError, isEmailError } from './errors.js';
import { oneLine } from './log.js';
import { type EmailMessage, narrowEnvelope } from './message.js';
import type { RecipientRefusal, SendResult } from './transport.js';

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

/** What {@link withRetries} needs besides the attempt: the signal that stops the waits, names for errors. */
export interface RetryContext {
  signal?: AbortSignal;
  transport: string;
  onRetry?: RetryListener;
}

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
  context: RetryContext,
): Promise<T> {
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      await beforeRetry(error, n, started, options, context);
    }
  }
}

/**
 * After attempt `n` failed with `error`: rethrows it unless another attempt is allowed (a retryable
 * `EmailError`, attempts and time left), else waits the backoff. The one rule of both retry loops.
 */
async function beforeRetry(
  error: unknown,
  n: number,
  started: number,
  options: Required<RetryOptions>,
  context: RetryContext,
): Promise<void> {
  if (!isEmailError(error) || !error.retryable || n >= options.maxAttempts) throw error;
  const delay = backoffDelay(n, options, error.retryAfterMs);
  if (Date.now() - started + delay > options.maxElapsedMs) throw error;
  context.onRetry?.(error, n, delay);
  await sleep(delay, context.signal, context.transport);
}

/**
 * Sends `message`, retrying as {@link withRetries} does, and treats recipients the provider deferred (a 4xx reply
 * to `RCPT TO`: greylisting, a full mailbox, too many recipients) as a transient failure of those
 * recipients alone: the next attempt goes to them only, the same message with the same Message-ID,
 * after the same backoff and within the same budget. A recipient who accepted is never sent to again.
 *
 * When the budget runs out with some recipients accepted, the result lists the ones still deferred
 * (`deferred`, with their replies in `refusals`). When nobody accepted, the last error is thrown,
 * carrying every recipient's refusal seen on the way. `narrows` says the transport delivers only to
 * `deliveryRecipients()`; without it a partial delivery is returned at once, the deferred listed
 * and never retried here (a retry would reach those who accepted again). The result carries
 * `attempts`, the number of attempts made.
 */
export function withRecipientRetries(
  message: EmailMessage,
  send: (message: EmailMessage, attempt: number) => Promise<SendResult>,
  options: Required<RetryOptions>,
  context: RetryContext,
  narrows: boolean,
): Promise<SendResult> {
  const started = Date.now();
  const ledger = new RecipientLedger();
  let first: Promise<SendResult>;
  try {
    first = send(message, 1);
  } catch (error) {
    first = Promise.reject(error);
  }
  // The common case, one attempt that went through, settles in this callback: no async frame (its
  // registers are copied to the heap at every await), only the retry loop below has one.
  return first.then(
    (result) => {
      if (narrows && result.deferred?.length)
        return retryRecipients(message, send, options, context, narrows, ledger, started, { result });
      ledger.delivered(result);
      return ledger.result(message, 1);
    },
    (error: unknown) => retryRecipients(message, send, options, context, narrows, ledger, started, { error }),
  );
}

/** withRecipientRetries' loop, from the outcome of attempt 1 on (withRetries' rule is beforeRetry's). */
async function retryRecipients(
  message: EmailMessage,
  send: (message: EmailMessage, attempt: number) => Promise<SendResult>,
  options: Required<RetryOptions>,
  context: RetryContext,
  narrows: boolean,
  ledger: RecipientLedger,
  started: number,
  first: { result: SendResult } | { error: unknown },
): Promise<SendResult> {
  let pending = message;
  let attempts = 0;
  let outcome: { result: SendResult } | { error: unknown } | undefined = first;
  try {
    for (let n = 1; ; n++) {
      attempts = n;
      if (outcome === undefined) {
        try {
          outcome = { result: await send(pending, n) };
        } catch (error) {
          outcome = { error };
        }
      }
      const current = outcome;
      outcome = undefined;
      if (!('result' in current)) {
        const { error } = current;
        const deferred = isEmailError(error) ? ledger.refused(error.refusals ?? []) : [];
        if (deferred.length && narrows) pending = narrowEnvelope(message, deferred);
        await beforeRetry(error, n, started, options, context);
        continue;
      }
      const { result } = current;
      const deferred = ledger.delivered(result);
      // A transport that cannot send to the deferred alone would reach everyone again: report them.
      if (deferred.length === 0 || !narrows) break;
      pending = narrowEnvelope(message, deferred);
      await beforeRetry(deferral(result, ledger.refusalsOf(deferred)), n, started, options, context);
    }
  } catch (error) {
    if (ledger.accepted.length === 0) throw ledger.annotate(error);
    // Delivered to some: a result, not an error, with the others still deferred (or refused).
    ledger.stranded(error);
  }
  return ledger.result(message, attempts);
}

/** The error that makes the retry loop wait and try the deferred recipients again. */
function deferral(result: SendResult, refusals: RecipientRefusal[]): EmailError {
  const first = refusals[0];
  return new EmailError(
    `${result.transport}: ${refusals.length} recipient(s) deferred${first?.response ? `: ${first.response}` : ''}`,
    {
      code: 'deferred',
      transport: result.transport,
      ...(first?.status === undefined ? {} : { status: first.status }),
      refusals,
    },
  );
}

/** Who accepted, who was refused and why, across every attempt of one message. */
class RecipientLedger {
  readonly accepted: string[] = [];
  /** The latest attempt that went through. */
  #last: SendResult | undefined;
  // Made on the first refusal: most emails have none, and a Set and a Map per email add up.
  #rejected: Set<string> | undefined;
  /** The latest refusal of each address not accepted since, by lower-cased address. */
  #refusals: Map<string, RecipientRefusal> | undefined;
  #deferred: readonly string[] = NOBODY;

  /** Records an attempt that went through; returns the recipients to try again. */
  delivered(result: SendResult): readonly string[] {
    this.#last = result;
    const refusals = this.#refusals;
    const { accepted, rejected } = result;
    for (let i = 0; i < accepted.length; i++) {
      const address = accepted[i] as string;
      this.accepted.push(address);
      refusals?.delete(lowerAscii(address));
    }
    for (let i = 0; i < rejected.length; i++) this.#reject(rejected[i] as string);
    if (result.refusals) this.#record(result.refusals);
    this.#deferred = result.deferred?.length ? [...result.deferred] : NOBODY;
    return this.#deferred;
  }

  /** Records refusals of an attempt that failed as a whole; returns the recipients to try again. */
  refused(refusals: readonly RecipientRefusal[]): string[] {
    this.#record(refusals);
    for (const r of refusals) if (r.failure === 'permanent') this.#reject(r.address);
    const deferred = refusals.filter((r) => r.failure === 'transient').map((r) => r.address);
    if (deferred.length) this.#deferred = deferred;
    return deferred;
  }

  /** The budget ran out while the deferred recipients were being retried, the last time with `error`. */
  stranded(error: unknown): void {
    if (!isEmailError(error) || error.failure !== 'permanent' || error.refusals?.length) return;
    // The retry itself was refused for good (e.g. 554 after DATA): those recipients are rejected.
    for (const address of this.#deferred) {
      this.#reject(address);
      this.#refuse(lowerAscii(address), {
        address,
        failure: 'permanent',
        ...(error.status === undefined ? {} : { status: error.status }),
        response: oneLine(error.message, 200),
      });
    }
    this.#deferred = NOBODY;
  }

  refusalsOf(addresses: readonly string[]): RecipientRefusal[] {
    const refusals = this.#refusals;
    return refusals ? addresses.flatMap((a) => refusals.get(lowerAscii(a)) ?? []) : [];
  }

  /** Gives a thrown error every refusal seen on the way, not only its own attempt's. */
  annotate(error: unknown): unknown {
    const refusals = this.#refusals;
    if (isEmailError(error) && error.refusals?.length && refusals && refusals.size > error.refusals.length) {
      (error as { refusals: readonly RecipientRefusal[] }).refusals = [...refusals.values()];
    }
    return error;
  }

  /**
   * The one result of every attempt together, with the number of attempts made; only called once
   * some recipient accepted. Built whole: a property added afterwards would cost a map transition.
   */
  result(message: EmailMessage, attempts: number): SendResult {
    const last = this.#last as SendResult;
    // The common case, one attempt that every recipient accepted: nothing to take out or add.
    if (
      this.#rejected === undefined &&
      this.#deferred.length === 0 &&
      this.#refusals === undefined &&
      !('deferred' in last) &&
      !('refusals' in last)
    ) {
      // Object.assign, not a spread: V8 gives a spread copy a map of its own, so adding `attempts`
      // to it costs far more than to a plain copy.
      const out = Object.assign({}, last) as { -readonly [K in keyof SendResult]: SendResult[K] };
      out.messageId = message.messageId;
      out.accepted = this.accepted;
      out.rejected = [];
      out.attempts = attempts;
      return out;
    }
    const rejectedSet = this.#rejected;
    const deferred = rejectedSet ? this.#deferred.filter((a) => !rejectedSet.has(a)) : [...this.#deferred];
    const rejected = rejectedSet ? [...rejectedSet] : [];
    const refusals = this.refusalsOf([...rejected, ...deferred]);
    const { deferred: _d, refusals: _r, ...rest } = last;
    return {
      ...rest,
      messageId: message.messageId,
      accepted: this.accepted,
      rejected,
      ...(deferred.length ? { deferred } : {}),
      ...(refusals.length ? { refusals } : {}),
      attempts,
    };
  }

  #record(refusals: readonly RecipientRefusal[]): void {
    for (const r of refusals) this.#refuse(lowerAscii(r.address), r);
  }

  #reject(address: string): void {
    this.#rejected ??= new Set();
    this.#rejected.add(address);
  }

  #refuse(key: string, refusal: RecipientRefusal): void {
    this.#refusals ??= new Map();
    this.#refusals.set(key, refusal);
  }
}

/** No recipients to try again: one shared empty list, never written to. */
const NOBODY: readonly string[] = Object.freeze([]);

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
