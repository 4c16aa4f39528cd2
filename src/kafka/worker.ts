/**
 * The worker: consumes envelopes, renders, sends through an EmailService, and decides what each
 * failure means. Sent, parked on the retry topic, or dead-lettered: only then is the offset
 * committed. Systemic failures pause consumption instead of dead-lettering the backlog. A commit
 * a rebalance refuses is expected, a consumer crash is recovered, and a worker that truly cannot
 * go on says so (`fatal`, `untilClosed()` rejects) instead of idling with its process alive.
 * This file checks the options and documents the API; runtime.ts runs it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError, type EmailError } from '../errors.js';
import type { Logger } from '../log.js';
import { type RetryOptions, resolveRetry } from '../retry.js';
import type { EmailService } from '../service.js';
import { mayCapture, type SendResult, type SuppressedRecipient } from '../transport.js';
import {
  CONSUMER_DEFAULTS,
  type ConsumerSettings,
  flavorOf,
  type KafkaClientLike,
  type KafkaFlavor,
} from './client.js';
import { type EnvelopeLimits, type EnvelopeV1, resolveLimits } from './envelope.js';
import {
  type IdempotencyStore,
  type IdempotencyStoreError,
  resolveStore,
  type SentKeyStore,
} from './idempotency.js';
import { DEFAULT_TOPIC, topicNameProblem } from './producer.js';
import type { DeadLetterReason, DelayTier, PossibleDuplicate, RecordPosition } from './records.js';
import { MAX_TIMER_MS, RUNTIME, WorkerRuntime } from './runtime.js';

export {
  type DeadLetterReason,
  type DelayTier,
  HEADERS,
  type PossibleDuplicate,
  type RecordPosition,
} from './records.js';

/** How the worker retries. */
export interface WorkerRetryOptions {
  /** Send attempts in all, across redeliveries, before dead-lettering. Default 10. */
  maxAttempts?: number;
  /** The short in-process retry before parking on the retry topic. Default 3 attempts within 10 s. */
  inProcess?: RetryOptions | false;
  /**
   * The wait before a parked email is tried again (ms), doubling each round up to `maxDelayMs`;
   * each wait is drawn between half of it and all of it ("equal jitter"), so emails parked together
   * do not all come back at once. Default 30 000: the first wait is 15–30 s. A whole number from 1.
   */
  baseDelayMs?: number;
  /** The longest such wait before its jitter (ms). Default 600 000; at least `baseDelayMs`. */
  maxDelayMs?: number;
}

