/**
 * The `mailroom` command's config file (`mailroom.config.ts`, see `defineConfig()`): found, loaded
 * with jiti (imported only when there is a file), and checked field by field. Every problem is a
 * one-line `ConfigError` naming the file and the field.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { MailroomConfig } from '../config-file.js';
import { nearest } from '../did-you-mean.js';
import { ConfigError, isMailroomError } from '../errors.js';
import { isKafkaFlavor } from '../kafka/client.js';
import { brokerListProblem, MAX_CONCURRENCY } from '../kafka/config.js';
import { oneLine } from '../log.js';
import { configAddress } from '../message.js';
import { isTemplateHandle } from '../templates/define.js';

/** The names looked for in the working directory, in this order. */
export const CONFIG_NAMES = [
  'mailroom.config.ts',
  'mailroom.config.mts',
  'mailroom.config.cts',
  'mailroom.config.js',
  'mailroom.config.mjs',
  'mailroom.config.cjs',
] as const;

/** A config file, loaded and checked. */
export interface LoadedConfig {
  /** Its absolute path. */
  readonly file: string;
  /** How errors name it: relative to the working directory when inside it. */
  readonly name: string;
  readonly config: MailroomConfig;
  /** `templatesDir`, resolved against the file's folder. */
  readonly templatesDir: string | undefined;
}

const FIELDS: readonly (keyof MailroomConfig)[] = [
  'templates',
  'templatesDir',
  'layouts',
  'partials',
  'css',
  'brand',
  'from',
  'replyTo',
  'appName',
  'locale',
  'messages',
  'maxMessageBytes',
  'retry',
  'transport',
  'worker',
];
const WORKER_FIELDS = [
  'brokers',
  'group',
  'topic',
  'retryTopic',
  'deadLetterTopic',
  'delayTopics',
  'concurrency',
  'client',
];

/** `--config FILE` (relative to the working directory), else the first of {@link CONFIG_NAMES} there. */
export function findConfig(flag: string | undefined, cwd: string = process.cwd()): string | undefined {
  if (flag !== undefined) {
    const file = resolve(cwd, flag);
    if (!existsSync(file) || !statSync(file).isFile())
      throw new ConfigError('--config', `${file} does not exist`);
    return file;
  }
  return CONFIG_NAMES.map((name) => resolve(cwd, name)).find((file) => existsSync(file));
}

/** The config file of `--config` or the working directory, loaded and checked; none: `undefined`. */
export async function loadConfig(flag: string | undefined): Promise<LoadedConfig | undefined> {
  const file = findConfig(flag);
  if (file === undefined) return undefined;
  const name = displayName(file);
  // Loaded only now: a command without a config file (and `import('mailroom-js')`) never pays for it.
  const { createJiti } = await import('jiti');
  const jiti = createJiti(file, { moduleCache: false, interopDefault: false });
  let module: Record<string, unknown>;
  try {
    module = (await jiti.import(file)) as Record<string, unknown>;
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    const kind = (error as Error)?.name;
    const why = isMailroomError(error) || !kind || kind === 'Error' ? message : `${kind}: ${message}`;
    throw new ConfigError(name, `cannot be loaded: ${oneLine(why.replace(/\s+/g, ' '), 300)}`);
  }
  if (
    module === null ||
    typeof module !== 'object' ||
    !('default' in module) ||
    module.default === undefined
  ) {
    throw new ConfigError(name, 'has no default export: end it with export default defineConfig({ … })');
  }
  const config = checkConfig(module.default, name);
  return {
    file,
    name,
    config,
    templatesDir: config.templatesDir === undefined ? undefined : resolve(dirname(file), config.templatesDir),
  };
}

function displayName(file: string): string {
  const path = relative(process.cwd(), file);
  return path.startsWith('..') || isAbsolute(path) ? file : path;
}

