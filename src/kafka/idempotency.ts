/**
 * Which emails were already sent, so a redelivered record is not sent twice. The worker asks
 * `has` before sending and calls `add` after the transport accepted the email.
 */

/** Remembers idempotency keys of sent emails. Back it with Redis or a table to share it between workers. */
export interface IdempotencyStore {
  has(key: string): boolean | Promise<boolean>;
  add(key: string): void | Promise<void>;
}

/**
 * The default store: recent keys in memory, at most `max` of them. Two generations of `max / 2`
 * keys each: when the newer fills up, the older is dropped (constant time, unlike evicting one by
 * one from a Map). It covers redeliveries after a rebalance or a restart of the consumer within
 * one process; not across processes.
 */
export function memoryIdempotencyStore(options: { max?: number } = {}): IdempotencyStore {
  const max = options.max ?? 10_000;
  if (!Number.isInteger(max) || max < 2)
    throw new TypeError('memoryIdempotencyStore: max must be an integer of at least 2');
  const half = Math.floor(max / 2);
  let recent = new Set<string>();
  let older = new Set<string>();
  const remember = (key: string) => {
    recent.add(key);
    if (recent.size >= half) {
      older = recent;
      recent = new Set();
    }
  };
  return {
    has(key) {
      if (recent.has(key)) return true;
      if (!older.has(key)) return false;
      remember(key); // seen again: keep it in the newer generation
      return true;
    },
    add: remember,
  };
}
