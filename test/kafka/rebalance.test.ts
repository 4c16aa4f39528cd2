/**
 * The worker through rebalances: commits refused because the group is rebalancing, workers
 * joining and leaving a group under load. Every scenario ends with the ledger (lost = 0) and a
 * check that every worker still open keeps consuming.
 */
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createEmailProducer, createEmailWorker, type EmailProducer } from '../../src/kafka/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import {
  FAST_CONSUMER,
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

/** Kafka's API key of OffsetCommit and the error codes a rebalance answers it with. */
const OFFSET_COMMIT = 8;
const REBALANCE_IN_PROGRESS = 27;
const ILLEGAL_GENERATION = 22;
const UNKNOWN_MEMBER_ID = 25;
/** Kafka's API key of JoinGroup, and an error no rejoin cures. */
const JOIN_GROUP = 11;
const GROUP_AUTHORIZATION_FAILED = 30;

const email = (i: number) => ({
  subject: `Receipt ${i}`,
  text: 'Thanks',
  to: `buyer-${i}@example.com`,
  idempotencyKey: `receipt:${i}`,
});

async function publishAll(producer: EmailProducer, from: number, to: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = from; i < to; i++) keys.push((await producer.publish(email(i))).idempotencyKey);
  return keys;
}

function producerFor(topic: string) {
  const producer = createEmailProducer({ kafka, topic });
  cleanup.push(() => producer.disconnect());
  return producer;
}

const keysOf = (messages: ReadonlyArray<{ idempotencyKey?: string | undefined }>) =>
  new Set(messages.map((m) => m.idempotencyKey));

/** A worker on fresh topics, sending through a scripted transport, started; and a producer. */
async function startedWorker() {
  const topics = await freshTopics(cluster, 3);
  const transport = scriptedTransport();
  const worker = createEmailWorker({
    kafka,
    service: serviceFor(transport),
    ...topics,
    consumer: FAST_CONSUMER,
  });
  cleanup.push(() => worker.close());
  const producer = producerFor(topics.topic);
  await worker.start();
  return { topics, transport, worker, producer };
}

