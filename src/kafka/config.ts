/**
 * Kafka settings from the environment (KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_*, MAILROOM_KAFKA_*),
 * for `mailroom worker` and apps that want the same variables. Errors name the variable.
 */
import { ConfigError } from '../errors.js';
import { isKafkaFlavor, type KafkaFlavor } from './client.js';
import { DEFAULT_TOPIC } from './producer.js';

/** Options for kafkajs's `new Kafka()` (Confluent's client takes them as `{ kafkaJS: … }`). */
export interface KafkaClientConfig {
  brokers: string[];
  clientId: string;
  ssl?: boolean;
  sasl?: KafkaSasl;
}

/** SASL credentials, one shape per mechanism (as kafkajs types them). */
export type KafkaSasl =
  | { mechanism: 'plain'; username: string; password: string }
  | { mechanism: 'scram-sha-256'; username: string; password: string }
  | { mechanism: 'scram-sha-512'; username: string; password: string };

/** What {@link kafkaConfigFromEnv} returns: the client's options and the worker's names. */
export interface KafkaEnvConfig {
  client: KafkaClientConfig;
  /**
   * Which Kafka client package to load (`MAILROOM_KAFKA_CLIENT`): `kafkajs`, or `confluent` for
   * `@confluentinc/kafka-javascript`. Undefined when unset: `mailroom worker` then loads kafkajs
   * if it is installed, else Confluent's client.
   */
  clientLibrary: KafkaFlavor | undefined;
  topic: string;
  groupId: string;
  concurrency: number;
}

const BROKER = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;
const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/**
 * Reads the Kafka variables. Throws a `ConfigError` naming the first one missing or malformed.
 *
 * @example
 * ```ts
 * const { client } = kafkaConfigFromEnv();
 * const producer = createEmailProducer({ kafka: new Kafka(client) });
 * ```
 */
export function kafkaConfigFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): KafkaEnvConfig {
  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const rawBrokers = get('KAFKA_BROKERS');
  if (rawBrokers === undefined) throw new ConfigError('KAFKA_BROKERS', 'is required (host:port,host:port)');
  const brokers = rawBrokers.split(',').map((b) => b.trim());
  if (brokers.some((b) => !BROKER.test(b))) {
    throw new ConfigError('KAFKA_BROKERS', 'must be comma-separated host:port pairs');
  }
  const ssl = get('KAFKA_SSL');
  if (ssl !== undefined && ssl !== 'true' && ssl !== 'false')
    throw new ConfigError('KAFKA_SSL', 'must be true or false');
  const mechanism = get('KAFKA_SASL_MECHANISM');
  let sasl: KafkaClientConfig['sasl'];
  if (mechanism !== undefined) {
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      throw new ConfigError('KAFKA_SASL_MECHANISM', `must be one of ${MECHANISMS.join(', ')}`);
    }
    const username = get('KAFKA_SASL_USERNAME');
    const password = get('KAFKA_SASL_PASSWORD');
    if (username === undefined)
      throw new ConfigError('KAFKA_SASL_USERNAME', 'is required with KAFKA_SASL_MECHANISM');
    if (password === undefined)
      throw new ConfigError('KAFKA_SASL_PASSWORD', 'is required with KAFKA_SASL_MECHANISM');
    // PLAIN sends the password as it is (RFC 4616): over a connection without TLS only when asked.
    if (mechanism === 'plain' && ssl === undefined)
      throw new ConfigError(
        'KAFKA_SSL',
        'is required with KAFKA_SASL_MECHANISM=plain, which sends the password as it is: true (TLS), or false to send it in clear text on purpose',
      );
    sasl = { mechanism: mechanism as (typeof MECHANISMS)[number], username, password } as KafkaSasl;
  } else {
    // Credentials without a mechanism would be dropped and the client connect unauthenticated.
    const given = ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'].find((name) => get(name) !== undefined);
    if (given !== undefined)
      throw new ConfigError('KAFKA_SASL_MECHANISM', `is required with ${given}: ${MECHANISMS.join(', ')}`);
  }
  const clientLibrary = get('MAILROOM_KAFKA_CLIENT');
  if (clientLibrary !== undefined && !isKafkaFlavor(clientLibrary)) {
    throw new ConfigError(
      'MAILROOM_KAFKA_CLIENT',
      'must be kafkajs or confluent (for @confluentinc/kafka-javascript)',
    );
  }
  const concurrency = get('MAILROOM_WORKER_CONCURRENCY') ?? '10';
  if (!/^\d{1,4}$/.test(concurrency) || Number(concurrency) < 1) {
    throw new ConfigError('MAILROOM_WORKER_CONCURRENCY', 'must be a positive whole number');
  }
  return {
    client: {
      brokers,
      clientId: get('KAFKA_CLIENT_ID') ?? 'mailroom',
      ...(ssl === 'true' ? { ssl: true } : {}),
      ...(sasl ? { sasl } : {}),
    },
    clientLibrary,
    topic: get('MAILROOM_KAFKA_TOPIC') ?? DEFAULT_TOPIC,
    groupId: get('MAILROOM_KAFKA_GROUP') ?? 'mailroom-email-worker',
    concurrency: Number(concurrency),
  };
}
