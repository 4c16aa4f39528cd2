/**
 * The worker through rebalances: commits refused because the group is rebalancing, workers
 * joining and leaving a group under load, more workers than partitions. Every scenario ends with
 * the ledger (lost = 0) and a check that every worker still open keeps consuming. The group
 * scenarios are shared with the real broker (scenarios.ts, real-scenarios.test.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  freshTopics,
  freshWorker,
  KAFKA_CLIENT,
  ledger,
  publishAll,
  scriptedTransport,
  serviceFor,
  waitFor,
  workerFor,
} from './harness.js';
import {
  keysOf,
  moreWorkersThanPartitions,
  useScenarioCluster,
  workersJoinAndLeaveUnderLoad,
} from './scenarios.js';

const ctx = useScenarioCluster('mock');

/** Kafka's API key of OffsetCommit and the error codes a rebalance answers it with. */
const OFFSET_COMMIT = 8;
const REBALANCE_IN_PROGRESS = 27;
const ILLEGAL_GENERATION = 22;
const UNKNOWN_MEMBER_ID = 25;
/** Kafka's API key of JoinGroup, and an error no rejoin cures. */
const JOIN_GROUP = 11;
const GROUP_AUTHORIZATION_FAILED = 30;

const receipt = (i: number) => ({
  subject: `Receipt ${i}`,
  text: 'Thanks',
  to: `buyer-${i}@example.com`,
  idempotencyKey: `receipt:${i}`,
});

/** A worker on fresh topics, sending through a scripted transport, started; and a producer. */
async function startedWorker() {
  const { topics, transport, producer, worker } = await freshWorker(ctx);
  await worker.start();
  return { topics, transport, worker, producer };
}

