/**
 * Many emails at once: each entry is validated, screened and reported on its own (its own
 * suppression and preference check, its own outcome), with a bounded number in flight and an
 * optional rate. A batch never fails as a whole because one entry did. Entries that come out
 * identical but for the recipient may share one provider request (batch-groups.ts).
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
  /**
   * Use the transport's batch API when it has one (`Transport.sendBatch`: Mailgun's recipient
   * variables, up to 1 000 recipients a request): entries whose emails come out identical but for
   * their one `to` recipient share a request; the others go one by one. Then `concurrency` and
   * `perSecond` count requests, not entries, and the entries of one request share its Message-ID.
   * `false` sends every entry on its own. Default `true`.
   */
  batching?: boolean;
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
  if (options?.batching !== undefined && typeof options.batching !== 'boolean')
    throw new TypeError('sendBatch: batching must be true or false');
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
  const tally = batchTally(entries.length, options.onProgress);
  await inLanes(
    entries.map((entry, index) => ({ entry, index })),
    options,
    async ({ entry, index }) => {
      try {
        tally.decided(sentOutcome(index, await send(entry)));
      } catch (error) {
        tally.decided({ index, status: 'failed', error });
      }
    },
    ({ index }) => tally.decided({ index, status: 'skipped' }),
  );
  return tally.result();
}

/** Internal: `sent`, or `suppressed` when the service left every `to` recipient out. */
export function sentOutcome(index: number, result: SendResult): BatchOutcome {
  const nobody = result.accepted.length === 0 && result.queued === undefined && result.suppressed?.length;
  return { index, status: nobody ? 'suppressed' : 'sent', result };
}

/** Internal: the outcomes so far and their counts; reports each decision to `onProgress`. */
export function batchTally(total: number, onProgress: BatchOptions['onProgress']) {
  const outcomes: BatchOutcome[] = new Array(total);
  const counts = { sent: 0, suppressed: 0, failed: 0, skipped: 0 };
  const progress = (): BatchProgress => ({
    total,
    done: counts.sent + counts.suppressed + counts.failed + counts.skipped,
    ...counts,
  });
  return {
    decided(outcome: BatchOutcome): void {
      outcomes[outcome.index] = outcome;
      counts[outcome.status]++;
      try {
        onProgress?.(progress());
      } catch {
        // A broken progress listener must not change what the batch does.
      }
    },
    result: (): BatchResult => ({ ...progress(), outcomes }),
  };
}

/**
 * Internal: runs `run` for every job, at most `concurrency` at once and at most `perSecond` starts
 * per second, in order; once `signal` aborts, the jobs not started go to `skip` instead. `run` must
 * not reject.
 */
export async function inLanes<J>(
  jobs: readonly J[],
  options: Pick<BatchOptions, 'perSecond' | 'signal'> & { concurrency: number },
  run: (job: J) => Promise<void>,
  skip: (job: J) => void,
): Promise<void> {
  const gapMs = options.perSecond === undefined ? 0 : 1000 / options.perSecond;
  let nextStart = 0;
  let next = 0;
  /** Waits for the job's slot under `perSecond`; slots are taken in order. */
  const slot = async () => {
    if (gapMs === 0) return;
    const now = performance.now();
    const at = Math.max(now, nextStart);
    nextStart = at + gapMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };
  const lane = async () => {
    for (let index = next++; index < jobs.length; index = next++) {
      const job = jobs[index] as J;
      if (options.signal?.aborted) {
        skip(job);
        continue;
      }
      await slot();
      if (options.signal?.aborted) skip(job);
      else await run(job);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, jobs.length) }, lane));
}
