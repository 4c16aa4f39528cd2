/**
 * The scale-out scenario, for any cluster (librdkafka's mock in shared-store.test.ts,
 * Apache Kafka's three nodes in real-shared-store.test.ts): worker processes in one group
 * (worker-child.ts) share one real Redis idempotency store; one is SIGKILLed mid-batch, the others
 * rebalance and finish. Asserted: lost = 0; the emails that went out twice are only among the
 * killed worker's in-flight sends (at most its concurrency), each reported as a possible duplicate
 * (a survivor's takeover of the dead worker's lease). The ledger is printed in the test output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { expect } from 'vitest';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import { createEmailProducer } from '../../src/kafka/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { email, freshTopics, ledger, publishAll, readTopic, recordCount, waitFor } from './harness.js';

export interface KilledWorkerScenario {
  cluster: KafkaCluster;
  /** kafkajs, for the test's own reading. */
  kafka: Kafka;
  /** The client mailroom's producer runs on (the workers make their own of the same kind). */
  client: KafkaClientLike;
  redis: RedisServer;
  /** The test file's clean-ups (run after the test): children, producer, temp folder. */
  cleanup: Array<() => Promise<void> | void>;
  /** Worker processes in the group, one of them killed. Default 3. */
  workers?: number;
  /** Partitions of the topic: at least as many as workers, so each holds some. Default 6. */
  partitions?: number;
  /** Sends at a time in each worker: the bound on what the killed one had in flight. Default 5. */
  concurrency?: number;
  /** Emails published once every worker delivers. Default 600. */
  load?: number;
  /** Printed before the ledger. */
  label: string;
}

/** What the scenario counted (also printed): the ledger, the store's reports, and how long it took. */
export interface KilledWorkerLedger {
  published: number;
  sent: number;
  duplicated: number;
  possibleDuplicatesReported: number;
  heldThenParked: number;
  duplicatesAvoided: number;
  deadLettered: number;
  lost: number;
  /** Emails the killed worker had handed to the provider before it died (in flight ones included). */
  sentByKilled: number;
  /** From the kill until every email was delivered, in ms. */
  recoveryMs: number;
  /** The whole scenario, from spawning the workers, in ms. */
  totalMs: number;
}

