/**
 * `mailroom worker` as built, against the mock Kafka cluster: configured from flags and the
 * environment alone, it delivers to the sandbox when told to, logs one JSON line per outcome
 * (kafkajs's in the same shape), exits 0 on SIGTERM after committing, and exits 1 when it cannot
 * go on. It refuses to drain a topic into a transport that only captures mail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailProducer } from '../../src/kafka/index.js';
import { CLI as cli, startCli } from '../helpers/cli-child.js';
import { type KafkaCluster, startKafkaCluster } from '../helpers/kafka-cluster.js';
import { type RealKafkaCluster, startRealKafka } from '../helpers/kafka-real.js';
import { startSmtpPeer } from '../helpers/smtp-peer.js';
import { freshTopics, kafkaClient, waitFor } from '../kafka/harness.js';

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
  for (const dir of apps) await rm(dir, { recursive: true, force: true });
});

/** Folders made by {@link appWith}, removed after the file. */
const apps: string[] = [];

/** A folder of its own whose mailroom.config.mjs is `source`: the worker run there finds it. */
async function appWith(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-worker-config-'));
  apps.push(dir);
  await writeFile(join(dir, 'mailroom.config.mjs'), source);
  return dir;
}

function cleanEnv(extra: Record<string, string>) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
  );
  return { ...env, APP_NAME: 'Acme', MAILROOM_SANDBOX_DIR: outbox, ...extra };
}

