/**
 * The worker when things go wrong around it: a broker goes away, a worker is killed, two workers
 * share a group, a worker is shut down under load. Each scenario ends with the ledger: lost = 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

function producerFor(topic: string) {
  const producer = createEmailProducer({ kafka, topic });
  cleanup.push(() => producer.disconnect());
  return producer;
}

describe('mailroom-js/kafka worker under failure', () => {
  it('loses nothing when a broker goes down mid-run and comes back', async () => {
    const topics = await freshTopics(cluster, 6);
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
    const keys = await publishAll(producer, 0, 30);
    await waitFor(() => transport.delivered.length >= 10, 'the first deliveries');
    await cluster.brokerDown(2);
    // Publishing goes on: records for partitions led by broker 2 wait in the producer's retries.
    const during = publishAll(producer, 30, 60);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await cluster.brokerUp(2);
    keys.push(...(await during));
    await waitFor(
      () => new Set(transport.delivered.map((m) => m.idempotencyKey)).size === 60,
      'all 60 delivered',
      40_000,
    );
    const dlq = await readTopic(kafka, topics.deadLetterTopic, 0);
    expect(ledger(keys, transport.delivered, dlq)).toMatchObject({ published: 60, sent: 60, lost: 0 });
  });

  it('loses nothing when a worker is killed mid-batch; duplicates only among the in-flight', async () => {
    const topics = await freshTopics(cluster, 3);
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-kill-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const ledgerPath = join(dir, 'sent.txt');
    const concurrency = 5;
    const producer = producerFor(topics.topic);
    const keys = await publishAll(producer, 0, 150);
    const child = (): ChildProcess => {
      const proc = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./worker-child.ts', import.meta.url)),
          cluster.brokers.join(','),
          topics.topic,
          topics.groupId,
          ledgerPath,
          '20',
          String(concurrency),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      cleanup.push(() => {
        proc.kill('SIGKILL');
      });
      return proc;
    };
    const sentKeys = () => {
      try {
        return readFileSync(ledgerPath, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    const first = child();
    await waitFor(() => sentKeys().length >= 40, 'the first worker to deliver 40', 40_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const beforeRestart = sentKeys().length;
    expect(beforeRestart).toBeLessThan(150);
    child();
    await waitFor(() => new Set(sentKeys()).size === 150, 'all 150 after the restart', 60_000);
    const delivered = sentKeys().map((key) => ({ idempotencyKey: key, messageId: key }));
    const result = ledger(keys, delivered as never, []);
    expect(result.lost).toBe(0);
    expect(result.sent).toBe(150);
    // What the killed worker had sent but not yet committed comes again; nothing else does.
    expect(result.duplicated).toBeLessThanOrEqual(2 * concurrency);
  });

  it('shares partitions between two workers in one group, each email sent once', async () => {
    const topics = await freshTopics(cluster, 6);
    const a = scriptedTransport();
    const b = scriptedTransport();
    const workerA = createEmailWorker({ kafka, service: serviceFor(a), ...topics, consumer: FAST_CONSUMER });
    const workerB = createEmailWorker({ kafka, service: serviceFor(b), ...topics, consumer: FAST_CONSUMER });
    cleanup.push(
      () => workerA.close(),
      () => workerB.close(),
    );
    await Promise.all([workerA.start(), workerB.start()]);
    const producer = producerFor(topics.topic);
    // Warm-up: publish until each worker has delivered something, so both hold partitions (a slow
    // machine may let the first one take them all before the second joins).
    const warmup: string[] = [];
    await waitFor(
      () => a.delivered.length > 0 && b.delivered.length > 0,
      'both workers assigned',
      40_000,
      async () => {
        warmup.push(...(await publishAll(producer, 1_000 + warmup.length, 1_000 + warmup.length + 12)));
      },
    );
    const keys = await publishAll(producer, 0, 120);
    const all = [...warmup, ...keys];
    await waitFor(
      () => new Set([...a.delivered, ...b.delivered].map((m) => m.idempotencyKey)).size === all.length,
      'every email between the two',
      40_000,
    );
    expect(ledger(all, [...a.delivered, ...b.delivered], [])).toMatchObject({ sent: all.length, lost: 0 });
    // In the settled group, each of the 120 went out exactly once.
    const measured = new Set(keys);
    const result = ledger(
      keys,
      [...a.delivered, ...b.delivered].filter((m) => measured.has(m.idempotencyKey ?? '')),
      [],
    );
    expect(result).toEqual({ published: 120, sent: 120, duplicated: 0, deadLettered: 0, lost: 0 });
  });

  it('shuts down gracefully under load: in-flight sends finish and commit, the next worker repeats none', async () => {
    const topics = await freshTopics(cluster, 3);
    const transport = scriptedTransport();
    transport.setDelay(30);
    const worker = createEmailWorker({
      kafka,
      service: serviceFor(transport),
      ...topics,
      concurrency: 6,
      consumer: FAST_CONSUMER,
    });
    cleanup.push(() => worker.close());
    const producer = producerFor(topics.topic);
    const keys = await publishAll(producer, 0, 200);
    let inFlightAtClose = 0;
    const started = new Set<string>();
    const wrapped = transport.send.bind(transport);
    transport.send = (message, context) => {
      started.add(message.idempotencyKey ?? '');
      return wrapped(message, context);
    };
    await worker.start();
    // Close at a moment with sends in flight.
    await waitFor(
      () => transport.delivered.length >= 30 && started.size > transport.delivered.length,
      '30 deliveries and more in flight',
    );
    inFlightAtClose = started.size - transport.delivered.length;
    await worker.close();
    const atClose = transport.delivered.length;
    // Everything started before close was finished, not abandoned.
    expect(atClose).toBe(started.size);
    expect(inFlightAtClose).toBeGreaterThan(0);
    expect(atClose).toBeLessThan(200);

    const next = scriptedTransport();
    const successor = createEmailWorker({
      kafka,
      service: serviceFor(next),
      ...topics,
      consumer: FAST_CONSUMER,
    });
    cleanup.push(() => successor.close());
    await successor.start();
    await waitFor(() => transport.delivered.length + next.delivered.length >= 200, 'the rest', 40_000);
    const result = ledger(keys, [...transport.delivered, ...next.delivered], []);
    expect(result).toEqual({ published: 200, sent: 200, duplicated: 0, deadLettered: 0, lost: 0 });
  });
});
