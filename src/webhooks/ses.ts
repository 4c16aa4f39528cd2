/**
 * Amazon SES notifications through Amazon SNS: an SNS message (JSON) whose `Message` is SES's
 * notification (`notificationType`, from identity notifications) or event (`eventType`, from a
 * configuration set's event destination).
 *
 * Verification follows Amazon SNS's "Verifying the signatures of Amazon SNS messages"
 * (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): the signing
 * certificate is fetched over https from `SigningCertURL`, which must be an
 * `sns.<region>.amazonaws.com` host (`.amazonaws.com.cn` in China); `Signature` is RSA over the
 * "string to sign" (each field's name and value on their own lines: `Message`, `MessageId`,
 * `Subject` if present, `Timestamp`, `TopicArn`, `Type` for a notification; `Message`,
 * `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type` for a subscription
 * confirmation), SHA-1 for `SignatureVersion` 1 and SHA-256 for 2. A message from a topic not in
 * `topicArns` is refused: SNS's signature proves the message came from SNS, not from your topic.
 * `MessageId` names the message for replay checks (SNS keeps it, and `Timestamp`, on retries: a
 * delivery policy retrying for longer than `toleranceMs` needs a larger one). A verified
 * `SubscriptionConfirmation` is confirmed by fetching its `SubscribeURL` (same host rule).
 * Events (SES, "Contents of notifications" and "Contents of event data"): `Delivery`; `Bounce`
 * (`bounceType` `Permanent` hard, `Transient` and `Undetermined` soft); `Complaint`;
 * `DeliveryDelay` (deferred); `Open`; `Click`; `Subscription` (unsubscribed).
 * SES does not say which recipient opened or clicked: those events name every recipient of the
 * email (`mail.destination`), one event each.
 */

import { type KeyObject, verify as verifySignature } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { bracketed, type DeliveryEvent, dateOf, optional, recipientOf, record, text } from './events.js';
import { CERTIFICATE_FETCH_TIMEOUT_MS, snsCertificates } from './sns-certificates.js';
import {
  FORGED,
  fresh,
  parseJson,
  UNVERIFIED_FOR_NOW,
  type Verdict,
  type WebhookVerifier,
} from './verify.js';

/** Options of the SES (through SNS) webhook (`provider: 'ses'`). */
export interface SesWebhookOptions {
  /**
   * The SNS topics whose messages this endpoint takes (`arn:aws:sns:eu-west-1:123456789012:ses-events`).
   * Required: any AWS account can point a topic at a public URL.
   */
  topicArns: readonly string[];
  /**
   * The fetch used for the signing certificate and to confirm a subscription. A certificate is
   * fetched once per URL (messages arriving together share the fetch), and only for a message
   * that passed every other check; a fetch that failed is remembered for 60 seconds, answering
   * messages naming that URL with 403 without fetching again. Default: the global `fetch`. Tests
   * pass their own.
   */
  fetch?: (url: string) => Promise<Response>;
}

const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const CONFIRMATION_FIELDS = [
  'Message',
  'MessageId',
  'SubscribeURL',
  'Timestamp',
  'Token',
  'TopicArn',
  'Type',
];

/** Internal: the SES-through-SNS verifier. */
export function sesVerifier(options: SesWebhookOptions, toleranceMs: number): WebhookVerifier {
  const topics = options.topicArns;
  if (
    !Array.isArray(topics) ||
    topics.length === 0 ||
    !topics.every((arn) => typeof arn === 'string' && /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+$/.test(arn))
  )
    throw new ConfigError(
      'topicArns',
      'required: the ARNs of the SNS topics SES publishes to (arn:aws:sns:…)',
    );
  if (options.fetch !== undefined && typeof options.fetch !== 'function')
    throw new ConfigError('fetch', 'must be a function like the global fetch');
  const given = options.fetch;
  const get = given
    ? (url: string) => given(url)
    : (url: string, signal: AbortSignal) => fetch(url, { signal });
  const certificate = snsCertificates(get);

  return {
    provider: 'ses',
    // Every check that needs no certificate comes first: a message that fails one costs no fetch.
    async verify(request, nowMs): Promise<Verdict> {
      const message = record(parseJson(request.body));
      const type = message.Type;
      const fields = type === 'Notification' ? NOTIFICATION_FIELDS : CONFIRMATION_FIELDS;
      if (
        type !== 'Notification' &&
        type !== 'SubscriptionConfirmation' &&
        type !== 'UnsubscribeConfirmation'
      )
        return FORGED;
      if (typeof message.TopicArn !== 'string' || !topics.includes(message.TopicArn)) return FORGED;
      const algorithm =
        message.SignatureVersion === '2' ? 'sha256' : message.SignatureVersion === '1' ? 'sha1' : '';
      const certUrl = snsUrl(message.SigningCertURL);
      if (
        !algorithm ||
        !certUrl?.pathname.endsWith('.pem') ||
        typeof message.Signature !== 'string' ||
        !BASE64.test(message.Signature)
      )
        return FORGED;
      let signed = '';
      for (const field of fields) {
        const value = message[field];
        if ((value === undefined || value === null) && field === 'Subject') continue;
        if (typeof value !== 'string') return FORGED;
        signed += `${field}\n${value}\n`;
      }
      if (!fresh(Date.parse(String(message.Timestamp)) / 1000, nowMs, toleranceMs)) return FORGED;
      let key: KeyObject;
      try {
        key = await certificate(certUrl.href);
      } catch {
        // Our failure, not the sender's: SNS retries a 5xx (its delivery policy), never a 4xx,
        // so a 403 here would lose a genuine notification for good.
        return UNVERIFIED_FOR_NOW;
      }
      let valid = false;
      try {
        valid = verifySignature(
          algorithm,
          Buffer.from(signed, 'utf8'),
          key,
          Buffer.from(message.Signature, 'base64'),
        );
      } catch {
        valid = false;
      }
      if (!valid) return FORGED;
      return { ok: true, replayKey: `ses:${String(message.MessageId)}` };
    },
    async parse(body, nowMs) {
      const message = record(parseJson(body));
      if (message.Type === 'SubscriptionConfirmation') {
        const url = snsUrl(message.SubscribeURL);
        if (!url) throw new Error('SNS subscription confirmation: SubscribeURL is not an SNS https URL');
        const response = await get(url.href, AbortSignal.timeout(CERTIFICATE_FETCH_TIMEOUT_MS));
        if (!response.ok) throw new Error(`SNS subscription confirmation: HTTP ${response.status}`);
        return [];
      }
      if (message.Type !== 'Notification' || typeof message.Message !== 'string') return [];
      return sesEvents(record(parseJson(Buffer.from(message.Message, 'utf8'))), nowMs);
    },
  };
}

