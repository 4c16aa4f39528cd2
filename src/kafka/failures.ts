/**
 * Internal: what a Kafka client's error means to the worker. kafkajs wraps a broker's error code
 * in retry errors (`KafkaJSNonRetriableError` with the protocol error as `cause`); Confluent's
 * client carries librdkafka's code. This file walks the chain once so the rest need not.
 */
import { oneLine } from '../log.js';

/** Broker error codes (Kafka protocol) that mean "the group moved on": the commit is void, rejoin. */
const REBALANCE = new Map<string, number>([
  ['REBALANCE_IN_PROGRESS', 27],
  ['ILLEGAL_GENERATION', 22],
  ['UNKNOWN_MEMBER_ID', 25],
  ['NOT_COORDINATOR', 16],
  ['NOT_COORDINATOR_FOR_GROUP', 16],
  ['COORDINATOR_NOT_AVAILABLE', 15],
  ['COORDINATOR_LOAD_IN_PROGRESS', 14],
  ['FENCED_INSTANCE_ID', 82],
]);
const REBALANCE_CODES = new Set(REBALANCE.values());

interface ClientError {
  name?: unknown;
  message?: unknown;
  type?: unknown;
  code?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** The error and the errors it wraps, outermost first (at most 8 deep). */
function chain(error: unknown): ClientError[] {
  const out: ClientError[] = [];
  let current = error;
  while (typeof current === 'object' && current !== null && out.length < 8) {
    out.push(current as ClientError);
    const next = (current as ClientError).cause ?? (current as ClientError).originalError;
    if (next === current) break;
    current = next;
  }
  return out;
}

/**
 * True when a commit (or heartbeat) failed because the consumer group is rebalancing or this
 * member's generation is over: the offsets are void, the records go to whoever owns the
 * partition next.
 */
export function isRebalanceError(error: unknown): boolean {
  return chain(error).some(
    (e) =>
      (typeof e.type === 'string' && REBALANCE.has(e.type)) ||
      (typeof e.code === 'number' && REBALANCE_CODES.has(e.code)),
  );
}

/**
 * The broker's own error inside a rebalance failure (kafkajs wraps it in a retry error): thrown
 * from `eachBatch`, it makes kafkajs rejoin the group at once instead of fetching on.
 */
export function rebalanceCause(error: unknown): unknown {
  return chain(error).find((e) => typeof e.type === 'string' && REBALANCE.has(e.type)) ?? error;
}

/**
 * A client error as log fields: the outermost name and message, and the innermost broker error
 * type or socket code (`REBALANCE_IN_PROGRESS`, `ECONNREFUSED`). Kafka clients put no credentials
 * in their messages; the message is cut to one line of 300 characters anyway.
 */
export function kafkaErrorFields(error: unknown): Record<string, string> {
  const links = chain(error);
  const outer = links[0];
  if (!outer) return { name: typeof error, message: String(error).slice(0, 300) };
  const fields: Record<string, string> = {
    name: typeof outer.name === 'string' ? outer.name : 'Error',
    message: oneLine(String(outer.message ?? ''), 300),
  };
  for (const e of links) {
    if (fields.type === undefined && typeof e.type === 'string') fields.type = e.type;
    if (fields.code === undefined && (typeof e.code === 'string' || typeof e.code === 'number'))
      fields.code = String(e.code);
  }
  return fields;
}

/**
 * True for a failure to reach any broker (refused, unknown host, timed out connecting, or closed
 * by the broker as the client spoke: kafkajs's "Closed connection", which is what a plain client
 * gets from a TLS listener).
 */
export function isConnectionError(error: unknown): boolean {
  return chain(error).some(
    (e) =>
      e.name === 'KafkaJSConnectionError' ||
      e.name === 'KafkaJSConnectionClosedError' ||
      e.name === 'KafkaJSNoBrokerAvailableError' ||
      e.name === 'KafkaJSBrokerNotFound' ||
      (typeof e.code === 'string' &&
        /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH)$/.test(e.code)) ||
      (typeof e.message === 'string' && /Connection error|ECONNREFUSED|ENOTFOUND/.test(e.message)),
  );
}

