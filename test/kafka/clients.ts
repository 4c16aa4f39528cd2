/**
 * The Kafka clients of the test run, without vitest (worker-child.ts runs outside it): kafkajs
 * for the tests' own plumbing, and the client mailroom runs on, {@link KAFKA_CLIENT}.
 */
import { createRequire } from 'node:module';
import { Kafka, logLevel } from 'kafkajs';
import {
  confluentClientConfig,
  isKafkaFlavor,
  type KafkaClientLike,
  type KafkaFlavor,
} from '../../src/kafka/client.js';
import type { KafkaClientConfig } from '../../src/kafka/config.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

/** A kafkajs client on `brokers`, quiet, with retries that fit in a test. */
export function kafkaClient(cluster: Pick<KafkaCluster, 'brokers'>, clientId = 'mailroom-test'): Kafka {
  return new Kafka({
    brokers: cluster.brokers,
    clientId,
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 },
  });
}

/**
 * The Kafka client mailroom runs on in this test run: kafkajs, or `@confluentinc/kafka-javascript`
 * when `MAILROOM_TEST_KAFKA_CLIENT=confluent` (the `kafka-confluent` project in vitest.config.ts
 * runs every worker and producer test file again that way). Test plumbing (reading topics back,
 * raw records, admin requests) always goes through kafkajs, so both runs check the same things.
 */
export const KAFKA_CLIENT: KafkaFlavor = clientFromEnv(process.env.MAILROOM_TEST_KAFKA_CLIENT);

function clientFromEnv(value: string | undefined): KafkaFlavor {
  if (value === undefined || value === '') return 'kafkajs';
  if (isKafkaFlavor(value)) return value;
  throw new Error(`MAILROOM_TEST_KAFKA_CLIENT must be kafkajs or confluent, not ${JSON.stringify(value)}`);
}

/**
 * A client of {@link KAFKA_CLIENT}'s kind on `brokers`, for mailroom's producer and worker;
 * `confluent` adds to the Confluent client's `kafkaJS` settings (a logger, a log level).
 */
export function clientUnderTest(
  brokers: readonly string[],
  clientId = 'mailroom-test',
  confluent: { logger?: object; logLevel?: number } = {},
): KafkaClientLike {
  return clientUnderTestFrom({ brokers: [...brokers], clientId }, confluent);
}

/**
 * A client of {@link KAFKA_CLIENT}'s kind from kafkajs's options (`kafkaConfigFromEnv().client`),
 * made as `mailroom worker` makes it: the Confluent client through `confluentClientConfig`.
 */
export function clientUnderTestFrom(
  config: KafkaClientConfig,
  confluent: { logger?: object; logLevel?: number } = {},
): KafkaClientLike {
  if (KAFKA_CLIENT === 'kafkajs') {
    return new Kafka({
      ...config,
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 },
    });
  }
  // Loaded only in the Confluent run: the kafkajs run does not need its native binding built.
  const { KafkaJS } = createRequire(import.meta.url)(
    '@confluentinc/kafka-javascript',
  ) as typeof import('@confluentinc/kafka-javascript');
  return new KafkaJS.Kafka(
    confluentClientConfig(config, { logLevel: KafkaJS.logLevel.NOTHING, ...(confluent as object) }),
  ) as unknown as KafkaClientLike;
}
