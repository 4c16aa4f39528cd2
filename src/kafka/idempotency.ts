/**
 * Which emails were sent, and which are being sent right now, so a redelivered record is not sent
 * twice. Kafka delivers at least once: a record a worker sent but did not commit (it died, or its
 * partitions moved in a rebalance) comes again, maybe to another worker. Before sending, the
 * worker claims the record's key with a lease; after the transport accepted it, it marks the key
 * sent; on a failure that sent nothing, it releases the key.
 */

/**
 * What {@link IdempotencyStore.claim} found:
 * - `claimed`: the key is yours until the lease ends: send, then `markSent` or `release`. With
 *   `expiredLeaseOf`, you took over another owner's lease that ran out (its worker died or
 *   stalled): it may have sent the email already, so sending it is a **possible duplicate** (the
 *   worker counts and reports it).
 * - `sent`: already sent: skip it.
 * - `held`: another owner holds a live lease (it is sending the email now) until `until` (ms since
 *   the epoch, by the store's clock): do not send now; look again after `until`.
 */
export type ClaimResult =
  | { readonly status: 'claimed'; readonly expiredLeaseOf?: string }
  | { readonly status: 'sent' }
  | { readonly status: 'held'; readonly owner: string; readonly until: number };

/**
 * What {@link IdempotencyStore.markSent} found: `marked` when the caller still held the lease;
 * `lease-lost` when its lease had run out (another owner may have taken it over and sent the email
 * too: a possible duplicate). The key is marked sent either way: the email did go out.
 */
export type MarkResult = 'marked' | 'lease-lost';

/** The arguments of {@link IdempotencyStore.claim}. */
export interface ClaimOptions {
  /** Who claims: unique per running worker (the worker uses `host:pid:random`). */
  readonly owner: string;
  /**
   * How long the claim holds before another owner may take it over (ms). Default: the store's
   * (`leaseMs` of the store's options; 120 000). It must outlast a send with its in-process retries.
   */
  readonly leaseMs?: number;
}

/** The lease of a store made without `leaseMs` (ms): two minutes, beyond a send with its in-process retries. */
export const DEFAULT_LEASE_MS = 120_000;

/**
 * Claims, sent marks and releases of idempotency keys, shared by every worker that uses the same
 * store. Methods may return a value or a promise; a rejection means the store could not answer
 * (the worker then sends nothing and pauses, see `IdempotencyStoreError`).
 *
 * Guarantees a store must keep, per key: at most one owner holds a live lease at a time (claim is
 * atomic); `release` and a lease's renewal act only for the owner holding it; a sent mark wins
 * over any lease and is kept for the store's retention window; a lease that ran out is taken over
 * with `expiredLeaseOf`, never silently. See `memoryIdempotencyStore` (one process) and
 * `redisIdempotencyStore` (many processes and machines).
 *
 * @example The claim of a store on a PostgreSQL table (`pg`; the README has the whole store):
 * ```ts
 * // CREATE TABLE mail_keys (key text PRIMARY KEY, state text NOT NULL, owner text NOT NULL, until timestamptz NOT NULL);
 * async claim(key, { owner, leaseMs = 120_000 }) {
 *   return inTransaction(async (db) => {
 *     const lease = [key, owner, leaseMs];
 *     const fresh = await db.query(
 *       `INSERT INTO mail_keys VALUES ($1, 'lease', $2, now() + $3 * interval '1 ms') ON CONFLICT DO NOTHING`, lease);
 *     if (fresh.rowCount === 1) return { status: 'claimed' };
 *     const { rows: [row] } = await db.query(
 *       `SELECT state, owner, until > now() AS live, extract(epoch FROM until) * 1000 AS until_ms
 *          FROM mail_keys WHERE key = $1 FOR UPDATE`, [key]); // waits for a racing claim: one wins
 *     if (row.state === 'sent') return { status: 'sent' };
 *     if (row.live && row.owner !== owner) return { status: 'held', owner: row.owner, until: Number(row.until_ms) };
 *     await db.query(`UPDATE mail_keys SET owner = $2, until = now() + $3 * interval '1 ms' WHERE key = $1`, lease);
 *     return row.owner === owner ? { status: 'claimed' } : { status: 'claimed', expiredLeaseOf: row.owner };
 *   });
 * }
 * ```
 */
