/**
 * The Kafka client, typed structurally: kafkajs's `Kafka` and the KafkaJS-compatible
 * `KafkaJS.Kafka` of `@confluentinc/kafka-javascript` both fit, and neither package is imported.
 * The two differ in where a few settings go; this file is the one place that knows.
 */
import { everyMemberRoundRobin } from './assigner.js';
import type { KafkaClientConfig } from './config.js';

/** Header values as both clients hand them over. */
export type KafkaHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** A record to produce. */
export interface KafkaOutgoingMessage {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: KafkaHeaders;
}

/** A consumed record. */
export interface KafkaIncomingMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: KafkaHeaders;
  timestamp: string;
}

/** The part of a producer mailroom uses. */
export interface KafkaProducerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: {
    topic: string;
    messages: KafkaOutgoingMessage[];
    acks?: number;
  }): Promise<Array<{ topicName: string; partition: number; baseOffset?: string; offset?: string }>>;
}

/** What `eachBatch` receives, in the part mailroom uses. */
export interface KafkaBatchPayload {
  batch: { topic: string; partition: number; messages: KafkaIncomingMessage[] };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

/** The part of a consumer mailroom uses. */
export interface KafkaConsumerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  run(config: {
    eachBatch: (payload: KafkaBatchPayload) => Promise<void>;
    eachBatchAutoResolve?: boolean;
    partitionsConsumedConcurrently?: number;
    autoCommit?: boolean;
  }): Promise<void>;
  commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
  /** The group's stored offsets (the Confluent client's; see {@link confirmCommitted}). */
  committed?(
    partitions: Array<{ topic: string; partition: number }>,
    timeoutMs?: number,
  ): Promise<Array<{ topic: string; partition: number; offset: string | null }>>;
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void;
  resume(topics: Array<{ topic: string; partitions?: number[] }>): void;
}

/**
 * A Kafka client: `new Kafka({ brokers })` from kafkajs, or
 * `new KafkaJS.Kafka({ kafkaJS: { brokers } })` from `@confluentinc/kafka-javascript`.
 */
export interface KafkaClientLike {
  producer(config?: object): KafkaProducerLike;
  consumer(config: object): KafkaConsumerLike;
  /** kafkajs's admin client; the producer asks it once what the cluster supports (see `createProducer`). */
  admin?(): KafkaAdminLike;
}

/** The part of kafkajs's admin client mailroom uses (the Confluent client's has no `describeCluster`). */
export interface KafkaAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  describeCluster?(): Promise<{ brokers: Array<{ nodeId: number }>; controller: number | null }>;
  listTopics(): Promise<string[]>;
}

/** Which client API a {@link KafkaClientLike} is; found from the client unless given. */
export type KafkaFlavor = (typeof KAFKA_FLAVORS)[number];

/** Every {@link KafkaFlavor}: `kafkajs`, and `confluent` for `@confluentinc/kafka-javascript`. */
export const KAFKA_FLAVORS = ['kafkajs', 'confluent'] as const;

/** True when `value` names a {@link KafkaFlavor} (a variable, a flag or the config file's `worker.client`). */
export function isKafkaFlavor(value: unknown): value is KafkaFlavor {
  return (KAFKA_FLAVORS as readonly unknown[]).includes(value);
}

/** kafkajs's client has a `logger()` method; the Confluent client's KafkaJS API does not. */
export function flavorOf(kafka: KafkaClientLike, given?: KafkaFlavor): KafkaFlavor {
  if (given) return given;
  return typeof (kafka as { logger?: unknown }).logger === 'function' ? 'kafkajs' : 'confluent';
}

/** librdkafka's properties for TLS from PEM text (its CONFIGURATION.md), beside `kafkaJS`. */
export interface ConfluentTlsProperties {
  'ssl.ca.pem'?: string;
  'ssl.certificate.pem'?: string;
  'ssl.key.pem'?: string;
  'ssl.key.password'?: string;
}

/** The KafkaJS part of a Confluent client's options, from a {@link KafkaClientConfig}: `ssl` a boolean. */
export type ConfluentKafkaJSConfig = Omit<KafkaClientConfig, 'ssl'> & { ssl?: boolean };

/**
 * The options of `new KafkaJS.Kafka()` (`@confluentinc/kafka-javascript`) for the options of
 * kafkajs's `new Kafka()`. Its KafkaJS API takes `ssl` only as true or false and throws on an
 * object; a private CA and a client certificate go beside `kafkaJS` as librdkafka's properties
 * `ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem` and `ssl.key.password` (PEM text, as
 * {@link kafkaConfigFromEnv} read it). `kafkaJS` adds to the KafkaJS options: a logger, a log level.
 *
 * @example
 * ```ts
 * import { KafkaJS } from '@confluentinc/kafka-javascript';
 * import { confluentClientConfig, kafkaConfigFromEnv } from 'mailroom-js/kafka';
 *
 * const { client } = kafkaConfigFromEnv();
 * const kafka = new KafkaJS.Kafka(confluentClientConfig(client, { logLevel: KafkaJS.logLevel.WARN }));
 * ```
 */
