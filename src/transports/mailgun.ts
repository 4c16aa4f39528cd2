/**
 * Mailgun's HTTP API: `POST /v3/{domain}/messages`, Basic auth `api:<key>`, URL-encoded (multipart
 * when there are files). Over node:http(s) with keep-alive connections, or an injected `fetch`.
 */
import { ConfigError, type EmailError, type EmailErrorCode } from '../errors.js';
import { type EmailMessage, formatAddress } from '../message.js';
import type { SendContext, Transport } from '../transport.js';
import {
  acceptedResult,
  answerError,
  apiConnection,
  checkApiOptions,
  type HttpApi,
  parseJson,
  providerMetadata,
  requireOptions,
} from './http-api.js';
import type { PostResponse } from './http-post.js';

/** Options of {@link mailgunTransport}. */
export interface MailgunTransportOptions {
  /** Your private API key. Never logged, never in an error. */
  apiKey: string;
  /** The sending domain, e.g. `mg.acme.example`. */
  domain: string;
  /** `us` (api.mailgun.net, default) or `eu` (api.eu.mailgun.net), where your domain lives. */
  region?: 'us' | 'eu';
  /**
   * Another API base URL (a proxy, a local test server), e.g. `https://mailgun-proxy.internal`;
   * overrides `region`. `https:` unless the host is this machine (`localhost`, 127.0.0.0/8, `::1`),
   * since the API key travels in every request; no user name, password, query or fragment.
   */
  baseUrl?: string;
  /** An HTTP client to use instead of the built-in one (node:http with keep-alive connections). */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take, body and answer included (ms). Default 15 000. */
  timeoutMs?: number;
  /** Send with `o:testmode`: Mailgun accepts and logs the message but does not deliver it. */
  testMode?: boolean;
  /**
   * When to deliver a message (`o:deliverytime`), e.g. from its metadata, for a message without
   * its own `sendAt` (which wins). Default: at once.
   */
  deliveryTime?: (message: EmailMessage) => Date | undefined;
  /**
   * How many days ahead Mailgun may hold a message (`sendAt`, quiet hours): 3 (default), or up
   * to 7 when your plan stores messages for 7 days or more (Mailgun user manual, "Schedule
   * Delivery"). A `sendAt` further ahead is a `MessageError` naming `sendAt` before anything is
   * sent. A whole number from 1 to 7; anything else is a `ConfigError` naming it.
   */
  maxScheduleDays?: number;
}

/** A Mailgun transport. */
export interface MailgunTransport extends Transport {
  readonly name: 'mailgun';
  /** Releases idle keep-alive connections. */
  close(): Promise<void>;
}

const REGIONS = { us: 'https://api.mailgun.net', eu: 'https://api.eu.mailgun.net' } as const;
const API: HttpApi = {
  transport: 'mailgun',
  label: 'Mailgun',
  defaultBaseUrl: REGIONS.us,
  keyOption: 'apiKey (MAILGUN_API_KEY)',
  hostHint: 'check baseUrl or region',
};
/** Mailgun's documented statuses; any other is `provider` (a 5xx is transient, a 4xx permanent). */
const STATUS_CODES: Readonly<Record<number, EmailErrorCode>> = {
  400: 'rejected',
  401: 'auth',
  402: 'account',
  403: 'auth',
  404: 'config',
  408: 'timeout',
  413: 'rejected',
  429: 'rate-limit',
};

/**
 * Mailgun's batch sending: "The maximum number of recipients allowed for batch is 1,000"
 * (documentation.mailgun.com, User Manual, Sending Messages, Batch Sending).
 */
const MAX_BATCH_RECIPIENTS = 1000;

/**
 * Sends through Mailgun's HTTP API. `sendBatch` sends one message to up to 1 000 `to` recipients
 * in one request with `recipient-variables`, which makes Mailgun send each of them a copy
 * addressed to them alone (its Batch Sending guide); every copy carries the message's Message-ID.
 *
 * @example
 * ```ts
 * const transport = mailgunTransport({
 *   apiKey: process.env.MAILGUN_API_KEY!,
 *   domain: 'mg.acme.example',
 *   region: 'eu',
 * });
 * ```
 */
