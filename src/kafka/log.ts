/**
 * kafkajs's own log lines through a mailroom {@link Logger}, in the same shape as the worker's:
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
  if (
    typeof logger?.info !== 'function' ||
    typeof logger.warn !== 'function' ||
    typeof logger.error !== 'function'
  ) {
    throw new TypeError('kafkaLogCreator: logger must have info, warn and error methods');
  }
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