/** Options of {@link createEmailWorker}. */
export interface EmailWorkerOptions extends EnvelopeLimits {
  /** `new Kafka({ brokers })` (kafkajs) or `new KafkaJS.Kafka({ kafkaJS: { brokers } })` (Confluent). */
  kafka: KafkaClientLike;
  /**
   * Renders and sends; a service without a `queue`. Its templates must include every template
   * published. A transport that captures mail (`memory`, `sandbox`, a provider's test mode), or
   * a failover or round robin with one behind it (`capturesSome`), is refused unless
   * `allowCapturingTransport` is set: the worker would commit emails nobody receives.
   */
  service: EmailService;
  /**
   * Lets the worker send through a transport that keeps all or some mail instead of delivering it
   * (`transport.captures` or `capturesSome`: memory, sandbox, a provider's test mode, a failover to
   * one of them). For tests and pre-production only: the records are
   * committed, so the emails are gone from the topic. Default false.
   */
  allowCapturingTransport?: boolean;
  /**
   * The brokers `kafka` was made with, e.g. `['kafka-1:9092']`. Only for log lines and errors
   * (the client is not asked for them): "could not reach the Kafka brokers kafka-1:9092".
   */
  brokers?: readonly string[];
  /** Default `mailroom-email-worker`. */
  groupId?: string;
  /** Default `notifications.email`. */
  topic?: string;
  /** Default `<topic>.retry`. */
  retryTopic?: string;
  /** Default `<topic>.dlq`. */
  deadLetterTopic?: string;
  /**
   * Send later: also consume the delay topics `<delayTopicPrefix>.1m`, `.10m`, `.1h` and `.6h`
   * ({@link DELAY_TIERS}), which must exist like the retry topic (never created on demand). A
   * record not yet due (its `sendAt`, or the service's `quietHours` for `product`/`marketing`
   * mail) is published to the longest tier not past its due time and committed; each tier holds
   * its records a constant time, so its head is always the first due and a partition waits only
   * for its own head, never behind an email due days later. When a record comes up it hops to the
   * next tier, or is sent once due. A record due in less than a minute waits on `.1m` until due,
   * late by at most a minute when it is behind another there; never early. Every hop is
   * published before the record is committed (at least once; counted in `stats.delayed`, the
   * `delayed` event). Default false: a record not yet due is dead-lettered as `not-due` (never sent
   * early, never waited for).
   */
  delayTopics?: boolean;
  /** The delay topics' common prefix. Default `<topic>.delay`. */
  delayTopicPrefix?: string;
  /** Sends in flight at once, across partitions. Default 10. */
  concurrency?: number;
  retry?: WorkerRetryOptions;
  /**
   * How long a systemic failure (auth, account, TLS) pauses consumption before it is tried again
   * (ms). Default 60 000; a whole number from 1 to 2^31 − 1 (setTimeout's longest), else a TypeError.
   */
  pauseMs?: number;
  /**
   * Where the worker claims each email's key before sending and marks it sent after, so a
   * redelivered record is not sent again. Share one store (`redisIdempotencyStore`) between
   * workers on several machines; the default, `memoryIdempotencyStore()`, covers one process (the
   * last 10 000 keys). A mailroom 0.1 store with only `has`/`add` still works (adapted by
   * `fromSentKeyStore`: no leases across processes).
   */
  idempotencyStore?: IdempotencyStore | SentKeyStore;
  /** Session and heartbeat settings of the consumer. */
  consumer?: ConsumerSettings;
  /**
   * How many times in a row the worker replaces a consumer the Kafka client gave up on (a crash
   * kafkajs does not restart), before it emits `fatal` and closes. Default 5.
   */
  maxRestarts?: number;
  /**
   * How long `close()` (and a signal, with `handleSignals`) lets in-flight sends finish before
   * aborting them (ms); the commits and leaving the group come after. Default 30 000: give a
   * supervisor's grace period (Kubernetes' `terminationGracePeriodSeconds`, 30 s by default) more.
   */
  shutdownDeadlineMs?: number;
  /**
   * On SIGTERM and SIGINT, close gracefully, then close the service's transport. Default false.
   * Watched from the moment `start()` is called: a signal during the start stops it as `close()`
   * does (`start()` rejects saying so, naming the signal), and the process is not killed.
   */
  handleSignals?: boolean;
  /** Which client `kafka` is; detected when omitted. */
  flavor?: KafkaFlavor;
  /** Where the worker's log lines go; see `kafkaLogCreator` to send the Kafka client's there too. */
  logger?: Logger;
}