describe('mailroom worker', () => {
  it.each([
    ['kafkajs', [], {}],
    ['@confluentinc/kafka-javascript (MAILROOM_KAFKA_CLIENT)', [], { MAILROOM_KAFKA_CLIENT: 'confluent' }],
    ['@confluentinc/kafka-javascript (--kafka-client)', ['--kafka-client', 'confluent'], {}],
  ] as Array<[string, string[], Record<string, string>]>)(
    'delivers from Kafka to the sandbox on %s, logs each outcome, and exits 0 on SIGTERM',
    async (_client, flags, env) => {
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
      const worker = startCli(
        ['worker', '--topic', topics.topic, '--group', topics.groupId, '--concurrency', '2', ...flags],
        cleanEnv({
          ...env,
          MAILROOM_TRANSPORT: 'sandbox',
          KAFKA_BROKERS: cluster.brokers.join(','),
          // A secret in the environment that the sandbox does not use: never printed.
          SMTP_PASSWORD: 'not-used-secret',
        }),
      );
      try {
        const before = readdirSync(outbox).filter((f) => f.endsWith('.eml')).length;
        const eml = () => readdirSync(outbox).filter((f) => f.endsWith('.eml')).length - before;
        await waitFor(() => eml() >= 5, 'five emails in the sandbox');
        expect(worker.stdout()).toContain(`consuming ${topics.topic} as group ${topics.groupId}`);
        worker.child.kill('SIGTERM');
        expect(await worker.exited).toBe(0);
      } finally {
        worker.child.kill('SIGKILL');
      }
      const lines = worker
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event?: string; level?: string; msg?: string; time?: string });
      // The first line says where mail goes and what Kafka the worker talks to.
      expect(lines[0]).toMatchObject({
        level: 'info',
        event: 'worker.starting',
        transport: expect.stringContaining('sandbox'),
        brokers: cluster.brokers,
        groupId: topics.groupId,
        topic: topics.topic,
        retryTopic: `${topics.topic}.retry`,
        deadLetterTopic: `${topics.topic}.dlq`,
      });
      expect(lines.map((l) => l.event)).toEqual(
        expect.arrayContaining(['worker.connecting', 'worker.joining', 'worker.joined', 'worker.started']),
      );
      const joined = lines.find((l) => l.event === 'worker.joined');
      expect(joined?.msg).toContain(`${topics.topic}[0,1,2]`);
      // Every JSON line, kafkajs's own included, has our shape.
      for (const line of lines) {
        expect(line).toMatchObject({
          level: expect.any(String),
          time: expect.any(String),
          event: expect.any(String),
        });
      }
      expect(lines.filter((l) => l.event === 'worker.sent')).toHaveLength(5);
      expect(lines.at(-2)).toMatchObject({ event: 'worker.closing', inFlight: 0, deadlineMs: 30_000 });
      expect(lines.at(-1)?.event).toBe('worker.closed');
      expect(worker.output()).not.toContain('not-used-secret');
    },
  );

  it('sends through the one provider configured when MAILROOM_TRANSPORT is not set', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    const captured = readdirSync(outbox).length;
    const topics = await freshTopics(cluster);
    const kafka = kafkaClient(cluster);
    const producer = createEmailProducer({ kafka, topic: topics.topic });
    await producer.publish({ template: 'welcome', data: { username: 'Jane' }, to: 'jane@example.com' });
    await producer.disconnect();
    const worker = startCli(
      ['worker', '--topic', topics.topic, '--group', topics.groupId],
      cleanEnv({
        KAFKA_BROKERS: cluster.brokers.join(','),
        SMTP_HOST: peer.host,
        SMTP_PORT: String(peer.port),
        SMTP_TLS: 'none',
        SMTP_FROM_EMAIL: 'no-reply@acme.example',
      }),
    );
    try {
      await waitFor(() => peer.messages.length >= 1, 'the email at the SMTP server');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
      await peer.close();
    }
    const first = JSON.parse(
      worker
        .stdout()
        .split('\n')
        .find((line) => line.startsWith('{')) ?? '{}',
    );
    expect(first).toMatchObject({
      event: 'worker.starting',
      transport: `smtp ${peer.host}:${peer.port} (plain text)`,
    });
    expect(readdirSync(outbox)).toHaveLength(captured); // nothing went to the sandbox
  });

  it('refuses to start without MAILROOM_TRANSPORT, rather than drain the topic into the sandbox', () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], {
      env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(',') }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('MAILROOM_TRANSPORT: is required for the worker');
    expect(r.stderr).toContain('sandbox to write .eml files on purpose');
  });

  it('refuses MAILROOM_TRANSPORT=memory outright', () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], {
      env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(','), MAILROOM_TRANSPORT: 'memory' }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('MAILROOM_TRANSPORT: memory keeps mail in the worker process');
  });

  it('refuses a blank staging allowlist rather than deliver to everyone', () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], {
      env: cleanEnv({
        KAFKA_BROKERS: cluster.brokers.join(','),
        MAILROOM_TRANSPORT: 'sandbox',
        MAILROOM_STAGING_ALLOW: ' ',
      }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('MAILROOM_STAGING_ALLOW: is set but blank, which would leave staging off');
  });

  it('names the brokers it could not reach, with the cause, as the flag that gave them, and exits 1', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'worker', '--brokers', '127.0.0.1:1', '--topic', 'mail-nowhere'],
      {
        env: cleanEnv({ MAILROOM_TRANSPORT: 'sandbox' }),
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'mailroom: --brokers: could not reach the Kafka brokers 127.0.0.1:1 (topic mail-nowhere)',
    );
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.stderr).not.toContain('unexpected error');
    const failed = r.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event?: string; kafka?: { code?: string } })
      .find((l) => l.event === 'worker.start_failed');
    expect(failed?.kafka?.code).toBe('ECONNREFUSED');
  });

  it('stops starting on SIGTERM and exits 0 without an error line, once what it connected is disconnected', async () => {
    const worker = startCli(
      ['worker', '--brokers', '127.0.0.1:1', '--topic', 'mail-sigterm'],
      cleanEnv({ MAILROOM_TRANSPORT: 'sandbox' }),
    );
    try {
      // Still connecting: kafkajs retries an unreachable broker for seconds.
      await waitFor(() => worker.stdout().includes('"event":"worker.connecting"'), 'the connecting line');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
    }
    expect(worker.stderr()).toBe('');
    expect(worker.stdout()).toContain('"event":"worker.closed"');
  }, 60_000);

  it('exits 0 on a SIGTERM sent the moment it prints its first line (the health port), every time', async () => {
    const topics = await freshTopics(cluster);
    for (let i = 0; i < 3; i++) {
      const worker = startCli(
        ['worker', '--topic', topics.topic, '--group', topics.groupId, '--health-port', '0'],
        cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: cluster.brokers.join(',') }),
      );
      try {
        await waitFor(() => worker.stdout().includes('"event":"worker.health"'), 'the health line');
        worker.child.kill('SIGTERM');
        expect(await worker.exited, `run ${i + 1}: ${worker.output()}`).toBe(0);
      } finally {
        worker.child.kill('SIGKILL');
      }
      expect(worker.stderr()).toBe('');
    }
  }, 60_000);

  it('consumes the delay topics with --delay-topics, and refuses to start until they exist, naming them', async () => {
    const { topic, groupId } = await freshTopics(cluster);
    const delayTopics = ['1m', '10m', '1h', '6h'].map((tier) => `${topic}.delay.${tier}`);
    const run = () =>
      spawnSync(process.execPath, [cli, 'worker', '--topic', topic, '--group', groupId, '--delay-topics'], {
        env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(','), MAILROOM_TRANSPORT: 'sandbox' }),
        encoding: 'utf8',
        timeout: 15_000,
      });
    // Asked of the cluster before joining: the mock would otherwise create them on demand.
    const refused = run();
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`the Kafka topics ${delayTopics.join(', ')} do not exist`);
    for (const name of delayTopics) await cluster.createTopic(name, 3);
    // Stopped by the timeout's SIGTERM after a while: it closes gracefully, its log lines on stdout.
    const r = run();
    const joining = r.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event?: string; topics?: string[] })
      .find((l) => l.event === 'worker.joining');
    expect(joining?.topics).toEqual([topic, `${topic}.retry`, ...delayTopics]);
  });

  it('refuses a Kafka client it does not know, naming the variable or the flag', () => {
    const fromEnv = spawnSync(process.execPath, [cli, 'worker'], {
      env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(','), MAILROOM_KAFKA_CLIENT: 'rdkafka' }),
      encoding: 'utf8',
    });
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).toContain('MAILROOM_KAFKA_CLIENT: must be kafkajs or confluent');
    const fromFlag = spawnSync(process.execPath, [cli, 'worker', '--kafka-client', 'node-rdkafka'], {
      env: cleanEnv({ KAFKA_BROKERS: cluster.brokers.join(',') }),
      encoding: 'utf8',
    });
    expect(fromFlag.status).toBe(1);
    expect(fromFlag.stderr).toContain('--kafka-client: must be kafkajs or confluent');
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
    // The flag gave the value, so the flag is named, and the entry at fault quoted.
    expect(r.stderr).toBe('mailroom: --brokers: "http://evil" is a URL: give host:port without http://\n');
  });

  it('names the flag that gave a bad value, and refuses an empty one rather than use the default', () => {
    const env = cleanEnv({
      KAFKA_BROKERS: cluster.brokers.join(','),
      MAILROOM_TRANSPORT: 'sandbox',
      MAILROOM_KAFKA_TOPIC: 'orders.email',
    });
    const bad = spawnSync(process.execPath, [cli, 'worker', '--concurrency', 'abc'], {
      env,
      encoding: 'utf8',
    });
    expect([bad.status, bad.stderr]).toEqual([
      1,
      expect.stringContaining('--concurrency: must be a whole number from 1 to 9999, not "abc"'),
    ]);
    // `--topic "$UNSET"` would otherwise consume notifications.email as mailroom-email-worker.
    for (const flag of ['--topic', '--group', '--brokers']) {
      const empty = spawnSync(process.execPath, [cli, 'worker', flag, ''], { env, encoding: 'utf8' });
      expect([empty.status, empty.stderr]).toEqual([2, expect.stringContaining(`${flag} is empty`)]);
    }
  });

  it('says the concurrency it takes is 1 to 9999, from the flag or the variable', () => {
    const env = cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox' });
    const flag = spawnSync(process.execPath, [cli, 'worker', '--concurrency', '10000'], {
      env,
      encoding: 'utf8',
    });
    expect([flag.status, flag.stderr]).toEqual([
      1,
      'mailroom: --concurrency: must be a whole number from 1 to 9999, not "10000"\n',
    ]);
    const variable = spawnSync(process.execPath, [cli, 'worker'], {
      env: { ...env, MAILROOM_WORKER_CONCURRENCY: '10000' },
      encoding: 'utf8',
    });
    expect([variable.status, variable.stderr]).toEqual([
      1,
      'mailroom: MAILROOM_WORKER_CONCURRENCY: must be a whole number from 1 to 9999, not "10000"\n',
    ]);
  });

  it("names the config file's worker.brokers, not KAFKA_BROKERS, for brokers the file gave", async () => {
    const env = cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox' });
    const bad = spawnSync(process.execPath, [cli, 'worker'], {
      cwd: await appWith("export default { worker: { brokers: ['kafka-1'] } };"),
      env,
      encoding: 'utf8',
    });
    expect([bad.status, bad.stderr]).toEqual([
      1,
      'mailroom: mailroom.config.mjs: worker.brokers[0]: "kafka-1" is not host:port (no port: kafka-1:9092, say)\n',
    ]);
    // Brokers the file gave that cannot be reached: the file's field is at fault, not the variable.
    const unreachable = spawnSync(process.execPath, [cli, 'worker', '--topic', 'mail-nowhere'], {
      cwd: await appWith("export default { worker: { brokers: ['127.0.0.1:1'] } };"),
      env: { ...env, KAFKA_BROKERS: cluster.brokers.join(',') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(
      /^mailroom: mailroom\.config\.mjs: worker\.brokers: could not reach the Kafka brokers 127\.0\.0\.1:1 \(topic mail-nowhere\)/,
    );
  });

  it.each([
    [
      'the retry topic is the topic',
      ['--retry-topic', 'notifications.email'],
      {},
      '--retry-topic: "notifications.email" is also the topic (the default)',
    ],
    [
      'the dead-letter topic is the topic',
      ['--dlq-topic', 'orders.email'],
      { MAILROOM_KAFKA_TOPIC: 'orders.email' },
      '--dlq-topic: "orders.email" is also the topic (MAILROOM_KAFKA_TOPIC)',
    ],
    [
      'the retry and dead-letter topics are one',
      ['--topic', 'orders.email', '--retry-topic', 'orders.later', '--dlq-topic', 'orders.later'],
      {},
      '--dlq-topic: "orders.later" is also the retry topic (--retry-topic)',
    ],
    [
      'the retry topic is a delay topic',
      ['--topic', 'orders.email', '--retry-topic', 'orders.email.delay.1m', '--delay-topics'],
      {},
      '--retry-topic: "orders.email.delay.1m" is also a delay topic (--delay-topics)',
    ],
  ])(
    'refuses topics that clash (%s), naming what gave them, as a config error',
    (_, flags, vars, message) => {
      const r = spawnSync(process.execPath, [cli, 'worker', ...flags], {
        env: cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox', ...vars }),
        encoding: 'utf8',
      });
      expect([r.status, r.stderr]).toEqual([
        1,
        `mailroom: ${message}: the topic, the retry topic, the dead-letter topic and the delay topics must all differ\n`,
      ]);
    },
  );

  const long = `orders.${'e'.repeat(238)}`; // 245 characters: its .retry is 251, over Kafka's 249
  it.each([
    [
      ['--topic', 'orders email'],
      {},
      '--topic: "orders email" is not a Kafka topic name: " " is not allowed',
    ],
    [
      ['--retry-topic', 'orders/later'],
      {},
      '--retry-topic: "orders/later" is not a Kafka topic name: "/" is not allowed',
    ],
    [['--dlq-topic', '..'], {}, '--dlq-topic: ".." cannot be a Kafka topic name'],
    [
      ['--topic', long],
      {},
      '--topic: the retry topic, made from it, is 251 characters long; a Kafka topic name has at most 249',
    ],
    [
      [],
      { MAILROOM_KAFKA_TOPIC: long },
      'MAILROOM_KAFKA_TOPIC: the retry topic, made from it, is 251 characters long; a Kafka topic name has at most 249',
    ],
  ])('refuses a topic name Kafka cannot have (%o %o), naming what gave it', (flags, vars, message) => {
    const r = spawnSync(process.execPath, [cli, 'worker', ...flags], {
      env: cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox', ...vars }),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toBe(
      `mailroom: ${message}${message.endsWith('allowed') ? ' (only letters, digits, ".", "_" and "-")' : ''}\n`,
    );
  });

  it('refuses a config file whose retry topic is the topic, naming its field', async () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], {
      cwd: await appWith("export default { worker: { topic: 'orders.email', retryTopic: 'orders.email' } };"),
      env: cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox' }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^mailroom: mailroom\.config\.mjs: worker\.retryTopic: "orders\.email" is also the topic \(mailroom\.config\.mjs: worker\.topic\)/,
    );
  });

  it('usage errors point to mailroom worker --help, and a misspelt flag gets the one meant', () => {
    const env = cleanEnv({ KAFKA_BROKERS: '127.0.0.1:1', MAILROOM_TRANSPORT: 'sandbox' });
    const misspelt = spawnSync(process.execPath, [cli, 'worker', '--concurency', '3'], {
      env,
      encoding: 'utf8',
    });
    expect([misspelt.status, misspelt.stderr]).toEqual([
      2,
      "mailroom: Unknown option '--concurency'; did you mean --concurrency?\nRun 'mailroom worker --help' for usage.\n",
    ]);
    const extra = spawnSync(process.execPath, [cli, 'worker', 'now'], { env, encoding: 'utf8' });
    expect([extra.status, extra.stderr]).toEqual([
      2,
      `mailroom: unexpected argument "now"\nRun 'mailroom worker --help' for usage.\n`,
    ]);
    // Far from every flag of the worker: parseArgs' own words, no guess.
    const far = spawnSync(process.execPath, [cli, 'worker', '--bogus'], { env, encoding: 'utf8' });
    expect(far.stderr).toMatch(/^mailroom: Unknown option '--bogus'\. /);
    expect(far.stderr).not.toContain('did you mean');
  });

  it('lists every flag it takes in the synopsis of its --help', () => {
    const page = spawnSync(process.execPath, [cli, 'worker', '--help'], { encoding: 'utf8' }).stdout;
    const synopsis = page.split('\n')[0] ?? '';
    const flags = new Set(page.match(/^ {2}--[a-z-]+/gm)?.map((flag) => flag.trim()));
    expect(flags).toContain('--health-host');
    for (const flag of flags) expect(synopsis.includes(`[${flag}`) || flag).toBe(true);
  });

  it('refuses a provider in its test mode (nothing delivered), naming the variable', () => {
    const r = spawnSync(process.execPath, [cli, 'worker'], {
      env: cleanEnv({
        KAFKA_BROKERS: cluster.brokers.join(','),
        SENDGRID_API_KEY: 'SG.key',
        SENDGRID_FROM_ADDRESS: 'no-reply@acme.example',
        SENDGRID_SANDBOX_MODE: 'true',
      }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'SENDGRID_SANDBOX_MODE: puts sendgrid in its test mode, which delivers nothing',
    );
  });

  it('a start the brokers refuse (SASL the mock does not speak) exits 1 at once, the cause in one line', () => {
    const r = spawnSync(process.execPath, [cli, 'worker', '--topic', 'sasl-refused'], {
      env: cleanEnv({
        KAFKA_BROKERS: cluster.brokers.join(','),
        MAILROOM_TRANSPORT: 'sandbox',
        KAFKA_SSL: 'false',
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'mailer',
        KAFKA_SASL_PASSWORD: 'sasl-secret',
      }),
      encoding: 'utf8',
      timeout: 30_000,
    });
    // Not killed by the timeout (it used to hang on a socket kafkajs left open, then exit 0 on SIGTERM).
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/TypeError|startsWith/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toContain('sasl-secret');
  });

  it('serves /livez, /readyz and /metrics on --health-port and says where, one JSON line each', async () => {
    const topics = await freshTopics(cluster);
    const kafka = kafkaClient(cluster);
    const producer = createEmailProducer({ kafka, topic: topics.topic });
    for (let i = 0; i < 3; i++) {
      await producer.publish({ template: 'welcome', data: { username: `U${i}` }, to: `u-${i}@example.com` });
    }
    await producer.disconnect();
    const captured = readdirSync(outbox).filter((f) => f.endsWith('.eml')).length;
    const worker = startCli(
      ['worker', '--topic', topics.topic, '--group', topics.groupId, '--health-port', '0'],
      cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: cluster.brokers.join(',') }),
    );
    const lines = () =>
      worker
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { event?: string; url?: string; [field: string]: unknown });
    try {
      await waitFor(() => lines().some((l) => l.event === 'worker.health'), 'the health line');
      const url = lines().find((l) => l.event === 'worker.health')?.url as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/livez`)).status).toBe(200);
      let ready = 0;
      await waitFor(
        () => ready === 200,
        '/readyz to answer 200',
        20_000,
        async () => {
          ready = (await fetch(`${url}/readyz`)).status;
        },
      );
      const eml = () => readdirSync(outbox).filter((f) => f.endsWith('.eml')).length;
      await waitFor(() => eml() >= captured + 3, 'three emails in the sandbox');
      let metrics = '';
      await waitFor(
        () => metrics.includes(`mailroom_worker_emails_sent_total{topic="${topics.topic}"} 3`),
        'three sent in /metrics',
        20_000,
        async () => {
          metrics = await (await fetch(`${url}/metrics`)).text();
        },
      );
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
    }
    // What it does while it starts, in order: where its probes are (open before it joins, so they
    // see 503 meanwhile), where it sends and which Kafka, the partitions it got, then that it runs.
    const events = lines().map((l) => l.event);
    const at = (event: string) => events.indexOf(event);
    expect(at('worker.health')).toBe(0);
    expect(at('worker.starting')).toBe(1);
    expect(at('worker.joined')).toBeGreaterThan(at('worker.starting'));
    expect(at('worker.running')).toBeGreaterThan(at('worker.joined'));
    expect(lines().find((l) => l.event === 'worker.joined')).toMatchObject({
      groupId: topics.groupId,
      assigned: { [topics.topic]: expect.arrayContaining([0, 1, 2]) },
    });
    expect(lines().find((l) => l.event === 'worker.running')).toMatchObject({
      brokers: cluster.brokers,
      groupId: topics.groupId,
      topic: topics.topic,
      health: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/),
    });
  });

  it('refuses a --health-port that is taken or not a port, and exits rather than hang on an open port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = spawnSync(process.execPath, [cli, 'worker', '--health-port', String(port)], {
        env: cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: cluster.brokers.join(',') }),
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`mailroom: --health-port: 127.0.0.1:${port} is already in use (EADDRINUSE)`);
      expect(r.stdout).not.toContain('worker.connecting');
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
    // Kafka unreachable after the port opened: it closes the port and exits 1 rather than hang.
    const unreachable = spawnSync(
      process.execPath,
      [cli, 'worker', '--brokers', '127.0.0.1:1', '--health-port', '0'],
      { env: cleanEnv({ MAILROOM_TRANSPORT: 'sandbox' }), encoding: 'utf8', timeout: 60_000 },
    );
    expect(unreachable.status).toBe(1);
    expect(unreachable.stdout).toContain('"event":"worker.health"');
    const r = spawnSync(process.execPath, [cli, 'worker', '--health-port', '80a'], {
      env: cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: cluster.brokers.join(',') }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('mailroom: --health-port: must be a port number from 0 to 65535, not "80a"');
  });

  it('names --health-host when it is not an address of this machine, or no host at all', () => {
    const env = cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: '127.0.0.1:1' });
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so the bind fails before Kafka is tried.
    const foreign = spawnSync(
      process.execPath,
      [cli, 'worker', '--health-port', '0', '--health-host', '192.0.2.1'],
      { env, encoding: 'utf8' },
    );
    expect([foreign.status, foreign.stderr]).toEqual([
      1,
      "mailroom: --health-host: 192.0.2.1:0 is not an address of this machine (EADDRNOTAVAIL): the worker's health endpoints need an address of this machine (127.0.0.1 is one)\n",
    ]);
    // .invalid never resolves (RFC 6761): the lookup fails, whether or not a DNS server answers.
    const unknown = spawnSync(
      process.execPath,
      [cli, 'worker', '--health-port', '0', '--health-host', 'no-such-host.invalid'],
      { env, encoding: 'utf8' },
    );
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(
      /^mailroom: --health-host: no-such-host\.invalid:0 names no host this machine can find/,
    );
  });

  // Last in the file: it leaves the group coordinator refusing joins until its errors are used up.
  it('exits 1 when the worker cannot go on, so a supervisor restarts it', async () => {
    const topics = await freshTopics(cluster);
    // Every join refused: the first and the five restarts the worker makes before it gives up.
    await cluster.pushRequestErrors(11, 30, 6);
    const worker = startCli(
      ['worker', '--topic', topics.topic, '--group', topics.groupId],
      cleanEnv({ MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: cluster.brokers.join(',') }),
    );
    try {
      expect(await worker.exited).toBe(1);
    } finally {
      worker.child.kill('SIGKILL');
    }
    expect(worker.stderr()).toContain('mailroom: the worker stopped');
    expect(worker.stdout()).toContain('"event":"worker.fatal"');
  }, 60_000);
});

describe('mailroom worker on a real Kafka broker (auto-creation off)', () => {
  let real: RealKafkaCluster;
  beforeAll(async () => {
    real = await startRealKafka({ nodes: 1 });
  });
  afterAll(async () => {
    await real?.stop();
  });

  it.each([
    ['kafkajs', {}],
    ['@confluentinc/kafka-javascript', { MAILROOM_KAFKA_CLIENT: 'confluent' }],
  ] as Array<[string, Record<string, string>]>)(
    'exits 1 on %s when its topic does not exist, naming it',
    async (_client, env) => {
      const topic = `mail-missing-${Date.now()}`;
      const worker = startCli(
        ['worker', '--topic', topic],
        cleanEnv({ ...env, MAILROOM_TRANSPORT: 'sandbox', KAFKA_BROKERS: real.brokers.join(',') }),
      );
      try {
        expect(await worker.exited).toBe(1);
      } finally {
        worker.child.kill('SIGKILL');
      }
      expect(worker.stderr().trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(`^mailroom: the Kafka topics ${topic}, ${topic}\\.retry.* do not exist`),
        ),
      ]);
      expect(worker.stdout()).toContain('"event":"worker.start_failed"');
    },
    60_000,
  );
});
