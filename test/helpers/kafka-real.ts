/**
 * A real Apache Kafka for tests: KRaft brokers (broker and controller in one JVM per node, no
 * ZooKeeper) started from the Maven jars that test/setup/system.sh copied into
 * test/setup/kafka/libs, on loopback ports picked at run time, data in a temp folder. Same
 * `KafkaCluster` interface as the mock (kafka-cluster.ts), except request-error injection, which
 * only the mock can do. Missing Java or jars is a failure with the fix in the message, never a skip.
 *
 * With `tls`, each broker also listens for TLS (`tlsBrokers`), its certificate and the CAs it trusts
 * from PEM files (Kafka's PEM key store, 2.7+), and by default requires a client certificate. The
 * plain listener stays for the tests' own plumbing.
 *
 * No JVM outlives the test process: each runs in its own process group, killed on `stop()`, on
 * the process's exit, and by a watchdog shell (which also deletes the data) when the test process
 * dies without running its hooks (SIGKILL, a crash).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaCluster } from './kafka-cluster.js';

const run = promisify(execFile);
const SETUP = fileURLToPath(new URL('../setup/kafka/', import.meta.url));
const LIBS = join(SETUP, 'libs');
const CLASSPATH = `${LIBS}/*`; // java expands the wildcard itself
const LOG4J = `-Dlog4j.configuration=file:${join(SETUP, 'log4j.properties')}`;
const STARTED = 'Kafka Server started';
/** How long one node may take to start (a cold JVM on 2 busy cores). */
const READY_TIMEOUT_MS = 120_000;
/** How long `stop()` lets a node shut down cleanly before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

/** A running real cluster; `startupMs` is how long `startRealKafka` took. */
export interface RealKafkaCluster extends KafkaCluster {
  readonly nodes: number;
  readonly startupMs: number;
  /** The TLS listeners' addresses (`127.0.0.1:port`), when started with `tls`; else empty. */
  readonly tlsBrokers: string[];
  /**
   * With `authorize`: `host:port` of every broker's SASL/PLAIN listener, where {@link SASL_USER}
   * may do only what ACLs allow (the `brokers` listener stays open to the tests' plumbing).
   */
  readonly saslBrokers?: string[];
}

/** A TLS listener beside the plain one. */
export interface RealKafkaTls {
  /** PEM: the broker's private key (unencrypted PKCS#8) followed by its certificate chain. */
  keystore: string;
  /** PEM: the CA certificates that sign the clients' certificates. */
  truststore: string;
  /** Kafka's `ssl.client.auth`. Default `required` (mutual TLS). */
  clientAuth?: 'required' | 'requested' | 'none';
}

/**
 * The user of a cluster started with `authorize`, on its `saslBrokers`: allowed nothing until the
 * test grants it ACLs (through the plumbing's admin on `brokers`, a super user).
 */
export const SASL_USER = { mechanism: 'plain', username: 'mailroom', password: 'mailroom-secret' } as const;

interface Node {
  id: number;
  /** The cluster's temp folder (all nodes); `dir` is this node's, inside it. */
  root: string;
  dir: string;
  brokerPort: number;
  controllerPort: number;
  /** The TLS listener's port, when the cluster has one. */
  tlsPort?: number;
  /** With `authorize`: the SASL/PLAIN listener's port. */
  saslPort?: number;
  process?: ChildProcess;
  watchdog?: ChildProcess;
  output: string;
}

const running = new Set<Node>();
let exitHook = false;