export interface IdempotencyStore {
  /** For error messages and log lines: `memory`, `redis` … Default `custom`. */
  readonly name?: string;
  /** Claims `key` for `owner` for `leaseMs`; the same owner claiming again renews its lease. */
  claim(key: string, options: ClaimOptions): ClaimResult | Promise<ClaimResult>;
  /** Records that the email of `key` was sent (after the transport accepted it). */
  markSent(key: string, owner: string): MarkResult | Promise<MarkResult>;
  /** Gives `key` up after a failure that sent nothing; does nothing unless `owner` holds the lease. */
  release(key: string, owner: string): void | Promise<void>;
}

/**
 * The store of mailroom 0.1: only "was it sent?" and "it was sent". Still accepted by the worker
 * (through {@link fromSentKeyStore}): it keeps its old guarantee (no duplicates from redeliveries
 * of what it remembers) but has no leases, so two processes can send the same email at once.
 * Migrate to {@link IdempotencyStore} to share a store between workers.
 */
export interface SentKeyStore {
  has(key: string): boolean | Promise<boolean>;
  add(key: string): void | Promise<void>;
}

const STORE_ERROR = Symbol.for('mailroom.idempotency-store-error');

/**
 * The idempotency store could not answer (Redis unreachable, a timeout, a script error). The
 * worker does not send without an answer: it holds the record and pauses consumption like on a
 * systemic delivery failure. `code` is the cause's (`ECONNREFUSED`, `timeout` …) when it has one.
 */
export class IdempotencyStoreError extends Error {
  override readonly name = 'IdempotencyStoreError';
  /** What was asked. */
  readonly operation: 'claim' | 'markSent' | 'release';
  readonly code: string | undefined;

