/**
 * Send later through Kafka, as scenarios that run unchanged on the mock cluster
 * (send-later.test.ts) and on Apache Kafka (real-scenarios.test.ts): a record due soon waits on a
 * delay topic while the records behind it on its partition go at once; a record due far ahead
 * sits on a long tier without blocking anything; a worker restarted while records wait loses
 * none. Each ends with the ledger: lost = 0, duplicated = 0.
 */
import { expect } from 'vitest';
import {
  createEmailWorker,
  DELAY_TIERS,
  type EmailWorker,
  type EmailWorkerEvents,
  HEADERS,
  workerMetrics,
} from '../../src/kafka/index.js';
import type { QuietHours } from '../../src/send-at.js';
import {
  FAST_CONSUMER,
  FAST_RETRY,
  freshTopics,
  ledger,
  readTopic,
  scriptedTransport,
  serviceFor,
  waitFor,
} from './harness.js';
import { producerFor, type ScenarioContext } from './scenarios.js';

type Topics = Awaited<ReturnType<typeof freshTopics>>;

/** Fresh topics with the four delay topics too, one partition each: every record below shares one. */
async function delayTopics(ctx: ScenarioContext): Promise<Topics & { delayTopicPrefix: string }> {
  const topics = await freshTopics(ctx.cluster, 1);
  const delayTopicPrefix = `${topics.topic}.delay`;
  for (const { suffix } of DELAY_TIERS) await ctx.cluster.createTopic(`${delayTopicPrefix}.${suffix}`, 1);
  return { ...topics, delayTopicPrefix };
}

/** A worker with delay topics whose sends are timed (ms since the epoch, by idempotency key). */
function laterWorker(
  ctx: ScenarioContext,
  topics: Topics & { delayTopicPrefix: string },
  transport: ReturnType<typeof scriptedTransport>,
  sentAt: Map<string, number>,
  quietHours?: QuietHours,
): EmailWorker {
  const worker = createEmailWorker({
    kafka: ctx.client,
    service: serviceFor(transport, quietHours ? { quietHours } : {}),
    ...topics,
    delayTopics: true,
    consumer: FAST_CONSUMER,
    retry: FAST_RETRY,
  });
  worker.on('sent', (e) => void sentAt.set(e.envelope.idempotencyKey, Date.now()));
  ctx.cleanup.push(() => worker.close());
  return worker;
}

const to = 'jane@example.com'; // one recipient: one partition key, one order
const note = (key: string) => ({ to, subject: key, text: key, idempotencyKey: key });

/**
 * One partition: a record due in a few seconds, then five immediate ones behind it, then one due in
 * 90 minutes, then one more immediate. The immediate ones are all sent before the first is due;
 * that one is sent once due (never before) after one hop on the 1-minute tier; the far one waits on
 * the 1-hour tier, unsent and not blocking the one behind it.
 */