/** Events an {@link EmailWorker} emits. */
export interface EmailWorkerEvents {
  /**
   * Delivered (to every recipient, or to some: then `result.deferred` went to the retry topic and
   * `result.rejected` to the dead-letter topic, each as a copy of the email narrowed to them).
   * `latencyMs` runs from the envelope's `createdAt`.
   */
  sent: RecordPosition & { envelope: EnvelopeV1; result: SendResult; attempts: number; latencyMs: number };
  /** Parked on the retry topic until `notBefore` (the whole email, or a copy narrowed to deferred recipients). */
  retried: RecordPosition & { envelope: EnvelopeV1; error: unknown; attempts: number; notBefore: Date };
  /** Sent to the dead-letter topic. `envelope` is missing when the record was not a valid envelope. */
  'dead-lettered': RecordPosition & {
    envelope: EnvelopeV1 | undefined;
    reason: DeadLetterReason;
    error: unknown;
    attempts: number;
  };
  /**
   * Every `to` recipient is on the service's suppression list (a hard bounce, a complaint) or
   * turned the email's category off in the service's preferences: nothing was sent, the record is committed and its key marked done, so it is not sent when the
   * suppression is lifted later. Counted in `stats.suppressed`. An email whose other recipients
   * got it is `sent`, with the left-out ones in `result.suppressed`. `security` mail is never
   * suppressed.
   */
  suppressed: RecordPosition & { envelope: EnvelopeV1; suppressed: readonly SuppressedRecipient[] };
  /** Already sent (its idempotency key was seen): committed without sending again. */
  duplicate: RecordPosition & { envelope: EnvelopeV1 };
  /**
   * Not yet due (`dueAt`: its `sendAt`, or the end of quiet hours): moved to `delayTopic`, where it
   * comes up again at `notBefore`. Counted in `stats.delayed` (once per hop).
   */
  delayed: RecordPosition & { envelope: EnvelopeV1; dueAt: Date; notBefore: Date; delayTopic: string };
  /**
   * Another worker holds the key's lease (it is sending this email now): the record was parked on
   * the retry topic until `until`, its attempts unchanged. Then it is skipped if that worker marked
   * it sent, or sent if it released it or died.
   */
  held: RecordPosition & { envelope: EnvelopeV1; owner: string; until: Date };
  /**
   * This email may go out twice: the worker took over a lease another worker let run out (it died
   * mid-send: `lease-expired`, naming it), or its own lease ran out before it marked the email sent
   * (`lease-lost`). Counted in `stats.possibleDuplicates`; never silent.
   */
  'possible-duplicate': RecordPosition & PossibleDuplicate & { envelope: EnvelopeV1 };
  /**
   * A systemic failure paused consumption: an alert for whoever runs the worker. An
   * `IdempotencyStoreError` when the store could not answer a claim (nothing was sent).
   */
  paused: { error: EmailError | IdempotencyStoreError; resumeAt: Date };
  resumed: Record<string, never>;
  /**
   * Something went wrong outside one email; the records are redelivered. A `KafkaForwardError`
   * when a record could not be written to the retry, delay or dead-letter topic (its partition
   * waits, then fetches it again); else the consumer crashed, or a commit failed.
   */
  error: { error: unknown };
  /**
   * The worker cannot go on (the consumer failed `maxRestarts + 1` times in a row) and closes;
   * `untilClosed()` rejects with the same error. Exit the process non-zero so a supervisor restarts it.
   */
  fatal: { error: unknown };
}

/** Counts since `start()`. */
export interface EmailWorkerStats {
  sent: number;
  retried: number;
  deadLettered: number;
  /** Records skipped because their idempotency key was already sent (redeliveries after a rebalance, producer retries). */
  duplicates: number;
  /** Records committed without sending because every `to` recipient is suppressed: see the `suppressed` event. */
  suppressed: number;
  /** Sends that may repeat another worker's (a lease that ran out): see the `possible-duplicate` event. */
  possibleDuplicates: number;
  /** Records parked because another worker held their key's lease. */
  held: number;
  /** Hops onto a delay topic of records not yet due (`sendAt`, quiet hours): see the `delayed` event. */
  delayed: number;
  /** Commits refused because the group was rebalancing: their records are delivered to the partition's next owner. */
  commitsRefused: number;
  /** Consumer restarts after a crash (by the Kafka client or by the worker). */
  restarts: number;
  /**
   * Records the worker could not write to its retry, delay or dead-letter topic (each try): their
   * partition waits, then fetches them again. See `waiting` in `workerHealth()` and the `error` event.
   */
  forwardFailures: number;
}

