/**
 * Mailgun's webhooks: JSON `{ signature: { timestamp, token, signature }, "event-data": { … } }`.
 *
 * Verification follows Mailgun's "Securing Webhooks"
 * (documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks): HMAC-SHA256
 * over `timestamp` and `token` concatenated, keyed with the webhook signing key (not the API key),
 * compared as hex. The token (50 random characters) names the request for replay checks.
 * Mailgun's signature does not cover `event-data`: a captured request's signature block could be
 * replayed with other event data, which is why a token is accepted once only (see `maxSeen`).
 * Only the JSON webhooks are read; Mailgun's legacy form-encoded ones are refused (403).
 * Events: `delivered`; `failed` with `severity: permanent` (hard bounce) or `temporary` (deferred);
 * `complained`, `unsubscribed`, `opened`, `clicked` (Mailgun, "Webhook Payloads").
 */

import { createHmac } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { bracketed, type DeliveryEvent, dateOf, optional, recipientOf, record, text } from './events.js';
import { FORGED, fresh, parseJson, safeEqual, type WebhookVerifier } from './verify.js';

/** Options of the Mailgun webhook (`provider: 'mailgun'`). */
export interface MailgunWebhookOptions {
  /** The HTTP webhook signing key (Mailgun dashboard, Webhooks). Required. */
  signingKey: string;
}

/** Internal: the Mailgun verifier. */
export function mailgunVerifier(options: MailgunWebhookOptions, toleranceMs: number): WebhookVerifier {
  const key = options.signingKey;
  if (typeof key !== 'string' || key.trim() === '')
    throw new ConfigError('signingKey', "required: Mailgun's HTTP webhook signing key");
  return {
    provider: 'mailgun',
    verify(request, nowMs) {
      const signature = record(record(parseJson(request.body)).signature);
      const { timestamp, token, signature: given } = signature;
      if (typeof timestamp !== 'string' || typeof token !== 'string' || typeof given !== 'string')
        return FORGED;
      const expected = createHmac('sha256', key)
        .update(timestamp + token)
        .digest('hex');
      if (!safeEqual(expected, given.toLowerCase())) return FORGED;
      if (!fresh(timestamp, nowMs, toleranceMs)) return FORGED;
      return { ok: true, replayKey: `mailgun:${token}` };
    },
    parse(body, nowMs) {
      const data = record(record(parseJson(body))['event-data']);
      const event = mailgunEvent(data, nowMs);
      return event ? [event] : [];
    },
  };
}

function mailgunEvent(data: Record<string, unknown>, nowMs: number): DeliveryEvent | undefined {
  const recipient = recipientOf(data.recipient);
  if (!recipient) return undefined;
  const headers = record(record(data.message).headers);
  const status = record(data['delivery-status']);
  const variables = record(data['user-variables']);
  const reason = text(status.description) ?? text(status.message) ?? text(data.reason);
  const diagnostic = text(status.code);
  const base = {
    provider: 'mailgun' as const,
    recipient,
    timestamp: dateOf(data.timestamp, nowMs),
    ...optional('messageId', bracketed(text(headers['message-id']))),
    ...optional('providerMessageId', text(data.id)),
    ...(Object.keys(variables).length ? { metadata: variables } : {}),
    ...optional('reason', reason),
    ...optional('diagnostic', diagnostic),
    raw: data,
  };
  switch (data.event) {
    case 'delivered':
      return { ...base, type: 'delivered' };
    case 'failed':
      return data.severity === 'permanent'
        ? { ...base, type: 'bounced', bounce: 'hard' }
        : { ...base, type: 'deferred' };
    case 'complained':
      return { ...base, type: 'complained' };
    case 'unsubscribed':
      return { ...base, type: 'unsubscribed' };
    case 'opened':
      return { ...base, type: 'opened' };
    case 'clicked':
      return { ...base, type: 'clicked', ...optional('url', text(data.url)) };
    default:
      return undefined;
  }
}
