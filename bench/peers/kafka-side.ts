/**
 * One side of the Kafka bench (the bare kafkajs loop or the mailroom worker), consuming in a process
 * of its own: started by bench/kafka.ts, once per side, so that each side's memory figures are its
 * own (no other side's heap, garbage or sockets, no producer's buffers) and both start from the same
 * empty process. Lives in a subfolder because bench/index.ts runs every .ts file of bench/ itself.
 *
 * Protocol: one JSON argument (a {@link SideConfig}). The child prints protocol lines on stdout,
 * each prefixed with {@link PREFIX} (anything else on stdout is a stray log line, which the parent
 * passes to stderr):
 *   {"event":"progress","count":…}   every second, so that a stall can be reported
 *   {"event":"drained", backlog}     the backlog is consumed: throughput, CPU and memory figures
 *   {"event":"done", latencies}      the paced messages are consumed too: their latencies (ms);
 *                                    right after "drained" when there are none
 * The parent publishes the paced messages after "drained", on the same topic, so that the group
 * the backlog warmed up is the one that takes them (a new group's join takes seconds on the mock).
 * The child exits once stdin closes.
 *
 * Usage: node --import tsx --expose-gc kafka-side.ts '<json SideConfig>'
 */
import { existsSync } from 'node:fs';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { type Consumer, type ConsumerConfig, Kafka, logLevel } from 'kafkajs';

export const PREFIX = '@@kafka-bench ';
const SAMPLE_MS = 500;
/**
 * How long a fetch waits for data, for both sides (kafkajs's default is 5 000 ms). A real broker
 * answers a waiting fetch as soon as a record arrives; librdkafka's mock holds a fetch that found
 * nothing for the whole wait, whatever arrives meanwhile, which at the default made every paced
 * message wait 0–5 s for the next poll. 10 ms keeps that artefact under the figures measured.
 */
const MAX_WAIT_MS = 10;

export interface SideConfig {
  side: 'bare' | 'worker';
  /**
   * A folder holding another build of mailroom (its `dist/`), to load instead of this checkout's:
   * the baseline a change is measured against (KAFKA_BENCH_BASELINE in bench/kafka.ts).
   */
  build?: string;
  brokers: string[];
  topic: string;
  retryTopic: string;
  deadLetterTopic: string;
  groupId: string;
  /** Messages already on the topic when the child starts. */
  backlog: number;
  /** Messages the parent publishes after the backlog, at a fixed rate. */
  paced: number;
  concurrency: number;
}

export interface MemorySample {
  /** ms since the consumer was started. */
  at: number;
  rss: number;
  heapUsed: number;
}

export interface BacklogResult {
  /** Where mailroom was loaded from: the built package, or src/ when dist/ lacks the Kafka entry. */
  source: 'dist' | 'src';
  /** From starting the consumer to the first message handled: the group join and first fetch (ms). */
  firstMessageMs: number;
  /** From the first message handled to the last (ms). */
  ms: number;
  perSecond: number;
  /** CPU time of the whole process (user + system) per message during that span (µs). */
  cpuPerMessage: number;
  /** OffsetCommit requests during that span. */
  commits: number;
  /** The event loop's utilisation during that span (0–1): near 1, the main thread is the bottleneck. */
  loopBusy: number;
  memory: {
    start: MemorySample;
    peak: { rss: number; heapUsed: number };
    end: MemorySample;
    /** heapUsed after a full GC at the end: what the side keeps. */
    heapAfterGc: number;
  };
}

export type SideEvent =
  | { event: 'progress'; count: number }
  | { event: 'drained'; backlog: BacklogResult }
  | { event: 'done'; latencies: number[] };

function emit(event: SideEvent): void {
  process.stdout.write(`${PREFIX}${JSON.stringify(event)}\n`);
}

/** The envelope the bare loop publishes and reads (the worker's is mailroom's own). */
export interface BareEnvelope {
  version: 1;
  id: string;
  idempotencyKey: string;
  template: 'verification';
  data: { username: string; verificationUrl: string };
  to: string[];
  createdAt: string;
}

type Mailroom = typeof import('../../src/index.js');
type MailroomKafka = typeof import('../../src/kafka/index.js');

/**
 * mailroom and mailroom-js/kafka from one place, so that the worker's EmailService is the class the
 * worker was built against: the built package (as users get it; `npm run bench` builds first) when
 * dist/ has the Kafka entry, else the source through tsx. Specifiers that are not literals keep the
 * typecheck from needing dist/ or src/kafka/.
 */
