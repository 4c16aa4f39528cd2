/**
 * Mail over Kafka, as a production app writes it: the web app publishes, a worker sends.
 *
 * Both sides read the same environment, so one set of variables describes a deployment:
 *
 *   KAFKA_BROKERS                         required: host:port,host:port
 *   KAFKA_CLIENT_ID, KAFKA_SSL,
 *   KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD
 *   MAILROOM_KAFKA_TOPIC                  default notifications.email (+ .retry and .dlq)
 *   MAILROOM_KAFKA_GROUP                  the worker's consumer group, default mailroom-email-worker
 *   MAILROOM_WORKER_CONCURRENCY           sends in flight per worker, default 10
 *   MAILROOM_KAFKA_CLIENT                 kafkajs (default here) or confluent (@confluentinc/kafka-javascript)
 *   MAILROOM_TRANSPORT, SMTP_*, MAILGUN_*, APP_NAME, …   the mail settings, as for `configFromEnv()`
 *
 * The worker decides the sender (its own provider's sender: SMTP_FROM_EMAIL, MAILGUN_FROM_ADDRESS, …)
 * unless the app passes `from`, and renders the template (subject, HTML, text, APP_NAME and brand).
 *
 * In the web app:
 *
 *   const { mail, producer, close } = createQueuedMail(process.env);
 *   await producer.connect(); // fail at start-up, not at the first sign-up
 *   await mail.sendVerificationEmail({ to, username, verificationUrl }); // returns once Kafka has it
 *
 * In the worker process:
 *
 *   const { start } = createMailWorker(process.env, { onAlert: (error) => pager.trigger(error.message) });
 *   await start();
 */
import { createRequire } from 'node:module';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { configFromEnv, type EmailError, EmailService, type Logger } from 'mailroom-js';
import {
  type ConsumerSettings,
  confluentClientConfig,
  confluentLogger,
  createEmailProducer,
  createEmailWorker,
  type EmailProducer,
  type EmailWorker,
  type IdempotencyStoreError,
  type KafkaClientLike,
  type KafkaEnvConfig,
  kafkaConfigFromEnv,
  kafkaLogCreator,
} from 'mailroom-js/kafka';

type Env = Readonly<Record<string, string | undefined>>;

/** kafkajs options beyond what the environment says: a `logCreator` for your logger, `retry`, … (kafkajs only) */
export type KafkaOptions = Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl'>;

export interface QueuedMail {
  /** The app's mail service: every send publishes to Kafka and resolves once the brokers have it. */
  mail: EmailService;
  producer: EmailProducer;
  /** Disconnects from Kafka. Call it after the HTTP server stopped taking requests. */
  close(): Promise<void>;
}

