/**
 * Kafka settings from the environment (KAFKA_BROKERS, KAFKA_SSL, KAFKA_SSL_*, KAFKA_SASL_*,
 * MAILROOM_KAFKA_*), for `mailroom worker` and apps that want the same variables. Errors name the
 * variable.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { isKafkaFlavor, type KafkaFlavor } from './client.js';
import { DEFAULT_TOPIC, topicNameProblem } from './producer.js';

/**
 * Options for kafkajs's `new Kafka()`. Confluent's client takes them through
 * `confluentClientConfig()`, which moves the TLS files' PEM where librdkafka reads it.
 */
export interface KafkaClientConfig {
  brokers: string[];
  clientId: string;
  /**
   * TLS: `true` trusts the system's CAs; an object adds a private CA and/or a client certificate.
   * Absent: no TLS.
   */
  ssl?: boolean | KafkaTlsOptions;
  sasl?: KafkaSasl;
}

/**
 * TLS beyond the system's CAs, as PEM text in the shape of Node's `tls.connect()` options (kafkajs
 * hands `ssl` to it as it is). Read from the files the `KAFKA_SSL_*_LOCATION` variables name, which
 * are librdkafka's own settings (`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`,
 * `ssl.key.password`, in its CONFIGURATION.md) in environment spelling.
 */
