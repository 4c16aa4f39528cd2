import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigError, isConfigError } from '../../src/index.js';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import { describeKafkaSecurity } from '../../src/kafka/config.js';
import { createEmailProducer, kafkaConfigFromEnv } from '../../src/kafka/index.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

function option(fn: () => unknown): string | undefined {
  return refusal(fn)?.option;
}

function refusal(fn: () => unknown): ConfigError | undefined {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error;
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

  it.each([
    ['kafka-1', 'KAFKA_BROKERS: "kafka-1" is not host:port (no port: kafka-1:9092, say)'],
    [
      'kafka-1:9092,kafka 2:9092',
      'KAFKA_BROKERS: "kafka 2:9092" is not host:port (kafka-1:9092, 10.0.0.5:9092 or [::1]:9092)',
    ],
    [
      'a:1,',
      'KAFKA_BROKERS: "a:1," has an empty entry (a trailing comma): give host:port pairs, comma-separated',
    ],
    [
      ',a:1',
      'KAFKA_BROKERS: ",a:1" has an empty entry (a leading comma): give host:port pairs, comma-separated',
    ],
    [
      'a:1,,b:2',
      'KAFKA_BROKERS: "a:1,,b:2" has an empty entry (two commas in a row): give host:port pairs, comma-separated',
    ],
    ['kafka://host:9092', 'KAFKA_BROKERS: "kafka://host:9092" is a URL: give host:port without kafka://'],
    ['kafka-1:99999', 'KAFKA_BROKERS: "kafka-1:99999" has port 99999: a TCP port is 1 to 65535'],
    ['a:1,[::1]:0', 'KAFKA_BROKERS: "[::1]:0" has port 0: a TCP port is 1 to 65535'],
  ])('quotes the broker entry at fault in KAFKA_BROKERS=%s', (brokers, message) => {
    expect(refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: brokers }))?.message).toBe(message);
  });

  it.each([
    ['PLAIN', 'plain'],
    ['plain', 'plain'],
    ['SCRAM-SHA-256', 'scram-sha-256'],
    ['Scram-Sha-512', 'scram-sha-512'],
  ])(
    'takes KAFKA_SASL_MECHANISM=%s in any case, as Kafka and librdkafka spell it (%s)',
    (given, mechanism) => {
      const env = {
        KAFKA_BROKERS: 'k:1',
        KAFKA_SSL: 'true',
        KAFKA_SASL_MECHANISM: given,
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: 'x',
      };
      expect(kafkaConfigFromEnv(env).client.sasl).toEqual({ mechanism, username: 'u', password: 'x' });
    },
  );

  it('still asks PLAIN in upper case for TLS or KAFKA_SSL=false, as it does plain', () => {
    const env = {
      KAFKA_BROKERS: 'k:1',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'x',
    };
    expect(option(() => kafkaConfigFromEnv(env))).toBe('KAFKA_SSL');
  });

  it('says the range of MAILROOM_WORKER_CONCURRENCY, 1 to 9999, as the config file does', () => {
    for (const concurrency of ['0', '10000', 'ten']) {
      expect(
        refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', MAILROOM_WORKER_CONCURRENCY: concurrency }))
          ?.message,
      ).toBe(`MAILROOM_WORKER_CONCURRENCY: must be a whole number from 1 to 9999, not "${concurrency}"`);
    }
    expect(
      kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', MAILROOM_WORKER_CONCURRENCY: '9999' }).concurrency,
    ).toBe(9999);
  });
});

describe('Kafka topic names', () => {
  it('refuses a MAILROOM_KAFKA_TOPIC or a producer topic Kafka cannot have, naming the rule, instead of "does not exist"', () => {
    const env = (topic: string) => ({ KAFKA_BROKERS: 'k:1', MAILROOM_KAFKA_TOPIC: topic });
    expect(refusal(() => kafkaConfigFromEnv(env('shop email!')))?.message).toBe(
      'MAILROOM_KAFKA_TOPIC: "shop email!" is not a Kafka topic name: " " is not allowed (only letters, digits, ".", "_" and "-")',
    );
    expect(refusal(() => kafkaConfigFromEnv(env('x'.repeat(250))))?.message).toBe(
      'MAILROOM_KAFKA_TOPIC: is 250 characters long; a Kafka topic name has at most 249',
    );
    expect(option(() => kafkaConfigFromEnv(env('..')))).toBe('MAILROOM_KAFKA_TOPIC');
    expect(kafkaConfigFromEnv(env('shop_v2.email-out')).topic).toBe('shop_v2.email-out');
    const kafka = { producer() {}, consumer() {} } as unknown as KafkaClientLike;
    expect(() => createEmailProducer({ kafka, topic: 'shop/email' })).toThrow(
      new TypeError(
        'createEmailProducer: topic "shop/email" is not a Kafka topic name: "/" is not allowed (only letters, digits, ".", "_" and "-")',
      ),
    );
    expect(createEmailProducer({ kafka, topic: 'x'.repeat(249) }).topic).toHaveLength(249);
  });
});

