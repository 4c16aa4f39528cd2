/**
 * Workers sharing a Redis idempotency store (a real redis-server), on librdkafka's mock cluster:
 * what a worker does with a key another worker sent, is sending, or let run out; a failure that
 * sent nothing frees the key; Redis going away stops sending; and three worker processes, one
 * SIGKILLed mid-batch (shared-store-scenario.ts, the same on real Kafka in
 * real-shared-store.test.ts). Each scenario ends with the ledger: lost = 0.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmailWorkerEvents,
  type EmailWorkerOptions,
  isIdempotencyStoreError,
  redisIdempotencyStore,
  workerMetrics,
} from '../../src/kafka/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import {
  FAST_RETRY,
  freshTopics,
  ledger,
  producerFor,
  publishAll,
  readTopic,
  refusingTransport,
  scriptedTransport,
  serviceFor,
  useKafka,
  waitFor,
  workerFor,
} from './harness.js';
import { killOneWorkerMidBatch } from './shared-store-scenario.js';

const ctx = useKafka();
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

/** A Redis client for one test, closed after it; fails fast while the server is away. */
function redisClient(): Redis {
  const client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  ctx.cleanup.push(() => client.disconnect());
  return client;
}

/** A worker on fresh topics with a Redis store on a fresh prefix; `other` is another worker's view of that store. */
async function setup(options: Partial<EmailWorkerOptions> = {}) {
  const topics = await freshTopics(ctx.cluster);
  const prefix = `${topics.groupId}:`;
  const store = redisIdempotencyStore({ client: redisClient(), prefix, timeoutMs: 1_000 });
  const other = redisIdempotencyStore({ client: redisClient(), prefix });
  const transport = scriptedTransport();
  const producer = producerFor(ctx, topics.topic);
  const worker = workerFor(ctx, {
    service: serviceFor(transport),
    ...topics,
    retry: FAST_RETRY,
    idempotencyStore: store,
    ...options,
  });
  const events = {
    held: [] as Array<EmailWorkerEvents['held']>,
    possibleDuplicates: [] as Array<EmailWorkerEvents['possible-duplicate']>,
    paused: [] as Array<EmailWorkerEvents['paused']>,
  };
  worker.on('held', (e) => events.held.push(e));
  worker.on('possible-duplicate', (e) => events.possibleDuplicates.push(e));
  worker.on('paused', (e) => events.paused.push(e));
  return { topics, transport, producer, worker, other, events };
}

