/**
 * Shared parts of the Kafka scenario tests: a mock cluster, fresh topics per test, a transport
 * whose failures are scripted per recipient, and a ledger that counts sent / duplicated /
 * dead-lettered / lost.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Kafka } from 'kafkajs';
import { afterAll, afterEach, beforeAll } from 'vitest';
import {
  EmailError,
  type EmailErrorCode,
  type EmailMessage,
  EmailService,
  type EmailServiceOptions,
  type Logger,
  type Transport,
} from '../../src/index.js';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import {
  type BuiltinEmail,
  createEmailProducer,
  createEmailWorker,
  type EmailProducer,
  type EmailWorker,
  type EmailWorkerOptions,
  HEADERS,
} from '../../src/kafka/index.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { type RealKafkaCluster, SASL_USER, startRealKafka } from '../helpers/kafka-real.js';
import { clientUnderTest, kafkaClient } from './clients.js';

export { clientUnderTest, KAFKA_CLIENT, kafkaClient } from './clients.js';

/**
 * One cluster for a test file (or a `describe`): started before its tests, stopped after them.
 * The mock unless `real` asks for Apache Kafka itself with that many nodes (and `authorize`, ACLs
 * on a SASL listener: see kafka-real.ts). `ready` gets the
 * cluster, a kafkajs client for the test's own plumbing, and a {@link clientUnderTest} for
 * mailroom; the returned list holds clean-ups, run (newest first) after each test.
 */
