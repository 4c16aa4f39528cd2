/**
 * `mailroom worker`: a Kafka email worker from flags, the config file and the environment, in that
 * order. Brokers, group and topics from flags, the config's `worker`, or KAFKA_* / MAILROOM_KAFKA_*;
 * the transport from the config or the usual variables (one that captures only when
 * MAILROOM_TRANSPORT=sandbox names it, never memory). One JSON log line per outcome on
 * stdout, kafkajs's own lines in the same shape; SIGTERM or SIGINT closes it gracefully (exit 0);
 * a worker that cannot go on exits 1, so a supervisor restarts it.
 */

import { TRANSPORT_NAMES, testModeVariable } from '../config.js';
import { ConfigError, isConfigError } from '../errors.js';
import { confluentClientConfig, type KafkaFlavor } from '../kafka/client.js';
import { describeKafkaSecurity, type KafkaClientConfig } from '../kafka/config.js';
import { isKafkaUnavailableError, type KafkaUnavailableError } from '../kafka/failures.js';
import { serveWorkerHealth, type WorkerHealthServer } from '../kafka/health.js';
import type { KafkaClientLike } from '../kafka/index.js';
import { confluentLogger, kafkaLogCreator } from '../kafka/log.js';
import { createEmailWorker, type EmailWorker } from '../kafka/worker.js';
import { type Logger, oneLine } from '../log.js';
import { mayCapture, type Transport } from '../transport.js';
import { isHoldTransport } from '../transports/hold.js';
import type { LoadedConfig } from './config-file.js';
import { appTemplates, buildService, cliServiceOptions } from './service.js';
import { type WorkerFlags, workerSettings } from './worker-settings.js';

/** The transports that deliver, for messages that ask for one. */
const DELIVERING = TRANSPORT_NAMES.filter((name) => name !== 'sandbox' && name !== 'memory').join(', ');

