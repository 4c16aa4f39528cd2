import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/index.js';
import {
  confluentLogger,
  createEmailProducer,
  createEmailWorker,
  isKafkaUnavailableError,
  kafkaConfigFromEnv,
} from '../../src/kafka/index.js';
import { CLI, startCli } from '../helpers/cli-child.js';
import { type RealKafkaCluster, startRealKafka } from '../helpers/kafka-real.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { clientUnderTestFrom } from './clients.js';
import {
  email,
  FAST_CONSUMER,
  freshTopics,
  KAFKA_CLIENT,
  kafkaClient,
  scriptedTransport,
  serviceFor,
  waitFor,
} from './harness.js';

let pki: TestCa;
let cluster: RealKafkaCluster;
const cleanup: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  pki = await makeTestCa();
  cluster = await startRealKafka({ tls: { keystore: pki.server.keystore, truststore: pki.ca } });
  console.info(`real Kafka with a TLS listener: started in ${cluster.startupMs} ms`);
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
afterAll(async () => {
  await cluster?.stop();
  await pki?.remove();
});

/** The TLS variables of a worker with a client certificate whose key is encrypted. */
const mutualTls = () => ({
  KAFKA_BROKERS: cluster.tlsBrokers.join(','),
  KAFKA_SSL_CA_LOCATION: pki.ca,
  KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
  KAFKA_SSL_KEY_LOCATION: pki.client.encryptedKey,
  KAFKA_SSL_KEY_PASSWORD: pki.clientKeyPassword,
});

/** A logger that keeps every line, for the Confluent client's own log (where librdkafka says why). */
function keptLines() {
  const lines: string[] = [];
  const keep = (fields: object, msg?: string) => lines.push(`${msg ?? ''} ${JSON.stringify(fields)}`);
  const logger: Logger = { info: keep, warn: keep, error: keep };
  return { lines, logger };
}

/**
 * `mailroom worker` as built (on {@link KAFKA_CLIENT}), consuming `topics`, configured from `env`
 * with the test process's own mail and Kafka variables left out; all it prints in `output()`.
 */
function startWorkerCli(topics: { topic: string; groupId: string }, env: Record<string, string>) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|APP_NAME|KAFKA_)/.test(k)),
  );
  const worker = startCli(['worker', '--topic', topics.topic, '--group', topics.groupId], {
    ...inherited,
    APP_NAME: 'Acme',
    MAILROOM_TRANSPORT: 'sandbox',
    MAILROOM_KAFKA_CLIENT: KAFKA_CLIENT,
    ...env,
  });
  cleanup.push(() => worker.child.kill('SIGKILL'));
  return worker;
}

