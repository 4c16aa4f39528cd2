/**
 * The Kafka client's own log lines (kafkajs's, or `@confluentinc/kafka-javascript`'s) through a
 * mailroom {@link Logger}, in the same shape as the worker's:
 * `logger.warn({ event: 'kafka.log', namespace, …fields }, message)`.
 */
import type { Logger } from '../log.js';

/** kafkajs's `logLevel` numbers: NOTHING 0, ERROR 1, WARN 2, INFO 4, DEBUG 5. */
type KafkaLogLevel = number;

/** One kafkajs log entry, as its `logCreator` receives it. */
export interface KafkaLogEntry {
  namespace: string;
  level: KafkaLogLevel;
  label: string;
  log: { message: string; timestamp?: string; [field: string]: unknown };
}

/**
 * A kafkajs `logCreator` that writes to `logger`: pass it as `new Kafka({ logCreator })`.
 * ERROR, WARN, INFO and DEBUG go to the logger's method of that name (DEBUG is dropped when the
 * logger has no `debug`); kafkajs's `logLevel` option still decides what is logged at all.
 * Fields keep kafkajs's own (`groupId`, `broker`, `retryCount`, `error` …), never its stack
 * traces; the line is tagged `event: 'kafka.log'` with the client's `namespace` (`Consumer`,
 * `Connection` …).
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * import { Kafka, logLevel } from 'kafkajs';
 * import { kafkaLogCreator } from 'mailroom-js/kafka';
 *
 * const logger = pino();
 * const kafka = new Kafka({ brokers, logLevel: logLevel.WARN, logCreator: kafkaLogCreator(logger) });
 * ```
 */
export function kafkaLogCreator(logger: Logger): (level: KafkaLogLevel) => (entry: KafkaLogEntry) => void {
  checkLogger(logger, 'kafkaLogCreator');
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, stack: _stack, ...fields } = log;
      const line = { event: 'kafka.log', namespace, ...fields };
      if (level <= 1) logger.error(line, message);
      else if (level === 2) logger.warn(line, message);
      else if (level <= 4) logger.info(line, message);
      else logger.debug?.(line, message);
    };
}

function checkLogger(logger: Logger, caller: string): void {
  if (
    typeof logger?.info !== 'function' ||
    typeof logger.warn !== 'function' ||
    typeof logger.error !== 'function'
  ) {
    throw new TypeError(`${caller}: logger must have info, warn and error methods`);
  }
}

/** The logger interface of `@confluentinc/kafka-javascript`'s KafkaJS API (`kafkaJS: { logger }`). */
export interface ConfluentKafkaLogger {
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
  debug(message: string, extra?: object): void;
  /** kafkajs's level numbers: NOTHING 0, ERROR 1, WARN 2, INFO 4, DEBUG 5. */
  setLogLevel(level: number): void;
  namespace(namespace?: string, level?: number): ConfluentKafkaLogger;
}

/**
 * A logger for `@confluentinc/kafka-javascript` that writes to `logger`, as {@link kafkaLogCreator}
 * does for kafkajs: pass it as `new KafkaJS.Kafka({ kafkaJS: { brokers, logger, logLevel } })`.
 * Lines are tagged `event: 'kafka.log'`; the client's own fields are kept (`name`, `fac`, …), its
 * `timestamp` and stack traces are not. The client's `logLevel` decides what is logged (default INFO).
 *
 * @example
 * ```ts
 * import { KafkaJS } from '@confluentinc/kafka-javascript';
 * import { confluentLogger } from 'mailroom-js/kafka';
 *
 * const kafka = new KafkaJS.Kafka({
 *   kafkaJS: { brokers, logLevel: KafkaJS.logLevel.WARN, logger: confluentLogger(pino()) },
 * });
 * ```
 */
export function confluentLogger(logger: Logger): ConfluentKafkaLogger {
  checkLogger(logger, 'confluentLogger');
  const line = (extra: object | undefined) => {
    const { timestamp: _timestamp, stack: _stack, ...fields } = (extra ?? {}) as Record<string, unknown>;
    return { event: 'kafka.log', ...fields };
  };
  // The client sets the level from its `logLevel` (kafkajs's numbers: ERROR 1, WARN 2, INFO 4,
  // DEBUG 5) and expects the logger to drop what is above it, as its own default logger does.
  let level = 4;
  const adapter: ConfluentKafkaLogger = {
    error: (message, extra) => level >= 1 && logger.error(line(extra), message),
    warn: (message, extra) => level >= 2 && logger.warn(line(extra), message),
    info: (message, extra) => level >= 4 && logger.info(line(extra), message),
    debug: (message, extra) => level >= 5 && logger.debug?.(line(extra), message),
    setLogLevel: (next) => {
      level = next;
    },
    namespace: () => adapter,
  };
  return adapter;
}
