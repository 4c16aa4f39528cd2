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
 * The default store: the last `max` keys in memory (least recently used go first). It covers
 * redeliveries after a rebalance or a worker restart within one process; not across processes.
 */
export function memoryIdempotencyStore(options: { max?: number } = {}): IdempotencyStore {
  const max = options.max ?? 10_000;
  if (!Number.isInteger(max) || max < 1)
    throw new TypeError('memoryIdempotencyStore: max must be a positive integer');
  const keys = new Map<string, true>();
  return {
    has(key) {
      if (!keys.has(key)) return false;
      keys.delete(key);
      keys.set(key, true);
      return true;
    },
    add(key) {
      keys.delete(key);
      keys.set(key, true);
      if (keys.size > max) keys.delete(keys.keys().next().value as string);
    },
  };
}