export function confluentClientConfig<T extends object = Record<never, never>>(
  config: KafkaClientConfig,
  kafkaJS?: T,
): ConfluentTlsProperties & { kafkaJS: ConfluentKafkaJSConfig & T } {
  const { ssl, ...rest } = config;
  const tls = typeof ssl === 'object' ? ssl : undefined;
  return {
    kafkaJS: { ...rest, ...(ssl !== undefined ? { ssl: ssl !== false } : {}), ...(kafkaJS as T) },
    ...(tls?.ca !== undefined ? { 'ssl.ca.pem': tls.ca } : {}),
    ...(tls?.cert !== undefined ? { 'ssl.certificate.pem': tls.cert } : {}),
    ...(tls?.key !== undefined ? { 'ssl.key.pem': tls.key } : {}),
    ...(tls?.passphrase !== undefined ? { 'ssl.key.password': tls.passphrase } : {}),
  };
}

/**
 * A producer that waits for every in-sync replica and keeps one key's records in order, and is
 * idempotent (the broker drops a record its own retry wrote twice) wherever the cluster allows it.
 * librdkafka's idempotent producer asks any broker for its producer id. kafkajs asks the broker the
 * cluster names as its controller, and a cluster whose controller is none of its brokers
 * (librdkafka's mock cluster) leaves it retrying without end; so for kafkajs `connect()` first
 * looks at the cluster (one metadata request through `kafka.admin()`) and turns idempotence on only
 * when the controller is one of the brokers, as on a real Kafka (ZooKeeper or KRaft). Without it,
 * one request at a time keeps the order, and a record a retry wrote twice is caught by the
 * worker's idempotency store. kafkajs's own retry count (the client's `retry.retries`) is kept, so
 * a publish that cannot be written fails instead of retrying forever (kafkajs logs a warning that
 * limiting an idempotent producer's retries may invalidate exactly-once: expected).
 */
export function createProducer(kafka: KafkaClientLike, flavor: KafkaFlavor): KafkaProducerLike {
  if (flavor === 'confluent') {
    return kafka.producer({
      kafkaJS: { idempotent: true, acks: -1, allowAutoTopicCreation: false },
      'message.timeout.ms': CONFLUENT_MESSAGE_TIMEOUT_MS,
    });
  }
  let producer: KafkaProducerLike | undefined;
  return {
    async connect() {
      const idempotent = await controllerIsBroker(kafka);
      const made = kafka.producer({ ...KAFKAJS_PRODUCER, ...(idempotent ? { idempotent: true } : {}) });
      await connectOrDisconnect(made);
      producer = made;
    },
    send(record) {
      if (!producer) return Promise.reject(new Error('the Kafka producer is not connected'));
      return producer.send(record);
    },
    async disconnect() {
      const current = producer;
      producer = undefined;
      await current?.disconnect();
    },
  };
}

/**
 * How long librdkafka tries to deliver a record before it fails the send (ms; its
 * `message.timeout.ms`, 300 000 by default). Five minutes held a publish (and the web request
 * awaiting it) while a partition had no leader, where kafkajs gives up after its retries (seconds):
 * 30 s keeps the two clients of one order.
 */
const CONFLUENT_MESSAGE_TIMEOUT_MS = 30_000;

const KAFKAJS_PRODUCER = {
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: () => keyPartitioner,
};

/** Which of `topics` the cluster lacks; undefined when the client has no admin to ask. */
export async function missingTopics(
  kafka: KafkaClientLike,
  topics: readonly string[],
): Promise<string[] | undefined> {
  if (typeof kafka.admin !== 'function') return undefined;
  return withConnected(kafka.admin(), async (admin) => {
    const existing = new Set(await admin.listTopics());
    return topics.filter((topic) => !existing.has(topic));
  });
}

/** True when the cluster's controller is one of its brokers (kafkajs's idempotent producer needs that). */
export async function controllerIsBroker(kafka: KafkaClientLike): Promise<boolean> {
  if (typeof kafka.admin !== 'function') return false;
  const admin = kafka.admin();
  const describeCluster = admin.describeCluster?.bind(admin);
  if (typeof describeCluster !== 'function') return false;
  return withConnected(admin, async () => {
    const { brokers, controller } = await describeCluster();
    return brokers.some((broker) => broker.nodeId === controller);
  });
}