const UNAVAILABLE = Symbol.for('mailroom.kafka-unavailable');

/**
 * The worker (or an email producer) could not reach Kafka. The message names the brokers (and
 * the topic), and `code` keeps the cause's (`ECONNREFUSED`, `ENOTFOUND` …) so a log line says
 * what was tried and why it failed, not only "Connection error".
 */
export class KafkaUnavailableError extends Error {
  override readonly name = 'KafkaUnavailableError';
  /** The brokers tried, as given in `brokers` (undefined when the worker was not told). */
  readonly brokers: readonly string[] | undefined;
  /** The socket or broker error code of the cause, when it has one. */
  readonly code: string | undefined;

  constructor(brokers: readonly string[] | undefined, topic: string, cause: unknown) {
    const fields = kafkaErrorFields(cause);
    const where = brokers?.length ? `the Kafka brokers ${brokers.join(',')}` : 'the Kafka brokers';
    super(`could not reach ${where} (topic ${topic}): ${fields.message || fields.name}`, { cause });
    Object.defineProperty(this, UNAVAILABLE, { value: true });
    this.brokers = brokers;
    this.code = fields.code ?? fields.type;
  }
}

/** True when `err` is a {@link KafkaUnavailableError} (also across two copies of the package). */
export function isKafkaUnavailableError(err: unknown): err is KafkaUnavailableError {
  return typeof err === 'object' && err !== null && UNAVAILABLE in err;
}

/**
 * True when the broker refused the consumer's session timeout as outside its
 * `group.min.session.timeout.ms`..`group.max.session.timeout.ms` (`INVALID_SESSION_TIMEOUT`, code
 * 26): a setting, which no restart changes.
 */
export function isSessionTimeoutRefused(error: unknown): boolean {
  return chain(error).some((e) => e.type === 'INVALID_SESSION_TIMEOUT');
}

