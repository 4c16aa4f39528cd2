/**
 * Kafka bench: a backlog of verification envelopes on a topic, consumed side by side by
 *   - a bare kafkajs loop: eachBatch, JSON.parse, `service.render('verification', data)`, offsets
 *     committed by hand per batch, nothing else (no send, no retry, no idempotency): the floor;
 *   - mailroom's worker (`createEmailWorker`, 10 sends in flight) sending on a transport that
 *     counts and keeps nothing; its backlog published with `createEmailProducer().publishMany`.
 * on two brokers, one after the other: librdkafka's mock cluster (3 brokers, test/helpers/
 * kafka-cluster.ts) and a real Apache Kafka (one KRaft node, test/helpers/kafka-real.ts; needs the
 * jars `bash test/setup/system.sh` fetches). Topics have 6 partitions, 12 for the default backlog
 * (see PARTITIONS), the same on both brokers.
 * Each side's backlog is published once; each round, a new consumer group takes all of it, the
 * sides taking turns (5 rounds). Throughput is from the first message handled to the last of the
 * backlog; the worker's ratios to the bare loop are the median of each round's own ratio.
 * In the last round, with the same consumer still in its group, messages are then published at a
 * fixed rate, and each one's latency is the time it was handled (rendered / sent) minus the
 * createdAt its envelope got at publishing. Memory (rss, heapUsed) is sampled every 500 ms while
 * the backlog is consumed.
 *
 * Publishing is measured on its own too: `publishMany` against a bare kafkajs `producer.send` of
 * the same records (the envelope's JSON, key and header), both with mailroom's producer settings
 * (acks=all, one request in flight, idempotent where the cluster allows it: the real broker, not
 * the mock), 500 a request, rounds alternating; throughput and CPU per message of this process.
 *
 * Each side consumes in a child process of its own (bench/peers/kafka-side.ts), a new one each
 * round: its memory figures are then its own, from the same empty start, not the sum of whatever
 * this process held before (the other side, the producers and their buffers, the cluster's pipes),
 * and its CPU time is not shared with the publishing done here.
 *
 * KAFKA_BENCH_BACKLOG=n sets the backlog (100,000 by default); BENCH_QUICK=1 makes it 10,000, one
 * round and a shorter paced phase. KAFKA_BENCH_BROKERS=mock or =real runs one broker only (both by
 * default). `npx tsx bench/kafka.ts` runs this bench alone. For a closer look: KAFKA_BENCH_ROUNDS=n,
 * KAFKA_BENCH_PARTITIONS=n, KAFKA_BENCH_DUMP=/tmp/kafka (writes each side's rounds and latencies as
 * JSON), KAFKA_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (profiles the consuming processes),
 * KAFKA_BENCH_BASELINE=/path/to/checkout (another build's worker as a third side: see BASELINE).
 * Prints figures and whether the target is met; asserts nothing, except that every message arrives.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { controllerIsBroker } from '../src/kafka/client.js';
import { type KafkaCluster, startKafkaCluster } from '../test/helpers/kafka-cluster.js';
import { startRealKafka } from '../test/helpers/kafka-real.js';
import { fmt, median } from './peers/figures.js';
import type { BacklogResult, BareEnvelope, SideConfig, SideEvent } from './peers/kafka-side.js';

const QUICK = process.env.BENCH_QUICK === '1';
/** A positive integer from the environment, or the default. */
function count(variable: string, fallback: number): number {
  const value = process.env[variable];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`kafka bench: ${variable} must be a positive integer`);
  return n;
}
const BACKLOG = count('KAFKA_BENCH_BACKLOG', QUICK ? 10_000 : 100_000);
/**
 * Partitions of each topic: 6, or more when the backlog would not fit. librdkafka's mock keeps at
 * most 5 MiB per partition and silently drops the oldest records beyond that; 100,000 envelopes of
 * ~370 bytes (value, key, headers, framing) are ~6 MiB per partition on 6, and their consumer would
 * wait forever for the ~15% that are gone. So: multiples of 6, each partition at most ~80% full.
 */
