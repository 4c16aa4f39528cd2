/**
 * A record the worker cannot write to its retry or dead-letter topic, on Apache Kafka itself: the
 * topic refuses it as too large (its max.message.bytes below the records the worker reads), or the
 * worker's Kafka user may not write to it. Nothing is lost and nothing is sent twice: the
 * record's partition waits (1 s, then doubling) and fetches it again; an email already sent to
 * some recipients is not sent again, only its refused recipients' copy is written, once the topic
 * takes it. Before, the record came back at once in a loop (the Confluent client: the same email
 * sent 146 times in 30 s), or kafkajs's consumer was replaced until the worker stopped.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEmailWorker, type EmailWorker, isKafkaForwardError } from '../../src/kafka/index.js';
import type { RealKafkaCluster } from '../helpers/kafka-real.js';
import { SASL_USER } from '../helpers/kafka-real.js';
import { clientUnderTestFrom } from './clients.js';
import {
  FAST_CONSUMER,
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
} from './harness.js';

/** Fresh topics of one partition; the dead-letter topic with `dlqConfig` (its max.message.bytes …). */
async function topicsWith(ctx: KafkaContext, dlqConfig: Array<{ name: string; value: string }> = []) {
  const topic = `mail-${randomUUID().slice(0, 8)}`;
  const names = { topic, retryTopic: `${topic}.retry`, deadLetterTopic: `${topic}.dlq` };
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: names.topic, numPartitions: 1 },
        { topic: names.retryTopic, numPartitions: 1 },
        { topic: names.deadLetterTopic, numPartitions: 1, configEntries: dlqConfig },
      ],
    });
  } finally {
    await admin.disconnect();
  }
  return { ...names, groupId: `group-${randomUUID().slice(0, 8)}` };
}

/** Sets one of a topic's configs (Kafka's IncrementalAlterConfigs is not in kafkajs: AlterConfigs). */
async function setTopicConfig(ctx: KafkaContext, topic: string, name: string, value: string) {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: 2 /* TOPIC */, name: topic, configEntries: [{ name, value }] }],
    });
  } finally {
    await admin.disconnect();
  }
}

/** A started worker, its log lines and `error` events; closed after the test. */
async function startWorker(
  ctx: KafkaContext,
  options: Omit<Parameters<typeof createEmailWorker>[0], 'logger'>,
): Promise<{ worker: EmailWorker; lines: LogLine[]; errors: unknown[]; fatal: unknown[] }> {
  const { lines, logger } = logRecorder();
  const worker = createEmailWorker({ consumer: FAST_CONSUMER, ...options, logger });
  const errors: unknown[] = [];
  const fatal: unknown[] = [];
  worker.on('error', ({ error }) => errors.push(error));
  worker.on('fatal', ({ error }) => fatal.push(error));
  ctx.cleanup.push(() => worker.close());
  await worker.start();
  return { worker, lines, errors, fatal };
}

/** The `worker.forward_failed` lines so far. */
const forwardFailures = (lines: LogLine[]) => lines.filter((l) => l.fields.event === 'worker.forward_failed');

describe('a record the worker cannot forward, on a real Kafka broker', { timeout: 60_000 }, () => {
  const ctx = useKafka({ real: { nodes: 1, authorize: true } });

  it("a dead-letter topic that takes smaller records than the worker's: the partition waits and tries again, doubling; the email is sent once, and its refused recipient's copy is written once the topic takes it", async () => {
    // 400 bytes: the email's own record fits its topic; the copy for the refused recipient, with
    // the server's reply and the worker's headers, does not fit the dead-letter topic.
    const topics = await topicsWith(ctx, [{ name: 'max.message.bytes', value: '400' }]);
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

    await setTopicConfig(ctx, topics.deadLetterTopic, 'max.message.bytes', '100000');
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
    const topics = await topicsWith(ctx);
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
