/**
 * The idempotency stores: one contract (claim, markSent, release, leases, owners, contention) run
 * against every store — memory, a mailroom 0.1 `has`/`add` store adapted, and Redis on a real
 * redis-server — then what only one of them does (the memory store's bound, Redis's TTLs and
 * prefix, Redis going away).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fromSentKeyStore,
  type IdempotencyStore,
  isIdempotencyStoreError,
  memoryIdempotencyStore,
  redisIdempotencyStore,
} from '../../src/kafka/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { thrown } from '../helpers/thrown.js';

const typeError = (fn: () => unknown) =>
  thrown(fn, (e): e is TypeError => e instanceof TypeError, 'a TypeError');

let redis: RedisServer;
const clients: Redis[] = [];
/** A client of the test Redis that fails fast instead of queueing while the server is away. */
function redisClient(): Redis {
  const client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false });
  client.on('error', () => {}); // reconnects are expected in the going-away tests
  clients.push(client);
  return client;
}
let prefixes = 0;
/** A Redis store on a fresh prefix; `second` is the same store through another connection. */
function redisStores(options: { leaseMs?: number; sentTtlMs?: number; timeoutMs?: number } = {}) {
  const prefix = `test:${++prefixes}:`;
  return {
    prefix,
    store: redisIdempotencyStore({ client: redisClient(), prefix, ...options }),
    second: redisIdempotencyStore({ client: redisClient(), prefix, ...options }),
  };
}

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A mailroom 0.1 store: a Set behind `has`/`add`. */
function legacyStore(keys = new Set<string>()) {
  return { has: (key: string) => keys.has(key), add: (key: string) => void keys.add(key) };
}

/** Each store twice: two views of the same keys (for Redis, two connections; in one process, one object). */
const STORES: Array<[string, () => { store: IdempotencyStore; second: IdempotencyStore }]> = [
  [
    'memoryIdempotencyStore',
    () => {
      const store = memoryIdempotencyStore();
      return { store, second: store };
    },
  ],
  [
    'a has/add store through fromSentKeyStore',
    () => {
      const store = fromSentKeyStore(legacyStore());
      return { store, second: store };
    },
  ],
  ['redisIdempotencyStore', () => redisStores()],
];