/** The web app's side: an `EmailService` whose sends are published to Kafka instead of delivered. */
export function createQueuedMail(
  env: Env = process.env,
  options: { kafka?: KafkaOptions; logger?: Logger } = {},
): QueuedMail {
  const kafkaConfig = kafkaConfigFromEnv(env);
  const producer = createEmailProducer({
    kafka: kafkaClient(kafkaConfig, options.kafka),
    brokers: kafkaConfig.client.brokers, // named in a KafkaUnavailableError
    topic: kafkaConfig.topic,
  });
  const mail = new EmailService({
    ...configFromEnv(env),
    queue: producer,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return {
    mail,
    producer,
    close: async () => {
      await producer.disconnect();
      await mail.close();
    },
  };
}

export interface MailWorkerOptions {
  /**
   * Called when delivery stopped because the setup is broken (credentials, an untrusted
   * certificate, a suspended account): the worker pauses both topics, dead-letters nothing, and
   * tries again after a minute. Page someone from here. Default: an error log line.
   */
  onAlert?: (error: EmailError | IdempotencyStoreError) => void;
  /** Where log lines go. Default: one JSON line per event on the console. */
  logger?: Logger;
  /**
   * SIGTERM and SIGINT close the worker (stop fetching, finish in-flight sends, commit, leave the
   * group) and then the mail transport, so the process can end. Default false.
   */
  handleSignals?: boolean;
  /** Session and heartbeat settings of the consumer (the library's defaults suit production). */
  consumer?: ConsumerSettings;
  kafka?: KafkaOptions;
}

export interface MailWorker {
  worker: EmailWorker;
  /** The service that renders and sends: `configFromEnv()`, without a queue. */
  service: EmailService;
  /** Joins the group and starts delivering. Rejects when Kafka cannot be reached. */
  start(): Promise<void>;
  /** Closes the worker, then the transport (an SMTP pool). Safe to call more than once. */
  close(): Promise<void>;
}

/** The worker process's side: consumes what `createQueuedMail()` publishes, and delivers it. */
export function createMailWorker(env: Env = process.env, options: MailWorkerOptions = {}): MailWorker {
  const logger = options.logger ?? consoleLogger;
  const onAlert =
    options.onAlert ??
    ((error: EmailError | IdempotencyStoreError) =>
      logger.error(
        {
          alert: true,
          transport: 'transport' in error ? error.transport : 'idempotency store',
          code: error.code,
        },
        `email delivery paused: ${error.message}`,
      ));
  const kafkaConfig = kafkaConfigFromEnv(env);
  const service = new EmailService(configFromEnv(env));
  // A template that does not compile stops the worker here, not at its first email.
  service.templates.compileAll();

  const worker = createEmailWorker({
    kafka: kafkaClient(kafkaConfig, { logCreator: kafkaLogCreator(logger), ...options.kafka }, logger),
    brokers: kafkaConfig.client.brokers,
    service,
    // The sandbox keeps mail in a folder: the worker takes it only when chosen by name, never by default.
    allowCapturingTransport: env.MAILROOM_TRANSPORT?.trim() === 'sandbox',
    groupId: kafkaConfig.groupId,
    topic: kafkaConfig.topic,
    concurrency: kafkaConfig.concurrency,
    logger,
    handleSignals: options.handleSignals ?? false,
    ...(options.consumer ? { consumer: options.consumer } : {}),
  });

  worker.on('paused', ({ error }) => onAlert(error));
  // The worker has already logged the failure; this is the line to count and alert on, by reason
  // (a log-based metric; `metrics.increment(`email.dlq.${reason}`)` with a metrics client).
  // 'invalid-data' and 'unknown-template' usually mean the web app and the worker run different
  // versions. Replay: publish the dead-letter topic's values back to the topic after the fix.
  worker.on('dead-lettered', ({ reason, envelope }) => {
    logger.warn(
      { event: 'email.dlq', reason, template: envelope?.template ?? null, id: envelope?.id ?? null },
      'email dead-lettered',
    );
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      try {
        await worker.close();
      } finally {
        await service.close();
      }
    })();
    return closing;
  };
  // With `handleSignals` the worker closes itself on SIGTERM; this closes the transport after it
  // (worker.close() is idempotent, so this waits for the same shutdown).
  const onSignal = () => {
    close().catch((error: unknown) =>
      logger.error({ event: 'worker.close_failed', error: String(error) }, 'could not close cleanly'),
    );
  };

  return {
    worker,
    service,
    start: async () => {
      await worker.start();
      if (options.handleSignals && closing === undefined) {
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      }
    },
    close,
  };
}

/**
 * The Kafka client from the environment's settings: kafkajs, or Confluent's maintained client when
 * MAILROOM_KAFKA_CLIENT=confluent (loaded only then: it is an optional dependency). Only warnings
 * and errors are logged unless told otherwise.
 */
function kafkaClient(config: KafkaEnvConfig, options: KafkaOptions = {}, logger?: Logger): KafkaClientLike {
  if (config.clientLibrary === 'confluent') {
    const { KafkaJS } = createRequire(import.meta.url)(
      '@confluentinc/kafka-javascript',
    ) as typeof import('@confluentinc/kafka-javascript');
    // Its KafkaJS API takes TLS files as librdkafka properties, not kafkajs's `ssl` object.
    return new KafkaJS.Kafka(
      confluentClientConfig(config.client, {
        logLevel: KafkaJS.logLevel.WARN,
        ...(logger ? { logger: confluentLogger(logger) } : {}),
      }),
    ) as unknown as KafkaClientLike;
  }
  return new Kafka({ logLevel: logLevel.WARN, ...options, ...config.client });
}

/** A pino-shaped logger on the console: one JSON line per call. Use pino itself in a real app. */
const consoleLogger: Logger = {
  debug: (fields, msg) => console.debug(JSON.stringify({ level: 'debug', msg, ...fields })),
  info: (fields, msg) => console.info(JSON.stringify({ level: 'info', msg, ...fields })),
  warn: (fields, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...fields })),
  error: (fields, msg) => console.error(JSON.stringify({ level: 'error', msg, ...fields })),
};
