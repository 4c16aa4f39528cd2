/**
 * The worker: consumes envelopes, renders, sends through an EmailService, and decides what each
 * failure means. Sent, parked on the retry topic, or dead-lettered: only then is the offset
 * committed. Systemic failures pause consumption instead of dead-lettering the backlog.
 */
import type { EmailError } from '../errors.js';
import type { Logger } from '../log.js';
import { type RetryOptions, resolveRetry } from '../retry.js';
import type { EmailService } from '../service.js';
import type { SendResult } from '../transport.js';
import {
  type ConsumerSettings,
  createConsumer,
  createProducer,
  flavorOf,
  type KafkaBatchPayload,
  type KafkaClientLike,
  type KafkaConsumerLike,
  type KafkaFlavor,
  type KafkaHeaders,
  type KafkaIncomingMessage,
  type KafkaProducerLike,
  runConsumer,
  sendRecords,
} from './client.js';
import { Committer, PartitionProgress, Slots } from './commit.js';
import { type EnvelopeLimits, type EnvelopeV1, resolveLimits } from './envelope.js';
import { type IdempotencyStore, memoryIdempotencyStore } from './idempotency.js';
import { DEFAULT_TOPIC } from './producer.js';
import {
  type DeadLetterReason,
  describeFailure,
  notBeforeOf,
  type RecordPosition,
  recordHandler,
} from './records.js';

export { type DeadLetterReason, HEADERS, type RecordPosition } from './records.js';

/** How the worker retries. */
export interface WorkerRetryOptions {
  /** Send attempts in all, across redeliveries, before dead-lettering. Default 10. */
  maxAttempts?: number;
  /** The short in-process retry before parking on the retry topic. Default 3 attempts within 10 s. */
  inProcess?: RetryOptions | false;
  /** The wait before a parked email is tried again, doubling each round (ms). Default 30 000. */
  baseDelayMs?: number;
  /** The longest such wait (ms). Default 600 000. */
  maxDelayMs?: number;
}

/** Options of {@link createEmailWorker}. */
export interface EmailWorkerOptions extends EnvelopeLimits {
  /** `new Kafka({ brokers })` (kafkajs) or `new KafkaJS.Kafka({ kafkaJS: { brokers } })` (Confluent). */
  kafka: KafkaClientLike;
  /** Renders and sends; a service without a `queue`. Its templates must include every template published. */
  service: EmailService;
  /** Default `mailroom-email-worker`. */
  groupId?: string;
  /** Default `notifications.email`. */
  topic?: string;
  /** Default `<topic>.retry`. */
  retryTopic?: string;
  /** Default `<topic>.dlq`. */
  deadLetterTopic?: string;
  /** Sends in flight at once, across partitions. Default 10. */
  concurrency?: number;
  retry?: WorkerRetryOptions;
  /** How long a systemic failure (auth, account, TLS) pauses consumption before it is tried again (ms). Default 60 000. */
  pauseMs?: number;
  /** Default: the last 10 000 keys in memory. */
  idempotencyStore?: IdempotencyStore;
  /** Session and heartbeat settings of the consumer. */
  consumer?: ConsumerSettings;
  /** How long `close()` lets in-flight sends finish before aborting them (ms). Default 30 000. */
  shutdownDeadlineMs?: number;
  /** On SIGTERM and SIGINT, close gracefully, then close the service's transport. Default false. */
  handleSignals?: boolean;
  /** Which client `kafka` is; detected when omitted. */
  flavor?: KafkaFlavor;
  logger?: Logger;
}

/** Events an {@link EmailWorker} emits. */
export interface EmailWorkerEvents {
  /** Delivered. `latencyMs` runs from the envelope's `createdAt`. */
  sent: RecordPosition & { envelope: EnvelopeV1; result: SendResult; attempts: number; latencyMs: number };
  /** Parked on the retry topic until `notBefore`. */
  retried: RecordPosition & { envelope: EnvelopeV1; error: unknown; attempts: number; notBefore: Date };
  /** Sent to the dead-letter topic. `envelope` is missing when the record was not a valid envelope. */
  'dead-lettered': RecordPosition & {
    envelope: EnvelopeV1 | undefined;
    reason: DeadLetterReason;
    error: unknown;
    attempts: number;
  };
  /** Already sent (its idempotency key was seen): committed without sending again. */
  duplicate: RecordPosition & { envelope: EnvelopeV1 };
  /** A systemic failure paused consumption: an alert for whoever runs the worker. */
  paused: { error: EmailError; resumeAt: Date };
  resumed: Record<string, never>;
  /** Something went wrong outside one email (a commit or publish failed); the records are redelivered. */
  error: { error: unknown };
}