export function mailgunTransport(options: MailgunTransportOptions): MailgunTransport {
  const { endpoint, authorization, timeoutMs, scheduleDays } = checkOptions(options);
  const api = apiConnection(API, endpoint, { fetch: options.fetch, timeoutMs }, statusError);

  const deliver = async (message: EmailMessage, context: SendContext, batch: boolean) => {
    // Mailgun's API sends to every recipient in the headers: a retry meant for some of them only
    // (deferred by another transport, behind failover) would reach the others twice.
    api.admit(message, context);
    const { body, contentType } = await toBody(message, options, batch);
    const response = await api.request({
      headers: { authorization, 'content-type': contentType },
      body,
      signal: context.signal,
    });
    const answer = parseJson(response.text);
    return acceptedResult(API, message, answer, (answer as { id?: unknown } | undefined)?.id);
  };

  return {
    name: 'mailgun',
    // Test mode: Mailgun accepts and logs the message and delivers nothing.
    ...(options.testMode === true ? { captures: true } : {}),
    // It never sends a retry meant for some recipients only (below): it refuses it instead.
    narrowsRecipients: true,
    // A message's sendAt becomes o:deliverytime: Mailgun holds it, within maxScheduleDays.
    scheduling: Object.freeze({ maxAheadMs: scheduleDays * DAY_MS }),
    describe: () =>
      `mailgun ${endpoint.origin}${endpoint.pathname.replace(/\/messages$/, '')}${options.testMode ? ' (test mode: nothing delivered)' : ''}`,
    send: (message, context) => deliver(message, context, false),
    batchLimit: MAX_BATCH_RECIPIENTS,
    sendBatch(message, context) {
      try {
        checkBatch(message);
      } catch (error) {
        return Promise.reject(error);
      }
      return deliver(message, context, true);
    },
    async close() {
      api.close();
    },
  };
}

/** Maps a Mailgun HTTP answer that is not 2xx to our error (see the taxonomy in the README). */
function statusError(response: PostResponse, endpoint: string): EmailError {
  const detail = (parseJson(response.text) as { message?: unknown } | undefined)?.message;
  return answerError(API, response, endpoint, STATUS_CODES[response.status] ?? 'provider', detail);
}

/**
 * The request body: every field of the message as Mailgun names it. URL-encoded unless there are
 * files: Mailgun takes both, and URL-encoding is far cheaper to build and send than multipart.
 */
async function toBody(
  message: EmailMessage,
  options: MailgunTransportOptions,
  batch: boolean,
): Promise<{ body: string | Buffer; contentType: string }> {
  // Tag limits and the characters of every field were checked when the message was made.
  const body = message.attachments.length || message.icalEvent ? new FormData() : new URLSearchParams();
  body.append('from', formatAddress(message.from));
  for (const address of message.to) body.append('to', formatAddress(address));
  for (const address of message.cc) body.append('cc', formatAddress(address));
  for (const address of message.bcc) body.append('bcc', formatAddress(address));
  // Without recipient variables Mailgun sends one email with every address in To: with them, a copy
  // per recipient. Empty ones: nothing of ours is written as %recipient.…% (see checkBatch).
  if (batch)
    body.append(
      'recipient-variables',
      JSON.stringify(Object.fromEntries(message.to.map((a) => [a.address, {}]))),
    );
  body.append('subject', message.subject);
  if (message.text !== undefined) body.append('text', message.text);
  if (message.html !== undefined) body.append('html', message.html);
  // Our Message-ID, so every retry of one email carries the same one.
  body.append('h:Message-Id', message.messageId);
  if (message.replyTo.length) body.append('h:Reply-To', message.replyTo.map(formatAddress).join(', '));
  for (const [name, value] of Object.entries(message.headers)) body.append(`h:${name}`, value);
  for (const tag of message.tags) body.append('o:tag', tag);
  for (const [key, value] of Object.entries(providerMetadata(message)))
    body.append(`v:${key}`, String(value));
  if (options.testMode) body.append('o:testmode', 'yes');
  const when = message.sendAt ?? options.deliveryTime?.(message);
  if (when !== undefined) body.append('o:deliverytime', rfc2822(when));
  if (body instanceof FormData) {
    for (const attachment of message.attachments) {
      const type = attachment.contentType ?? 'application/octet-stream';
      const bytes =
        typeof attachment.content === 'string' ? attachment.content : Buffer.from(attachment.content);
      const blob = new Blob([bytes], { type });
      // Mailgun names an inline image's Content-ID after its file name.
      if (attachment.cid) body.append('inline', blob, attachment.cid);
      else body.append('attachment', blob, attachment.filename);
    }
    const invite = message.icalEvent;
    if (invite) {
      // Mailgun has no calendar field: an attachment of this type is what it turns into an invitation.
      const type = `text/calendar; method=${invite.method}; charset=utf-8`;
      body.append('attachment', new Blob([invite.content], { type }), invite.filename);
    }
    // The platform's own multipart encoder, through a Response, gives the bytes and the boundary.
    const encoded = new Response(body);
    const bytes = Buffer.from(await encoded.arrayBuffer());
    if (invite) restoreMethodCase(bytes, invite.method);
    return {
      body: bytes,
      contentType: encoded.headers.get('content-type') ?? 'multipart/form-data',
    };
  }
  return { body: body.toString(), contentType: 'application/x-www-form-urlencoded' };
}

