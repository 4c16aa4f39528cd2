/**
 * A worker you can operate: its health endpoints and Prometheus metrics, scraped over HTTP during
 * a run on the mock cluster, the way a Kubernetes probe and Prometheus would.
 */
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import {
  createEmailWorker,
  type KafkaClientLike,
  serveWorkerHealth,
  type WorkerHealth,
  workerHealth,
  workerMetrics,
} from '../../src/kafka/index.js';
import {
  FAST_RETRY,
  freshTopics,
  freshWorker,
  KAFKA_CLIENT,
  ledger,
  producerFor,
  readTopic,
  scriptedTransport,
  serviceFor,
  useKafka,
  waitFor,
  workerFor,
} from './harness.js';

// The Confluent client reads the consumer lag with the admin ListOffsets request, which
// librdkafka's mock cluster (Debian's 2.0.2) never answers: that run scrapes a real broker.
const ctx = useKafka(KAFKA_CLIENT === 'confluent' ? { real: { nodes: 1 } } : {});

async function setup() {
  const { topics, transport, producer, worker } = await freshWorker(ctx, {
    retry: FAST_RETRY,
    pauseMs: 60_000,
  });
  const health = await serveWorkerHealth(worker, { port: 0, metrics: true });
  ctx.cleanup.push(() => health.close());
  return { topics, transport, producer, worker, health };
}

