/**
 * Issue 12's scale-out scenario on Apache Kafka itself: three worker processes in one group on a
 * real three-node KRaft cluster share one real redis-server as their idempotency store; one is
 * SIGKILLed mid-batch, the other two rebalance and finish. The same scenario as on the mock
 * (shared-store-scenario.ts): lost = 0, duplicates only among the killed worker's in-flight sends,
 * each reported; the ledger is in the test output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { useKafka } from './harness.js';
import { killOneWorkerMidBatch } from './shared-store-scenario.js';

const ctx = useKafka({ real: { nodes: 3 } });
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

describe('mailroom-js/kafka workers sharing a Redis store on a three-node real Kafka cluster', () => {
  it('three worker processes, one SIGKILLed mid-batch: duplicates only among its in-flight sends, each reported; lost = 0', async () => {
    const result = await killOneWorkerMidBatch({
      ...ctx,
      redis,
      workers: 3,
      // Two per worker: each holds some from the start; the victim's two move to the other two.
      partitions: 6,
      label: 'real Kafka, 3 nodes',
    });
    expect(result).toMatchObject({ lost: 0, deadLettered: 0 });
  }, 240_000);
});
