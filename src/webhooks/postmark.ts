/**
 * Postmark's webhooks: one JSON object per request, `{ RecordType, MessageID, … }`.
 *
 * Postmark signs nothing. Its documented protection is HTTP Basic auth credentials in the
 * webhook's URL (`https://user:password@example.com/hooks/postmark`; Postmark, "Webhooks
 * overview": "secure them using HTTP Auth"), which this checks against `username` and `password`
 * in constant time (the scheme in any case, RFC 7235); a missing or wrong `Authorization` is a
 * 401. With no signed timestamp there is nothing to judge staleness by (Postmark retries a failed
 * delivery for hours), so a replay is the same body seen again. Events (Postmark, "Webhooks"): `Delivery`; `Bounce` by `Type` (`HardBounce`,
 * `BadEmailAddress`, `ManuallyDeactivated` are hard, `Transient` is deferred, `SpamComplaint`
 * complained, `Unsubscribe` unsubscribed, the rest soft); `SpamComplaint`; `Open`; `Click`;
 * `SubscriptionChange` with `SuppressSending: true`.
 */

import { ConfigError } from '../errors.js';
import { type DeliveryEvent, dateOf, optional, recipientOf, record, text } from './events.js';
import { authorization, digest, parseJson, safeEqual, type WebhookVerifier } from './verify.js';

/** Options of the Postmark webhook (`provider: 'postmark'`). */
export interface PostmarkWebhookOptions {
  /** The user name in the webhook URL you gave Postmark. Required. */
  username: string;
  /** The password in that URL: long and random (e.g. 32 bytes, base64url). Required, at least 16 characters. */
  password: string;
}

const HARD = new Set(['HardBounce', 'BadEmailAddress', 'ManuallyDeactivated']);
/** Bounce types that say nothing about the address: an auto-reply, a challenge, a subscribe request. */
const IGNORED = new Set([
  'AutoResponder',
  'Subscribe',
  'AddressChange',
  'ChallengeVerification',
  'OpenRelayTest',
]);

/** Internal: the Postmark verifier. */
export function postmarkVerifier(options: PostmarkWebhookOptions): WebhookVerifier {
  const { username, password } = options;
  if (typeof username !== 'string' || username === '' || username.includes(':'))
    throw new ConfigError('username', 'required: the user name of the webhook URL, without ":"');
  if (typeof password !== 'string' || password.length < 16)
    throw new ConfigError('password', 'required: the password of the webhook URL, at least 16 characters');
  // Compared as digests, so that neither the length nor the content of the credentials leaks.
  const expected = digest(Buffer.from(`${username}:${password}`, 'utf8').toString('base64'));
  return {
    provider: 'postmark',
    verify(request) {
      // Another scheme, or none, is compared as empty credentials: the same work as a wrong password.
      const given = authorization(request.headers, 'Basic') ?? '';
      if (!safeEqual(digest(given), expected)) return { ok: false, status: 401 };
      return { ok: true, replayKey: `postmark:${digest(request.body)}` };
    },
    parse(body, nowMs) {
      const event = postmarkEvent(record(parseJson(body)), nowMs);
      return event ? [event] : [];
    },
  };
}

function postmarkEvent(raw: Record<string, unknown>, nowMs: number): DeliveryEvent | undefined {
  const recipient = recipientOf(text(raw.Recipient) ?? raw.Email);
  if (!recipient) return undefined;
  const metadata = record(raw.Metadata);
  const base = {
    provider: 'postmark' as const,
    recipient,
    timestamp: dateOf(raw.DeliveredAt ?? raw.BouncedAt ?? raw.ReceivedAt ?? raw.ChangedAt, nowMs),
    ...optional('providerMessageId', text(raw.MessageID)),
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...optional('reason', text(raw.Description) ?? text(raw.SuppressionReason)),
    ...optional('diagnostic', text(raw.Details)),
    raw,
  };
  switch (raw.RecordType) {
    case 'Delivery':
      return { ...base, type: 'delivered' };
    case 'SpamComplaint':
      return { ...base, type: 'complained' };
    case 'Open':
      return { ...base, type: 'opened' };
    case 'Click':
      return { ...base, type: 'clicked', ...optional('url', text(raw.OriginalLink)) };
    case 'SubscriptionChange':
      if (raw.SuppressSending !== true) return undefined;
      if (raw.SuppressionReason === 'HardBounce') return { ...base, type: 'bounced', bounce: 'hard' };
      if (raw.SuppressionReason === 'SpamComplaint') return { ...base, type: 'complained' };
      return { ...base, type: 'unsubscribed' };
    case 'Bounce': {
      const type = text(raw.Type) ?? '';
      if (IGNORED.has(type)) return undefined;
      if (type === 'Transient') return { ...base, type: 'deferred' };
      if (type === 'SpamComplaint') return { ...base, type: 'complained' };
      if (type === 'Unsubscribe') return { ...base, type: 'unsubscribed' };
      return { ...base, type: 'bounced', bounce: HARD.has(type) ? 'hard' : 'soft' };
    }
    default:
      return undefined;
  }
}