const RECORD_BYTES = 400;
const PARTITIONS = count(
  'KAFKA_BENCH_PARTITIONS',
  6 * Math.max(1, Math.ceil((BACKLOG * RECORD_BYTES) / (0.8 * 5 * 2 ** 20) / 6)),
);
/** Brokers of the mock cluster (the real one is a single node). */
const MOCK_BROKERS = 3;
type BrokerKind = 'mock' | 'real';
const BROKER_KINDS: BrokerKind[] = (() => {
  const value = process.env.KAFKA_BENCH_BROKERS ?? 'mock,real';
  const kinds = value.split(',').map((k) => k.trim());
  if (kinds.length === 0 || kinds.some((k) => k !== 'mock' && k !== 'real'))
    throw new Error('kafka bench: KAFKA_BENCH_BROKERS must be mock, real or mock,real');
  return [...new Set(kinds)] as BrokerKind[];
})();
/** A cluster the bench runs on, and what to call it in the figures. */
interface Broker extends KafkaCluster {
  kind: BrokerKind;
  label: string;
}
const CHUNK = 500; // envelopes per produce request while publishing the backlog
const RATE = 500; // paced phase, envelopes per second
const PACED = RATE * (QUICK ? 3 : 6);
const ROUNDS = count('KAFKA_BENCH_ROUNDS', QUICK ? 1 : 5);
const CONCURRENCY = 10;
const TARGET_VS_BARE = 0.8; // the worker's throughput, at least this share of the bare loop's
const TARGET_CPU = 1.3; // the worker's CPU per message, at most this multiple of the bare loop's
const TARGET_PUBLISH = 0.8; // publishMany's throughput, at least this share of producer.send's
const PUBLISH_COUNT = QUICK ? 5_000 : 20_000; // records per side and round of the publish bench
const STALL_MS = 30_000; // a side that handles nothing for this long has failed
/**
 * A folder holding another build of mailroom (a checkout with its `dist/` built and its
 * node_modules): its worker runs as a third side, in the same rounds, so that a change is measured
 * against the build before it on the machine as it is now, not against figures from another run.
 */
const BASELINE = (() => {
  const folder = process.env.KAFKA_BENCH_BASELINE;
  if (!folder) return undefined;
  const root = resolve(folder);
  for (const needed of ['dist/kafka/index.js', 'node_modules/kafkajs']) {
    if (!existsSync(join(root, needed))) {
      throw new Error(
        `kafka bench: KAFKA_BENCH_BASELINE=${folder} has no ${needed}: give a checkout with its ` +
          'node_modules, built (npm run build)',
      );
    }
  }
  return root;
})();
// The same prefix as bench/peers/kafka-side.ts's PREFIX (a value import would load that script here).
const PREFIX = '@@kafka-bench ';

// kafkajs 2 warns on every producer it makes that its default partitioner changed in v2.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const names = (side: string) => {
  const run = randomUUID().slice(0, 8);
  return {
    topic: `bench.${side}.${run}`,
    retryTopic: `bench.${side}.${run}.retry`,
    deadLetterTopic: `bench.${side}.${run}.dlq`,
    groupId: `bench-${side}-${run}`,
  };
};

type KafkaModule = typeof import('../src/kafka/index.js');

/** Where the worker side's mailroom comes from: see `load()` in bench/peers/kafka-side.ts. */
function kafkaModule(): string {
  return existsSync(new URL('../dist/kafka/index.js', import.meta.url))
    ? '../dist/kafka/index.js'
    : '../src/kafka/index.ts';
}

function kafkaClient(cluster: KafkaCluster, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: cluster.brokers,
    logLevel: logLevel.ERROR,
    logCreator:
      () =>
      ({ namespace, log }) =>
        console.error(`kafkajs ${namespace}: ${log.message}`),
  });
}

const username = (i: number) => `user${i}`;
const data = (i: number) => ({
  username: username(i),
  verificationUrl: `https://acme.example/verify?token=${(i * 2654435761).toString(36)}${i}`,
});
const to = (i: number) => `user-${i}@example.com`;