  constructor(operation: 'claim' | 'markSent' | 'release', store: string, cause: unknown) {
    const reason = (cause as Error)?.message ?? String(cause);
    super(`the idempotency store (${store}) could not ${operation}: ${reason.split('\n')[0]}`, { cause });
    Object.defineProperty(this, STORE_ERROR, { value: true });
    this.operation = operation;
    const code = (cause as { code?: unknown })?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/** True when `err` is an {@link IdempotencyStoreError} (also across two copies of the package). */
export function isIdempotencyStoreError(err: unknown): err is IdempotencyStoreError {
  return typeof err === 'object' && err !== null && STORE_ERROR in err;
}

/**
 * The default store: one process's memory. Leases work between workers in the same process; sent
 * keys are the last `max` (two generations of `max / 2`: when the newer fills up, the older is
 * dropped, in constant time). It covers redeliveries after a rebalance or a restart of the
 * consumer within one process; not across processes (use `redisIdempotencyStore`).
 *
 * @example
 * ```ts
 * createEmailWorker({ kafka, service, idempotencyStore: memoryIdempotencyStore({ max: 50_000 }) });
 * ```
 */
export function memoryIdempotencyStore(options: { max?: number; leaseMs?: number } = {}): IdempotencyStore {
  const max = options.max ?? 10_000;
  if (!Number.isInteger(max) || max < 2)
    throw new TypeError('memoryIdempotencyStore: max must be an integer of at least 2');
  const leaseMs = positiveMs(options.leaseMs ?? DEFAULT_LEASE_MS, 'memoryIdempotencyStore', 'leaseMs');
  const half = Math.floor(max / 2);
  let recent = new Set<string>();
  let older = new Set<string>();
  const leases = leaseTable(leaseMs);
  const remember = (key: string) => {
    recent.add(key);
    if (recent.size >= half) {
      older = recent;
      recent = new Set();
    }
  };
  const wasSent = (key: string) => {
    if (recent.has(key)) return true;
    if (!older.has(key)) return false;
    remember(key); // seen again: keep it in the newer generation
    return true;
  };
  return {
    name: 'memory',
    claim: (key, claim) => (wasSent(key) ? SENT : leases.claim(key, claim)),
    markSent(key, owner) {
      const mine = leases.end(key, owner);
      remember(key);
      return mine ? 'marked' : 'lease-lost';
    },
    release: (key, owner) => void leases.release(key, owner),
  };
}

/**
 * Adapts a {@link SentKeyStore} (`has`/`add`) to {@link IdempotencyStore}, with leases in this
 * process's memory: within one process it behaves as before, across processes it cannot tell that
 * another worker is sending an email right now. The worker applies it to a store without `claim`.
 */
export function fromSentKeyStore(store: SentKeyStore, options: { leaseMs?: number } = {}): IdempotencyStore {
  const leases = leaseTable(positiveMs(options.leaseMs ?? DEFAULT_LEASE_MS, 'fromSentKeyStore', 'leaseMs'));
  return {
    async claim(key, claim) {
      return (await store.has(key)) ? SENT : leases.claim(key, claim);
    },
    async markSent(key, owner) {
      await store.add(key);
      return leases.end(key, owner) ? 'marked' : 'lease-lost';
    },
    release: (key, owner) => void leases.release(key, owner),
  };
}

/** The answers every claim shares (frozen: a store answers once per record, and a caller cannot change them). */
const CLAIMED: ClaimResult = Object.freeze({ status: 'claimed' });
const SENT: ClaimResult = Object.freeze({ status: 'sent' });

/** Leases in memory; one leaves when it is marked sent or released, so the table holds what is in flight. */
function leaseTable(defaultLeaseMs: number) {
  const leases = new Map<string, { owner: string; until: number }>();
  return {
    claim(key: string, { owner, leaseMs = defaultLeaseMs }: ClaimOptions): ClaimResult {
      const now = Date.now();
      const lease = leases.get(key);
      if (lease && lease.owner !== owner && lease.until > now)
        return { status: 'held', owner: lease.owner, until: lease.until };
      leases.set(key, { owner, until: now + leaseMs });
      return !lease || lease.owner === owner ? CLAIMED : { status: 'claimed', expiredLeaseOf: lease.owner };
    },
    /** Ends the lease on `key` (whoever holds it: the email was sent); true when `owner` held it, live. */
    end(key: string, owner: string): boolean {
      const lease = leases.get(key);
      leases.delete(key);
      return lease?.owner === owner && lease.until >= Date.now();
    },
    release(key: string, owner: string): boolean {
      if (leases.get(key)?.owner !== owner) return false;
      return leases.delete(key);
    },
  };
}

/** A whole, positive number of milliseconds, or a TypeError naming the option. */
export function positiveMs(value: unknown, factory: string, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new TypeError(`${factory}: ${name} must be a positive whole number of milliseconds`);
  return value;
}

/** The store the worker uses: an {@link IdempotencyStore}, or a {@link SentKeyStore} adapted. */
export function resolveStore(store: IdempotencyStore | SentKeyStore | undefined): IdempotencyStore {
  if (store === undefined) return memoryIdempotencyStore();
  if (typeof (store as IdempotencyStore).claim === 'function') {
    const s = store as IdempotencyStore;
    if (typeof s.markSent !== 'function' || typeof s.release !== 'function')
      throw new TypeError('createEmailWorker: idempotencyStore must have claim, markSent and release');
    return s;
  }
  const legacy = store as SentKeyStore;
  if (typeof legacy.has === 'function' && typeof legacy.add === 'function') return fromSentKeyStore(legacy);
  throw new TypeError(
    'createEmailWorker: idempotencyStore must have claim, markSent and release (or has and add)',
  );
}