async function get(url: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(url);
  // Every answer, whatever the path: probes' and scrapers' text, never sniffed or framed.
  expect([
    response.headers.get('x-content-type-options'),
    response.headers.get('content-security-policy'),
  ]).toEqual(['nosniff', "default-src 'none'; frame-ancestors 'none'"]);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

/** Polls until the endpoint answers `status`; the answer's body, as JSON. */
async function until(url: string, status: number, what: string): Promise<WorkerHealth> {
  let last: { status: number; body: string } | undefined;
  await waitFor(
    () => last?.status === status,
    what,
    20_000,
    async () => {
      last = await get(url);
    },
  );
  return JSON.parse(last?.body ?? '{}') as WorkerHealth;
}

/** Sample values of a metric from Prometheus's text format, keyed by their labels as written. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name) out.set(match[2] ?? '', Number(match[3]));
  }
  return out;
}

/** What a promise rejected with (the test fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

const sum = (values: Map<string, number>) => [...values.values()].reduce((a, b) => a + b, 0);

const verification = (i: number, local = 'user') => ({
  template: 'verification' as const,
  data: { username: `User ${i}`, verificationUrl: `https://acme.example/verify?t=${i}` },
  to: `${local}-${i}@example.com`,
  idempotencyKey: `verify:${local}-${i}`,
});

describe('worker health and metrics over HTTP', () => {
  it('is live but not ready before it joins, ready once it holds partitions, and counts what the ledger shows', async () => {
    const { topics, transport, producer, worker, health } = await setup();
    transport.rules.set('nobody', { code: 'rejected', status: 550, times: 100 });
    const keys: string[] = [];
    for (let i = 0; i < 12; i++) keys.push((await producer.publish(verification(i))).idempotencyKey);
    for (let i = 0; i < 3; i++) keys.push((await producer.publish(verification(i, 'nobody'))).idempotencyKey);

    expect((await get(`${health.url}/livez`)).status).toBe(200);
    const before = await get(`${health.url}/readyz`);
    expect(before.status).toBe(503);
    expect(JSON.parse(before.body)).toMatchObject({ ready: false, reason: 'not started', assignment: null });

    const starting = worker.start();
    const ready = await until(`${health.url}/readyz`, 200, '/readyz to answer 200');
    await starting;
    expect(ready).toMatchObject({ live: true, ready: true, state: 'running', groupId: topics.groupId });
    expect(ready.assignment?.[topics.topic]?.sort()).toEqual([0, 1, 2]);

    await waitFor(() => worker.stats.sent + worker.stats.deadLettered === 15, 'every record decided');
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 3);
    const book = ledger(keys, transport.delivered, dlq);
    expect(book).toEqual({ published: 15, sent: 12, duplicated: 0, deadLettered: 3, lost: 0 });

    const scrape = await get(`${health.url}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.type).toContain('text/plain');
    const sent = samples(scrape.body, 'mailroom_worker_emails_sent_total');
    expect(sum(sent)).toBe(book.sent);
    expect(sent.get(`{topic="${topics.topic}"}`)).toBe(book.sent);
    expect(
      samples(scrape.body, 'mailroom_worker_emails_dead_lettered_total').get(
        `{topic="${topics.topic}",reason="permanent"}`,
      ),
    ).toBe(book.deadLettered);
    expect(sum(samples(scrape.body, 'mailroom_worker_duplicates_skipped_total'))).toBe(0);
    expect(samples(scrape.body, 'mailroom_worker_paused').get('')).toBe(0);
    expect(samples(scrape.body, 'mailroom_worker_ready').get('')).toBe(1);
    // Every send timed: 12 sent, 3 refused for good.
    const durations = samples(scrape.body, 'mailroom_worker_send_duration_seconds_count');
    expect(durations.get('{outcome="sent"}')).toBe(12);
    expect(durations.get('{outcome="permanent"}')).toBe(3);
    expect(samples(scrape.body, 'mailroom_worker_delivery_latency_seconds_count').get('')).toBe(12);
    // No label carries an address.
    expect(scrape.body).not.toContain('@example.com');

    // Once the commits land, the lag of every partition it holds is 0.
    let lag = new Map<string, number>();
    await waitFor(
      () => lag.size === 6 && sum(lag) === 0,
      'the consumer lag to drain to 0',
      20_000,
      async () => {
        lag = samples((await get(`${health.url}/metrics`)).body, 'mailroom_worker_consumer_lag');
      },
    );
    expect([...lag.keys()]).toContain(`{topic="${topics.topic}",partition="0"}`);
    expect(
      samples((await get(`${health.url}/metrics`)).body, 'mailroom_worker_consumer_lag_errors_total').get(''),
    ).toBe(0);

    await worker.close();
    const closed = await get(`${health.url}/livez`);
    expect(closed.status).toBe(503);
    expect(JSON.parse(closed.body)).toMatchObject({ live: false, state: 'closed' });
  });

  it('shows a backlog as consumer lag until the worker has sent and committed it', async () => {
    const topics = await freshTopics(ctx.cluster);
    const producer = producerFor(ctx, topics.topic);
    for (let i = 0; i < 9; i++) await producer.publish(verification(i));
    // Every send waits until the gate opens: nothing is committed before.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    ctx.cleanup.push(() => open());
    const sent: string[] = [];
    const worker = workerFor(ctx, {
      service: serviceFor({
        name: 'gated',
        async send(message) {
          await gate;
          sent.push(message.messageId);
          return { messageId: message.messageId, accepted: ['x'], rejected: [], transport: 'gated' };
        },
      }),
      ...topics,
    });
    const health = await serveWorkerHealth(worker, { port: 0, metrics: true });
    ctx.cleanup.push(() => health.close());
    await worker.start();
    const lagOf = async () =>
      samples((await get(`${health.url}/metrics`)).body, 'mailroom_worker_consumer_lag');
    let lag = new Map<string, number>();
    await waitFor(
      () => lag.size === 6,
      'a lag reading of the six partitions',
      20_000,
      async () => {
        lag = await lagOf();
      },
    );
    expect(sum(lag)).toBe(9);
    open();
    await waitFor(
      () => sum(lag) === 0,
      'the lag to drain',
      20_000,
      async () => {
        lag = await lagOf();
      },
    );
    expect(sent).toHaveLength(9);
  });

  it('answers 503 with the reason while a systemic failure pauses it, and 200 once it resumes', async () => {
    const { transport, producer, worker, health } = await setup();
    transport.rules.set('', { code: 'auth', status: 535, times: 1_000 });
    for (let i = 0; i < 3; i++) await producer.publish(verification(i));
    await worker.start();
    await waitFor(() => worker.paused, 'the pause');
    const paused = await get(`${health.url}/readyz`);
    expect(paused.status).toBe(503);
    const body = JSON.parse(paused.body) as WorkerHealth;
    expect(body).toMatchObject({
      live: true,
      ready: false,
      paused: { code: 'auth', failure: 'systemic', resumeAt: expect.any(String) },
    });
    expect(body.reason).toContain('paused on a systemic delivery failure (auth)');
    expect(workerHealth(worker)).toEqual(body);
    // Still alive: a liveness probe must not restart a worker waiting for its credentials.
    expect((await get(`${health.url}/livez`)).status).toBe(200);
    const metrics = (await get(`${health.url}/metrics`)).body;
    expect(samples(metrics, 'mailroom_worker_paused').get('')).toBe(1);
    expect(samples(metrics, 'mailroom_worker_ready').get('')).toBe(0);
    // Sends already in flight when the first failed fail the same way: one or more, none dead-lettered.
    expect(
      samples(metrics, 'mailroom_worker_send_duration_seconds_count').get('{outcome="systemic"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(sum(samples(metrics, 'mailroom_worker_emails_dead_lettered_total'))).toBe(0);

    transport.rules.clear(); // someone fixed the credentials
    worker.resume();
    await until(`${health.url}/readyz`, 200, '/readyz after resuming');
    await waitFor(() => transport.delivered.length === 3, 'the backlog');
  });

  it('refuses a port already in use with an error naming the port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    ctx.cleanup.push(() => new Promise<void>((resolve) => busy.close(() => resolve())));
    const port = (busy.address() as { port: number }).port;
    const worker = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    const error = await rejection(serveWorkerHealth(worker, { port }));
    expect(isConfigError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'port' });
    expect((error as Error).message).toBe(
      `port: 127.0.0.1:${port} is already in use (EADDRINUSE): the worker's health endpoints need a free port (0 takes any)`,
    );
  });

  it('refuses a host that is not an address of this machine, naming the host option', async () => {
    const worker = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so the bind fails and nothing is sent.
    const error = await rejection(serveWorkerHealth(worker, { port: 0, host: '192.0.2.1' }));
    expect(error).toMatchObject({ option: 'host' });
    expect((error as Error).message).toBe(
      "host: 192.0.2.1:0 is not an address of this machine (EADDRNOTAVAIL): the worker's health endpoints need an address of this machine (127.0.0.1 is one)",
    );
  });

  it('refuses a port that is not one, and anything that is not a worker', async () => {
    const worker = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    for (const port of [-1, 65536, 1.5, Number.NaN, '9464' as unknown as number]) {
      expect(await rejection(serveWorkerHealth(worker, { port }))).toMatchObject({
        name: 'TypeError',
        message: 'serveWorkerHealth: port must be a whole number from 0 to 65535',
      });
    }
    expect(await rejection(serveWorkerHealth(worker, { port: 0, host: 'a b' }))).toMatchObject({
      message: 'serveWorkerHealth: host must be an IP address or a host name',
    });
    expect(await rejection(serveWorkerHealth({} as never, { port: 0 }))).toMatchObject({
      message: 'serveWorkerHealth: worker must be made by createEmailWorker',
    });
  });

  it('puts its metrics on a registry of yours, one worker per registry', async () => {
    const registry = new Registry();
    const worker = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    const metrics = await workerMetrics(worker, { registry });
    ctx.cleanup.push(() => metrics.close());
    expect(await registry.metrics()).toContain('# TYPE mailroom_worker_emails_sent_total counter');
    expect(await registry.metrics()).toContain('# TYPE mailroom_worker_send_duration_seconds histogram');
    const other = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    const error = await rejection(workerMetrics(other, { registry }));
    expect(error).toMatchObject({ option: 'registry' });
  });

  it('answers 404 on /metrics when metrics were not asked for, and 405 to anything but GET', async () => {
    const worker = createEmailWorker({ kafka: ctx.client, service: serviceFor(scriptedTransport()) });
    const health = await serveWorkerHealth(worker, { port: 0 });
    ctx.cleanup.push(() => health.close());
    expect(health.metrics).toBeUndefined();
    expect(await get(`${health.url}/metrics`)).toMatchObject({ status: 404 });
    expect((await fetch(`${health.url}/readyz`, { method: 'POST' })).status).toBe(405);
  });
});

/** A client whose consumer reports joins and rebalances as kafkajs does, driven by the test. */
function scriptedClient() {
  const listeners = new Map<string, (e: { payload: Record<string, unknown> }) => void>();
  const consumer = {
    events: {
      GROUP_JOIN: 'consumer.group_join',
      REBALANCING: 'consumer.rebalancing',
      CRASH: 'consumer.crash',
    },
    on: (event: string, listener: (e: { payload: Record<string, unknown> }) => void) => {
      listeners.set(event, listener);
    },
    connect: async () => {},
    disconnect: async () => {},
    subscribe: async () => {},
    run: async () => {},
    commitOffsets: async () => {},
    pause() {},
    resume() {},
  };
  const kafka = {
    producer: () => ({ connect: async () => {}, disconnect: async () => {}, send: async () => [] }),
    consumer: () => consumer,
  } satisfies KafkaClientLike;
  const emit = (event: string, payload: Record<string, unknown> = {}) => listeners.get(event)?.({ payload });
  return { kafka, emit };
}

describe('readiness from what the Kafka client reports (a scripted client)', () => {
  it('is not ready while the group rebalances, nor when it leaves the worker no partition', async () => {
    const { kafka: client, emit } = scriptedClient();
    const worker = createEmailWorker({
      kafka: client,
      flavor: 'kafkajs',
      service: serviceFor(scriptedTransport()),
      topic: 'mail',
      groupId: 'senders',
    });
    await worker.start();
    ctx.cleanup.push(() => worker.close());
    expect(workerHealth(worker)).toMatchObject({
      ready: false,
      reason: 'joining group senders: no partitions assigned yet',
    });
    emit('consumer.group_join', { memberAssignment: { mail: [0, 1], 'mail.retry': [0] } });
    expect(workerHealth(worker)).toMatchObject({
      ready: true,
      assignment: { mail: [0, 1], 'mail.retry': [0] },
    });
    emit('consumer.rebalancing');
    expect(workerHealth(worker)).toMatchObject({ ready: false, assignment: null });
    emit('consumer.group_join', { memberAssignment: {} });
    expect(workerHealth(worker)).toMatchObject({
      ready: false,
      reason: 'holds no partition of mail or mail.retry (more workers in group senders than partitions?)',
    });
  });

  // A refused connect can leave a Kafka client's sockets open (kafkajs's admin when a broker refuses
  // the SASL handshake): every scrape that cannot read the lag must leave nothing behind.
  it('disconnects the lag reader whose connect Kafka refused, at every scrape, and counts the failed read', async () => {
    const { kafka: scripted, emit } = scriptedClient();
    const calls: string[] = [];
    let refuse = false; // the start's own look at the topics goes through
    const kafka = {
      ...scripted,
      admin: () => ({
        connect: async () => {
          calls.push('connect');
          if (refuse) throw new Error('SASL authentication failed');
        },
        disconnect: async () => void calls.push('disconnect'),
        listTopics: async () => ['mail', 'mail.retry', 'mail.dlq'],
        fetchTopicOffsets: async () => [],
        fetchOffsets: async () => [],
      }),
    };
    const worker = createEmailWorker({
      kafka,
      flavor: 'kafkajs',
      service: serviceFor(scriptedTransport()),
      topic: 'mail',
    });
    await worker.start();
    ctx.cleanup.push(() => worker.close());
    refuse = true;
    emit('consumer.group_join', { memberAssignment: { mail: [0] } });
    const metrics = await workerMetrics(worker, { registry: new Registry() });
    ctx.cleanup.push(() => metrics.close());
    calls.length = 0; // what the start asked of the admin
    await metrics.registry.metrics();
    // The counter is collected before the lag in a scrape: the second shows the first's failure.
    const second = await metrics.registry.metrics();
    expect(samples(second, 'mailroom_worker_consumer_lag_errors_total').get('')).toBe(1);
    expect(calls).toEqual(['connect', 'disconnect', 'connect', 'disconnect']);
  });

  it("follows the Confluent client's rebalance callback: assigned partitions, then revoked", async () => {
    const configs: Array<Record<string, unknown>> = [];
    const { kafka: scripted } = scriptedClient();
    const client = {
      ...scripted,
      consumer: (config: object) => {
        configs.push({ ...config });
        return scripted.consumer();
      },
    };
    const worker = createEmailWorker({
      kafka: client,
      flavor: 'confluent',
      service: serviceFor(scriptedTransport()),
      topic: 'mail',
    });
    await worker.start();
    ctx.cleanup.push(() => worker.close());
    expect(workerHealth(worker).ready).toBe(false);
    const rebalance = configs[0]?.rebalance_cb as (error: { code: number }, partitions: unknown[]) => void;
    // librdkafka's codes: -175 assign, -174 revoke (rdkafka.h).
    rebalance({ code: -175 }, [
      { topic: 'mail', partition: 2 },
      { topic: 'mail', partition: 0 },
      { topic: 'mail.retry', partition: 1 },
    ]);
    expect(workerHealth(worker)).toMatchObject({
      ready: true,
      assignment: { mail: [2, 0], 'mail.retry': [1] },
    });
    rebalance({ code: -174 }, [{ topic: 'mail', partition: 2 }]);
    expect(workerHealth(worker)).toMatchObject({ ready: false, assignment: null });
  });
});