/**
 * A date as RFC 2822 §3.3 writes it, in UTC: `Tue, 01 Dec 2026 09:30:00 +0000`, the form Mailgun
 * documents for `o:deliverytime` (`toUTCString()` ends in the obsolete zone `GMT` instead).
 */
export function rfc2822(date: Date): string {
  return `${date.toUTCString().slice(0, -4)} +0000`;
}

/**
 * A Blob's type is lower-cased by the platform; calendar clients compare the `method` parameter
 * with the iCalendar `METHOD:` line, so the part header gets the method as written (same length,
 * rewritten in place; the last such header is ours, appended after every other file).
 */
function restoreMethodCase(bytes: Buffer, method: string): void {
  const header = `Content-Type: text/calendar; method=${method.toLowerCase()}; charset=utf-8\r\n\r\n`;
  const at = bytes.lastIndexOf(header);
  if (at >= 0) bytes.write(method, at + 'Content-Type: text/calendar; method='.length, 'latin1');
}

/**
 * What `sendBatch` takes (see `Transport.sendBatch`): a message that gives every recipient the same
 * copy. A programmer's mistake otherwise (`EmailService.sendBatch` never asks for one), so a
 * `TypeError`: cc and bcc would get a copy per recipient, and a duplicate would be merged.
 */
function checkBatch(message: EmailMessage): void {
  const { to } = message;
  if (to.length === 0 || to.length > MAX_BATCH_RECIPIENTS)
    throw new TypeError(`mailgun sendBatch: to must list 1 to ${MAX_BATCH_RECIPIENTS} recipients`);
  if (message.cc.length || message.bcc.length)
    throw new TypeError('mailgun sendBatch: cc and bcc would be copied to every recipient; send singly');
  if (message.attachments.length || message.icalEvent)
    throw new TypeError('mailgun sendBatch: attachments are sent singly');
  if (new Set(to.map((a) => a.address.toLowerCase())).size !== to.length)
    throw new TypeError('mailgun sendBatch: to lists a recipient twice');
}

function checkOptions(options: MailgunTransportOptions) {
  requireOptions(API, options);
  const { apiKey, domain, region = 'us' } = options;
  if (typeof apiKey !== 'string' || apiKey.trim() === '')
    throw new ConfigError('apiKey', 'a Mailgun API key is required');
  if (typeof domain !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(domain)) {
    throw new ConfigError('domain', 'must be a sending domain such as mg.example.com');
  }
  if (!(region in REGIONS)) throw new ConfigError('region', 'must be us or eu');
  const scheduleDays = options.maxScheduleDays ?? 3;
  if (!Number.isInteger(scheduleDays) || scheduleDays < 1 || scheduleDays > 7)
    throw new ConfigError('maxScheduleDays', 'must be a whole number of days from 1 to 7');
  // The region's host is the default base, and the example a bad baseUrl is shown.
  const { base, timeoutMs } = checkApiOptions({ ...API, defaultBaseUrl: REGIONS[region] }, options, {
    option: 'apiKey',
    value: apiKey,
  });
  return {
    endpoint: new URL(`${base}/v3/${encodeURIComponent(domain)}/messages`),
    authorization: `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`,
    timeoutMs,
    scheduleDays,
  };
}

const DAY_MS = 86_400_000;