export async function runWorker(
  flags: WorkerFlags,
  out: (line: string) => void,
  config?: LoadedConfig,
): Promise<void> {
  const settings = workerSettings(flags, config);
  const { kafka: kafkaConfig, retryTopic, deadLetterTopic, delayTopics } = settings;
  // Without a Kafka client nothing else matters: say how to install it first.
  const makeClient = await loadKafkaClient(kafkaConfig.clientLibrary);
  const options = cliServiceOptions(config);
  const where = config?.config.transport
    ? `${config.name} sets transport ${options.transport.name} and `
    : '';
  const transportName = process.env.MAILROOM_TRANSPORT?.trim() || undefined;
  if (transportName === 'memory') {
    throw new ConfigError(
      'MAILROOM_TRANSPORT',
      `memory keeps mail in the worker process, which then commits it: the emails would be gone. Name a provider that delivers (${DELIVERING}), or sandbox to write .eml files`,
    );
  }
  // The worker commits what it "sends": capturing must be asked for by name, never a default. The
  // hold (MAILROOM_HOLD, or holdTransport in the config) is asked for by name and keeps every
  // email until a person releases it, so it may take the topic.
  const holds = isHoldTransport(options.transport);
  if (mayCapture(options.transport) && transportName !== 'sandbox' && !holds) {
    throw captureRefused(options.transport, where);
  }
  // Every template compiled now: a broken one stops the worker at start, not at its first email.
  const service = buildService(options, appTemplates(config, flags.templates), config);

  const logger: Logger = {
    info: (fields, msg) =>
      out(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...fields })),
    warn: (fields, msg) =>
      out(JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg, ...fields })),
    error: (fields, msg) =>
      out(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg, ...fields })),
  };
  // librdkafka says why it could not connect only in its log (facility FAIL: a TLS alert, say);
  // the error it rejects with says "broker transport failure". Kept for the message on exit.
  let clientFailure: string | undefined;
  const kafka = makeClient(kafkaConfig.client, {
    ...logger,
    error: (fields, msg) => {
      if ((fields as { fac?: unknown }).fac === 'FAIL') clientFailure = msg;
      logger.error(fields, msg);
    },
  });
  const worker = createEmailWorker({
    kafka,
    brokers: kafkaConfig.client.brokers,
    service,
    // Only reached with MAILROOM_TRANSPORT=sandbox named explicitly (memory was refused above), or the hold.
    allowCapturingTransport: transportName === 'sandbox' || holds,
    groupId: kafkaConfig.groupId,
    topic: kafkaConfig.topic,
    ...(retryTopic ? { retryTopic } : {}),
    ...(deadLetterTopic ? { deadLetterTopic } : {}),
    ...(delayTopics ? { delayTopics: true } : {}),
    concurrency: kafkaConfig.concurrency,
    logger,
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    worker
      .close()
      .then(() => service.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  // Before the first line a supervisor may act on (the health port's): a signal with no listener
  // yet ends the process by the default action, killed rather than closed.
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const unwatch = () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  };
  // Open before start(): probes see 503 while the worker joins, and a busy port stops it before Kafka.
  const health = await serveHealth(worker, flags, logger, service).catch((error: unknown) => {
    unwatch(); // refused: a later SIGTERM must not exit 0
    throw error;
  });
  try {
    await worker.start();
  } catch (error) {
    // A signal while starting: the worker stopped starting and closed, and `stop` exits 0.
    if (stopping) return;
    // Not started: a later SIGTERM must not exit 0 as if the worker had closed cleanly.
    unwatch();
    await service.close().catch(() => {});
    await health?.close(); // an open port would keep the process from exiting
    if (isKafkaUnavailableError(error))
      throw unreachable(error, kafkaConfig.client, clientFailure, settings.named('KAFKA_BROKERS'));
    throw error;
  }
  // The worker stopped because it cannot go on (its `fatal` line is logged): exit 1 for the supervisor.
  worker.untilClosed().catch((error: unknown) => {
    process.stderr.write(`mailroom: the worker stopped: ${(error as Error)?.message ?? String(error)}\n`);
    service.close().finally(() => process.exit(1));
  });
  const transport = service.transport.describe?.() ?? service.transport.name;
  const security = describeKafkaSecurity(kafkaConfig.client);
  logger.info(
    {
      event: 'worker.running',
      brokers: kafkaConfig.client.brokers,
      ...security.fields,
      groupId: kafkaConfig.groupId,
      topic: kafkaConfig.topic,
      transport,
      ...(health ? { health: health.url } : {}),
    },
    `mailroom worker: consuming ${kafkaConfig.topic} as group ${kafkaConfig.groupId} from ${kafkaConfig.client.brokers.join(',')} ${security.text}, sending via ${transport}`,
  );
}

/**
 * `--health-port`: /livez, /readyz and, when prom-client is installed, /metrics. Without
 * prom-client the probes still run, and a warning says how to get the metrics.
 */
async function serveHealth(
  worker: EmailWorker,
  flags: WorkerFlags,
  logger: Logger,
  service: { close(): Promise<void> },
): Promise<WorkerHealthServer | undefined> {
  const portText = flags['health-port'];
  if (portText === undefined) {
    if (flags['health-host'] !== undefined)
      throw new ConfigError('--health-host', 'needs --health-port (the port to serve /livez and /readyz on)');
    return undefined;
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw new ConfigError(
      '--health-port',
      `must be a port number from 0 to 65535, not ${JSON.stringify(portText)}`,
    );
  const host = flags['health-host'] ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host))
    throw new ConfigError('--health-host', 'must be an IP address or a host name');
  const serve = (metrics: boolean) => serveWorkerHealth(worker, { port, host, metrics });
  let health: WorkerHealthServer;
  try {
    health = await serve(true).catch((error: unknown) => {
      if (!isConfigError(error) || error.option !== 'metrics') throw error;
      logger.warn(
        { event: 'worker.metrics_unavailable' },
        `no /metrics: ${error.message.slice('metrics: '.length)}`,
      );
      return serve(false);
    });
  } catch (error) {
    await service.close().catch(() => {});
    // serveWorkerHealth names its options; the user typed the flags.
    if (isConfigError(error) && (error.option === 'port' || error.option === 'host'))
      throw new ConfigError(`--health-${error.option}`, error.message.slice(error.option.length + 2));
    throw error;
  }
  const endpoints = health.metrics ? '/livez, /readyz and /metrics' : '/livez and /readyz';
  logger.info(
    { event: 'worker.health', url: health.url, metrics: health.metrics !== undefined },
    `serving ${endpoints} on ${health.url}`,
  );
  return health;
}

