/**
 * A record the worker cannot write to its retry or dead-letter topic: the topic refuses it as too
 * large (its max.message.bytes below the records the worker reads), or the worker's Kafka user may
 * not write to it. Nothing is lost and nothing is sent twice: the record's partition waits (1 s,
 * then doubling) and fetches it again while the others go on; an email already sent to some
 * recipients is not sent again, only its refused recipients' copies not yet written are, once the
 * topic takes them. Before, the record came back at once in a loop (the Confluent client: the same
 * email sent 146 times in 30 s), or kafkajs's consumer was replaced until the worker stopped. On
 * the mock (request-level faults) and on Apache Kafka itself (topic configs, ACLs).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import {
  createEmailWorker,
  DELAY_TIERS,
  type EmailWorker,
  isKafkaForwardError,
  workerHealth,
  workerMetrics,
} from '../../src/kafka/index.js';
import { type RealKafkaCluster, SASL_USER } from '../helpers/kafka-real.js';
import { clientUnderTestFrom } from './clients.js';
import {
  committedOffsets,
  FAST_CONSUMER,
  FAST_RETRY,
  freshTopics,
  HEADERS,
  type KafkaContext,
  kafkaAcls,
  type LogLine,
  logRecorder,
  producerFor,
  readTopic,
  refusingTransport,
  serviceFor,
  useKafka,
  waitFor,
  withAdmin,
} from './harness.js';

/** Kafka's Produce request, and its MESSAGE_TOO_LARGE error (the mock's fault injection). */
const PRODUCE = 0;
const MESSAGE_TOO_LARGE = 10;

/** Every batch the worker's consumer was handed: topic, partition, how many records, when. */
type Batch = { topic: string; partition: number; size: number; at: number };

/**
 * `client` with every consumer it makes counting the batches it hands to the worker (both clients
 * take `run({ eachBatch })`): how a record that comes back in a loop shows.
 */
function countingClient(client: KafkaClientLike): { client: KafkaClientLike; batches: Batch[] } {
  const batches: Batch[] = [];
  type Run = (config: {
    eachBatch: (payload: { batch: Omit<Batch, 'at' | 'size'> & { messages: unknown[] } }) => Promise<void>;
  }) => Promise<void>;
  const wrapped = new Proxy(client as object, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== 'consumer' || typeof value !== 'function')
        return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => {
        const consumer = value.apply(target, args) as { run: Run };
        const run = consumer.run.bind(consumer);
        consumer.run = (config) =>
          run({
            ...config,
            eachBatch: (payload) => {
              const { topic, partition, messages } = payload.batch;
              batches.push({ topic, partition, size: messages.length, at: Date.now() });
              return config.eachBatch(payload);
            },
          });
        return consumer;
      };
    },
  });
  return { client: wrapped as KafkaClientLike, batches };
}

/** A started worker with its log lines and `error` events; closed after the test. */
async function startWorker(
  ctx: KafkaContext,
  options: Omit<Parameters<typeof createEmailWorker>[0], 'logger' | 'kafka'> & { kafka?: KafkaClientLike },
): Promise<{ worker: EmailWorker; lines: LogLine[]; errors: unknown[]; fatal: unknown[] }> {
  const { lines, logger } = logRecorder();
  const worker = createEmailWorker({ kafka: ctx.client, consumer: FAST_CONSUMER, ...options, logger });
  const errors: unknown[] = [];
  const fatal: unknown[] = [];
  worker.on('error', ({ error }) => errors.push(error));
  worker.on('fatal', ({ error }) => fatal.push(error));
  ctx.cleanup.push(() => worker.close());
  await worker.start();
  return { worker, lines, errors, fatal };
}

const forwardFailures = (lines: LogLine[]) => lines.filter((l) => l.fields.event === 'worker.forward_failed');

