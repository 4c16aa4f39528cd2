/**
 * The producer against a real Kafka-protocol broker (librdkafka's mock cluster): what lands on the
 * topic, that bad input lands nothing, and an EmailService with a `queue` publishing what a worker
 * later sends under the same Message-ID.
 */
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  defineTemplate,
  EmailService,
  isEmailError,
  isMessageError,
  isTemplateError,
  memoryTransport,
  type QueuedEvent,
} from '../../src/index.js';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import {
  createEmailProducer,
  createEmailWorker,
  isKafkaTopicMissingError,
  isKafkaUnavailableError,
  parseEnvelope,
} from '../../src/kafka/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import {
  FAST_CONSUMER,
  freshTopics,
  readTopic,
  recordCount,
  serviceFor,
  useKafkaCluster,
  waitFor,
} from './harness.js';

let cluster: KafkaCluster;
let kafka: Kafka;
let client: KafkaClientLike;
const cleanup = useKafkaCluster((started, plumbing, underTest) => {
  cluster = started;
  kafka = plumbing;
  client = underTest;
});

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const FROM = 'Acme <no-reply@acme.example>';

async function setup() {
  const topics = await freshTopics(cluster);
  const producer = createEmailProducer({ kafka: client, topic: topics.topic });
  cleanup.push(() => producer.disconnect());
  return { topics, producer };
}

/** A worker that sends through a fresh memory transport (its service has no queue). */
function startWorker(topics: Awaited<ReturnType<typeof freshTopics>>) {
  const transport = memoryTransport();
  const worker = createEmailWorker({
    kafka: client,
    service: serviceFor(transport),
    allowCapturingTransport: true,
    ...topics,
    consumer: FAST_CONSUMER,
  });
  cleanup.push(() => worker.close());
  return { transport, worker, started: worker.start() };
}

/** A client (no admin to ask) whose producer connects, and whose every send fails with `error`. */
function sendFailsWith(error: Error): KafkaClientLike {
  const send = async () => {
    throw error;
  };
  return {
    producer: () => ({ connect: async () => {}, disconnect: async () => {}, send }),
  } as unknown as KafkaClientLike;
}

