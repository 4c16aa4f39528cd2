/**
 * The web app and the worker against a real Kafka-protocol broker (librdkafka's mock cluster),
 * configured only through the environment, as a deployment is: the app answers once Kafka has the
 * email and sends nothing itself; the worker renders and delivers it into the sandbox folder. Each
 * test has its own three topics (created up front: the worker never creates topics), consumer
 * group and sandbox folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Admin, type Kafka, logLevel } from 'kafkajs';
import type { EmailError, Logger } from 'mailroom-js';
import type { IdempotencyStoreError } from 'mailroom-js/kafka';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaCluster, startKafkaCluster } from '../../test/helpers/kafka-cluster.js';
import { fromMime } from '../../test/helpers/received.js';
import { startSmtpPeer } from '../../test/helpers/smtp-peer.js';
import { FAST_CONSUMER, kafkaClient, readTopic, waitFor } from '../../test/kafka/harness.js';
import { createApp } from './app.js';
import { createMailWorker, createQueuedMail, type MailWorkerOptions } from './mail.js';

// The repo root: tsx finds tsconfig.json there, whose `paths` make `mailroom-js` the source.
const root = fileURLToPath(new URL('../..', import.meta.url));
/** kafkajs quiet, and quick to retry on loopback. */
const QUIET = { logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, maxRetryTime: 2_000 } };

let cluster: KafkaCluster;
let kafka: Kafka;
let admin: Admin;
const cleanup: Array<() => Promise<unknown>> = [];
let alerts: Array<EmailError | IdempotencyStoreError>;
let logs: { level: string; msg: string | undefined; fields: Record<string, unknown> }[];

beforeAll(async () => {
  cluster = await startKafkaCluster();
  kafka = kafkaClient(cluster);
  admin = kafka.admin();
  await admin.connect();
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await admin?.disconnect();
  await cluster?.stop();
});

/** A deployment's environment: fresh topics (created as the README's topic setup says), group and outbox. */
async function deployment() {
  alerts = [];
  logs = [];
  const topic = `notifications.email-${randomUUID().slice(0, 8)}`;
  for (const name of [topic, `${topic}.retry`, `${topic}.dlq`]) await cluster.createTopic(name, 3);
  const outbox = await mkdtemp(join(tmpdir(), 'mailroom-kafka-example-'));
  cleanup.push(() => rm(outbox, { recursive: true, force: true }));
  const groupId = `mailroom-email-worker-${randomUUID().slice(0, 8)}`;
  const env: Record<string, string> = {
    KAFKA_BROKERS: cluster.brokers.join(','),
    KAFKA_CLIENT_ID: 'acme-signup',
    MAILROOM_KAFKA_TOPIC: topic,
    MAILROOM_KAFKA_GROUP: groupId,
    MAILROOM_TRANSPORT: 'sandbox',
    MAILROOM_SANDBOX_DIR: outbox,
    APP_NAME: 'Acme',
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
  };
  return { env, topic, groupId, outbox };
}

/** The web app's side, as server.ts builds it. */
function startApp(env: Record<string, string>) {
  const queued = createQueuedMail(env, { kafka: QUIET });
  cleanup.push(() => queued.close());
  return createApp({ mail: queued.mail, baseUrl: 'https://acme.example' });
}

const recorder: Logger = {
  info: (fields, msg) => logs.push({ level: 'info', msg, fields: fields as Record<string, unknown> }),
  warn: (fields, msg) => logs.push({ level: 'warn', msg, fields: fields as Record<string, unknown> }),
  error: (fields, msg) => logs.push({ level: 'error', msg, fields: fields as Record<string, unknown> }),
};

async function startWorker(env: Record<string, string>, options: MailWorkerOptions = {}) {
  const mailWorker = createMailWorker(env, {
    onAlert: (error) => alerts.push(error),
    logger: recorder,
    consumer: FAST_CONSUMER,
    kafka: QUIET,
    ...options,
  });
  cleanup.push(() => mailWorker.close());
  await mailWorker.start();
  return mailWorker;
}

const signUp = (app: ReturnType<typeof createApp>, email: string, name = 'Jane') =>
  request(app).post('/signup').send({ email, name });