/** A running worker. */
export interface EmailWorker {
  /**
   * Connects, subscribes to the topic and the retry topic (a new group starts at the beginning) and
   * runs. Rejects with a `KafkaUnavailableError` naming the brokers when Kafka cannot be reached,
   * and with a `KafkaTopicMissingError` naming the topics when they do not exist (mailroom never
   * has them created on demand: create the topic, retry and dead-letter topics first). A refused
   * start leaves nothing connected and the worker closed (a process that gives up can exit; to
   * try again, make a new worker); if disconnecting failed too, that error is the rejection's
   * `disconnectError`. Call it once.
   */
  start(): Promise<void>;
  /**
   * Stops fetching, lets in-flight sends finish (within the deadline), commits and disconnects.
   * During `start()`, the start stops at its next step (a connect in progress is waited for), and
   * `start()` rejects saying the worker was closed.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
  /**
   * Resolves once the worker is closed (`close()`, a signal); rejects with the error when it
   * stopped because it cannot go on (see the `fatal` event). Await it in a worker process and exit
   * non-zero on a rejection.
   */
  untilClosed(): Promise<void>;
  /** Resumes at once after a systemic pause. */
  resume(): void;
  on<E extends keyof EmailWorkerEvents>(
    event: E,
    listener: (event: EmailWorkerEvents[E]) => void,
  ): () => void;
  readonly stats: Readonly<EmailWorkerStats>;
  readonly paused: boolean;
}

const DEFAULT_IN_PROCESS: RetryOptions = {
  maxAttempts: 3,
  maxElapsedMs: 10_000,
  baseDelayMs: 250,
  maxDelayMs: 2_000,
};

/**
 * Makes a worker that delivers what producers publish.
 *
 * @example
 * ```ts
 * import { Kafka } from 'kafkajs';
 * import { EmailService, configFromEnv } from 'mailroom-js';
 * import { createEmailWorker, kafkaLogCreator } from 'mailroom-js/kafka';
 *
 * const brokers = ['kafka:9092'];
 * const worker = createEmailWorker({
 *   kafka: new Kafka({ brokers, logCreator: kafkaLogCreator(logger) }),
 *   brokers,
 *   service: new EmailService(configFromEnv()),
 *   handleSignals: true,
 *   logger,
 * });
 * worker.on('paused', ({ error }) => pageOnCall(error));
 * await worker.start();
 * await worker.untilClosed().catch(() => process.exit(1)); // `fatal`: let the supervisor restart us
 * ```
 */
export function createEmailWorker(options: EmailWorkerOptions): EmailWorker {
  if (typeof options?.kafka?.consumer !== 'function') {
    throw new TypeError('createEmailWorker: kafka must be a Kafka client (kafkajs or Confluent KafkaJS)');
  }
  const { service } = options;
  if (typeof service?.send !== 'function' || typeof service.render !== 'function') {
    throw new TypeError('createEmailWorker: service must be an EmailService');
  }
  if (service.queue) {
    throw new TypeError(
      'createEmailWorker: service must send, not queue: give the worker a service without `queue`',
    );
  }
  if (
    service.transport !== undefined &&
    mayCapture(service.transport) &&
    options.allowCapturingTransport !== true
  ) {
    const { name, captures } = service.transport;
    throw new ConfigError(
      'allowCapturingTransport',
      `the service's transport (${name}) keeps ${captures === true ? 'mail' : 'some mail (a capturing transport is behind it)'} instead of delivering it, and the worker commits what it sends: give the service a delivering transport (smtp, mailgun), or set allowCapturingTransport: true for tests and pre-production`,
    );
  }
  const { topic, retryTopic, deadLetterTopic, delayTiers } = workerTopics(options);
  refuseBadTopicNames(options, { topic, retryTopic, deadLetterTopic, delayTiers });
  const names = [topic, retryTopic, deadLetterTopic, ...delayTiers.map((t) => t.topic)];
  if (new Set(names).size !== names.length) {
    throw new TypeError(
      'createEmailWorker: topic, retryTopic, deadLetterTopic and the delay topics must differ',
    );
  }
  const maxRestarts = options.maxRestarts ?? 5;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0)
    throw new TypeError('createEmailWorker: maxRestarts must be a whole number');
  if (options.brokers !== undefined && !Array.isArray(options.brokers))
    throw new TypeError('createEmailWorker: brokers must be an array of host:port strings');

  const baseDelayMs = milliseconds(options.retry?.baseDelayMs ?? 30_000, 'retry.baseDelayMs', 1);

  const runtime = new WorkerRuntime({
    kafka: options.kafka,
    flavor: flavorOf(options.kafka, options.flavor),
    service,
    groupId: options.groupId ?? 'mailroom-email-worker',
    topic,
    retryTopic,
    deadLetterTopic,
    delayTiers,
    concurrency: positive(options.concurrency ?? 10, 'concurrency'),
    consumer: consumerSettings(options.consumer),
    pauseMs: milliseconds(options.pauseMs ?? 60_000, 'pauseMs', 1),
    deadlineMs: milliseconds(options.shutdownDeadlineMs ?? 30_000, 'shutdownDeadlineMs', 0),
    maxRestarts,
    handleSignals: options.handleSignals ?? false,
    brokers: options.brokers,
    logger: options.logger,
    records: {
      service,
      store: resolveStore(options.idempotencyStore),
      owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      limits: resolveLimits(options),
      inProcess: resolveRetry(
        options.retry?.inProcess === undefined ? DEFAULT_IN_PROCESS : options.retry.inProcess,
      ),
      maxAttempts: positive(options.retry?.maxAttempts ?? 10, 'retry.maxAttempts'),
      baseDelayMs,
      maxDelayMs: milliseconds(options.retry?.maxDelayMs ?? 600_000, 'retry.maxDelayMs', baseDelayMs),
      retryTopic,
      deadLetterTopic,
      delayTiers,
    },
  });

  const worker: EmailWorker = {
    start: () => runtime.start(),
    close: (closeOptions) => runtime.close(closeOptions),
    untilClosed: () => runtime.untilClosed(),
    resume: () => runtime.resume(),
    on: (event, listener) => runtime.on(event, listener),
    stats: runtime.stats,
    get paused() {
      return runtime.paused;
    },
  };
  // Not on the interface: serveWorkerHealth() and workerMetrics() read the worker through it.
  Object.defineProperty(worker, RUNTIME, { value: runtime });
  return worker;
}