describe.each(STORES)('%s (the store contract)', (_name, make) => {
  it('claims a fresh key; another owner finds it held until the lease ends', async () => {
    const { store, second } = make();
    const before = Date.now();
    expect(await store.claim('k', { owner: 'a', leaseMs: 60_000 })).toEqual({ status: 'claimed' });
    const held = await second.claim('k', { owner: 'b', leaseMs: 60_000 });
    expect(held).toMatchObject({ status: 'held', owner: 'a' });
    const until = (held as { until: number }).until;
    expect(until).toBeGreaterThanOrEqual(before + 59_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 61_000);
  });

  it('skips a key marked sent, for every owner', async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'a' });
    expect(await store.markSent('k', 'a')).toBe('marked');
    expect(await second.claim('k', { owner: 'b' })).toEqual({ status: 'sent' });
    expect(await store.claim('k', { owner: 'a' })).toEqual({ status: 'sent' });
  });

  it('frees a released key: the next owner claims it plainly (no possible duplicate)', async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'a' });
    await store.release('k', 'a');
    expect(await second.claim('k', { owner: 'b' })).toEqual({ status: 'claimed' });
  });

  it('renews the lease when the same owner claims again', async () => {
    const { store } = make();
    await store.claim('k', { owner: 'a', leaseMs: 1 });
    await sleep(20);
    expect(await store.claim('k', { owner: 'a', leaseMs: 60_000 })).toEqual({ status: 'claimed' });
  });

  it('reports a lease that ran out as a possible duplicate when another owner takes it over', async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'dead-worker', leaseMs: 1 });
    await sleep(20);
    expect(await second.claim('k', { owner: 'b', leaseMs: 60_000 })).toEqual({
      status: 'claimed',
      expiredLeaseOf: 'dead-worker',
    });
    // The new owner holds it now.
    expect(await store.claim('k', { owner: 'c' })).toMatchObject({ status: 'held', owner: 'b' });
  });

  it("ignores a release by an owner that does not hold the lease (a late worker cannot free another's claim)", async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'a', leaseMs: 1 });
    await sleep(20);
    await second.claim('k', { owner: 'b', leaseMs: 60_000 });
    await store.release('k', 'a'); // a's lease ran out; b's claim stands
    await store.release('k', 'stranger');
    expect(await store.claim('k', { owner: 'c' })).toMatchObject({ status: 'held', owner: 'b' });
  });

  it('marks a key sent by an owner whose lease ran out, and says the lease was lost', async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'a', leaseMs: 1 });
    await sleep(20);
    await second.claim('k', { owner: 'b', leaseMs: 60_000 });
    expect(await store.markSent('k', 'a')).toBe('lease-lost'); // a sent it anyway: it is sent
    expect(await second.claim('k', { owner: 'c' })).toEqual({ status: 'sent' });
    expect(await second.markSent('k', 'b')).toBe('lease-lost'); // b sent it too: both are told
  });

  it('never releases a sent key', async () => {
    const { store, second } = make();
    await store.claim('k', { owner: 'a' });
    await store.markSent('k', 'a');
    await store.release('k', 'a');
    expect(await second.claim('k', { owner: 'b' })).toEqual({ status: 'sent' });
  });

  it('lets exactly one of two owners claim each of 200 keys they race for', async () => {
    const { store, second } = make();
    const keys = Array.from({ length: 200 }, (_, i) => `race-${i}`);
    const results = await Promise.all(
      keys.flatMap((key) => [
        Promise.resolve(store.claim(key, { owner: 'a' })).then((r) => ({ key, owner: 'a', r })),
        Promise.resolve(second.claim(key, { owner: 'b' })).then((r) => ({ key, owner: 'b', r })),
      ]),
    );
    for (const key of keys) {
      const mine = results.filter((x) => x.key === key);
      expect(mine.filter((x) => x.r.status === 'claimed')).toHaveLength(1);
      expect(mine.filter((x) => x.r.status === 'held')).toHaveLength(1);
    }
  });

  it('keeps keys apart: any string is a key of its own', async () => {
    const { store } = make();
    const keys = ['a', 'a ', 'A', 'a\nb', 'ü✓', 'a|b', 'L|9|x', ''.padEnd(500, 'k')];
    for (const key of keys)
      expect(await store.claim(key, { owner: 'o|wner' })).toEqual({ status: 'claimed' });
    await store.markSent('a|b', 'o|wner');
    for (const key of keys.filter((k) => k !== 'a|b'))
      expect(await store.claim(key, { owner: 'other' })).toMatchObject({ status: 'held', owner: 'o|wner' });
  });
});

describe('memoryIdempotencyStore', () => {
  const sent = async (store: IdempotencyStore, key: string) => {
    await store.claim(key, { owner: 'w' });
    await store.markSent(key, 'w');
  };
  const isSent = async (store: IdempotencyStore, key: string) => {
    const claim = await store.claim(key, { owner: 'probe' });
    if (claim.status === 'claimed') await store.release(key, 'probe');
    return claim.status === 'sent';
  };

  it('always remembers the last max/2 sent keys, and never more than max', async () => {
    const store = memoryIdempotencyStore({ max: 100 });
    for (let i = 0; i < 1_000; i++) await sent(store, `k${i}`);
    for (let i = 950; i < 1_000; i++) expect(await isSent(store, `k${i}`)).toBe(true);
    let remembered = 0;
    for (let i = 0; i < 1_000; i++) if (await isSent(store, `k${i}`)) remembered++;
    expect(remembered).toBeLessThanOrEqual(100);
    expect(await isSent(store, 'k0')).toBe(false);
  });

  it('keeps a key it was asked about again', async () => {
    const store = memoryIdempotencyStore({ max: 4 });
    await sent(store, 'a');
    await sent(store, 'b'); // the newer generation is full: a and b become the older one
    expect(await isSent(store, 'a')).toBe(true); // seen again: back in the newer generation
    await sent(store, 'c'); // full again: the generation holding b is dropped
    expect(await isSent(store, 'a')).toBe(true);
    expect(await isSent(store, 'b')).toBe(false);
  });

  it('refuses a max or a lease that is not a positive integer, naming it', () => {
    for (const max of [1, 2.5, 0, -1, 1.5, Number.NaN])
      expect(typeError(() => memoryIdempotencyStore({ max })).message).toEqual(
        expect.stringContaining('max'),
      );
    for (const leaseMs of [0, -5, 1.5, Number.POSITIVE_INFINITY])
      expect(typeError(() => memoryIdempotencyStore({ leaseMs })).message).toEqual(
        expect.stringContaining('leaseMs'),
      );
  });
});