async function load(build: string | undefined): Promise<{
  source: 'dist' | 'src';
  mailroom: Mailroom;
  kafka: () => Promise<MailroomKafka>;
}> {
  if (build !== undefined) {
    // Another build: its dist/ only, by file URL (the folder may be anywhere).
    const base = pathToFileURL(`${build}/dist/`);
    const mailroom: Mailroom = await import(new URL('index.js', base).href);
    return { source: 'dist', mailroom, kafka: () => import(new URL('kafka/index.js', base).href) };
  }
  const distKafka = new URL('../../dist/kafka/index.js', import.meta.url);
  const source = existsSync(distKafka) ? 'dist' : 'src';
  const base = source === 'dist' ? '../../dist/' : '../../src/';
  const ext = source === 'dist' ? '.js' : '.ts';
  const mailroom: Mailroom = await import(`${base}index${ext}`);
  return { source, mailroom, kafka: () => import(`${base}kafka/index${ext}`) };
}

/** A logger for mailroom and kafkajs that writes warnings and errors to stderr, never to stdout. */
const logger = {
  info() {},
  // As pino at level 'warn' says: the worker then builds no line it would drop.
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
  warn: (fields: object, message?: string) => console.error('warn', message ?? '', JSON.stringify(fields)),
  error: (fields: object, message?: string) => console.error('error', message ?? '', JSON.stringify(fields)),
};

function kafkaClient(brokers: string[], clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.ERROR,
    logCreator:
      () =>
      ({ namespace, log }) =>
        console.error(`kafkajs ${namespace}: ${log.message}`),
  });
}

/** OffsetCommit requests the consumer made so far. */
let commits = 0;
function countCommits(consumer: Consumer): Consumer {
  consumer.on(consumer.events.REQUEST, ({ payload }) => {
    if (payload.apiName === 'OffsetCommit') commits++;
  });
  return consumer;
}

/** Samples memory every {@link SAMPLE_MS} from `start()` until `stop()`. */
function memoryProbe() {
  const samples: MemorySample[] = [];
  let t0 = 0;
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    const { rss, heapUsed } = process.memoryUsage();
    samples.push({ at: performance.now() - t0, rss, heapUsed });
  };
  return {
    start() {
      t0 = performance.now();
      sample();
      timer = setInterval(sample, SAMPLE_MS);
    },
    stop(): BacklogResult['memory'] {
      clearInterval(timer);
      sample();
      const end = samples.at(-1)!;
      globalThis.gc?.();
      return {
        start: samples[0]!,
        peak: {
          rss: Math.max(...samples.map((s) => s.rss)),
          heapUsed: Math.max(...samples.map((s) => s.heapUsed)),
        },
        end,
        heapAfterGc: process.memoryUsage().heapUsed,
      };
    },
  };
}

/**
 * Counts what it consumes: the backlog first (throughput, CPU, memory), then the paced messages
 * (latency). `handled()` is called once per message, when the side is done with it.
 */
function tally(config: SideConfig, source: 'dist' | 'src') {
  const memory = memoryProbe();
  const latencies: number[] = [];
  let count = 0;
  let started = 0;
  let first = 0;
  let last = 0;
  let cpuAtFirst: NodeJS.CpuUsage | undefined;
  let commitsAtFirst = 0;
  let eluAtFirst: EventLoopUtilization | undefined;
  const progress = setInterval(() => emit({ event: 'progress', count }), 1000);
  return {
    start() {
      memory.start();
      started = performance.now();
    },
    /** `createdAt`: the envelope's, set when it was published. */
    handled(createdAt: string | undefined) {
      count++;
      if (count === 1) {
        first = performance.now();
        cpuAtFirst = process.cpuUsage();
        commitsAtFirst = commits;
        eluAtFirst = performance.eventLoopUtilization();
      }
      if (count <= config.backlog) {
        last = performance.now();
        if (count === config.backlog) {
          const cpu = process.cpuUsage(cpuAtFirst);
          const ms = last - first;
          emit({
            event: 'drained',
            backlog: {
              source,
              firstMessageMs: first - started,
              ms,
              perSecond: (config.backlog - 1) / (ms / 1000),
              cpuPerMessage: (cpu.user + cpu.system) / config.backlog,
              commits: commits - commitsAtFirst,
              loopBusy: performance.eventLoopUtilization(eluAtFirst).utilization,
              memory: memory.stop(),
            },
          });
          if (config.paced === 0) {
            clearInterval(progress);
            emit({ event: 'done', latencies });
          }
        }
      } else {
        latencies.push(Date.now() - Date.parse(createdAt ?? 'missing'));
        if (count === config.backlog + config.paced) {
          clearInterval(progress);
          emit({ event: 'done', latencies });
        }
      }
    },
  };
}

