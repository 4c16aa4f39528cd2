/**
 * mailroom-js/kafka: decoupled delivery over Apache Kafka. A producer publishes envelope v1 records
 * to `notifications.email`; a worker consumes, renders, sends, retries and dead-letters.
 * The Kafka client (kafkajs or Confluent's KafkaJS API) is passed in; neither is imported here.
 */
export {
  type ConfluentKafkaJSConfig,
  type ConfluentTlsProperties,
  type ConsumerSettings,
  confluentClientConfig,
  type KafkaBatchPayload,
  type KafkaClientLike,
  type KafkaConsumerLike,
  type KafkaFlavor,
  type KafkaHeaders,
  type KafkaIncomingMessage,
  type KafkaOutgoingMessage,
  type KafkaProducerLike,
} from './client.js';
export {
  type KafkaClientConfig,
  type KafkaEnvConfig,
  type KafkaSasl,
  type KafkaTlsOptions,
  kafkaConfigFromEnv,
} from './config.js';
export {
  createEnvelope,
  ENVELOPE_VERSION,
  type EnvelopeAttachment,
  type EnvelopeLimits,
  type EnvelopeV1,
  parseEnvelope,
} from './envelope.js';
export {
  isKafkaForwardError,
  isKafkaTopicMissingError,
  isKafkaUnavailableError,
  KafkaForwardError,
  KafkaTopicMissingError,
  KafkaUnavailableError,
} from './failures.js';
export {
  serveWorkerHealth,
  type WorkerHealth,
  type WorkerHealthOptions,
  type WorkerHealthServer,
  workerHealth,
} from './health.js';
export {
  type ClaimOptions,
  type ClaimResult,
  fromSentKeyStore,
  type IdempotencyStore,
  IdempotencyStoreError,
  isIdempotencyStoreError,
  type MarkResult,
  memoryIdempotencyStore,
  type SentKeyStore,
} from './idempotency.js';
export { type ConfluentKafkaLogger, confluentLogger, type KafkaLogEntry, kafkaLogCreator } from './log.js';
export {
  type PromRegistryLike,
  type WorkerMetrics,
  type WorkerMetricsOptions,
  workerMetrics,
} from './metrics.js';
export {
  type BuiltinEmail,
  type CustomEmail,
  createEmailProducer,
  DEFAULT_TOPIC,
  type EmailProducer,
  type EmailProducerOptions,
  type PublishOptions,
  type PublishReceipt,
  type TemplateEmail,
} from './producer.js';
export { type RedisClientLike, type RedisIdempotencyStoreOptions, redisIdempotencyStore } from './redis.js';
export {
  createEmailWorker,
  DELAY_TIERS,
  type DeadLetterReason,
  type DelayTier,
  type EmailWorker,
  type EmailWorkerEvents,
  type EmailWorkerOptions,
  type EmailWorkerStats,
  HEADERS,
  type PossibleDuplicate,
  type RecordPosition,
  type WorkerRetryOptions,
} from './worker.js';
