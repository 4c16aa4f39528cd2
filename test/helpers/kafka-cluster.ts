/**
 * A real Kafka-protocol broker for tests: librdkafka's mock cluster (Debian's librdkafka-dev ships
 * `rdkafka_mock.h`), started by a small C launcher compiled once per source change. kafkajs talks to
 * it over TCP on loopback like to any cluster. A missing compiler or header is a failure with the
 * fix in the message, never a skip.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./kafka-mock.c', import.meta.url));

/** A running mock cluster. */
export interface KafkaCluster {
  /** `host:port` of every broker. */
  readonly brokers: string[];
  /** Creates a topic (partitions, replication factor ≤ brokers). */
  createTopic(name: string, partitions?: number, replication?: number): Promise<void>;
  /** Takes a broker (1-based id) off the network: its connections close and new ones are refused. */
  brokerDown(id: number): Promise<void>;
  brokerUp(id: number): Promise<void>;
  /** Fails the next `count` requests of a Kafka API (e.g. 0 = Produce) with `errorCode`. */
  pushRequestErrors(apiKey: number, errorCode: number, count: number): Promise<void>;
  stop(): Promise<void>;
}

let built: Promise<string> | undefined;

/** Compiles the launcher (cached by source hash in the OS temp folder). */
export function buildLauncher(): Promise<string> {
  built ??= compile().catch((error) => {
    built = undefined;
    throw error;
  });
  return built;
}

async function compile(): Promise<string> {
  const source = await readFile(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'mailroom-kafka-mock');
  const binary = join(dir, `kafka-mock-${hash}`);
  if (existsSync(binary)) return binary;
  if (!existsSync('/usr/include/librdkafka/rdkafka_mock.h')) {
    throw new Error(
      'The Kafka tests need librdkafka\'s mock cluster: install it with "apt-get install librdkafka-dev" (.ci/run does).',
    );
  }
  await mkdir(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run(process.env.CC ?? 'cc', ['-O1', '-o', partial, SOURCE, '-lrdkafka']);
  } catch (error) {
    throw new Error(
      `Could not compile the Kafka mock launcher (needs a C compiler and librdkafka-dev): ${(error as Error).message}`,
    );
  }
  await rename(partial, binary);
  return binary;
}

/** Starts a mock cluster of `brokers` brokers on loopback. */
export async function startKafkaCluster(options: { brokers?: number } = {}): Promise<KafkaCluster> {
  const binary = await buildLauncher();
  const child = spawn(binary, [String(options.brokers ?? 3)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout });
  const replies: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else replies.push(line);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code) => reject(new Error(`kafka mock exited (${code}): ${stderr.trim()}`)));
  });
  exited.catch(() => {});
  const nextLine = () =>
    Promise.race([
      new Promise<string>((resolve) => {
        const ready = replies.shift();
        if (ready !== undefined) resolve(ready);
        else waiting.push(resolve);
      }),
      exited,
    ]);
  const first = await nextLine();
  const match = /^bootstraps (\S+)$/.exec(first);
  if (!match?.[1]) throw new Error(`kafka mock: unexpected first line ${JSON.stringify(first)}`);
  const brokers = match[1].split(',');

  // Commands are answered in order, one line each.
  let queue: Promise<unknown> = Promise.resolve();
  const command = (text: string) => {
    const reply = queue.then(async () => {
      child.stdin.write(`${text}\n`);
      const line = await nextLine();
      if (line !== 'ok') throw new Error(`kafka mock: "${text}" failed: ${line}`);
    });
    queue = reply.catch(() => {});
    return reply;
  };

  return {
    brokers,
    createTopic: (name, partitions = 3, replication = Math.min(3, brokers.length)) =>
      command(`topic ${name} ${partitions} ${replication}`),
    brokerDown: (id) => command(`down ${id}`),
    brokerUp: (id) => command(`up ${id}`),
    pushRequestErrors: (apiKey, errorCode, count) => command(`errors ${apiKey} ${errorCode} ${count}`),
    stop: () => stopChild(child, lines),
  };
}

async function stopChild(child: ChildProcessWithoutNullStreams, lines: Interface): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin.end('quit\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
  lines.close();
}