/** Publishes envelopes `from`…`from + count - 1` in one produce request. */
type Publish = (from: number, count: number) => Promise<void>;

interface Publisher {
  /** What publishes, for the figures. */
  label: string;
  publish: Publish;
  close(): Promise<void>;
}

async function barePublisher(cluster: KafkaCluster, topic: string): Promise<Publisher> {
  // What mailroom's producer is given: acks=all (below), one request in flight, idempotent where it can be.
  const producer = kafkaClient(cluster, 'bench-bare-producer').producer({
    maxInFlightRequests: 1,
    // mailroom's own rule: idempotent where the controller is one of the brokers (not on the mock).
    idempotent: await controllerIsBroker(kafkaClient(cluster, 'bench-admin')),
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return {
    label: 'kafkajs producer.send',
    async publish(from, count) {
      const messages = Array.from({ length: count }, (_, k) => {
        const i = from + k;
        // The shape and size of mailroom's envelope, keyed by the recipient as mailroom keys it.
        const envelope: BareEnvelope = {
          version: 1,
          id: randomUUID(),
          idempotencyKey: randomUUID(),
          template: 'verification',
          data: data(i),
          to: [to(i)],
          createdAt: new Date().toISOString(),
        };
        return { key: to(i), value: JSON.stringify(envelope), headers: { 'mailroom-envelope-version': '1' } };
      });
      await producer.send({ topic, acks: -1, messages });
    },
    close: () => producer.disconnect(),
  };
}

async function workerPublisher(cluster: KafkaCluster, topic: string, specifier: string): Promise<Publisher> {
  const { createEmailProducer }: KafkaModule = await import(specifier);
  const producer = createEmailProducer({ kafka: kafkaClient(cluster, 'bench-worker-producer'), topic });
  await producer.connect();
  return {
    label: 'mailroom publishMany',
    async publish(from, count) {
      await producer.publishMany(
        Array.from({ length: count }, (_, k) => ({
          template: 'verification' as const,
          data: data(from + k),
          to: to(from + k),
        })),
      );
    },
    close: () => producer.disconnect(),
  };
}

/** Publishes `total` envelopes in requests of `CHUNK`, one after the other; returns envelopes/s. */
async function publishBacklog(publisher: Publisher, total: number): Promise<number> {
  const start = performance.now();
  for (let from = 0; from < total; from += CHUNK) {
    await publisher.publish(from, Math.min(CHUNK, total - from));
  }
  return total / ((performance.now() - start) / 1000);
}

/** Throws unless the topic holds the whole backlog (the mock drops the oldest records of a full partition). */
async function checkBacklog(cluster: KafkaCluster, topic: string): Promise<void> {
  const admin = kafkaClient(cluster, 'bench-admin').admin();
  await admin.connect();
  try {
    const partitions = await admin.fetchTopicOffsets(topic);
    const held = partitions.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    if (held !== BACKLOG) {
      throw new Error(
        `kafka bench: ${topic} holds ${held} of the ${BACKLOG} envelopes published: the mock dropped ` +
          'the oldest of a full partition (5 MiB each); raise RECORD_BYTES in bench/kafka.ts',
      );
    }
  } finally {
    await admin.disconnect();
  }
}

/** Publishes `total` envelopes at `RATE` per second: whatever is due every 5 ms, in one request. */
async function publishPaced(publisher: Publisher, offset: number, total: number): Promise<void> {
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  const errors: unknown[] = [];
  for (let published = 0; published < total; ) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE)) - published;
    if (due > 0) {
      const request = publisher.publish(offset + published, due).catch((error) => void errors.push(error));
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
      published += due;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inFlight);
  if (errors.length) throw errors[0];
}

/** One side, its backlog published once and consumed by a new group (a new process) each round. */
interface Side {
  name: string;
  kind: SideConfig['side'];
  /** Another build's folder (the baseline), or undefined for this checkout's. */
  build?: string;
  topics: ReturnType<typeof names>;
  publisher: Publisher;
  publishedPerSecond: number;
  rounds: BacklogResult[];
  latencies: number[];
}