/** True when the broker said a topic does not exist (kafkajs's `UNKNOWN_TOPIC_OR_PARTITION`, code 3). */
export function isUnknownTopicError(error: unknown): boolean {
  return chain(error).some((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e.code === 3);
}

/**
 * True when Kafka refused a record as larger than it accepts (`MESSAGE_TOO_LARGE`, code 10): the
 * topic's `max.message.bytes` or the broker's `message.max.bytes` (kafkajs and the Confluent
 * client from the broker), or librdkafka's own `message.max.bytes` before sending.
 */
export function isRecordTooLargeError(error: unknown): boolean {
  return chain(error).some(
    (e) =>
      e.type === 'MESSAGE_TOO_LARGE' ||
      (e.code === 10 &&
        typeof e.message === 'string' &&
        /message size too large|larger than the max message size/i.test(e.message)),
  );
}

const TOPIC_MISSING = Symbol.for('mailroom.kafka-topic-missing');

/** Kafka's authorizer leaves a topic the user may not DESCRIBE out of its Metadata answers: it reads as one that does not exist. */
const NOT_SEEN = '; a topic the Kafka user may not see (no DESCRIBE on it) reads as missing too';

/**
 * The worker's topics (or the producer's topic) are not on the cluster, and the cluster does not
 * create topics on demand (`auto.create.topics.enable=false`, as production clusters are set;
 * mailroom never asks for auto-creation either). Create them, with their partitions and
 * replication, before starting a worker or publishing. A producer's publish rejects with an
 * `EmailError` (`code: 'config'`) whose `cause` is this error.
 */
export class KafkaTopicMissingError extends Error {
  override readonly name = 'KafkaTopicMissingError';
  /** The missing topics, e.g. `['notifications.email', 'notifications.email.retry']`: all the worker subscribes to when the cluster could not be asked which. */
  readonly topics: readonly string[];

  constructor(topics: readonly string[], known: boolean, cause: unknown) {
    const names = topics.join(', ');
    super(
      known
        ? `the Kafka topic${topics.length > 1 ? 's' : ''} ${names} ${topics.length > 1 ? 'do' : 'does'} not exist, and the cluster does not create topics on demand: create ${topics.length > 1 ? 'them' : 'it'} first (with the retry and dead-letter topics)${NOT_SEEN}`
        : `a Kafka topic of ${names} does not exist, and the cluster does not create topics on demand: create them first${NOT_SEEN}`,
      { cause },
    );
    Object.defineProperty(this, TOPIC_MISSING, { value: true });
    this.topics = topics;
  }
}

/** True when `err` is a {@link KafkaTopicMissingError} (also across two copies of the package). */
export function isKafkaTopicMissingError(err: unknown): err is KafkaTopicMissingError {
  return typeof err === 'object' && err !== null && TOPIC_MISSING in err;
}

/**
 * True when the broker refused the client access to a topic (`TOPIC_AUTHORIZATION_FAILED`, code
 * 29: the Kafka user has no WRITE on it, for a producer).
 */
export function isTopicAuthorizationError(error: unknown): boolean {
  return chain(error).some(
    (e) =>
      e.type === 'TOPIC_AUTHORIZATION_FAILED' ||
      e.type === 'ERR_TOPIC_AUTHORIZATION_FAILED' ||
      (e.code === 29 && typeof e.message === 'string' && /authoriz/i.test(e.message)),
  );
}

const FORWARD = Symbol.for('mailroom.kafka-forward');

/**
 * The worker could not write a record to its retry, delay or dead-letter topic (`topic`). Nothing
 * is lost: the record it came from is not committed, and its partition waits, then fetches it
 * again (the worker's `error` event and its `worker.forward_failed` log line say how long). An
 * email the worker had already sent to some recipients is not sent again by it: only the copies
 * for the recipients who refused it are written then.
 *
 * The message says what to change when it is a setting: a record larger than `topic` takes (its
 * `max.message.bytes`, or the broker's `message.max.bytes`: Kafka's `MESSAGE_TOO_LARGE`), or a
 * Kafka user without WRITE on `topic` (`TOPIC_AUTHORIZATION_FAILED`). `cause` is the client's error.
 */
export class KafkaForwardError extends Error {
  override readonly name = 'KafkaForwardError';
  /** The topic the record was for. */
  readonly topic: string;
  /** The record's size in bytes: value, key and headers (names and values), as UTF-8. */
  readonly bytes: number;
  /**
   * `MESSAGE_TOO_LARGE` or `TOPIC_AUTHORIZATION_FAILED` (Kafka's error names, from either client);
   * else the broker's error type or the socket's code of the cause (`ECONNREFUSED`), when it has one.
   */
  readonly code: string | undefined;

  constructor(topic: string, bytes: number, cause: unknown) {
    const fields = kafkaErrorFields(cause);
    const tooLarge = isRecordTooLargeError(cause);
    const denied = !tooLarge && isTopicAuthorizationError(cause);
    super(
      tooLarge
        ? `Kafka refused a record of ${bytes} bytes for ${topic} as too large: raise that topic's max.message.bytes (and the broker's message.max.bytes when it is lower) above the largest record the worker consumes plus 10 KiB for the headers it adds`
        : denied
          ? `the Kafka user may not write to ${topic} (no WRITE on it): grant WRITE on the retry, delay and dead-letter topics`
          : `could not write a record to ${topic}: ${fields.message || fields.name}`,
      { cause },
    );
    Object.defineProperty(this, FORWARD, { value: true });
    this.topic = topic;
    this.bytes = bytes;
    // Kafka's names for the two a setting fixes, whichever client (librdkafka says ERR_MSG_SIZE_TOO_LARGE).
    this.code = tooLarge
      ? 'MESSAGE_TOO_LARGE'
      : denied
        ? 'TOPIC_AUTHORIZATION_FAILED'
        : (fields.type ?? fields.code);
  }
}

/** True when `err` is a {@link KafkaForwardError} (also across two copies of the package). */
export function isKafkaForwardError(err: unknown): err is KafkaForwardError {
  return typeof err === 'object' && err !== null && FORWARD in err;
}
