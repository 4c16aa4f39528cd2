/**
 * The producer: validates an email into an envelope and publishes it to `notifications.email`,
 * resolving only once every in-sync replica has it. It is also an `EmailQueue`, so an
 * `EmailService({ queue: producer })` publishes instead of sending.
 */
import { EmailError, TemplateError } from '../errors.js';
import type { QueuedEmail, QueueReceipt } from '../queue.js';
import { BUILTIN_CATEGORIES, BUILTIN_FIELDS } from '../templates/builtins.js';
import { checkData } from '../templates/compile.js';
import { categoryOf, type TemplateHandle } from '../templates/define.js';
import type { MailroomTemplates } from '../templates/names.js';
import {
  connectOrDisconnect,
  createProducer,
  flavorOf,
  type KafkaClientLike,
  type KafkaFlavor,
  type KafkaProducerLike,
  keepDisconnectError,
  missingTopics,
  sendRecords,
} from './client.js';
import { type BuiltEnvelope, buildEnvelope, type EnvelopeLimits, resolveLimits } from './envelope.js';
import {
  isConnectionError,
  isKafkaTopicMissingError,
  isKafkaUnavailableError,
  isRecordTooLargeError,
  isTopicAuthorizationError,
  isUnknownTopicError,
  KafkaTopicMissingError,
  KafkaUnavailableError,
} from './failures.js';

/** The topic emails are published to unless told otherwise. */
export const DEFAULT_TOPIC = 'notifications.email';

/**
 * Internal: why `name` cannot be a Kafka topic (Kafka's own rule: 1 to 249 of `a-z A-Z 0-9 . _ -`,
 * not `.` or `..`); undefined when it can. Such a name would only read as a topic that "does not
 * exist", which the cluster then refuses to create.
 */
export function topicNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `must be a topic name (a string), not ${typeof name}`;
  if (name === '') return 'is empty: a Kafka topic name has 1 to 249 characters';
  if (name === '.' || name === '..') return `${JSON.stringify(name)} cannot be a Kafka topic name`;
  if (name.length > 249) return `is ${name.length} characters long; a Kafka topic name has at most 249`;
  const bad = /[^a-zA-Z0-9._-]/.exec(name);
  if (bad)
    return `${JSON.stringify(name)} is not a Kafka topic name: ${JSON.stringify(bad[0])} is not allowed (only letters, digits, ".", "_" and "-")`;
  return undefined;
}

/** Options of {@link createEmailProducer}. */
export interface EmailProducerOptions extends EnvelopeLimits {
  /** `new Kafka({ brokers })` (kafkajs) or `new KafkaJS.Kafka({ kafkaJS: { brokers } })` (Confluent). */
  kafka: KafkaClientLike;
  /** Default `notifications.email`. */
  topic?: string;
  /** Which client `kafka` is; detected when omitted. */
  flavor?: KafkaFlavor;
  /**
   * The brokers `kafka` was made with, e.g. `['kafka-1:9092']`. Only for errors (the client is not
   * asked for them): "could not reach the Kafka brokers kafka-1:9092".
   */
  brokers?: readonly string[];
}