/** Creates a side's topics and publishes its backlog. */
async function prepare(
  cluster: KafkaCluster,
  name: string,
  kind: SideConfig['side'],
  openPublisher: (topic: string) => Promise<Publisher>,
  build?: string,
): Promise<Side> {
  const topics = names(kind);
  for (const topic of [topics.topic, topics.retryTopic, topics.deadLetterTopic]) {
    await cluster.createTopic(topic, PARTITIONS);
  }
  const publisher = await openPublisher(topics.topic);
  try {
    const publishedPerSecond = await publishBacklog(publisher, BACKLOG);
    await checkBacklog(cluster, topics.topic);
    return { name, kind, build, topics, publisher, publishedPerSecond, rounds: [], latencies: [] };
  } catch (error) {
    await publisher.close();
    throw error;
  }
}

/**
 * One round of a side: a new consumer group in a new process takes the whole backlog; in the last
 * round, the paced phase follows on the same consumer (after it, the topic holds more than the backlog).
 */
async function round(cluster: KafkaCluster, side: Side, paced: boolean): Promise<void> {
  const child = startSide({
    side: side.kind,
    ...(side.build === undefined ? {} : { build: side.build }),
    brokers: cluster.brokers,
    ...side.topics,
    groupId: `${side.topics.groupId}-${side.rounds.length + 1}`,
    backlog: BACKLOG,
    paced: paced ? PACED : 0,
    concurrency: CONCURRENCY,
  });
  try {
    const { backlog } = await child.next('drained');
    side.rounds.push(backlog);
    if (paced) await publishPaced(side.publisher, BACKLOG, PACED);
    side.latencies = (await child.next('done')).latencies;
  } finally {
    await child.close();
  }
}

