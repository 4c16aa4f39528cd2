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

export class KeyClaims {
  /** Keys being handled now, each with the copies waiting for it to finish. */
  readonly #inFlight = new Map<string, Array<() => void>>();

  constructor(
    readonly store: IdempotencyStore,
    readonly owner: string,
    readonly report: Pick<RecordReports, 'systemic' | 'storeFailed'>,
  ) {}

  /**
   * Waits for a copy of `key` this process is handling, then claims it. `undefined` when the store
   * could not answer (reported as systemic: the worker pauses). Call `done` after, whatever happened.
   */
  async claim(key: string): Promise<ClaimResult | undefined> {
    let waiters = this.#inFlight.get(key);
    while (waiters) {
      await new Promise<void>((resolve) => waiters?.push(resolve));
      waiters = this.#inFlight.get(key);
    }
    this.#inFlight.set(key, []);
    try {
      return await this.store.claim(key, { owner: this.owner });
    } catch (error) {
      this.report.systemic(storeError('claim', this.store, error));
      return undefined;
    }
  }

  /** After the transport accepted: `lease-lost` when another worker may have sent it too; `undefined` if the store failed (said). */
  async markSent(key: string): Promise<'marked' | 'lease-lost' | undefined> {
    try {
      return await this.store.markSent(key, this.owner);
    } catch (error) {
      this.report.storeFailed(storeError('markSent', this.store, error));
      return undefined;
    }
  }

  /** After a failure that sent nothing. A failed release is said; the lease runs out on its own. */
  async release(key: string): Promise<void> {
    try {
      await this.store.release(key, this.owner);
    } catch (error) {
      this.report.storeFailed(storeError('release', this.store, error));
    }
  }

  /** The copies of `key` waiting in this process go on. */
  done(key: string): void {
    const waiting = this.#inFlight.get(key);
    this.#inFlight.delete(key);
    for (const wake of waiting ?? []) wake();
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