/** Makes the Kafka client the worker runs on, its own log lines (warnings and errors) through `logger`. */
type ClientMaker = (config: KafkaClientConfig, logger: Logger) => KafkaClientLike;

type KafkajsModule = { Kafka: new (config: object) => KafkaClientLike; logLevel: { WARN: number } };
type ConfluentModule = {
  KafkaJS: { Kafka: new (config: object) => KafkaClientLike; logLevel: { WARN: number } };
};

/**
 * The Kafka clients are optional peers, loaded only here: the one `MAILROOM_KAFKA_CLIENT` (or
 * `--kafka-client`, or the config's `worker.client`) names, else kafkajs when installed, else
 * `@confluentinc/kafka-javascript`; the fix in the message when the one needed is missing.
 */
async function loadKafkaClient(library: KafkaFlavor | undefined): Promise<ClientMaker> {
  if (library !== 'confluent') {
    const kafkajs = await optionalImport<KafkajsModule>(
      'kafkajs',
      () => import('kafkajs'),
      (m) => m.Kafka && m.logLevel,
    );
    if (kafkajs) {
      return (config, logger) =>
        new kafkajs.Kafka({
          ...config,
          logLevel: kafkajs.logLevel.WARN,
          logCreator: kafkaLogCreator(logger),
        });
    }
    if (library === 'kafkajs')
      throw new ConfigError('kafkajs', 'mailroom worker needs the kafkajs package: npm install kafkajs');
  }
  const confluent = await optionalImport<ConfluentModule>(
    '@confluentinc/kafka-javascript',
    () => import('@confluentinc/kafka-javascript'),
    (m) => m.KafkaJS?.Kafka,
  );
  if (confluent) {
    const { KafkaJS } = confluent;
    return (config, logger) =>
      new KafkaJS.Kafka(
        confluentClientConfig(config, { logLevel: KafkaJS.logLevel.WARN, logger: confluentLogger(logger) }),
      );
  }
  if (library === 'confluent') {
    throw new ConfigError(
      '@confluentinc/kafka-javascript',
      'MAILROOM_KAFKA_CLIENT=confluent needs the @confluentinc/kafka-javascript package: npm install @confluentinc/kafka-javascript',
    );
  }
  throw new ConfigError(
    'kafkajs',
    'mailroom worker needs the kafkajs package: npm install kafkajs (or @confluentinc/kafka-javascript)',
  );
}

/**
 * The module `load` imports (a literal `import()`, so bundlers see the name and leave it out), or
 * undefined when it is not installed; `usable` picks the export shape (ESM, or CJS's default).
 */