describe('fromSentKeyStore (a mailroom 0.1 has/add store)', () => {
  it('still reads and writes the old store: sent keys are added, added keys are skipped', async () => {
    const keys = new Set(['old-key']);
    const store = fromSentKeyStore(legacyStore(keys));
    expect(await store.claim('old-key', { owner: 'a' })).toEqual({ status: 'sent' });
    await store.claim('new-key', { owner: 'a' });
    await store.markSent('new-key', 'a');
    expect(keys.has('new-key')).toBe(true);
  });
});

describe('redisIdempotencyStore', () => {
  it('keeps a sent key for sentTtlMs, then forgets it (a later redelivery may send again)', async () => {
    const { store, prefix } = redisStores({ sentTtlMs: 300 });
    await store.claim('k', { owner: 'a' });
    await store.markSent('k', 'a');
    const ttl = await redisClient().pttl(`${prefix}k`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    await sleep(400);
    expect(await store.claim('k', { owner: 'b' })).toEqual({ status: 'claimed' });
  });

  it('keeps a lease for leaseMs + sentTtlMs, so a takeover is reported within the window', async () => {
    const { store, prefix } = redisStores({ leaseMs: 1_000, sentTtlMs: 60_000 });
    await store.claim('k', { owner: 'a' });
    const ttl = await redisClient().pttl(`${prefix}k`);
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(61_000);
  });

  it('writes under its prefix only', async () => {
    const { store, prefix } = redisStores();
    await store.claim('k', { owner: 'a' });
    expect(await redisClient().keys(`${prefix}*`)).toEqual([`${prefix}k`]);
  });

  it('refuses a missing client and bad numbers, naming the option', () => {
    expect(typeError(() => redisIdempotencyStore({} as never)).message).toEqual(
      expect.stringContaining('client'),
    );
    for (const name of ['leaseMs', 'sentTtlMs', 'timeoutMs'])
      expect(typeError(() => redisIdempotencyStore({ client: redisClient(), [name]: -1 })).message).toEqual(
        expect.stringContaining(name),
      );
  });

  it('fails with a typed error when Redis goes away, and works again (scripts reloaded) when it is back', async () => {
    const { store } = redisStores({ timeoutMs: 1_000 });
    await store.claim('before', { owner: 'a' });
    await redis.kill();
    try {
      const error = await Promise.resolve(store.claim('k', { owner: 'a' })).catch((e: unknown) => e);
      expect(isIdempotencyStoreError(error)).toBe(true);
      expect(error).toMatchObject({ name: 'IdempotencyStoreError', operation: 'claim' });
      expect((error as Error).message).toContain('redis');
    } finally {
      await redis.start();
    }
    // An empty Redis (no persistence): its script cache is empty too.
    let claim: unknown;
    for (let i = 0; i < 50 && claim === undefined; i++) {
      claim = await Promise.resolve(store.claim('k', { owner: 'a' })).catch(() =>
        sleep(100).then(() => undefined),
      );
    }
    expect(claim).toEqual({ status: 'claimed' });
  });
});