export function useKafkaCluster(
  ready: (cluster: KafkaCluster, kafka: Kafka, client: KafkaClientLike) => void,
  options: { real?: { nodes: 1 | 3; authorize?: boolean } } = {},
): Array<() => Promise<void> | void> {
  const cleanup: Array<() => Promise<void> | void> = [];
  let cluster: KafkaCluster | undefined;
  beforeAll(async () => {
    cluster = options.real ? await startRealKafka(options.real) : await startKafkaCluster();
    ready(cluster, kafkaClient(cluster), clientUnderTest(cluster.brokers));
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return cleanup;
}

/** Which cluster a test runs on: the mock, or Apache Kafka itself. */
export type ClusterKind = 'mock' | 'real';

/** What a test file gets from {@link useKafka}: its fields are set before the first test. */
export interface KafkaContext {
  readonly kind: ClusterKind;
  cluster: KafkaCluster;
  /** kafkajs, for the test's own reading and writing. */
  kafka: Kafka;
  /** The client mailroom runs on (clients.ts: KAFKA_CLIENT). */
  client: KafkaClientLike;
  /** Clean-ups, run (newest first) after each test. */
  readonly cleanup: Array<() => Promise<void> | void>;
}

/**
 * One cluster for the calling file (or `describe`), as {@link useKafkaCluster} starts it, in one
 * object: `const ctx = useKafka()`, then `ctx.cluster`, `ctx.client` … in the tests. A real
 * cluster's start-up time goes to the test output.
 */
export function useKafka(options: { real?: { nodes: 1 | 3; authorize?: boolean } } = {}): KafkaContext {
  const ctx = { kind: options.real ? 'real' : 'mock' } as KafkaContext;
  const cleanup = useKafkaCluster((cluster, kafka, client) => {
    Object.assign(ctx, { cluster, kafka, client });
    if (options.real) {
      const { nodes, startupMs } = cluster as RealKafkaCluster;
      console.info(`real Kafka, ${nodes} node(s): started in ${startupMs} ms`);
    }
  }, options);
  Object.assign(ctx, { cleanup });
  return ctx;
}

/** A producer on `ctx`'s client, disconnected after the test. */
export function producerFor(ctx: KafkaContext, topic: string): EmailProducer {
  const producer = createEmailProducer({ kafka: ctx.client, topic });
  ctx.cleanup.push(() => producer.disconnect());
  return producer;
}

/** A worker on `ctx`'s client with {@link FAST_CONSUMER} (unless `options.consumer`), closed after the test. */
export function workerFor(ctx: KafkaContext, options: Omit<EmailWorkerOptions, 'kafka'>): EmailWorker {
  const worker = createEmailWorker({ kafka: ctx.client, consumer: FAST_CONSUMER, ...options });
  ctx.cleanup.push(() => worker.close());
  return worker;
}

/**
 * The start of most worker scenarios: fresh topics (`partitions` each, default 3), a worker on
 * them sending through `transport` (default a {@link scriptedTransport}; not started; `options`
 * added to the worker's), and a producer to the topic; all closed after the test.
 */
export async function freshWorker<T extends Transport = ReturnType<typeof scriptedTransport>>(
  ctx: KafkaContext,
  options: Partial<Omit<EmailWorkerOptions, 'kafka'>> & { partitions?: number; transport?: T } = {},
) {
  const { partitions = 3, transport = scriptedTransport() as Transport as T, ...rest } = options;
  const topics = await freshTopics(ctx.cluster, partitions);
  const producer = producerFor(ctx, topics.topic);
  const worker = workerFor(ctx, { service: serviceFor(transport), ...topics, ...rest });
  return { topics, transport, producer, worker };
}

/** Fresh topic names for one test (and their creation on the cluster). */
export async function freshTopics(cluster: KafkaCluster, partitions = 3) {
  const topic = `mail-${randomUUID().slice(0, 8)}`;
  const names = { topic, retryTopic: `${topic}.retry`, deadLetterTopic: `${topic}.dlq` };
  for (const name of Object.values(names)) await cluster.createTopic(name, partitions);
  return { ...names, groupId: `group-${randomUUID().slice(0, 8)}` };
}

/** Consumer settings that keep rebalances quick on the mock. */
export const FAST_CONSUMER = {
  sessionTimeout: 6_000,
  heartbeatInterval: 500,
  rebalanceTimeout: 6_000,
  maxWaitTimeInMs: 200,
};

/** Worker retry settings that fit in a test: short in-process retries, parked records back within 1 s. */
export const FAST_RETRY: EmailWorkerOptions['retry'] = {
  maxAttempts: 4,
  inProcess: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  baseDelayMs: 200,
  maxDelayMs: 400,
};

type Rule = { code: EmailErrorCode; status?: number; times: number; handedOver?: boolean };

/**
 * A transport that delivers into `delivered` unless a rule for the recipient's local part says
 * to fail: `rules.set('flaky', { code: 'network', times: 2 })` fails the first two attempts.
 */
export function scriptedTransport() {
  const delivered: EmailMessage[] = [];
  const attempts = new Map<string, number>();
  const rules = new Map<string, Rule>();
  let delayMs = 0;
  const transport: Transport & {
    delivered: EmailMessage[];
    rules: Map<string, Rule>;
    attempts: Map<string, number>;
    setDelay(ms: number): void;
  } = {
    name: 'scripted',
    delivered,
    rules,
    attempts,
    setDelay(ms) {
      delayMs = ms;
    },
    async send(message, context) {
      const local = message.to[0]?.address.split('@')[0] ?? '';
      const key = message.idempotencyKey ?? message.messageId;
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      if (delayMs > 0) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            clearTimeout(timer);
            reject(new EmailError('aborted', { code: 'aborted', transport: 'scripted' }));
          };
          const timer = setTimeout(() => {
            context.signal?.removeEventListener('abort', onAbort);
            resolve();
          }, delayMs);
          context.signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
      for (const [prefix, rule] of rules) {
        if (local.startsWith(prefix) && rule.times > 0) {
          rule.times--;
          throw new EmailError(`scripted ${rule.code}`, {
            code: rule.code,
            transport: 'scripted',
            ...(rule.status !== undefined ? { status: rule.status } : {}),
            ...(rule.handedOver ? { handedOver: true } : {}),
          });
        }
      }
      delivered.push(message);
      return {
        messageId: message.messageId,
        accepted: message.to.map((a) => a.address),
        rejected: [],
        transport: 'scripted',
      };
    },
  };
  return transport;
}

/**
 * Accepts every `to` recipient but `gone…` (refused for good, 550) and, the first time it is in
 * an email to several recipients, `later…` (deferred, 451); `sys…` fails the whole send as
 * systemic (535), `flaky…` as transient after `flakyDelayMs`. Keeps each send.
 */
export function refusingTransport(flakyDelayMs = 0) {
  const sends: EmailMessage[] = [];
  const deferredOnce = new Set<string>();
  const transport: Transport & { sends: EmailMessage[]; accepted: string[]; systemic: boolean } = {
    name: 'refusing',
    sends,
    /** Every address the transport accepted, once per send. */
    accepted: [],
    /** Set false when someone fixed the credentials: `sys…` is sent then. */
    systemic: true,
    async send(message) {
      const all = message.to.map((a) => a.address);
      if (transport.systemic && all.some((a) => a.startsWith('sys')))
        throw new EmailError('535 auth', { code: 'auth', status: 535, transport: 'refusing' });
      if (all.some((a) => a.startsWith('flaky'))) {
        await new Promise((resolve) => setTimeout(resolve, flakyDelayMs));
        throw new EmailError('connection reset', { code: 'network', transport: 'refusing' });
      }
      sends.push(message);
      const rejected = all.filter((a) => a.startsWith('gone'));
      const deferred = all.filter((a) => a.startsWith('later') && all.length > 1 && !deferredOnce.has(a));
      for (const a of deferred) deferredOnce.add(a);
      const accepted = all.filter((a) => !rejected.includes(a) && !deferred.includes(a));
      transport.accepted.push(...accepted);
      return {
        messageId: message.messageId,
        accepted,
        rejected,
        deferred,
        refusals: [
          ...rejected.map((address) => ({
            address,
            failure: 'permanent' as const,
            status: 550,
            response: '550 5.1.1 mailbox unavailable',
          })),
          ...deferred.map((address) => ({
            address,
            failure: 'transient' as const,
            status: 451,
            response: '451 4.7.1 try later',
          })),
        ],
        transport: 'refusing',
      };
    },
  };
  return transport;
}

export function serviceFor(transport: Transport, options?: Partial<EmailServiceOptions>): EmailService {
  return new EmailService({ transport, from: 'Acme <no-reply@acme.example>', retry: false, ...options });
}

/** A record read back from a topic. */
export interface ReadRecord {
  key: string | undefined;
  value: string;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/** Reads every record of a topic from the beginning until `count` arrived (or the timeout). */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  count: number,
  timeoutMs = 15_000,
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  if (count === 0) return records;
  const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}`, ...FAST_CONSUMER });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) {
        if (value !== undefined) headers[name] = String(Array.isArray(value) ? value[0] : value);
      }
      records.push({
        key: message.key?.toString(),
        value: message.value?.toString() ?? '',
        headers,
        partition,
        offset: message.offset,
      });
      if (records.length >= count) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  return records;
}

/** The group's committed offsets of `topic` (the next offset to read), by partition; absent: none committed. */
export async function committedOffsets(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const [answer] = await withAdmin(kafka, (admin) => admin.fetchOffsets({ groupId, topics: [topic] }));
  const offsets = new Map<number, bigint>();
  for (const { partition, offset } of answer?.partitions ?? []) {
    if (BigInt(offset) >= 0n) offsets.set(partition, BigInt(offset));
  }
  return offsets;
}

/** Records on a topic, from the broker's offsets (high watermark minus low, summed over partitions). */
export async function recordCount(kafka: Kafka, topic: string): Promise<number> {
  const offsets = await withAdmin(kafka, (admin) => admin.fetchTopicOffsets(topic));
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

/** Waits until `check()` is true, polling; fails with `what` after the timeout. */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 20_000,
  /** Runs between checks (e.g. publishes more), at most every 250 ms. */
  meanwhile?: () => Promise<void>,
): Promise<void> {
  const started = Date.now();
  let last = 0;
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    if (meanwhile && Date.now() - last >= 250) {
      last = Date.now();
      await meanwhile();
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The ledger of a scenario: what was published against what was delivered and dead-lettered.
 * `lost` counts published keys neither delivered nor dead-lettered.
 */
export function ledger(
  published: readonly string[],
  delivered: readonly EmailMessage[],
  deadLettered: readonly ReadRecord[],
) {
  const sentCounts = new Map<string, number>();
  for (const m of delivered) {
    const key = m.idempotencyKey ?? m.messageId;
    sentCounts.set(key, (sentCounts.get(key) ?? 0) + 1);
  }
  const dlqKeys = new Set(
    deadLettered.map((r) => (JSON.parse(r.value) as { idempotencyKey: string }).idempotencyKey),
  );
  const duplicated = [...sentCounts.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0);
  const lost = published.filter((key) => !sentCounts.has(key) && !dlqKeys.has(key)).length;
  return { published: published.length, sent: sentCounts.size, duplicated, deadLettered: dlqKeys.size, lost };
}

export { HEADERS };

/** The welcome email to user `i`, with the idempotency key `welcome:<i>` the ledgers count by. */
export const email = (i: number) => ({
  template: 'welcome' as const,
  data: { username: `User ${i}` },
  to: `user-${i}@example.com`,
  idempotencyKey: `welcome:${i}`,
});

/** Publishes `make(from)` … `make(to - 1)` one by one; their idempotency keys, in order. */
export async function publishAll(
  producer: EmailProducer,
  from: number,
  to: number,
  make: (i: number) => Parameters<EmailProducer['publishMany']>[0][number] = email,
): Promise<string[]> {
  const keys: string[] = [];
  // Any email publishMany takes; publish's overloads each take one kind of them.
  for (let i = from; i < to; i++) keys.push((await producer.publish(make(i) as BuiltinEmail)).idempotencyKey);
  return keys;
}

/** A logged line: its level, message and fields. */
export type LogLine = { level: string; msg: string | undefined; fields: Record<string, unknown> };

/** A logger that keeps every line in `lines`. */
export function logRecorder(): { lines: LogLine[]; logger: Logger } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (fields: object, msg?: string): void => {
      lines.push({ level, msg, fields: fields as Record<string, unknown> });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

/** Runs `use` with a connected admin of `kafka` (the tests' plumbing), disconnected after. */
export async function withAdmin<T>(
  kafka: Kafka,
  use: (admin: ReturnType<Kafka['admin']>) => Promise<T>,
): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * ACLs for {@link SASL_USER} on a real cluster started with `authorize` (its plain listener, which
 * `ctx.kafka` uses, is a super user's). Each grant lasts until the test ends: ACLs belong to the
 * user, not the test, and WRITE on any topic lets its idempotent producer have an id (KIP-679),
 * which the tests of a user who may not write rely on it lacking.
 */
export function kafkaAcls(ctx: KafkaContext) {
  // Required: kafkajs is CommonJS, and Node's ESM import does not find these among its exports.
  const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = createRequire(
    import.meta.url,
  )('kafkajs') as typeof import('kafkajs');
  /** Lets SASL_USER do `operations` on the topics, and use the group when one is given. */
  const grant = async (topics: string[], operations: number[], groupId?: string): Promise<void> => {
    const acl = (resourceType: number, resourceName: string, operation: number) => ({
      resourceType,
      resourceName,
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: `User:${SASL_USER.username}`,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    });
    const acls = [
      ...topics.flatMap((topic) => operations.map((op) => acl(AclResourceTypes.TOPIC, topic, op))),
      ...(groupId === undefined ? [] : [acl(AclResourceTypes.GROUP, groupId, AclOperationTypes.READ)]),
    ];
    await withAdmin(ctx.kafka, (admin) => admin.createAcls({ acl: acls }));
    ctx.cleanup.push(async () => {
      await withAdmin(ctx.kafka, (admin) => admin.deleteAcls({ filters: acls }));
    });
  };
  /** Lets SASL_USER describe and read the topics and join the group: everything a worker needs but writing. */
  const grantAllButWrite = (topics: string[], groupId: string) =>
    grant(topics, [AclOperationTypes.DESCRIBE, AclOperationTypes.READ], groupId);
  return { grant, grantAllButWrite, operations: AclOperationTypes };
}