/**
 * The delay tiers, by how long a record waits on each: a minute, ten minutes, an hour, six hours.
 * Six hours as the longest keeps a 30-day `sendAt` (the most a queue takes) to about 130 hops, and
 * a worker's pause on a tier's head to a timer it can hold.
 */
export const DELAY_TIERS: readonly { readonly suffix: string; readonly delayMs: number }[] = Object.freeze([
  { suffix: '1m', delayMs: 60_000 },
  { suffix: '10m', delayMs: 600_000 },
  { suffix: '1h', delayMs: 3_600_000 },
  { suffix: '6h', delayMs: 21_600_000 },
]);

/**
 * Internal: the topics a worker uses, each as given or its default: the topic
 * (`notifications.email`), `<topic>.retry`, `<topic>.dlq`, and with `delayTopics` the delay tiers
 * (`<delayTopicPrefix>.1m` …, prefix `<topic>.delay`). Shared with `mailroom worker`, which checks
 * them first to name the flag or field behind a clash.
 */
export function workerTopics(
  options: Pick<
    EmailWorkerOptions,
    'topic' | 'retryTopic' | 'deadLetterTopic' | 'delayTopics' | 'delayTopicPrefix'
  >,
): { topic: string; retryTopic: string; deadLetterTopic: string; delayTiers: DelayTier[] } {
  const topic = options.topic ?? DEFAULT_TOPIC;
  return {
    topic,
    retryTopic: options.retryTopic ?? `${topic}.retry`,
    deadLetterTopic: options.deadLetterTopic ?? `${topic}.dlq`,
    delayTiers:
      options.delayTopics === true ? delayTiersFor(options.delayTopicPrefix ?? `${topic}.delay`) : [],
  };
}

/**
 * Each of the worker's topics must be a name Kafka can have (see `topicNameProblem`): such a name
 * would otherwise read as a topic that does not exist, which the cluster refuses to create. A
 * default made from `topic` (`<topic>.retry` of a 245-character topic) names the option it comes from.
 */