/** Counts since `start()`. */
export interface EmailWorkerStats {
  sent: number;
  retried: number;
  deadLettered: number;
  duplicates: number;
}

/** A running worker. */
export interface EmailWorker {
  /** Connects, subscribes to the topic and the retry topic (a new group starts at the beginning) and runs. */
  start(): Promise<void>;
  /** Stops fetching, lets in-flight sends finish (within the deadline), commits and disconnects. */
  close(options?: { deadlineMs?: number }): Promise<void>;
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
 * import { createEmailWorker } from 'mailroom-js/kafka';
 *
 * const worker = createEmailWorker({
 *   kafka: new Kafka({ brokers: ['kafka:9092'] }),
 *   service: new EmailService(configFromEnv()),
 *   handleSignals: true,
 * });
 * worker.on('paused', ({ error }) => pageOnCall(error));
 * await worker.start();
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
  const topic = options.topic ?? DEFAULT_TOPIC;
  const retryTopic = options.retryTopic ?? `${topic}.retry`;
  const deadLetterTopic = options.deadLetterTopic ?? `${topic}.dlq`;
  const groupId = options.groupId ?? 'mailroom-email-worker';
  const concurrency = positive(options.concurrency ?? 10, 'concurrency');
  const maxAttempts = positive(options.retry?.maxAttempts ?? 10, 'retry.maxAttempts');
  const inProcess = resolveRetry(
    options.retry?.inProcess === undefined ? DEFAULT_IN_PROCESS : options.retry.inProcess,
  );
  const baseDelayMs = options.retry?.baseDelayMs ?? 30_000;
  const maxDelayMs = options.retry?.maxDelayMs ?? 600_000;
  const pauseMs = options.pauseMs ?? 60_000;
  const deadlineMs = options.shutdownDeadlineMs ?? 30_000;
  const store = options.idempotencyStore ?? memoryIdempotencyStore();
  const limits = resolveLimits(options);
  const flavor = flavorOf(options.kafka, options.flavor);
  const logger = options.logger;
  if (new Set([topic, retryTopic, deadLetterTopic]).size !== 3) {
    throw new TypeError('createEmailWorker: topic, retryTopic and deadLetterTopic must differ');
  }

  const stats: EmailWorkerStats = { sent: 0, retried: 0, deadLettered: 0, duplicates: 0 };
  const listeners = new Map<keyof EmailWorkerEvents, Set<(event: never) => void>>();
  const emit = <E extends keyof EmailWorkerEvents>(event: E, payload: EmailWorkerEvents[E]) => {
    for (const listener of listeners.get(event) ?? []) {
      try {
        (listener as (event: EmailWorkerEvents[E]) => void)(payload);
      } catch {
        // A broken listener must not change what happens to an email.
      }
    }
  };

  let consumer: KafkaConsumerLike | undefined;
  let producer: KafkaProducerLike | undefined;
  let committer: Committer | undefined;
  const slots = new Slots(concurrency);
  const sendAbort = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  let state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  let pausedUntil: number | undefined;
  let resumeTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const pauseAll = (error: EmailError) => {
    if (pausedUntil !== undefined || !consumer) return;
    pausedUntil = Date.now() + pauseMs;
    consumer.pause([{ topic }, { topic: retryTopic }]);
    logger?.error(
      { event: 'worker.paused', error: describeFailure(error), resumeInMs: pauseMs },
      'systemic delivery failure: consumption paused',
    );
    emit('paused', { error, resumeAt: new Date(pausedUntil) });
    resumeTimer = setTimeout(resume, pauseMs);
  };