/** An https URL on an SNS host (no port, no credentials), or undefined. */
function snsUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' || url.port || url.username || url.password) return undefined;
    return SNS_HOST.test(url.hostname) ? url : undefined;
  } catch {
    return undefined;
  }
}

function sesEvents(ses: Record<string, unknown>, nowMs: number): DeliveryEvent[] {
  const mail = record(ses.mail);
  const kind = ses.eventType ?? ses.notificationType;
  const base = (recipient: string, at: unknown, extra: { reason?: string; diagnostic?: string } = {}) => ({
    provider: 'ses' as const,
    recipient,
    timestamp: dateOf(at, nowMs),
    ...optional('providerMessageId', text(mail.messageId)),
    ...optional('messageId', bracketed(text(record(mail.commonHeaders).messageId))),
    ...optional('reason', extra.reason),
    ...optional('diagnostic', extra.diagnostic),
    raw: ses,
  });
  const addresses = (
    list: unknown,
    field = 'emailAddress',
  ): { address: string; entry: Record<string, unknown> }[] =>
    (Array.isArray(list) ? list : []).flatMap((item) => {
      const entry = typeof item === 'string' ? { [field]: item } : record(item);
      const address = recipientOf(entry[field]);
      return address ? [{ address, entry }] : [];
    });
  const destination = addresses(mail.destination, 'address');
  // Opens, clicks and subscription events name the email's destination, not who acted: counted
  // as given, so that a second recipient that is no address still makes the one left unknown.
  const given = Array.isArray(mail.destination) ? mail.destination.length : 0;
  const unknown = given > 1 ? { recipientKnown: false as const } : {};
  switch (kind) {
    case 'Bounce': {
      const bounce = record(ses.bounce);
      const hard = bounce.bounceType === 'Permanent';
      return addresses(bounce.bouncedRecipients).map(({ address, entry }) => ({
        ...base(address, bounce.timestamp, {
          ...optional('reason', text(entry.diagnosticCode) ?? text(bounce.bounceSubType)),
          ...optional('diagnostic', text(entry.status)),
        }),
        type: 'bounced' as const,
        bounce: hard ? ('hard' as const) : ('soft' as const),
      }));
    }
    case 'Complaint': {
      const complaint = record(ses.complaint);
      // A feedback report saying the email is *not* spam (RFC 5965 `not-spam`) is no complaint.
      if (complaint.complaintFeedbackType === 'not-spam') return [];
      return addresses(complaint.complainedRecipients).map(({ address }) => ({
        ...base(address, complaint.timestamp, optional('reason', text(complaint.complaintFeedbackType))),
        type: 'complained' as const,
      }));
    }
    case 'Delivery': {
      const delivery = record(ses.delivery);
      return addresses(delivery.recipients, 'address').map(({ address }) => ({
        ...base(address, delivery.timestamp, optional('diagnostic', text(delivery.smtpResponse))),
        type: 'delivered' as const,
      }));
    }
    case 'DeliveryDelay': {
      const delay = record(ses.deliveryDelay);
      return addresses(delay.delayedRecipients).map(({ address, entry }) => ({
        ...base(address, delay.timestamp, {
          ...optional('reason', text(entry.diagnosticCode) ?? text(delay.delayType)),
          ...optional('diagnostic', text(entry.status)),
        }),
        type: 'deferred' as const,
      }));
    }
    case 'Open':
      return destination.map(({ address }) => ({
        ...base(address, record(ses.open).timestamp),
        ...unknown,
        type: 'opened' as const,
      }));
    case 'Click': {
      const click = record(ses.click);
      return destination.map(({ address }) => ({
        ...base(address, click.timestamp),
        ...unknown,
        type: 'clicked' as const,
        ...optional('url', text(click.link)),
      }));
    }
    case 'Subscription':
      return destination.map(({ address }) => ({
        ...base(address, record(ses.subscription).timestamp),
        ...unknown,
        type: 'unsubscribed' as const,
      }));
    default:
      return [];
  }
}
