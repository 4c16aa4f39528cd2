/**
 * An application whose Kafka start is refused, in its own process: it makes a worker (or an email
 * producer) on the test run's Kafka client, starts it (connects it) as told, writes what happened
 * as one JSON line on stdout, and then does nothing more. Nothing may keep it alive after that: a
 * socket, a reconnect timer or a client thread left behind by the refused start keeps it from
 * exiting, which is what startup.test.ts waits for. It never calls process.exit.
 * argv: one JSON {@link Plan}. The client is the test run's (clients.ts: MAILROOM_TEST_KAFKA_CLIENT).
 */
import { createRequire } from 'node:module';
import { Kafka, logLevel } from 'kafkajs';
import { EmailService, type Transport } from '../../src/index.js';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import { createEmailProducer, createEmailWorker, type EmailWorker } from '../../src/kafka/index.js';
import { KAFKA_CLIENT } from './clients.js';

/** What the child does. */
export interface Plan {
  /** A worker's `start()`, or an email producer's `connect()`. */
  what: 'worker' | 'producer';
  brokers: string[];
  sasl?: { mechanism: 'plain'; username: string; password: string };
  topic: string;
  retryTopic?: string;
  deadLetterTopic?: string;
  groupId?: string;
  /** Refused starts in a row, each with a new worker or producer (an application that retries). Default 1. */
  attempts?: number;
  /** Calls the worker's start() twice at once. */
  twice?: boolean;
  /** Calls the worker's close() as start() is called, or once it logs that it is joining its group. */
  closeAt?: 'start' | 'joining';
  /** With `handleSignals`, the child sends itself SIGTERM once the worker logs that it is connecting to Kafka. */
  signalAt?: 'connecting';
}

/** One attempt's outcome, as the child writes it. */
export interface Outcome {
  start: Settled;
  /** The second, concurrent start() (`twice`). */
  second?: Settled;
  /** close() called by `closeAt`, or after the start was refused. */
  close?: Settled;
  untilClosed?: Settled;
}

export type Settled = 'resolved' | { name: string; message: string };

const plan = JSON.parse(process.argv[2] ?? '{}') as Plan;

const transport: Transport = {
  name: 'never',
  async send() {
    throw new Error('nothing is sent by this child');
  },
};

function client(): KafkaClientLike {
  if (KAFKA_CLIENT === 'kafkajs') {
    return new Kafka({
      brokers: plan.brokers,
      clientId: 'refused-start',
      logLevel: logLevel.NOTHING,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 },
      ...(plan.sasl ? { sasl: plan.sasl } : {}),
    });
  }
  const { KafkaJS } = createRequire(import.meta.url)(
    '@confluentinc/kafka-javascript',
  ) as typeof import('@confluentinc/kafka-javascript');
  return new KafkaJS.Kafka({
    kafkaJS: {
      brokers: plan.brokers,
      clientId: 'refused-start',
      logLevel: KafkaJS.logLevel.NOTHING,
      ...(plan.sasl ? { sasl: plan.sasl } : {}),
    },
  }) as unknown as KafkaClientLike;
}

function settled(promise: Promise<unknown>): Promise<Settled> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => ({
      name: (error as Error)?.name ?? typeof error,
      message: String((error as Error)?.message ?? error),
    }),
  );
}

async function workerAttempt(): Promise<Outcome> {
  let worker: EmailWorker | undefined;
  let closing: Promise<Settled> | undefined;
  const closeNow = () => {
    closing ??= settled((worker as EmailWorker).close());
  };
  const quiet = () => {};
  worker = createEmailWorker({
    kafka: client(),
    brokers: plan.brokers,
    service: new EmailService({ transport, from: 'Acme <no-reply@acme.example>', retry: false }),
    topic: plan.topic,
    ...(plan.retryTopic ? { retryTopic: plan.retryTopic } : {}),
    ...(plan.deadLetterTopic ? { deadLetterTopic: plan.deadLetterTopic } : {}),
    ...(plan.groupId ? { groupId: plan.groupId } : {}),
    consumer: {
      sessionTimeout: 6_000,
      heartbeatInterval: 500,
      rebalanceTimeout: 6_000,
      maxWaitTimeInMs: 200,
    },
    logger: {
      debug: quiet,
      warn: quiet,
      error: quiet,
      info: (fields) => {
        const event = (fields as { event?: string }).event;
        if (event === 'worker.joining' && plan.closeAt === 'joining') closeNow();
        if (event === 'worker.connecting' && plan.signalAt === 'connecting')
          process.kill(process.pid, 'SIGTERM');
      },
    },
    ...(plan.signalAt ? { handleSignals: true } : {}),
  });
  const starting = settled(worker.start());
  const second = plan.twice ? settled(worker.start()) : undefined;
  if (plan.closeAt === 'start') closeNow();
  const outcome: Outcome = { start: await starting };
  if (second) outcome.second = await second;
  // A worker whose start was refused is closed; close() says so at once.
  outcome.close = await (closing ?? settled(worker.close()));
  outcome.untilClosed = await settled(worker.untilClosed());
  return outcome;
}

async function producerAttempt(): Promise<Outcome> {
  const producer = createEmailProducer({ kafka: client(), brokers: plan.brokers, topic: plan.topic });
  return { start: await settled(producer.connect()) };
}

const outcomes: Outcome[] = [];
for (let i = 0; i < (plan.attempts ?? 1); i++) {
  outcomes.push(plan.what === 'worker' ? await workerAttempt() : await producerAttempt());
}
process.stdout.write(`${JSON.stringify(outcomes)}\n`);

// Not a reason to stay (unref): says what still holds the process when it does not exit.
setTimeout(() => {
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  const held = handles
    .filter((h) => h !== process.stdout && h !== process.stderr)
    .map((h) => {
      const socket = h as { remotePort?: number; remoteAddress?: string };
      return socket.remotePort
        ? `a socket to ${socket.remoteAddress}:${socket.remotePort}`
        : h.constructor.name;
    });
  process.stderr.write(
    `still running, holding: ${held.join(', ') || 'no JavaScript handle (a native one?)'}\n`,
  );
}, 5_000).unref();
