/**
 * SendGrid's Event Webhook: a JSON array of events, `[{ email, timestamp, event, sg_message_id, … }]`.
 *
 * Verification follows Twilio SendGrid's "Getting Started with the Event Webhook Security
 * Features" (twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
 * an ECDSA (P-256, SHA-256) signature, base64 DER, in `X-Twilio-Email-Event-Webhook-Signature`,
 * over the `X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body, checked with
 * the verification key from Mail Settings (base64 DER SubjectPublicKeyInfo, or PEM). SendGrid
 * sends no request id, so a replay is the same timestamp and body seen again (not the signature:
 * an ECDSA signature can be re-encoded and still verify). Events (SendGrid, "Event Webhook
 * Reference"): `delivered`, `deferred`, `bounce` (`type: bounce` is hard, `type: blocked` soft),
 * `spamreport` (complained), `unsubscribe` and `group_unsubscribe`, `open`, `click`.
 */

import { createPublicKey, type KeyObject, verify as verifySignature } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { bracketed, type DeliveryEvent, dateOf, optional, recipientOf, record, text } from './events.js';
import { digest, FORGED, fresh, header, parseJson, type WebhookVerifier } from './verify.js';

/** Options of the SendGrid webhook (`provider: 'sendgrid'`). */
export interface SendGridWebhookOptions {
  /**
   * The Signed Event Webhook's verification key (Mail Settings, Event Webhook): the base64 string
   * SendGrid shows (DER SubjectPublicKeyInfo), or PEM. An ECDSA P-256 public key. Required.
   */
  publicKey: string;
}

/** Internal: the SendGrid verifier. */
export function sendgridVerifier(options: SendGridWebhookOptions, toleranceMs: number): WebhookVerifier {
  const key = publicKey(options.publicKey);
  return {
    provider: 'sendgrid',
    verify(request, nowMs) {
      const signature = header(request.headers, 'x-twilio-email-event-webhook-signature');
      const timestamp = header(request.headers, 'x-twilio-email-event-webhook-timestamp');
      if (!signature || !timestamp) return FORGED;
      let valid = false;
      try {
        valid = verifySignature(
          'sha256',
          Buffer.concat([Buffer.from(timestamp, 'utf8'), request.body]),
          key,
          Buffer.from(signature, 'base64'),
        );
      } catch {
        valid = false;
      }
      if (!valid || !fresh(timestamp, nowMs, toleranceMs)) return FORGED;
      return { ok: true, replayKey: `sendgrid:${digest(timestamp, '.', request.body)}` };
    },
    parse(body, nowMs) {
      const events = parseJson(body);
      if (!Array.isArray(events)) return [];
      return events.flatMap((raw) => {
        const event = sendgridEvent(record(raw), nowMs);
        return event ? [event] : [];
      });
    },
  };
}

function publicKey(value: unknown): KeyObject {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ConfigError('publicKey', "required: the Signed Event Webhook's verification key");
  let key: KeyObject;
  try {
    key = value.includes('-----BEGIN')
      ? createPublicKey(value)
      : createPublicKey({ key: Buffer.from(value.trim(), 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new ConfigError('publicKey', 'not a public key: give the base64 key SendGrid shows, or PEM');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new ConfigError('publicKey', 'must be an ECDSA P-256 public key, as SendGrid issues');
  return key;
}

function sendgridEvent(raw: Record<string, unknown>, nowMs: number): DeliveryEvent | undefined {
  const recipient = recipientOf(raw.email);
  if (!recipient) return undefined;
  const base = {
    provider: 'sendgrid' as const,
    recipient,
    timestamp: dateOf(raw.timestamp, nowMs),
    ...optional('providerMessageId', text(raw.sg_message_id)),
    ...optional('messageId', bracketed(text(raw['smtp-id']))),
    ...optional('reason', text(raw.reason) ?? text(raw.response)),
    ...optional('diagnostic', text(raw.status)),
    raw,
  };
  switch (raw.event) {
    case 'delivered':
      return { ...base, type: 'delivered' };
    case 'deferred':
      return { ...base, type: 'deferred' };
    case 'bounce':
      return { ...base, type: 'bounced', bounce: raw.type === 'blocked' ? 'soft' : 'hard' };
    case 'spamreport':
      return { ...base, type: 'complained' };
    case 'unsubscribe':
    case 'group_unsubscribe':
      return { ...base, type: 'unsubscribed' };
    case 'open':
      return { ...base, type: 'opened' };
    case 'click':
      return { ...base, type: 'clicked', ...optional('url', text(raw.url)) };
    default:
      return undefined;
  }
}