/** A producer, a consumer or an admin: what connects. */
interface KafkaConnectable {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * Connects `client`; when that fails, disconnects it before the error is thrown. A Kafka client
 * whose connect failed part of the way can keep sockets and timers open, and with them the
 * process: kafkajs's admin when a broker refuses the SASL handshake, its idempotent producer when
 * the broker refuses it a producer id after its cluster connected.
 */
export async function connectOrDisconnect(client: KafkaConnectable): Promise<void> {
  try {
    await client.connect();
  } catch (error) {
    throw await disconnectAfter(client, error);
  }
}

/** Connects `client`, runs `use`, and disconnects it however `use` ended. */
async function withConnected<C extends KafkaConnectable, T>(
  client: C,
  use: (client: C) => Promise<T>,
): Promise<T> {
  await connectOrDisconnect(client);
  let result: T;
  try {
    result = await use(client);
  } catch (error) {
    throw await disconnectAfter(client, error);
  }
  await client.disconnect();
  return result;
}

/**
 * Disconnects `client` after `error`, and returns `error` to be thrown: a failure to disconnect
 * never takes its place, and is kept on it as `disconnectError` ({@link keepDisconnectError}).
 */
async function disconnectAfter(client: KafkaConnectable, error: unknown): Promise<unknown> {
  try {
    await client.disconnect();
  } catch (failure) {
    keepDisconnectError(error, failure);
  }
  return error;
}

/**
 * Keeps `failure`, the error of a disconnect that followed `error`, on `error` as its
 * `disconnectError` (not enumerable), unless it has one: `error` is what the caller needs, and
 * what happened next stays with it.
 */
export function keepDisconnectError(error: unknown, failure: unknown): void {
  if (typeof error !== 'object' || error === null || !Object.isExtensible(error)) return;
  if (Object.hasOwn(error, 'disconnectError')) return;
  Object.defineProperty(error, 'disconnectError', { value: failure, configurable: true, writable: true });
}

/**
 * The Java client's keyed partitioning (murmur2 of the key, modulo the partition count), given
 * to kafkajs explicitly: the same as its default, without the warning it prints when none is.
 */
function keyPartitioner({
  partitionMetadata,
  message,
}: {
  partitionMetadata: ReadonlyArray<{ partitionId: number }>;
  message: { key?: string | Buffer | null };
}): number {
  const count = partitionMetadata.length;
  if (message.key === null || message.key === undefined) return Math.floor(Math.random() * count);
  const key = typeof message.key === 'string' ? Buffer.from(message.key) : message.key;
  return (murmur2(key) & 0x7fffffff) % count;
}

/** Kafka's murmur2 (seed 0x9747b28c), as in the Java client's `Utils.murmur2`. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= (data[whole + 2] as number) << 16;
  if (rest >= 2) h ^= (data[whole + 1] as number) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[whole] as number), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}

/** Produces with acks from all in-sync replicas (a per-send option in kafkajs, per producer in Confluent's). */
export function sendRecords(
  producer: KafkaProducerLike,
  flavor: KafkaFlavor,
  topic: string,
  messages: KafkaOutgoingMessage[],
) {
  return producer.send(flavor === 'confluent' ? { topic, messages } : { topic, messages, acks: -1 });
}

/** A record's size in bytes: its key, value and headers (names and values), as UTF-8; without Kafka's framing. */
export function recordBytes(record: KafkaOutgoingMessage): number {
  const size = (part: Buffer | string | null | undefined) =>
    part == null ? 0 : typeof part === 'string' ? Buffer.byteLength(part) : part.length;
  let bytes = size(record.key) + size(record.value);
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    bytes += Buffer.byteLength(name);
    for (const part of Array.isArray(value) ? value : [value]) bytes += size(part);
  }
  return bytes;
}

/** Consumer settings a worker exposes. */
export interface ConsumerSettings {
  /**
   * How long the group waits for a member's heartbeat before it counts the member gone (ms, Kafka's
   * `session.timeout.ms`). Default 30 000; 1 to 3 600 000 (librdkafka's range). The broker takes
   * only values within its `group.min.session.timeout.ms`..`group.max.session.timeout.ms`
   * (6 000..1 800 000 by default).
   */
  sessionTimeout?: number;
  /** How often a member heartbeats (ms, `heartbeat.interval.ms`). Default 3 000; less than `sessionTimeout` (kafkajs's rule; Kafka's docs advise a third of it at most). */
  heartbeatInterval?: number;
  /** How long the group waits for members to rejoin in a rebalance (ms; librdkafka's `max.poll.interval.ms`). Default 60 000; from `sessionTimeout` (librdkafka's rule) to 86 400 000. */
  rebalanceTimeout?: number;
  /** How long the broker holds a fetch open when there is nothing new; `close()` waits out one (ms, `fetch.wait.max.ms`). Default 1 000; 0 to 300 000 (librdkafka's range). */
  maxWaitTimeInMs?: number;
}