/** Records ever written to a topic (all its partitions' high watermarks), as the broker counts them. */
async function published(topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

/** The .eml files the sandbox wrote (a message is renamed into place whole, never half-written). */
function emlFiles(outbox: string): string[] {
  try {
    return readdirSync(outbox).filter((f) => f.endsWith('.eml'));
  } catch {
    return []; // the sandbox creates the folder with the first email
  }
}

const readEmail = async (outbox: string, file: string) => fromMime(await readFile(join(outbox, file)));

// Longer than waitFor's 20 s, so a wait that runs out fails with what it waited for.
describe('sign-up mail over Kafka', { timeout: 60_000 }, () => {
  it('answers 202 once Kafka has the email, sends nothing itself, and the worker delivers it', async () => {
    const { env, topic, outbox } = await deployment();
    const app = startApp(env);

    const res = await signUp(app, 'jane@example.com').expect(202);

    expect(res.body).toEqual({
      queued: {
        id: expect.any(String),
        idempotencyKey: expect.stringMatching(/^verify:jane@example\.com:[0-9a-f-]{36}$/),
        topic,
        partition: expect.any(Number),
        offset: expect.stringMatching(/^\d+$/),
      },
    });
    expect(await published(topic)).toBe(1);
    // No worker is running: nothing was sent, though the app's own service has a sandbox transport
    // on the same folder and would have written there had it sent instead of publishing.
    expect(emlFiles(outbox)).toEqual([]);
    // On the topic: the template's name and data, for the worker to render.
    const [record] = await readTopic(kafka, topic, 1);
    expect({ partition: record?.partition, offset: record?.offset }).toEqual({
      partition: res.body.queued.partition,
      offset: res.body.queued.offset,
    });
    const envelope = JSON.parse(record?.value ?? '{}');
    expect(envelope).toMatchObject({
      version: 1,
      template: 'verification',
      to: ['jane@example.com'],
      idempotencyKey: expect.stringMatching(/^verify:jane@example\.com:[0-9a-f-]{36}$/),
    });
    // The worker's configuration decides the sender.
    expect(envelope.from).toBeUndefined();
    expect(envelope.html).toBeUndefined();
    const link: string = envelope.data.verificationUrl;
    expect(link).toMatch(/^https:\/\/acme\.example\/verify\?token=[\w-]{43}$/);

    const mailWorker = await startWorker(env);
    // The worker counts an email once the sandbox has written all of its files.
    await waitFor(() => mailWorker.worker.stats.sent === 1, 'the verification email to be sent');
    expect(emlFiles(outbox)).toHaveLength(1);

    const email = await readEmail(outbox, emlFiles(outbox)[0]!);
    expect(email.to).toEqual(['jane@example.com']);
    expect(email.from).toBe('no-reply@acme.example');
    expect(email.subject).toBe('Verify your email address for Acme');
    expect(email.text).toContain(link);
    expect(email.html).toContain(`href="${link}"`);
    expect(mailWorker.worker.stats).toMatchObject({ sent: 1, retried: 0, deadLettered: 0, duplicates: 0 });
    expect(logs.filter((l) => l.fields.event === 'worker.sent')).toHaveLength(1);
    expect(alerts).toEqual([]);
  });

  it('refuses a bad address with a 400 naming the field, and publishes nothing', async () => {
    const { env, topic, outbox } = await deployment();
    const app = startApp(env);

    const res = await signUp(app, 'jane@example').expect(400);
    await signUp(app, 'jane@example.com\r\nBcc: everyone@example.com').expect(400);

    expect(res.body).toEqual({ error: 'email: "example" is not a valid domain', field: 'email' });
    expect(await published(topic)).toBe(0);
    // The address fixed, the same person signs up: the one record on the topic is theirs.
    await signUp(app, 'jane@example.com').expect(202);
    expect(await published(topic)).toBe(1);
    expect(emlFiles(outbox)).toEqual([]);
  });

  it('closes the worker cleanly: its signal handlers removed, its commits kept', async () => {
    const { env, topic, groupId, outbox } = await deployment();
    const app = startApp(env);
    const signals = () => [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];
    const before = signals();

    const first = await startWorker(env, { handleSignals: true });
    expect(signals().every((n, i) => n > before[i]!)).toBe(true);
    const jane = (await signUp(app, 'jane@example.com').expect(202)).body.queued;
    await waitFor(() => first.worker.stats.sent === 1, "Jane's email");
    expect(emlFiles(outbox)).toHaveLength(1);
    await first.close();

    expect(signals()).toEqual(before);
    expect(first.worker.stats).toMatchObject({ sent: 1, deadLettered: 0 });
    // What it sent is committed: the group resumes after Jane's record, not at it.
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const resumesAt = committed?.partitions.find((p) => p.partition === jane.partition)?.offset;
    expect(resumesAt).toBe(String(Number(jane.offset) + 1));
    await first.close(); // twice is fine
  });

  it('pauses and alerts when the mail setup is broken, dead-letters nothing, and loses nothing', async () => {
    // An SMTP relay whose certificate this worker does not trust: no email can go out until
    // someone fixes the setup.
    const relay = await startSmtpPeer({ users: { mailer: 'relay-pw' } });
    cleanup.push(() => relay.close());
    const { env, topic, outbox } = await deployment();
    const app = startApp(env);
    await signUp(app, 'jane@example.com').expect(202);

    const broken = await startWorker({
      ...env,
      MAILROOM_TRANSPORT: 'smtp',
      SMTP_HOST: relay.host,
      SMTP_PORT: String(relay.port),
      SMTP_USER: 'mailer',
      SMTP_PASSWORD: 'relay-pw',
    });
    await waitFor(() => alerts.length > 0, 'the alert');

    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ transport: 'smtp', code: 'tls', failure: 'systemic' });
    expect(broken.worker.paused).toBe(true);
    expect(broken.worker.stats).toMatchObject({ sent: 0, retried: 0, deadLettered: 0 });
    expect(relay.messages).toEqual([]);
    await broken.close();

    // Fixed (here: the sandbox again), the next worker of the group sends the email: it was never committed.
    const fixed = await startWorker(env);
    await waitFor(() => fixed.worker.stats.sent === 1, 'the email after the fix');
    expect(emlFiles(outbox)).toHaveLength(1);
    expect(fixed.worker.stats).toMatchObject({ sent: 1, deadLettered: 0 });
    expect(await published(`${topic}.dlq`)).toBe(0);
    expect(await published(`${topic}.retry`)).toBe(0);
  });
});