function refuseBadTopicNames(
  options: Pick<EmailWorkerOptions, 'topic' | 'retryTopic' | 'deadLetterTopic' | 'delayTopicPrefix'>,
  topics: ReturnType<typeof workerTopics>,
): void {
  const made = (option: 'retryTopic' | 'deadLetterTopic', suffix: string) =>
    options[option] === undefined ? `${option} (its default, <topic>.${suffix})` : option;
  const delay =
    options.delayTopicPrefix === undefined
      ? 'a delay topic (<topic>.delay.<tier>)'
      : 'a delay topic (<delayTopicPrefix>.<tier>)';
  const roles: Array<[string, string]> = [
    ['topic', topics.topic],
    [made('retryTopic', 'retry'), topics.retryTopic],
    [made('deadLetterTopic', 'dlq'), topics.deadLetterTopic],
    ...topics.delayTiers.map((tier): [string, string] => [delay, tier.topic]),
  ];
  for (const [role, name] of roles) {
    const problem = topicNameProblem(name);
    if (problem !== undefined) throw new TypeError(`createEmailWorker: ${role} ${problem}`);
  }
}

/** The delay topics under a prefix, shortest first: `notifications.email.delay.1m` … */
function delayTiersFor(prefix: string): DelayTier[] {
  if (typeof prefix !== 'string' || prefix.trim() === '')
    throw new TypeError('createEmailWorker: delayTopicPrefix must be a non-empty string');
  return DELAY_TIERS.map(({ suffix, delayMs }) => ({ topic: `${prefix}.${suffix}`, delayMs }));
}

/** A duration option (ms): a whole number from `min` to `max` (default {@link MAX_TIMER_MS}). */
function milliseconds(value: number, name: string, min: number, max = MAX_TIMER_MS): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new TypeError(
      `createEmailWorker: ${name} must be a whole number of milliseconds from ${min} to ${max}${max === MAX_TIMER_MS ? ' (about 24.8 days)' : ''}, not ${String(value)}`,
    );
  return value;
}

/**
 * The consumer's settings with their defaults, checked here so that both Kafka clients take the
 * same values: librdkafka's ranges (its CONFIGURATION.md) for each, kafkajs's rule that the
 * heartbeat comes more often than the session times out, and librdkafka's that the rebalance
 * timeout (`max.poll.interval.ms`) is at least the session timeout. Each client alone would take
 * some of what the other refuses (kafkajs a negative `maxWaitTimeInMs`, the Confluent client a
 * heartbeat slower than the session), and a setting one client takes would fail the other's start.
 */
function consumerSettings(given: ConsumerSettings | undefined): Required<ConsumerSettings> {
  if (given !== undefined && (typeof given !== 'object' || given === null))
    throw new TypeError('createEmailWorker: consumer must be an object of consumer settings');
  const settings = { ...CONSUMER_DEFAULTS, ...given };
  const which = (key: keyof ConsumerSettings) =>
    `consumer.${key}${given?.[key] === undefined ? ' (its default)' : ''}`;
  milliseconds(settings.sessionTimeout, which('sessionTimeout'), 1, 3_600_000);
  milliseconds(settings.maxWaitTimeInMs, which('maxWaitTimeInMs'), 0, 300_000);
  milliseconds(settings.rebalanceTimeout, which('rebalanceTimeout'), 1, 86_400_000);
  milliseconds(settings.heartbeatInterval, which('heartbeatInterval'), 1, 3_600_000);
  if (settings.heartbeatInterval >= settings.sessionTimeout)
    throw new TypeError(
      `createEmailWorker: ${which('heartbeatInterval')}, ${settings.heartbeatInterval} ms, must be less than ${which('sessionTimeout')}, ${settings.sessionTimeout} ms (a third of it at most is usual)`,
    );
  if (settings.rebalanceTimeout < settings.sessionTimeout)
    throw new TypeError(
      `createEmailWorker: ${which('rebalanceTimeout')}, ${settings.rebalanceTimeout} ms, must be at least ${which('sessionTimeout')}, ${settings.sessionTimeout} ms`,
    );
  return settings;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`createEmailWorker: ${name} must be a positive integer`);
  return value;
}