async function optionalImport<T>(
  name: string,
  load: () => Promise<unknown>,
  usable: (module: T) => unknown,
): Promise<T | undefined> {
  let module: T & { default?: T };
  try {
    module = (await load()) as T & { default?: T };
  } catch (error) {
    if ((error as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
  const api = usable(module) ? module : module.default;
  if (!api || !usable(api)) throw new Error(`${name} has none of the exports mailroom uses`);
  return api;
}

/**
 * Kafka could not be reached, as the error of the setting most likely at fault: most often the
 * brokers name the wrong place (the message names the brokers tried; `brokersName` is what gave
 * them: KAFKA_BROKERS, --brokers or the config file's field), but a TLS handshake the broker or the
 * client refused is about the certificates, and plain Kafka to a TLS listener (or TLS to a plain
 * one) about KAFKA_SSL. `clientLog`: librdkafka's last connection failure, which its error leaves out.
 */
function unreachable(
  error: KafkaUnavailableError,
  client: KafkaClientConfig,
  clientLog: string | undefined,
  brokersName: string,
): ConfigError {
  const told = clientLog
    ? `${error.message} (the Kafka client's log: ${oneLine(clientLog, 300)})`
    : error.message;
  const why = `${error.message} ${clientLog ?? ''}`;
  if (
    client.ssl &&
    /certificate verify failed|unable to verify|unable to get local issuer|self[- ]signed/i.test(why)
  )
    return new ConfigError(
      'KAFKA_SSL_CA_LOCATION',
      `${told}. The broker's certificate is not signed by a CA this client trusts: KAFKA_SSL_CA_LOCATION names the CA bundle to trust`,
    );
  if (client.ssl && /alert (bad certificate|certificate required|certificate unknown|unknown ca)/i.test(why))
    return new ConfigError(
      'KAFKA_SSL_CERTIFICATE_LOCATION',
      `${told}. The broker refused this client's certificate, or asked for one and got none: KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION name the certificate and key it accepts`,
    );
  const brokers = client.brokers.join(',');
  // kafkajs: "Closed connection"; librdkafka says "connecting to a SSL listener?" when it can tell.
  if (!client.ssl && /Closed connection|SSL listener|incorrect security\.protocol/i.test(why))
    return new ConfigError(
      'KAFKA_SSL',
      `${told}. The broker closed the connection when this client spoke plain Kafka to it: if ${brokers} is a TLS listener, set KAFKA_SSL=true`,
    );
  // Node: "disconnected before secure TLS connection was established"; librdkafka: "connecting to a PLAINTEXT broker listener?".
  if (client.ssl && /before secure TLS connection|PLAINTEXT broker listener|wrong version number/i.test(why))
    return new ConfigError(
      'KAFKA_SSL',
      `${told}. The broker did not answer in TLS: if ${brokers} is a plain listener, turn TLS off (unset KAFKA_SSL and the KAFKA_SSL_* variables) or give the brokers' TLS port`,
    );
  // librdkafka may say no more than this, for a plain client on a TLS listener too.
  if (!clientLog && /broker transport failure/i.test(error.message))
    return new ConfigError(
      brokersName,
      `${told}. Check the hosts and ports${client.ssl ? '' : `; if ${brokers} is a TLS listener, set KAFKA_SSL=true`}`,
    );
  return new ConfigError(brokersName, told);
}

/**
 * Why the worker will not take the topic with a transport that keeps all or some mail: it commits
 * what it sends. `where`: the config file's part of the sentence, when the config sets the transport.
 */
function captureRefused(transport: Transport, where: string): ConfigError {
  const testMode = testModeVariable(transport.name);
  if (!where && testMode !== undefined) {
    return new ConfigError(
      testMode,
      `puts ${transport.name} in its test mode, which delivers nothing, and the worker commits what it sends: the emails on the topic would be gone. Unset it to deliver, or set MAILROOM_TRANSPORT=sandbox to write .eml files on purpose`,
    );
  }
  const what = where
    ? `${where}it ${transport.captures === true ? 'only captures mail' : 'keeps some mail (a capturing transport is behind it)'}`
    : 'no mail provider is configured';
  return new ConfigError(
    'MAILROOM_TRANSPORT',
    `is required for the worker when ${what}: it commits what it sends, so ${where ? 'that mail' : 'the default (the sandbox folder)'} would never be delivered. Configure a provider (${DELIVERING}) to deliver, or set MAILROOM_TRANSPORT=sandbox to write .eml files on purpose`,
  );
}