describe('mailroom-js/kafka worker through rebalances', { timeout: 90_000 }, () => {
  for (const [name, code] of [
    ['REBALANCE_IN_PROGRESS', REBALANCE_IN_PROGRESS],
    ['ILLEGAL_GENERATION', ILLEGAL_GENERATION],
    ['UNKNOWN_MEMBER_ID', UNKNOWN_MEMBER_ID],
  ] as const) {
    it(`keeps consuming after a commit refused with ${name}`, async () => {
      const { transport, worker, producer } = await startedWorker();
      const fatal: unknown[] = [];
      worker.on('fatal', ({ error }) => fatal.push(error));
      const first = await publishAll(producer, 0, 10, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 10, 'the first ten');
      // The next commit is refused as in a rebalance: the worker rejoins its group and goes on.
      await ctx.cluster.pushRequestErrors(OFFSET_COMMIT, code, 1);
      const second = await publishAll(producer, 10, 20, receipt);
      await waitFor(
        () => keysOf(transport.delivered).size === 20,
        'the ten after the refused commit',
        40_000,
      );
      // Still consuming afterwards, not merely alive.
      const third = await publishAll(producer, 20, 30, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 30, 'ten more after that', 40_000);
      // kafkajs reports the refusal once. librdkafka (the Confluent client) may retry a refused
      // commit or rejoin and commit again by itself before the worker reads the offsets back, so
      // there the count is 0 or more; what holds on both is below: it goes on, nothing lost or doubled.
      if (KAFKA_CLIENT === 'kafkajs') expect(worker.stats.commitsRefused).toBe(1);
      expect(fatal).toEqual([]);
      const result = ledger([...first, ...second, ...third], transport.delivered, []);
      expect(result).toMatchObject({ published: 30, sent: 30, lost: 0 });
      // Redelivered records of refused commits are caught by the idempotency store, not re-sent.
      expect(result.duplicated).toBe(0);
    });
  }

  // librdkafka keeps a partition whose commit was refused and goes on fetching it: the Confluent
  // client's worker tries the commit again and, until it is stored (or the group changes), starts
  // no record, since a record finished then could not be committed either and would be sent again
  // by the partition's next owner. (kafkajs drops those offsets and rejoins: nothing is held.)
  it.runIf(KAFKA_CLIENT === 'confluent')(
    'starts no record while a refused commit waits to be tried again, then goes on',
    async () => {
      const { transport, producer, worker } = await freshWorker(ctx, { concurrency: 2 });
      transport.setDelay(40);
      // The refusals counted when each send began: a send begun at 1 or 2 began while held.
      const refusedAtSend: number[] = [];
      const send = transport.send.bind(transport);
      transport.send = (message, context) => {
        refusedAtSend.push(worker.stats.commitsRefused);
        return send(message, context);
      };
      await worker.start();
      const first = await publishAll(producer, 0, 2, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 2, 'the first two');
      // The next three commits are refused: the first, and the two retries after it.
      await ctx.cluster.pushRequestErrors(OFFSET_COMMIT, REBALANCE_IN_PROGRESS, 3);
      const second = await publishAll(producer, 2, 14, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 14, 'the twelve after', 40_000);
      expect(refusedAtSend.filter((n) => n === 1 || n === 2)).toEqual([]);
      expect(worker.stats.commitsRefused).toBe(3);
      expect(refusedAtSend.filter((n) => n === 3).length).toBeGreaterThan(0); // it went on after
      expect(ledger([...first, ...second], transport.delivered, [])).toMatchObject({
        sent: 14,
        duplicated: 0,
        lost: 0,
      });
    },
  );

  it('loses nothing while a second and a third worker join and leave under load', () =>
    workersJoinAndLeaveUnderLoad(ctx));

  it('starts more workers than partitions; an idle one takes over when the others leave', () =>
    moreWorkersThanPartitions(ctx));

  // kafkajs's consumer crashes on an error it does not retry, and the worker replaces it. The
  // Confluent client has no crash: librdkafka retries or rejoins by itself (the worker's /readyz
  // says when it holds no partition).
  it.runIf(KAFKA_CLIENT === 'kafkajs')(
    'replaces a consumer that kafkajs crashed and will not restart, and goes on',
    async () => {
      const { transport, worker, producer } = await startedWorker();
      const errors: unknown[] = [];
      worker.on('error', ({ error }) => errors.push(error));
      const first = await publishAll(producer, 0, 10, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 10, 'the first ten');
      // A commit fails with an error kafkajs does not retry: its consumer crashes for good.
      await ctx.cluster.pushRequestErrors(OFFSET_COMMIT, GROUP_AUTHORIZATION_FAILED, 1);
      const second = await publishAll(producer, 10, 20, receipt);
      await waitFor(() => worker.stats.restarts === 1, 'the worker to replace its consumer', 40_000);
      const third = await publishAll(producer, 20, 30, receipt);
      await waitFor(() => keysOf(transport.delivered).size === 30, 'everything, after the restart', 40_000);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(ledger([...first, ...second, ...third], transport.delivered, [])).toMatchObject({
        sent: 30,
        duplicated: 0,
        lost: 0,
      });
    },
  );

  it.runIf(KAFKA_CLIENT === 'kafkajs')(
    'stops with a fatal error, instead of idling, when the consumer keeps failing',
    async () => {
      const topics = await freshTopics(ctx.cluster, 3);
      const worker = workerFor(ctx, {
        service: serviceFor(scriptedTransport()),
        ...topics,
        maxRestarts: 1,
      });
      const fatal: unknown[] = [];
      worker.on('fatal', ({ error }) => fatal.push(error));
      // Exactly the joins it makes (the first and one restart), so no refusal is left for other tests.
      await ctx.cluster.pushRequestErrors(JOIN_GROUP, GROUP_AUTHORIZATION_FAILED, 2);
      await worker.start();
      const outcome = await worker.untilClosed().then(
        () => 'closed',
        (error: unknown) => error,
      );
      expect(outcome).toMatchObject({ name: expect.stringMatching(/KafkaJS/) });
      expect(fatal).toEqual([outcome]);
      expect(worker.stats.restarts).toBe(1);
    },
  );
});