/** Starts bench/peers/kafka-side.ts for one side. */
function startSide(config: SideConfig) {
  const script = fileURLToPath(new URL('./peers/kafka-side.ts', import.meta.url));
  // From the repository root, where `--import tsx` resolves.
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--expose-gc',
      ...(process.env.KAFKA_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      script,
      JSON.stringify(config),
    ],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const events: SideEvent[] = [];
  let waiting: (() => void) | undefined;
  let failure: Error | undefined;
  let count = 0;
  let lastChange = performance.now();
  const wake = () => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith(PREFIX)) return void console.error(line); // a stray log line
    const event = JSON.parse(line.slice(PREFIX.length)) as SideEvent;
    if (event.event === 'progress') {
      if (event.count !== count) lastChange = performance.now();
      count = event.count;
    } else {
      count = event.event === 'drained' ? config.backlog : config.backlog + config.paced;
      events.push(event);
    }
    wake();
  });
  child.once('exit', (code, signal) => {
    failure ??= new Error(`kafka bench: the ${config.side} process exited (${signal ?? code})`);
    wake();
  });
  const watchdog = setInterval(() => {
    if (performance.now() - lastChange < STALL_MS) return;
    failure ??= new Error(
      `kafka bench: ${config.side}: nothing handled for ${STALL_MS / 1000} s, at ` +
        `${count.toLocaleString('en-US')} of ${(config.backlog + config.paced).toLocaleString('en-US')} messages`,
    );
    child.kill('SIGKILL');
    wake();
  }, 1000);

  return {
    async next<E extends Exclude<SideEvent['event'], 'progress'>>(
      name: E,
    ): Promise<Extract<SideEvent, { event: E }>> {
      for (;;) {
        const index = events.findIndex((e) => e.event === name);
        if (index >= 0) return events.splice(index, 1)[0] as Extract<SideEvent, { event: E }>;
        if (failure) throw failure;
        await new Promise<void>((resolve) => {
          waiting = resolve;
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(watchdog);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin!.end();
      }),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const mb = (bytes: number) => fmt(bytes / 2 ** 20, 0);
const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const line = (label: string, figure: string, rest: string) =>
  console.log(`${label.padEnd(22)}${figure.padStart(10)}  ${rest}`);

/** The share of the machine's CPU time spent busy over one second (0–1). */
async function machineBusy(): Promise<number> {
  const total = () =>
    cpus().reduce(
      (sum, { times }) => {
        sum.busy += times.user + times.nice + times.sys + times.irq;
        sum.all += times.user + times.nice + times.sys + times.irq + times.idle;
        return sum;
      },
      { busy: 0, all: 0 },
    );
  const before = total();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = total();
  return (after.busy - before.busy) / Math.max(1, after.all - before.all);
}

/** A side's figures: medians over its rounds, latencies from the last. */
function summary(side: Side) {
  const of = (pick: (r: BacklogResult) => number) => median(side.rounds.map(pick));
  const perSecond = side.rounds.map((r) => r.perSecond);
  const sorted = [...side.latencies].sort((a, b) => a - b);
  return {
    perSecond: median(perSecond),
    range: perSecond.length > 1 ? `${fmt(Math.min(...perSecond), 0)}–${fmt(Math.max(...perSecond), 0)}` : '',
    cpuPerMessage: of((r) => r.cpuPerMessage),
    commits: of((r) => r.commits),
    loopBusy: of((r) => r.loopBusy),
    firstMessageMs: of((r) => r.firstMessageMs),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1)!,
    rss: [of((r) => r.memory.start.rss), of((r) => r.memory.peak.rss), of((r) => r.memory.end.rss)],
    heap: [
      of((r) => r.memory.start.heapUsed),
      of((r) => r.memory.peak.heapUsed),
      of((r) => r.memory.end.heapUsed),
    ],
    heapAfterGc: of((r) => r.memory.heapAfterGc),
  };
}

/** What one broker's run ends with, for the summary. */
interface Figures {
  broker: Broker;
  throughput: number;
  cpu: number;
  rss: { bare: number; worker: number };
  heapAfterGc: { bare: number; worker: number };
  publish: PublishFigures;
}

function report(broker: Broker, sides: Side[], busyBefore: number, publish: PublishFigures): Figures {
  const rounds = ROUNDS === 1 ? 'one round' : `median of ${ROUNDS} rounds`;
  console.log(
    `\nkafka on the ${broker.kind} broker: ${fmt(BACKLOG, 0)} verification envelopes on a ${PARTITIONS}-partition topic ` +
      `(${broker.label}, acks=all),\neach round a new group in a new ` +
      `process per side, ${rounds}; then ${fmt(PACED, 0)} more at ${RATE}/s for latency\n`,
  );
  const figures = new Map(sides.map((side) => [side, summary(side)]));
  const ms = (x: number) => `${fmt(x, 0)} ms`;
  const columns = (...cells: string[]) =>
    cells.map((cell, i) => cell.padStart([15, 9, 6, 9, 10, 9, 9, 9][i]!)).join('');
  console.log(`${''.padEnd(32)}${columns('', '', 'loop', 'offset', 'first', '', 'latency', '')}`);
  line(
    'contestant',
    'msgs/s',
    columns('rounds', 'CPU/msg', 'busy', 'commits', 'message', 'p50', 'p99', 'max'),
  );
  for (const [side, f] of figures) {
    line(
      side.name,
      fmt(f.perSecond, 0),
      columns(
        f.range,
        `${fmt(f.cpuPerMessage, 0)} µs`,
        `${fmt(f.loopBusy * 100, 0)}%`,
        fmt(f.commits, 0),
        ms(f.firstMessageMs),
        ms(f.p50),
        ms(f.p99),
        ms(f.max),
      ),
    );
  }
  console.log(
    '\nmsgs/s: first message handled to the last of the backlog. CPU/msg (all threads), loop busy (the\n' +
      "event loop's utilisation) and offset commits (requests): the consuming process over that span.\n" +
      "First message: from starting the consumer (the group's join). Latency: handled (rendered; sent)\n" +
      '− the createdAt set at publishing, ms clock, the paced messages only.\n',
  );

  const cells = (...values: string[]) => values.map((f) => f.padStart(7)).join('');
  console.log('memory while the backlog is consumed, MB (sampled every 500 ms)\n');
  console.log(`${''.padEnd(22)}${'rss'.padStart(14)}${'heapUsed'.padStart(30)}`);
  console.log(
    `${'contestant'.padEnd(22)}${cells('start', 'peak', 'end')}   ${cells('start', 'peak', 'end')}${'after GC'.padStart(10)}`,
  );
  for (const [side, f] of figures) {
    console.log(
      `${side.name.padEnd(22)}${cells(...f.rss.map(mb))}   ${cells(...f.heap.map(mb))}${mb(f.heapAfterGc).padStart(10)}`,
    );
  }
  console.log();
  for (const side of sides) {
    line(
      `published (${side.kind})`,
      fmt(side.publishedPerSecond, 0),
      `msgs/s  ${side.publisher.label}, ${CHUNK} a request`,
    );
  }
  if (sides.some((side) => side.rounds.some((r) => r.source === 'src'))) {
    console.log('(mailroom loaded from src/: dist/ has no kafka entry; `npm run bench` builds it)');
  }
  if (busyBefore > 0.2) {
    console.log(
      `(the machine's CPUs were ${fmt(busyBefore * 100, 0)}% busy in the second before the bench: other ` +
        'work was running; msgs/s is noisy, CPU/msg less so)',
    );
  }
  console.log();

  const bare = figures.get(sides[0]!)!;
  const worker = figures.get(sides[1]!)!;
  const throughput = paired(sides[0]!.rounds, sides[1]!.rounds, (r) => r.perSecond);
  const cpuRatio = paired(sides[0]!.rounds, sides[1]!.rounds, (r) => r.cpuPerMessage);
  const ratio = throughput.median;
  const cpu = cpuRatio.median;
  console.log(
    `mailroom worker / bare loop = ${fmt(ratio, 2)}× throughput (target ≥ ${TARGET_VS_BARE}×: ${met(ratio >= TARGET_VS_BARE)})${throughput.spread}`,
  );
  console.log(
    `${''.padEnd(30)}${fmt(cpu, 2)}× the CPU per message (target ≤ ${TARGET_CPU}×: ${met(cpu <= TARGET_CPU)})${cpuRatio.spread}`,
  );
  if (ROUNDS > 1) {
    console.log(
      `${''.padEnd(30)}(each the median of the ${ROUNDS} rounds' own ratios: a round's two sides ran back to back)`,
    );
  }
  const baseline = sides[2];
  if (baseline !== undefined) {
    const against = (of: Side, pick: (r: BacklogResult) => number) =>
      paired(of.rounds, sides[1]!.rounds, pick);
    const vsBare = paired(sides[0]!.rounds, baseline.rounds, (r) => r.cpuPerMessage);
    const cpuVs = against(baseline, (r) => r.cpuPerMessage);
    const throughputVs = against(baseline, (r) => r.perSecond);
    console.log(
      `baseline (${baseline.build}): ${fmt(vsBare.median, 2)}× the bare loop's CPU per message${vsBare.spread}\n` +
        `this build / baseline = ${fmt(cpuVs.median, 2)}× the CPU per message${cpuVs.spread}, ` +
        `${fmt(throughputVs.median, 2)}× the throughput${throughputVs.spread}`,
    );
  }
  for (const [side, f] of figures) {
    console.log(`${`${side.name} latency`.padEnd(30)}p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`);
  }
  reportPublish(publish);
  return {
    broker,
    throughput: ratio,
    cpu,
    rss: { bare: bare.rss[1]!, worker: worker.rss[1]! },
    heapAfterGc: { bare: bare.heapAfterGc, worker: worker.heapAfterGc },
    publish,
  };
}

/**
 * One side's figure over another's (`of` over `base`: the worker over the bare loop, this build
 * over the baseline), round by round, and the median of those ratios. The sides of a round run one
 * right after the other (the order alternating), so a ratio compares them on the machine as it was
 * then: drift between rounds (the broker's JIT warming up, other work on the machine) cancels out,
 * where a ratio of the two sides' medians would mix rounds.
 */
function paired<R>(base: R[], of: R[], pick: (r: R) => number): { median: number; spread: string } {
  const ratios = base.map((b, r) => pick(of[r]!) / pick(b));
  const spread =
    ratios.length > 1 ? `; rounds ${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}×` : '';
  return { median: median(ratios), spread };
}

/** Publishing alone: `PUBLISH_COUNT` records per side and round, rounds alternating; medians, and of the rounds' ratios. */
interface PublishFigures {
  idempotent: boolean;
  bare: { perSecond: number; cpuPerMessage: number };
  mailroom: { perSecond: number; cpuPerMessage: number };
  /** publishMany over producer.send, the median of the rounds' own ratios (see {@link paired}). */
  throughput: ReturnType<typeof paired>;
  cpu: ReturnType<typeof paired>;
}

async function publishBench(broker: Broker, specifier: string): Promise<PublishFigures> {
  const idempotent = await controllerIsBroker(kafkaClient(broker, 'bench-admin'));
  const open = async (kind: 'bare' | 'mailroom') => {
    const topic = `bench.publish-${kind}.${randomUUID().slice(0, 8)}`;
    // A topic that holds every round (the mock keeps 5 MiB a partition).
    const partitions =
      6 * Math.max(1, Math.ceil((PUBLISH_COUNT * ROUNDS * RECORD_BYTES) / (0.8 * 5 * 2 ** 20) / 6));
    await broker.createTopic(topic, partitions);
    return kind === 'bare' ? barePublisher(broker, topic) : workerPublisher(broker, topic, specifier);
  };
  const publishers = { bare: await open('bare'), mailroom: await open('mailroom') };
  type Run = { perSecond: number; cpuPerMessage: number };
  const runs: Record<'bare' | 'mailroom', Run[]> = { bare: [], mailroom: [] };
  try {
    await publishBacklog(publishers.bare, CHUNK); // both connected and warm before the first measure
    await publishBacklog(publishers.mailroom, CHUNK);
    for (let r = 0; r < ROUNDS; r++) {
      for (const kind of r % 2 ? (['mailroom', 'bare'] as const) : (['bare', 'mailroom'] as const)) {
        const cpu = process.cpuUsage();
        const perSecond = await publishBacklog(publishers[kind], PUBLISH_COUNT);
        const used = process.cpuUsage(cpu);
        runs[kind].push({ perSecond, cpuPerMessage: (used.user + used.system) / PUBLISH_COUNT });
      }
    }
  } finally {
    await publishers.bare.close().catch(() => {});
    await publishers.mailroom.close().catch(() => {});
  }
  const of = (list: Run[]) => ({
    perSecond: median(list.map((x) => x.perSecond)),
    cpuPerMessage: median(list.map((x) => x.cpuPerMessage)),
  });
  return {
    idempotent,
    bare: of(runs.bare),
    mailroom: of(runs.mailroom),
    throughput: paired(runs.bare, runs.mailroom, (x) => x.perSecond),
    cpu: paired(runs.bare, runs.mailroom, (x) => x.cpuPerMessage),
  };
}

function reportPublish(p: PublishFigures): void {
  console.log(
    `\npublishing ${fmt(PUBLISH_COUNT, 0)} records a round, ${CHUNK} a request, acks=all, one request in flight, ` +
      `${p.idempotent ? 'idempotent' : 'not idempotent (the mock cannot)'}, ${ROUNDS === 1 ? 'one round' : `median of ${ROUNDS} rounds`}`,
  );
  line(
    'kafkajs producer.send',
    fmt(p.bare.perSecond, 0),
    `msgs/s  ${fmt(p.bare.cpuPerMessage, 0)} µs CPU/msg`,
  );
  line(
    'mailroom publishMany',
    fmt(p.mailroom.perSecond, 0),
    `msgs/s  ${fmt(p.mailroom.cpuPerMessage, 0)} µs CPU/msg`,
  );
  const ratio = p.throughput.median;
  console.log(
    `publishMany / producer.send = ${fmt(ratio, 2)}× throughput (target ≥ ${TARGET_PUBLISH}×: ${met(ratio >= TARGET_PUBLISH)})${p.throughput.spread}, ` +
      `${fmt(p.cpu.median, 2)}× the CPU per message\n`,
  );
}

/** Both brokers side by side. */
function summarise(all: Figures[]): void {
  if (all.length < 2) return;
  const row = (label: string, cell: (f: Figures) => string, target: string) =>
    console.log(`${label.padEnd(34)}${all.map((f) => cell(f).padStart(14)).join('')}  ${target}`);
  console.log(`kafka, ${fmt(BACKLOG, 0)}-message backlog: mailroom against the bare kafkajs loop\n`);
  row('', (f) => f.broker.kind, 'target');
  row('worker throughput / bare', (f) => `${fmt(f.throughput, 2)}×`, `≥ ${TARGET_VS_BARE}×`);
  row('worker CPU per message / bare', (f) => `${fmt(f.cpu, 2)}×`, `≤ ${TARGET_CPU}×`);
  row('peak rss MB, bare / worker', (f) => `${mb(f.rss.bare)} / ${mb(f.rss.worker)}`, 'flat');
  row(
    'heap after GC MB, bare / worker',
    (f) => `${mb(f.heapAfterGc.bare)} / ${mb(f.heapAfterGc.worker)}`,
    '',
  );
  row(
    'publishMany / producer.send',
    (f) => `${fmt(f.publish.throughput.median, 2)}×`,
    `≥ ${TARGET_PUBLISH}×`,
  );
  console.log();
}

async function startBroker(kind: BrokerKind): Promise<Broker> {
  if (kind === 'mock') {
    const cluster = await startKafkaCluster({ brokers: MOCK_BROKERS });
    return Object.assign(cluster, { kind, label: `librdkafka mock cluster, ${MOCK_BROKERS} brokers` });
  }
  const cluster = await startRealKafka({ nodes: 1 });
  return Object.assign(cluster, { kind, label: 'Apache Kafka, one KRaft node' });
}

/** The whole bench on one broker: both backlogs, the rounds, the publish bench. */
async function onBroker(kind: BrokerKind, busyBefore: number): Promise<Figures> {
  const broker = await startBroker(kind);
  const sides: Side[] = [];
  try {
    sides.push(await prepare(broker, 'bare kafkajs loop', 'bare', (topic) => barePublisher(broker, topic)));
    const specifier = kafkaModule();
    sides.push(
      await prepare(broker, 'mailroom worker', 'worker', (topic) =>
        workerPublisher(broker, topic, specifier),
      ),
    );
    if (BASELINE !== undefined) {
      // The same envelopes (v1), published by this checkout's producer.
      sides.push(
        await prepare(
          broker,
          'worker (baseline)',
          'worker',
          (topic) => workerPublisher(broker, topic, specifier),
          BASELINE,
        ),
      );
    }
    // Rounds take turns and the order alternates, so that drift in the machine's speed (and
    // whatever else runs on it) hits both sides alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 ? [...sides].reverse() : sides) await round(broker, side, r === ROUNDS - 1);
    }
    if (process.env.KAFKA_BENCH_DUMP) {
      for (const side of sides) {
        const name = `${side.kind}${side.build === undefined ? '' : '-baseline'}`;
        writeFileSync(`${process.env.KAFKA_BENCH_DUMP}.${kind}.${name}.json`, JSON.stringify(side));
      }
    }
    for (const side of sides) await side.publisher.close().catch(() => {});
    const publish = await publishBench(broker, specifier);
    return report(broker, sides, busyBefore, publish);
  } finally {
    for (const side of sides) await side.publisher.close().catch(() => {});
    await broker.stop();
  }
}

export async function run(): Promise<void> {
  const busyBefore = await machineBusy();
  const all: Figures[] = [];
  for (const kind of BROKER_KINDS) all.push(await onBroker(kind, busyBefore));
  summarise(all);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await run();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