/**
 * The floor: kafkajs's own consumer loop, one batch at a time, JSON.parse and a render per message,
 * offsets committed by hand after each batch. No sending, no retries, no idempotency.
 */
async function bare(config: SideConfig, { source, mailroom }: Awaited<ReturnType<typeof load>>) {
  const service = new mailroom.EmailService({
    transport: mailroom.memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
  });
  const kafka = kafkaClient(config.brokers, 'bench-bare');
  const consumer = countCommits(kafka.consumer({ groupId: config.groupId, maxWaitTimeInMs: MAX_WAIT_MS }));
  let sink = 0; // what the renders made, so that nothing can skip them
  const counter = tally(config, source);
  counter.start();
  await consumer.connect();
  await consumer.subscribe({ topic: config.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const message of batch.messages) {
        const envelope = JSON.parse(message.value!.toString()) as BareEnvelope;
        sink += service.render(envelope.template, envelope.data).html.length;
        resolveOffset(message.offset);
        counter.handled(envelope.createdAt);
      }
      const lastMessage = batch.messages.at(-1);
      if (lastMessage) {
        const offset = (BigInt(lastMessage.offset) + 1n).toString();
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset }]);
      }
      await heartbeat();
    },
  });
  return async () => {
    await consumer.disconnect();
    if (sink === 0) throw new Error('kafka bench: the bare loop rendered nothing');
  };
}

/** mailroom's worker, sending on a transport that counts and keeps nothing. */
async function worker(
  config: SideConfig,
  { source, mailroom, kafka: loadKafka }: Awaited<ReturnType<typeof load>>,
) {
  const { createEmailWorker } = await loadKafka();
  let transported = 0;
  const transport: import('../../src/index.js').Transport = {
    name: 'count',
    async send(message) {
      transported++;
      return {
        messageId: message.messageId,
        accepted: message.to.map((a) => a.address),
        rejected: [],
        transport: 'count',
      };
    },
  };
  const service = new mailroom.EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
  const kafka = kafkaClient(config.brokers, 'bench-worker');
  const email = createEmailWorker({
    // The worker's consumer gets the bare loop's fetch wait (see MAX_WAIT_MS) and the commit
    // counter; nothing else changes.
    kafka: {
      producer: (c) => kafka.producer(c),
      consumer: (c) =>
        countCommits(kafka.consumer({ ...(c as ConsumerConfig), maxWaitTimeInMs: MAX_WAIT_MS })),
    },
    flavor: 'kafkajs', // the wrapper hides kafkajs's logger(), by which the worker tells clients apart
    service,
    groupId: config.groupId,
    topic: config.topic,
    retryTopic: config.retryTopic,
    deadLetterTopic: config.deadLetterTopic,
    concurrency: config.concurrency,
    logger,
  });
  const counter = tally(config, source);
  // Counted when the worker reports it sent, with the envelope it sent: after the transport
  // accepted it and the idempotency key was stored, the offset not yet committed.
  email.on('sent', ({ envelope }) => counter.handled(envelope.createdAt));
  for (const event of ['retried', 'dead-lettered', 'duplicate', 'paused'] as const) {
    email.on(event, (payload) => console.error(`kafka bench: worker ${event}:`, describe(payload)));
  }
  email.on('error', ({ error }) => console.error('kafka bench: worker error:', error));
  counter.start();
  await email.start();
  return async () => {
    await email.close({ deadlineMs: 5000 });
    const { stats } = email;
    if (transported !== stats.sent || stats.sent !== config.backlog + config.paced) {
      console.error(
        `kafka bench: the transport took ${transported} messages; the worker's stats: ${JSON.stringify(stats)}`,
      );
    }
  };
}

/** An event's payload in one line, without the envelope's data. */
function describe(payload: object): string {
  const { envelope, error, ...rest } = payload as { envelope?: { id: string }; error?: unknown };
  return JSON.stringify({ ...rest, id: envelope?.id, error: error instanceof Error ? error.message : error });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as SideConfig;
  const loaded = await load(config.build);
  const close = await (config.side === 'bare' ? bare : worker)(config, loaded);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await close();
    process.exit(0);
  });
}

await main();
