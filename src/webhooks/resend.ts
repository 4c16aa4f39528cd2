/**
 * Resend's webhooks, delivered by Svix: JSON `{ type, created_at, data: { email_id, to, … } }`.
 *
 * Verification follows Svix's "Verifying Webhooks Manually"
 * (docs.svix.com/receiving/verifying-payloads/how-manual), which Resend's "Verify Webhooks
 * Requests" (resend.com/docs/webhooks/verify-webhooks-requests) points to: the signed content is
 * `${svix-id}.${svix-timestamp}.${raw body}`, HMAC-SHA256 keyed with the base64 part of the
 * `whsec_…` secret, base64-encoded; `svix-signature` is a space-separated list of `v1,<signature>`
 * (several during a secret rotation). `svix-id` names the message for replay checks (a retry of
 * the same message keeps it). Events: `email.delivered`, `email.delivery_delayed` (deferred),
 * `email.bounced` (`data.bounce.type` `Permanent` is hard, `Transient` soft), `email.complained`,
 * `email.opened`, `email.clicked` (Resend, "Event Types").
 */

import { createHmac } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { bracketed, type DeliveryEvent, dateOf, optional, recipientOf, record, text } from './events.js';
import { FORGED, fresh, header, parseJson, safeEqual, type WebhookVerifier } from './verify.js';

/** Options of the Resend webhook (`provider: 'resend'`). */
export interface ResendWebhookOptions {
  /** The webhook's signing secret, `whsec_…` (Resend dashboard, the webhook's page). Required. */
  secret: string;
}

/** Internal: the Resend (Svix) verifier. */
export function resendVerifier(options: ResendWebhookOptions, toleranceMs: number): WebhookVerifier {
  const secret = options.secret;
  if (typeof secret !== 'string' || !/^whsec_[A-Za-z0-9+/=]+$/.test(secret.trim()))
    throw new ConfigError('secret', "required: the webhook's signing secret, whsec_ followed by base64");
  const key = Buffer.from(secret.trim().slice('whsec_'.length), 'base64');
  return {
    provider: 'resend',
    verify(request, nowMs) {
      const id = header(request.headers, 'svix-id');
      const timestamp = header(request.headers, 'svix-timestamp');
      const signatures = header(request.headers, 'svix-signature');
      if (!id || !timestamp || !signatures) return FORGED;
      const expected = createHmac('sha256', key)
        .update(`${id}.${timestamp}.`)
        .update(request.body)
        .digest('base64');
      const matches = signatures
        .split(' ')
        .some((entry) => entry.startsWith('v1,') && safeEqual(entry.slice(3), expected));
      if (!matches || !fresh(timestamp, nowMs, toleranceMs)) return FORGED;
      return { ok: true, replayKey: `resend:${id}` };
    },
    parse(body, nowMs) {
      const payload = record(parseJson(body));
      const data = record(payload.data);
      const to = Array.isArray(data.to) ? data.to : [data.to];
      // Resend names the email's recipients, not the one a bounce or complaint is about.
      const known = to.filter((r) => text(r) !== undefined).length === 1;
      const recipients = to.map(recipientOf).filter((r): r is string => r !== undefined);
      return recipients.flatMap((address) => {
        const event = resendEvent(payload, data, address, nowMs);
        if (!event) return [];
        return [known ? event : { ...event, recipientKnown: false as const }];
      });
    },
  };
}

function resendEvent(
  payload: Record<string, unknown>,
  data: Record<string, unknown>,
  recipient: string,
  nowMs: number,
): DeliveryEvent | undefined {
  const bounce = record(data.bounce);
  const messageIdHeader = Array.isArray(data.headers)
    ? (data.headers as unknown[])
        .map(record)
        .find((h) => typeof h.name === 'string' && h.name.toLowerCase() === 'message-id')
    : undefined;
  const base = {
    provider: 'resend' as const,
    recipient,
    timestamp: dateOf(payload.created_at, nowMs),
    ...optional('providerMessageId', text(data.email_id)),
    ...optional('messageId', bracketed(text(messageIdHeader?.value))),
    ...optional('reason', text(bounce.message)),
    ...optional('diagnostic', text(bounce.subType)),
    raw: payload,
  };
  switch (payload.type) {
    case 'email.delivered':
      return { ...base, type: 'delivered' };
    case 'email.delivery_delayed':
      return { ...base, type: 'deferred' };
    case 'email.bounced':
      // Resend sends email.bounced for permanent rejections; a bounce typed Transient is soft.
      return { ...base, type: 'bounced', bounce: bounce.type === 'Transient' ? 'soft' : 'hard' };
    case 'email.complained':
      return { ...base, type: 'complained' };
    case 'email.opened':
      return { ...base, type: 'opened' };
    case 'email.clicked':
      return { ...base, type: 'clicked', ...optional('url', text(record(data.click).link)) };
    default:
      return undefined;
  }
}
