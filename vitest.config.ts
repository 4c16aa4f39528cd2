import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

/**
 * The Kafka test files that drive mailroom's producer and worker through a Kafka client. They run
 * twice: on kafkajs (the `default` project, with everything else) and on
 * `@confluentinc/kafka-javascript` (the `kafka-confluent` project; test/kafka/clients.ts).
 */
const KAFKA_CLIENT_SUITES = [
  'test/kafka/worker.test.ts',
  'test/kafka/producer.test.ts',
  'test/kafka/recipients.test.ts',
  'test/kafka/startup.test.ts',
  'test/kafka/health.test.ts',
  'test/kafka/rebalance.test.ts',
  'test/kafka/resilience.test.ts',
  'test/kafka/shared-store.test.ts',
  'test/kafka/send-later.test.ts',
  'test/kafka/real-broker.test.ts',
  'test/kafka/real-scenarios.test.ts',
  'test/kafka/real-shared-store.test.ts',
  'test/kafka/real-tls.test.ts',
  'test/kafka/forward.test.ts',
];

export default defineConfig({
  resolve: {
    // Examples import 'mailroom-js' like a user would; in the test run that is the source.
    alias: [
      { find: /^mailroom-js\/testing$/, replacement: src('testing/index.ts') },
      { find: /^mailroom-js\/preview$/, replacement: src('preview/index.ts') },
      { find: /^mailroom-js\/kafka$/, replacement: src('kafka/index.ts') },
      { find: /^mailroom-js\/webhooks$/, replacement: src('webhooks/index.ts') },
      { find: /^mailroom-js\/unsubscribe$/, replacement: src('unsubscribe/index.ts') },
      { find: /^mailroom-js\/nestjs$/, replacement: src('nestjs/index.ts') },
      { find: /^mailroom-js$/, replacement: src('index.ts') },
    ],
  },
  test: {
    testTimeout: 20_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: 'default', include: ['test/**/*.test.ts', 'examples/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'kafka-confluent',
          include: KAFKA_CLIENT_SUITES,
          env: { MAILROOM_TEST_KAFKA_CLIENT: 'confluent' },
        },
      },
    ],
  },
});
