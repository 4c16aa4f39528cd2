/**
 * Workers sharing a Redis idempotency store (a real redis-server), on librdkafka's mock cluster:
 * what a worker does with a key another worker sent, is sending, or let run out; a failure that
 * sent nothing frees the key; Redis going away stops sending; and two worker processes, one
 * SIGKILLed mid-batch. Each scenario ends with the ledger: lost = 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmailProducer,
  createEmailWorker,
  type EmailProducer,
  type EmailWorkerEvents,
  type EmailWorkerOptions,
  isIdempotencyStoreError,
  redisIdempotencyStore,
  workerMetrics,
} from '../../src/kafka/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import {
  FAST_CONSUMER,
  FAST_RETRY,
  freshTopics,
  ledger,
  readTopic,
  scriptedTransport,
  serviceFor,
  useKafkaCluster,
  waitFor,
} from './harness.js';

let cluster: KafkaCluster;
let kafka: Kafka;
const cleanup = useKafkaCluster((started, client) => {
  cluster = started;
  kafka = client;
});
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
  cleanup.push(() => client.disconnect());
  return client;
}

const email = (i: number) => ({
  template: 'welcome' as const,
  data: { username: `User ${i}` },
  to: `user-${i}@example.com`,
  idempotencyKey: `welcome:${i}`,
});

async function publishAll(producer: EmailProducer, from: number, to: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = from; i < to; i++) keys.push((await producer.publish(email(i))).idempotencyKey);
  return keys;
}

/** A worker on fresh topics with a Redis store on a fresh prefix; `other` is another worker's view of that store. */
async function setup(options: Partial<EmailWorkerOptions> = {}) {
  const topics = await freshTopics(cluster);
  const prefix = `${topics.groupId}:`;
  const store = redisIdempotencyStore({ client: redisClient(), prefix, timeoutMs: 1_000 });
  const other = redisIdempotencyStore({ client: redisClient(), prefix });
  const transport = scriptedTransport();
  const producer = createEmailProducer({ kafka, topic: topics.topic });
  cleanup.push(() => producer.disconnect());
  const worker = createEmailWorker({
    kafka,
    service: serviceFor(transport),
    ...topics,
    consumer: FAST_CONSUMER,
    retry: FAST_RETRY,
    idempotencyStore: store,
    ...options,
  });
  cleanup.push(() => worker.close());
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
    const dlq = await readTopic(kafka, topics.deadLetterTopic, 1);
    expect(ledger(keys, transport.delivered, dlq)).toMatchObject({ sent: 1, deadLettered: 1, lost: 0 });
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

  it('two worker processes, one SIGKILLed mid-batch: duplicates only among its in-flight sends, each reported; lost = 0', async () => {
    const topics = await freshTopics(cluster, 4);
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-shared-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const concurrency = 5;
    // Shorter than the group takes to hand a's partitions to b (a 6 s session, then a rebalance): b
    // takes a's last claims over at once (a longer lease would park them first: the 'held' case above).
    const leaseMs = 3_000;
    const producer = createEmailProducer({ kafka, topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    const child = (name: string): ChildProcess => {
      const proc = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./worker-child.ts', import.meta.url)),
          cluster.brokers.join(','),
          topics.topic,
          topics.groupId,
          join(dir, name),
          '50',
          String(concurrency),
          redis.url,
          String(leaseMs),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      cleanup.push(() => {
        proc.kill('SIGKILL');
      });
      return proc;
    };
    const lines = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    const sentBy = { a: () => lines('a'), b: () => lines('b') };
    const allSent = () => [...sentBy.a(), ...sentBy.b()];
    const a = child('a');
    const b = child('b');
    // Both hold partitions before the load that counts.
    const keys: string[] = [];
    await waitFor(
      () => sentBy.a().length > 0 && sentBy.b().length > 0,
      'both workers delivering',
      40_000,
      async () => {
        keys.push(...(await publishAll(producer, 1_000 + keys.length, 1_000 + keys.length + 8)));
      },
    );
    const load = Array.from({ length: 600 }, (_, i) => email(i));
    keys.push(...(await producer.publishMany(load)).map((receipt) => receipt.idempotencyKey));
    // Mid-batch: a is busy with its share (about 300 at 5 × 50 ms at a time, seconds of work) when it dies.
    const victimAt = sentBy.a().length;
    await waitFor(() => sentBy.a().length >= victimAt + 20, 'worker a to deliver 20 more', 40_000);
    a.kill('SIGKILL');
    await new Promise((resolve) => a.once('exit', resolve));
    await waitFor(() => new Set(allSent()).size === keys.length, 'every email, by b after the kill', 90_000);

    const result = ledger(keys, allSent().map((key) => ({ idempotencyKey: key })) as never, []);
    const events = lines('b.events').map((line) => line.split(' '));
    const possible = events.filter(([kind]) => kind === 'possible-duplicate');
    const duplicatedKeys = [...new Set(allSent().filter((key, i, all) => all.indexOf(key) !== i))];
    const avoided = events.filter(([kind]) => kind === 'duplicate').length;
    const held = events.filter(([kind]) => kind === 'held').length;
    process.stdout.write(
      `shared Redis store, worker a SIGKILLed mid-batch: published ${result.published}, sent ${result.sent}, ` +
        `duplicated ${result.duplicated}, possible duplicates reported ${possible.length}, ` +
        `held then parked ${held}, duplicates avoided ${avoided}, lost ${result.lost}\n`,
    );
    expect(result.lost).toBe(0);
    expect(result.sent).toBe(keys.length);
    // Only what a had claimed and not marked sent was at risk: its in-flight sends, each reported.
    expect(possible.length).toBeGreaterThanOrEqual(1);
    expect(possible.length).toBeLessThanOrEqual(concurrency);
    // Every email that did go out twice was reported, as the takeover of the killed worker's lease.
    for (const key of duplicatedKeys) {
      const report = possible.find(([, k]) => k === key);
      expect(report?.[2]).toContain(`:${a.pid}:`);
    }
    expect(result.duplicated).toBeLessThanOrEqual(possible.length);
    b.kill('SIGTERM');
  }, 150_000);
});
