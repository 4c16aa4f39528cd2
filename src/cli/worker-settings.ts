/**
 * Internal: `mailroom worker`'s settings from its flags, the config file's `worker` and the
 * environment, in that order. Each remembers what gave it, so an error names what the user wrote:
 * the flag, the config file's field, or the variable.
 */
import type { MailroomWorkerConfig } from '../config-file.js';
import { ConfigError, isConfigError } from '../errors.js';
import { type KafkaEnvConfig, kafkaConfigFromEnv } from '../kafka/config.js';
import { topicNameProblem } from '../kafka/producer.js';
import { workerTopics } from '../kafka/worker.js';
import type { LoadedConfig } from './config-file.js';

/** Flags of `mailroom worker`; each overrides the config file's field, which overrides the variable. */
export interface WorkerFlags {
  brokers?: string;
  group?: string;
  topic?: string;
  'retry-topic'?: string;
  'dlq-topic'?: string;
  'delay-topics'?: boolean;
  concurrency?: string;
  templates?: string;
  'health-port'?: string;
  'health-host'?: string;
  'kafka-client'?: string;
}

/** What `mailroom worker` runs with. */
export interface WorkerSettings {
  readonly kafka: KafkaEnvConfig;
  /** Undefined: the worker's default, `<topic>.retry`. */
  readonly retryTopic: string | undefined;
  /** Undefined: the worker's default, `<topic>.dlq`. */
  readonly deadLetterTopic: string | undefined;
  readonly delayTopics: boolean;
  /** How an error about `variable` names it: the flag or the config file's field that gave its value, else itself. */
  named(variable: string): string;
}

/** A setting: its flag, its field in the config file's `worker`, and the variable it stands in for, if any. */
interface Setting {
  readonly flag: keyof WorkerFlags;
  readonly field: keyof MailroomWorkerConfig;
  readonly variable?: string;
}

const SETTINGS = {
  brokers: { flag: 'brokers', field: 'brokers', variable: 'KAFKA_BROKERS' },
  group: { flag: 'group', field: 'group', variable: 'MAILROOM_KAFKA_GROUP' },
  topic: { flag: 'topic', field: 'topic', variable: 'MAILROOM_KAFKA_TOPIC' },
  concurrency: { flag: 'concurrency', field: 'concurrency', variable: 'MAILROOM_WORKER_CONCURRENCY' },
  client: { flag: 'kafka-client', field: 'client', variable: 'MAILROOM_KAFKA_CLIENT' },
  retryTopic: { flag: 'retry-topic', field: 'retryTopic' },
  deadLetterTopic: { flag: 'dlq-topic', field: 'deadLetterTopic' },
  delayTopics: { flag: 'delay-topics', field: 'delayTopics' },
} as const satisfies Record<string, Setting>;

/** What gave a setting: `--flag`, or `<config file>: worker.<field>`; undefined for its variable or its default. */
type GivenBy = (setting: Setting) => string | undefined;

/**
 * The worker's settings. A flag or config field that stands in for a variable is passed to
 * `kafkaConfigFromEnv` as that variable, and an error about it names the flag or the field.
 */
