/**
 * Internal: one worker's side of the idempotency store. Copies of a key within this process wait
 * for each other (a producer retry wrote a record twice, both in one batch); across processes the
 * store's leases decide. A store that fails is reported here, in the words the worker acts on:
 * no answer to a claim pauses the worker (nothing is sent), a failed mark or release is said.
 */
import {
  type ClaimResult,
  type IdempotencyStore,
  IdempotencyStoreError,
  isIdempotencyStoreError,
} from './idempotency.js';
import type { RecordReports } from './records.js';

/** A store's answer: the memory store answers at once, a shared one with a promise. */
type Answer<T> = T | Promise<T>;

/** True for a promise (or any thenable a custom store returns); a plain value is used as it is, without a tick. */
export function isPending<T>(value: Answer<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** An in-flight key nobody waits for yet: no array is made until a copy waits. */
const NO_WAITERS: Array<() => void> = [];

export class KeyClaims {
  /** Keys being handled now, each with the copies waiting for it to finish. */
  readonly #inFlight = new Map<string, Array<() => void>>();
  readonly #claimOptions: { readonly owner: string };

  constructor(
    readonly store: IdempotencyStore,
    readonly owner: string,
    readonly report: Pick<RecordReports, 'systemic' | 'storeFailed'>,
  ) {
    this.#claimOptions = Object.freeze({ owner });
  }

  /**
   * Waits for a copy of `key` this process is handling, then claims it. `undefined` when the store
   * could not answer (reported as systemic: the worker pauses). Call `done` after, whatever happened.
   * A store that answers at once (the memory store) is answered at once: no promise, no tick.
   */
  claim(key: string): Answer<ClaimResult | undefined> {
    if (this.#inFlight.has(key)) return this.#claimAfterCopies(key);
    return this.#ask(key);
  }

  async #claimAfterCopies(key: string): Promise<ClaimResult | undefined> {
    let waiters = this.#inFlight.get(key);
    while (waiters) {
      if (waiters === NO_WAITERS) {
        waiters = [];
        this.#inFlight.set(key, waiters);
      }
      const list = waiters;
      await new Promise<void>((resolve) => list.push(resolve));
      waiters = this.#inFlight.get(key);
    }
    return this.#ask(key);
  }

  #ask(key: string): Answer<ClaimResult | undefined> {
    this.#inFlight.set(key, NO_WAITERS);
    let answer: Answer<ClaimResult>;
    try {
      answer = this.store.claim(key, this.#claimOptions);
    } catch (error) {
      return this.#claimFailed(error);
    }
    return isPending(answer) ? answer.then(undefined, (error: unknown) => this.#claimFailed(error)) : answer;
  }

  #claimFailed(error: unknown): undefined {
    this.report.systemic(storeError('claim', this.store, error));
    return undefined;
  }

  /** After the transport accepted: `lease-lost` when another worker may have sent it too; `undefined` if the store failed (said). */
  markSent(key: string): Answer<'marked' | 'lease-lost' | undefined> {
    let answer: Answer<'marked' | 'lease-lost'>;
    try {
      answer = this.store.markSent(key, this.owner);
    } catch (error) {
      return this.#markFailed(error);
    }
    return isPending(answer) ? answer.then(undefined, (error: unknown) => this.#markFailed(error)) : answer;
  }

  #markFailed(error: unknown): undefined {
    this.report.storeFailed(storeError('markSent', this.store, error));
    return undefined;
  }

  /** After a failure that sent nothing. A failed release is said; the lease runs out on its own. */
  release(key: string): Answer<void> {
    const failed = (error: unknown) => {
      this.report.storeFailed(storeError('release', this.store, error));
    };
    try {
      const answer = this.store.release(key, this.owner);
      return isPending(answer) ? answer.then(undefined, failed) : undefined;
    } catch (error) {
      failed(error);
    }
  }

  /** The copies of `key` waiting in this process go on. */
  done(key: string): void {
    const waiting = this.#inFlight.get(key);
    this.#inFlight.delete(key);
    if (waiting === undefined) return;
    for (const wake of waiting) wake();
  }
}

/** A store's failure as an {@link IdempotencyStoreError} (a custom store may reject with anything). */
function storeError(
  operation: IdempotencyStoreError['operation'],
  store: IdempotencyStore,
  error: unknown,
): IdempotencyStoreError {
  return isIdempotencyStoreError(error)
    ? error
    : new IdempotencyStoreError(operation, store.name ?? 'custom', error);
}