/** The consumer settings a worker uses when told none: see {@link ConsumerSettings}. */
export const CONSUMER_DEFAULTS: Readonly<Required<ConsumerSettings>> = {
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  rebalanceTimeout: 60_000,
  maxWaitTimeInMs: 1_000,
};

/**
 * This member's partitions changed (the Confluent client's `rebalance_cb`; kafkajs reports the
 * same through its consumer events, watched in runtime.ts): `assigned` with the whole assignment
 * (the eager protocol hands all of it at once), `revoked` when they are taken away to rebalance.
 */
export type GroupChange = { kind: 'assigned' | 'revoked'; assignment: Record<string, number[]> };

/** librdkafka's codes for a rebalance callback's two cases (rdkafka.h, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS). */
const ASSIGN_PARTITIONS = -175;

/** A consumer that commits only what it is told to and starts a new group at the beginning. */
export function createConsumer(
  kafka: KafkaClientLike,
  flavor: KafkaFlavor,
  groupId: string,
  settings: ConsumerSettings,
  onGroupChange?: (change: GroupChange) => void,
): KafkaConsumerLike {
  const base = {
    groupId,
    ...CONSUMER_DEFAULTS,
    ...settings,
  };
  if (flavor === 'confluent') {
    return kafka.consumer({
      kafkaJS: { ...base, fromBeginning: true, autoCommit: false },
      // Called after the client's own handling; returning nothing keeps its assignment as it is.
      ...(onGroupChange && {
        rebalance_cb: (error: { code: number }, partitions: Array<{ topic: string; partition: number }>) => {
          const assignment: Record<string, number[]> = {};
          for (const { topic, partition } of partitions) {
            assignment[topic] = [...(assignment[topic] ?? []), partition];
          }
          onGroupChange({ kind: error.code === ASSIGN_PARTITIONS ? 'assigned' : 'revoked', assignment });
        },
      }),
    });
  }
  return kafka.consumer({
    ...base,
    allowAutoTopicCreation: false,
    // An idle member (more workers than partitions) is named in the assignment too: see assigner.ts.
    partitionAssigners: [everyMemberRoundRobin],
  });
}

/** Subscribes and runs with manual commits; the differences between the clients stay here. */
export async function runConsumer(
  consumer: KafkaConsumerLike,
  flavor: KafkaFlavor,
  topics: string[],
  concurrency: number,
  eachBatch: (payload: KafkaBatchPayload) => Promise<void>,
): Promise<void> {
  if (flavor === 'confluent') {
    await consumer.subscribe({ topics });
    await consumer.run({
      eachBatch,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: concurrency,
    });
    return;
  }
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachBatch,
    eachBatchAutoResolve: false,
    autoCommit: false,
    partitionsConsumedConcurrently: concurrency,
  });
}

/** A header's value as text (the clients hand over Buffers, strings or arrays of them). */
export function headerText(headers: KafkaHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** A commit the group did not store: the Confluent client does not say why (most often a rebalance). */
export class CommitNotStoredError extends Error {
  override readonly name = 'CommitNotStoredError';
  constructor(readonly partitions: Array<{ topic: string; partition: number }>) {
    super(
      `the group did not store the commit of ${partitions.map((p) => `${p.topic}[${p.partition}]`).join(' ')} (most often: the group is rebalancing)`,
    );
  }
}

/**
 * Confirms that the group stored `offsets` (the next offset to read, per partition), or throws a
 * {@link CommitNotStoredError}. Needed for the Confluent client only: its `commitOffsets` resolves
 * once librdkafka has queued the commit (`commitAsync`), not once the group coordinator stored it,
 * and it hands the outcome only to its own internal `offset_commit_cb`, so a commit the group
 * refused looks like one it took. Reading the offsets back (OffsetFetch, sent after the
 * OffsetCommit to the same coordinator, which answers a connection's requests in order) says which.
 * An offset already beyond the one asked (another member committed later) counts as stored.
 */
export async function confirmCommitted(
  consumer: KafkaConsumerLike,
  offsets: Array<{ topic: string; partition: number; offset: string }>,
  timeoutMs = 10_000,
): Promise<void> {
  if (typeof consumer.committed !== 'function') return;
  const stored = await consumer.committed(
    offsets.map(({ topic, partition }) => ({ topic, partition })),
    timeoutMs,
  );
  const missing = offsets.filter((asked) => {
    const found = stored.find((s) => s.topic === asked.topic && s.partition === asked.partition);
    // The Confluent client answers null for offset 0 and for none stored: both are short of what
    // a commit asks (the offset after a finished record, so at least 1).
    return found?.offset == null || BigInt(found.offset) < BigInt(asked.offset);
  });
  if (missing.length > 0) throw new CommitNotStoredError(missing);
}