describe('mailroom-js/kafka worker through rebalances', { timeout: 90_000 }, () => {
  for (const [name, code] of [
    ['REBALANCE_IN_PROGRESS', REBALANCE_IN_PROGRESS],
    ['ILLEGAL_GENERATION', ILLEGAL_GENERATION],
    ['UNKNOWN_MEMBER_ID', UNKNOWN_MEMBER_ID],
  ] as const) {
    it(`keeps consuming after a commit refused with ${name}`, async () => {
      const { transport, worker, producer } = await startedWorker();
      const fatal: unknown[] = [];
      worker.on('fatal', ({ error }) => fatal.push(error));
      const first = await publishAll(producer, 0, 10);
      await waitFor(() => keysOf(transport.delivered).size === 10, 'the first ten');
      // The next commit is refused as in a rebalance: the worker rejoins its group and goes on.
      await cluster.pushRequestErrors(OFFSET_COMMIT, code, 1);
      const second = await publishAll(producer, 10, 20);
      await waitFor(
        () => keysOf(transport.delivered).size === 20,
        'the ten after the refused commit',
        40_000,
      );
      // Still consuming afterwards, not merely alive.
      const third = await publishAll(producer, 20, 30);
      await waitFor(() => keysOf(transport.delivered).size === 30, 'ten more after that', 40_000);
      expect(worker.stats.commitsRefused).toBe(1);
      expect(fatal).toEqual([]);
      const result = ledger([...first, ...second, ...third], transport.delivered, []);
      expect(result).toMatchObject({ published: 30, sent: 30, lost: 0 });
      // Redelivered records of refused commits are caught by the idempotency store, not re-sent.
      expect(result.duplicated).toBe(0);
    });
  }

  it('loses nothing while workers join and leave a group under load', async () => {
    const topics = await freshTopics(cluster, 6);
    const producer = producerFor(topics.topic);
    const transports = [scriptedTransport(), scriptedTransport(), scriptedTransport()];
    for (const t of transports) t.setDelay(15);
    const fatal: unknown[] = [];
    const workerFor = (i: number) => {
      const worker = createEmailWorker({
        kafka,
        service: serviceFor(transports[i] as ReturnType<typeof scriptedTransport>),
        ...topics,
        concurrency: 4,
        consumer: FAST_CONSUMER,
      });
      worker.on('fatal', ({ error }) => fatal.push(error));
      cleanup.push(() => worker.close());
      return worker;
    };
    const delivered = () => transports.flatMap((t) => t.delivered);
    const [a, b, c] = [workerFor(0), workerFor(1), workerFor(2)];
    await Promise.all([a.start(), b.start()]);
    const keys = await publishAll(producer, 0, 150);
    await waitFor(() => delivered().length >= 30, 'the first deliveries', 30_000);
    // A third worker joins mid-run: the group rebalances while the other two commit.
    await c.start();
    keys.push(...(await publishAll(producer, 150, 250)));
    await waitFor(() => transports[2]?.delivered.length !== 0, 'the third worker to deliver', 40_000);
    // One of the first two leaves mid-run.
    await a.close();
    keys.push(...(await publishAll(producer, 250, 300)));
    await waitFor(() => keysOf(delivered()).size === 300, 'all 300 delivered', 60_000);
    const dlq = await readTopic(kafka, topics.deadLetterTopic, 0);
    const result = ledger(keys, delivered(), dlq);
    expect(result).toMatchObject({ published: 300, sent: 300, deadLettered: 0, lost: 0 });
    // Duplicates come only from records finished but not committed when a partition moved: a
    // handful per rebalance (a worker that kept processing after a refused commit made ~90 here).
    expect(result.duplicated).toBeLessThan(60);
    expect(fatal).toEqual([]);
    // Neither remaining worker sits idle: after the churn each still delivers from its partitions.
    const before = [transports[1]?.delivered.length ?? 0, transports[2]?.delivered.length ?? 0];
    const more = await publishAll(producer, 300, 360);
    await waitFor(() => keysOf(delivered()).size === 360, 'the 60 published after the churn', 40_000);
    expect(transports[1]?.delivered.length).toBeGreaterThan(before[0] ?? 0);
    expect(transports[2]?.delivered.length).toBeGreaterThan(before[1] ?? 0);
    expect(ledger([...keys, ...more], delivered(), dlq)).toMatchObject({ sent: 360, lost: 0 });
  });

  it('replaces a consumer that kafkajs crashed and will not restart, and goes on', async () => {
    const { transport, worker, producer } = await startedWorker();
    const errors: unknown[] = [];
    worker.on('error', ({ error }) => errors.push(error));
    const first = await publishAll(producer, 0, 10);
    await waitFor(() => keysOf(transport.delivered).size === 10, 'the first ten');
    // A commit fails with an error kafkajs does not retry: its consumer crashes for good.
    await cluster.pushRequestErrors(OFFSET_COMMIT, GROUP_AUTHORIZATION_FAILED, 1);
    const second = await publishAll(producer, 10, 20);
    await waitFor(() => worker.stats.restarts === 1, 'the worker to replace its consumer', 40_000);
    const third = await publishAll(producer, 20, 30);
    await waitFor(() => keysOf(transport.delivered).size === 30, 'everything, after the restart', 40_000);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(ledger([...first, ...second, ...third], transport.delivered, [])).toMatchObject({
      sent: 30,
      duplicated: 0,
      lost: 0,
    });
  });

  it('stops with a fatal error, instead of idling, when the consumer keeps failing', async () => {
    const topics = await freshTopics(cluster, 3);
    const worker = createEmailWorker({
      kafka,
      service: serviceFor(scriptedTransport()),
      ...topics,
      consumer: FAST_CONSUMER,
      maxRestarts: 1,
    });
    cleanup.push(() => worker.close());
    const fatal: unknown[] = [];
    worker.on('fatal', ({ error }) => fatal.push(error));
    // Exactly the joins it makes (the first and one restart), so no refusal is left for other tests.
    await cluster.pushRequestErrors(JOIN_GROUP, GROUP_AUTHORIZATION_FAILED, 2);
    await worker.start();
    const outcome = await worker.untilClosed().then(
      () => 'closed',
      (error: unknown) => error,
    );
    expect(outcome).toMatchObject({ name: expect.stringMatching(/KafkaJS/) });
    expect(fatal).toEqual([outcome]);
    expect(worker.stats.restarts).toBe(1);
  });
});