describe('one partition waits on a record it cannot forward (mock cluster)', { timeout: 60_000 }, () => {
  const ctx = useKafka();

  it('the other partitions go on, health and metrics show the wait, and close() commits what finished', async () => {
    const topics = await freshTopics(ctx.cluster, 3);
    const producer = producerFor(ctx, topics.topic);
    const transport = refusingTransport();
    const partial = await producer.publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['ann@example.com', 'gone@example.com'],
      idempotencyKey: 'partial:1',
    });
    const others: Array<{ key: string; partition: number }> = [];
    for (let i = 0; i < 15; i++) {
      const receipt = await producer.publish({
        template: 'welcome',
        data: { username: `User ${i}` },
        to: `user-${i}@example.com`,
        idempotencyKey: `other:${i}`,
      });
      others.push({ key: receipt.idempotencyKey, partition: receipt.partition });
    }
    // The worker's Produce requests (its only ones: the copy for gone@) refused, many times over.
    await ctx.cluster.pushRequestErrors(PRODUCE, MESSAGE_TOO_LARGE, 40);
    const { worker, lines } = await startWorker(ctx, {
      service: serviceFor(transport),
      ...topics,
      concurrency: 10,
    });
    const metrics = await workerMetrics(worker);
    ctx.cleanup.push(() => metrics.close());
    const elsewhere = others.filter((o) => o.partition !== partial.partition).map((o) => o.key);
    expect(elsewhere.length).toBeGreaterThan(0);
    const sentKeys = () => new Set(transport.sends.map((m) => m.idempotencyKey));
    await waitFor(
      () => elsewhere.every((key) => sentKeys().has(key)) && forwardFailures(lines).length >= 2,
      'every email of the other partitions sent while the partition waits',
    );
    expect(transport.sends.filter((m) => m.idempotencyKey === 'partial:1')).toHaveLength(1);

    // What an operator sees meanwhile.
    const health = workerHealth(worker);
    expect(health.ready).toBe(true); // the other partitions go on
    expect(health.waiting).toEqual([
      {
        topic: topics.topic,
        partition: partial.partition,
        failuresInARow: expect.any(Number),
        resumeAt: expect.any(String),
        error: expect.objectContaining({ code: 'forward-failed' }),
      },
    ]);
    expect(worker.stats.forwardFailures).toBeGreaterThanOrEqual(2);
    const scrape = await metrics.registry.metrics();
    expect(scrape).toMatch(
      new RegExp(`mailroom_worker_forward_failures_total\\{topic="${topics.deadLetterTopic}"\\} [2-9]`),
    );
    expect(scrape).toContain('mailroom_worker_partitions_waiting 1');

    // close() in the middle of the wait: it returns, and commits the partitions that finished.
    await worker.close();
    expect(lines.some((l) => l.fields.event === 'worker.closed')).toBe(true);
    const committed = await committedOffsets(ctx.kafka, topics.groupId, topics.topic);
    expect(committed.get(partial.partition) ?? 0n).toBeLessThanOrEqual(BigInt(partial.offset));
    const ends = new Map<number, bigint>();
    for (const o of others) ends.set(o.partition, (ends.get(o.partition) ?? 0n) + 1n);
    for (const [partition, count] of ends) {
      if (partition !== partial.partition) expect(committed.get(partition)).toBe(count);
    }
    expect(transport.sends.filter((m) => m.idempotencyKey === 'partial:1')).toHaveLength(1);
  });
});

// Each on a mock cluster of its own: the Produce errors a test injects and does not use up would
// fail the next test's writes.
describe('closing while a partition waits (mock cluster)', { timeout: 60_000 }, () => {
  const ctx = useKafka();

  it('close() while an email sent to some recipients waits for its refused copy: the log names it, as the next owner of its partition sends it again', async () => {
    const topics = await freshTopics(ctx.cluster, 1);
    const transport = refusingTransport();
    const receipt = await producerFor(ctx, topics.topic).publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['ann@example.com', 'gone@example.com'],
      idempotencyKey: 'closing:1',
    });
    await ctx.cluster.pushRequestErrors(PRODUCE, MESSAGE_TOO_LARGE, 5);
    const { worker, lines } = await startWorker(ctx, { service: serviceFor(transport), ...topics });
    await waitFor(() => forwardFailures(lines).length >= 1, 'a failure to write the copy');
    await worker.close();
    const warned = lines.find((l) => l.fields.event === 'worker.unforwarded');
    expect(warned?.level).toBe('warn');
    expect(warned?.fields).toMatchObject({ count: 1, ids: [receipt.id] });
    expect(warned?.msg).toMatch(
      /^closing with 1 email\(s\) sent to some recipients whose refused recipients' copies could not be written: their records are not committed, and the next owner of their partitions sends them again/,
    );
    expect(transport.sends).toHaveLength(1);
    expect((await committedOffsets(ctx.kafka, topics.groupId, topics.topic)).get(0) ?? 0n).toBe(0n);
  });
});