/** Where a published envelope landed. */
export interface PublishReceipt extends QueueReceipt {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** An email to publish with a template handle: its data type-checks against the template. */
export type TemplateEmail<Data extends object> = Omit<QueuedEmail, 'template' | 'data'> & {
  template: TemplateHandle<Data>;
  data: Data;
};

/**
 * An email to publish with a template's name declared in `MailroomTemplates` (the built-in emails,
 * and yours once declared): its data type-checks against that template.
 */
export type BuiltinEmail = {
  [Name in keyof MailroomTemplates]: Omit<QueuedEmail, 'template' | 'data'> & {
    template: Name;
    data: MailroomTemplates[Name];
  };
}[keyof MailroomTemplates];

/**
 * An email with another template's name (checked by the worker's registry), or pre-rendered
 * (`subject` with `html`/`text`, no template). A declared name must use {@link BuiltinEmail}.
 */
export type CustomEmail<Name extends string = never> = Omit<QueuedEmail, 'template'> & {
  template?: Name extends keyof MailroomTemplates ? never : Name;
};

/** Publishes email envelopes to Kafka. */
export interface EmailProducer {
  readonly name: 'kafka';
  readonly topic: string;
  /**
   * Connects; `publish` also connects on first use. Rejects with a `KafkaUnavailableError` naming
   * the brokers (`code`: the socket's, e.g. `ECONNREFUSED`) when no broker can be reached (refused,
   * unknown host, timed out, or a connection the broker closed: a plain client on a TLS listener),
   * and with a `KafkaTopicMissingError` when the cluster lacks the topic. A connect Kafka refuses
   * leaves nothing connected (no socket keeps the process alive; if disconnecting failed too, that
   * error is the rejection's `disconnectError`), and a later call tries again.
   */
  connect(): Promise<void>;
  /**
   * Validates one email and publishes it. Resolves after the broker acknowledged it from all
   * in-sync replicas; throws a `MessageError` or `TemplateError` (nothing published) for bad input
   * (a handle's or a built-in's data by field; security mail given another `category`, naming
   * `category`), and an `EmailError` (`network`, retryable) when Kafka did not take it: its
   * `failure` is `transient` when the producer could not connect, `ambiguous` when the request had
   * gone out (Kafka may have the email: publish it again with the same `idempotencyKey`, which the
   * worker sends once); `rejected`, permanent, when Kafka refused the record as too large; `config`,
   * systemic, when the topic does not exist or the Kafka user may not write to it. `signal` stops
   * the wait.
   */
  publish<Data extends object>(email: TemplateEmail<Data>, options?: PublishOptions): Promise<PublishReceipt>;
  publish(email: BuiltinEmail, options?: PublishOptions): Promise<PublishReceipt>;
  publish<Name extends string = never>(
    email: CustomEmail<Name>,
    options?: PublishOptions,
  ): Promise<PublishReceipt>;
  /** Publishes many in one request, all validated before any is sent (backfills, benchmarks). */
  publishMany(
    emails: ReadonlyArray<QueuedEmail | BuiltinEmail | TemplateEmail<object>>,
  ): Promise<QueueReceipt[]>;
  /** The `EmailQueue` side: what `EmailService({ queue })` calls. */
  enqueue(email: QueuedEmail, options?: PublishOptions): Promise<PublishReceipt>;
  /**
   * Waits for the publishes already called to be answered (each resolves or rejects as Kafka
   * answers it, within the client's own timeouts), then closes the connection.
   */
  disconnect(): Promise<void>;
}

/** Per-publish options. */
export interface PublishOptions {
  /**
   * Stops waiting for the broker. Before the request (also while connecting) nothing is published;
   * after, it may have been: the error's message says which.
   */
  signal?: AbortSignal;
}

/**
 * Makes a producer for email envelopes.
 *
 * @example
 * ```ts
 * import { Kafka } from 'kafkajs';
 * import { EmailService } from 'mailroom-js';
 * import { createEmailProducer } from 'mailroom-js/kafka';
 *
 * const producer = createEmailProducer({ kafka: new Kafka({ brokers: ['kafka:9092'] }) });
 * const mail = new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', queue: producer });
 * await mail.sendVerificationEmail({ to, username, verificationUrl }); // published, not sent
 * ```
 */
export function createEmailProducer(options: EmailProducerOptions): EmailProducer {
  if (typeof options?.kafka?.producer !== 'function') {
    throw new TypeError('createEmailProducer: kafka must be a Kafka client (kafkajs or Confluent KafkaJS)');
  }
  const topic = options.topic ?? DEFAULT_TOPIC;
  if (typeof topic !== 'string' || topic === '')
    throw new TypeError('createEmailProducer: topic must be a name');
  const badTopic = topicNameProblem(topic);
  if (badTopic !== undefined) throw new TypeError(`createEmailProducer: topic ${badTopic}`);
  const brokers = options.brokers;
  if (brokers !== undefined && !Array.isArray(brokers))
    throw new TypeError('createEmailProducer: brokers must be an array of host:port strings');
  const unavailable = (error: unknown) => {
    if (isKafkaUnavailableError(error) || !isConnectionError(error)) return error;
    const wrapped = new KafkaUnavailableError(brokers, topic, error);
    const { disconnectError } = error as { disconnectError?: unknown };
    if (disconnectError !== undefined) keepDisconnectError(wrapped, disconnectError);
    return wrapped;
  };
  const flavor = flavorOf(options.kafka, options.flavor);
  const limits = resolveLimits(options);
  let producer: KafkaProducerLike | undefined;
  let connecting: Promise<KafkaProducerLike> | undefined;
  /** Publishes called and not yet answered: `disconnect()` lets them finish first. */
  const inflight = new Set<Promise<unknown>>();

  const connected = () => {
    connecting ??= (async () => {
      // Kafka clients wait out their retries (kafkajs ~9 s, librdkafka's message timeout) before they
      // say a topic is missing: ask the cluster once, first. A cluster that cannot be asked (an
      // admin the Kafka user may not use) is sent to; one that cannot be reached is not tried twice.
      const missing = await missingTopics(options.kafka, [topic]).catch((error: unknown) => {
        if (isConnectionError(error)) throw error;
        return undefined;
      });
      if (missing?.length) throw new KafkaTopicMissingError(missing, true, undefined);
      const made = createProducer(options.kafka, flavor);
      await connectOrDisconnect(made);
      producer = made;
      return made;
    })().catch((error: unknown) => {
      connecting = undefined;
      throw unavailable(error);
    });
    return connecting;
  };

  const toEnvelope = (email: QueuedEmail | BuiltinEmail | TemplateEmail<object>): BuiltEnvelope => {
    const template = email.template;
    // Refused here as the worker's service would refuse it: security mail sent as another category.
    // What is published is the data as checked (a getter's value too, which JSON would leave out).
    if (typeof template === 'object' && template !== null) {
      const data = checkData(template.name, template.fields, email.data);
      categoryOf(template, email.category);
      return buildEnvelope({ ...email, template: template.name, data } as QueuedEmail, limits);
    }
    // A built-in's fields are known here too; other names are checked by the worker's registry.
    if (typeof template === 'string' && Object.hasOwn(BUILTIN_FIELDS, template)) {
      const name = template as keyof typeof BUILTIN_FIELDS;
      const data = checkData(name, BUILTIN_FIELDS[name], email.data);
      categoryOf({ name, category: BUILTIN_CATEGORIES[name] }, email.category);
      return buildEnvelope({ ...email, data } as QueuedEmail, limits);
    }
    // Other names: the worker's registry knows the fields; what is published must be what a render
    // in this process would read, or refused here.
    if (typeof template === 'string' && email.data !== undefined)
      return buildEnvelope({ ...email, data: carriedData(template, email.data) } as QueuedEmail, limits);
    return buildEnvelope(email as QueuedEmail, limits);
  };

  /**
   * Publishes envelopes in one request; resolves with the broker's answer. A Kafka failure becomes
   * an `EmailError` naming the topic (see {@link publishError}), so callers need not know the client.
   */
  const send = async (built: BuiltEnvelope[], signal?: AbortSignal) => {
    if (signal?.aborted) throw aborted(signal, 'before publishing; nothing was published');
    const records = built.map(({ envelope, json, key }) => ({
      key,
      value: json,
      headers: envelope.traceparent
        ? { 'mailroom-envelope-version': '1', traceparent: envelope.traceparent }
        : { 'mailroom-envelope-version': '1' },
    }));
    // A connection lost after connecting (a broker restarting) names the brokers as at connect.
    const failed =
      (sent: boolean) =>
      (error: unknown): never => {
        throw publishError(topic, unavailable(error), built, sent);
      };
    let requested = false;
    const sending = connected().then((client) => {
      // Aborted while connecting: nothing was asked of Kafka, and nothing is.
      if (signal?.aborted) throw aborted(signal, 'before publishing; nothing was published');
      requested = true;
      return sendRecords(client, flavor, topic, records).catch(failed(true));
    }, failed(false));
    const settled = sending.then(
      () => {},
      () => {},
    );
    inflight.add(settled);
    void settled.then(() => inflight.delete(settled));
    if (!signal) return sending;
    // The client cannot take a request back: an abort stops the wait, not the publish.
    return new Promise<Awaited<typeof sending>>((resolve, reject) => {
      const onAbort = () =>
        reject(
          requested
            ? aborted(signal, 'while publishing; the email may still be published')
            : aborted(signal, 'before publishing; nothing was published'),
        );
      signal.addEventListener('abort', onAbort, { once: true });
      sending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };

  const publish = async (
    email: QueuedEmail | BuiltinEmail | TemplateEmail<object>,
    options: { signal?: AbortSignal } = {},
  ): Promise<PublishReceipt> => {
    const built = toEnvelope(email);
    const { envelope } = built;
    const [landed] = await send([built], options.signal);
    return {
      id: envelope.id,
      idempotencyKey: envelope.idempotencyKey,
      topic,
      partition: landed?.partition ?? -1,
      offset: landed?.baseOffset ?? landed?.offset ?? '-1',
    };
  };

  return {
    name: 'kafka',
    topic,
    connect: async () => {
      await connected();
    },
    publish: publish as EmailProducer['publish'],
    publishMany: async (emails) => {
      const built = emails.map(toEnvelope);
      if (built.length > 0) await send(built);
      return built.map(({ envelope }) => ({
        id: envelope.id,
        idempotencyKey: envelope.idempotencyKey,
        topic,
      }));
    },
    enqueue: publish,
    disconnect: async () => {
      // Publishes already called go out (or fail as Kafka answers) before the client closes:
      // closing under them failed each with the client's "not connected".
      while (inflight.size > 0) await Promise.all(inflight);
      const current = producer ?? (connecting ? await connecting.catch(() => undefined) : undefined);
      producer = undefined;
      connecting = undefined;
      await current?.disconnect();
    },
  };
}

/**
 * A failed publish as an `EmailError` naming the topic: a topic the cluster lacks, or one the Kafka
 * user may not write to (`TOPIC_AUTHORIZATION_FAILED`), is `config` (systemic: retrying does not
 * create it or grant WRITE; for a missing one `cause` is a `KafkaTopicMissingError`), a record larger
 * than Kafka accepts `rejected` (permanent: it never goes through as it is), anything else
 * `network`: transient before the records were handed to the client (`sent` false: connecting
 * failed), ambiguous after (a broker may have written them).
 */
function publishError(
  topic: string,
  error: unknown,
  built: readonly BuiltEnvelope[],
  sent: boolean,
): EmailError {
  if (isRecordTooLargeError(error)) {
    // The largest record (reduce: spreading a backfill's many sizes would overflow the call stack).
    const bytes = built.reduce((most, { json }) => Math.max(most, Buffer.byteLength(json)), 0);
    return new EmailError(
      `could not publish to ${topic}: Kafka refused a record of ${bytes} bytes as too large (the topic's max.message.bytes or the broker's message.max.bytes); set the producer's maxEnvelopeBytes below that limit to have such an email refused before publishing`,
      { code: 'rejected', transport: 'kafka', cause: error },
    );
  }
  // A setting, as a missing topic is: publishing again changes nothing, and nothing was written.
  if (isTopicAuthorizationError(error)) {
    return new EmailError(
      `could not publish to ${topic}: the Kafka user may not write to ${topic} (no WRITE on it): grant it WRITE`,
      { code: 'config', transport: 'kafka', cause: error },
    );
  }
  if (isKafkaTopicMissingError(error) || isUnknownTopicError(error)) {
    const missing = isKafkaTopicMissingError(error)
      ? error
      : new KafkaTopicMissingError([topic], true, error);
    return new EmailError(`could not publish to ${topic}: ${missing.message}`, {
      code: 'config',
      transport: 'kafka',
      cause: missing,
    });
  }
  // Once the records were handed to the client, a failure (a timeout, a connection lost, retries run
  // out) does not say whether a broker wrote them: Kafka may have the email.
  const maybe = sent
    ? '; Kafka may have it (the request had gone out): publish it again with the same idempotencyKey and the worker sends it once'
    : '';
  return new EmailError(`could not publish to ${topic}: ${(error as Error)?.message ?? error}${maybe}`, {
    code: 'network',
    transport: 'kafka',
    handedOver: sent,
    cause: error,
  });
}

function aborted(signal: AbortSignal, when: string): EmailError {
  return new EmailError(`the publish was aborted ${when}`, {
    code: 'aborted',
    transport: 'kafka',
    cause: signal.reason,
  });
}

/** How deep template data may nest in an envelope: rows of label and value are two levels. */
const MAX_DATA_DEPTH = 16;

/**
 * Template data published by a name this producer does not know, as JSON will carry it: plain
 * objects (own properties, getters read once), arrays, strings, finite numbers, booleans, null
 * and valid Dates (sent as ISO 8601, which a `datetime` field reads as the same instant). Whatever
 * JSON would change or drop is a `TemplateError` naming its path instead, since a render in this
 * process would have seen it and the worker's would not: a class instance's or an inherited
 * property, a non-enumerable or `__proto__` key, a Map or Set, a `toJSON`, a function, a symbol,
 * a BigInt, NaN or Infinity, `undefined` in a list, an invalid Date, a cycle, or nesting deeper
 * than 16.
 */
function carriedData(template: string, data: unknown): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new TemplateError(template, 'data must be an object');
  return carried(template, data, '', 0, []) as Record<string, unknown>;
}

function carried(template: string, value: unknown, path: string, depth: number, within: object[]): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : uncarried(template, path, `is ${value}`);
    case 'object':
      break;
    default:
      return uncarried(template, path, `is a ${typeof value}`);
  }
  if (value === null) return null;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? uncarried(template, path, 'is an invalid Date') : value;
  if (depth >= MAX_DATA_DEPTH) uncarried(template, path, `nests deeper than ${MAX_DATA_DEPTH}`);
  if (within.includes(value)) uncarried(template, path, 'refers to itself');
  const inside = [...within, value];
  if (Array.isArray(value)) {
    return Array.from(value, (item, i) =>
      item === undefined
        ? uncarried(template, `${path}[${i}]`, 'is undefined')
        : carried(template, item, `${path}[${i}]`, depth + 1, inside),
    );
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const kind =
      Object.hasOwn(proto, 'constructor') && typeof proto.constructor === 'function'
        ? proto.constructor.name
        : '';
    uncarried(
      template,
      path,
      `is ${kind ? `a ${kind}` : 'not a plain object'} (its inherited properties would be lost)`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(value)) {
    const at = path ? `${path}.${key}` : key;
    if (!Object.prototype.propertyIsEnumerable.call(value, key)) uncarried(template, at, 'is not enumerable');
    // An own `__proto__` (JSON.parse makes one) would set the copy's prototype instead of a key.
    if (key === '__proto__') uncarried(template, at, 'is not a name a template can read');
    let item: unknown;
    try {
      item = (value as Record<string, unknown>)[key];
    } catch (cause) {
      throw new TemplateError(template, 'could not be read (its getter threw)', { field: at, cause });
    }
    if (key === 'toJSON' && typeof item === 'function') uncarried(template, at, 'would replace the data');
    if (item !== undefined) out[key] = carried(template, item, at, depth + 1, inside);
  }
  return out;
}

/** A value JSON would change or drop: a `TemplateError` naming where it is. */
function uncarried(template: string, path: string, problem: string): never {
  throw new TemplateError(template, `${problem}, which a Kafka envelope (JSON) cannot carry as it is`, {
    field: path || 'data',
  });
}