describe('server.ts and worker.ts', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  /** Runs an entry point as `npx tsx` does, with only the deployment's mail and Kafka settings. */
  function run(script: string, env: Record<string, string>) {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(
        ([name]) => !/^(MAILROOM_|SMTP_|MAILGUN_|KAFKA_|APP_NAME$|PORT$|PUBLIC_URL$)/.test(name),
      ),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: root,
      env: { ...clean, ...env },
    });
    children.push(child);
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk) => {
      output.stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output.stderr += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    return { child, output, exited };
  }

  it.each([
    ['kafkajs', {}],
    ["Confluent's client", { MAILROOM_KAFKA_CLIENT: 'confluent' }],
  ] as Array<[string, Record<string, string>]>)(
    'deliver a sign-up from process to process on %s, and end with code 0 on SIGTERM',
    {
      timeout: 90_000,
    },
    async (_client, clientEnv) => {
      const deployed = await deployment();
      const { topic, outbox } = deployed;
      const env = { ...deployed.env, ...clientEnv };
      const worker = run('examples/kafka/worker.ts', { ...env, HEALTH_PORT: '0' });
      const server = run('examples/kafka/server.ts', {
        ...env,
        PORT: '0',
        PUBLIC_URL: 'https://acme.example',
      });
      const listening = /Listening on (http:\/\/localhost:\d+)/;
      await waitFor(
        () => listening.test(server.output.stdout) || server.child.exitCode !== null,
        'server.ts to listen',
        30_000,
      );
      const url = listening.exec(server.output.stdout)?.[1];
      expect(url, server.output.stderr).toBeDefined();
      await waitFor(
        () => worker.output.stdout.includes('worker: consuming') || worker.child.exitCode !== null,
        'worker.ts to start',
        30_000,
      );
      expect(worker.output.stdout, worker.output.stderr).toContain(`worker: consuming ${topic}`);
      const health = /worker: health on (http:\/\/127\.0\.0\.1:\d+)/.exec(worker.output.stdout)?.[1];
      expect(health, worker.output.stdout).toBeDefined();
      let readiness = 0;
      await waitFor(
        () => readiness === 200,
        'the worker to be ready (/readyz)',
        30_000,
        async () => {
          readiness = (await fetch(`${health}/readyz`)).status;
        },
      );

      const res = await fetch(`${url}/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'jane@example.com', name: 'Jane' }),
      });
      expect(res.status).toBe(202);
      expect(((await res.json()) as { queued: { topic: string } }).queued.topic).toBe(topic);
      await waitFor(() => emlFiles(outbox).length === 1, 'the email sent by worker.ts', 30_000);
      expect((await readEmail(outbox, emlFiles(outbox)[0]!)).text).toMatch(
        /https:\/\/acme\.example\/verify\?token=[\w-]{43}/,
      );
      // What a scraper sees: the one email sent, counted on its topic.
      const metrics = await (await fetch(`${health}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^mailroom_worker_emails_sent_total\\{topic="${topic}"\\} 1$`, 'm'));

      // Nothing may be left open: each process has to end by itself once it has closed.
      worker.child.kill('SIGTERM');
      server.child.kill('SIGTERM');
      const ended = await Promise.race([
        Promise.all([worker.exited, server.exited]),
        new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 30_000)),
      ]);
      expect(ended, `worker: ${worker.output.stderr}\nserver: ${server.output.stderr}`).toEqual([
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
      const closed = worker.output.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))
        .find((line) => line.event === 'worker.closed');
      expect(closed).toMatchObject({ sent: 1, deadLettered: 0 });
      expect(server.output.stdout).toContain('server: closed');
    },
  );
});