/** Starts a KRaft cluster of 1 or 3 nodes and waits until every broker is up. */
export async function startRealKafka(
  options: { nodes?: 1 | 3; tls?: RealKafkaTls; authorize?: boolean } = {},
): Promise<RealKafkaCluster> {
  const started = Date.now();
  const count = options.nodes ?? 1;
  if (!existsSync(join(LIBS, '.pom-hash'))) {
    throw new Error(
      'The real-broker tests need Apache Kafka\'s jars: run "bash test/setup/system.sh" (npm test does), or "mvn -B -f test/setup/kafka/pom.xml dependency:copy-dependencies".',
    );
  }
  installExitHook();
  const root = await mkdtemp(join(tmpdir(), 'mailroom-kafka-real-'));
  const perNode = 2 + (options.tls ? 1 : 0) + (options.authorize ? 1 : 0);
  const ports = await freePorts(count * perNode);
  const nodes: Node[] = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    root,
    dir: join(root, `node-${i + 1}`),
    brokerPort: ports[i * perNode] as number,
    controllerPort: ports[i * perNode + 1] as number,
    ...(options.tls ? { tlsPort: ports[i * perNode + 2] as number } : {}),
    ...(options.authorize ? { saslPort: ports[i * perNode + (options.tls ? 3 : 2)] as number } : {}),
    output: '',
  }));
  const clusterId = kafkaUuid();
  const byId = (id: number) => {
    const node = nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no broker ${id} (nodes 1-${count})`);
    return node;
  };
  const brokers = nodes.map((n) => `127.0.0.1:${n.brokerPort}`);
  let admin: ReturnType<Kafka['admin']> | undefined;
  const stop = async () => {
    await admin?.disconnect().catch(() => {});
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGTERM')));
    await rm(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(
      nodes.map(async (node) => {
        await mkdir(join(node.dir, 'data'), { recursive: true });
        await writeFile(join(node.dir, 'server.properties'), serverProperties(node, nodes, options.tls));
        await java(['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsOf(node)]);
      }),
    );
    await Promise.all(nodes.map((n) => startNode(n)));
    admin = new Kafka({ brokers, clientId: 'mailroom-test-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await admin.describeCluster()).brokers.length < count) {
      if (Date.now() > deadline)
        throw new Error(`kafka: fewer than ${count} brokers registered\n${logs(nodes)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  const connectedAdmin = admin;
  return {
    nodes: count,
    brokers,
    tlsBrokers: nodes.flatMap((n) => (n.tlsPort ? [`127.0.0.1:${n.tlsPort}`] : [])),
    startupMs: Date.now() - started,
    ...(options.authorize ? { saslBrokers: nodes.map((n) => `127.0.0.1:${n.saslPort}`) } : {}),
    createTopic: async (name, partitions = 3, replication = Math.min(3, count)) => {
      await connectedAdmin.createTopics({
        topics: [{ topic: name, numPartitions: partitions, replicationFactor: Math.min(replication, count) }],
        waitForLeaders: false,
      });
      await untilLed(connectedAdmin, name, partitions);
      // A client the test starts next may ask any running broker; each must know the topic by then.
      await Promise.all(
        nodes.filter((n) => n.process).map((n) => untilListed(`127.0.0.1:${n.brokerPort}`, name)),
      );
    },
    brokerDown: (id) => stopNode(byId(id), 'SIGKILL'),
    brokerUp: (id) => startNode(byId(id)),
    pushRequestErrors: async () => {
      throw new Error('only the mock injects request errors: use startKafkaCluster() for that scenario');
    },
    stop,
  };
}

/**
 * Waits until the topic's partitions have leaders, seen three times in a row (the admin asks any
 * broker, and a broker that has not caught up with the metadata yet says the topic is unknown:
 * kafkajs's own `waitForLeaders` gives up on that).
 */
async function untilLed(admin: ReturnType<Kafka['admin']>, topic: string, partitions: number) {
  const deadline = Date.now() + 30_000;
  let seen = 0;
  while (seen < 3) {
    if (Date.now() > deadline) throw new Error(`kafka: topic ${topic} has no leaders after 30 s`);
    const led = await admin.fetchTopicMetadata({ topics: [topic] }).then(
      ({ topics }) => topics[0]?.partitions.filter((p) => p.leader >= 0).length === partitions,
      () => false,
    );
    seen = led ? seen + 1 : 0;
    if (seen < 3) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until the broker at `address` lists `topic` itself. The admin above asks whichever broker
 * it likes, and under load another broker can still say the topic does not exist (a worker's
 * start-up check then refuses to start). An admin with one seed broker and no other request asks
 * that broker alone.
 */
async function untilListed(address: string, topic: string): Promise<void> {
  const admin = new Kafka({
    brokers: [address],
    clientId: 'mailroom-test-listing',
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 30_000;
    while (!(await admin.listTopics()).includes(topic)) {
      if (Date.now() > deadline)
        throw new Error(`kafka: broker ${address} does not list ${topic} after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await admin.disconnect();
  }
}

function serverProperties(node: Node, all: readonly Node[], tls: RealKafkaTls | undefined): string {
  const n = all.length;
  const voters = all.map((v) => `${v.id}@127.0.0.1:${v.controllerPort}`).join(',');
  const ssl = tls && node.tlsPort ? `,SSL://127.0.0.1:${node.tlsPort}` : '';
  const sasl = node.saslPort === undefined ? '' : `,SASL_PLAINTEXT://127.0.0.1:${node.saslPort}`;
  return `${[
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.brokerPort},CONTROLLER://127.0.0.1:${node.controllerPort}${ssl}${sasl}`,
    // A client is told the brokers of the listener it asked on: TLS clients stay on TLS.
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.brokerPort}${ssl}${sasl}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${ssl ? ',SSL:SSL' : ''}${sasl ? ',SASL_PLAINTEXT:SASL_PLAINTEXT' : ''}`,
    ...(tls && ssl
      ? [
          'ssl.keystore.type=PEM',
          `ssl.keystore.location=${tls.keystore}`,
          'ssl.truststore.type=PEM',
          `ssl.truststore.location=${tls.truststore}`,
          `ssl.client.auth=${tls.clientAuth ?? 'required'}`,
        ]
      : []),
    ...(sasl
      ? [
          // ACLs on: SASL_USER may do what the test grants; the unauthenticated PLAINTEXT and
          // CONTROLLER listeners (the brokers themselves, the tests' plumbing) are super users.
          'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
          'super.users=User:ANONYMOUS',
          'sasl.enabled.mechanisms=PLAIN',
          `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SASL_USER.username}="${SASL_USER.password}";`,
        ]
      : []),
    `log.dirs=${join(node.dir, 'data')}`,
    // What the issue wants checked: a worker whose topics are missing is not saved by the broker.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    `default.replication.factor=${n}`,
    `min.insync.replicas=${n === 1 ? 1 : 2}`,
    `offsets.topic.replication.factor=${n}`,
    `offsets.topic.num.partitions=${n}`,
    `transaction.state.log.replication.factor=${n}`,
    `transaction.state.log.min.isr=${n === 1 ? 1 : 2}`,
    'transaction.state.log.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    // A killed node leaves the ISR in seconds, not the default 9-30 s, so acks=all writes go on.
    'broker.heartbeat.interval.ms=500',
    'broker.session.timeout.ms=4000',
    'replica.lag.time.max.ms=5000',
    'log.cleaner.dedupe.buffer.size=2097152',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
  ].join('\n')}\n`;
}

const propsOf = (node: Node) => join(node.dir, 'server.properties');

/** A short-lived JVM (the storage tool). */
async function java(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('java', ['-Xmx256m', LOG4J, '-cp', CLASSPATH, ...args]);
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT')
      throw new Error('The real-broker tests need Java 17: apt-get install default-jre-headless');
    throw new Error(`kafka: java ${args.slice(0, 2).join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Starts one node's JVM (same ports and data as before, after a kill) and waits for its ready line. */
async function startNode(node: Node): Promise<void> {
  if (node.process) return;
  node.output = '';
  const child = spawn(
    'java',
    [
      '-Xms64m',
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1', // start-up over peak speed: these brokers carry little
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      `-Dkafka.logs.dir=${node.dir}`,
      LOG4J,
      '-cp',
      CLASSPATH,
      'kafka.Kafka',
      propsOf(node),
    ],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  node.process = child;
  running.add(node);
  const keep = (chunk: Buffer) => {
    node.output = (node.output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => {
    if (node.process === child) node.process = undefined;
    running.delete(node);
    stopWatchdog(node);
  });
  // Kills the JVM's group if this process dies without running its exit hooks (SIGKILL, a crash).
  if (child.pid) {
    node.watchdog = spawn(
      'sh',
      [
        '-c',
        `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done
if ! kill -0 ${process.pid} 2>/dev/null; then kill -KILL -${child.pid} 2>/dev/null; rm -rf '${node.root}'; fi`,
      ],
      { detached: true, stdio: 'ignore' },
    );
    node.watchdog.unref();
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`kafka node ${node.id} not ready after ${READY_TIMEOUT_MS} ms:\n${node.output}`));
    }, READY_TIMEOUT_MS);
    const onData = () => {
      if (node.output.includes(STARTED)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`kafka node ${node.id} exited (${code ?? signal}) while starting:\n${node.output}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

/** Signals the node's process group and waits for it; SIGTERM falls back to SIGKILL after a timeout. */
async function stopNode(node: Node, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const child = node.process;
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), sig);
    } catch {
      // already gone
    }
  };
  kill(signal);
  const timer = signal === 'SIGTERM' ? setTimeout(() => kill('SIGKILL'), STOP_TIMEOUT_MS) : undefined;
  await gone;
  clearTimeout(timer);
}

function stopWatchdog(node: Node): void {
  const dog = node.watchdog;
  node.watchdog = undefined;
  if (dog?.pid && dog.exitCode === null && dog.signalCode === null) dog.kill('SIGKILL');
}

/** On any exit of this process, the JVMs it started go too (synchronously: no await in 'exit'). */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const node of running) {
      try {
        if (node.process?.pid) process.kill(-node.process.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function logs(nodes: readonly Node[]): string {
  return nodes.map((n) => `--- node ${n.id} ---\n${n.output}`).join('\n');
}

/** Kafka's `Uuid.randomUuid()` text: 16 random bytes, base64url, never starting with '-'. */
function kafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Free loopback ports below the usual ephemeral range (32768+), so a node restarted after a kill
 * does not find its port taken by some outgoing connection.
 */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!ports.has(port) && (await canListen(port))) ports.add(port);
  }
  return [...ports];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}
