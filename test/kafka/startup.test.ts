/**
 * What the worker refuses and says as it starts: a transport that captures mail is refused unless
 * allowed, the log tells what it connects to, joins and is assigned, kafkajs's own lines come out
 * in our shape, and an unreachable broker is an error naming the brokers. A start that is refused
 * (or closed before it is done) leaves nothing connected: the process it ran in exits on its own.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  failoverTransport,
  isConfigError,
  type Logger,
  mailgunTransport,
  memoryTransport,
  postmarkTransport,
  roundRobinTransport,
  sandboxTransport,
  sendgridTransport,
  stagingTransport,
} from '../../src/index.js';
import {
  confluentLogger,
  createEmailProducer,
  createEmailWorker,
  type EmailWorkerOptions,
  isKafkaUnavailableError,
  type KafkaClientLike,
  kafkaLogCreator,
} from '../../src/kafka/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import { type RealKafkaCluster, SASL_USER } from '../helpers/kafka-real.js';
import { clientUnderTestFrom } from './clients.js';
import {
  clientUnderTest,
  email,
  FAST_CONSUMER,
  freshTopics,
  KAFKA_CLIENT,
  kafkaAcls,
  logRecorder,
  scriptedTransport,
  serviceFor,
  useKafka,
  useKafkaCluster,
  waitFor,
} from './harness.js';
import type { Outcome, Plan } from './refused-start-child.js';

let cluster: KafkaCluster;
let client: KafkaClientLike;
const cleanup = useKafkaCluster((started, _plumbing, underTest) => {
  cluster = started;
  client = underTest;
});

/** A worker on a client whose only broker refuses connections (told `brokers`, or not), started: its rejection and log lines. */
async function startUnreachable(brokers: string[] | undefined) {
  const { lines, logger } = logRecorder();
  const worker = createEmailWorker({
    kafka: new Kafka({
      brokers: ['127.0.0.1:1'],
      logLevel: logLevel.NOTHING,
      retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 },
    }),
    ...(brokers && { brokers }),
    service: serviceFor(scriptedTransport()),
    topic: 'mail-unreachable',
    logger,
  });
  const error = await worker.start().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  return { error, lines };
}

/** A client that connects nowhere: enough to create a worker. */
const offline = {
  producer: () => ({ connect: async () => {}, disconnect: async () => {}, send: async () => [] }),
  consumer: () => ({
    connect: async () => {},
    disconnect: async () => {},
    subscribe: async () => {},
    run: async () => {},
    commitOffsets: async () => {},
    pause() {},
    resume() {},
  }),
} satisfies KafkaClientLike;

describe('the worker and transports that capture mail', () => {
  for (const [name, make] of [
    ['memory', () => memoryTransport()],
    ['sandbox', () => sandboxTransport({ dir: '.mailroom/never-written' })],
  ] as const) {
    it(`refuses the ${name} transport unless allowCapturingTransport is set`, () => {
      const service = serviceFor(make());
      let error: unknown;
      try {
        createEmailWorker({ kafka: offline, service });
      } catch (caught) {
        error = caught;
      }
      expect(isConfigError(error)).toBe(true);
      expect(error).toMatchObject({ option: 'allowCapturingTransport' });
      expect((error as Error).message).toContain(`(${name}) keeps mail instead of delivering it`);
      expect(() =>
        createEmailWorker({ kafka: offline, service, allowCapturingTransport: true }),
      ).not.toThrow();
    });
  }

  // The whole kind: anything that may keep some mail, however it is wrapped, or deliver none.
  for (const [name, make, kept] of [
    ['failover', () => failoverTransport([scriptedTransport(), memoryTransport()]), 'some mail'],
    ['round-robin', () => roundRobinTransport([scriptedTransport(), memoryTransport()]), 'some mail'],
    [
      'staged failover',
      () =>
        stagingTransport({
          transport: failoverTransport([scriptedTransport(), memoryTransport()]),
          allow: ['@acme.example'],
        }),
      'some mail',
    ],
    ['sendgrid', () => sendgridTransport({ apiKey: 'SG.key', sandboxMode: true }), 'mail'],
    ['mailgun', () => mailgunTransport({ apiKey: 'key', domain: 'mg.acme.example', testMode: true }), 'mail'],
    ['postmark', () => postmarkTransport({ serverToken: 'POSTMARK_API_TEST' }), 'mail'],
  ] as const) {
    it(`refuses a ${name} that keeps ${kept} instead of delivering it unless allowCapturingTransport is set`, () => {
      const transport = make();
      const service = serviceFor(transport);
      let error: unknown;
      try {
        createEmailWorker({ kafka: offline, service });
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({ option: 'allowCapturingTransport' });
      expect((error as Error).message).toContain(`(${transport.name}) keeps ${kept}`);
      expect(() =>
        createEmailWorker({ kafka: offline, service, allowCapturingTransport: true }),
      ).not.toThrow();
    });
  }

  it('accepts a transport that delivers without the option', () => {
    expect(() =>
      createEmailWorker({ kafka: offline, service: serviceFor(scriptedTransport()) }),
    ).not.toThrow();
  });
});

describe("the worker's durations", () => {
  const service = serviceFor(scriptedTransport());
  const refusal = (options: Partial<EmailWorkerOptions>) => {
    try {
      createEmailWorker({ kafka: offline, service, ...options });
    } catch (error) {
      return error as Error;
    }
    return undefined;
  };

  // A negative pause resumed at once (a request a second to a provider refusing the credentials);
  // one past setTimeout's longest fired at once too, with Node's TimeoutOverflowWarning.
  it.each([
    [{ pauseMs: -1 }, 'pauseMs', 1],
    [{ pauseMs: 0 }, 'pauseMs', 1],
    [{ pauseMs: 3_000_000_000 }, 'pauseMs', 1],
    [{ pauseMs: 1.5 }, 'pauseMs', 1],
    [{ shutdownDeadlineMs: -1 }, 'shutdownDeadlineMs', 0],
    [{ shutdownDeadlineMs: Number.POSITIVE_INFINITY }, 'shutdownDeadlineMs', 0],
    [{ retry: { baseDelayMs: 0 } }, 'retry.baseDelayMs', 1],
    [{ retry: { baseDelayMs: Number.NaN } }, 'retry.baseDelayMs', 1],
    [{ retry: { baseDelayMs: 5_000, maxDelayMs: 1_000 } }, 'retry.maxDelayMs', 5_000],
  ])('refuses %o, naming %s and its range', (options, name, min) => {
    const error = refusal(options as Partial<EmailWorkerOptions>);
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).toMatch(
      new RegExp(
        `^createEmailWorker: ${name.replace('.', '\\.')} must be a whole number of milliseconds from ${min} to 2147483647 `,
      ),
    );
  });

  it('takes the edges: a deadline of 0, a pause of 2^31 − 1 ms, a maximum delay equal to the base', () => {
    expect(
      refusal({
        shutdownDeadlineMs: 0,
        pauseMs: 2 ** 31 - 1,
        retry: { baseDelayMs: 1_000, maxDelayMs: 1_000 },
      }),
    ).toBeUndefined();
  });
});

