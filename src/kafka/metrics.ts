/**
 * Prometheus metrics of a worker, on prom-client (an optional peer, imported only here and only
 * when metrics are asked for). Counters follow the worker's events and the service's; the
 * consumer lag is computed when the registry is scraped, from two admin requests.
 */
import { ConfigError, isEmailError } from '../errors.js';
import { connectOrDisconnect } from './client.js';
import { isKafkaForwardError } from './failures.js';
import { runtimeOf, type WorkerRuntime } from './runtime.js';
import { healthOf } from './standing.js';
import type { EmailWorker } from './worker.js';

/** The part of a prom-client `Registry` used here (`new Registry()`, or prom-client's `register`). */
export interface PromRegistryLike {
  readonly contentType: string;
  metrics(): Promise<string>;
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
}

/** Options of {@link workerMetrics}. */
export interface WorkerMetricsOptions {
  /**
   * The prom-client registry the metrics go on, e.g. prom-client's default `register` to serve
   * them with the process metrics from `collectDefaultMetrics()`. One worker per registry.
   * Default: a new `Registry` of their own.
   */
  registry?: PromRegistryLike;
  /** How long a scrape waits for the consumer lag before leaving it out (ms). Default 3 000. */
  lagTimeoutMs?: number;
}

/** A worker's metrics, registered and counting. */
export interface WorkerMetrics {
  /** The registry they are on: `await registry.metrics()` is the scrape text. */
  readonly registry: PromRegistryLike;
  /** Stops counting and disconnects the admin client the lag uses. */
  close(): Promise<void>;
}

/** Send durations: an SMTP or HTTP call takes tens of ms to seconds; in-process retries add up to ~10 s. */
const SEND_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** From the producer's `createdAt` to sent: seconds when flowing, up to an hour for parked emails. */
const LATENCY_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

type PromClient = typeof import('prom-client');

/**
 * Registers a worker's metrics on a prom-client registry (loading prom-client, an optional peer).
 * `serveWorkerHealth(worker, { port, metrics: true })` serves them at `/metrics`; call this
 * yourself to serve them from your own HTTP server.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `mailroom_worker_emails_sent_total` | counter | `topic` |
 * | `mailroom_worker_emails_parked_total` (put on the retry topic) | counter | `topic`, `code` |
 * | `mailroom_worker_emails_dead_lettered_total` | counter | `topic`, `reason` |
 * | `mailroom_worker_duplicates_skipped_total` | counter | `topic` |
 * | `mailroom_worker_emails_suppressed_total` (every recipient on the suppression list: nothing sent) | counter | `topic` |
 * | `mailroom_worker_possible_duplicates_total` (a lease taken over or lost: may have gone out twice) | counter | `topic`, `reason` |
 * | `mailroom_worker_emails_held_total` (another worker held the lease: parked until it ends) | counter | `topic` |
 * | `mailroom_worker_emails_delayed_total` (not yet due: moved to a delay topic, once per hop) | counter | `topic`, `delay_topic` |
 * | `mailroom_worker_send_retries_total` (in-process retries) | counter | `code` |
 * | `mailroom_worker_send_duration_seconds` (one send, its in-process retries included) | histogram | `outcome` |
 * | `mailroom_worker_delivery_latency_seconds` (the envelope's `createdAt` to sent) | histogram | — |
 * | `mailroom_worker_paused` (1 while a systemic failure pauses consumption) | gauge | — |
 * | `mailroom_worker_forward_failures_total` (a record the retry, delay or dead-letter topic `topic` refused; its partition waits) | counter | `topic` |
 * | `mailroom_worker_partitions_waiting` (partitions waiting to try again a record they could not forward) | gauge | — |
 * | `mailroom_worker_ready` (1 when `/readyz` would answer 200) | gauge | — |
 * | `mailroom_worker_consumer_lag` (high watermark − committed offset) | gauge | `topic`, `partition` |
 * | `mailroom_worker_consumer_lag_errors_total` (scrapes that could not read the lag) | counter | — |
 *
 * `outcome` is `sent` or the failure class (`transient`, `ambiguous`, `permanent`, `systemic`,
 * `aborted`, `error` for anything not an EmailError); `code` the EmailError code; `reason` the
 * dead-letter reason. No label ever holds an address or an id.
 *
 * The lag covers the partitions this worker holds, of the topic and the retry topic (there it
 * counts parked emails not yet due too). It is read on each scrape with the Kafka client's admin
 * API: `fetchTopicOffsets(topic)` for the high watermarks and `fetchOffsets({ groupId, topics })`
 * for the group's commits; a partition with no commit yet counts from its low watermark.
 *
 * @example
 * ```ts
 * import { register } from 'prom-client';
 * import { workerMetrics } from 'mailroom-js/kafka';
 *
 * await workerMetrics(worker, { registry: register });
 * app.get('/metrics', async (_req, res) => res.type(register.contentType).send(await register.metrics()));
 * ```
 */
