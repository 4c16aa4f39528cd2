/**
 * The worker when things go wrong around it: a broker goes away, a worker is killed, two workers
 * share a group, a worker is shut down under load. Each scenario ends with the ledger: lost = 0.
 * The last two are shared with the real broker (scenarios.ts, real-scenarios.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freshTopics, freshWorker, ledger, publishAll, readTopic, waitFor } from './harness.js';
import { closeUnderLoad, producerFor, twoWorkersShareTheGroup, useScenarioCluster } from './scenarios.js';

const ctx = useScenarioCluster('mock');

// The scenarios wait up to 40–60 s for a group to settle (a killed member's session to end, a new
// process to join): the default 20 s test timeout is shorter than their own waits.
describe('mailroom-js/kafka worker under failure', { timeout: 90_000 }, () => {
  it('loses nothing when a broker goes down mid-run and comes back', async () => {
    const { topics, transport, producer, worker } = await freshWorker(ctx, { partitions: 6 });
    await worker.start();
    const keys = await publishAll(producer, 0, 30);
    await waitFor(() => transport.delivered.length >= 10, 'the first deliveries');
    await ctx.cluster.brokerDown(2);
    // Publishing goes on: records for partitions led by broker 2 wait in the producer's retries.
    const during = publishAll(producer, 30, 60);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await ctx.cluster.brokerUp(2);
    keys.push(...(await during));
    await waitFor(
      () => new Set(transport.delivered.map((m) => m.idempotencyKey)).size === 60,
      'all 60 delivered',
      40_000,
    );
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 0);
    expect(ledger(keys, transport.delivered, dlq)).toMatchObject({ published: 60, sent: 60, lost: 0 });
  });

  it('loses nothing when a worker is killed mid-batch; duplicates only among the in-flight', async () => {
    const topics = await freshTopics(ctx.cluster, 3);
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-kill-'));
    ctx.cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const ledgerPath = join(dir, 'sent.txt');
    const concurrency = 5;
    const producer = producerFor(ctx, topics.topic);
    const keys = await publishAll(producer, 0, 150);
    const child = (): ChildProcess => {
      const proc = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./worker-child.ts', import.meta.url)),
          ctx.cluster.brokers.join(','),
          topics.topic,
          topics.groupId,
          ledgerPath,
          '20',
          String(concurrency),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      ctx.cleanup.push(() => {
        proc.kill('SIGKILL');
      });
      return proc;
    };
    const sentKeys = () => {
      try {
        return readFileSync(ledgerPath, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    const first = child();
    await waitFor(() => sentKeys().length >= 40, 'the first worker to deliver 40', 40_000);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const beforeRestart = sentKeys().length;
    expect(beforeRestart).toBeLessThan(150);
    child();
    await waitFor(() => new Set(sentKeys()).size === 150, 'all 150 after the restart', 60_000);
    const delivered = sentKeys().map((key) => ({ idempotencyKey: key, messageId: key }));
    const result = ledger(keys, delivered as never, []);
    expect(result.lost).toBe(0);
    expect(result.sent).toBe(150);
    // What the killed worker had sent but not yet committed comes again; nothing else does.
    expect(result.duplicated).toBeLessThanOrEqual(2 * concurrency);
  });

  it('shares partitions between two workers in one group, each email sent once', () =>
    twoWorkersShareTheGroup(ctx));

  it('shuts down gracefully under load: in-flight sends finish and commit, the next worker repeats none', () =>
    closeUnderLoad(ctx));
});