export function workerSettings(
  flags: WorkerFlags,
  config: LoadedConfig | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): WorkerSettings {
  const file: MailroomWorkerConfig = config?.config.worker ?? {};
  const givenBy: GivenBy = (setting) => {
    if (flags[setting.flag] !== undefined) return `--${setting.flag}`;
    if (file[setting.field] !== undefined) return `${config?.name}: worker.${setting.field}`;
    return undefined;
  };
  const { kafka, named } = kafkaSettings(flags, file, givenBy, env);
  const retryTopic = flags['retry-topic'] ?? file.retryTopic;
  const deadLetterTopic = flags['dlq-topic'] ?? file.deadLetterTopic;
  const delayTopics = flags['delay-topics'] ?? file.delayTopics ?? false;
  const topicBy =
    givenBy(SETTINGS.topic) ?? (env.MAILROOM_KAFKA_TOPIC?.trim() ? 'MAILROOM_KAFKA_TOPIC' : undefined);
  // The names the worker will use (the library's defaults for those not given).
  const names = workerTopics({ topic: kafka.topic, retryTopic, deadLetterTopic, delayTopics });
  const topics: NamedTopic[] = [
    { role: 'the topic', name: names.topic, by: topicBy, shown: 'the default' },
    {
      role: 'the retry topic',
      name: names.retryTopic,
      by: givenBy(SETTINGS.retryTopic),
      shown: 'the default, <topic>.retry',
    },
    {
      role: 'the dead-letter topic',
      name: names.deadLetterTopic,
      by: givenBy(SETTINGS.deadLetterTopic),
      shown: 'the default, <topic>.dlq',
    },
    // Named after the topic, so never what the user wrote: a clash blames the other name.
    ...names.delayTiers.map((tier) => ({
      role: 'a delay topic',
      name: tier.topic,
      by: undefined,
      shown: givenBy(SETTINGS.delayTopics),
    })),
  ];
  refuseBadTopicNames(topics, topicBy);
  refuseSharedTopics(topics);
  return { kafka, retryTopic, deadLetterTopic, delayTopics, named };
}

/**
 * `kafkaConfigFromEnv` with each flag or config field that stands in for a variable passed as that
 * variable; `named` says what gave a variable's value, and an error about one names it so.
 */
function kafkaSettings(
  flags: WorkerFlags,
  file: MailroomWorkerConfig,
  givenBy: GivenBy,
  env: Readonly<Record<string, string | undefined>>,
): { kafka: KafkaEnvConfig; named: (variable: string) => string } {
  const overrides: Record<string, string> = {};
  const names = new Map<string, string>();
  for (const setting of Object.values(SETTINGS)) {
    const by = givenBy(setting);
    if (!('variable' in setting) || by === undefined) continue;
    overrides[setting.variable] = text(flags[setting.flag] ?? file[setting.field]);
    names.set(setting.variable, by);
  }
  const named = (variable: string) => names.get(variable) ?? variable;
  try {
    return { kafka: kafkaConfigFromEnv({ ...env, ...overrides }), named };
  } catch (error) {
    if (!isConfigError(error) || named(error.option) === error.option) throw error;
    throw new ConfigError(named(error.option), error.message.slice(error.option.length + 2));
  }
}

/** A flag's or a config field's value as its variable spells it: a list comma-separated. */
function text(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** A topic the worker uses: its role, its name, and what named it (undefined: a default, or made from the topic's name). */
interface NamedTopic {
  readonly role: string;
  readonly name: string;
  readonly by: string | undefined;
  /** How an error shows where it came from when `by` is undefined. */
  readonly shown: string | undefined;
}

/**
 * A name Kafka cannot have (`topicNameProblem`), refused naming what gave it; a name made from the
 * topic's (`<topic>.retry` of a 245-character topic) blames what gave the topic.
 */
function refuseBadTopicNames(topics: readonly NamedTopic[], topicBy: string | undefined): void {
  for (const { role, name, by } of topics) {
    const problem = topicNameProblem(name);
    if (problem === undefined) continue;
    const blamed = by ?? topicBy;
    if (blamed === undefined) continue; // made from the default topic: createEmailWorker says so
    throw new ConfigError(blamed, by === undefined ? `${role}, made from it, ${problem}` : problem);
  }
}

/**
 * Two roles on one topic would have the worker consume its own retries or dead letters: refused,
 * naming what gave the name (a flag, a config field, a variable) and the role it clashes with.
 */
function refuseSharedTopics(topics: readonly NamedTopic[]): void {
  topics.forEach((later, i) => {
    const earlier = topics.slice(0, i).find((topic) => topic.name === later.name);
    if (earlier === undefined) return;
    // Blame the name the user wrote; of two they wrote, the later (the topic is the one others derive from).
    const [blamed, other] = later.by !== undefined ? [later, earlier] : [earlier, later];
    if (blamed.by === undefined) return; // two defaults never clash; createEmailWorker would say so
    throw new ConfigError(
      blamed.by,
      `${JSON.stringify(blamed.name)} is also ${other.role} (${other.by ?? other.shown}): the topic, the retry topic, the dead-letter topic and the delay topics must all differ`,
    );
  });
}
