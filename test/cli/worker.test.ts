/**
 * `mailroom worker` as built, against the mock Kafka cluster: configured from flags and the
 * environment alone, it delivers to the sandbox, logs one JSON line per outcome, and exits 0 on
 * SIGTERM after committing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailProducer } from '../../src/kafka/index.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { freshTopics, kafkaClient, waitFor } from '../kafka/harness.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
let cluster: KafkaCluster;
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  cluster = await startKafkaCluster();
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-worker-cli-'));
});
afterAll(async () => {
  await cluster?.stop();
  await rm(outbox, { recursive: true, force: true });
});

function cleanEnv(extra: Record<string, string>) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
  );
  return { ...env, APP_NAME: 'Acme', MAILROOM_SANDBOX_DIR: outbox, ...extra };
}

describe('mailroom worker', () => {
  it('delivers from Kafka to the sandbox, logs each outcome, and exits 0 on SIGTERM', async () => {
    const topics = await freshTopics(cluster);
    const kafka = kafkaClient(cluster);
    const producer = createEmailProducer({ kafka, topic: topics.topic });
    for (let i = 0; i < 5; i++) {
      await producer.publish({
        template: 'welcome',
        data: { username: `User ${i}` },
        to: `user-${i}@example.com`,
      });
    }
    await producer.disconnect();
    const worker: ChildProcess = spawn(
      process.execPath,
      [cli, 'worker', '--topic', topics.topic, '--group', topics.groupId, '--concurrency', '2'],
      { env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_SASL_PASSWORD: 'not-used-secret' }) },
    );
    let stdout = '';
    let stderr = '';
    worker.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    worker.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    try {
      const eml = () => readdirSync(outbox).filter((f) => f.endsWith('.eml')).length;
      await waitFor(() => eml() >= 5, 'five emails in the sandbox');
      expect(stdout).toContain(`consuming ${topics.topic} as group ${topics.groupId}`);
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      worker.kill('SIGKILL');
    }
    const lines = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event?: string });
    expect(lines.filter((l) => l.event === 'worker.sent')).toHaveLength(5);
    expect(lines.at(-1)?.event).toBe('worker.closed');
    expect(stdout + stderr).not.toContain('not-used-secret');
  });

  it('names the missing variable and exits 1 without brokers', () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], { env: cleanEnv({}), encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('KAFKA_BROKERS: is required');
  });

  it('refuses a malformed broker list', () => {
    const r = spawnSync(process.execPath, [cli, 'worker', '--brokers', 'kafka:9092,http://evil'], {
      env: cleanEnv({}),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('KAFKA_BROKERS: must be comma-separated host:port pairs');
  });
});
