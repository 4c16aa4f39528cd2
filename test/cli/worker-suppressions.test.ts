import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailProducer } from '../../src/kafka/index.js';
import { postgresPreferenceStore } from '../../src/preferences-postgres.js';
import { postgresSuppressionStore } from '../../src/suppression-postgres.js';
import { CLI as cli, startCli } from '../helpers/cli-child.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { type PostgresServer, startPostgresServer } from '../helpers/postgres-server.js';
import { freshTopics, kafkaClient, waitFor } from '../kafka/harness.js';

const PASSWORD = 'worker-pg-secret-51';
let cluster: KafkaCluster;
let postgres: PostgresServer;
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  [cluster, postgres] = await Promise.all([
    startKafkaCluster(),
    startPostgresServer({ hba: ['host all mailroom_worker 127.0.0.1/32 scram-sha-256'] }),
  ]);
  const setup = postgresSuppressionStore({ connectionString: postgres.url() });
  const setupPreferences = postgresPreferenceStore({ connectionString: postgres.url() });
  try {
    await setup.ensureTable();
    await setupPreferences.ensureTable();
  } finally {
    await setup.close();
    await setupPreferences.close();
  }
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-worker-suppressions-'));
});
afterAll(async () => {
  await cluster?.stop();
  await postgres?.stop();
  if (outbox) await rm(outbox, { recursive: true, force: true });
});

describe('mailroom worker with MAILROOM_SUPPRESSIONS_URL and MAILROOM_PREFERENCES_URL', () => {
  it('leaves out the addresses on the suppression list and categories turned off, sends the rest', async () => {
    // The worker connects as a user with a password, like a deployment would.
    const admin = new pg.Pool({ connectionString: postgres.url() });
    await admin.query(`CREATE ROLE mailroom_worker LOGIN PASSWORD '${PASSWORD}'`);
    await admin.query('GRANT SELECT, INSERT, DELETE ON mailroom_suppressions TO mailroom_worker');
    await admin.query('GRANT SELECT, INSERT, UPDATE ON mailroom_preferences TO mailroom_worker');
    await admin.end();
    const url = postgres.url('postgres', 'mailroom_worker', PASSWORD);
    const store = postgresSuppressionStore({ connectionString: url });
    await store.suppress('bounced@example.com', 'hard-bounce', { detail: 'mailgun: 550 5.1.1' });
    await store.close();
    const preferences = postgresPreferenceStore({ connectionString: url });
    await preferences.set('busy@example.com', 'product', false, { source: 'one-click-unsubscribe' });
    await preferences.close();

    const topics = await freshTopics(cluster);
    const producer = createEmailProducer({ kafka: kafkaClient(cluster), topic: topics.topic });
    for (const to of ['one@example.com', 'Bounced@Example.com', 'two@example.com']) {
      await producer.publish({ template: 'welcome', data: { username: 'Jane' }, to });
    }
    // The recipient who turned product mail off: the product email is held back, the welcome goes.
    await producer.publish({
      template: 'welcome',
      data: { username: 'Sam' },
      to: 'busy@example.com',
      category: 'product',
    });
    await producer.publish({ template: 'welcome', data: { username: 'Sam' }, to: 'busy@example.com' });
    await producer.disconnect();

    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
    );
    const worker = startCli(['worker', '--topic', topics.topic, '--group', topics.groupId], {
      ...env,
      APP_NAME: 'Acme',
      MAILROOM_TRANSPORT: 'sandbox',
      MAILROOM_SANDBOX_DIR: outbox,
      KAFKA_BROKERS: cluster.brokers.join(','),
      MAILROOM_SUPPRESSIONS_URL: url,
      MAILROOM_PREFERENCES_URL: url,
    });
    const emls = () => readdirSync(outbox).filter((f) => f.endsWith('.eml'));
    const events = () =>
      worker
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event?: string; reasons?: string[] });
    const count = (event: string) => events().filter((line) => line.event === event).length;
    try {
      // Three sent, two committed as suppressed: nothing to send is not a failure.
      await waitFor(
        () => count('worker.sent') >= 3 && count('worker.suppressed') >= 2,
        'five records handled',
      );
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
    }
    expect(count('worker.sent')).toBe(3);
    expect(
      events()
        .filter((line) => line.event === 'worker.suppressed')
        .map((line) => line.reasons)
        .sort(),
    ).toEqual([['hard-bounce'], ['opted-out']]);
    const recipients = emls()
      .map((file) => /^To: (.*)$/m.exec(readFileSync(join(outbox, file), 'utf8'))?.[1]?.trim())
      .sort();
    expect(recipients).toEqual(['busy@example.com', 'one@example.com', 'two@example.com']);
    expect(worker.output()).not.toContain(PASSWORD);
  });
});