/** Runs the scenario, asserts its bounds, prints and returns its ledger. */
export async function killOneWorkerMidBatch(scenario: KilledWorkerScenario): Promise<KilledWorkerLedger> {
  const {
    cluster,
    kafka,
    client,
    redis,
    cleanup,
    workers = 3,
    partitions = 6,
    concurrency = 5,
    load = 600,
  } = scenario;
  const began = Date.now();
  const topics = await freshTopics(cluster, partitions);
  const dir = mkdtempSync(join(tmpdir(), 'mailroom-shared-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  // Shorter than the group takes to hand the dead worker's partitions on (a 6 s session, then a
  // rebalance): the survivors take its last claims over at once (a longer lease would park them
  // first: the 'held' case in shared-store.test.ts).
  const leaseMs = 3_000;
  const sendDelayMs = 50;
  const producer = createEmailProducer({ kafka: client, topic: topics.topic });
  cleanup.push(() => producer.disconnect());
  const names = Array.from({ length: workers }, (_, i) => String.fromCharCode(97 + i)); // a, b, c…
  const spawnWorker = (name: string): ChildProcess => {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./worker-child.ts', import.meta.url)),
        cluster.brokers.join(','),
        topics.topic,
        topics.groupId,
        join(dir, name),
        String(sendDelayMs),
        String(concurrency),
        redis.url,
        String(leaseMs),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanup.push(() => {
      proc.kill('SIGKILL');
    });
    return proc;
  };
  const lines = (file: string) => {
    try {
      return readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const allSent = () => names.flatMap((name) => lines(name));
  const procs = new Map(names.map((name) => [name, spawnWorker(name)]));

  // Every worker holds partitions and delivers before the load that counts.
  const keys: string[] = [];
  await waitFor(
    () => names.every((name) => lines(name).length > 0),
    `all ${workers} workers delivering`,
    90_000,
    async () => {
      keys.push(...(await publishAll(producer, 10_000 + keys.length, 10_000 + keys.length + 8)));
    },
  );
  keys.push(
    ...(await producer.publishMany(Array.from({ length: load }, (_, i) => email(i)))).map(
      (receipt) => receipt.idempotencyKey,
    ),
  );
  // Mid-batch: the victim is busy with its share (a third of the load at 5 × 50 ms at a time).
  const [victimName = 'a', ...survivors] = names;
  const victim = procs.get(victimName) as ChildProcess;
  const victimAt = lines(victimName).length;
  await waitFor(
    () => lines(victimName).length >= victimAt + 20,
    `worker ${victimName} to deliver 20 more`,
    60_000,
  );
  victim.kill('SIGKILL');
  await new Promise((resolve) => victim.once('exit', resolve));
  const killedAt = Date.now();
  await waitFor(
    () => new Set(allSent()).size === keys.length,
    'every email, by the survivors after the kill',
    120_000,
  );
  const recoveryMs = Date.now() - killedAt;

  // Nothing fails to send here, so nothing is dead-lettered; the topic's offsets say so exactly.
  const dlqCount = await recordCount(kafka, topics.deadLetterTopic);
  const dlq = await readTopic(kafka, topics.deadLetterTopic, dlqCount);

  const sent = allSent();
  const counts = ledger(keys, sent.map((key) => ({ idempotencyKey: key })) as never, dlq);
  const events = survivors.flatMap((name) => lines(`${name}.events`)).map((line) => line.split(' '));
  const possible = events.filter(([kind]) => kind === 'possible-duplicate');
  const result: KilledWorkerLedger = {
    ...counts,
    sentByKilled: lines(victimName).length,
    possibleDuplicatesReported: possible.length,
    heldThenParked: events.filter(([kind]) => kind === 'held').length,
    duplicatesAvoided: events.filter(([kind]) => kind === 'duplicate').length,
    recoveryMs,
    totalMs: Date.now() - began,
  };
  process.stdout.write(
    `${scenario.label}: ${workers} workers sharing a Redis store on ${partitions} partitions, ` +
      `worker ${victimName} SIGKILLed mid-batch (concurrency ${concurrency}) after ${result.sentByKilled} sends: ` +
      `published ${result.published}, sent ${result.sent}, duplicated ${result.duplicated}, ` +
      `possible duplicates reported ${result.possibleDuplicatesReported}, ` +
      `held then parked ${result.heldThenParked}, duplicates avoided ${result.duplicatesAvoided}, ` +
      `dead-lettered ${result.deadLettered}, lost ${result.lost}; ` +
      `all delivered ${result.recoveryMs} ms after the kill, ${result.totalMs} ms in all\n`,
  );

  expect(result.lost).toBe(0);
  expect(result.sent).toBe(keys.length);
  expect(result.deadLettered).toBe(0);
  // Only what the victim had claimed and not marked sent was at risk: its in-flight sends, each
  // taken over from its lease by a survivor and reported. No survivor took over another's lease.
  expect(possible.length).toBeGreaterThanOrEqual(1);
  expect(possible.length).toBeLessThanOrEqual(concurrency);
  for (const [, key, previousOwner] of possible) {
    expect(previousOwner, `the report for ${key}`).toContain(`:${victim.pid}:`);
  }
  // Every email that did go out twice is among those reports.
  const duplicatedKeys = [...new Set(sent.filter((key, i) => sent.indexOf(key) !== i))];
  const reported = new Set(possible.map(([, key]) => key));
  expect(duplicatedKeys.filter((key) => !reported.has(key))).toEqual([]);
  expect(result.duplicated).toBeLessThanOrEqual(result.possibleDuplicatesReported);

  for (const name of survivors) procs.get(name)?.kill('SIGTERM');
  return result;
}
