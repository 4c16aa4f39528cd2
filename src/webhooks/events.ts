/**
 * One delivery event shape for every provider's webhook: what happened to one recipient of one
 * email, with the provider's payload kept untouched in `raw`.
 */

import { lowerAscii } from '../ascii-case.js';

/** The providers whose webhooks mailroom verifies and reads. */
export type WebhookProviderName = 'mailgun' | 'postmark' | 'sendgrid' | 'resend' | 'ses';

/** Fields every {@link DeliveryEvent} has. */
export interface DeliveryEventBase {
  /** The provider that sent the webhook. */
  readonly provider: WebhookProviderName;
  /**
   * The recipient the event is about, its ASCII letters lower-cased (`jane@example.com`); other
   * characters as the provider gave them.
   */
  readonly recipient: string;
  /**
   * `false` when the provider did not say which recipient of the email the event is about, so it
   * is repeated for each of them: Resend's events for an email with several recipients (its
   * payload names the email's `to`, not who bounced), SES's opens and clicks of such an email.
   * `suppressFromEvents` suppresses nobody on such an event. Absent when the recipient is known.
   */
  readonly recipientKnown?: false;
  /** When the provider says it happened. */
  readonly timestamp: Date;
  /** The provider's id of the message (Postmark's `MessageID`, SendGrid's `sg_message_id`, Resend's `email_id` …). */
  readonly providerMessageId?: string;
  /**
   * Our Message-ID (`<id@domain>`, as `SendResult.messageId`), when the provider echoes the header we
   * set: Mailgun (`message.headers.message-id`), SendGrid (`smtp-id`), Resend (`headers`, on some
   * events), SES (`mail.commonHeaders.messageId`).
   */
  readonly messageId?: string;
  /** The metadata sent with the email, when the provider echoes it (Mailgun `user-variables`, Postmark `Metadata`). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** The provider's words for why (a bounce description, an SMTP reply), when given. */
  readonly reason?: string;
  /** The receiving server's SMTP reply or status code, when given (`550`, `5.1.1` …). */
  readonly diagnostic?: string;
  /** The provider's payload for this event, as it arrived (one element of a batch for SendGrid). */
  readonly raw: unknown;
}

/** The receiving server accepted the email. */
export interface DeliveredEvent extends DeliveryEventBase {
  readonly type: 'delivered';
}
/** Delivery was delayed; the provider is still trying. */
export interface DeferredEvent extends DeliveryEventBase {
  readonly type: 'deferred';
}
/**
 * The email bounced. `hard`: the address does not exist or refuses mail for good (the provider's
 * permanent failure): stop sending to it. `soft`: a failure the provider gave up on that may not
 * recur (mailbox full, blocked, DNS trouble).
 */
export interface BouncedEvent extends DeliveryEventBase {
  readonly type: 'bounced';
  readonly bounce: 'hard' | 'soft';
}
/** The recipient marked the email as spam (a feedback-loop report). */
export interface ComplainedEvent extends DeliveryEventBase {
  readonly type: 'complained';
}
/** The recipient unsubscribed through the provider's link or List-Unsubscribe. */
export interface UnsubscribedEvent extends DeliveryEventBase {
  readonly type: 'unsubscribed';
}
/** The provider's tracking pixel loaded. */
export interface OpenedEvent extends DeliveryEventBase {
  readonly type: 'opened';
}
/** The recipient followed a tracked link; `url` is where it went, when given. */
export interface ClickedEvent extends DeliveryEventBase {
  readonly type: 'clicked';
  readonly url?: string;
}

/**
 * What a provider's webhook told us, one event per recipient, discriminated on `type`. Provider
 * events with no equivalent here (Mailgun `accepted`, SendGrid `processed`/`dropped`, Resend
 * `email.sent` …) are verified and acknowledged but not emitted.
 *
 * @example
 * ```ts
 * onEvent(event) {
 *   if (event.type === 'bounced' && event.bounce === 'hard') markUndeliverable(event.recipient);
 * }
 * ```
 */
export type DeliveryEvent =
  | DeliveredEvent
  | DeferredEvent
  | BouncedEvent
  | ComplainedEvent
  | UnsubscribedEvent
  | OpenedEvent
  | ClickedEvent;

/** The `type` of a {@link DeliveryEvent}. */
export type DeliveryEventType = DeliveryEvent['type'];

/** Internal: a field of a provider payload as a string, when it is one. */
export function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Internal: an object field of a payload, or an empty object. */
export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** Internal: a date from seconds since the epoch or an ISO 8601 string; `fallback` when neither. */
export function dateOf(value: unknown, fallback: number): Date {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(Math.round(value * 1000));
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    if (!Number.isNaN(parsed)) return new Date(parsed);
  }
  return new Date(fallback);
}

/** Internal: our Message-ID in angle brackets, as `SendResult.messageId` has it. */
export function bracketed(id: string | undefined): string | undefined {
  if (!id) return undefined;
  const bare = id.trim().replace(/^<|>$/g, '');
  return bare ? `<${bare}>` : undefined;
}

/**
 * Internal: the recipient a provider named, as events carry it: the address inside `Name <a@b>`
 * (or the whole string), its ASCII letters lower-cased and nothing else changed (see
 * {@link lowerAscii}); undefined when it is no plausible address (missing, blank, no `@`, a
 * space, a control or format character, over 254 characters), which drops the event as a missing
 * recipient always did. Non-ASCII addresses (SMTPUTF8) are kept as given: they name their own
 * mailbox, and the suppression list refuses them (an event for one suppresses nobody).
 */
export function recipientOf(value: unknown): string | undefined {
  const given = text(value);
  if (given === undefined) return undefined;
  const match = /<([^<>]+)>\s*$/.exec(given);
  const address = (match ? match[1]! : given).trim();
  return PLAUSIBLE_ADDRESS.test(address) && address.length <= 254 ? lowerAscii(address) : undefined;
}

/** One `@` between a local part of 1 to 64 characters and a dotted domain; no space, control, format or bracket character. */
const PLAUSIBLE_ADDRESS =
  /^[^\p{C}\p{Z}\s<>()[\]\\,;:"@]{1,64}@[^\p{C}\p{Z}\s<>()[\]\\,;:"@.]+(?:\.[^\p{C}\p{Z}\s<>()[\]\\,;:"@.]+)+$/u;

/** Internal: `{ [name]: value }` when there is a value, else nothing (for optional fields under exactOptionalPropertyTypes). */
export function optional<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}
