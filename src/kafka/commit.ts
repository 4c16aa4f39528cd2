/**
 * Internal: offset bookkeeping for the worker. A record's offset is committed only once it and
 * every record before it on its partition are finished (sent, parked or dead-lettered), and
 * commits are coalesced: one request in flight, the newest offsets next.
 */
import { CommitNotStoredError, type KafkaConsumerLike } from './client.js';
import { isRebalanceError } from './failures.js';

/** Offsets a commit named (the last finished record's, per partition). */
export type FinishedOffsets = ReadonlyArray<{ topic: string; partition: number; offset: string }>;

/** Tracks one batch of one partition: finishes arrive in any order, resolves go out in order. */
export class PartitionProgress {
  readonly #done: boolean[];
  #next = 0;

  constructor(
    readonly offsets: readonly string[],
    readonly onContiguous: (lastOffset: string) => void,
  ) {
    this.#done = offsets.map(() => false);
  }

  /** Marks record `index` finished; reports the newest offset with nothing unfinished before it. */
  finish(index: number): void {
    this.#done[index] = true;
    let advanced = false;
    while (this.#next < this.#done.length && this.#done[this.#next]) {
      this.#next++;
      advanced = true;
    }
    if (advanced) this.onContiguous(this.offsets[this.#next - 1] as string);
  }
}

/** How long a refused commit waits before it is tried again, and how many times in a row (see {@link Committer}). */
export const RETRY_REFUSED_MS = 250;
export const RETRY_REFUSED_TIMES = 8;

/** What a {@link Committer} is told to do besides committing. */
export interface CommitterOptions {
  /** Hears of each commit a rebalance refused, with the offsets it named (the last finished records'). */
  readonly onRefused?: (error: unknown, offsets: FinishedOffsets) => void;
  /** Hears of each commit that failed otherwise (thrown by the next flush too); `retrying`: it is tried again. */
  readonly onFailed?: (error: unknown, offsets: FinishedOffsets, retrying: boolean) => void;
  /** Checks that a resolved commit was stored (the Confluent client: see `confirmCommitted`). */
  readonly confirm?: (offsets: Array<{ topic: string; partition: number; offset: string }>) => Promise<void>;
  /** Commit refused offsets again, later, holding new records meanwhile (the Confluent client). */
  readonly retryRefused?: boolean;
}

/**
 * Commits offsets as they become final, one request at a time, newest wins. A commit refused
 * because the group is rebalancing (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 * NOT_COORDINATOR …) is not an error, and `onRefused` hears of it. With kafkajs those offsets are
 * dropped: the worker rejoins and the records are fetched again by the partition's owner (this
 * worker's idempotency store skips those it sent itself). The Confluent client does not fetch
 * them again while it keeps the partition, so with `retryRefused` they are committed again
 * (every {@link RETRY_REFUSED_MS}, up to {@link RETRY_REFUSED_TIMES} times in a row) unless a
 * newer offset replaces them or {@link Committer.forget} (the partition was revoked) drops them.
 * Meanwhile {@link Committer.held} tells the worker to start nothing new: a record finished now
 * could not be committed either, and the partition's next owner would send it again. A commit
 * that fails otherwise is said to `onFailed`, thrown by the next {@link Committer.flush} and, with
 * `retryRefused`, tried again the same way.
 */
export class Committer {
  /** Per partition: the last finished record's offset (the commit names the one after it). */
  readonly #pending = new Map<
    string,
    { readonly topic: string; readonly partition: number; offset: string }
  >();
  #running: Promise<void> | undefined;
  #failure: unknown;
  /** How many commits a rebalance refused so far: batches compare it to stop early. */
  refusals = 0;
  /** The error of the last refused commit. */
  lastRefusal: unknown;

  readonly #o: CommitterOptions;

  constructor(
    readonly consumer: KafkaConsumerLike,
    options: CommitterOptions = {},
  ) {
    this.#o = options;
  }

  /** Refused commits in a row (reset by one that is stored, or a group change): bounds `retryRefused`. */
  #refusedInARow = 0;
  /** The next try of refused offsets (`retryRefused`), while it waits. */
  #retryTimer: NodeJS.Timeout | undefined;
  /** Set while refused offsets wait to be tried again: see {@link held}. */
  #hold: { readonly settled: Promise<void>; readonly end: () => void } | undefined;

  /**
   * While a refused commit waits to be tried again (`retryRefused`), a promise that resolves when
   * that is over: the group stored a commit, it changed (partitions revoked or assigned), the
   * retries ran out, or {@link drop}. Undefined otherwise. A record started meanwhile could not be
   * committed either (the group is most likely rebalancing), so the worker starts none.
   */
  get held(): Promise<void> | undefined {
    return this.#hold?.settled;
  }

  /** The group gave this member its partitions: what was refused before belonged to the last generation. */
  assigned(): void {
    this.#settled();
  }

  /** Forgets offsets not yet committed of these partitions (revoked: no longer this member's to commit). */
  forget(assignment: Record<string, number[]>): void {
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) this.#pending.delete(this.keyOf(topic, partition));
    }
    this.#settled();
  }

