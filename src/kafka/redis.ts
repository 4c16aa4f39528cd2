/**
 * The idempotency store on Redis, shared by every worker that talks to the same Redis. Each call is
 * one Lua script, so a claim is atomic (two workers racing for a key: exactly one claims it), and
 * lease times are read from Redis's clock (`TIME`), not from the workers' clocks. ioredis is not
 * imported here: the caller passes its client, so nobody else pays for loading it.
 */
import { createHash } from 'node:crypto';
import {
  type ClaimResult,
  DEFAULT_LEASE_MS,
  type IdempotencyStore,
  IdempotencyStoreError,
  type MarkResult,
  positiveMs,
} from './idempotency.js';

/** What the store needs of a Redis client: ioredis's `Redis` (or `Cluster`: keys carry no hash tag, one key per script). */
export interface RedisClientLike {
  evalsha(sha1: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/** Options of {@link redisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions {
  /** `new Redis(url)` from ioredis; the store never connects or quits it. */
  client: RedisClientLike;
  /** Prepended to every key. Default `mailroom:idempotency:`. */
  prefix?: string;
  /**
   * How long a claim holds before another worker may take it over (ms). It must outlast a send with
   * its in-process retries: a lease that runs out mid-send lets a second worker send too (reported
   * as a possible duplicate). Default 120 000.
   */
  leaseMs?: number;
  /**
   * How long a sent key is kept (ms), and an expired lease with it (so its takeover is reported).
   * A record redelivered later than that (a consumer group reset to old offsets) is sent again.
   * Default 86 400 000 (24 h).
   */
  sentTtlMs?: number;
  /** How long one call may take before it fails with an `IdempotencyStoreError` (code `timeout`), in ms. Default 5 000. */
  timeoutMs?: number;
}

// Values: `L|<until ms>|<owner>` for a lease, `S|<sent at ms>|<owner>` once sent.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function parse(v)
  local sep = string.find(v, '|', 3, true)
  return string.sub(v, 1, 1), tonumber(string.sub(v, 3, sep - 1)), string.sub(v, sep + 1)
end
`;

/** ARGV: owner, leaseMs, sentTtlMs. Returns {'sent'} | {'held', owner, until} | {'claimed'[, expired owner]}. */
const CLAIM = `${NOW}
local v = redis.call('GET', KEYS[1])
local expired
if v then
  local kind, at, holder = parse(v)
  if kind == 'S' then return {'sent'} end
  if holder ~= ARGV[1] then
    if at > now then return {'held', holder, string.format('%.0f', at)} end
    expired = holder
  end
end
local lease = tonumber(ARGV[2])
redis.call('SET', KEYS[1], 'L|' .. string.format('%.0f', now + lease) .. '|' .. ARGV[1], 'PX', lease + tonumber(ARGV[3]))
if expired then return {'claimed', expired} end
return {'claimed'}`;

/** ARGV: owner, sentTtlMs. Returns 'marked' | 'lease-lost'; a key another owner marked keeps its mark. */
const MARK_SENT = `${NOW}
local v = redis.call('GET', KEYS[1])
if v then
  local kind, at, holder = parse(v)
  if kind == 'S' then
    if holder == ARGV[1] then return 'marked' end
    return 'lease-lost'
  end
  redis.call('SET', KEYS[1], 'S|' .. string.format('%.0f', now) .. '|' .. ARGV[1], 'PX', tonumber(ARGV[2]))
  if holder == ARGV[1] and at >= now then return 'marked' end
  return 'lease-lost'
end
redis.call('SET', KEYS[1], 'S|' .. string.format('%.0f', now) .. '|' .. ARGV[1], 'PX', tonumber(ARGV[2]))
return 'lease-lost'`;

/** ARGV: owner. Deletes the key only when it is this owner's lease. */
const RELEASE = `local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'L|' and string.sub(v, string.find(v, '|', 3, true) + 1) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

/**
 * An idempotency store on Redis (via ioredis), shared by workers on many machines. Guarantees,
 * per key, as long as Redis keeps its data: one live lease at a time; `release` only by the
 * lease's owner; a sent mark for `sentTtlMs`; a lease whose worker died is taken over after
 * `leaseMs` and reported (`expiredLeaseOf`). A Redis that restarts without persistence or fails
 * over to a replica that missed the latest writes forgets keys: their redeliveries may send again.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createEmailWorker, redisIdempotencyStore } from 'mailroom-js/kafka';
 *
 * const redis = new Redis(process.env.REDIS_URL!);
 * const worker = createEmailWorker({
 *   kafka,
 *   service,
 *   idempotencyStore: redisIdempotencyStore({ client: redis }),
 * });
 * worker.on('possible-duplicate', (e) => log.warn(e, 'this email may have gone out twice'));
 * ```
 */
export function redisIdempotencyStore(options: RedisIdempotencyStoreOptions): IdempotencyStore {
  const factory = 'redisIdempotencyStore';
  const client = options?.client;
  if (typeof client?.evalsha !== 'function' || typeof client.eval !== 'function')
    throw new TypeError(`${factory}: client must be a Redis client (ioredis: new Redis(url))`);
  const prefix = options.prefix ?? 'mailroom:idempotency:';
  if (typeof prefix !== 'string') throw new TypeError(`${factory}: prefix must be a string`);
  const leaseMs = positiveMs(options.leaseMs ?? DEFAULT_LEASE_MS, factory, 'leaseMs');
  const sentTtlMs = positiveMs(options.sentTtlMs ?? 86_400_000, factory, 'sentTtlMs');
  const timeoutMs = positiveMs(options.timeoutMs ?? 5_000, factory, 'timeoutMs');

  const run = (
    operation: IdempotencyStoreError['operation'],
    script: Script,
    key: string,
    ...args: Array<string | number>
  ) => withTimeout(operation, timeoutMs, script.run(client, prefix + key, args));

  return {
    name: 'redis',
    async claim(key, claim): Promise<ClaimResult> {
      const lease = positiveMs(claim.leaseMs ?? leaseMs, factory, 'leaseMs');
      const reply = await run('claim', claimScript, key, claim.owner, lease, sentTtlMs);
      const [status, owner, until] = reply as [string, string?, string?];
      if (status === 'sent') return { status: 'sent' };
      if (status === 'held') return { status: 'held', owner: owner ?? '', until: Number(until) };
      return owner === undefined ? { status: 'claimed' } : { status: 'claimed', expiredLeaseOf: owner };
    },
    async markSent(key, owner) {
      return (await run('markSent', markScript, key, owner, sentTtlMs)) as MarkResult;
    },
    async release(key, owner) {
      await run('release', releaseScript, key, owner);
    },
  };
}

/** A Lua script run by its SHA-1, loaded on the first NOSCRIPT (a restarted or new Redis). */
class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClientLike, key: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, 1, key, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, 1, key, ...args);
    }
  }
}

const claimScript = new Script(CLAIM);
const markScript = new Script(MARK_SENT);
const releaseScript = new Script(RELEASE);

/** The call's result, or an `IdempotencyStoreError` when it fails or takes longer than `ms`. */
function withTimeout<T>(
  operation: IdempotencyStoreError['operation'],
  ms: number,
  call: Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const cause = Object.assign(new Error(`no answer within ${ms} ms`), { code: 'timeout' });
      reject(new IdempotencyStoreError(operation, 'redis', cause));
    }, ms);
  });
  return Promise.race([
    call.catch((error) => {
      throw new IdempotencyStoreError(operation, 'redis', error);
    }),
    timeout,
  ]).finally(() => clearTimeout(timer));
}
