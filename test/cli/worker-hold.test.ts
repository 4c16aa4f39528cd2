/**
 * `mailroom worker` with `MAILROOM_HOLD=true`, against the mock Kafka cluster: the hold is asked
 * for by name, so the worker takes the topic and holds each email (nothing reaches the SMTP
 * server) until `mailroom release` sends it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEmailProducer } from '../../src/kafka/index.js';
import { holdTransport } from '../../src/transports/hold.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { CLI as cli, startCli } from '../helpers/cli-child.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { freshTopics, kafkaClient, waitFor } from '../kafka/harness.js';

let cluster: KafkaCluster;
let peer: SmtpPeer;
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  cluster = await startKafkaCluster();
  peer = await startSmtpPeer({ starttls: false });
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-worker-hold-'));
});
afterAll(async () => {
  await cluster?.stop();
  await peer?.close();
  await rm(outbox, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
  );
  return {
    ...inherited,
    APP_NAME: 'Acme',
    MAILROOM_HOLD: 'true',
    MAILROOM_SANDBOX_DIR: outbox,
    SMTP_HOST: peer.host,
    SMTP_PORT: String(peer.port),
    SMTP_TLS: 'none',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
    ...extra,
  };
}

it('holds what it consumes, sends nothing, and mailroom release delivers it', async () => {
  const topics = await freshTopics(cluster);
  const producer = createEmailProducer({ kafka: kafkaClient(cluster), topic: topics.topic });
  for (const to of ['ann@example.com', 'ben@example.com']) {
    await producer.publish({ template: 'welcome', data: { username: 'Ann' }, to });
  }
  await producer.disconnect();
  const worker = startCli(
    ['worker', '--topic', topics.topic, '--group', topics.groupId],
    env({ KAFKA_BROKERS: cluster.brokers.join(',') }),
  );
  const hold = holdTransport({ transport: memoryTransport(), dir: outbox, onFirstWrite: false });
  try {
    const held = () => readdirSync(join(outbox, '.hold')).filter((f) => f.endsWith('.state.json'));
    await waitFor(() => existsSync(join(outbox, '.hold')) && held().length >= 2, 'two held emails');
    expect((await hold.list()).map((e) => e.status)).toEqual(['held', 'held']);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  } finally {
    worker.child.kill('SIGKILL');
  }
  const first = JSON.parse(
    worker
      .stdout()
      .split('\n')
      .find((line) => line.startsWith('{')) ?? '{}',
  );
  expect(first).toMatchObject({
    event: 'worker.starting',
    transport: expect.stringMatching(/^hold .*released through smtp/),
  });
  expect(peer.transactions).toBe(0);

  // Not execFileSync: the SMTP server answers from this process.
  const { stdout: released } = await promisify(execFile)(process.execPath, [cli, 'release', '--all'], {
    env: env(),
    encoding: 'utf8',
  });
  expect(released.split('\n').filter((line) => line.startsWith('Released '))).toHaveLength(2);
  expect(peer.messages.map((m) => m.envelope.rcptTo[0]).sort()).toEqual([
    'ann@example.com',
    'ben@example.com',
  ]);
});