describe(`Kafka over mutual TLS from the environment (${KAFKA_CLIENT})`, { timeout: 90_000 }, () => {
  it('publishes, and a worker sends the email, with a private CA and a client certificate', async () => {
    const { client } = kafkaConfigFromEnv(mutualTls());
    expect(client.ssl).toMatchObject({ passphrase: pki.clientKeyPassword });
    const kafka = clientUnderTestFrom(client);
    const topics = await freshTopics(cluster, 1);
    const producer = createEmailProducer({ kafka, topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    const { idempotencyKey } = await producer.publish(email(1));

    const transport = scriptedTransport();
    const worker = createEmailWorker({
      kafka,
      brokers: client.brokers,
      service: serviceFor(transport),
      consumer: FAST_CONSUMER,
      ...topics,
    });
    cleanup.push(() => worker.close());
    await worker.start();
    await waitFor(() => transport.delivered.length >= 1, 'the email sent over TLS', 30_000);
    expect(transport.delivered.map((m) => m.idempotencyKey)).toEqual([idempotencyKey]);
  });

  it('is refused without a client certificate, and refuses a broker its CA did not sign: an error naming why, not a hang', async () => {
    const topics = await freshTopics(cluster, 1);
    const attempt = async (env: Record<string, string>) => {
      const { client } = kafkaConfigFromEnv({ KAFKA_BROKERS: cluster.tlsBrokers.join(','), ...env });
      const kept = keptLines();
      const kafka = clientUnderTestFrom(client, { logger: confluentLogger(kept.logger), logLevel: 1 });
      const worker = createEmailWorker({
        kafka,
        brokers: client.brokers,
        service: serviceFor(scriptedTransport()),
        consumer: FAST_CONSUMER,
        ...topics,
      });
      cleanup.push(() => worker.close());
      const started = Date.now();
      const error = await worker.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      // kafkajs says why in the error; librdkafka says it in its log, and rejects with "broker
      // transport failure" once its 30 s for the first metadata are up.
      const said = KAFKA_CLIENT === 'kafkajs' ? String((error as Error)?.message) : kept.lines.join('\n');
      return { error, said, ms: Date.now() - started };
    };
    const withoutCertificate = { KAFKA_SSL_CA_LOCATION: pki.ca };
    const systemCas = {
      KAFKA_SSL: 'true',
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.key,
    };
    const cliEnv = { KAFKA_BROKERS: cluster.tlsBrokers.join(','), MAILROOM_SANDBOX_DIR: pki.dir };
    // All at once: on the Confluent client each takes those 30 s.
    const cliStarted = Date.now();
    const cliWithout = startWorkerCli(topics, { ...cliEnv, ...withoutCertificate });
    const cliUntrusting = startWorkerCli(topics, { ...cliEnv, ...systemCas });
    const [noCertificate, untrustedBroker] = await Promise.all([
      attempt(withoutCertificate),
      attempt(systemCas),
      cliWithout.exited,
      cliUntrusting.exited,
    ]);
    for (const outcome of [noCertificate, untrustedBroker]) {
      expect(isKafkaUnavailableError(outcome.error), String(outcome.error)).toBe(true);
      expect((outcome.error as Error).message).toContain(cluster.tlsBrokers[0]);
      expect(outcome.ms).toBeLessThan(45_000);
    }
    // The broker's TLS alert: it asked for a certificate and got none.
    expect(noCertificate.said).toMatch(/alert (bad certificate|certificate required)/);
    // The broker's certificate is signed by the test CA, which the system does not trust.
    expect(untrustedBroker.said).toMatch(/certificate verify failed|unable to verify the first certificate/);
    // mailroom worker exits 1 with the cause (librdkafka's log line on the Confluent client) and
    // the variable to look at, not KAFKA_BROKERS.
    expect(Date.now() - cliStarted).toBeLessThan(45_000);
    expect(cliWithout.child.exitCode, cliWithout.output()).toBe(1);
    expect(cliWithout.output().trim().split('\n').at(-1)).toMatch(
      /^mailroom: KAFKA_SSL_CERTIFICATE_LOCATION: could not reach the Kafka brokers .*alert (bad certificate|certificate required).*The broker refused this client's certificate, or asked for one and got none/,
    );
    expect(cliUntrusting.child.exitCode, cliUntrusting.output()).toBe(1);
    expect(cliUntrusting.output().trim().split('\n').at(-1)).toMatch(
      /^mailroom: KAFKA_SSL_CA_LOCATION: could not reach the Kafka brokers .*(certificate verify failed|unable to verify the first certificate).*The broker's certificate is not signed by a CA this client trusts/,
    );
  });

  it('mailroom worker names KAFKA_SSL when it speaks plain Kafka to a TLS listener, or TLS to a plain one: the commonest TLS mistakes', async () => {
    const topics = await freshTopics(cluster, 1);
    // All at once: on the Confluent client each takes librdkafka's 30 s for the first metadata.
    const started = Date.now();
    const plainToTls = startWorkerCli(topics, {
      KAFKA_BROKERS: cluster.tlsBrokers.join(','),
      MAILROOM_SANDBOX_DIR: pki.dir,
    });
    const tlsToPlain = startWorkerCli(topics, {
      KAFKA_BROKERS: cluster.brokers.join(','),
      KAFKA_SSL_CA_LOCATION: pki.ca,
      MAILROOM_SANDBOX_DIR: pki.dir,
    });
    await Promise.all([plainToTls.exited, tlsToPlain.exited]);
    expect(Date.now() - started).toBeLessThan(60_000);
    const last = (run: typeof plainToTls) => run.output().trim().split('\n').at(-1);
    expect(plainToTls.child.exitCode, plainToTls.output()).toBe(1);
    // kafkajs sees the connection closed; librdkafka logs nothing and says "broker transport failure".
    expect(last(plainToTls)).toMatch(
      KAFKA_CLIENT === 'kafkajs'
        ? /^mailroom: KAFKA_SSL: could not reach the Kafka brokers .*The broker closed the connection when this client spoke plain Kafka to it: if .* is a TLS listener, set KAFKA_SSL=true$/
        : /^mailroom: KAFKA_BROKERS: could not reach the Kafka brokers .*broker transport failure\. Check the hosts and ports; if .* is a TLS listener, set KAFKA_SSL=true$/,
    );
    expect(tlsToPlain.child.exitCode, tlsToPlain.output()).toBe(1);
    expect(last(tlsToPlain)).toMatch(
      /^mailroom: KAFKA_SSL: could not reach the Kafka brokers .*The broker did not answer in TLS: if .* is a plain listener, turn TLS off/,
    );
  });

  it('an email producer speaking plain Kafka to a TLS listener, or TLS to a plain one: connect() and publish() say Kafka could not be reached, naming the brokers', async () => {
    const topics = await freshTopics(cluster, 1);
    const attempt = async (env: Record<string, string>) => {
      const { client } = kafkaConfigFromEnv(env);
      const producer = createEmailProducer({
        kafka: clientUnderTestFrom(client),
        brokers: client.brokers,
        topic: topics.topic,
      });
      cleanup.push(() => producer.disconnect());
      const connecting = await producer.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      const publishing = await producer.publish(email(3)).then(
        () => undefined,
        (e: unknown) => e,
      );
      return { brokers: client.brokers, connecting, publishing };
    };
    // Both at once: on the Confluent client each takes librdkafka's 30 s for the first metadata.
    const outcomes = await Promise.all([
      attempt({ KAFKA_BROKERS: cluster.tlsBrokers.join(',') }),
      attempt({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_SSL_CA_LOCATION: pki.ca }),
    ]);
    for (const { brokers, connecting, publishing } of outcomes) {
      expect(isKafkaUnavailableError(connecting), String(connecting)).toBe(true);
      expect((connecting as Error).message).toMatch(
        new RegExp(`^could not reach the Kafka brokers ${brokers.join(',')} \\(topic ${topics.topic}\\): `),
      );
      expect(publishing).toMatchObject({ name: 'EmailError', code: 'network', transport: 'kafka' });
      expect(isKafkaUnavailableError((publishing as Error).cause)).toBe(true);
    }
  });

  it('mailroom worker delivers over mutual TLS from the environment alone (its CA a folder), and says so without a secret', async () => {
    const topics = await freshTopics(cluster, 1);
    const outbox = await mkdtemp(join(tmpdir(), 'mailroom-worker-tls-'));
    cleanup.push(() => rm(outbox, { recursive: true, force: true }));
    // Published over the plain listener: only the worker's side is under test here.
    const producer = createEmailProducer({ kafka: kafkaClient(cluster), topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    await producer.publish(email(2));

    // The CA as a folder (librdkafka's ssl.ca.location may name one), its file there under a hashed name too.
    const caFolder = await mkdtemp(join(pki.dir, 'cas-'));
    await symlink(pki.ca, join(caFolder, 'ca.pem'));
    await symlink(pki.ca, join(caFolder, '5ed36f99.0'));
    const worker = startWorkerCli(topics, {
      ...mutualTls(),
      KAFKA_SSL_CA_LOCATION: caFolder,
      MAILROOM_SANDBOX_DIR: outbox,
    });
    const emails = () => readdirSync(outbox).filter((f) => f.endsWith('.eml'));
    await waitFor(
      () => emails().length > 0 || worker.child.exitCode !== null,
      'an email in the sandbox',
      45_000,
    );
    expect(emails(), worker.output()).toHaveLength(1);
    await waitFor(() => worker.output().includes('"worker.running"'), 'the running line', 10_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const output = worker.output();
    const running = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event?: string; msg?: string })
      .find((line) => line.event === 'worker.running');
    expect(running).toMatchObject({
      brokers: cluster.tlsBrokers,
      tls: { ca: 'CN=mailroom test CA', clientCertificate: 'CN=mailroom-worker' },
    });
    expect(running?.msg).toContain(
      `from ${cluster.tlsBrokers.join(',')} over TLS (private CA CN=mailroom test CA; client certificate CN=mailroom-worker)`,
    );
    expect(output).not.toContain(pki.clientKeyPassword);
    expect(output).not.toContain('PRIVATE KEY');
  });
});