describe("the worker's topic names", () => {
  const service = serviceFor(scriptedTransport());
  const long = `orders.${'e'.repeat(238)}`; // 245 characters: its .retry is 251, over Kafka's 249
  it.each([
    [{ topic: 'orders email' }, 'topic "orders email" is not a Kafka topic name: " " is not allowed'],
    [{ topic: '' }, 'topic is empty: a Kafka topic name has 1 to 249 characters'],
    [
      { retryTopic: 'orders/later' },
      'retryTopic "orders/later" is not a Kafka topic name: "/" is not allowed',
    ],
    [{ deadLetterTopic: '.' }, 'deadLetterTopic "." cannot be a Kafka topic name'],
    [
      { topic: long },
      'retryTopic (its default, <topic>.retry) is 251 characters long; a Kafka topic name has at most 249',
    ],
    [
      { topic: long, retryTopic: 'orders.retry', deadLetterTopic: 'orders.dlq', delayTopics: true },
      'a delay topic (<topic>.delay.<tier>) is 254 characters long',
    ],
    [
      { delayTopics: true, delayTopicPrefix: 'orders delay' },
      'a delay topic (<delayTopicPrefix>.<tier>) "orders delay.1m" is not a Kafka topic name',
    ],
  ])('refuses %o, naming the option', (options, message) => {
    expect(() => createEmailWorker({ kafka: offline, service, ...options })).toThrow(
      new RegExp(`^createEmailWorker: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });
});

/**
 * The consumer's settings, checked alike for both clients: each took some of what the other
 * refused (seen on a real broker). kafkajs refused a heartbeat slower than the session, which the
 * Confluent client took; the Confluent client refused a rebalance timeout shorter than the session
 * and negative values, which kafkajs took (a negative session timeout as "heartbeatInterval (500)
 * must be lower than sessionTimeout (-5)").
 */
describe("the worker's consumer settings", () => {
  const service = serviceFor(scriptedTransport());
  const refusal = (consumer: EmailWorkerOptions['consumer']) => {
    try {
      createEmailWorker({ kafka: offline, service, consumer });
    } catch (error) {
      return error as Error;
    }
    return undefined;
  };

  it.each([
    [
      { sessionTimeout: -5 },
      'consumer.sessionTimeout must be a whole number of milliseconds from 1 to 3600000, not -5',
    ],
    [
      { sessionTimeout: 3_600_001 },
      'consumer.sessionTimeout must be a whole number of milliseconds from 1 to 3600000,',
    ],
    [{ sessionTimeout: 6_000.5 }, 'consumer.sessionTimeout must be a whole number'],
    [
      { maxWaitTimeInMs: -1 },
      'consumer.maxWaitTimeInMs must be a whole number of milliseconds from 0 to 300000, not -1',
    ],
    [{ maxWaitTimeInMs: 300_001 }, 'consumer.maxWaitTimeInMs must be'],
    [
      { heartbeatInterval: 0 },
      'consumer.heartbeatInterval must be a whole number of milliseconds from 1 to 3600000, not 0',
    ],
    [
      { rebalanceTimeout: Number.NaN },
      'consumer.rebalanceTimeout must be a whole number of milliseconds from 1 to 86400000, not NaN',
    ],
    [
      { sessionTimeout: 6_000, heartbeatInterval: 7_000 },
      'consumer.heartbeatInterval, 7000 ms, must be less than consumer.sessionTimeout, 6000 ms',
    ],
    // The defaults count too, and the message says which value was not given.
    [
      { sessionTimeout: 2_000 },
      'consumer.heartbeatInterval (its default), 3000 ms, must be less than consumer.sessionTimeout, 2000 ms',
    ],
    [
      { sessionTimeout: 6_000, rebalanceTimeout: 1_000 },
      'consumer.rebalanceTimeout, 1000 ms, must be at least consumer.sessionTimeout, 6000 ms',
    ],
    [
      { sessionTimeout: 90_000 },
      'consumer.rebalanceTimeout (its default), 60000 ms, must be at least consumer.sessionTimeout, 90000 ms',
    ],
  ])('refuses %o, naming the setting', (consumer, message) => {
    const error = refusal(consumer);
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).toContain(`createEmailWorker: ${message}`);
  });

  it('takes the defaults, the test settings, and the edges', () => {
    expect(refusal(undefined)).toBeUndefined();
    expect(refusal({})).toBeUndefined();
    expect(refusal(FAST_CONSUMER)).toBeUndefined();
    expect(
      refusal({ sessionTimeout: 2, heartbeatInterval: 1, rebalanceTimeout: 2, maxWaitTimeInMs: 0 }),
    ).toBeUndefined();
    expect(
      refusal({
        sessionTimeout: 3_600_000,
        heartbeatInterval: 3_599_999,
        rebalanceTimeout: 86_400_000,
        maxWaitTimeInMs: 300_000,
      }),
    ).toBeUndefined();
  });
});

describe('what the worker says as it starts', { timeout: 60_000 }, () => {
  it('logs transport, brokers, group and topics first, then connecting, joined and assigned partitions', async () => {
    const topics = await freshTopics(cluster, 3);
    const { lines, logger } = logRecorder();
    const transport = Object.assign(scriptedTransport(), { describe: () => 'scripted (test)' });
    const worker = createEmailWorker({
      kafka: client,
      brokers: cluster.brokers,
      service: serviceFor(transport),
      ...topics,
      consumer: FAST_CONSUMER,
      logger,
    });
    cleanup.push(() => worker.close());
    await worker.start();
    await waitFor(() => lines.some((l) => l.fields.event === 'worker.joined'), 'the joined line');
    const [first] = lines;
    expect(first?.fields).toMatchObject({
      event: 'worker.starting',
      transport: 'scripted (test)',
      brokers: cluster.brokers,
      groupId: topics.groupId,
      topic: topics.topic,
      retryTopic: topics.retryTopic,
      deadLetterTopic: topics.deadLetterTopic,
    });
    expect(first?.msg).toContain('scripted (test)');
    expect(first?.msg).toContain(cluster.brokers.join(','));
    const events = lines.map((l) => l.fields.event);
    expect(events.slice(0, 3)).toEqual(['worker.starting', 'worker.connecting', 'worker.joining']);
    const joined = lines.find((l) => l.fields.event === 'worker.joined');
    expect(joined?.msg).toContain(`joined group ${topics.groupId}; assigned partitions`);
    expect(joined?.msg).toContain(`${topics.topic}[0,1,2]`);
    expect(joined?.msg).toContain(`${topics.retryTopic}[0,1,2]`);
  });

  it('says it is closing, with the sends in flight and the deadline, before it waits for them', async () => {
    const topics = await freshTopics(cluster, 1);
    const { lines, logger } = logRecorder();
    const transport = scriptedTransport();
    transport.setDelay(60_000); // in flight until the deadline aborts it
    const worker = createEmailWorker({
      kafka: client,
      brokers: cluster.brokers,
      service: serviceFor(transport),
      ...topics,
      consumer: FAST_CONSUMER,
      shutdownDeadlineMs: 200,
      logger,
    });
    cleanup.push(() => worker.close());
    const producer = createEmailProducer({ kafka: client, topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    await worker.start();
    await producer.publish(email(1));
    await waitFor(() => transport.attempts.size > 0, 'the send in flight');
    const closing = worker.close();
    await waitFor(() => lines.some((l) => l.fields.event === 'worker.closing'), 'the closing line');
    const said = lines.find((l) => l.fields.event === 'worker.closing');
    expect(said?.fields).toMatchObject({ event: 'worker.closing', inFlight: 1, deadlineMs: 200 });
    expect(said?.msg).toBe(
      `email worker closing: it stops fetching, gives the 1 send in flight up to 200 ms, then commits and leaves group ${topics.groupId}`,
    );
    await closing;
    const events = lines.map((l) => l.fields.event);
    expect(events.indexOf('worker.closing')).toBeLessThan(events.indexOf('worker.closed'));
    // Leaving is no rebalance to report (the Confluent client revokes the partitions as it leaves).
    expect(events.slice(events.indexOf('worker.closing'))).not.toContain('worker.rebalancing');
  });

  it('rejects start() with an error naming the brokers when none can be reached, keeping the cause code', async () => {
    const brokers = ['127.0.0.1:1'];
    const { error, lines } = await startUnreachable(brokers);
    expect(isKafkaUnavailableError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^could not reach the Kafka brokers 127\.0\.0\.1:1 \(topic mail-unreachable\): /,
    );
    expect(error).toMatchObject({ brokers, code: 'ECONNREFUSED' });
    const failed = lines.find((l) => l.fields.event === 'worker.start_failed');
    expect(failed?.level).toBe('error');
    expect(failed?.msg).toContain('127.0.0.1:1');
    expect(failed?.fields.kafka).toMatchObject({ code: 'ECONNREFUSED' });
    // Its error field says what happened, not "internal" and a class name.
    expect(failed?.fields.error).toEqual({ code: 'kafka-unavailable', message: (error as Error).message });
  });

  it('a worker not told its brokers says so in its lines and its error, instead of naming none', async () => {
    const { error, lines } = await startUnreachable(undefined);
    expect(isKafkaUnavailableError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^could not reach the Kafka brokers \(topic mail-unreachable\): /,
    );
    expect(error).toMatchObject({ brokers: undefined });
    const said = (event: string) => lines.find((l) => l.fields.event === event)?.msg;
    const unnamed = '(the brokers its client was given: pass `brokers` to name them here)';
    expect(said('worker.starting')).toContain(`; Kafka ${unnamed}, group `);
    expect(said('worker.connecting')).toBe(`connecting to Kafka ${unnamed}`);
  });
});

const CHILD = fileURLToPath(new URL('./refused-start-child.ts', import.meta.url));

/** Longer than any refusal takes (the Confluent client gives up connecting after 30 s), far shorter than the test's timeout. */
const EXIT_WITHIN_MS = 60_000;

/**
 * How many times in a row the application starts when each start is refused: twice (a second start
 * must not add to what the first left behind), once on the Confluent client, which takes 30 s to
 * give up connecting.
 */
const ATTEMPTS = KAFKA_CLIENT === 'kafkajs' ? 2 : 1;

/**
 * Runs refused-start-child.ts with `plan`: an application whose start is refused, then does
 * nothing. Resolves with its exit code once it exits, or `still running` (its stderr says what
 * holds it) if it has not after {@link EXIT_WITHIN_MS}; it is killed either way.
 */
async function refusedStart(
  plan: Plan,
): Promise<{ exit: number | string; outcomes: Outcome[]; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? String(signal))),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const exit = await Promise.race([
      exited,
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still running'), EXIT_WITHIN_MS);
      }),
    ]);
    const report = stdout.split('\n').find((line) => line.startsWith('['));
    return { exit, outcomes: report ? (JSON.parse(report) as Outcome[]) : [], stderr };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
}

/** A refusal as the child reports it: the error's name and message. */
const refused = (message: RegExp | string = /./) => ({
  name: expect.any(String),
  message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message),
});

/** SASL on a listener that does not speak it: the mock refuses the handshake. */
const SASL_THE_MOCK_REFUSES = { mechanism: 'plain', username: 'mailer', password: 'sasl-secret' } as const;

describe('close() while the worker replaces a crashed consumer', () => {
  it('waits for the replacement to connect, then disconnects it: nothing left running, no third consumer', async () => {
    const calls: string[] = [];
    let crash: ((payload: Record<string, unknown>) => void) | undefined;
    let connected: (() => void) | undefined;
    let made = 0;
    const kafka = {
      producer: offline.producer,
      consumer: () => {
        const n = ++made;
        return {
          ...offline.consumer(),
          events: { CRASH: 'consumer.crash' },
          on: (event: string, listener: (e: { payload: Record<string, unknown> }) => void) => {
            if (event === 'consumer.crash') crash = (payload) => listener({ payload });
          },
          connect: () => {
            calls.push(`consumer ${n} connect`);
            // The replacement's connect is held until the test lets it finish.
            if (n === 1) return Promise.resolve();
            return new Promise<void>((resolve) => {
              connected = () => {
                calls.push(`consumer ${n} connected`);
                resolve();
              };
            });
          },
          run: async () => void calls.push(`consumer ${n} run`),
          disconnect: async () => void calls.push(`consumer ${n} disconnect`),
        };
      },
    } satisfies KafkaClientLike;
    const { lines, logger } = logRecorder();
    const worker = createEmailWorker({
      kafka,
      flavor: 'kafkajs',
      service: serviceFor(scriptedTransport()),
      logger,
    });
    await worker.start();
    crash?.({ error: new Error('the group coordinator went away'), restart: false });
    await waitFor(() => connected !== undefined, 'the replacement consumer to connect', 5_000);
    const closing = worker.close();
    await new Promise((resolve) => setTimeout(resolve, 100)); // close() would have disconnected it by now
    connected?.();
    await expect(closing).resolves.toBeUndefined();
    await expect(worker.untilClosed()).resolves.toBeUndefined();
    expect(calls).toEqual([
      'consumer 1 connect',
      'consumer 1 run',
      'consumer 1 disconnect',
      'consumer 2 connect',
      // Not while it connects: a kafkajs consumer disconnected then connects anyway, and runs on.
      'consumer 2 connected',
      'consumer 2 disconnect',
    ]);
    expect(made).toBe(2);
    expect(lines.some((l) => l.fields.event === 'worker.consumer_restarted')).toBe(false);
  });
});

describe('what a refused start disconnects, and what it throws', () => {
  it('disconnects the consumer, then the producer, and throws its own error: a disconnect that fails is logged and kept on it', async () => {
    const calls: string[] = [];
    const refusal = new Error('subscription refused');
    const consumerStuck = new Error('the consumer would not disconnect');
    const producerStuck = new Error('the producer would not disconnect');
    const kafka = {
      producer: () => ({
        connect: async () => void calls.push('producer.connect'),
        disconnect: async () => {
          calls.push('producer.disconnect');
          throw producerStuck;
        },
        send: async () => [],
      }),
      consumer: () => ({
        ...offline.consumer(),
        connect: async () => void calls.push('consumer.connect'),
        subscribe: async () => {
          calls.push('consumer.subscribe');
          throw refusal;
        },
        disconnect: async () => {
          calls.push('consumer.disconnect');
          throw consumerStuck;
        },
      }),
    } satisfies KafkaClientLike;
    const { lines, logger } = logRecorder();
    const worker = createEmailWorker({
      kafka,
      flavor: 'confluent',
      service: serviceFor(scriptedTransport()),
      logger,
    });
    const error = await worker.start().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBe(refusal);
    expect((error as { disconnectError?: unknown }).disconnectError).toBe(consumerStuck);
    expect(calls).toEqual([
      'producer.connect',
      'consumer.connect',
      'consumer.subscribe',
      'consumer.disconnect',
      'producer.disconnect',
    ]);
    const failures = lines.filter((l) => l.fields.event === 'worker.disconnect_failed');
    expect(failures.map((l) => [l.level, l.fields.client, l.msg])).toEqual([
      ['warn', 'consumer', 'could not disconnect the Kafka consumer: the consumer would not disconnect'],
      ['warn', 'producer', 'could not disconnect the Kafka producer: the producer would not disconnect'],
    ]);
    expect(lines.at(-1)?.fields).toMatchObject({ event: 'worker.start_failed', error: expect.anything() });
    expect(lines.at(-1)?.msg).toContain('subscription refused');
    await expect(worker.close()).resolves.toBeUndefined();
    await expect(worker.untilClosed()).resolves.toBeUndefined();
    expect(calls).toHaveLength(5); // close() after a refused start disconnects nothing twice
  });

  it('an email producer whose connect() is refused disconnects what it made and throws the refusal; the next connect() starts anew', async () => {
    const calls: string[] = [];
    const refusals: Error[] = [];
    let made = 0;
    const kafka = {
      producer: () => {
        const n = made++;
        return {
          connect: async () => {
            calls.push(`connect ${n}`);
            refusals.push(new Error(`refused ${n}`));
            throw refusals[n];
          },
          disconnect: async () => {
            calls.push(`disconnect ${n}`);
            throw new Error(`stuck ${n}`);
          },
          send: async () => [],
        };
      },
      consumer: offline.consumer,
    } satisfies KafkaClientLike;
    const producer = createEmailProducer({ kafka, flavor: 'confluent', topic: 'mail-refused' });
    for (const n of [0, 1]) {
      const error = await producer.connect().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBe(refusals[n]);
      expect((error as { disconnectError?: Error }).disconnectError?.message).toBe(`stuck ${n}`);
    }
    expect(calls).toEqual(['connect 0', 'disconnect 0', 'connect 1', 'disconnect 1']);
  });
});

describe('a refused start leaves nothing running', { timeout: 90_000 }, () => {
  it('a worker the brokers refuse at connect (SASL the mock does not speak), started again after it is refused: each start() rejects, close() and untilClosed() resolve, and the process exits on its own', async () => {
    const { topic } = await freshTopics(cluster, 1);
    const run = await refusedStart({
      what: 'worker',
      brokers: cluster.brokers,
      sasl: SASL_THE_MOCK_REFUSES,
      topic,
      attempts: ATTEMPTS,
    });
    expect(run.outcomes).toEqual(
      Array(ATTEMPTS).fill({ start: refused(), close: 'resolved', untilClosed: 'resolved' }),
    );
    expect(run.exit, run.stderr).toBe(0);
  });

  it('an email producer whose connect() the brokers refuse (SASL the mock does not speak), connected again after it is refused: the process exits on its own', async () => {
    const run = await refusedStart({
      what: 'producer',
      brokers: cluster.brokers,
      sasl: SASL_THE_MOCK_REFUSES,
      topic: `mail-${randomUUID().slice(0, 8)}`,
      attempts: ATTEMPTS,
    });
    expect(run.outcomes).toEqual(Array(ATTEMPTS).fill({ start: refused() }));
    expect(run.exit, run.stderr).toBe(0);
  });

  it('a worker whose brokers cannot be reached: start() names them, and the process exits on its own', async () => {
    const run = await refusedStart({ what: 'worker', brokers: ['127.0.0.1:1'], topic: 'mail-unreachable' });
    expect(run.outcomes).toEqual([
      {
        start: refused('could not reach the Kafka brokers 127.0.0.1:1 (topic mail-unreachable)'),
        close: 'resolved',
        untilClosed: 'resolved',
      },
    ]);
    expect(run.exit, run.stderr).toBe(0);
  });

  it('an email producer whose brokers cannot be reached: connect() names them, and the process exits on its own', async () => {
    const run = await refusedStart({ what: 'producer', brokers: ['127.0.0.1:1'], topic: 'mail-unreachable' });
    expect(run.outcomes).toEqual([
      {
        start: {
          name: 'KafkaUnavailableError',
          message: expect.stringMatching(
            /^could not reach the Kafka brokers 127\.0\.0\.1:1 \(topic mail-unreachable\): /,
          ),
        },
      },
    ]);
    expect(run.exit, run.stderr).toBe(0);
  });

  for (const closeAt of ['start', 'joining'] as const) {
    it(`close() called ${closeAt === 'start' ? 'as start() is called' : 'while the worker joins its group'}: start() rejects saying so, close() resolves once everything is disconnected, and the process exits on its own`, async () => {
      const topics = await freshTopics(cluster, 1);
      const run = await refusedStart({ what: 'worker', brokers: cluster.brokers, ...topics, closeAt });
      expect(run.outcomes).toEqual([
        {
          start: refused('close() was called before the worker had started'),
          close: 'resolved',
          untilClosed: 'resolved',
        },
      ]);
      expect(run.exit, run.stderr).toBe(0);
    });
  }

  it('a worker with handleSignals sent SIGTERM while it connects: the start stops as close() stops it (start() rejects naming the signal), and the process is not killed but exits on its own', async () => {
    const topics = await freshTopics(cluster, 1);
    const run = await refusedStart({
      what: 'worker',
      brokers: cluster.brokers,
      ...topics,
      signalAt: 'connecting',
    });
    expect(run.outcomes).toEqual([
      {
        start: refused('close() was called before the worker had started (on SIGTERM)'),
        close: 'resolved',
        untilClosed: 'resolved',
      },
    ]);
    expect(run.exit, run.stderr).toBe(0);
  });

  describe('on a real Kafka broker (auto-creation off, ACLs on its SASL listener)', () => {
    const ctx = useKafka({ real: { nodes: 1, authorize: true } });
    const { grant, grantAllButWrite, operations } = kafkaAcls(ctx);
    const { DESCRIBE, READ, WRITE } = operations;
    const saslBrokers = () => (ctx.cluster as RealKafkaCluster).saslBrokers as string[];
    /** One email on `topic`, published by the client under test. */
    async function publishOne(topic: string, idempotencyKey: string) {
      const producer = createEmailProducer({ kafka: ctx.client, topic });
      ctx.cleanup.push(() => producer.disconnect());
      await producer.publish({ to: 'jane@example.com', subject: 'Hi', text: 'Hello', idempotencyKey });
    }

    it('a session timeout the broker refuses (below its group.min.session.timeout.ms): the worker says which setting, sends nothing, and kafkajs does not replace its consumer in vain', async () => {
      const topics = await freshTopics(ctx.cluster, 1);
      await publishOne(topics.topic, 'session:1');
      const { lines, logger } = logRecorder();
      const transport = scriptedTransport();
      const worker = createEmailWorker({
        kafka: ctx.client,
        service: serviceFor(transport),
        ...topics,
        // The broker's default minimum is 6000 ms.
        consumer: { ...FAST_CONSUMER, sessionTimeout: 1_000, heartbeatInterval: 300 },
        logger,
      });
      ctx.cleanup.push(() => worker.close());
      const starting = worker.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      const event = (name: string) => lines.find((l) => l.fields.event === name);
      if (KAFKA_CLIENT === 'kafkajs') {
        // The join's INVALID_SESSION_TIMEOUT crashes the consumer: start() fails, naming the setting.
        const error = await starting;
        expect(error).toMatchObject({ name: 'ConfigError', option: 'consumer.sessionTimeout' });
        expect((error as Error).message).toBe(
          'consumer.sessionTimeout: the broker refused 1000 ms: it takes only values from its group.min.session.timeout.ms to its group.max.session.timeout.ms (6000 to 1800000 ms unless set otherwise); change one or the other',
        );
        await expect(worker.untilClosed()).rejects.toBe(error);
        expect(event('worker.fatal')?.msg).toBe(`email worker stopped: ${(error as Error).message}`);
        expect(event('worker.start_failed')?.fields.error).toMatchObject({ code: 'config' });
        expect(event('worker.consumer_restarted')).toBeUndefined();
      } else {
        // librdkafka keeps asking to join without a word to the application.
        expect(await starting).toBeUndefined();
        await waitFor(
          () => event('worker.not_joined') !== undefined,
          'the worker to say it has not joined',
          30_000,
        );
        expect(event('worker.not_joined')?.msg).toContain(
          'and does its coordinator answer? Does the broker take consumer.sessionTimeout, 1000 ms (its group.min.session.timeout.ms to group.max.session.timeout.ms, 6000 to 1800000 unless set otherwise)?',
        );
      }
      expect(transport.delivered).toHaveLength(0);
    });

    it('a worker the cluster keeps out of its group (no READ on the group): says so in its log, sends nothing, and joins once allowed', async () => {
      const topics = await freshTopics(ctx.cluster, 1);
      const all = [topics.topic, topics.retryTopic, topics.deadLetterTopic];
      await grant(all, [DESCRIBE, READ, WRITE]);
      await publishOne(topics.topic, 'group-acl:1');
      const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
      const keep = (level: string) => (fields: object, message?: string) =>
        void lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' });
      const transport = scriptedTransport();
      const worker = createEmailWorker({
        kafka: clientUnderTestFrom({ brokers: saslBrokers(), clientId: 'group-acl', sasl: SASL_USER }),
        service: serviceFor(transport),
        ...topics,
        consumer: FAST_CONSUMER,
        logger: { debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error') },
      });
      ctx.cleanup.push(() => worker.close());
      await worker.start();
      const event = (name: string) => lines.find((l) => l.fields.event === name);
      if (KAFKA_CLIENT === 'confluent') {
        // librdkafka keeps asking for the group's coordinator without a word to the application.
        await waitFor(
          () => event('worker.not_joined') !== undefined,
          'the worker to say it has not joined',
          30_000,
        );
        expect(event('worker.not_joined')).toMatchObject({
          level: 'warn',
          fields: { groupId: topics.groupId },
          message: expect.stringContaining(`READ on group ${topics.groupId}`),
        });
        // A session timeout within the broker's default range is not asked about.
        expect(event('worker.not_joined')?.message).not.toContain('sessionTimeout');
        expect(transport.delivered).toHaveLength(0);
        await grant([], [], topics.groupId);
        await waitFor(
          () => transport.delivered.length === 1,
          'the email sent once the group is allowed',
          60_000,
        );
      } else {
        // kafkajs's consumer crashes on "Failed to find group coordinator" (the broker's
        // GROUP_AUTHORIZATION_FAILED, dropped): replaced, then fatal; the log says what it may be.
        await expect(worker.untilClosed()).rejects.toMatchObject({ name: 'KafkaJSGroupCoordinatorNotFound' });
        expect(event('worker.fatal')?.message).toContain(
          `not allowed to use the group: check READ on group ${topics.groupId}`,
        );
        expect(transport.delivered).toHaveLength(0);
      }
    });

    it('a worker whose topics do not exist: start() names them, and the process exits on its own', async () => {
      const topic = `mail-missing-${randomUUID().slice(0, 8)}`;
      const run = await refusedStart({ what: 'worker', brokers: ctx.cluster.brokers, topic });
      expect(run.outcomes).toEqual([
        { start: refused(`${topic}, ${topic}.retry`), close: 'resolved', untilClosed: 'resolved' },
      ]);
      expect(run.outcomes[0]?.start).toMatchObject({ name: 'KafkaTopicMissingError' });
      expect(run.exit, run.stderr).toBe(0);
    });

    it('start() called twice at once: the second rejects as already called, the first is refused (its topics do not exist), and the process exits on its own', async () => {
      const topic = `mail-missing-${randomUUID().slice(0, 8)}`;
      const run = await refusedStart({ what: 'worker', brokers: ctx.cluster.brokers, topic, twice: true });
      expect(run.outcomes).toEqual([
        {
          start: refused(`${topic}, ${topic}.retry`),
          second: refused('start() was already called'),
          close: 'resolved',
          untilClosed: 'resolved',
        },
      ]);
      expect(run.exit, run.stderr).toBe(0);
    });

    // librdkafka's idempotent producer connects without waiting for its producer id: the
    // Confluent client's start is not refused for it (its sends would fail instead).
    it.runIf(KAFKA_CLIENT === 'kafkajs')(
      'a worker not allowed to write (the broker refuses its producer an id after it connected): start() rejects, and the process exits on its own',
      async () => {
        const topics = await freshTopics(ctx.cluster, 1);
        await grantAllButWrite([topics.topic, topics.retryTopic, topics.deadLetterTopic], topics.groupId);
        const run = await refusedStart({
          what: 'worker',
          brokers: saslBrokers(),
          sasl: SASL_USER,
          ...topics,
        });
        expect(run.outcomes).toEqual([
          { start: refused('Cluster authorization failed'), close: 'resolved', untilClosed: 'resolved' },
        ]);
        expect(run.exit, run.stderr).toBe(0);
      },
    );

    it('an email producer allowed to write elsewhere but not to its topic: publish() rejects as a systemic config error naming WRITE, not a retryable network one', async () => {
      const topics = await freshTopics(ctx.cluster, 1);
      // WRITE on another topic: its idempotent producer has an id (KIP-679), and connects.
      await grant([topics.topic, topics.retryTopic], [DESCRIBE]);
      await grant([topics.retryTopic], [WRITE]);
      const producer = createEmailProducer({
        kafka: clientUnderTestFrom({ brokers: saslBrokers(), clientId: 'no-write', sasl: SASL_USER }),
        topic: topics.topic,
      });
      ctx.cleanup.push(() => producer.disconnect());
      const error = await producer
        .publish({ to: 'jane@example.com', subject: 'Hi', text: 'Hello', idempotencyKey: 'no-write:1' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toMatchObject({
        name: 'EmailError',
        code: 'config',
        failure: 'systemic',
        retryable: false,
      });
      expect((error as Error).message).toBe(
        `could not publish to ${topics.topic}: the Kafka user may not write to ${topics.topic} (no WRITE on it): grant it WRITE`,
      );
    });

    it.runIf(KAFKA_CLIENT === 'kafkajs')(
      'an email producer not allowed to write: connect() rejects, and the process exits on its own',
      async () => {
        const topics = await freshTopics(ctx.cluster, 1);
        await grantAllButWrite([topics.topic], topics.groupId);
        const run = await refusedStart({
          what: 'producer',
          brokers: saslBrokers(),
          sasl: SASL_USER,
          topic: topics.topic,
        });
        expect(run.outcomes).toEqual([{ start: refused('Cluster authorization failed') }]);
        expect(run.exit, run.stderr).toBe(0);
      },
    );
  });
});

describe('kafkaLogCreator', () => {
  it('writes kafkajs log entries through our logger, in our shape, without stack traces', () => {
    const { lines, logger } = logRecorder();
    const log = kafkaLogCreator(logger)(logLevel.INFO);
    const entry = (level: number, message: string, extra: Record<string, unknown> = {}) =>
      log({
        namespace: 'Consumer',
        level,
        label: 'X',
        log: { message, timestamp: 'T', logger: 'kafkajs', ...extra },
      });
    entry(logLevel.ERROR, 'Crash: KafkaJSNonRetriableError', { groupId: 'g', stack: 'at x', error: 'boom' });
    entry(logLevel.WARN, 'The group is rebalancing, re-joining', { groupId: 'g' });
    entry(logLevel.INFO, 'Consumer has joined the group');
    entry(logLevel.DEBUG, 'fetching');
    expect(lines).toEqual([
      {
        level: 'error',
        msg: 'Crash: KafkaJSNonRetriableError',
        fields: { event: 'kafka.log', namespace: 'Consumer', groupId: 'g', error: 'boom' },
      },
      {
        level: 'warn',
        msg: 'The group is rebalancing, re-joining',
        fields: { event: 'kafka.log', namespace: 'Consumer', groupId: 'g' },
      },
      {
        level: 'info',
        msg: 'Consumer has joined the group',
        fields: { event: 'kafka.log', namespace: 'Consumer' },
      },
      { level: 'debug', msg: 'fetching', fields: { event: 'kafka.log', namespace: 'Consumer' } },
    ]);
  });

  it.runIf(KAFKA_CLIENT === 'kafkajs')('is what a real kafkajs client logs through', async () => {
    const { lines, logger } = logRecorder();
    const client = new Kafka({
      brokers: cluster.brokers,
      logLevel: logLevel.INFO,
      logCreator: kafkaLogCreator(logger),
    });
    const topics = await freshTopics(cluster, 1);
    const consumer = client.consumer({ groupId: topics.groupId, ...FAST_CONSUMER });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.topic] });
    await consumer.run({ eachMessage: async () => {} });
    await waitFor(() => lines.some((l) => l.msg === 'Consumer has joined the group'), 'the join line');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.fields.event === 'kafka.log' && typeof l.msg === 'string')).toBe(true);
  });
});

describe('confluentLogger', () => {
  it("writes the Confluent client's log lines through our logger, dropping what is above its level", () => {
    const { lines, logger } = logRecorder();
    const log = confluentLogger(logger);
    expect(log.namespace()).toBe(log);
    const extra = { fac: 'GETPID', name: 'rdkafka#producer-1', timestamp: 1796454237345, stack: 'at x' };
    log.error('Broker: Coordinator load in progress', extra);
    log.info('joined', { name: 'c' });
    log.debug('fetching');
    log.setLogLevel(logLevel.WARN);
    log.warn('Failed to acquire idempotence PID: retrying', { fac: 'GETPID' });
    log.info('dropped at WARN');
    expect(lines).toEqual([
      {
        level: 'error',
        msg: 'Broker: Coordinator load in progress',
        fields: { event: 'kafka.log', fac: 'GETPID', name: 'rdkafka#producer-1' },
      },
      { level: 'info', msg: 'joined', fields: { event: 'kafka.log', name: 'c' } },
      {
        level: 'warn',
        msg: 'Failed to acquire idempotence PID: retrying',
        fields: { event: 'kafka.log', fac: 'GETPID' },
      },
    ]);
    expect(() => confluentLogger({} as Logger)).toThrow(/info, warn and error/);
  });

  it.runIf(KAFKA_CLIENT === 'confluent')('is what a real Confluent client logs through', async () => {
    const { lines, logger } = logRecorder();
    const client = clientUnderTest(cluster.brokers, 'logs', {
      logger: confluentLogger(logger),
      logLevel: logLevel.INFO,
    });
    const topics = await freshTopics(cluster, 1);
    const consumer = client.consumer({ kafkaJS: { groupId: topics.groupId, ...FAST_CONSUMER } });
    cleanup.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.topic] });
    await consumer.run({ eachBatch: async () => {} });
    await waitFor(() => lines.some((l) => /rebalance/i.test(l.msg ?? '')), 'a rebalance line');
    expect(lines.every((l) => l.fields.event === 'kafka.log' && typeof l.msg === 'string')).toBe(true);
    expect(lines.some((l) => 'timestamp' in l.fields)).toBe(false);
  });
});