export async function workerMetrics(
  worker: EmailWorker,
  options: WorkerMetricsOptions = {},
): Promise<WorkerMetrics> {
  const runtime = runtimeOf(worker);
  if (!runtime) throw new TypeError('workerMetrics: worker must be made by createEmailWorker');
  const lagTimeoutMs = options.lagTimeoutMs ?? 3_000;
  if (!Number.isFinite(lagTimeoutMs) || lagTimeoutMs <= 0)
    throw new TypeError('workerMetrics: lagTimeoutMs must be a positive number of milliseconds');
  const prom = await loadPromClient();
  const registry = options.registry ?? (new prom.Registry() as unknown as PromRegistryLike);
  if (registry.getSingleMetric('mailroom_worker_emails_sent_total') !== undefined) {
    throw new ConfigError(
      'registry',
      'already holds a worker’s mailroom_worker_* metrics: give each worker its own registry',
    );
  }
  const registers = [registry as never];
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new prom.Counter({ name, help, labelNames, registers });
  const sent = counter('mailroom_worker_emails_sent_total', 'Emails sent.', ['topic']);
  const parked = counter(
    'mailroom_worker_emails_parked_total',
    'Emails parked on the retry topic after a transient failure.',
    ['topic', 'code'],
  );
  const deadLettered = counter(
    'mailroom_worker_emails_dead_lettered_total',
    'Records sent to the dead-letter topic.',
    ['topic', 'reason'],
  );
  const duplicates = counter(
    'mailroom_worker_duplicates_skipped_total',
    'Records skipped because their idempotency key was already sent.',
    ['topic'],
  );
  const suppressed = counter(
    'mailroom_worker_emails_suppressed_total',
    'Records committed without sending because every recipient is on the suppression list.',
    ['topic'],
  );
  const possibleDuplicates = counter(
    'mailroom_worker_possible_duplicates_total',
    'Emails that may have gone out twice: a lease taken over from a worker that died (lease-expired) or lost before marking sent (lease-lost).',
    ['topic', 'reason'],
  );
  const held = counter(
    'mailroom_worker_emails_held_total',
    'Records parked because another worker held their idempotency lease (it was sending them).',
    ['topic'],
  );
  const delayed = counter(
    'mailroom_worker_emails_delayed_total',
    'Records not yet due (sendAt, quiet hours) moved to a delay topic, once per hop.',
    ['topic', 'delay_topic'],
  );
  const retries = counter(
    'mailroom_worker_send_retries_total',
    'Send attempts that failed and were retried in process.',
    ['code'],
  );
  const forwardFailures = counter(
    'mailroom_worker_forward_failures_total',
    'Records that could not be written to the retry, delay or dead-letter topic (each try; their partition waits, then fetches them again), by the topic that refused them.',
    ['topic'],
  );
  new prom.Gauge({
    name: 'mailroom_worker_partitions_waiting',
    help: 'Partitions waiting to try again a record they could not forward.',
    registers,
    collect() {
      this.set(runtime.snapshot().waiting.length);
    },
  });
  const lagErrors = counter(
    'mailroom_worker_consumer_lag_errors_total',
    'Scrapes that could not read the consumer lag.',
  );
  const sendDuration = new prom.Histogram({
    name: 'mailroom_worker_send_duration_seconds',
    help: 'Time one send took, in-process retries included, by outcome.',
    labelNames: ['outcome'],
    buckets: SEND_BUCKETS,
    registers,
  });
  const latency = new prom.Histogram({
    name: 'mailroom_worker_delivery_latency_seconds',
    help: 'Time from the envelope’s createdAt until it was sent.',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  new prom.Gauge({
    name: 'mailroom_worker_paused',
    help: '1 while a systemic delivery failure pauses consumption.',
    registers,
    collect() {
      this.set(runtime.snapshot().paused ? 1 : 0);
    },
  });
  new prom.Gauge({
    name: 'mailroom_worker_ready',
    help: '1 once the worker holds partitions and is not paused.',
    registers,
    collect() {
      this.set(healthOf(runtime).ready ? 1 : 0);
    },
  });
  const lag = new LagReader(runtime, lagTimeoutMs);
  new prom.Gauge({
    name: 'mailroom_worker_consumer_lag',
    help: 'Records not yet committed: high watermark minus the group’s committed offset.',
    labelNames: ['topic', 'partition'],
    registers,
    async collect() {
      this.reset();
      try {
        for (const { topic, partition, lag: value } of await lag.read()) {
          this.set({ topic, partition: String(partition) }, value);
        }
      } catch {
        lagErrors.inc();
      }
    },
  });

  const { service } = runtime.settings;
  const off = [
    worker.on('sent', (e) => {
      sent.inc({ topic: e.topic });
      if (Number.isFinite(e.latencyMs)) latency.observe(Math.max(0, e.latencyMs) / 1000);
    }),
    worker.on('retried', (e) => parked.inc({ topic: e.topic, code: codeOf(e.error) })),
    worker.on('dead-lettered', (e) => deadLettered.inc({ topic: e.topic, reason: e.reason })),
    worker.on('duplicate', (e) => duplicates.inc({ topic: e.topic })),
    worker.on('suppressed', (e) => suppressed.inc({ topic: e.topic })),
    worker.on('possible-duplicate', (e) => possibleDuplicates.inc({ topic: e.topic, reason: e.reason })),
    worker.on('held', (e) => held.inc({ topic: e.topic })),
    worker.on('delayed', (e) => delayed.inc({ topic: e.topic, delay_topic: e.delayTopic })),
    worker.on('error', (e) => {
      if (isKafkaForwardError(e.error)) forwardFailures.inc({ topic: e.error.topic });
    }),
    service.on('sent', (e) => sendDuration.observe({ outcome: 'sent' }, e.durationMs / 1000)),
    service.on('failed', (e) => {
      const outcome = isEmailError(e.error) ? e.error.failure : 'error';
      sendDuration.observe({ outcome }, e.durationMs / 1000);
    }),
    service.on('retrying', (e) => retries.inc({ code: e.error.code })),
  ];
  // The admin connection must not outlive the worker (it would keep the process alive).
  void runtime
    .untilClosed()
    .catch(() => {})
    .finally(() => lag.close());
  return {
    registry,
    close: async () => {
      for (const stop of off) stop();
      await lag.close();
    },
  };
}

function codeOf(error: unknown): string {
  return isEmailError(error) ? error.code : 'internal';
}

/** The part of kafkajs's (and Confluent's KafkaJS) admin client the lag needs. */
interface AdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  fetchTopicOffsets(topic: string): Promise<Array<{ partition: number; high: string; low: string }>>;
  fetchOffsets(options: {
    groupId: string;
    topics: string[];
  }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
}

/** Reads the lag of the partitions the worker holds, with one admin client kept connected. */
class LagReader {
  #admin: Promise<AdminLike> | undefined;
  #reading: Promise<Array<{ topic: string; partition: number; lag: number }>> | undefined;
  #closed = false;

  constructor(
    readonly runtime: WorkerRuntime,
    readonly timeoutMs: number,
  ) {}

  async read(): Promise<Array<{ topic: string; partition: number; lag: number }>> {
    const { assignment } = this.runtime.snapshot();
    const { groupId, topic, retryTopic } = this.runtime.settings;
    const topics = [topic, retryTopic].filter((t) => (assignment?.[t]?.length ?? 0) > 0);
    if (this.#closed || topics.length === 0) return [];
    // A scrape that timed out leaves its requests running: the next one waits for them, not more.
    this.#reading ??= this.#read(groupId, topics, assignment ?? {}).finally(() => {
      this.#reading = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('consumer lag: timed out')), this.timeoutMs);
    });
    try {
      return await Promise.race([this.#reading, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #read(groupId: string, topics: string[], assignment: Record<string, number[]>) {
    const admin = await this.#connected();
    const [committed, ...ends] = await Promise.all([
      admin.fetchOffsets({ groupId, topics }),
      ...topics.map((t) => admin.fetchTopicOffsets(t)),
    ]);
    const out: Array<{ topic: string; partition: number; lag: number }> = [];
    topics.forEach((t, i) => {
      const held = new Set(assignment[t]);
      const commits = new Map(
        committed.find((c) => c.topic === t)?.partitions.map((p) => [p.partition, BigInt(p.offset)]),
      );
      for (const { partition, high, low } of ends[i] ?? []) {
        if (!held.has(partition)) continue;
        const commit = commits.get(partition) ?? -1n;
        const from = commit >= 0n ? commit : BigInt(low);
        const value = BigInt(high) - from;
        out.push({ topic: t, partition, lag: Number(value > 0n ? value : 0n) });
      }
    });
    return out;
  }

  #connected(): Promise<AdminLike> {
    this.#admin ??= (async () => {
      const kafka = this.runtime.settings.kafka as { admin?: () => AdminLike };
      if (typeof kafka.admin !== 'function') throw new Error('the Kafka client has no admin()');
      const admin = kafka.admin();
      // A refused connect disconnects what it opened: a scrape that fails leaves no socket behind.
      await connectOrDisconnect(admin);
      return admin;
    })().catch((error) => {
      this.#admin = undefined; // the next scrape tries again
      throw error;
    });
    return this.#admin;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const admin = await this.#admin?.catch(() => undefined);
    this.#admin = undefined;
    await admin?.disconnect().catch(() => {});
  }
}

/** prom-client is an optional peer: loaded here, with the fix in the message when it is missing. */
async function loadPromClient(): Promise<PromClient> {
  try {
    const module = (await import('prom-client')) as PromClient & { default?: PromClient };
    return module.Registry ? module : (module.default as PromClient);
  } catch (error) {
    const code = (error as { code?: string })?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ConfigError(
        'metrics',
        'the worker’s metrics need the prom-client package: npm install prom-client',
      );
    }
    throw error;
  }
}
