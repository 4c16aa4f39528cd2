/**
 * `mailroom-js/webhooks`: verified delivery events from Mailgun, Postmark, SendGrid, Resend and SES (through SNS),
 * normalised to one {@link DeliveryEvent} type, as a node:http handler to mount.
 */

export type {
  BouncedEvent,
  ClickedEvent,
  ComplainedEvent,
  DeferredEvent,
  DeliveredEvent,
  DeliveryEvent,
  DeliveryEventBase,
  DeliveryEventType,
  OpenedEvent,
  UnsubscribedEvent,
  WebhookProviderName,
} from './events.js';
export {
  createWebhookHandler,
  type WebhookCommonOptions,
  type WebhookHandler,
  type WebhookHandlerOptions,
} from './handler.js';
export type { MailgunWebhookOptions } from './mailgun.js';
export type { PostmarkWebhookOptions } from './postmark.js';
export type { ResendWebhookOptions } from './resend.js';
export type { SendGridWebhookOptions } from './sendgrid.js';
export type { SesWebhookOptions } from './ses.js';
