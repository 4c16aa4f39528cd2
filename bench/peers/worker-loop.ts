/**
 * The worker's own CPU per record, without a broker: `createEmailWorker` (from dist/, as the Kafka
 * bench loads it) on an in-process stand-in for kafkajs whose consumer hands over batches of
 * records that `publishMany` made (captured from a stand-in producer), and whose commits resolve at
 * once. What is left is what mailroom does per record: the envelope check, the claim, the render,
 * the send with its retry bookkeeping, offset tracking and the commit loop, the `sent` report. A
 * fixed workload, so before/after can be compared by instruction count on a noisy machine:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded \
 *     --import tsx bench/peers/worker-loop.ts
 *
 * (the `Collected` line is the process's instructions; with `WORKER_LOOP_RECORDS=0` the same run
 * without records gives the start-up to subtract). Without valgrind it prints µs of CPU per
 * record. WORKER_LOOP_RECORDS (default 20,000), WORKER_LOOP_BATCH (records per batch, 200),
 * WORKER_LOOP_PARTITIONS (batches in hand at once, 3: kafkajs's partitionsConsumedConcurrently),
 * WORKER_LOOP_CACHE=/tmp/records (publishes once into /tmp/records.<n>.json, then reads it: the
 * publishing is then not in the count), WORKER_LOOP_PROFILE=/tmp/loop.cpuprofile (a CPU profile of
 * the consuming alone; with WORKER_LOOP_HEAP=1 an allocation profile instead, every allocation
 * sampled, collected or not).
 * Lives in a subfolder because bench/index.ts runs every .ts file of bench/ itself.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

type Mailroom = typeof import('../../src/index.js');
type MailroomKafka = typeof import('../../src/kafka/index.js');

const RECORDS = Number(process.env.WORKER_LOOP_RECORDS ?? 20_000);
const BATCH = Number(process.env.WORKER_LOOP_BATCH ?? 200);
const PARTITIONS = Number(process.env.WORKER_LOOP_PARTITIONS ?? 3);
const TOPIC = 'loop';

// WORKER_LOOP_DIST=/path/to/dist: another build (a baseline) instead of this checkout's.
const distDir = process.env.WORKER_LOOP_DIST
  ? `${process.env.WORKER_LOOP_DIST.replace(/\/$/, '')}/`
  : '../../dist/';
const dist = existsSync(new URL(`${distDir}kafka/index.js`, import.meta.url));
const base = dist ? distDir : '../../src/';
const ext = dist ? '.js' : '.ts';
const mailroom: Mailroom = await import(`${base}index${ext}`);
const { createEmailProducer, createEmailWorker }: MailroomKafka = await import(`${base}kafka/index${ext}`);

interface Captured {
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, Buffer>;
}

/** The records publishMany writes for the Kafka bench's envelopes (bench/kafka.ts: data, to). */
async function publish(count: number): Promise<Captured[]> {
  const records: Captured[] = [];
  const producer = {
    connect: async () => {},
    disconnect: async () => {},
    send: async ({ messages }: { messages: Array<{ key?: unknown; value: unknown; headers?: object }> }) => {
      for (const m of messages) {
        const headers: Record<string, Buffer> = {};
        for (const [name, value] of Object.entries(m.headers ?? {}))
          headers[name] = Buffer.from(String(value));
        records.push({
          key: m.key == null ? null : Buffer.from(String(m.key)),
          value: Buffer.from(String(m.value)),
          headers,
        });
      }
      return [];
    },
  };
  const emails = createEmailProducer({
    kafka: { producer: () => producer, consumer: () => ({}) as never },
    flavor: 'kafkajs',
    topic: TOPIC,
  });
  await emails.connect();
  for (let from = 0; from < count; from += 500) {
    const n = Math.min(500, count - from);
    await emails.publishMany(
      Array.from({ length: n }, (_, k) => ({
        template: 'verification' as const,
        data: {
          username: `user${from + k}`,
          verificationUrl: `https://acme.example/verify?token=${((from + k) * 2654435761).toString(36)}${from + k}`,
        },
        to: `user-${from + k}@example.com`,
      })),
    );
  }
  await emails.disconnect();
  return records;
}