/** The default export, checked: the wrong shape is refused here, naming the field. */
export function checkConfig(value: unknown, name: string): MailroomConfig {
  const fail = (field: string, problem: string) => new ConfigError(`${name}: ${field}`, problem);
  if (!isObject(value))
    throw new ConfigError(name, 'the default export must be an object: defineConfig({ … })');
  const config = value as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if ((FIELDS as readonly string[]).includes(key)) continue;
    const near = nearest(key, FIELDS);
    throw fail(key, `is not a config field${near.distance <= 2 ? `; did you mean ${near.candidate}?` : ''}`);
  }
  const { templates, worker } = config;
  if (templates !== undefined) {
    if (!Array.isArray(templates)) throw fail('templates', 'must be an array of defineTemplate() handles');
    const seen = new Set<string>();
    templates.forEach((handle: unknown, i) => {
      if (!isTemplateHandle(handle))
        throw fail(`templates[${i}]`, 'is not a template: define it with defineTemplate()');
      if (seen.has(handle.name)) throw fail(`templates[${i}]`, `"${handle.name}" is in the list twice`);
      seen.add(handle.name);
    });
  }
  for (const field of ['templatesDir', 'css', 'appName'] as const) {
    if (config[field] !== undefined && typeof config[field] !== 'string')
      throw fail(field, 'must be a string');
  }
  if (config.templatesDir === '') throw fail('templatesDir', 'must not be empty');
  for (const field of ['layouts', 'partials'] as const) {
    const record = config[field];
    if (record === undefined) continue;
    if (!isObject(record) || Object.values(record).some((source) => typeof source !== 'string'))
      throw fail(field, 'must be an object of eta sources by name');
  }
  if (config.brand !== undefined && !isObject(config.brand))
    throw fail('brand', 'must be an object ({ logoUrl, url, colors })');
  if (isObject(config.brand) && config.brand.colors !== undefined && !isObject(config.brand.colors))
    throw fail('brand.colors', 'must be an object of colours by name');
  for (const field of ['from', 'replyTo'] as const) {
    if (config[field] !== undefined) configAddress(config[field] as string, `${name}: ${field}`);
  }
  if (config.retry !== undefined && config.retry !== false && !isObject(config.retry))
    throw fail('retry', 'must be false or an object ({ maxAttempts, … })');
  const transport = config.transport as { send?: unknown; name?: unknown } | undefined;
  if (
    transport !== undefined &&
    !(isObject(transport) && typeof transport.send === 'function' && typeof transport.name === 'string')
  )
    throw fail('transport', 'must be a Transport (smtpTransport({ … }), mailgunTransport({ … }) …)');
  if (worker !== undefined && !isObject(worker))
    throw fail('worker', 'must be an object ({ brokers, topic, … })');
  if (isObject(worker)) checkWorker(worker, (field, problem) => fail(`worker.${field}`, problem));
  return config as MailroomConfig;
}

function checkWorker(
  worker: Record<string, unknown>,
  fail: (field: string, problem: string) => ConfigError,
): void {
  for (const key of Object.keys(worker)) {
    if (!WORKER_FIELDS.includes(key)) throw fail(key, `is not a worker field (${WORKER_FIELDS.join(', ')})`);
  }
  const { concurrency } = worker;
  checkBrokers(worker.brokers, fail);
  for (const field of ['group', 'topic', 'retryTopic', 'deadLetterTopic']) {
    // Blank would read as unset: the worker would join the default topic or group, another deployment's perhaps.
    if (worker[field] !== undefined && (typeof worker[field] !== 'string' || worker[field].trim() === ''))
      throw fail(field, 'must be a non-empty string');
  }
  if (
    concurrency !== undefined &&
    !(
      Number.isInteger(concurrency) &&
      (concurrency as number) >= 1 &&
      (concurrency as number) <= MAX_CONCURRENCY
    )
  )
    throw fail('concurrency', `must be a whole number from 1 to ${MAX_CONCURRENCY}`);
  if (worker.delayTopics !== undefined && typeof worker.delayTopics !== 'boolean')
    throw fail('delayTopics', 'must be true or false');
  if (worker.client !== undefined && !isKafkaFlavor(worker.client))
    throw fail('client', "must be 'kafkajs' or 'confluent' (for @confluentinc/kafka-javascript)");
}

/**
 * `worker.brokers`: a host:port string or a non-empty array of them, each checked as KAFKA_BROKERS
 * is, so a bad one is named here (`worker.brokers[1]`) rather than as the variable it stands in for.
 */
function checkBrokers(brokers: unknown, fail: (field: string, problem: string) => ConfigError): void {
  if (brokers === undefined) return;
  const list = typeof brokers === 'string' ? [brokers] : brokers;
  if (!(Array.isArray(list) && list.length > 0 && list.every((b) => typeof b === 'string')))
    throw fail('brokers', 'must be host:port strings');
  list.forEach((entry: string, i) => {
    const problem = brokerListProblem(entry);
    if (problem !== undefined) throw fail(typeof brokers === 'string' ? 'brokers' : `brokers[${i}]`, problem);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
