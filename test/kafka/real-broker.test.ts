/**
 * The producer and the worker on Apache Kafka itself (KRaft, from test/helpers/kafka-real.ts): a
 * single node, and three nodes with a broker, then a worker process, SIGKILLed mid-run. Each scenario ends with the ledger,
 * lost = 0, as on the mock (resilience.test.ts); the mock stays for request-level fault injection.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kafka, ProducerConfig } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { isEmailError } from '../../src/index.js';
import { createEmailProducer, type EmailProducer, isKafkaTopicMissingError } from '../../src/kafka/index.js';
import { startKafkaCluster } from '../helpers/kafka-cluster.js';
import {
  clientUnderTest,
  email,
  freshTopics,
  freshWorker,
  KAFKA_CLIENT,
  kafkaClient,
  ledger,
  producerFor,
  publishAll,
  readTopic,
  scriptedTransport,
  serviceFor,
  useKafka,
  waitFor,
  withAdmin,
  workerFor,
} from './harness.js';

/**
 * Publishes like an application that outlives a broker failure: a publish that fails retryably
 * (the client's retries ran out while partitions moved to new leaders) is published again with the
 * same idempotency key; a copy that did land is skipped by the worker as a duplicate.
 */
async function publishThrough(
  producer: EmailProducer,
  from: number,
  to: number,
  republished: { count: number },
): Promise<string[]> {
  const keys: string[] = [];
  for (let i = from; i < to; i++) {
    for (let attempt = 1; ; attempt++) {
      try {
        keys.push((await producer.publish(email(i))).idempotencyKey);
        break;
      } catch (error) {
        if (!isEmailError(error) || !error.retryable || attempt === 5) throw error;
        republished.count++;
      }
    }
  }
  return keys;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * The client as a user passes it, recording the config of every producer made from it and the
 * Kafka requests those producers send (kafkajs's instrumentation events).
 */
function recording(kafka: Kafka) {
  const configs: ProducerConfig[] = [];
  const requests: string[] = [];
  const client = new Proxy(kafka, {
    get(target, property) {
      if (property === 'producer') {
        return (config: ProducerConfig = {}) => {
          configs.push(config);
          const producer = target.producer(config);
          producer.on(producer.events.REQUEST, (event) => requests.push(event.payload.apiName));
          return producer;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { client, configs, requests };
}

describe('mailroom-js/kafka on a single real Kafka broker', { timeout: 60_000 }, () => {
  const ctx = useKafka({ real: { nodes: 1 } });

  it('delivers every published email once: lost 0', async () => {
    const { topics, transport, producer, worker } = await freshWorker(ctx);
    const keys = await publishAll(producer, 0, 50);
    await worker.start();
    await waitFor(() => transport.delivered.length >= 50, 'all 50 delivered', 30_000);
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 0);
    expect(ledger(keys, transport.delivered, dlq)).toEqual({
      published: 50,
      sent: 50,
      duplicated: 0,
      deadLettered: 0,
      lost: 0,
    });
  });

  it.runIf(KAFKA_CLIENT === 'kafkajs')(
    'publishes idempotently (acks from all replicas, a producer id) on a real broker, and not on the mock',
    async () => {
      const topics = await freshTopics(ctx.cluster, 1);
      const real = recording(ctx.kafka);
      const producer = createEmailProducer({ kafka: real.client, topic: topics.topic });
      ctx.cleanup.push(() => producer.disconnect());
      await producer.publish(email(1));
      expect(real.configs).toEqual([expect.objectContaining({ idempotent: true, maxInFlightRequests: 1 })]);
      expect(real.requests).toContain('InitProducerId');
      const records = await readTopic(ctx.kafka, topics.topic, 1);
      expect(records).toHaveLength(1);

      // librdkafka's mock names a controller that is none of its brokers: kafkajs's idempotent
      // producer would wait for it forever, so there the producer runs without.
      const mock = await startKafkaCluster({ brokers: 1 });
      ctx.cleanup.push(() => mock.stop());
      await mock.createTopic(topics.topic, 1, 1);
      const onMock = recording(kafkaClient(mock));
      const mockProducer = createEmailProducer({ kafka: onMock.client, topic: topics.topic });
      ctx.cleanup.push(() => mockProducer.disconnect());
      await mockProducer.publish(email(2));
      expect(onMock.configs).toHaveLength(1);
      expect(onMock.configs[0]).not.toHaveProperty('idempotent');
      expect(onMock.requests).not.toContain('InitProducerId');
    },
  );

  it.runIf(KAFKA_CLIENT === 'confluent')(
    'publishes idempotently through the Confluent client on a real broker and on the mock alike (librdkafka asks any broker for its producer id)',
    async () => {
      const topics = await freshTopics(ctx.cluster, 1);
      const mock = await startKafkaCluster({ brokers: 1 });
      ctx.cleanup.push(() => mock.stop());
      await mock.createTopic(topics.topic, 1, 1);
      for (const [where, on, plumbing] of [
        ['real', ctx.client, ctx.kafka],
        ['mock', clientUnderTest(mock.brokers), kafkaClient(mock)],
      ] as const) {
        const configs: object[] = [];
        const recorded = {
          producer: (config: object) => {
            configs.push(config);
            return on.producer(config);
          },
          consumer: (config: object) => on.consumer(config),
        };
        const producer = createEmailProducer({ kafka: recorded, topic: topics.topic });
        ctx.cleanup.push(() => producer.disconnect());
        await producer.publish(email(where === 'real' ? 1 : 2));
        expect(configs, where).toEqual([
          {
            kafkaJS: expect.objectContaining({ idempotent: true, acks: -1 }),
            'message.timeout.ms': 30_000,
          },
        ]);
        expect(await readTopic(plumbing, topics.topic, 1), where).toHaveLength(1);
      }
    },
  );

  it('refuses to start a worker whose topics do not exist (auto-creation off), naming them', async () => {
    const topics = await freshTopics(ctx.cluster, 1);
    const missing = {
      ...topics,
      topic: `${topics.topic}-missing`,
      retryTopic: `${topics.topic}-missing.retry`,
    };
    const errors: Array<{ fields: Record<string, unknown>; msg: string | undefined }> = [];
    const quiet = () => {};
    const worker = workerFor(ctx, {
      service: serviceFor(scriptedTransport()),
      ...missing,
      logger: {
        info: quiet,
        warn: quiet,
        error: (fields, msg) => errors.push({ fields: fields as Record<string, unknown>, msg }),
      },
    });
    const error = await rejection(worker.start());
    expect(isKafkaTopicMissingError(error)).toBe(true);
    expect(error).toMatchObject({ topics: [missing.topic, missing.retryTopic] });
    expect((error as Error).message).toContain(missing.topic);
    // The log line's error field says what happened, as the error does.
    const failed = errors.find((line) => line.fields.event === 'worker.start_failed');
    expect(failed?.fields.error).toEqual({ code: 'topic-missing', message: (error as Error).message });
    // Nothing was created behind the worker's back.
    const existing = await withAdmin(ctx.kafka, (admin) => admin.listTopics());
    expect(existing).not.toContain(missing.topic);
    await expect(worker.untilClosed()).resolves.toBeUndefined();
  });

  it('refuses to start a worker whose dead-letter topic does not exist (auto-creation off): nothing consumed, nothing sent', async () => {
    // Without it, the first record that must be dead-lettered could not be: fetched again and again,
    // its partition stuck behind it. The topics it consumes exist; one record waits on them.
    const topics = await freshTopics(ctx.cluster, 1);
    const deadLetterTopic = `${topics.topic}-missing.dlq`;
    const producer = producerFor(ctx, topics.topic);
    await producer.publish({
      to: 'jane@example.com',
      subject: 'Hi',
      text: 'Hello',
      idempotencyKey: 'dlq-missing:1',
    });
    const transport = scriptedTransport();
    const worker = workerFor(ctx, { service: serviceFor(transport), ...topics, deadLetterTopic });
    const error = await rejection(worker.start());
    expect(isKafkaTopicMissingError(error)).toBe(true);
    expect(error).toMatchObject({ topics: [deadLetterTopic] });
    expect((error as Error).message).toContain(`the Kafka topic ${deadLetterTopic} does not exist`);
    expect(transport.delivered).toHaveLength(0);
    await expect(worker.untilClosed()).resolves.toBeUndefined();
    // The record is still there for a worker that starts with its topics.
    const again = workerFor(ctx, { service: serviceFor(transport), ...topics });
    ctx.cleanup.push(() => again.close());
    await again.start();
    await waitFor(() => transport.delivered.length === 1, 'the record sent by a worker with its topics');
  });

  it('refuses to publish to a topic that does not exist (auto-creation off): a systemic error naming it, nothing created', async () => {
    const topic = `mail-missing-${Date.now()}`;
    const producer = createEmailProducer({ kafka: ctx.client, topic });
    ctx.cleanup.push(() => producer.disconnect());
    const error = await rejection(
      producer.publish({ to: 'jane@example.com', subject: 'Hi', text: 'Hello', idempotencyKey: 'missing:1' }),
    );
    expect(isEmailError(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'config',
      failure: 'systemic',
      retryable: false,
      transport: 'kafka',
    });
    expect((error as Error).message).toContain(`the Kafka topic ${topic} does not exist`);
    expect(isKafkaTopicMissingError((error as Error).cause)).toBe(true);
    const existing = await withAdmin(ctx.kafka, (admin) => admin.listTopics());
    expect(existing).not.toContain(topic);
  });
});

describe('mailroom-js/kafka on a three-node real Kafka cluster', { timeout: 90_000 }, () => {
  const ctx = useKafka({ real: { nodes: 3 } });

  it('loses nothing when a broker is SIGKILLed mid-run and restarted', async () => {
    const { topics, transport, producer, worker } = await freshWorker(ctx, { partitions: 6 });
    await worker.start();
    const keys = await publishAll(producer, 0, 30);
    await waitFor(() => transport.delivered.length >= 10, 'the first deliveries');
    await ctx.cluster.brokerDown(2);
    // Two of three replicas stay in sync: acks=all writes go on once node 2's partitions have new
    // leaders (seconds; longer when node 2 was the active controller and the quorum elects anew).
    const republished = { count: 0 };
    keys.push(...(await publishThrough(producer, 30, 60, republished)));
    await ctx.cluster.brokerUp(2);
    keys.push(...(await publishThrough(producer, 60, 80, republished)));
    await waitFor(
      () => new Set(transport.delivered.map((m) => m.idempotencyKey)).size === 80,
      'all 80 delivered',
      60_000,
    );
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 0);
    const counts = ledger(keys, transport.delivered, dlq);
    console.info(
      'three nodes, one SIGKILLed:',
      counts,
      `publishes repeated after a retryable failure: ${republished.count}`,
    );
    expect(counts).toMatchObject({ published: 80, sent: 80, deadLettered: 0, lost: 0 });
  });

  it('loses nothing when a worker process is SIGKILLed mid-batch; duplicates only among its in-flight', async () => {
    const topics = await freshTopics(ctx.cluster, 3);
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-kill-'));
    ctx.cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const ledgerPath = join(dir, 'sent.txt');
    const concurrency = 5;
    const producer = producerFor(ctx, topics.topic);
    const keys = await publishAll(producer, 0, 150);
    const child = (): ChildProcess => {
      const worker = fileURLToPath(new URL('./worker-child.ts', import.meta.url));
      const args = [
        ctx.cluster.brokers.join(','),
        topics.topic,
        topics.groupId,
        ledgerPath,
        '20',
        String(concurrency),
      ];
      const proc = spawn(process.execPath, ['--import', 'tsx', worker, ...args], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      ctx.cleanup.push(() => {
        proc.kill('SIGKILL');
      });
      return proc;
    };
    const sentKeys = () =>
      existsSync(ledgerPath) ? readFileSync(ledgerPath, 'utf8').split('\n').filter(Boolean) : [];
    const first = child();
    await waitFor(() => sentKeys().length >= 40, 'the first worker to deliver 40', 40_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    expect(sentKeys().length).toBeLessThan(150);
    child();
    await waitFor(() => new Set(sentKeys()).size === 150, 'all 150 after the restart', 60_000);
    const delivered = sentKeys().map((key) => ({ idempotencyKey: key, messageId: key }));
    const counts = ledger(keys, delivered as never, []);
    console.info('three nodes, a worker SIGKILLed:', counts);
    expect(counts).toMatchObject({ published: 150, sent: 150, lost: 0 });
    // What the killed worker had sent but not yet committed comes again; nothing else does.
    expect(counts.duplicated).toBeLessThanOrEqual(2 * concurrency);
  });
});