export interface KafkaTlsOptions {
  /** CA certificates to trust instead of the system's, for brokers signed by a private CA. Default: the system's. */
  ca?: string;
  /** The client certificate (with its chain) for mutual TLS; always with `key`. */
  cert?: string;
  /** The client certificate's private key. */
  key?: string;
  /** The passphrase of an encrypted `key`. Never logged, never in an error. */
  passphrase?: string;
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
/** The variables that ask for TLS beyond `KAFKA_SSL=true`. */
const TLS_VARIABLES = [
  'KAFKA_SSL_CA_LOCATION',
  'KAFKA_SSL_CERTIFICATE_LOCATION',
  'KAFKA_SSL_KEY_LOCATION',
  'KAFKA_SSL_KEY_PASSWORD',
] as const;
const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
/** The most sends in flight a worker takes (four digits), from a variable, a flag or the config file. */
export const MAX_CONCURRENCY = 9999;

/**
 * Internal: why a comma-separated broker list is not host:port pairs, quoting the entry at fault
 * (or saying where a stray comma left one empty); undefined when every entry is host:port. Shared
 * by KAFKA_BROKERS and the config file's `worker.brokers`, whose errors name themselves.
 */
export function brokerListProblem(list: string): string | undefined {
  if (list.trim() === '') return 'is empty: give host:port pairs, comma-separated';
  const entries = list.split(',').map((entry) => entry.trim());
  for (const [i, entry] of entries.entries()) {
    if (entry === '') {
      const where =
        i === 0 ? 'a leading comma' : i === entries.length - 1 ? 'a trailing comma' : 'two commas in a row';
      return `${JSON.stringify(list)} has an empty entry (${where}): give host:port pairs, comma-separated`;
    }
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(entry);
    if (scheme) return `${JSON.stringify(entry)} is a URL: give host:port without ${scheme[1]}://`;
    if (!BROKER.test(entry)) {
      const example = entry.includes(':')
        ? 'kafka-1:9092, 10.0.0.5:9092 or [::1]:9092'
        : `no port: ${entry}:9092, say`;
      return `${JSON.stringify(entry)} is not host:port (${example})`;
    }
    const port = Number(entry.slice(entry.lastIndexOf(':') + 1));
    if (port < 1 || port > 65_535)
      return `${JSON.stringify(entry)} has port ${port}: a TCP port is 1 to 65535`;
  }
  return undefined;
}

/**
 * Reads the Kafka variables. Throws a `ConfigError` naming the first one missing or malformed.
 *
 * TLS: `KAFKA_SSL=true` trusts the system's CAs. `KAFKA_SSL_CA_LOCATION` (a PEM CA bundle, or a
 * folder of them) trusts a private CA instead; `KAFKA_SSL_CERTIFICATE_LOCATION` and `KAFKA_SSL_KEY_LOCATION` (PEM, always
 * both) present a client certificate (mutual TLS), with `KAFKA_SSL_KEY_PASSWORD` for an encrypted
 * key. Any of them turns TLS on; with `KAFKA_SSL=false` they are refused. The files are read and
 * checked here, once: an unreadable one, one without the PEM it should hold, a key its password
 * does not open or one that is not the certificate's, a client certificate out of date (expired or
 * not yet valid: RFC 5280 §4.1.2.5) and a CA file with no certificate in date is a `ConfigError`
 * naming the variable and the path (never the contents or the password). The result is `client.ssl` as
 * {@link KafkaTlsOptions}.
 *
 * SASL: `KAFKA_SASL_MECHANISM` in any case (`PLAIN`, `SCRAM-SHA-256`, as Kafka's and librdkafka's
 * configs write it); `client.sasl.mechanism` is in lower case, as kafkajs takes it.
 *
 * @example
 * ```ts
 * const { client, topic } = kafkaConfigFromEnv();
 * const producer = createEmailProducer({ kafka: new Kafka(client), brokers: client.brokers, topic });
 * // or on @confluentinc/kafka-javascript:
 * const confluent = createEmailProducer({
 *   kafka: new KafkaJS.Kafka(confluentClientConfig(client)),
 *   brokers: client.brokers,
 *   topic,
 * });
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
  const problem = brokerListProblem(rawBrokers);
  if (problem !== undefined) throw new ConfigError('KAFKA_BROKERS', problem);
  const brokers = rawBrokers.split(',').map((b) => b.trim());
  const ssl = get('KAFKA_SSL');
  if (ssl !== undefined && ssl !== 'true' && ssl !== 'false')
    throw new ConfigError('KAFKA_SSL', 'must be true or false');
  const tls = tlsFromEnv(get, ssl);
  // Kafka's and librdkafka's own configs spell them PLAIN, SCRAM-SHA-256; kafkajs wants lower case.
  const mechanism = get('KAFKA_SASL_MECHANISM')?.toLowerCase();
  let sasl: KafkaClientConfig['sasl'];
  if (mechanism !== undefined) {
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      throw new ConfigError(
        'KAFKA_SASL_MECHANISM',
        `must be one of ${MECHANISMS.join(', ')} (in any case: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`,
      );
    }
    const username = get('KAFKA_SASL_USERNAME');
    const password = get('KAFKA_SASL_PASSWORD');
    if (username === undefined)
      throw new ConfigError('KAFKA_SASL_USERNAME', 'is required with KAFKA_SASL_MECHANISM');
    if (password === undefined)
      throw new ConfigError('KAFKA_SASL_PASSWORD', 'is required with KAFKA_SASL_MECHANISM');
    // PLAIN sends the password as it is (RFC 4616): over a connection without TLS only when asked.
    if (mechanism === 'plain' && ssl === undefined && tls === undefined)
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
    throw new ConfigError(
      'MAILROOM_WORKER_CONCURRENCY',
      `must be a whole number from 1 to ${MAX_CONCURRENCY}, not ${JSON.stringify(concurrency)}`,
    );
  }
  const topic = get('MAILROOM_KAFKA_TOPIC') ?? DEFAULT_TOPIC;
  const badTopic = topicNameProblem(topic);
  if (badTopic !== undefined) throw new ConfigError('MAILROOM_KAFKA_TOPIC', badTopic);
  return {
    client: {
      brokers,
      clientId: get('KAFKA_CLIENT_ID') ?? 'mailroom',
      ...(tls ? { ssl: tls } : ssl === 'true' ? { ssl: true } : {}),
      ...(sasl ? { sasl } : {}),
    },
    clientLibrary,
    topic,
    groupId: get('MAILROOM_KAFKA_GROUP') ?? 'mailroom-email-worker',
    concurrency: Number(concurrency),
  };
}

/**
 * Internal: how a client connects, for a start-up line: TLS or not, whose CAs, the client
 * certificate's subject, the SASL mechanism. Never a key, a password or a user name.
 */
export function describeKafkaSecurity(client: KafkaClientConfig): {
  fields: { tls: false | { ca: string; clientCertificate?: string }; sasl?: string };
  text: string;
} {
  const sasl = client.sasl ? { sasl: client.sasl.mechanism } : {};
  const saslText = client.sasl ? `, SASL ${client.sasl.mechanism}` : '';
  if (!client.ssl) return { fields: { tls: false, ...sasl }, text: `without TLS${saslText}` };
  const tls = client.ssl === true ? {} : client.ssl;
  let ca = "the system's";
  if (tls.ca !== undefined) {
    const more = (tls.ca.match(CERTIFICATE)?.length ?? 1) - 1;
    ca = `${subjectOf(tls.ca)}${more > 0 ? ` and ${more} more` : ''}`;
  }
  // The first certificate of a chain is the client's own.
  const clientCertificate = tls.cert === undefined ? undefined : subjectOf(tls.cert);
  const caText = tls.ca === undefined ? "the system's CAs" : `private CA ${ca}`;
  return {
    fields: { tls: { ca, ...(clientCertificate ? { clientCertificate } : {}) }, ...sasl },
    text: `over TLS (${caText}${clientCertificate ? `; client certificate ${clientCertificate}` : ''})${saslText}`,
  };
}

/** The subject of the first certificate in `pem`, one line (`CN=mailroom-worker, O=Acme`). */
function subjectOf(pem: string): string {
  try {
    return new X509Certificate(pem.match(CERTIFICATE)?.[0] ?? '').subject.split('\n').join(', ');
  } catch {
    return 'unknown'; // checked when read from the environment; a config made in code may hold anything
  }
}

/** The TLS files the variables name, read and checked; undefined when none is set. */
function tlsFromEnv(
  get: (name: string) => string | undefined,
  ssl: string | undefined,
): KafkaTlsOptions | undefined {
  const given = TLS_VARIABLES.find((name) => get(name) !== undefined);
  if (given === undefined) return undefined;
  if (ssl === 'false')
    throw new ConfigError(
      'KAFKA_SSL',
      `is false, but ${given} is a TLS setting: set KAFKA_SSL=true (or leave it unset: ${given} turns TLS on), or unset ${given}`,
    );
  const caPath = get('KAFKA_SSL_CA_LOCATION');
  const certPath = get('KAFKA_SSL_CERTIFICATE_LOCATION');
  const keyPath = get('KAFKA_SSL_KEY_LOCATION');
  const passphrase = get('KAFKA_SSL_KEY_PASSWORD');
  if (certPath !== undefined && keyPath === undefined)
    throw new ConfigError(
      'KAFKA_SSL_KEY_LOCATION',
      "is required with KAFKA_SSL_CERTIFICATE_LOCATION (the client certificate's private key, PEM)",
    );
  if (keyPath !== undefined && certPath === undefined)
    throw new ConfigError(
      'KAFKA_SSL_CERTIFICATE_LOCATION',
      'is required with KAFKA_SSL_KEY_LOCATION (the client certificate of that key, PEM)',
    );
  if (passphrase !== undefined && keyPath === undefined)
    throw new ConfigError(
      'KAFKA_SSL_KEY_LOCATION',
      'is required with KAFKA_SSL_KEY_PASSWORD (the key it opens)',
    );
  const options: KafkaTlsOptions = {};
  if (caPath !== undefined) {
    const bundle = certificatesFile('KAFKA_SSL_CA_LOCATION', caPath, { folder: true });
    // A bundle may keep an expired CA beside its successor; one with none in date verifies nothing.
    if (!bundle.all.some((cert) => outOfDate(cert) === undefined))
      throw new ConfigError(
        'KAFKA_SSL_CA_LOCATION',
        `${caPath}: no certificate in it is in date (${outOfDate(bundle.first)}), so none can verify the brokers: replace it`,
      );
    options.ca = bundle.text;
  }
  if (certPath !== undefined && keyPath !== undefined) {
    const cert = certificatesFile('KAFKA_SSL_CERTIFICATE_LOCATION', certPath);
    const stale = outOfDate(cert.first);
    if (stale !== undefined)
      throw new ConfigError(
        'KAFKA_SSL_CERTIFICATE_LOCATION',
        `${certPath}: the client certificate (${subjectOf(cert.text)}) ${stale}, and the brokers refuse it in the TLS handshake: renew it`,
      );
    const key = privateKeyFile(keyPath, passphrase);
    if (!cert.first.checkPrivateKey(key.object))
      throw new ConfigError(
        'KAFKA_SSL_KEY_LOCATION',
        `${keyPath} is not the key of the certificate in ${certPath} (KAFKA_SSL_CERTIFICATE_LOCATION)`,
      );
    options.cert = cert.text;
    options.key = key.text;
    if (passphrase !== undefined) options.passphrase = passphrase;
  }
  return options;
}

/** A file's text; unreadable is a ConfigError naming the variable, the path and why (ENOENT …). */
function readPem(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(variable, `cannot read ${path} (${code})`);
  }
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // readPem says why it cannot be read
  }
}

