/**
 * Internal: the running worker, as small named steps over a little explicit state (after
 * bullmq's `Worker` and kafkajs's `Runner`): `start` and `openConsumer` connect, `processBatch`
 * hands records to the record handler and marks them finished, the `Committer` commits, `recover`
 * replaces a consumer that crashed for good, `fail` gives up loudly, `close` drains and leaves.
 * worker.ts checks the options and documents the API; records.ts decides each record.
 */
import { ConfigError, type EmailError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EmailService } from '../service.js';
import { Announcer } from './announce.js';
import { isPending } from './claims.js';
import {
  type ConsumerSettings,
  confirmCommitted,
  createConsumer,
  createProducer,
  type KafkaBatchPayload,
  type KafkaClientLike,
  type KafkaConsumerLike,
  type KafkaFlavor,
  type KafkaHeaders,
  type KafkaIncomingMessage,
  type KafkaProducerLike,
  keepDisconnectError,
  missingTopics,
  recordBytes,
  runConsumer,
  sendRecords,
} from './client.js';
import { Committer, PartitionProgress, Slots } from './commit.js';
import {
  isConnectionError,
  isRebalanceError,
  isSessionTimeoutRefused,
  isUnknownTopicError,
  KafkaForwardError,
  KafkaTopicMissingError,
  KafkaUnavailableError,
  kafkaErrorFields,
  rebalanceCause,
} from './failures.js';
import type { IdempotencyStoreError } from './idempotency.js';
import {
  type DelayTier,
  describeFailure,
  notBeforeOf,
  type Outcome,
  type RecordHandlerOptions,
  recordHandler,
} from './records.js';
import type { EmailWorkerEvents, EmailWorkerStats } from './worker.js';

/** What the runtime is given, every default resolved by worker.ts. */
export interface RuntimeSettings {
  kafka: KafkaClientLike;
  flavor: KafkaFlavor;
  service: EmailService;
  groupId: string;
  topic: string;
  retryTopic: string;
  deadLetterTopic: string;
  /** The delay topics, shortest first; empty without `delayTopics`. */
  delayTiers: readonly DelayTier[];
  concurrency: number;
  consumer: Required<ConsumerSettings>;
  pauseMs: number;
  deadlineMs: number;
  maxRestarts: number;
  handleSignals: boolean;
  brokers: readonly string[] | undefined;
  logger: Logger | undefined;
  /** The record handler's options, less what the runtime supplies itself. */
  records: Omit<RecordHandlerOptions, 'forward' | 'report' | 'signal'>;
}

type State = 'new' | 'starting' | 'running' | 'restarting' | 'closing' | 'closed';

/** Where a running worker stands, for its health endpoints. */
export interface RuntimeSnapshot {
  state: State;
  /** Partitions held per topic; undefined until the group assigned some (or while it rebalances). */
  assignment: Record<string, number[]> | undefined;
  paused: { error: EmailError | IdempotencyStoreError | undefined; resumeAt: Date } | undefined;
  /** Partitions (held now) waiting to try again a record they could not forward. */
  waiting: ForwardWait[];
}

/** A partition that could not forward a record (see `#forwardFailed`): until it forwards one. */
export interface ForwardWait {
  topic: string;
  partition: number;
  failuresInARow: number;
  /** When it fetches the record again. */
  resumeAt: Date;
  /** The last failure (a `KafkaForwardError`). */
  error: unknown;
}

/** Where a worker keeps its runtime, for health.ts and metrics.ts (`Symbol.for`: the package may load twice). */
export const RUNTIME = Symbol.for('mailroom.kafka.worker-runtime');

/** The runtime behind a worker made by `createEmailWorker`, or undefined for anything else. */
export function runtimeOf(worker: unknown): WorkerRuntime | undefined {
  const runtime = (worker as { [RUNTIME]?: WorkerRuntime } | null)?.[RUNTIME];
  return typeof runtime?.snapshot === 'function' ? runtime : undefined;
}