describe('mailroom-js/kafka workers sharing a Redis idempotency store', () => {
  it('skips an email another worker already sent (counted as a duplicate avoided)', async () => {
    const { transport, producer, worker, other } = await setup();
    await other.claim('welcome:1', { owner: 'worker-b' });
    await other.markSent('welcome:1', 'worker-b');
    const keys = await publishAll(producer, 0, 3);
    await worker.start();
    await waitFor(() => worker.stats.sent + worker.stats.duplicates === 3, 'all three records');
    expect(worker.stats).toMatchObject({ sent: 2, duplicates: 1, possibleDuplicates: 0 });
    expect(transport.delivered.map((m) => m.idempotencyKey).sort()).toEqual(['welcome:0', 'welcome:2']);
    // Sent once in all: by worker-b, then by this worker for the other two.
    expect(
      ledger(keys, [...transport.delivered, { idempotencyKey: 'welcome:1' } as never], []),
    ).toMatchObject({
      sent: 3,
      duplicated: 0,
      lost: 0,
    });
  });

  it('parks an email another worker is sending until its lease ends, then skips it once that worker marked it sent', async () => {
    const { transport, producer, worker, other, events } = await setup();
    await worker.start();
    await publishAll(producer, 9, 10); // warm-up: the worker holds its partitions before the lease starts
    await waitFor(() => worker.stats.sent === 1, 'the warm-up email');
    await other.claim('welcome:0', { owner: 'worker-b', leaseMs: 2_000 });
    await publishAll(producer, 0, 1);
    await waitFor(() => events.held.length === 1, 'the held event');
    expect(events.held[0]).toMatchObject({ owner: 'worker-b', envelope: { idempotencyKey: 'welcome:0' } });
    expect(await other.markSent('welcome:0', 'worker-b')).toBe('marked'); // worker-b finished its send
    await waitFor(() => worker.stats.duplicates === 1, 'the parked record, skipped as sent');
    expect(worker.stats).toMatchObject({ sent: 1, held: 1, duplicates: 1, possibleDuplicates: 0 });
    expect(transport.delivered.map((m) => m.idempotencyKey)).toEqual(['welcome:9']);
  });

  it('takes over the lease of a worker that died mid-send and reports a possible duplicate', async () => {
    const { transport, producer, worker, other, events } = await setup();
    await other.claim('welcome:0', { owner: 'dead-worker', leaseMs: 1_000 }); // and never comes back
    await publishAll(producer, 0, 1);
    const metrics = await workerMetrics(worker);
    await worker.start();
    await waitFor(() => worker.stats.sent === 1, 'the email, once the dead lease ran out');
    expect(transport.delivered).toHaveLength(1);
    expect(events.possibleDuplicates).toHaveLength(1);
    // What an operator sees: the scrape counts it, by reason.
    const scrape = await metrics.registry.metrics();
    await metrics.close();
    expect(scrape).toMatch(
      /^mailroom_worker_possible_duplicates_total\{[^}]*reason="lease-expired"[^}]*\} 1$/m,
    );
    expect(events.possibleDuplicates[0]).toMatchObject({
      reason: 'lease-expired',
      previousOwner: 'dead-worker',
      envelope: { idempotencyKey: 'welcome:0' },
    });
    expect(worker.stats).toMatchObject({ sent: 1, possibleDuplicates: 1 });
    expect(await other.claim('welcome:0', { owner: 'probe' })).toEqual({ status: 'sent' });
  });

  it('releases the key on a failure that sent nothing: dead-lettered or parked, never held against a retry', async () => {
    const { topics, transport, producer, worker, other } = await setup();
    transport.rules.set('user-0', { code: 'rejected', status: 550, times: 1 });
    transport.rules.set('user-1', { code: 'network', times: 2 }); // parked once, then delivered
    const keys = await publishAll(producer, 0, 2);
    await worker.start();
    await waitFor(
      () => worker.stats.deadLettered === 1 && worker.stats.sent === 1,
      'a dead letter and a send',
    );
    // A plain claim: the rejected email's key was released, not left to run out (no possible duplicate).
    expect(await other.claim('welcome:0', { owner: 'probe' })).toEqual({ status: 'claimed' });
    expect(await other.claim('welcome:1', { owner: 'probe' })).toEqual({ status: 'sent' });
    expect(worker.stats).toMatchObject({ retried: 1, possibleDuplicates: 0, held: 0 });
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(ledger(keys, transport.delivered, dlq)).toMatchObject({ sent: 1, deadLettered: 1, lost: 0 });
  });

  it("keeps the key's lease when an email went to some recipients but the copy for the refused one could not be written: never sent again, by this worker or another", async () => {
    const { topics, producer, other } = await setup();
    const transport = refusingTransport();
    const worker = workerFor(ctx, {
      service: serviceFor(transport),
      ...topics,
      idempotencyStore: redisIdempotencyStore({ client: redisClient(), prefix: `${topics.groupId}:` }),
    });
    const errors: unknown[] = [];
    worker.on('error', ({ error }) => errors.push(error));
    await producer.publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['ann@example.com', 'gone@example.com'],
      idempotencyKey: 'partly:1',
    });
    // MESSAGE_TOO_LARGE (10) to the next two Produce (0) requests: the worker's writes of the copy.
    await ctx.cluster.pushRequestErrors(0, 10, 2);
    await worker.start();
    await waitFor(() => errors.length === 1, 'the first failure to write the copy');
    // Sent to ann; the key is still this worker's lease, not released: another worker parks the record.
    expect(transport.sends).toHaveLength(1);
    expect(await other.claim('partly:1', { owner: 'probe' })).toMatchObject({ status: 'held' });
    await waitFor(
      () => worker.stats.sent === 1,
      'the copy written on the third try, then the email counted sent',
    );
    expect(errors).toHaveLength(2);
    expect(transport.sends).toHaveLength(1);
    expect(await other.claim('partly:1', { owner: 'probe' })).toEqual({ status: 'sent' });
    const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(JSON.parse(dead?.value ?? '{}')).toMatchObject({ to: ['gone@example.com'] });
    expect(worker.stats).toMatchObject({ sent: 1, deadLettered: 1, possibleDuplicates: 0 });
  });

  it('sends nothing while Redis is down: pauses with an IdempotencyStoreError and delivers once it is back', async () => {
    const { transport, producer, worker, events } = await setup({ pauseMs: 500 });
    await worker.start();
    await redis.kill();
    try {
      const keys = await publishAll(producer, 0, 5);
      await waitFor(() => events.paused.length >= 1, 'the pause');
      expect(isIdempotencyStoreError(events.paused[0]?.error)).toBe(true);
      expect(events.paused[0]?.error).toMatchObject({ operation: 'claim' });
      expect(transport.delivered).toHaveLength(0);
      expect(transport.attempts.size).toBe(0); // not one send was tried
      await redis.start();
      await waitFor(() => transport.delivered.length === 5, 'the five emails after Redis came back');
      expect(ledger(keys, transport.delivered, [])).toMatchObject({ sent: 5, duplicated: 0, lost: 0 });
    } finally {
      await redis.start().catch(() => {}); // already up when the test passed
    }
  });

  it('three worker processes, one SIGKILLed mid-batch: duplicates only among its in-flight sends, each reported; lost = 0', async () => {
    // The same scenario as on the real three-node cluster (real-shared-store.test.ts).
    const result = await killOneWorkerMidBatch({
      ...ctx,
      redis,
      workers: 3,
      partitions: 6,
      label: 'mock cluster',
    });
    expect(result).toMatchObject({ lost: 0, deadLettered: 0 });
  }, 240_000);
});