describe('a delay topic that refuses a record (mock cluster)', { timeout: 60_000 }, () => {
  const ctx = useKafka();

  it('a record not yet due waits on its partition, then moves to its delay tier once taken: nothing sent early, nothing lost', async () => {
    const topics = await freshTopics(ctx.cluster, 1);
    const delayTopicPrefix = `${topics.topic}.delay`;
    for (const { suffix } of DELAY_TIERS) await ctx.cluster.createTopic(`${delayTopicPrefix}.${suffix}`, 1);
    const transport = refusingTransport();
    const dueAt = new Date(Date.now() + 90 * 60_000);
    await producerFor(ctx, topics.topic).publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: 'ann@example.com',
      idempotencyKey: 'due-later:1',
      sendAt: dueAt,
    });
    // MESSAGE_TOO_LARGE to the worker's first two Produce requests: its writes to the 1-hour tier.
    await ctx.cluster.pushRequestErrors(PRODUCE, MESSAGE_TOO_LARGE, 2);
    const { worker, lines, errors } = await startWorker(ctx, {
      service: serviceFor(transport),
      ...topics,
      delayTopics: true,
    });
    await waitFor(() => worker.stats.delayed === 1, 'the record moved to its delay tier on the third try');
    expect(forwardFailures(lines).map((l) => l.fields.retryInMs)).toEqual([1_000, 2_000]);
    expect(errors.map((e) => isKafkaForwardError(e) && e.topic)).toEqual([
      `${delayTopicPrefix}.1h`,
      `${delayTopicPrefix}.1h`,
    ]);
    const [parked] = await readTopic(ctx.kafka, `${delayTopicPrefix}.1h`, 1);
    expect(Number(parked?.headers[HEADERS.dueAt])).toBe(dueAt.getTime());
    expect(transport.sends).toHaveLength(0);
    expect(worker.stats).toMatchObject({ delayed: 1, forwardFailures: 2, sent: 0, deadLettered: 0 });
  });
});

describe('a systemic pause overlapping a partition wait (mock cluster)', { timeout: 60_000 }, () => {
  const ctx = useKafka();

  it('keeps every partition paused until the systemic pause ends: no batch handed over and dropped in a loop', async () => {
    const topics = await freshTopics(ctx.cluster, 2);
    const producer = producerFor(ctx, topics.topic);
    // One record fails as systemic (the whole worker pauses), another, in flight on another
    // partition, fails as transient a little later and its parking is refused: its partition's
    // wait starts while the worker is paused.
    const transport = refusingTransport(400);
    const landed = new Map<number, string>();
    for (let i = 0; landed.size < 2 && i < 50; i++) {
      const kind = landed.size === 0 ? 'sys' : 'flaky';
      const receipt = await producer.publish({
        template: 'welcome',
        data: { username: 'X' },
        to: `${kind}-${i}@example.com`,
        idempotencyKey: `${kind}:${i}`,
      });
      if (!landed.has(receipt.partition) && ![...landed.values()].some((k) => k.startsWith(kind)))
        landed.set(receipt.partition, kind);
    }
    expect([...landed.values()].sort()).toEqual(['flaky', 'sys']);
    await ctx.cluster.pushRequestErrors(PRODUCE, MESSAGE_TOO_LARGE, 1);
    const { client, batches } = countingClient(ctx.client);
    let pausedAt = 0;
    let resumedAt = 0;
    const { worker } = await startWorker(ctx, {
      kafka: client,
      service: serviceFor(transport),
      ...topics,
      retry: FAST_RETRY,
      pauseMs: 4_000,
      concurrency: 4,
    });
    worker.on('paused', () => {
      pausedAt ||= Date.now();
    });
    worker.on('resumed', () => {
      resumedAt ||= Date.now();
    });
    await waitFor(() => pausedAt > 0, 'the systemic pause');
    transport.systemic = false; // someone fixed the credentials: the worker goes on at the pause's end
    await waitFor(() => resumedAt > 0, 'the systemic pause to end');
    const during = batches.filter(
      (b) => b.topic === topics.topic && b.at > pausedAt + 500 && b.at < resumedAt,
    );
    console.info(`batches of ${topics.topic} handed over while the worker was paused: ${during.length}`);
    expect(during.length).toBeLessThan(10);
    // And no partition is left paused: the record whose parking was refused is parked in the end.
    await waitFor(() => worker.stats.retried >= 1, 'the refused record parked once the retry topic takes it');
  });
});

/**
 * Fresh topics of one partition on `ctx`, the dead-letter topic taking records of at most
 * `dlqBytes` (the broker's default when undefined); `widen()` raises that to 100 000.
 */
