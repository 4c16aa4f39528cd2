/**
 * Many emails at once: each entry is sent on its own (its own validation, suppression and
 * preference check, retries), with a bounded number in flight and an optional rate, and each gets
 * its own outcome. A batch never fails as a whole because one entry did.
 */
import type { SendResult } from './transport.js';

/** Options of `EmailService.sendBatch()`. */
export interface BatchOptions {
  /** Sends in flight at once, 1 to 1 000. Default 10. */
  concurrency?: number;
  /**
   * At most this many sends start per second (a provider's rate limit), e.g. `14` for SES's
   * default sandbox. Default: no limit besides `concurrency`.
   */
  perSecond?: number;
  /** Stops starting new sends: entries not started yet are `skipped`; those in flight finish. */
  signal?: AbortSignal;
  /** Called after each entry is decided, with the counts so far. A listener that throws is ignored. */
  onProgress?: (progress: BatchProgress) => void;
}

/** Counts of a batch so far. */
export interface BatchProgress {
  readonly total: number;
  /** Entries decided so far (`sent + suppressed + failed + skipped`). */
  readonly done: number;
  readonly sent: number;
  readonly suppressed: number;
  readonly failed: number;
  readonly skipped: number;
}

/**
 * What happened to one entry:
 * - `sent`: the transport (or the queue) accepted it; `result.suppressed` lists recipients left out.
 * - `suppressed`: every `to` recipient is suppressed or does not want the category: nothing sent.
 * - `failed`: refused before sending (`error` is the typed error naming the field) or the send failed.
 * - `skipped`: the batch was aborted before this entry started.
 */
export type BatchOutcome =
  | { readonly index: number; readonly status: 'sent' | 'suppressed'; readonly result: SendResult }
  | { readonly index: number; readonly status: 'failed'; readonly error: unknown }
  | { readonly index: number; readonly status: 'skipped' };

/** The outcome of every entry, in the order given, and the counts. */
export interface BatchResult extends BatchProgress {
  readonly outcomes: readonly BatchOutcome[];
}

/** Internal: the checked options, with defaults. */
export function batchSettings(
  options: BatchOptions | undefined,
): Required<Pick<BatchOptions, 'concurrency'>> & BatchOptions {
  const concurrency = options?.concurrency ?? 10;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000)
    throw new TypeError('sendBatch: concurrency must be a whole number from 1 to 1000');
  const perSecond = options?.perSecond;
  if (perSecond !== undefined && !(Number.isFinite(perSecond) && perSecond > 0))
    throw new TypeError('sendBatch: perSecond must be a positive number');
  if (options?.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new TypeError('sendBatch: onProgress must be a function');
  return { ...options, concurrency };
}

/**
 * Internal: runs `send` for every entry with at most `concurrency` in flight and at most
 * `perSecond` starts per second, and collects each outcome. Never rejects because of an entry.
 */
export async function runBatch<E>(
  entries: readonly E[],
  send: (entry: E) => Promise<SendResult>,
  options: ReturnType<typeof batchSettings>,
): Promise<BatchResult> {
  const total = entries.length;
  const outcomes: BatchOutcome[] = new Array(total);
  const counts = { sent: 0, suppressed: 0, failed: 0, skipped: 0 };
  const gapMs = options.perSecond === undefined ? 0 : 1000 / options.perSecond;
  let nextStart = 0;
  let next = 0;

  const progress = (): BatchProgress => ({
    total,
    done: counts.sent + counts.suppressed + counts.failed + counts.skipped,
    ...counts,
  });
  const decided = (outcome: BatchOutcome) => {
    outcomes[outcome.index] = outcome;
    counts[outcome.status]++;
    try {
      options.onProgress?.(progress());
    } catch {
      // A broken progress listener must not change what the batch does.
    }
  };
  /** Waits for the entry's slot under `perSecond`; slots are taken in order. */
  const slot = async () => {
    if (gapMs === 0) return;
    const now = performance.now();
    const at = Math.max(now, nextStart);
    nextStart = at + gapMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };

  const lane = async () => {
    for (let index = next++; index < total; index = next++) {
      if (options.signal?.aborted) {
        decided({ index, status: 'skipped' });
        continue;
      }
      await slot();
      if (options.signal?.aborted) {
        decided({ index, status: 'skipped' });
        continue;
      }
      try {
        const result = await send(entries[index] as E);
        const nobody =
          result.accepted.length === 0 && result.queued === undefined && result.suppressed?.length;
        decided({ index, status: nobody ? 'suppressed' : 'sent', result });
      } catch (error) {
        decided({ index, status: 'failed', error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, total) }, lane));
  return { ...progress(), outcomes };
}