  /** Forgets offsets not yet committed (the consumer they were for is gone, or the worker is closing). */
  drop(): void {
    this.#pending.clear();
    this.#failure = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#endHold();
  }

  /** A commit was stored or the group changed: refusals count from zero again, and the hold is over. */
  #settled(): void {
    this.#refusedInARow = 0;
    this.#endHold();
  }

  #endHold(): void {
    const hold = this.#hold;
    this.#hold = undefined;
    hold?.end();
  }

  /** The key {@link mark} files a partition's offsets under: made once per batch, not per record. */
  keyOf(topic: string, partition: number): string {
    return `${topic}\u0000${partition}`;
  }

  /** `offset` is the last finished record's; Kafka stores the next one to read. `key` is {@link keyOf}'s. */
  mark(key: string, topic: string, partition: number, offset: string): void {
    const pending = this.#pending.get(key);
    // Not yet taken by a commit: newer offsets of the same partition replace the one waiting.
    if (pending) pending.offset = offset;
    else this.#pending.set(key, { topic, partition, offset });
    if (this.#retryTimer === undefined) this.#start(); // else the retry takes it along
  }

  #start(): void {
    this.#running ??= this.#loop().finally(() => {
      this.#running = undefined;
      // Marked after the loop's last look but before it ended: not left waiting for the next mark.
      if (this.#pending.size > 0 && this.#retryTimer === undefined && this.#failure === undefined) {
        this.#start();
      }
    });
  }

  /**
   * Waits until everything marked so far is committed, or refused (refused offsets that are tried
   * again are tried in the background: not waited for); throws the last commit failure.
   */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      throw failure;
    }
  }

  async #loop(): Promise<void> {
    while (this.#pending.size > 0) {
      const offsets = [...this.#pending.values()];
      this.#pending.clear();
      const next = offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: String(BigInt(o.offset) + 1n),
      }));
      try {
        await this.consumer.commitOffsets(next);
        // Only the Confluent client confirms: kafkajs's commit takes no second turn of the loop.
        if (this.#o.confirm) await this.#o.confirm(next);
        this.#settled();
      } catch (error) {
        if (isRebalanceError(error) || error instanceof CommitNotStoredError) {
          this.refusals++;
          this.lastRefusal = error;
          this.#o.onRefused?.(error, offsets);
          if (this.#o.retryRefused && ++this.#refusedInARow <= RETRY_REFUSED_TIMES) {
            this.#keep(offsets);
            this.#retryLater();
            return;
          }
          this.#endHold(); // out of retries: those offsets are dropped, the worker goes on
          continue;
        }
        this.#keep(offsets);
        this.#failure = error;
        // The Confluent client goes on fetching: hold new records and try again, as for a refusal.
        const retrying = this.#o.retryRefused === true && ++this.#refusedInARow <= RETRY_REFUSED_TIMES;
        this.#o.onFailed?.(error, offsets, retrying);
        if (retrying) this.#retryLater();
        return;
      }
    }
  }

  /** Holds new records and tries the refused offsets again in {@link RETRY_REFUSED_MS}. */
  #retryLater(): void {
    if (!this.#hold) {
      let end!: () => void;
      const settled = new Promise<void>((resolve) => {
        end = resolve;
      });
      this.#hold = { settled, end };
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#pending.size > 0) this.#start();
      else this.#endHold(); // forgotten meanwhile
    }, RETRY_REFUSED_MS);
  }

  /** Re-marks offsets that were not committed, unless a newer one of the partition is marked. */
  #keep(offsets: FinishedOffsets): void {
    for (const o of offsets) {
      const key = this.keyOf(o.topic, o.partition);
      if (!this.#pending.has(key)) this.#pending.set(key, o);
    }
  }
}

/** A counting semaphore: at most `limit` sends in flight across every partition. */
export class Slots {
  readonly #limit: number;
  #free: number;
  readonly #waiters: Array<() => void> = [];

  constructor(limit: number) {
    this.#limit = limit;
    this.#free = limit;
  }

  /** Slots taken now: the sends in flight. */
  get taken(): number {
    return this.#limit - this.#free;
  }

  /** Takes a slot if one is free, without waiting a turn of the event loop. */
  tryAcquire(): boolean {
    if (this.#free === 0) return false;
    this.#free--;
    return true;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}