export class WorkerRuntime {
  readonly #s: RuntimeSettings;
  readonly #log: Logger | undefined;
  /** Counts, events and the per-record log lines. */
  readonly #say: Announcer;
  readonly #slots: Slots;
  readonly #sendAbort = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Batches in hand, so close() and recover() can let them finish first. */
  readonly #batches = new Set<Promise<void>>();
  readonly #handle: ReturnType<typeof recordHandler>;
  /** Every topic the worker consumes: the topic, the retry topic, the delay topics. */
  readonly #consumed: readonly string[];
  /** The topics whose records wait for their not-before time: the retry and delay topics. */
  readonly #waiting: ReadonlySet<string>;
  #state: State = 'new';
  #consumer: KafkaConsumerLike | undefined;
  #producer: KafkaProducerLike | undefined;
  #committer: Committer | undefined;
  #pausedUntil: number | undefined;
  #resumeTimer: NodeJS.Timeout | undefined;
  /** Fires when the consumer has not joined its group in time: see {@link #watchJoin}. */
  #joinTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /**
   * The start in progress (undoing included), or a crashed consumer's replacement connecting:
   * close() waits for it rather than disconnect a client that is connecting. See {@link #connecting}.
   */
  #inProgress: Promise<void> | undefined;
  /** close() was called, with this deadline: a start in progress stops at its next step. */
  #closeAsked: { deadlineMs: number } | undefined;
  /** The signal that closed the worker (`handleSignals`), if one did. */
  #signal: NodeJS.Signals | undefined;
  /** What a start close() stopped rejects with. */
  #stopped: Error | undefined;
  /** Failures in a row to forward a record, by `topic:partition` (see {@link #forwardFailed}). */
  readonly #forwardFailures = new Map<string, ForwardWait>();
  /**
   * Partitions waiting (a record not yet due, a record that could not be forwarded), by
   * `topic:partition`, until when (ms since the epoch): a systemic pause's end resumes every
   * topic, and these are paused again then (see {@link #pausePartition}).
   */
  readonly #waits = new Map<string, { topic: string; partition: number; until: number }>();
  /** Restarts since the last batch that went through: the budget `maxRestarts` bounds. */
  #restartsInARow = 0;
  #fatal: unknown;
  /** For readiness: kafkajs's last GROUP_JOIN assignment, cleared while the group rebalances. */
  #assignment: Record<string, number[]> | undefined;
  #pauseError: EmailError | IdempotencyStoreError | undefined;
  readonly #closed: Promise<void>;
  #settleClosed!: (error?: unknown) => void;

  constructor(settings: RuntimeSettings) {
    this.#s = settings;
    this.#log = settings.logger;
    this.#say = new Announcer(settings.logger, settings.groupId);
    this.#slots = new Slots(settings.concurrency);
    const delayTopics = settings.delayTiers.map((t) => t.topic);
    this.#consumed = [settings.topic, settings.retryTopic, ...delayTopics];
    this.#waiting = new Set([settings.retryTopic, ...delayTopics]);
    this.#handle = recordHandler({
      ...settings.records,
      signal: this.#sendAbort.signal,
      forward: (target, message, headers, value) => this.#forward(target, message, headers, value),
      report: this.#say.recordReports((error) => this.#pauseAll(error)),
    });
    this.#closed = new Promise<void>((resolve, reject) => {
      this.#settleClosed = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#closed.catch(() => {}); // awaited by untilClosed() callers; never an unhandled rejection
  }

  get stats(): EmailWorkerStats {
    return this.#say.stats;
  }

  on<E extends keyof EmailWorkerEvents>(event: E, listener: (event: EmailWorkerEvents[E]) => void) {
    return this.#say.on(event, listener);
  }

  get paused(): boolean {
    return this.#pausedUntil !== undefined;
  }

  untilClosed(): Promise<void> {
    return this.#closed;
  }

  /** What health.ts and metrics.ts read: the settings, and where the worker stands now. */
  get settings(): Readonly<RuntimeSettings> {
    return this.#s;
  }

  snapshot(): RuntimeSnapshot {
    const assignment = this.#assignment;
    const paused =
      this.#pausedUntil === undefined
        ? undefined
        : { error: this.#pauseError, resumeAt: new Date(this.#pausedUntil) };
    const waiting = [...this.#forwardFailures.values()].filter(
      (w) => assignment === undefined || assignment[w.topic]?.includes(w.partition),
    );
    return { state: this.#state, assignment, paused, waiting };
  }

  // ---- start -------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('createEmailWorker: start() was already called');
    this.#state = 'starting';
    // From the first step: a signal during the start (a deploy stopping a worker as it comes up)
    // stops the start as close() does, rather than killing the process by the default action.
    if (this.#s.handleSignals) {
      process.once('SIGTERM', this.#onSignal);
      process.once('SIGINT', this.#onSignal);
    }
    await this.#connecting(this.#startOrUndo());
  }

  /** Awaits `step` (a start, a consumer's replacement), kept meanwhile for close() to wait for. */
  async #connecting(step: Promise<void>): Promise<void> {
    this.#inProgress = step;
    try {
      await step;
    } finally {
      this.#inProgress = undefined;
    }
  }

  /**
   * Connects the producer, then the consumer, and runs. A step that fails, or close() called
   * meanwhile, undoes what was connected (consumer, then producer; an admin the step used is
   * disconnected by the step) before the step's error is thrown: a refused start leaves nothing
   * running, so a process that gives up exits, and one that tries again does not pile up clients.
   */
  async #startOrUndo(): Promise<void> {
    const { service, groupId, topic, retryTopic, deadLetterTopic } = this.#s;
    const transport = service.transport.describe?.() ?? service.transport.name;
    const brokers = this.#brokersText();
    this.#log?.info(
      {
        event: 'worker.starting',
        transport,
        brokers: this.#s.brokers,
        groupId,
        topic,
        retryTopic,
        deadLetterTopic,
      },
      `email worker starting: sending via ${transport}; Kafka ${brokers}, group ${groupId}, topics ${topic}, ${retryTopic}, ${deadLetterTopic}`,
    );
    try {
      this.#log?.info(
        { event: 'worker.connecting', brokers: this.#s.brokers },
        `connecting to Kafka ${brokers}`,
      );
      this.#producer = createProducer(this.#s.kafka, this.#s.flavor);
      await this.#connect(() => (this.#producer as KafkaProducerLike).connect());
      this.#stopIfClosing();
      await this.#checkTopics();
      this.#state = 'running';
      await this.#openConsumer();
      this.#stopIfClosing();
    } catch (error) {
      await this.#undoStart(error);
      throw error;
    }
    this.#log?.info(
      { event: 'worker.started', groupId, topic, retryTopic, deadLetterTopic },
      `email worker started: consuming ${topic} and ${retryTopic} as group ${groupId}`,
    );
  }

  /** close() was called while the worker started: the start stops here, and undoes what it connected. */
  #stopIfClosing(): void {
    if (!this.#closeAsked) return;
    // The worker failed as it started (a setting the broker refused): the start fails with that.
    if (this.#fatal !== undefined) throw this.#fatal;
    const by = this.#signal === undefined ? '' : ` (on ${this.#signal})`;
    this.#stopped = new Error(`createEmailWorker: close() was called before the worker had started${by}`);
    throw this.#stopped;
  }

  /**
   * A start that failed, or that close() stopped: the consumer and then the producer are
   * disconnected (a failure to is logged and kept on `error` as `disconnectError`, never thrown in
   * its place), and the worker is closed.
   */
  async #undoStart(error: unknown): Promise<void> {
    await this.#shutDown(this.#closeAsked?.deadlineMs ?? 0, { error });
    this.#closing ??= Promise.resolve();
    this.#settleClosed(this.#fatal);
    if (error === this.#stopped) {
      this.#log?.info({ event: 'worker.start_stopped' }, 'email worker closed before it had started');
      return;
    }
    this.#log?.error(
      { event: 'worker.start_failed', error: describeFailure(error), kafka: kafkaErrorFields(error) },
      `email worker could not start: ${(error as Error)?.message ?? String(error)}`,
    );
  }

  /** A consumer, connected, subscribed and running, with its events watched. */
  async #openConsumer(): Promise<void> {
    const { kafka, flavor, groupId } = this.#s;
    const topics = this.#consumed;
    const consumer = createConsumer(kafka, flavor, groupId, this.#s.consumer, (change) => {
      if (this.#consumer !== consumer) return; // a consumer already replaced
      if (change.kind === 'assigned') {
        this.#committer?.assigned();
        this.#joined(change.assignment);
      } else {
        this.#committer?.forget(change.assignment);
        this.#rebalancing();
      }
    });
    this.#consumer = consumer;
    this.#committer = new Committer(consumer, {
      onRefused: (error, offsets) => this.#say.commitRefused(error, offsets),
      onFailed: (error, offsets, retrying) => this.#say.commitFailed(error, offsets, retrying),
      ...(flavor === 'confluent' && {
        confirm: (offsets) => confirmCommitted(consumer, offsets),
        retryRefused: true,
      }),
    });
    this.#watch(consumer);
    await this.#connect(() => consumer.connect());
    this.#stopIfClosing();
    this.#log?.info(
      { event: 'worker.joining', groupId, topics },
      `connected; joining group ${groupId} (assignment can take up to the rebalance timeout while other members rejoin)`,
    );
    try {
      await runConsumer(consumer, flavor, [...topics], this.#s.concurrency, (payload) =>
        this.#eachBatch(payload),
      );
    } catch (error) {
      if (!isUnknownTopicError(error)) throw error;
      throw await this.#topicMissing(error);
    }
    if (this.#pausedUntil !== undefined) consumer.pause(this.#everyTopic());
    this.#watchJoin();
  }

  /**
   * Says so when the consumer has not joined its group (been given its partitions, even none) a
   * rebalance timeout and a session timeout after it asked to, and again after each such span
   * until it joins. A worker the cluster keeps out of its group (a user without READ on the group:
   * the Confluent client waits without a word, kafkajs reports a coordinator it cannot find) or
   * whose coordinator never answers would otherwise idle with nothing in its log but readiness.
   */
  #watchJoin(): void {
    clearTimeout(this.#joinTimer);
    // Not while closing: the Confluent client revokes the partitions as it leaves (a rebalance).
    if (this.#state !== 'running') return;
    const { groupId, consumer } = this.#s;
    const waitMs = consumer.rebalanceTimeout + consumer.sessionTimeout;
    // Asked only of a session timeout outside the broker's default range (librdkafka's refusal is silent).
    const { sessionTimeout } = consumer;
    const session =
      sessionTimeout < BROKER_SESSION_MS.min || sessionTimeout > BROKER_SESSION_MS.max
        ? ` Does the broker take consumer.sessionTimeout, ${sessionTimeout} ms (its group.min.session.timeout.ms to group.max.session.timeout.ms, ${BROKER_SESSION_MS.min} to ${BROKER_SESSION_MS.max} unless set otherwise)?`
        : '';
    const since = Date.now();
    const check = () => {
      if (this.#state !== 'running' || this.#assignment !== undefined) return;
      const waitedMs = Date.now() - since;
      this.#log?.warn(
        { event: 'worker.not_joined', groupId, waitedMs },
        `not yet a member of group ${groupId} after ${Math.round(waitedMs / 1000)} s: nothing is consumed. ` +
          `Is the Kafka user allowed to use the group (READ on group ${groupId}), and does its coordinator answer?${session}`,
      );
      this.#joinTimer = setTimeout(check, waitMs).unref();
    };
    // Unref'd: a watch never keeps a process alive (the consumer does while it runs).
    this.#joinTimer = setTimeout(check, waitMs).unref();
  }

  /**
   * Refuses to go on when a topic the worker consumes or forwards to is not on the cluster
   * (asked of it; nothing to ask without an admin). The dead-letter topic too: without it, the
   * first record that must be dead-lettered is fetched again and again, its partition stuck.
   * librdkafka would also wait for a consumed topic that does not exist (logging
   * UNKNOWN_TOPIC_OR_PART) rather than refuse the subscription as kafkajs does.
   */
  async #checkTopics(): Promise<void> {
    const missing = await missingTopics(this.#s.kafka, [...this.#consumed, this.#s.deadLetterTopic]);
    if (missing?.length) throw new KafkaTopicMissingError(missing, true, undefined);
    this.#stopIfClosing();
  }

  /** A subscription the broker refused for a missing topic, as an error naming which (asked of the cluster). */
  async #topicMissing(cause: unknown): Promise<KafkaTopicMissingError> {
    const { kafka, deadLetterTopic } = this.#s;
    const missing = await missingTopics(kafka, [...this.#consumed, deadLetterTopic]).catch(() => undefined);
    return missing?.length
      ? new KafkaTopicMissingError(missing, true, cause)
      : new KafkaTopicMissingError([...this.#consumed], false, cause);
  }

  /** Runs a connect step; an unreachable cluster becomes an error that names the brokers. */
  async #connect(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      throw new KafkaUnavailableError(this.#s.brokers, this.#s.topic, error);
    }
  }

  #brokersText(): string {
    return this.#s.brokers?.length
      ? `brokers ${this.#s.brokers.join(',')}`
      : '(the brokers its client was given: pass `brokers` to name them here)';
  }

  /**
   * kafkajs reports joins, rebalances and crashes through events. The Confluent client has none
   * of these (its `events` getter throws "Not implemented"): its joins and rebalances come through
   * createConsumer's `onGroupChange`.
   */
  #watch(consumer: KafkaConsumerLike): void {
    if (this.#s.flavor === 'confluent') return;
    const emitter = consumer as {
      events?: { GROUP_JOIN?: string; REBALANCING?: string; CRASH?: string };
      on?: (event: string, listener: (e: { payload: Record<string, unknown> }) => void) => void;
    };
    if (typeof emitter.on !== 'function' || !emitter.events) return;
    const { GROUP_JOIN, REBALANCING, CRASH } = emitter.events;
    if (GROUP_JOIN) {
      emitter.on(GROUP_JOIN, (e) =>
        this.#joined((e.payload.memberAssignment ?? {}) as Record<string, number[]>, e.payload),
      );
    }
    if (REBALANCING) emitter.on(REBALANCING, () => this.#rebalancing());
    if (CRASH) {
      emitter.on(CRASH, (e) => {
        if (this.#consumer !== consumer) return; // a consumer already replaced
        this.#assignment = undefined;
        this.#crashed(e.payload.error, e.payload.restart === true);
      });
    }
  }

  /** The group gave this member its partitions (`details`: kafkajs's join payload, member id and leadership). */
  #joined(assignment: Record<string, number[]>, details: Record<string, unknown> = {}): void {
    clearTimeout(this.#joinTimer);
    this.#assignment = assignment;
    this.#say.joined({ ...details, memberAssignment: assignment });
  }

  #rebalancing(): void {
    this.#assignment = undefined;
    // Leaving: the Confluent client revokes the partitions as it goes, which is no rejoining.
    if (this.#state !== 'running') return;
    this.#watchJoin();
    this.#log?.info(
      { event: 'worker.rebalancing', groupId: this.#s.groupId },
      `group ${this.#s.groupId} is rebalancing: rejoining`,
    );
  }

  // ---- consume -----------------------------------------------------------------------------

  #eachBatch(payload: KafkaBatchPayload): Promise<void> {
    const running = this.#processBatch(payload);
    const tracked = running.catch(() => {}).finally(() => this.#batches.delete(tracked));
    this.#batches.add(tracked);
    return running;
  }

  async #processBatch(payload: KafkaBatchPayload): Promise<void> {
    const committer = this.#committer;
    const held = committer?.held;
    if (held !== undefined) return holdBack(held);
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic: batchTopic, partition } = batch;
    const refusalsAtStart = committer?.refusals ?? 0;
    let stop = false;
    let failure: unknown;
    let rebalance: unknown;
    let resolved: string | undefined;
    // Ours are asked before every record. kafkajs's own cost a little per call (its isStale()
    // builds a JSON key each time): asked on the first check and every 32nd after (counted by
    // checks: once every slot is taken, a record is checked again after its wait). The Confluent
    // client's are two field reads, and its isStale() is how a revoked partition shows (it does
    // not fetch the records again): asked every time.
    const clientEvery = this.#s.flavor === 'kafkajs' ? 32 : 1;
    let checks = 0;
    const active = () =>
      this.#state === 'running' &&
      this.#pausedUntil === undefined &&
      !stop &&
      (committer?.refusals ?? 0) === refusalsAtStart &&
      (checks++ % clientEvery !== 0 || (isRunning() && !isStale()));
    const partitionKey = committer?.keyOf(batchTopic, partition);
    const progress = new PartitionProgress(
      batch.messages.map((m) => m.offset),
      (offset) => {
        resolved = offset;
        if (partitionKey !== undefined) committer?.mark(partitionKey, batchTopic, partition, offset);
      },
    );
    const beat = setInterval(() => {
      heartbeat().catch((error) => {
        stop = true; // a rebalance: finish what is in flight and hand the partition back
        if (isRebalanceError(error)) rebalance ??= error;
      });
    }, 1_000);
    // Sends in flight from this batch: counted, and the batch waits once for the last, rather than
    // keeping a set of promises (two more per record).
    let inFlight = 0;
    let drained: (() => void) | undefined;
    // A record's end, whatever it was: its slot is free, and the batch may be drained.
    const over = () => {
      this.#slots.release();
      if (--inFlight === 0) drained?.();
    };
    const failed = (error: unknown) => {
      // Publishing to the retry or dead-letter topic failed: not committed, fetched again.
      stop = true;
      failure ??= error;
      over();
    };
    const decided = (index: number, outcome: Outcome) => {
      try {
        if (outcome === 'done') progress.finish(index);
        else stop = true;
      } catch (error) {
        stop = true;
        failure ??= error;
      }
      over();
    };
    // Not async: a record the handler decides at once (a duplicate, a hold) settles here, and one
    // it sends takes one promise callback rather than an async frame and an await.
    const run = (index: number, message: KafkaIncomingMessage) => {
      let outcome: Outcome | Promise<Outcome>;
      try {
        outcome = this.#handle(message, { topic: batchTopic, partition, offset: message.offset });
      } catch (error) {
        failed(error);
        return;
      }
      if (isPending(outcome)) outcome.then((decision) => decided(index, decision), failed);
      else decided(index, outcome);
    };
    const { messages } = batch;
    try {
      for (let index = 0; index < messages.length; index++) {
        const message = messages[index] as KafkaIncomingMessage;
        if (!active()) break;
        if (this.#waiting.has(batchTopic) && this.#notYetDue(message, batchTopic, partition)) break;
        if (!this.#slots.tryAcquire()) {
          await this.#slots.acquire();
          if (!active()) {
            this.#slots.release();
            break;
          }
        }
        inFlight++;
        run(index, message); // never throws: a failure is kept in `failure`
      }
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
        });
      }
      // Where the client fetches this partition from next: after the last finished record.
      if (resolved !== undefined) resolveOffset(resolved);
      await committer?.flush();
    } finally {
      clearInterval(beat);
    }
    if (failure !== undefined) this.#forwardFailed(failure, batchTopic, partition);
    else if (this.#forwardFailures.size > 0) this.#forwardFailures.delete(`${batchTopic}:${partition}`);
    if (committer && committer.refusals !== refusalsAtStart) rebalance ??= committer.lastRefusal;
    // kafkajs rejoins at once when eachBatch throws the broker's rebalance error, rather than
    // fetching and processing more records whose commits the group would refuse too.
    if (rebalance !== undefined && this.#s.flavor === 'kafkajs') throw rebalanceCause(rebalance);
    this.#restartsInARow = 0;
  }

  /**
   * A parked or delayed record not yet due: its partition waits (the others go on) and is fetched
   * again on resume. Each such topic holds its records a constant time, so its head is the first due.
   */
  #notYetDue(message: KafkaIncomingMessage, topic: string, partition: number): boolean {
    const due = notBeforeOf(message) - Date.now();
    if (due <= 0) return false;
    this.#pausePartition(topic, partition, due);
    return true;
  }

  /**
   * Writing a record to the retry, delay or dead-letter topic failed (the handler rejected): its
   * partition waits, then fetches it again from the last finished record, 1 s after the first
   * failure in a row, doubling up to 30 s (or `pauseMs`, when shorter). Not thrown to the client:
   * kafkajs would replace its consumer until the worker failed, the Confluent client fetch the
   * record again at once, in a loop. The handler does not send again an email it sent before the
   * forward failed.
   */
  #forwardFailed(failure: unknown, topic: string, partition: number): void {
    const at = `${topic}:${partition}`;
    const inARow = (this.#forwardFailures.get(at)?.failuresInARow ?? 0) + 1;
    const retryInMs = Math.min(this.#s.pauseMs, FORWARD_RETRY_MAX_MS, 1_000 * 2 ** Math.min(inARow - 1, 5));
    this.#forwardFailures.set(at, {
      topic,
      partition,
      failuresInARow: inARow,
      resumeAt: new Date(Date.now() + retryInMs),
      error: failure,
    });
    this.#say.stats.forwardFailures++;
    this.#log?.error(
      {
        event: 'worker.forward_failed',
        topic,
        partition,
        failuresInARow: inARow,
        retryInMs,
        error: describeFailure(failure),
        kafka: kafkaErrorFields(failure),
      },
      `could not write a record to the retry, delay or dead-letter topic: partition ${topic}[${partition}] waits ${retryInMs} ms, then fetches it again`,
    );
    this.#say.emit('error', { error: failure });
    this.#pausePartition(topic, partition, retryInMs);
  }

  /**
   * One partition waits `ms` (the others go on), then is fetched again from its last finished
   * record. A consumer paused whole (a systemic failure) resumes every partition itself.
   */
  #pausePartition(topic: string, partition: number, ms: number): void {
    const consumer = this.#consumer;
    const paused = [{ topic, partitions: [partition] }];
    // setTimeout fires at once past its longest delay (about 24.8 days): the wait is cut to that.
    const waitMs = Math.min(ms, MAX_TIMER_MS);
    const at = `${topic}:${partition}`;
    const wait = { topic, partition, until: Date.now() + waitMs };
    this.#waits.set(at, wait);
    // Not while the whole consumer is paused: kafkajs takes a partition's pause as the end of its
    // topic's (every other partition of it would be fetched, and dropped, in a loop until the
    // systemic pause ends); resume() pauses this partition again if its wait is not over then.
    if (this.#pausedUntil === undefined) consumer?.pause(paused);
    this.#later(waitMs, () => {
      // A newer wait of this partition resumes it itself, at its own end.
      if (this.#waits.get(at) !== wait) return;
      this.#waits.delete(at);
      if (this.#state === 'running' && this.#consumer === consumer && this.#pausedUntil === undefined)
        consumer?.resume(paused);
    });
  }

  async #forward(target: string, message: KafkaIncomingMessage, headers: KafkaHeaders, value?: string) {
    if (!this.#producer) throw new Error('the worker is not started');
    const parts = { key: message.key, value: value ?? message.value };
    const all = { ...message.headers, ...headers };
    try {
      await sendRecords(this.#producer, this.#s.flavor, target, [{ ...parts, headers: all }]);
    } catch (error) {
      // Measured from `all`, not the record sent: the Confluent client replaces its headers with
      // librdkafka's list. Only on failure: nothing is added to a forward that goes through.
      throw new KafkaForwardError(target, recordBytes({ ...parts, headers: all }), error);
    }
  }

  // ---- pause -------------------------------------------------------------------------------

  #pauseAll(error: EmailError | IdempotencyStoreError): void {
    if (this.#pausedUntil !== undefined || !this.#consumer) return;
    const { pauseMs } = this.#s;
    this.#pausedUntil = Date.now() + pauseMs;
    this.#pauseError = error;
    this.#consumer.pause(this.#everyTopic());
    this.#log?.error(
      { event: 'worker.paused', error: describeFailure(error), resumeInMs: pauseMs },
      'systemic delivery failure: consumption paused',
    );
    this.#say.emit('paused', { error, resumeAt: new Date(this.#pausedUntil) });
    this.#resumeTimer = setTimeout(() => this.resume(), pauseMs);
  }

  resume(): void {
    if (this.#pausedUntil === undefined) return;
    clearTimeout(this.#resumeTimer);
    this.#pausedUntil = undefined;
    this.#pauseError = undefined;
    if (this.#state !== 'running' || !this.#consumer) return;
    this.#consumer.resume(this.#everyTopic());
    // Partitions whose own wait is not over wait on (their timers resume them).
    const now = Date.now();
    for (const { topic, partition, until } of this.#waits.values()) {
      if (until > now) this.#consumer.pause([{ topic, partitions: [partition] }]);
    }
    this.#log?.info({ event: 'worker.resumed' }, 'consumption resumed');
    this.#say.emit('resumed', {});
  }

  /** Every consumed topic, as pause() and resume() take them. */
  #everyTopic(): Array<{ topic: string }> {
    return this.#consumed.map((topic) => ({ topic }));
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  // ---- crash, recover, fail ----------------------------------------------------------------

  /** The consumer crashed. kafkajs restarts it itself when the cause is retriable; otherwise we do. */
  #crashed(error: unknown, restart: boolean): void {
    if (this.#state !== 'running') return;
    this.#say.emit('error', { error });
    if (restart) {
      this.#say.stats.restarts++;
      this.#log?.warn(
        { event: 'worker.consumer_crashed', restart: true, kafka: kafkaErrorFields(error) },
        'the Kafka consumer crashed; the client restarts it',
      );
      return;
    }
    this.#log?.error(
      { event: 'worker.consumer_crashed', restart: false, kafka: kafkaErrorFields(error) },
      'the Kafka consumer crashed and the client will not restart it: the worker replaces it',
    );
    void this.#recover(error);
  }

  /** Replaces a consumer the client gave up on; past `maxRestarts` in a row, the worker fails. */
  async #recover(error: unknown): Promise<void> {
    // A setting the broker refuses is refused again by every replacement: fail now, saying which.
    if (isSessionTimeoutRefused(error)) {
      const refused = new ConfigError(
        'consumer.sessionTimeout',
        `the broker refused ${this.#s.consumer.sessionTimeout} ms: it takes only values from its group.min.session.timeout.ms to its group.max.session.timeout.ms (${BROKER_SESSION_MS.min} to ${BROKER_SESSION_MS.max} ms unless set otherwise); change one or the other`,
      );
      refused.cause = error;
      return this.#fail(refused, refused.message);
    }
    if (this.#restartsInARow >= this.#s.maxRestarts) return this.#fail(error);
    this.#restartsInARow++;
    this.#say.stats.restarts++;
    this.#state = 'restarting';
    const old = this.#consumer;
    try {
      const backoffMs = Math.min(5_000, 250 * 2 ** this.#restartsInARow);
      await new Promise((resolve) => setTimeout(resolve, backoffMs).unref());
      while (this.#batches.size > 0) await Promise.all(this.#batches);
      this.#committer?.drop(); // offsets of a consumer that is gone: its records come again
      await old?.disconnect().catch(() => {});
      if ((this.#state as State) !== 'restarting') return; // closed meanwhile
      // kafkajs refuses a subscription to a topic deleted meanwhile; librdkafka would wait for it.
      if (this.#s.flavor === 'confluent') await this.#checkTopics();
      this.#state = 'running';
      await this.#connecting(this.#openConsumer());
      if (this.#closeAsked) return; // close() disconnects it now
      this.#log?.info(
        { event: 'worker.consumer_restarted', attempt: this.#restartsInARow },
        'the Kafka consumer was replaced and is rejoining its group',
      );
    } catch (next) {
      // close() was called meanwhile: it disconnects what the replacement connected.
      if (this.#closeAsked) return;
      this.#state = 'running';
      return this.#recover(next);
    }
  }

  /**
   * The worker cannot go on: say so (`why`, by default the consumer's repeated failures), close,
   * and reject `untilClosed()` so a supervisor restarts the process.
   */
  async #fail(error: unknown, why?: string): Promise<void> {
    this.#fatal = error;
    this.#log?.error(
      { event: 'worker.fatal', error: describeFailure(error), kafka: kafkaErrorFields(error) },
      `email worker stopped: ${why ?? `the Kafka consumer failed ${this.#s.maxRestarts + 1} times in a row; restart the process${coordinatorHint(error, this.#s.groupId)}`}`,
    );
    this.#say.emit('fatal', { error });
    await this.close().catch(() => {});
  }

  // ---- close -------------------------------------------------------------------------------

  // The process is going away: after the worker, the service's connections (an SMTP pool) close too.
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.#signal ??= signal;
    this.close()
      .then(() => this.#s.service.close())
      .catch((error) => this.#say.emit('error', { error }));
  };

  close(options: { deadlineMs?: number } = {}): Promise<void> {
    const deadlineMs = options.deadlineMs ?? this.#s.deadlineMs;
    this.#closeAsked ??= { deadlineMs };
    this.#closing ??= this.#closeOrStopStarting(deadlineMs).then(
      () => this.#settleClosed(this.#fatal),
      (error) => {
        this.#settleClosed(this.#fatal ?? error);
        throw error;
      },
    );
    return this.#closing;
  }

  /**
   * A start in progress is not cut short: a client disconnected while it connects connects anyway
   * (kafkajs) or throws from its own callback (the Confluent client). It stops at its next step and
   * undoes what it connected, and close() resolves then; a start that got past its last step is
   * closed as usual. So is a crashed consumer's replacement: waited for, then disconnected.
   */
  async #closeOrStopStarting(deadlineMs: number): Promise<void> {
    await this.#inProgress?.catch(() => {});
    if (this.#state === 'closed') return;
    await this.#shutDown(deadlineMs);
  }

  /**
   * Stops fetching, lets the batches in hand finish (within the deadline), commits, and
   * disconnects the consumer, then the producer. A failure to disconnect the consumer is thrown
   * (the producer is disconnected still), the producer's is logged; undoing a start, both are
   * logged and kept on the start's error instead.
   */
  async #shutDown(deadlineMs: number, undoing?: { error: unknown }): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'closed';
      return;
    }
    if (!undoing) {
      const inFlight = this.#slots.taken;
      this.#log?.info(
        { event: 'worker.closing', inFlight, deadlineMs, ...(this.#signal ? { signal: this.#signal } : {}) },
        `email worker closing${this.#signal ? ` on ${this.#signal}` : ''}: it stops fetching, gives the ${inFlight} send${inFlight === 1 ? '' : 's'} in flight up to ${deadlineMs} ms, then commits and leaves group ${this.#s.groupId}`,
      );
    }
    this.#state = 'closing';
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
    clearTimeout(this.#resumeTimer);
    clearTimeout(this.#joinTimer);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#waits.clear();
    const deadline = setTimeout(
      () => this.#sendAbort.abort(new Error('worker shutdown deadline')),
      deadlineMs,
    );
    try {
      // Stop fetching, let the batches in hand finish their in-flight sends, commit, then leave.
      // Best effort: kafkajs refuses while it restarts its consumer group, and disconnect stops fetching anyway.
      try {
        this.#consumer?.pause(this.#everyTopic());
      } catch {}
      while (this.#batches.size > 0) await Promise.all(this.#batches);
      await this.#committer?.flush().catch((error) => this.#say.emit('error', { error }));
      this.#committer?.drop(); // offsets still waiting to be tried again: this member leaves, the others take its partitions
      this.#sayUnforwarded();
      await this.#consumer?.disconnect();
    } catch (failure) {
      if (!undoing) throw failure;
      this.#disconnectFailed('consumer', failure, undoing.error);
    } finally {
      clearTimeout(deadline);
      await this.#producer
        ?.disconnect()
        .catch((failure) => this.#disconnectFailed('producer', failure, undoing?.error));
      this.#state = 'closed';
      this.#log?.info({ event: 'worker.closed', ...this.#say.stats }, 'email worker closed');
    }
  }

  /**
   * Closing with emails sent to some recipients whose refused recipients' copies are not written
   * yet (their partitions wait): their records are not committed, so the partitions' next owner
   * sends them again. With a shared store the lease this worker keeps makes that a reported
   * possible duplicate; with the memory store only this line says so.
   */
  #sayUnforwarded(): void {
    const ids = this.#handle.unforwardedIds();
    if (ids.length === 0) return;
    this.#log?.warn(
      { event: 'worker.unforwarded', count: ids.length, ids: ids.slice(0, 100) },
      `closing with ${ids.length} email(s) sent to some recipients whose refused recipients' copies could not be written: their records are not committed, and the next owner of their partitions sends them again (a possible duplicate, reported only with a shared idempotency store)`,
    );
  }

  /** A client that would not disconnect: logged, and kept on the error being thrown, if any. */
  #disconnectFailed(client: 'consumer' | 'producer', failure: unknown, during?: unknown): void {
    if (during !== undefined) keepDisconnectError(during, failure);
    this.#log?.warn(
      { event: 'worker.disconnect_failed', client, kafka: kafkaErrorFields(failure) },
      `could not disconnect the Kafka ${client}: ${(failure as Error)?.message ?? String(failure)}`,
    );
  }
}

/**
 * kafkajs reports a group the Kafka user may not use (the broker's GROUP_AUTHORIZATION_FAILED to
 * FindCoordinator) as a coordinator it cannot find, dropping the broker's answer: say what it may be.
 */
function coordinatorHint(error: unknown, groupId: string): string {
  return (error as Error)?.name === 'KafkaJSGroupCoordinatorNotFound'
    ? ` (kafkajs says "Failed to find group coordinator" also when the Kafka user is not allowed to use the group: check READ on group ${groupId})`
    : '';
}

/** A Kafka broker's `group.min.session.timeout.ms` and `group.max.session.timeout.ms` unless set otherwise (ms; Kafka's broker configs). */
const BROKER_SESSION_MS = { min: 6_000, max: 1_800_000 };

/** Internal: setTimeout's longest delay (ms): 2^31 − 1, about 24.8 days; a longer one fires at once (Node's TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The longest a partition waits before it tries again to forward a record (see #forwardFailed). */
const FORWARD_RETRY_MAX_MS = 30_000;

/** How long a batch handed over while commits are refused waits before it goes back (ms): see {@link holdBack}. */
const HOLD_BACK_MS = 100;

/**
 * A batch that came while a refused commit waits to be tried again (the Confluent client: see
 * `Committer.held`): none of its records is started, and returning without resolving any makes
 * the client seek back to its first record, to fetch it again. The records a worker would finish
 * now could not be committed, and the partition's next owner would send them again; and the
 * client serves the group's revoke only when it fetches, so handing the batch back promptly
 * (at most {@link HOLD_BACK_MS}, less once the hold is over) lets the rebalance through.
 */
async function holdBack(held: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([held, new Promise<void>((resolve) => (timer = setTimeout(resolve, HOLD_BACK_MS)))]);
  clearTimeout(timer);
}
