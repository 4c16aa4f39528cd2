import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/index.js';
import { kafkaConfigFromEnv } from '../../src/kafka/index.js';

function option(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.option;
    throw error;
  }
  return undefined;
}

describe('kafkaConfigFromEnv', () => {
  it('reads brokers, TLS, SASL, topic, group and concurrency', () => {
    expect(
      kafkaConfigFromEnv({
        KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092,[::1]:9093',
        KAFKA_CLIENT_ID: 'shop',
        KAFKA_SSL: 'true',
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'mailer',
        KAFKA_SASL_PASSWORD: 's3cret',
        MAILROOM_KAFKA_TOPIC: 'shop.email',
        MAILROOM_KAFKA_GROUP: 'shop-mailer',
        MAILROOM_WORKER_CONCURRENCY: '25',
        MAILROOM_KAFKA_CLIENT: 'confluent',
      }),
    ).toEqual({
      clientLibrary: 'confluent',
      client: {
        brokers: ['kafka-1:9092', 'kafka-2:9092', '[::1]:9093'],
        clientId: 'shop',
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'mailer', password: 's3cret' },
      },
      topic: 'shop.email',
      groupId: 'shop-mailer',
      concurrency: 25,
    });
  });

  it('defaults everything but the brokers', () => {
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: 'localhost:9092' })).toEqual({
      clientLibrary: undefined,
      client: { brokers: ['localhost:9092'], clientId: 'mailroom' },
      topic: 'notifications.email',
      groupId: 'mailroom-email-worker',
      concurrency: 10,
    });
  });

  it.each([
    [{}, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'kafka' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'kafka:9092,http://evil:80' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_SSL: 'yes' }, 'KAFKA_SSL'],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'gssapi' }, 'KAFKA_SASL_MECHANISM'],
    [
      { KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'x' },
      'KAFKA_SASL_USERNAME',
    ],
    [
      { KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' },
      'KAFKA_SASL_PASSWORD',
    ],
    // Credentials without a mechanism would be dropped, and the client connect without them.
    [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'x' }, 'KAFKA_SASL_MECHANISM'],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_SASL_PASSWORD: 'x' }, 'KAFKA_SASL_MECHANISM'],
    // PLAIN sends the password as it is: clear text only when KAFKA_SSL=false says so.
    [
      {
        KAFKA_BROKERS: 'k:1',
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'x',
      },
      'KAFKA_SSL',
    ],
    [{ KAFKA_BROKERS: 'k:1', MAILROOM_WORKER_CONCURRENCY: '0' }, 'MAILROOM_WORKER_CONCURRENCY'],
    [{ KAFKA_BROKERS: 'k:1', MAILROOM_WORKER_CONCURRENCY: 'ten' }, 'MAILROOM_WORKER_CONCURRENCY'],
    [{ KAFKA_BROKERS: 'k:1', MAILROOM_KAFKA_CLIENT: 'node-rdkafka' }, 'MAILROOM_KAFKA_CLIENT'],
  ])('names the variable at fault: %o → %s', (env, name) => {
    expect(option(() => kafkaConfigFromEnv(env))).toBe(name);
  });

  it('takes SASL PLAIN without TLS when KAFKA_SSL=false says so', () => {
    const env = {
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL: 'false',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'x',
    };
    expect(kafkaConfigFromEnv(env).client).toEqual({
      brokers: ['k:1'],
      clientId: 'mailroom',
      sasl: { mechanism: 'plain', username: 'u', password: 'x' },
    });
  });

  it('never puts the SASL password in an error', () => {
    try {
      kafkaConfigFromEnv({
        KAFKA_BROKERS: 'k:1',
        KAFKA_SASL_MECHANISM: 'nope',
        KAFKA_SASL_PASSWORD: 'hunter2',
      });
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('hunter2');
      return;
    }
    throw new Error('expected a ConfigError');
  });
});