  function resume(): void {
    if (pausedUntil === undefined) return;
    clearTimeout(resumeTimer);
    pausedUntil = undefined;
    if (state !== 'running' || !consumer) return;
    consumer.resume([{ topic }, { topic: retryTopic }]);
    logger?.info({ event: 'worker.resumed' }, 'consumption resumed');
    emit('resumed', {});
  }

  /** Publishes a copy of a record to the retry or dead-letter topic, with the failure in its headers. */
  const forward = async (target: string, message: KafkaIncomingMessage, headers: KafkaHeaders) => {
    if (!producer) throw new Error('the worker is not started');
    await sendRecords(producer, flavor, target, [
      { key: message.key, value: message.value, headers: { ...message.headers, ...headers } },
    ]);
  };

  const handle = recordHandler({
    service,
    store,
    limits,
    inProcess,
    maxAttempts,
    baseDelayMs,
    maxDelayMs,
    retryTopic,
    deadLetterTopic,
    signal: sendAbort.signal,
    forward,
    report: {
      sent(at, envelope, result, attempts) {
        stats.sent++;
        if (!logger && !listeners.get('sent')?.size) return;
        const latencyMs = Date.now() - Date.parse(envelope.createdAt);
        const { topic, partition, offset } = at;
        logger?.info(
          { event: 'worker.sent', id: envelope.id, topic, partition, offset, attempts, latencyMs },
          'email sent',
        );
        emit('sent', { topic, partition, offset, envelope, result, attempts, latencyMs });
      },
      retried(event) {
        stats.retried++;
        const { envelope, error, ...fields } = event;
        logger?.warn(
          { event: 'worker.retried', id: envelope.id, ...fields, error: describeFailure(error) },
          'email parked on the retry topic',
        );
        emit('retried', event);
      },
      deadLettered(event) {
        stats.deadLettered++;
        const { envelope, error, ...fields } = event;
        logger?.error(
          { event: 'worker.dead_lettered', id: envelope?.id, ...fields, error: describeFailure(error) },
          'email dead-lettered',
        );
        emit('dead-lettered', event);
      },
      duplicate(event) {
        stats.duplicates++;
        const { envelope, ...at } = event;
        logger?.info({ event: 'worker.duplicate', id: envelope.id, ...at }, 'already sent: skipped');
        emit('duplicate', event);
      },
      systemic: pauseAll,
    },
  });

  const batches = new Set<Promise<void>>();
  /** Batches in hand are tracked, so close() can drain and commit them before leaving the group. */
  const eachBatch = (payload: KafkaBatchPayload): Promise<void> => {
    const running = processBatch(payload);
    const tracked = running.catch(() => {}).finally(() => batches.delete(tracked));
    batches.add(tracked);
    return running;
  };