/** The certificates of a folder's files, each once, in name order, as one PEM bundle. */
function folderBundle(variable: string, path: string): string {
  let names: string[];
  try {
    names = readdirSync(path).sort();
  } catch (error) {
    throw new ConfigError(
      variable,
      `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  const blocks = new Set<string>();
  for (const name of names) {
    const file = join(path, name);
    if (isFolder(file)) continue;
    for (const block of readPem(variable, file).match(CERTIFICATE) ?? []) blocks.add(block);
  }
  if (blocks.size === 0)
    throw new ConfigError(variable, `${path} is a folder with no PEM certificate in its files`);
  return `${[...blocks].join('\n')}\n`;
}

/**
 * Why `cert` is not valid now: "expired on 2020-01-02T00:00:00.000Z", "is not valid until …"; or
 * undefined while it is (its notBefore..notAfter, RFC 5280 §4.1.2.5, checked by every TLS peer).
 */
function outOfDate(cert: X509Certificate, now = Date.now()): string | undefined {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (now > notAfter) return `expired on ${new Date(notAfter).toISOString()}`;
  if (now < notBefore) return `is not valid until ${new Date(notBefore).toISOString()}`;
  return undefined;
}

/**
 * A PEM file of certificates (a CA bundle, a certificate and its chain), each one parsed. With
 * `folder`, `path` may also be a folder of such files, as librdkafka's `ssl.ca.location` and
 * OpenSSL's CApath allow: every certificate of its files (not its subfolders), each once (a
 * hashed folder links the same file under several names), one bundle.
 */
function certificatesFile(
  variable: string,
  path: string,
  { folder = false } = {},
): { text: string; first: X509Certificate; all: X509Certificate[] } {
  const text = folder && isFolder(path) ? folderBundle(variable, path) : readPem(variable, path);
  const blocks = text.match(CERTIFICATE) ?? [];
  if (blocks.length === 0)
    throw new ConfigError(
      variable,
      `${path} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    );
  const parsed = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new ConfigError(variable, `${path}: certificate ${i + 1} of ${blocks.length} does not parse`);
    }
  });
  return { text, first: parsed[0] as X509Certificate, all: parsed };
}

const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** PKCS#8's encrypted form, and the legacy one OpenSSL marks with a Proc-Type header. */
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/;

/** The PEM private key at `path`, opened with `passphrase` when it is encrypted. */
function privateKeyFile(path: string, passphrase: string | undefined): { text: string; object: KeyObject } {
  const text = readPem('KAFKA_SSL_KEY_LOCATION', path);
  if (!PRIVATE_KEY.test(text))
    throw new ConfigError(
      'KAFKA_SSL_KEY_LOCATION',
      `${path} holds no PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)`,
    );
  const encrypted = ENCRYPTED.test(text);
  if (encrypted && passphrase === undefined)
    throw new ConfigError('KAFKA_SSL_KEY_PASSWORD', `is required: the key in ${path} is encrypted`);
  try {
    return { text, object: createPrivateKey({ key: text, format: 'pem', passphrase }) };
  } catch {
    // The cause is left out: OpenSSL's message says nothing a user can act on, and no secret goes in.
    if (encrypted)
      throw new ConfigError('KAFKA_SSL_KEY_PASSWORD', `does not open the encrypted key in ${path}`);
    throw new ConfigError('KAFKA_SSL_KEY_LOCATION', `${path}: the private key does not parse`);
  }
}