export async function dueRecordWaitsWithoutBlocking(ctx: ScenarioContext): Promise<void> {
  const topics = await delayTopics(ctx);
  const producer = producerFor(ctx, topics.topic);
  const transport = scriptedTransport();
  const sentAt = new Map<string, number>();
  const worker = laterWorker(ctx, topics, transport, sentAt);
  const metrics = await workerMetrics(worker);
  ctx.cleanup.push(() => metrics.close());
  const delayed: EmailWorkerEvents['delayed'][] = [];
  worker.on('delayed', (e) => void delayed.push(e));
  const dueAt = Date.now() + 8_000;
  await producer.publish({ ...note('later'), sendAt: new Date(dueAt) });
  const now = ['now-1', 'now-2', 'now-3', 'now-4', 'now-5'];
  for (const key of now) await producer.publish(note(key));
  const farDue = new Date(Date.now() + 90 * 60_000);
  await producer.publish({ ...note('far'), sendAt: farDue });
  await producer.publish(note('now-6'));
  await worker.start();
  await waitFor(() => sentAt.size === 7, 'the immediate records and the one due soon', 40_000);
  const order = transport.delivered.map((m) => m.idempotencyKey);
  // Never early; and everything behind it on its partition went first.
  expect(sentAt.get('later')).toBeGreaterThanOrEqual(dueAt);
  expect(order.at(-1)).toBe('later');
  expect(order.slice(0, 6).sort()).toEqual([...now, 'now-6'].sort());
  expect(sentAt.has('far')).toBe(false);
  // Moved concurrently (the worker sends up to `concurrency` at once): compared by key.
  const byKey = new Map(delayed.map((e) => [e.envelope.idempotencyKey, e]));
  expect(delayed).toHaveLength(2);
  expect(byKey.get('later')?.delayTopic).toBe(`${topics.delayTopicPrefix}.1m`);
  expect(byKey.get('far')?.delayTopic).toBe(`${topics.delayTopicPrefix}.1h`);
  expect(byKey.get('later')?.notBefore.getTime()).toBe(dueAt);
  expect(byKey.get('far')?.dueAt).toEqual(farDue);
  // The far one is on the 1-hour tier, with its due time and when it comes up again.
  const [parked] = await readTopic(ctx.kafka, `${topics.delayTopicPrefix}.1h`, 1);
  expect(JSON.parse(parked?.value ?? '{}').idempotencyKey).toBe('far');
  expect(Number(parked?.headers[HEADERS.dueAt])).toBe(farDue.getTime());
  expect(Number(parked?.headers[HEADERS.notBefore])).toBeLessThan(farDue.getTime());
  expect(parked?.headers[HEADERS.originalTopic]).toBe(topics.topic);
  expect(worker.stats).toMatchObject({ sent: 7, delayed: 2, deadLettered: 0, retried: 0 });
  const scrape = await metrics.registry.metrics();
  expect(scrape).toContain(
    `mailroom_worker_emails_delayed_total{topic="${topics.topic}",delay_topic="${topics.delayTopicPrefix}.1h"} 1`,
  );
  const keys = [...now, 'now-6', 'later'];
  expect(ledger(keys, transport.delivered, [])).toEqual({
    published: 7,
    sent: 7,
    duplicated: 0,
    deadLettered: 0,
    lost: 0,
  });
  console.info(`${ctx.kind} cluster, send later: sent ${sentAt.get('later')! - dueAt} ms after due`);
}

/**
 * A worker closes while records wait on the 1-minute tier; another starts in the same group and
 * sends them once due: each once, never before, none lost.
 */
export async function restartWhileRecordsWait(ctx: ScenarioContext): Promise<void> {
  const topics = await delayTopics(ctx);
  const producer = producerFor(ctx, topics.topic);
  const transport = scriptedTransport();
  const sentAt = new Map<string, number>();
  const first = laterWorker(ctx, topics, transport, sentAt);
  const delayed: string[] = [];
  first.on('delayed', (e) => void delayed.push(e.envelope.idempotencyKey));
  await first.start();
  const dueAt = Date.now() + 12_000;
  const keys = ['wait-1', 'wait-2', 'wait-3'];
  for (const key of keys) await producer.publish({ ...note(key), sendAt: new Date(dueAt) });
  await waitFor(() => delayed.length === 3, 'the three records moved to the delay topic', 30_000);
  await first.close();
  expect(sentAt.size).toBe(0);
  const second = laterWorker(ctx, topics, transport, sentAt);
  await second.start();
  await waitFor(() => sentAt.size === 3, 'the waiting records sent by the second worker', 60_000);
  for (const key of keys) expect(sentAt.get(key)).toBeGreaterThanOrEqual(dueAt);
  // Nothing left to hop: the second worker sent them from the delay topic, it did not move them again.
  expect(second.stats).toMatchObject({ sent: 3, delayed: 0, deadLettered: 0 });
  expect(ledger(keys, transport.delivered, [])).toEqual({
    published: 3,
    sent: 3,
    duplicated: 0,
    deadLettered: 0,
    lost: 0,
  });
}