describe('kafkaConfigFromEnv: TLS with a private CA and a client certificate', () => {
  let pki: TestCa;
  const text = (path: string) => readFileSync(path, 'utf8');
  const file = (name: string, contents: string) => {
    const path = join(pki.dir, name);
    writeFileSync(path, contents);
    return path;
  };
  beforeAll(async () => {
    pki = await makeTestCa();
  });
  afterAll(() => pki?.remove());

  it('reads the CA bundle into ssl.ca, and the variable alone turns TLS on', () => {
    const { client } = kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: pki.ca });
    expect(client.ssl).toEqual({ ca: text(pki.ca) });
  });

  it('reads a client certificate and its key into ssl.cert and ssl.key, beside the CA', () => {
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_LOCATION: pki.ca,
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.key,
    });
    expect(client.ssl).toEqual({ ca: text(pki.ca), cert: text(pki.client.cert), key: text(pki.client.key) });
  });

  it('takes a client certificate without a CA (a broker signed by a public CA)', () => {
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.key,
    });
    expect(client.ssl).toEqual({ cert: text(pki.client.cert), key: text(pki.client.key) });
  });

  it('opens an encrypted key with KAFKA_SSL_KEY_PASSWORD and passes it on as ssl.passphrase', () => {
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.encryptedKey,
      KAFKA_SSL_KEY_PASSWORD: pki.clientKeyPassword,
    });
    expect(client.ssl).toEqual({
      cert: text(pki.client.cert),
      key: text(pki.client.encryptedKey),
      passphrase: pki.clientKeyPassword,
    });
  });

  it('takes one file holding both the certificate and its key for both variables', () => {
    const both = file('both.pem', text(pki.client.key) + text(pki.client.cert));
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CERTIFICATE_LOCATION: both,
      KAFKA_SSL_KEY_LOCATION: both,
    });
    expect(client.ssl).toEqual({ cert: text(both), key: text(both) });
  });

  it('lets SASL PLAIN go over the TLS the files turn on, without KAFKA_SSL', () => {
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CA_LOCATION: pki.ca,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'x',
    });
    expect(client).toMatchObject({ ssl: { ca: text(pki.ca) }, sasl: { mechanism: 'plain' } });
  });

  it('refuses TLS files with KAFKA_SSL=false: the two contradict each other', () => {
    const error = refusal(() =>
      kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL: 'false', KAFKA_SSL_CA_LOCATION: pki.ca }),
    );
    expect(error?.option).toBe('KAFKA_SSL');
    expect(error?.message).toContain('KAFKA_SSL_CA_LOCATION');
  });

  it.each([
    [{ KAFKA_SSL_CERTIFICATE_LOCATION: 'client.pem' }, 'KAFKA_SSL_KEY_LOCATION'],
    [{ KAFKA_SSL_KEY_LOCATION: 'client.key' }, 'KAFKA_SSL_CERTIFICATE_LOCATION'],
    [{ KAFKA_SSL_KEY_PASSWORD: 'pw' }, 'KAFKA_SSL_KEY_LOCATION'],
    [{ KAFKA_SSL: 'false', KAFKA_SSL_KEY_PASSWORD: 'pw' }, 'KAFKA_SSL'],
  ])('names the missing half of a client certificate: %o → %s', (env, name) => {
    expect(option(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', ...env }))).toBe(name);
  });

  it('names the variable and the path of a file it cannot read, and why', () => {
    const missing = join(pki.dir, 'nope.pem');
    const error = refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: missing }));
    expect(error?.option).toBe('KAFKA_SSL_CA_LOCATION');
    expect(error?.message).toBe(`KAFKA_SSL_CA_LOCATION: cannot read ${missing} (ENOENT)`);
    const folder = refusal(() =>
      kafkaConfigFromEnv({
        KAFKA_BROKERS: 'k:1',
        KAFKA_SSL_CERTIFICATE_LOCATION: pki.dir,
        KAFKA_SSL_KEY_LOCATION: pki.client.key,
      }),
    );
    expect(folder?.message).toBe(`KAFKA_SSL_CERTIFICATE_LOCATION: cannot read ${pki.dir} (EISDIR)`);
  });

  it("takes a folder of CA files as librdkafka's ssl.ca.location does: each certificate of its files once, not its subfolders", () => {
    const folder = join(pki.dir, 'ca-folder');
    mkdirSync(join(folder, 'sub'), { recursive: true });
    writeFileSync(join(folder, 'ca.pem'), text(pki.ca));
    symlinkSync(join(folder, 'ca.pem'), join(folder, '1a2b3c4d.0')); // a hashed name (c_rehash) for the same file
    writeFileSync(join(folder, 'README'), 'not a certificate\n');
    writeFileSync(join(folder, 'sub', 'other.pem'), text(pki.expiredCa));
    const { client } = kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: folder });
    expect(client.ssl).toEqual({ ca: `${text(pki.ca).trim()}\n` });
    expect(describeKafkaSecurity(client).fields.tls).toEqual({ ca: 'CN=mailroom test CA' });

    const empty = join(pki.dir, 'empty-folder');
    mkdirSync(empty);
    writeFileSync(join(empty, 'README'), 'not a certificate\n');
    const error = refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: empty }));
    expect(error?.message).toBe(
      `KAFKA_SSL_CA_LOCATION: ${empty} is a folder with no PEM certificate in its files`,
    );
  });

  it('refuses a client certificate out of date, expired or not yet valid (the brokers refuse it in the handshake), naming the path, the subject and the date', () => {
    for (const [cert, why] of [
      [pki.expired, 'expired on 2020-01-02T00:00:00.000Z'],
      [pki.notYetValid, 'is not valid until 2099-01-01T00:00:00.000Z'],
    ] as const) {
      const error = refusal(() =>
        kafkaConfigFromEnv({
          KAFKA_BROKERS: 'k:1',
          KAFKA_SSL_CERTIFICATE_LOCATION: cert.cert,
          KAFKA_SSL_KEY_LOCATION: cert.key,
        }),
      );
      expect(error?.option).toBe('KAFKA_SSL_CERTIFICATE_LOCATION');
      expect(error?.message).toBe(
        `KAFKA_SSL_CERTIFICATE_LOCATION: ${cert.cert}: the client certificate (CN=mailroom-worker) ${why}, and the brokers refuse it in the TLS handshake: renew it`,
      );
    }
  });

  it('refuses a CA bundle with no certificate in date, and takes one that keeps an expired CA beside a valid one', () => {
    const error = refusal(() =>
      kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: pki.expiredCa }),
    );
    expect(error?.option).toBe('KAFKA_SSL_CA_LOCATION');
    expect(error?.message).toBe(
      `KAFKA_SSL_CA_LOCATION: ${pki.expiredCa}: no certificate in it is in date (expired on 2020-01-02T00:00:00.000Z), so none can verify the brokers: replace it`,
    );
    const mixed = file('mixed-ca.pem', text(pki.expiredCa) + text(pki.ca));
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: mixed }).client.ssl).toEqual({
      ca: text(mixed),
    });
  });

  it('refuses a file without the PEM it should hold, naming the path and never the contents', () => {
    const notPem = file('not-pem.txt', 'hunter2-file-contents\n');
    for (const [env, name] of [
      [{ KAFKA_SSL_CA_LOCATION: notPem }, 'KAFKA_SSL_CA_LOCATION'],
      // The certificate and the key swapped: each file is PEM, but not what the variable wants.
      [
        { KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.key, KAFKA_SSL_KEY_LOCATION: pki.client.cert },
        'KAFKA_SSL_CERTIFICATE_LOCATION',
      ],
      [
        { KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert, KAFKA_SSL_KEY_LOCATION: pki.client.cert },
        'KAFKA_SSL_KEY_LOCATION',
      ],
      [
        { KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert, KAFKA_SSL_KEY_LOCATION: notPem },
        'KAFKA_SSL_KEY_LOCATION',
      ],
    ] as const) {
      const error = refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', ...env }));
      expect(error?.option, JSON.stringify(env)).toBe(name);
      const path = env[name as keyof typeof env] as string;
      expect(error?.message).toContain(path);
      for (const line of text(path)
        .split('\n')
        .filter((l) => l.length > 8 && !l.startsWith('-----')))
        expect(error?.message).not.toContain(line);
    }
  });

  it('refuses a certificate that does not parse, and a key that does not', () => {
    const brokenCert = file('broken.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(
      refusal(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL_CA_LOCATION: brokenCert })),
    ).toEqual(
      expect.objectContaining({
        message: `KAFKA_SSL_CA_LOCATION: ${brokenCert}: certificate 1 of 1 does not parse`,
      }),
    );
    const brokenKey = file('broken.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    expect(
      refusal(() =>
        kafkaConfigFromEnv({
          KAFKA_BROKERS: 'k:1',
          KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
          KAFKA_SSL_KEY_LOCATION: brokenKey,
        }),
      )?.message,
    ).toBe(`KAFKA_SSL_KEY_LOCATION: ${brokenKey}: the private key does not parse`);
  });

  it('asks for the password of an encrypted key, and says when it does not open it, never printing it', () => {
    const env = {
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.encryptedKey,
    };
    expect(refusal(() => kafkaConfigFromEnv(env))?.message).toBe(
      `KAFKA_SSL_KEY_PASSWORD: is required: the key in ${pki.client.encryptedKey} is encrypted`,
    );
    const wrong = refusal(() =>
      kafkaConfigFromEnv({ ...env, KAFKA_SSL_KEY_PASSWORD: 'wrong-horse-battery' }),
    );
    expect(wrong?.option).toBe('KAFKA_SSL_KEY_PASSWORD');
    expect(wrong?.message).toContain(pki.client.encryptedKey);
    expect(wrong?.message).not.toContain('wrong-horse-battery');
  });

  it('describes the connection for a start-up line: whose CAs, whose certificate, never a secret', () => {
    const { client } = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_SSL_CA_LOCATION: pki.ca,
      KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
      KAFKA_SSL_KEY_LOCATION: pki.client.encryptedKey,
      KAFKA_SSL_KEY_PASSWORD: pki.clientKeyPassword,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'mailer',
      KAFKA_SASL_PASSWORD: 'sasl-secret',
    });
    const described = describeKafkaSecurity(client);
    expect(described).toEqual({
      fields: {
        tls: { ca: 'CN=mailroom test CA', clientCertificate: 'CN=mailroom-worker' },
        sasl: 'scram-sha-512',
      },
      text: 'over TLS (private CA CN=mailroom test CA; client certificate CN=mailroom-worker), SASL scram-sha-512',
    });
    for (const secret of [pki.clientKeyPassword, 'sasl-secret', 'mailer', 'PRIVATE KEY'])
      expect(JSON.stringify(described)).not.toContain(secret);
    const bundle = file('bundle.pem', text(pki.ca) + text(pki.client.cert));
    const { sasl: _sasl, ...plain } = client;
    expect(describeKafkaSecurity({ ...plain, ssl: { ca: text(bundle) } }).text).toBe(
      'over TLS (private CA CN=mailroom test CA and 1 more)',
    );
    expect(describeKafkaSecurity({ ...plain, ssl: true }).fields).toEqual({ tls: { ca: "the system's" } });
    expect(describeKafkaSecurity({ brokers: ['k:1'], clientId: 'm' }).text).toBe('without TLS');
  });

  it("refuses a key that is not the certificate's", () => {
    const error = refusal(() =>
      kafkaConfigFromEnv({
        KAFKA_BROKERS: 'k:1',
        KAFKA_SSL_CERTIFICATE_LOCATION: pki.client.cert,
        KAFKA_SSL_KEY_LOCATION: pki.stranger.key,
      }),
    );
    expect(error?.option).toBe('KAFKA_SSL_KEY_LOCATION');
    expect(error?.message).toBe(
      `KAFKA_SSL_KEY_LOCATION: ${pki.stranger.key} is not the key of the certificate in ${pki.client.cert} (KAFKA_SSL_CERTIFICATE_LOCATION)`,
    );
  });
});
