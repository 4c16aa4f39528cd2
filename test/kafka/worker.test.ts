/**
 * The worker against a real Kafka-protocol broker (librdkafka's mock cluster): each scenario
 * publishes through the producer, runs the worker, and checks the ledger — lost is always 0.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEnvelope, type EmailWorker } from '../../src/kafka/index.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { verifyUnsubscribeToken } from '../../src/unsubscribe/index.js';
import { optedIn } from '../helpers/opted-in.js';
import {
  FAST_RETRY,
  freshWorker,
  HEADERS,
  ledger,
  readTopic,
  scriptedTransport,
  serviceFor,
  useKafka,
  waitFor,
  workerFor,
} from './harness.js';
import { suppressedEmailsAreCommitted } from './scenarios.js';

const ctx = useKafka();

async function setup(options: { concurrency?: number } = {}) {
  const { topics, transport, producer, worker } = await freshWorker(ctx, {
    retry: FAST_RETRY,
    pauseMs: 1_500,
    ...options,
  });
  return { topics, transport, producer, worker };
}

const verification = (i: number, local = 'user') => ({
  template: 'verification' as const,
  data: { username: `User ${i}`, verificationUrl: `https://acme.example/verify?t=${i}` },
  to: `${local}-${i}@example.com`,
  idempotencyKey: `verify:${local}-${i}`,
});

function countEvents(worker: EmailWorker) {
  const seen = { sent: 0, retried: 0, deadLettered: 0, paused: 0, resumed: 0 };
  worker.on('sent', () => seen.sent++);
  worker.on('retried', () => seen.retried++);
  worker.on('dead-lettered', () => seen.deadLettered++);
  worker.on('paused', () => seen.paused++);
  worker.on('resumed', () => seen.resumed++);
  return seen;
}

describe('mailroom-js/kafka worker on a real broker', () => {
  it('delivers what the producer published: rendered, once, and commits', async () => {
    const { topics, transport, producer, worker } = await setup();
    const keys: string[] = [];
    for (let i = 0; i < 20; i++) keys.push((await producer.publish(verification(i))).idempotencyKey);
    const receipt = await producer.publish({ subject: 'Pre-rendered', text: 'Hello', to: 'pre@example.com' });
    keys.push(receipt.idempotencyKey);
    expect(receipt.topic).toBe(topics.topic);
    expect(Number(receipt.offset)).toBeGreaterThanOrEqual(0);
    await worker.start();
    await waitFor(() => transport.delivered.length === 21, '21 deliveries');
    const first = transport.delivered.find((m) => m.to[0]?.address === 'user-0@example.com');
    expect(first?.subject).toMatch(/verify/i);
    expect(first?.html).toContain('https://acme.example/verify?t=0');
    expect(first?.text).toContain('https://acme.example/verify?t=0');
    expect(transport.delivered.find((m) => m.subject === 'Pre-rendered')?.text).toBe('Hello');
    await worker.close();
    const result = ledger(keys, transport.delivered, []);
    expect(result).toEqual({ published: 21, sent: 21, duplicated: 0, deadLettered: 0, lost: 0 });
    // Every offset was committed: a new worker in the same group finds nothing to send.
    const again = scriptedTransport();
    const second = workerFor(ctx, {
      service: serviceFor(again),
      ...topics,
    });
    await second.start();
    await producer.publish(verification(99));
    await waitFor(() => again.delivered.length === 1, 'the new email');
    expect(again.delivered.map((m) => m.to[0]?.address)).toEqual(['user-99@example.com']);
  });

  it('retries a transient failure in process, then delivers once', async () => {
    const { transport, producer, worker } = await setup();
    const events = countEvents(worker);
    transport.rules.set('flaky', { code: 'network', times: 1 });
    const keys = [(await producer.publish(verification(1, 'flaky'))).idempotencyKey];
    await worker.start();
    await waitFor(() => transport.delivered.length === 1, 'delivery');
    expect(transport.attempts.get('verify:flaky-1')).toBe(2);
    expect(events.retried).toBe(0);
    expect(ledger(keys, transport.delivered, [])).toMatchObject({ sent: 1, duplicated: 0, lost: 0 });
  });

  it('parks on the retry topic with a not-before time, then delivers', async () => {
    const { topics, transport, producer, worker } = await setup();
    const events = countEvents(worker);
    // Two in-process attempts fail, the retry round succeeds.
    transport.rules.set('slow', { code: 'rate-limit', status: 429, times: 2 });
    const keys = [(await producer.publish(verification(1, 'slow'))).idempotencyKey];
    let parkedAt = 0;
    let notBefore = 0;
    worker.on('retried', (e) => {
      parkedAt = Date.now();
      notBefore = e.notBefore.getTime();
    });
    let sentAt = 0;
    worker.on('sent', () => {
      sentAt = Date.now();
    });
    await worker.start();
    await waitFor(() => transport.delivered.length === 1, 'delivery after the retry topic');
    expect(events.retried).toBe(1);
    expect(sentAt).toBeGreaterThanOrEqual(notBefore);
    expect(notBefore).toBeGreaterThan(parkedAt);
    const parked = await readTopic(ctx.kafka, topics.retryTopic, 1);
    expect(parked[0]?.headers[HEADERS.attempts]).toBe('2');
    expect(parked[0]?.headers[HEADERS.errorCode]).toBe('rate-limit');
    expect(parked[0]?.headers[HEADERS.originalTopic]).toBe(topics.topic);
    expect(ledger(keys, transport.delivered, [])).toMatchObject({ sent: 1, duplicated: 0, lost: 0 });
  });

  it('counts from 0 when its own headers were mangled: never more attempts, never a retry without its backoff', async () => {
    const { topics, transport, worker } = await setup();
    transport.rules.set('mangled', { code: 'network', times: 2 });
    const raw = ctx.kafka.producer();
    await raw.connect();
    ctx.cleanup.push(() => raw.disconnect());
    const envelope = {
      version: 1,
      id: 'mangled',
      createdAt: new Date().toISOString(),
      ...verification(1, 'mangled'),
      to: ['mangled-1@example.com'],
    };
    await raw.send({
      topic: topics.topic,
      messages: [
        {
          value: JSON.stringify(envelope),
          headers: { [HEADERS.rounds]: 'abc', [HEADERS.attempts]: '-5', [HEADERS.hops]: '1e400' },
        },
      ],
    });
    await worker.start();
    await waitFor(() => transport.delivered.length === 1, 'delivery after the retry topic');
    const [parked] = await readTopic(ctx.kafka, topics.retryTopic, 1);
    // The two in-process attempts, counted from 0 (not -5), and the first round's backoff (not NaN).
    expect(parked?.headers[HEADERS.attempts]).toBe('2');
    expect(parked?.headers[HEADERS.rounds]).toBe('1');
    const failedAt = Date.parse(parked?.headers[HEADERS.lastFailureAt] ?? '');
    expect(Number(parked?.headers[HEADERS.notBefore]) - failedAt).toBeGreaterThanOrEqual(
      FAST_RETRY!.baseDelayMs! / 2 - 5,
    );
    expect(ledger(['verify:mangled-1'], transport.delivered, [])).toMatchObject({ sent: 1, lost: 0 });
    // A parked record whose not-before is not a whole number of ms is due: it never holds the retry
    // partition (Infinity from `1e400` paused and resumed it forever).
    const parkedKey = 'verify:mangled-2';
    await raw.send({
      topic: topics.retryTopic,
      messages: [
        {
          value: JSON.stringify({
            ...envelope,
            id: 'mangled-2',
            idempotencyKey: parkedKey,
            to: ['m2@example.com'],
          }),
          headers: { [HEADERS.notBefore]: '1e400' },
        },
      ],
    });
    await waitFor(() => transport.delivered.length === 2, 'the record with a mangled not-before');
    expect(transport.delivered[1]?.to[0]?.address).toBe('m2@example.com');
  });

  it('dead-letters after the maximum attempts, with the failure in the headers', async () => {
    const { topics, transport, producer, worker } = await setup();
    transport.rules.set('down', { code: 'network', times: 100 });
    const published = await producer.publish(verification(1, 'down'));
    const ok = await producer.publish(verification(2));
    await worker.start();
    await waitFor(() => worker.stats.deadLettered === 1, 'dead-letter');
    const [record] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(record?.headers).toMatchObject({
      [HEADERS.reason]: 'max-attempts',
      [HEADERS.errorCode]: 'network',
      [HEADERS.attempts]: '4',
      [HEADERS.originalTopic]: topics.topic,
      [HEADERS.originalPartition]: String(published.partition),
      [HEADERS.originalOffset]: published.offset,
    });
    expect(record?.headers[HEADERS.errorMessage]).toBe('scripted network');
    const first = Date.parse(record?.headers[HEADERS.firstFailureAt] ?? '');
    const last = Date.parse(record?.headers[HEADERS.lastFailureAt] ?? '');
    expect(last).toBeGreaterThan(first);
    expect(JSON.parse(record?.value ?? '{}').idempotencyKey).toBe('verify:down-1');
    expect(transport.attempts.get('verify:down-1')).toBe(4);
    await waitFor(() => transport.delivered.length === 1, 'the healthy email');
    const result = ledger([published.idempotencyKey, ok.idempotencyKey], transport.delivered, [record!]);
    expect(result).toEqual({ published: 2, sent: 1, duplicated: 0, deadLettered: 1, lost: 0 });
  });

  it('dead-letters a permanent failure at once', async () => {
    const { topics, transport, producer, worker } = await setup();
    transport.rules.set('nobody', { code: 'rejected', status: 550, times: 1 });
    const bad = await producer.publish(verification(1, 'nobody'));
    await worker.start();
    await waitFor(() => worker.stats.deadLettered === 1, 'dead-letter');
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(dlq[0]?.headers[HEADERS.reason]).toBe('permanent');
    expect(dlq[0]?.headers[HEADERS.attempts]).toBe('1');
    expect(transport.attempts.get('verify:nobody-1')).toBe(1);
    expect(ledger([bad.idempotencyKey], transport.delivered, dlq)).toMatchObject({
      deadLettered: 1,
      lost: 0,
    });
  });

  it('dead-letters poison pills with the reason, and the next message still flows', async () => {
    const { topics, transport, producer, worker } = await setup({ concurrency: 1 });
    const raw = ctx.kafka.producer();
    await raw.connect();
    ctx.cleanup.push(() => raw.disconnect());
    const key = 'same-partition';
    const poison = [
      'not json {',
      JSON.stringify({ version: 2, id: 'x' }),
      JSON.stringify({
        version: 1,
        id: 'a',
        idempotencyKey: 'k1',
        createdAt: new Date().toISOString(),
        template: 'no-such-template',
        data: {},
        to: ['a@example.com'],
      }),
      JSON.stringify({
        version: 1,
        id: 'b',
        idempotencyKey: 'k2',
        createdAt: new Date().toISOString(),
        subject: 'x',
        text: 'x',
        to: ['a@example.com'],
        attachments: [{ filename: 'passwd', path: '/etc/passwd' }],
      }),
      JSON.stringify({
        version: 1,
        id: 'c',
        idempotencyKey: 'k3',
        createdAt: new Date().toISOString(),
        template: 'verification',
        data: { username: 'Eve', verificationUrl: 'javascript:alert(1)' },
        to: ['a@example.com'],
      }),
    ];
    await raw.send({ topic: topics.topic, messages: poison.map((value) => ({ key, value })) });
    await worker.start();
    const good = await producer.publish({ ...verification(1), to: 'same-partition@example.com' });
    await waitFor(() => transport.delivered.length === 1, 'the good message after the poison');
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 5);
    expect(dlq.map((r) => [r.headers[HEADERS.reason], r.headers[HEADERS.errorMessage]])).toEqual([
      ['invalid-envelope', 'envelope: is not JSON'],
      ['invalid-envelope', 'version: unsupported envelope version 2 (this release reads 1)'],
      ['unknown-template', expect.stringContaining('no template of that name')],
      ['invalid-envelope', expect.stringContaining('attachments[0].path')],
      ['invalid-data', expect.stringContaining('verificationUrl')],
    ]);
    expect(dlq.map((r) => r.value)).toEqual(poison);
    expect(worker.stats).toMatchObject({ sent: 1, deadLettered: 5 });
    expect(ledger([good.idempotencyKey], transport.delivered, [])).toMatchObject({ sent: 1, lost: 0 });
  });

  it('sends a record written twice once, even when both copies are in flight together', async () => {
    const { topics, transport, worker } = await setup({ concurrency: 10 });
    const raw = ctx.kafka.producer();
    await raw.connect();
    ctx.cleanup.push(() => raw.disconnect());
    const copies = Array.from({ length: 5 }, (_, i) =>
      JSON.stringify(
        createEnvelope({
          subject: `Receipt ${i}`,
          text: 'Thanks',
          to: `buyer-${i}@example.com`,
          idempotencyKey: `receipt:${i}`,
        }),
      ),
    );
    // What a producer retry leaves behind: each record twice, side by side, in one partition.
    await raw.send({
      topic: topics.topic,
      messages: copies.flatMap((value) => [
        { key: 'k', value },
        { key: 'k', value },
      ]),
    });
    await worker.start();
    await waitFor(() => worker.stats.sent + worker.stats.duplicates === 10, 'all ten records');
    expect(worker.stats).toMatchObject({ sent: 5, duplicates: 5 });
    const result = ledger(
      copies.map((c) => JSON.parse(c).idempotencyKey),
      transport.delivered,
      [],
    );
    expect(result).toEqual({ published: 5, sent: 5, duplicated: 0, deadLettered: 0, lost: 0 });
  });

  it('pauses on a systemic failure, dead-letters nothing, and delivers the backlog once fixed', async () => {
    const { topics, transport, producer, worker } = await setup();
    const events = countEvents(worker);
    transport.rules.set('', { code: 'auth', status: 535, times: 1_000 });
    const keys: string[] = [];
    for (let i = 0; i < 10; i++) keys.push((await producer.publish(verification(i))).idempotencyKey);
    let alert: unknown;
    worker.on('paused', (e) => {
      alert = e.error;
    });
    await worker.start();
    await waitFor(() => events.paused === 1, 'the pause alert');
    expect(alert).toMatchObject({ code: 'auth', failure: 'systemic' });
    expect(worker.paused).toBe(true);
    // While paused, nothing is fetched: the attempts stop growing.
    const attemptsWhilePaused = [...transport.attempts.values()].reduce((a, b) => a + b, 0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([...transport.attempts.values()].reduce((a, b) => a + b, 0)).toBe(attemptsWhilePaused);
    transport.rules.clear(); // someone fixed the credentials
    await waitFor(() => transport.delivered.length === 10, 'the backlog after resuming');
    expect(events.resumed).toBeGreaterThanOrEqual(1);
    expect(worker.stats.deadLettered).toBe(0);
    expect(worker.stats.retried).toBe(0);
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 0);
    expect(ledger(keys, transport.delivered, dlq)).toEqual({
      published: 10,
      sent: 10,
      duplicated: 0,
      deadLettered: 0,
      lost: 0,
    });
  });

  it('a pause mid-batch: the records after it are fetched again and each is sent once, under the Message-ID its key derives', async () => {
    // 40 records in one partition, fetched as one batch; the 21st fails with a systemic error, so
    // the worker pauses with the rest of the batch not started (some already in flight), and
    // fetches them again when it resumes.
    const { topics, transport, worker } = await setup();
    const events = countEvents(worker);
    transport.rules.set('stop', { code: 'auth', status: 535, times: 1 });
    const raw = ctx.kafka.producer();
    await raw.connect();
    ctx.cleanup.push(() => raw.disconnect());
    const envelopes = Array.from({ length: 40 }, (_, i) =>
      createEnvelope({
        template: 'verification',
        data: { username: `User ${i}`, verificationUrl: `https://acme.example/verify?t=${i}` },
        to: `${i === 20 ? 'stop' : 'ahead'}-${i}@example.com`,
        idempotencyKey: `ahead:${i}`,
      }),
    );
    await raw.send({
      topic: topics.topic,
      messages: envelopes.map((envelope) => ({ key: 'one-partition', value: JSON.stringify(envelope) })),
    });
    await worker.start();
    await waitFor(() => transport.delivered.length === 40, 'all 40 after the pause');
    expect(events.paused).toBe(1);
    expect(transport.attempts.get('ahead:20')).toBe(2);
    const sent = transport.delivered.find((m) => m.to[0]?.address === 'ahead-39@example.com');
    expect(sent?.html).toContain('https://acme.example/verify?t=39');
    // The Message-ID is derived from the key: the first 32 hex digits of its SHA-256.
    const digest = createHash('sha256').update('ahead:39').digest('hex').slice(0, 32);
    expect(sent?.messageId).toMatch(new RegExp(`^<${digest}@`));
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 0);
    expect(
      ledger(
        envelopes.map((e) => e.idempotencyKey),
        transport.delivered,
        dlq,
      ),
    ).toEqual({ published: 40, sent: 40, duplicated: 0, deadLettered: 0, lost: 0 });
  });

  it('commits a suppressed email without sending it and counts it; security mail from the app still goes', () =>
    suppressedEmailsAreCommitted(ctx));

  it('the worker’s service adds List-Unsubscribe to product mail when it sends; the record carries none', async () => {
    const transport = scriptedTransport();
    const secrets = ['worker-unsubscribe-secret-worker-unsubscribe'];
    const { topics, producer, worker } = await freshWorker(ctx, {
      transport,
      service: new EmailService({
        transport,
        from: 'Acme <no-reply@acme.example>',
        retry: false,
        preferences: optedIn(),
        unsubscribe: { url: 'https://acme.example/unsubscribe', secrets },
      }),
      retry: FAST_RETRY,
    });
    // The app's side has no unsubscribe option: the worker's configuration owns it.
    const app = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      queue: producer,
    });
    await app.send({
      subject: 'New this week',
      text: 'News',
      to: 'jane@example.com',
      category: 'product',
      idempotencyKey: 'news:jane',
    });
    await app.send({
      subject: 'New sign-in',
      text: 'Was it you?',
      to: 'jane@example.com',
      category: 'security',
      idempotencyKey: 'alert:jane',
    });
    const records = await readTopic(ctx.kafka, topics.topic, 2);
    for (const record of records) expect(record.value).not.toMatch(/List-Unsubscribe/i);
    await worker.start();
    await waitFor(() => transport.delivered.length === 2, 'both emails');
    const byKey = new Map(transport.delivered.map((m) => [m.idempotencyKey, m]));
    const news = byKey.get('news:jane')!;
    expect(news.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const url = new URL(/^<([^>]+)>$/.exec(news.headers['List-Unsubscribe']!)![1]!);
    expect(verifyUnsubscribeToken(url.searchParams.get('token'), { secrets })).toMatchObject({
      ok: true,
      address: 'jane@example.com',
      category: 'product',
    });
    expect(Object.keys(byKey.get('alert:jane')!.headers)).toEqual([]);
  });
});