  const processBatch = async (payload: KafkaBatchPayload): Promise<void> => {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic: batchTopic, partition } = batch;
    let stop = false;
    let failure: unknown;
    let resolved: string | undefined;
    // The client's own checks cost a little per call: asked every 32 records, ours every record.
    const active = (index: number) =>
      state === 'running' &&
      pausedUntil === undefined &&
      !stop &&
      (index % 32 !== 0 || (isRunning() && !isStale()));
    const progress = new PartitionProgress(
      batch.messages.map((m) => m.offset),
      (offset) => {
        resolved = offset;
        committer?.mark(batchTopic, partition, offset);
      },
    );
    const beat = setInterval(() => {
      heartbeat().catch(() => {
        stop = true; // a rebalance: finish what is in flight and hand the partition back
      });
    }, 1_000);
    const inFlight = new Set<Promise<void>>();
    const run = async (index: number, message: KafkaIncomingMessage) => {
      try {
        const outcome = await handle(message, { topic: batchTopic, partition, offset: message.offset });
        if (outcome === 'done') progress.finish(index);
        else stop = true;
      } catch (error) {
        // Publishing to the retry or dead-letter topic failed: not committed, fetched again.
        stop = true;
        failure ??= error;
      } finally {
        slots.release();
      }
    };
    try {
      for (const [index, message] of batch.messages.entries()) {
        if (!active(index)) break;
        if (batchTopic === retryTopic) {
          const due = notBeforeOf(message) - Date.now();
          if (due > 0) {
            // Not yet: this partition waits, the others go on; the record is fetched again on resume.
            const paused = [{ topic: batchTopic, partitions: [partition] }];
            consumer?.pause(paused);
            later(due, () => {
              if (state === 'running') consumer?.resume(paused);
            });
            break;
          }
        }
        if (!slots.tryAcquire()) {
          await slots.acquire();
          if (!active(0)) {
            slots.release();
            break;
          }
        }
        const task = run(index, message);
        inFlight.add(task);
        task.then(() => inFlight.delete(task));
      }
      await Promise.all(inFlight);
      // Where the client fetches this partition from next: after the last finished record.
      if (resolved !== undefined) resolveOffset(resolved);
      await committer?.flush();
    } finally {
      clearInterval(beat);
    }
    if (failure !== undefined) {
      logger?.error({ event: 'worker.error', error: describeFailure(failure) }, 'could not forward a record');
      emit('error', { error: failure });
      throw failure;
    }
  };

  const start = async () => {
    if (state !== 'new') throw new Error('createEmailWorker: start() was already called');
    state = 'starting';
    try {
      producer = createProducer(options.kafka, flavor);
      await producer.connect();
      consumer = createConsumer(options.kafka, flavor, groupId, options.consumer ?? {});
      committer = new Committer(consumer);
      watchCrashes(consumer, (error, restart) => {
        logger?.error(
          { event: 'worker.error', error: describeFailure(error), restart },
          'the Kafka consumer crashed',
        );
        emit('error', { error });
      });
      await consumer.connect();
      state = 'running';
      await runConsumer(consumer, flavor, [topic, retryTopic], concurrency, eachBatch);
    } catch (error) {
      state = 'running';
      await close({ deadlineMs: 0 }).catch(() => {});
      throw error;
    }
    if (options.handleSignals) {
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    }
    logger?.info(
      { event: 'worker.started', groupId, topic, retryTopic, deadLetterTopic },
      'email worker started',
    );
  };

  // The process is going away: after the worker, the service's connections (an SMTP pool) close too.
  const onSignal = () => {
    close()
      .then(() => service.close())
      .catch((error) => emit('error', { error }));
  };

  const close = (closeOptions: { deadlineMs?: number } = {}): Promise<void> => {
    closing ??= (async () => {
      if (state === 'new') {
        state = 'closed';
        return;
      }
      state = 'closing';
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      clearTimeout(resumeTimer);
      for (const timer of timers) clearTimeout(timer);
      const deadline = setTimeout(
        () => sendAbort.abort(new Error('worker shutdown deadline')),
        closeOptions.deadlineMs ?? deadlineMs,
      );
      try {
        // Stop fetching, let the batches in hand finish their in-flight sends, commit, then leave.
        // Best effort: kafkajs refuses while it restarts its consumer group, and disconnect stops fetching anyway.
        try {
          consumer?.pause([{ topic }, { topic: retryTopic }]);
        } catch {}
        while (batches.size > 0) await Promise.all(batches);
        await committer?.flush().catch((error) => emit('error', { error }));
        await consumer?.disconnect();
      } finally {
        clearTimeout(deadline);
        await producer?.disconnect().catch(() => {});
        state = 'closed';
        logger?.info({ event: 'worker.closed', ...stats }, 'email worker closed');
      }
    })();
    return closing;
  };

  return {
    start,
    close,
    resume,
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set);
      set.add(listener as (event: never) => void);
      return () => set.delete(listener as (event: never) => void);
    },
    stats,
    get paused() {
      return pausedUntil !== undefined;
    },
  };
}

/** kafkajs reports a crashed consumer (it restarts it unless the error is fatal) through an event. */
function watchCrashes(consumer: KafkaConsumerLike, report: (error: unknown, restart: boolean) => void): void {
  const events = consumer as {
    events?: { CRASH?: string };
    on?: (event: string, listener: (e: { payload: { error: unknown; restart?: boolean } }) => void) => void;
  };
  if (typeof events.on === 'function' && events.events?.CRASH) {
    events.on(events.events.CRASH, (e) => report(e.payload.error, e.payload.restart ?? false));
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new TypeError(`createEmailWorker: ${name} must be a positive integer`);
  return value;
}
