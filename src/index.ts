/**
 * mailroom: transactional email for Node.
 * The public surface, listed one by one: what is not here is internal.
 */
export type {
  BatchOptions,
  BatchOutcome,
  BatchProgress,
  BatchResult,
} from './batch.js';
export { configFromEnv, ENV_VARIABLES, TRANSPORT_NAMES } from './config.js';
export { defineConfig, type MailroomConfig, type MailroomWorkerConfig } from './config-file.js';
export {
  configure,
  defaultService,
  sendPasswordResetEmail,
  sendVerificationEmail,
  sendWelcomeEmail,
} from './default.js';
export { isProduction } from './env-names.js';
export {
  ConfigError,
  EmailError,
  type EmailErrorCode,
  type EmailErrorOptions,
  type FailureClass,
  failureClass,
  isConfigError,
  isEmailError,
  isMailroomError,
  isMessageError,
  isRetryable,
  isTemplateError,
  MailroomError,
  type MailroomErrorKind,
  MessageError,
  TemplateError,
} from './errors.js';
export type { Logger } from './log.js';
export {
  type Address,
  type AddressInput,
  type Attachment,
  type CalendarEvent,
  createMessage,
  DEFAULT_MAX_MESSAGE_BYTES,
  deliveryRecipients,
  type EmailCategory,
  type EmailMessage,
  type EmailMessageInput,
  formatAddress,
  MAX_TAG_LENGTH,
  MAX_TAGS,
  type MetadataValue,
  messageSize,
  parseAddress,
} from './message.js';
export type { PostgresConnectionOptions, PostgresPoolLike } from './postgres.js';
export {
  type ChoiceOptions,
  type ChoosableCategory,
  memoryPreferenceStore,
  PREFERENCE_DEFAULTS,
  type PreferenceChoice,
  type PreferenceReason,
  type PreferenceStore,
} from './preferences.js';
export {
  type PostgresPreferenceStore,
  type PostgresPreferenceStoreOptions,
  postgresPreferenceStore,
  preferenceTableSql,
} from './preferences-postgres.js';
export type { EmailQueue, QueuedEmail, QueueReceipt } from './queue.js';
export { DEFAULT_RETRY, parseRetryAfter, type RetryOptions } from './retry.js';
export { MAX_QUEUED_SEND_AHEAD_MS, type QuietHours } from './send-at.js';
export {
  EmailService,
  type EmailServiceEvents,
  type EmailServiceOptions,
  type FailedEvent,
  isEmailService,
  type MaintenanceNoticeOptions,
  type OrderConfirmationOptions,
  type PasswordResetEmailOptions,
  type ProductUpdateOptions,
  type QueuedEvent,
  type ReminderOptions,
  type RetryingEvent,
  type SecurityAlertOptions,
  type SendOptions,
  type SendTemplateOptions,
  type SentEvent,
  type SuppressedEvent,
  type VerificationEmailOptions,
  type WelcomeEmailOptions,
} from './service.js';
export {
  memorySuppressionStore,
  type Suppression,
  type SuppressionReason,
  type SuppressionStore,
  type SuppressOptions,
  suppressFromEvents,
} from './suppression.js';
export {
  type PostgresSuppressionStore,
  type PostgresSuppressionStoreOptions,
  postgresSuppressionStore,
  suppressionTableSql,
} from './suppression-postgres.js';
export {
  type AppInfo,
  type BrandOptions,
  type ButtonInk,
  DEFAULT_PALETTE,
  type Palette,
} from './templates/brand.js';
export type { BuiltinTemplates } from './templates/builtins.js';
export type { RenderedEmail } from './templates/compile.js';
export {
  type DataOf,
  type DetailRow,
  defineTemplate,
  type FieldChoice,
  type FieldKind,
  type FieldSpec,
  type Fields,
  type TemplateDefinition,
  type TemplateHandle,
} from './templates/define.js';
export type { MessageCatalog, Translations } from './templates/i18n.js';
export type {
  DataFor,
  MailroomTemplates,
  TemplateData,
  TemplateName,
  TemplateRef,
} from './templates/names.js';
export { TemplateRegistry, type TemplateRegistryOptions } from './templates/registry.js';
export {
  type RecipientRefusal,
  type SendContext,
  type SendResult,
  type SuppressedRecipient,
  type Transport,
  throwIfAborted,
} from './transport.js';
export { type FailoverOptions, type FailoverTransport, failoverTransport } from './transports/failover.js';
export {
  type DiscardResult,
  type HeldEmail,
  type HoldRecord,
  type HoldStatus,
  type HoldTransport,
  type HoldTransportOptions,
  heldId,
  holdTransport,
  isHoldTransport,
  type ReleaseOptions,
  type ReleaseResult,
} from './transports/hold.js';
export {
  type MailgunTransport,
  type MailgunTransportOptions,
  mailgunTransport,
} from './transports/mailgun.js';
export {
  type CapturedEmail,
  type MemoryTransport,
  type MemoryTransportOptions,
  memoryTransport,
} from './transports/memory.js';
export {
  type PostmarkTransport,
  type PostmarkTransportOptions,
  postmarkTransport,
} from './transports/postmark.js';
export { type ResendTransport, type ResendTransportOptions, resendTransport } from './transports/resend.js';
export {
  type RoundRobinOptions,
  type RoundRobinTransport,
  roundRobinTransport,
} from './transports/round-robin.js';
export {
  type SandboxFiles,
  type SandboxTransport,
  type SandboxTransportOptions,
  sandboxFiles,
  sandboxTransport,
} from './transports/sandbox.js';
export {
  type SendgridTransport,
  type SendgridTransportOptions,
  sendgridTransport,
} from './transports/sendgrid.js';
export {
  type SendmailTransport,
  type SendmailTransportOptions,
  sendmailTransport,
} from './transports/sendmail.js';
export {
  type SesClient,
  type SesCredentials,
  type SesTransport,
  type SesTransportOptions,
  sesTransport,
} from './transports/ses.js';
export { type SmtpTransport, type SmtpTransportOptions, smtpTransport } from './transports/smtp.js';
export { type StagingTransportOptions, stagingTransport } from './transports/staging.js';
export type { UnsubscribeOptions } from './unsubscribe/headers.js';
export type { UnsubscribeSecret } from './unsubscribe/token.js';