/** A worker without delay topics dead-letters a record not yet due (reason `not-due`): never early, never waited for. */
export async function withoutDelayTopicsNotDueIsDeadLettered(ctx: ScenarioContext): Promise<void> {
  const topics = await freshTopics(ctx.cluster, 1);
  const producer = producerFor(ctx, topics.topic);
  const transport = scriptedTransport();
  const worker = createEmailWorker({
    kafka: ctx.client,
    service: serviceFor(transport),
    ...topics,
    consumer: FAST_CONSUMER,
    retry: FAST_RETRY,
  });
  ctx.cleanup.push(() => worker.close());
  await producer.publish({ ...note('later'), sendAt: new Date(Date.now() + 3_600_000) });
  await producer.publish(note('now'));
  await worker.start();
  const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
  expect(dead?.headers[HEADERS.reason]).toBe('not-due');
  await waitFor(() => transport.delivered.length === 1, 'the immediate record');
  expect(transport.delivered.map((m) => m.idempotencyKey)).toEqual(['now']);
}

/**
 * Quiet hours in the worker's service: a `product` record for a recipient in quiet hours is held on
 * the delay path until the hook's time, a `security` one to the same recipient goes at once.
 */
export async function quietHoursHoldProductMail(ctx: ScenarioContext): Promise<void> {
  const topics = await delayTopics(ctx);
  const producer = producerFor(ctx, topics.topic);
  const transport = scriptedTransport();
  const sentAt = new Map<string, number>();
  const until = Date.now() + 8_000;
  let edgeAsked = 0;
  // Quiet until `until`, then nothing holds it back. For edge@, quiet hours begin just after the
  // worker asked: the send that follows must not ask again (and be refused by a transport that
  // cannot schedule), it was already due.
  const worker = laterWorker(ctx, topics, transport, sentAt, (recipient, _category, now) => {
    if (recipient.startsWith('edge')) return edgeAsked++ === 0 ? undefined : new Date(until + 3_600_000);
    return now.getTime() < until ? new Date(until) : undefined;
  });
  await producer.publish({ ...note('news'), category: 'product' });
  await producer.publish({ ...note('alert'), category: 'security' });
  await producer.publish({ ...note('edge'), to: 'edge@example.com', category: 'product' });
  await worker.start();
  await waitFor(() => sentAt.size === 3, 'the alert, the edge case and, after quiet hours, the news', 40_000);
  expect(transport.delivered.map((m) => m.idempotencyKey).sort()).toEqual(['alert', 'edge', 'news']);
  expect(transport.delivered.at(-1)?.idempotencyKey).toBe('news');
  expect(sentAt.get('news')).toBeGreaterThanOrEqual(until);
  expect(edgeAsked).toBe(1);
  expect(worker.stats).toMatchObject({ sent: 3, delayed: 1, deadLettered: 0 });
}

/**
 * A quiet-hours hook that fails is the app's fault, not the record's: the record is tried again
 * later (a lookup that failed once goes through on the next try), and one whose hook keeps failing
 * is dead-lettered as max-attempts with the hook's error, never sent and never blamed on the record.
 */
export async function quietHoursFailureIsRetried(ctx: ScenarioContext): Promise<void> {
  const topics = await delayTopics(ctx);
  const producer = producerFor(ctx, topics.topic);
  const transport = scriptedTransport();
  const asked = new Map<string, number>();
  const worker = laterWorker(ctx, topics, transport, new Map(), (recipient) => {
    const times = (asked.get(recipient) ?? 0) + 1;
    asked.set(recipient, times);
    if (recipient.startsWith('flaky') && times === 1) throw new Error('time zone lookup timed out');
    if (recipient.startsWith('broken')) return 'tomorrow' as unknown as Date;
    return undefined;
  });
  await producer.publish({ ...note('flaky'), to: 'flaky@example.com', category: 'product' });
  await producer.publish({ ...note('broken'), to: 'broken@example.com', category: 'product' });
  await worker.start();
  const [dead] = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
  expect(dead?.headers[HEADERS.reason]).toBe('max-attempts');
  expect(dead?.headers[HEADERS.errorMessage]).toMatch(/quietHours.*valid Date/);
  await waitFor(() => transport.delivered.length === 1, 'the flaky record, on its second try');
  expect(transport.delivered.map((m) => m.idempotencyKey)).toEqual(['flaky']);
  expect(asked.get('flaky@example.com')).toBe(2);
  expect(asked.get('broken@example.com')).toBe(FAST_RETRY?.maxAttempts);
  expect(worker.stats).toMatchObject({ sent: 1, deadLettered: 1 });
}