async function smallDeadLetterTopics(ctx: KafkaContext, dlqBytes?: number) {
  const topic = `mail-${randomUUID().slice(0, 8)}`;
  const topics = {
    topic,
    retryTopic: `${topic}.retry`,
    deadLetterTopic: `${topic}.dlq`,
    groupId: `group-${randomUUID().slice(0, 8)}`,
  };
  await withAdmin(ctx.kafka, (admin) =>
    admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.topic, numPartitions: 1 },
        { topic: topics.retryTopic, numPartitions: 1 },
        {
          topic: topics.deadLetterTopic,
          numPartitions: 1,
          configEntries:
            dlqBytes === undefined ? [] : [{ name: 'max.message.bytes', value: String(dlqBytes) }],
        },
      ],
    }),
  );
  /** The dead-letter topic takes records of up to 100 000 bytes from now on. */
  const widen = () =>
    withAdmin(ctx.kafka, (admin) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2,
            name: topics.deadLetterTopic,
            configEntries: [{ name: 'max.message.bytes', value: '100000' }],
          },
        ],
      }),
    );
  return { topics, widen };
}

describe('a record the worker cannot forward, on a real Kafka broker', { timeout: 60_000 }, () => {
  const ctx = useKafka({ real: { nodes: 1, authorize: true } });

  it('the deferred copy is written to the retry topic once, not again at every try', async () => {
    const { topics, widen } = await smallDeadLetterTopics(ctx, 400);
    const transport = refusingTransport();
    const { worker, lines } = await startWorker(ctx, {
      service: serviceFor(transport),
      ...topics,
      // The deferred copy comes back late: only what the failing record writes is counted.
      retry: { ...FAST_RETRY, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    await producerFor(ctx, topics.topic).publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['ann@example.com', 'later@example.com', 'gone@example.com'],
      idempotencyKey: 'two-copies:1',
    });
    await waitFor(() => forwardFailures(lines).length >= 3, 'three failures to write the rejected copy');
    await widen();
    await waitFor(() => worker.stats.sent === 1, 'the email counted sent once its copies were written');
    const parked = await readTopic(ctx.kafka, topics.retryTopic, 10, 3_000);
    console.info(
      `deferred copies on the retry topic after ${forwardFailures(lines).length} failed tries: ${parked.length}`,
    );
    expect(transport.sends).toHaveLength(1);
    expect(parked.map((r) => JSON.parse(r.value).to)).toEqual([['later@example.com']]);
    expect(worker.stats).toMatchObject({ sent: 1, retried: 1, deadLettered: 1 });
  });

  it('nobody accepted (one deferred, one rejected): the deferred recipient gets the email once, from its copy, not again from the original', async () => {
    const { topics, widen } = await smallDeadLetterTopics(ctx, 400);
    const transport = refusingTransport();
    const { worker, lines } = await startWorker(ctx, {
      service: serviceFor(transport),
      ...topics,
      retry: FAST_RETRY, // the deferred copy comes back within 400 ms, while the original waits
    });
    await producerFor(ctx, topics.topic).publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['later@example.com', 'gone@example.com'],
      idempotencyKey: 'none-accepted:1',
    });
    await waitFor(
      () => forwardFailures(lines).length >= 3 && transport.accepted.includes('later@example.com'),
      'the deferred copy sent, and three failures to write the rejected copy',
    );
    await widen();
    await waitFor(() => worker.stats.deadLettered >= 1, 'the rejected copy written');
    const toLater = transport.accepted.filter((a) => a === 'later@example.com').length;
    console.info(`later@example.com accepted ${toLater} time(s); stats ${JSON.stringify(worker.stats)}`);
    expect(toLater).toBe(1);
    // Sent once: the deferred copy. The original, which nobody accepted, is not counted sent.
    expect(worker.stats).toMatchObject({ sent: 1, retried: 1, deadLettered: 1, possibleDuplicates: 0 });
  });

  it("a dead-letter topic that takes smaller records than the worker's: the partition waits and tries again, doubling; the email is sent once, and its refused recipient's copy is written once the topic takes it", async () => {
    // 400 bytes: the email's own record fits its topic; the copy for the refused recipient, with
    // the server's reply and the worker's headers, does not fit the dead-letter topic.
    const { topics, widen } = await smallDeadLetterTopics(ctx, 400);
    const transport = refusingTransport();
    const { worker, lines, errors, fatal } = await startWorker(ctx, {
      kafka: ctx.client,
      service: serviceFor(transport),
      ...topics,
    });
    await producerFor(ctx, topics.topic).publish({
      template: 'welcome',
      data: { username: 'Ann' },
      to: ['ann@example.com', 'gone@example.com'],
      idempotencyKey: 'too-large:1',
    });
    await waitFor(() => forwardFailures(lines).length >= 3, 'three failures to forward', 20_000);
    // Sent once: the record came back twice, and only the copy was tried again.
    expect(transport.sends).toHaveLength(1);
    const failures = forwardFailures(lines).slice(0, 3);
    expect(failures.map((l) => [l.fields.failuresInARow, l.fields.retryInMs])).toEqual([
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
    ]);
    expect(failures[0]?.fields).toMatchObject({ topic: topics.topic, partition: 0 });
    expect(failures[0]?.msg).toBe(
      `could not write a record to the retry, delay or dead-letter topic: partition ${topics.topic}[0] waits 1000 ms, then fetches it again`,
    );
    const [error] = errors;
    expect(isKafkaForwardError(error)).toBe(true);
    expect(error).toMatchObject({ topic: topics.deadLetterTopic, code: 'MESSAGE_TOO_LARGE' });
    const bytes = (error as { bytes: number }).bytes;
    expect(bytes).toBeGreaterThan(400);
    expect((error as Error).message).toBe(
      `Kafka refused a record of ${bytes} bytes for ${topics.deadLetterTopic} as too large: raise that topic's max.message.bytes (and the broker's message.max.bytes when it is lower) above the largest record the worker consumes plus 10 KiB for the headers it adds`,
    );
    expect(failures[0]?.fields.error).toEqual({ code: 'forward-failed', message: (error as Error).message });
    expect(worker.stats).toMatchObject({ sent: 0, deadLettered: 0, restarts: 0 });

    await widen();
    await waitFor(() => worker.stats.sent === 1, 'the email counted sent once its copy was written', 20_000);
    const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(JSON.parse(dead?.value ?? '{}')).toMatchObject({ to: ['gone@example.com'] });
    expect(dead?.headers).toMatchObject({
      [HEADERS.reason]: 'recipients-rejected',
      [HEADERS.narrowed]: 'rejected',
    });
    expect(worker.stats).toMatchObject({ sent: 1, deadLettered: 1, duplicates: 0, possibleDuplicates: 0 });
    expect(transport.sends).toHaveLength(1);
    expect(transport.sends[0]?.to.map((a) => a.address)).toEqual(['ann@example.com', 'gone@example.com']);
    expect(fatal).toEqual([]);
  });

  it('a Kafka user without WRITE on the dead-letter topic: the log says to grant it, nothing is sent, and the record is dead-lettered once granted', async () => {
    const { topics } = await smallDeadLetterTopics(ctx);
    const { grant, grantAllButWrite, operations } = kafkaAcls(ctx);
    // WRITE on the topics it consumes (so its idempotent producer has an id, KIP-679), not on the dead-letter topic.
    await grantAllButWrite([topics.topic, topics.retryTopic, topics.deadLetterTopic], topics.groupId);
    await grant([topics.topic, topics.retryTopic], [operations.WRITE]);
    const transport = refusingTransport();
    const sasl = clientUnderTestFrom({
      brokers: [...((ctx.cluster as RealKafkaCluster).saslBrokers ?? [])],
      clientId: 'mailroom-test',
      sasl: SASL_USER,
    });
    const { worker, lines, errors, fatal } = await startWorker(ctx, {
      kafka: sasl,
      service: serviceFor(transport),
      ...topics,
    });
    // No such template: dead-lettered without a send.
    await producerFor(ctx, topics.topic).publish({
      template: 'no-such-template',
      data: {},
      to: 'jane@example.com',
      idempotencyKey: 'no-write:1',
    } as never);
    await waitFor(() => forwardFailures(lines).length >= 2, 'two failures to forward', 30_000);
    expect(isKafkaForwardError(errors[0])).toBe(true);
    expect(errors[0]).toMatchObject({ topic: topics.deadLetterTopic, code: 'TOPIC_AUTHORIZATION_FAILED' });
    expect((errors[0] as Error).message).toBe(
      `the Kafka user may not write to ${topics.deadLetterTopic} (no WRITE on it): grant WRITE on the retry, delay and dead-letter topics`,
    );
    expect(transport.sends).toHaveLength(0);

    await grant([topics.deadLetterTopic], [operations.WRITE]);
    await waitFor(() => worker.stats.deadLettered === 1, 'the record dead-lettered once allowed', 40_000);
    const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(dead?.headers).toMatchObject({ [HEADERS.reason]: 'unknown-template' });
    expect(transport.sends).toHaveLength(0);
    expect(fatal).toEqual([]);
  });
});