/** Awaits `promise`, which must reject; returns the reason. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, it resolved');
}

const verification = (i: number, to = `user-${i}@example.com`) => ({
  template: 'verification' as const,
  data: { username: `User ${i}`, verificationUrl: `https://acme.example/verify?t=${i}` },
  to,
  idempotencyKey: `verify:${i}`,
});

const invoice = defineTemplate({
  name: 'invoice',
  fields: { number: 'string', payUrl: 'url' },
  subject: 'Invoice <%= it.number %>',
  html: '<p>Invoice <%= it.number %></p>',
});

describe('createEmailProducer on a real broker', () => {
  it('publishes an envelope keyed by the first recipient, with the version and traceparent headers', async () => {
    const { topics, producer } = await setup();
    expect(producer.name).toBe('kafka');
    expect(producer.topic).toBe(topics.topic);
    const traced = await producer.publish({
      subject: 'Traced',
      text: 'Hello',
      to: ['Jane.Doe@Example.COM', 'other@example.com'],
      traceparent: TRACEPARENT,
      idempotencyKey: 'traced-1',
    });
    const plain = await producer.publish(verification(1));
    expect(traced).toMatchObject({ topic: topics.topic, idempotencyKey: 'traced-1' });
    expect(traced.partition).toBeGreaterThanOrEqual(0);
    expect(traced.offset).toMatch(/^\d+$/);

    const records = await readTopic(kafka, topics.topic, 2);
    expect(records).toHaveLength(2);
    const byId = new Map(records.map((r) => [(JSON.parse(r.value) as { id: string }).id, r]));
    const tracedRecord = byId.get(traced.id);
    const plainRecord = byId.get(plain.id);

    expect(tracedRecord?.key).toBe('jane.doe@example.com');
    expect(tracedRecord?.partition).toBe(traced.partition);
    expect(tracedRecord?.offset).toBe(traced.offset);
    expect(tracedRecord?.headers).toEqual({ 'mailroom-envelope-version': '1', traceparent: TRACEPARENT });
    const envelope = parseEnvelope(tracedRecord?.value);
    expect(envelope).toMatchObject({
      version: 1,
      id: traced.id,
      idempotencyKey: 'traced-1',
      subject: 'Traced',
      text: 'Hello',
      to: ['Jane.Doe@example.com', 'other@example.com'],
      traceparent: TRACEPARENT,
    });

    expect(plainRecord?.key).toBe('user-1@example.com');
    expect(plainRecord?.headers).toEqual({ 'mailroom-envelope-version': '1' });
    expect(parseEnvelope(plainRecord?.value)).toMatchObject({
      version: 1,
      id: plain.id,
      idempotencyKey: 'verify:1',
      template: 'verification',
      data: { username: 'User 1', verificationUrl: 'https://acme.example/verify?t=1' },
      to: ['user-1@example.com'],
    });
  });

  it("keeps one recipient's emails on one partition, in publish order", async () => {
    const { topics, producer } = await setup();
    const mine: string[] = [];
    const partitions = new Set<number>();
    const offsets: bigint[] = [];
    for (let i = 0; i < 10; i++) {
      // The same recipient, spelled in different case; others interleaved.
      const receipt = await producer.publish(
        verification(i, i % 2 ? 'Same@Example.com' : 'same@example.com'),
      );
      mine.push(receipt.idempotencyKey);
      partitions.add(receipt.partition);
      offsets.push(BigInt(receipt.offset));
      await producer.publish(verification(100 + i));
    }
    expect(partitions.size).toBe(1);
    expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(offsets).size).toBe(10);

    const records = await readTopic(kafka, topics.topic, 20);
    expect(records).toHaveLength(20);
    const same = records.filter((r) => r.key === 'same@example.com');
    expect(same.map((r) => r.partition)).toEqual(Array(10).fill([...partitions][0]));
    expect(same.map((r) => JSON.parse(r.value).idempotencyKey)).toEqual(mine);
    // The topic has several partitions and the other recipients spread over them: the key decides.
    const others = records.filter((r) => r.key !== 'same@example.com');
    expect(new Set(others.map((r) => r.partition)).size).toBeGreaterThan(1);
  });

  it('throws for bad input before anything is published', async () => {
    const { topics, producer } = await setup();

    const missingField = await rejection(
      // @ts-expect-error payUrl is missing, which the handle's data type catches at compile time
      producer.publish({ template: invoice, data: { number: 'A-1' }, to: 'jane@example.com' }),
    );
    expect(isTemplateError(missingField)).toBe(true);
    expect(missingField).toMatchObject({ template: 'invoice', field: 'payUrl' });

    const wrongType = await rejection(
      producer.publish({
        template: invoice,
        data: { number: 'A-1', payUrl: 'javascript:alert(1)' },
        to: 'jane@example.com',
      }),
    );
    expect(wrongType).toMatchObject({ template: 'invoice', field: 'payUrl' });

    const crlf = await rejection(
      producer.publish({ subject: 'Hi\r\nBcc: victim@example.com', text: 'x', to: 'jane@example.com' }),
    );
    expect(isMessageError(crlf)).toBe(true);
    expect(crlf).toMatchObject({ field: 'subject' });

    const badAddress = await rejection(producer.publish({ ...verification(1), to: 'a@b@c' }));
    expect(badAddress).toMatchObject({ field: 'to[0]' });

    expect(await recordCount(kafka, topics.topic)).toBe(0);
    // The count does see what is published.
    await producer.publish(verification(2));
    expect(await recordCount(kafka, topics.topic)).toBe(1);
    const [only] = await readTopic(kafka, topics.topic, 1);
    expect(JSON.parse(only?.value ?? '{}').idempotencyKey).toBe('verify:2');
  });

  it('publishes the data it checked: fields held in getters reach the worker, not dropped by JSON', async () => {
    const { topics, producer } = await setup();
    class Bill {
      get number() {
        return 'A-1';
      }
      get payUrl() {
        return 'https://acme.example/pay/A-1';
      }
    }
    class Member {
      get username() {
        return 'Jane';
      }
      get verificationUrl() {
        return 'https://acme.example/verify?t=1';
      }
    }
    await producer.publish({ template: invoice, data: new Bill(), to: 'jane@example.com' });
    await producer.publish({ template: 'verification', data: new Member(), to: 'jane@example.com' });
    const records = await readTopic(kafka, topics.topic, 2);
    const data = records.map((r) => parseEnvelope(r.value).data);
    expect(data).toContainEqual({ number: 'A-1', payUrl: 'https://acme.example/pay/A-1' });
    expect(data).toContainEqual({ username: 'Jane', verificationUrl: 'https://acme.example/verify?t=1' });
  });

  it('publishes rows read through getters as plain { label, value }, as a render here reads them', async () => {
    const { topics, producer } = await setup();
    class Line {
      readonly #name: string;
      constructor(name: string) {
        this.#name = name;
      }
      get label() {
        return this.#name;
      }
      get value() {
        return '1 × €9';
      }
    }
    await producer.publish({
      template: 'order-confirmation',
      data: {
        username: 'Jane',
        reference: 'A-1',
        items: [new Line('Mug')],
        total: '€9',
        orderUrl: 'https://acme.example/orders/A-1',
      },
      to: 'jane@example.com',
    });
    const [record] = await readTopic(kafka, topics.topic, 1);
    expect(parseEnvelope(record?.value).data?.items).toEqual([{ label: 'Mug', value: '1 × €9' }]);
  });

  // By a name the producer does not know, the fields are the worker's to check; what JSON would
  // change or drop on the way is refused here, naming where, and nothing is published.
  it('refuses data by an unknown name that JSON would not carry as a render here sees it, naming the path', async () => {
    const { topics, producer } = await setup();
    class Profile {
      get name() {
        return 'Jane';
      }
    }
    const cyclic: Record<string, unknown> = { name: 'Jane' };
    cyclic.self = cyclic;
    const hidden = Object.defineProperty({ shown: 'a' }, 'hidden', { value: 'b', enumerable: false });
    const cases: Array<[unknown, string, RegExp]> = [
      [new Profile(), 'data', /is a Profile \(its inherited properties would be lost\)/],
      [{ user: new Profile() }, 'user', /is a Profile/],
      [Object.create({ name: 'Jane' }), 'data', /not a plain object/],
      [{ seen: new Map([['a', 1]]) }, 'seen', /is a Map/],
      [{ tags: new Set(['a']) }, 'tags', /is a Set/],
      [{ score: Number.NaN }, 'score', /is NaN/],
      [{ score: Number.POSITIVE_INFINITY }, 'score', /is Infinity/],
      [{ id: 10n }, 'id', /is a bigint/],
      [{ format: () => 'x' }, 'format', /is a function/],
      [{ rows: [{ label: 'a', value: 'b' }, undefined] }, 'rows[1]', /is undefined/],
      [{ at: new Date(Number.NaN) }, 'at', /is an invalid Date/],
      [cyclic, 'self', /refers to itself/],
      [{ toJSON: () => ({}) }, 'toJSON', /would replace the data/],
      [hidden, 'hidden', /is not enumerable/],
      [
        JSON.parse('{"user": {"__proto__": {"admin": true}}}'),
        'user.__proto__',
        /not a name a template can read/,
      ],
    ];
    for (const [data, field, problem] of cases) {
      const error = await rejection(
        producer.publish({
          template: 'custom-receipt',
          data: data as Record<string, unknown>,
          to: 'jane@example.com',
        }),
      );
      expect(isTemplateError(error), field).toBe(true);
      expect(error, field).toMatchObject({ template: 'custom-receipt', field });
      expect((error as Error).message, field).toMatch(problem);
      expect((error as Error).message, field).toMatch(
        /which a Kafka envelope \(JSON\) cannot carry as it is/,
      );
    }
    expect(await recordCount(kafka, topics.topic)).toBe(0);
  });

  it('publishes plain data by an unknown name as given: own getters read, Dates as ISO 8601', async () => {
    const { topics, producer } = await setup();
    const data = {
      get username() {
        return 'Jane';
      },
      startsAt: new Date('2026-12-08T02:00:00Z'),
      items: [{ label: 'Mug', value: '€9' }],
      note: null,
      skipped: undefined,
    };
    await producer.publish({ template: 'custom-receipt', data, to: 'jane@example.com' });
    const [record] = await readTopic(kafka, topics.topic, 1);
    expect(parseEnvelope(record?.value).data).toEqual({
      username: 'Jane',
      startsAt: '2026-12-08T02:00:00.000Z',
      items: [{ label: 'Mug', value: '€9' }],
      note: null,
    });
  });

  it("checks a built-in template's data by its name before publishing", async () => {
    const { topics, producer } = await setup();
    const error = await rejection(
      // @ts-expect-error a built-in's data is typed by its name; the runtime check covers JavaScript callers
      producer.publish({ template: 'verification', data: { username: 1 }, to: 'jane@example.com' }),
    );
    expect(isTemplateError(error)).toBe(true);
    expect(error).toMatchObject({ template: 'verification', field: 'username' });
    const badUrl = await rejection(
      producer.publish({
        template: 'verification',
        data: { username: 'Eve', verificationUrl: 'javascript:alert(1)' },
        to: 'jane@example.com',
      }),
    );
    expect(badUrl).toMatchObject({ template: 'verification', field: 'verificationUrl' });
    expect(await recordCount(kafka, topics.topic)).toBe(0);
  });

  it('refuses security mail sent as another category, as the worker would, and publishes nothing', async () => {
    const { topics, producer } = await setup();
    const alert = defineTemplate({
      name: 'new-device',
      fields: { device: 'string' },
      subject: 'New device',
      html: '<p><%= it.device %></p>',
      category: 'security',
    });
    const byHandle = await rejection(
      producer.publish({
        template: alert,
        data: { device: 'Firefox' },
        to: 'jane@example.com',
        category: 'product',
      }),
    );
    expect(isMessageError(byHandle)).toBe(true);
    expect(byHandle).toMatchObject({ field: 'category' });
    const byName = await rejection(
      producer.publish({
        template: 'security-alert',
        category: 'marketing',
        to: 'jane@example.com',
        data: {
          username: 'Jane',
          event: 'sign-in',
          occurredAt: '2026-12-08T02:00:00Z',
          device: 'Firefox on Windows',
          secureAccountUrl: 'https://acme.example/security',
        },
      }),
    );
    expect(isMessageError(byName)).toBe(true);
    expect(byName).toMatchObject({ field: 'category' });
    expect(await recordCount(kafka, topics.topic)).toBe(0);
  });

  it('refuses a maintenance notice whose window ends before it starts, naming endsAt, and publishes nothing', async () => {
    const { topics, producer } = await setup();
    const error = await rejection(
      producer.publish({
        template: 'maintenance-notice',
        data: {
          startsAt: '2026-12-08T04:00:00Z',
          endsAt: '2026-12-08T02:00:00Z',
          affected: 'Sign-in may be unavailable.',
          statusUrl: 'https://status.acme.example',
        },
        to: 'jane@example.com',
      }),
    );
    expect(isTemplateError(error)).toBe(true);
    expect(error).toMatchObject({ template: 'maintenance-notice', field: 'endsAt' });
    expect(await recordCount(kafka, topics.topic)).toBe(0);
  });

  it('publishMany validates every email before sending any', async () => {
    const { topics, producer } = await setup();
    const error = await rejection(
      producer.publishMany([
        verification(1),
        verification(2),
        { subject: 'Bad\nsubject', text: 'x', to: 'jane@example.com' },
      ]),
    );
    expect(error).toMatchObject({ field: 'subject' });
    const missing = await rejection(
      producer.publishMany([
        verification(3),
        { template: invoice, data: { number: 'A-1' }, to: 'x@example.com' },
      ]),
    );
    expect(missing).toMatchObject({ template: 'invoice', field: 'payUrl' });
    expect(await recordCount(kafka, topics.topic)).toBe(0);

    const receipts = await producer.publishMany([verification(4), verification(5)]);
    expect(receipts.map((r) => r.idempotencyKey)).toEqual(['verify:4', 'verify:5']);
    const records = await readTopic(kafka, topics.topic, 2);
    expect(records.map((r) => JSON.parse(r.value).id).sort()).toEqual(receipts.map((r) => r.id).sort());
    expect(await recordCount(kafka, topics.topic)).toBe(2);
  });

  it('an aborted signal publishes nothing; a broker that cannot be reached is a retryable EmailError', async () => {
    const { topics, producer } = await setup();
    const controller = new AbortController();
    controller.abort();
    const stopped = await rejection(producer.publish(verification(1), { signal: controller.signal }));
    expect(stopped).toMatchObject({ name: 'EmailError', code: 'aborted', transport: 'kafka' });
    expect(await recordCount(kafka, topics.topic)).toBe(0);

    const brokers = ['127.0.0.1:1'];
    const nowhere = createEmailProducer({
      kafka: new Kafka({
        brokers,
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
        connectionTimeout: 500,
      }),
      brokers,
      topic: topics.topic,
    });
    const unreachable = await rejection(nowhere.publish(verification(2)));
    expect(isEmailError(unreachable)).toBe(true);
    // Nothing was asked of Kafka: nothing can have been published.
    expect(unreachable).toMatchObject({
      code: 'network',
      transport: 'kafka',
      retryable: true,
      failure: 'transient',
    });
    expect((unreachable as Error).message).toBe(
      `could not publish to ${topics.topic}: ${((unreachable as Error).cause as Error).message}`,
    );
    // Its cause names the brokers and keeps the socket's code; connect() rejects with the same kind.
    const cause = (unreachable as Error).cause;
    expect(isKafkaUnavailableError(cause)).toBe(true);
    expect(cause).toMatchObject({ brokers, code: 'ECONNREFUSED' });
    expect((cause as Error).message).toMatch(
      new RegExp(`^could not reach the Kafka brokers 127\\.0\\.0\\.1:1 \\(topic ${topics.topic}\\): `),
    );
    const connecting = await rejection(nowhere.connect());
    expect(isKafkaUnavailableError(connecting)).toBe(true);
    expect(connecting).toMatchObject({ brokers, code: 'ECONNREFUSED' });
    await nowhere.disconnect();

    // A broker host that does not resolve is unreachable the same way, keeping its code.
    const unknownHost = ['no-such-host.invalid:9092'];
    const unresolved = createEmailProducer({
      kafka: new Kafka({ brokers: unknownHost, logLevel: logLevel.NOTHING, retry: { retries: 0 } }),
      brokers: unknownHost,
      topic: topics.topic,
    });
    const unnamed = await rejection(unresolved.connect());
    expect(isKafkaUnavailableError(unnamed)).toBe(true);
    expect(unnamed).toMatchObject({ brokers: unknownHost, code: 'ENOTFOUND' });
    await unresolved.disconnect();
  });

  it('a signal aborted while the first publish connects publishes nothing, then or later', async () => {
    const { topics, producer } = await setup();
    const controller = new AbortController();
    const publishing = rejection(producer.publish(verification(7), { signal: controller.signal }));
    controller.abort(new Error('the request ended'));
    const stopped = await publishing;
    expect(stopped).toMatchObject({ name: 'EmailError', code: 'aborted', transport: 'kafka' });
    // The connect goes on and completes; the aborted email is not sent after it.
    await producer.connect();
    await producer.publish(verification(8));
    expect(await recordCount(kafka, topics.topic)).toBe(1);
    expect((stopped as Error).message).toBe(
      'the publish was aborted before publishing; nothing was published',
    );
  });

  it("a publish while no broker answers fails as a retryable EmailError within the client's timeouts, on both clients (librdkafka alone would hold it 5 minutes)", {
    timeout: 120_000,
  }, async () => {
    const { producer } = await setup();
    await producer.publish(verification(1)); // connected
    const ids = cluster.brokers.map((_, i) => i + 1);
    for (const id of ids) await cluster.brokerDown(id);
    cleanup.push(async () => {
      for (const id of ids) await cluster.brokerUp(id);
    });
    const error = await rejection(producer.publish(verification(2)));
    // Handed to the client, then failed: whether a broker wrote it is not known, and the error says so.
    expect(error).toMatchObject({
      name: 'EmailError',
      code: 'network',
      transport: 'kafka',
      retryable: true,
      failure: 'ambiguous',
    });
    expect((error as Error).message).toMatch(
      /; Kafka may have it \(the request had gone out\): publish it again with the same idempotencyKey and the worker sends it once$/,
    );
  });

  it('a topic the cluster lacks is a systemic EmailError naming it, at once, not a retryable network one', async () => {
    const topic = `mail-missing-${Date.now()}`;
    const producer = createEmailProducer({ kafka: client, topic });
    cleanup.push(() => producer.disconnect());
    const error = await rejection(producer.publish(verification(3)));
    expect(error).toMatchObject({
      name: 'EmailError',
      code: 'config',
      failure: 'systemic',
      retryable: false,
    });
    expect((error as Error).message).toContain(`the Kafka topic ${topic} does not exist`);
    expect(isKafkaTopicMissingError((error as Error).cause)).toBe(true);
  });

  it('a record Kafka refuses as too large is a permanent EmailError naming its size and the limits, not a retryable network one', async () => {
    const { topics, producer } = await setup();
    await producer.connect();
    // MESSAGE_TOO_LARGE (10) to Produce (0), as a broker answers a record over the topic's
    // max.message.bytes; neither client retries it (one error, or the next test's publish fails).
    await cluster.pushRequestErrors(0, 10, 1);
    const error = await rejection(producer.publish(verification(5)));
    expect(isEmailError(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'rejected',
      failure: 'permanent',
      retryable: false,
      transport: 'kafka',
    });
    expect((error as Error).message).toMatch(
      new RegExp(
        `^could not publish to ${topics.topic}: Kafka refused a record of \\d+ bytes as too large \\(the topic's max\\.message\\.bytes or the broker's message\\.max\\.bytes\\); set the producer's maxEnvelopeBytes below that limit`,
      ),
    );
  });

  it('disconnect() lets the publishes already called finish: each resolves and lands once', async () => {
    const { topics, producer } = await setup();
    await producer.connect();
    const publishes = Array.from({ length: 20 }, (_, i) => producer.publish(verification(100 + i)));
    const outcomes = Promise.allSettled(publishes);
    await producer.disconnect();
    const settled = await outcomes;
    expect(settled.filter((o) => o.status === 'rejected').map((o) => String(o.reason))).toEqual([]);
    expect(await recordCount(kafka, topics.topic)).toBe(20);
  });

  it('a connection lost after connecting is a retryable EmailError whose cause names the brokers, as at connect', async () => {
    // Mapping only: a connected client whose send fails as kafkajs's does while its broker restarts.
    const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
      name: 'KafkaJSConnectionError',
      code: 'ECONNREFUSED',
    });
    const kafkaLike = sendFailsWith(refused);
    const brokers = ['127.0.0.1:9092'];
    const producer = createEmailProducer({ kafka: kafkaLike, topic: 'notifications.email', brokers });
    await producer.connect();
    const error = await rejection(producer.publish(verification(6)));
    expect(error).toMatchObject({ name: 'EmailError', code: 'network', retryable: true });
    const cause = (error as Error).cause;
    expect(isKafkaUnavailableError(cause)).toBe(true);
    expect(cause).toMatchObject({ brokers, code: 'ECONNREFUSED', cause: refused });
    expect((error as Error).message).toBe(
      'could not publish to notifications.email: could not reach the Kafka brokers 127.0.0.1:9092 (topic notifications.email): Connection error: connect ECONNREFUSED 127.0.0.1:9092; Kafka may have it (the request had gone out): publish it again with the same idempotencyKey and the worker sends it once',
    );
    // A send that failed after the records went to the client: whether Kafka has them is not known.
    expect(error).toMatchObject({ failure: 'ambiguous' });
  });

  it('maps a client that says the topic is unknown (it could not be asked first) to the same error', async () => {
    // Mapping only: a client without an admin, whose send fails as kafkajs's does for a missing topic.
    const unknownTopic = Object.assign(new Error('This server does not host this topic-partition'), {
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
      code: 3,
    });
    const kafkaLike = sendFailsWith(unknownTopic);
    const producer = createEmailProducer({
      kafka: kafkaLike,
      topic: 'notifications.email',
      flavor: 'kafkajs',
    });
    const error = await rejection(producer.publish(verification(4)));
    expect(error).toMatchObject({ code: 'config', failure: 'systemic' });
    expect((error as Error).cause).toMatchObject({ topics: ['notifications.email'], cause: unknownTopic });
  });
});

describe('EmailService with a queue', () => {
  it('publishes instead of sending, and the worker sends under the same Message-ID', async () => {
    const { topics, producer } = await setup();
    const transport = memoryTransport();
    const service = new EmailService({ transport, from: FROM, queue: producer });
    expect(service.queue).toBe(producer);
    const queued: QueuedEvent[] = [];
    let sent = 0;
    service.on('queued', (event) => queued.push(event));
    service.on('sent', () => sent++);

    const result = await service.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?t=42',
    });
    expect(transport.outbox).toHaveLength(0);
    expect(sent).toBe(0);
    expect(result).toMatchObject({ accepted: [], rejected: [], transport: 'kafka', attempts: 0 });
    expect(result.queued).toMatchObject({ topic: topics.topic });
    expect(result.queued?.partition).toBeGreaterThanOrEqual(0);
    expect(result.queued?.offset).toMatch(/^\d+$/);
    expect(result.messageId).toMatch(/^<[0-9a-f]{32}@acme\.example>$/);

    expect(queued).toHaveLength(1);
    expect(queued[0]?.receipt).toEqual(result.queued);
    expect(queued[0]?.message.messageId).toBe(result.messageId);
    expect(queued[0]?.message.template).toBe('verification');
    expect(queued[0]?.message.to).toEqual([{ address: 'jane@example.com' }]);

    const [record] = await readTopic(kafka, topics.topic, 1);
    expect(record?.partition).toBe(result.queued?.partition);
    expect(record?.offset).toBe(result.queued?.offset);
    const envelope = parseEnvelope(record?.value);
    expect(envelope).toMatchObject({
      id: result.queued?.id,
      idempotencyKey: result.queued?.idempotencyKey,
      template: 'verification',
      data: { username: 'Jane', verificationUrl: 'https://acme.example/verify?t=42' },
      to: ['jane@example.com'],
    });
    // The sender is the worker's to choose unless the caller chose one.
    expect(envelope).not.toHaveProperty('from');
    expect(envelope).not.toHaveProperty('subject');
    expect(envelope).not.toHaveProperty('text');

    const worker = startWorker(topics);
    await worker.started;
    await waitFor(() => worker.transport.outbox.length === 1, 'the worker to send');
    const delivered = worker.transport.outbox[0]?.message;
    expect(delivered?.messageId).toBe(result.messageId);
    expect(delivered?.idempotencyKey).toBe(result.queued?.idempotencyKey);
    expect(delivered?.to).toEqual([{ address: 'jane@example.com' }]);
    expect(delivered?.subject).toMatch(/verify/i);
    expect(delivered?.html).toContain('https://acme.example/verify?t=42');
    expect(transport.outbox).toHaveLength(0);
  });

  it('throws a TemplateError for a template it does not know, and publishes nothing', async () => {
    const { topics, producer } = await setup();
    const service = new EmailService({ transport: memoryTransport(), from: FROM, queue: producer });
    let queued = 0;
    service.on('queued', () => queued++);
    const error = await rejection(
      service.sendTemplate('no-such-template', { to: 'jane@example.com', data: { username: 'Jane' } }),
    );
    expect(isTemplateError(error)).toBe(true);
    expect(error).toMatchObject({ template: 'no-such-template' });
    const badData = await rejection(
      service.sendVerificationEmail({
        to: 'jane@example.com',
        username: 'Jane',
        verificationUrl: 'javascript:alert(1)',
      }),
    );
    expect(badData).toMatchObject({ template: 'verification', field: 'verificationUrl' });
    expect(queued).toBe(0);
    expect(await recordCount(kafka, topics.topic)).toBe(0);
    await service.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(queued).toBe(1);
    expect(await recordCount(kafka, topics.topic)).toBe(1);
  });

  it('HTML in template data is published as given and arrives escaped in the email sent', async () => {
    const { topics, producer } = await setup();
    const username = '<script>alert("x")</script>';
    await producer.publish({ ...verification(1), data: { ...verification(1).data, username } });
    const [record] = await readTopic(kafka, topics.topic, 1);
    expect(parseEnvelope(record?.value).data?.username).toBe(username);

    const worker = startWorker(topics);
    await worker.started;
    await waitFor(() => worker.transport.outbox.length === 1, 'the worker to send');
    const html = worker.transport.outbox[0]?.message.html ?? '';
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toContain('<script');
  });

  it('createEmailWorker refuses a service that queues', async () => {
    const { topics, producer } = await setup();
    const service = new EmailService({ transport: memoryTransport(), from: FROM, queue: producer });
    expect(() => createEmailWorker({ kafka: client, service, ...topics })).toThrow(TypeError);
    expect(() => createEmailWorker({ kafka: client, service, ...topics })).toThrow(/queue/);
    // The same options with a sending service are accepted.
    const worker = createEmailWorker({
      kafka: client,
      service: serviceFor(memoryTransport()),
      allowCapturingTransport: true,
      ...topics,
    });
    cleanup.push(() => worker.close());
  });
});