/** Published once and kept in WORKER_LOOP_CACHE (a file) when given, so a run measures the worker only. */
async function load(count: number): Promise<Captured[]> {
  const cache = process.env.WORKER_LOOP_CACHE ? `${process.env.WORKER_LOOP_CACHE}.${count}.json` : undefined;
  if (cache && existsSync(cache)) {
    const kept = JSON.parse(readFileSync(cache, 'utf8')) as Array<{
      k: string | null;
      v: string;
      h: Record<string, string>;
    }>;
    return kept.map(({ k, v, h }) => ({
      key: k === null ? null : Buffer.from(k),
      value: Buffer.from(v),
      headers: Object.fromEntries(Object.entries(h).map(([name, value]) => [name, Buffer.from(value)])),
    }));
  }
  const made = await publish(count);
  if (cache) {
    const kept = made.map((r) => ({
      k: r.key?.toString() ?? null,
      v: r.value.toString(),
      h: Object.fromEntries(Object.entries(r.headers).map(([name, value]) => [name, value.toString()])),
    }));
    writeFileSync(cache, JSON.stringify(kept));
  }
  return made;
}

const records = await load(RECORDS);

let consumed: (() => void) | undefined;
const done = new Promise<void>((resolve) => {
  consumed = resolve;
});
let sent = 0;
let commits = 0;

/** A kafkajs-shaped consumer: `run` starts handing over batches, PARTITIONS of them at a time. */
function consumer() {
  let eachBatch: ((payload: unknown) => Promise<void>) | undefined;
  let running = true;
  const feed = async (partition: number) => {
    for (let from = partition * BATCH; from < records.length; from += BATCH * PARTITIONS) {
      const messages = records.slice(from, from + BATCH).map((r, i) => ({
        offset: String(from + i),
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestamp: '0',
      }));
      await eachBatch?.({
        batch: { topic: TOPIC, partition, messages },
        resolveOffset() {},
        heartbeat: async () => {},
        isRunning: () => running,
        isStale: () => false,
      });
    }
  };
  return {
    connect: async () => {},
    disconnect: async () => {
      running = false;
    },
    subscribe: async () => {},
    commitOffsets: async () => {
      commits++;
    },
    pause() {},
    resume() {},
    async run(config: { eachBatch: (payload: unknown) => Promise<void> }) {
      eachBatch = config.eachBatch;
      setImmediate(() => {
        const feeds = Array.from({ length: PARTITIONS }, (_, p) => feed(p));
        void Promise.all(feeds);
      });
    },
  };
}

const transport = {
  name: 'count',
  async send(message: { messageId: string; to: Array<{ address: string }> }) {
    return {
      messageId: message.messageId,
      accepted: message.to.map((a) => a.address),
      rejected: [],
      transport: 'count',
    };
  },
};
const service = new mailroom.EmailService({
  transport: transport as never,
  from: 'Acme <no-reply@acme.example>',
});
/** As the Kafka bench's: warnings and errors to stderr, info dropped. */
const logger = {
  info() {},
  // As pino at level 'warn' says: the worker then builds no line it would drop.
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
  warn: (fields: object, message?: string) => console.error('warn', message ?? '', JSON.stringify(fields)),
  error: (fields: object, message?: string) => console.error('error', message ?? '', JSON.stringify(fields)),
};
const worker = createEmailWorker({
  kafka: {
    producer: () => ({ connect: async () => {}, disconnect: async () => {}, send: async () => [] }),
    consumer,
  },
  flavor: 'kafkajs',
  service,
  topic: TOPIC,
  concurrency: 10,
  logger,
});
worker.on('sent', ({ envelope }) => {
  if (envelope.createdAt === '') throw new Error('no createdAt');
  if (++sent === records.length) consumed?.();
});
for (const event of ['retried', 'dead-lettered', 'duplicate', 'paused', 'error'] as const) {
  worker.on(event, (payload) => console.error(`worker-loop: ${event}`, payload));
}
// WORKER_LOOP_PROFILE=file.cpuprofile: a CPU profile of the consuming alone.
const profile = process.env.WORKER_LOOP_PROFILE;
const session = profile ? new Session() : undefined;
const heap = process.env.WORKER_LOOP_HEAP === '1';
if (session) {
  session.connect();
  if (heap) {
    // Every allocation sampled, also those the GC collected since: what a record allocates.
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  } else {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
}
const cpu = process.cpuUsage();
const t0 = performance.now();
await worker.start();
if (records.length > 0) await done;
const used = process.cpuUsage(cpu);
const ms = performance.now() - t0;
if (session && profile) {
  const taken = heap
    ? (await session.post('HeapProfiler.stopSampling')).profile
    : (await session.post('Profiler.stop')).profile;
  writeFileSync(profile, JSON.stringify(taken));
}
await worker.close({ deadlineMs: 1000 });
console.log(
  `worker-loop (${dist ? 'dist' : 'src'}): ${sent} records, ${commits} commits, ${((used.user + used.system) / Math.max(1, sent)).toFixed(2)} µs CPU per record, ${ms.toFixed(0)} ms`,
);
