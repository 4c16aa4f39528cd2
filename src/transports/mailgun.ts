/**
 * Mailgun's HTTP API: `POST /v3/{domain}/messages` as multipart/form-data, Basic auth `api:<key>`.
 * Uses the platform's `fetch` (keep-alive connections) unless one is injected.
 */
import { ConfigError, EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import { allRecipients, type EmailMessage, formatAddress } from '../message.js';
import { parseRetryAfter } from '../retry.js';
import { type SendResult, type Transport, throwIfAborted } from '../transport.js';

/** Options of {@link mailgunTransport}. */
export interface MailgunTransportOptions {
  /** Your private API key. Never logged, never in an error. */
  apiKey: string;
  /** The sending domain, e.g. `mg.acme.example`. */
  domain: string;
  /** `us` (api.mailgun.net, default) or `eu` (api.eu.mailgun.net), where your domain lives. */
  region?: 'us' | 'eu';
  /** Another API base URL (a proxy, a local test server); overrides `region`. */
  baseUrl?: string;
  /** The HTTP client. Default: the global `fetch`. */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take, body and answer included (ms). Default 15 000. */
  timeoutMs?: number;
  /** Send with `o:testmode`: Mailgun accepts and logs the message but does not deliver it. */
  testMode?: boolean;
  /** When to deliver a message (`o:deliverytime`), e.g. from its metadata. Default: at once. */
  deliveryTime?: (message: EmailMessage) => Date | undefined;
}

/** A Mailgun transport. */
export interface MailgunTransport extends Transport {
  readonly name: 'mailgun';
}

const REGIONS = { us: 'https://api.mailgun.net', eu: 'https://api.eu.mailgun.net' } as const;
const MAX_TAGS = 3;

/**
 * Sends through Mailgun's HTTP API.
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
  const { endpoint, authorization, timeoutMs } = checkOptions(options);
  const fetch = options.fetch ?? globalThis.fetch;

  return {
    name: 'mailgun',
    async send(message, context) {
      throwIfAborted(context, 'mailgun');
      const body = toFormData(message, options);
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = context.signal ? AbortSignal.any([context.signal, timeout]) : timeout;
      let response: Response;
      let text: string;
      try {
        response = await fetch(endpoint, { method: 'POST', headers: { authorization }, body, signal });
        text = await response.text();
      } catch (error) {
        throw requestError(error, context.signal, timeout);
      }
      if (!response.ok) throw statusError(response, text);
      return {
        messageId: message.messageId,
        accepted: allRecipients(message),
        rejected: [],
        transport: 'mailgun',
        response: parseJson(text),
      } satisfies SendResult;
    },
  };
}

/** Maps a Mailgun HTTP answer that is not 2xx to our error (see the taxonomy in the README). */
function statusError(response: Response, text: string): EmailError {
  const status = response.status;
  const detail = (parseJson(text) as { message?: unknown } | undefined)?.message;
  const said = typeof detail === 'string' ? `: ${detail.slice(0, 200)}` : '';
  const code: EmailErrorCode =
    status === 401 || status === 403
      ? 'auth'
      : status === 402
        ? 'account'
        : status === 404
          ? 'config'
          : status === 408
            ? 'timeout'
            : status === 429
              ? 'rate-limit'
              : status === 400 || status === 413
                ? 'rejected'
                : 'provider';
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  return new EmailError(`Mailgun ${status}${said || ` ${response.statusText}`}`, {
    code,
    transport: 'mailgun',
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** Maps a request that got no answer: our abort, our timeout, or a network failure. */
function requestError(
  error: unknown,
  callerSignal: AbortSignal | undefined,
  timeout: AbortSignal,
): EmailError {
  if (callerSignal?.aborted) {
    return new EmailError('the send was aborted', { code: 'aborted', transport: 'mailgun', cause: error });
  }
  const cause = (error as { cause?: { code?: string } })?.cause;
  const netCode = cause?.code ?? (error as { code?: string })?.code;
  // Refused before a connection existed: the request never left, so a retry cannot duplicate it.
  const beforeRequest = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT'].includes(
    netCode ?? '',
  );
  if (netCode && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(netCode)) {
    return new EmailError('Mailgun: TLS could not be set up', {
      code: 'tls',
      transport: 'mailgun',
      cause: error,
    });
  }
  if (timeout.aborted) {
    // fetch cannot tell how far the request got, so the message may have been accepted.
    return new EmailError('Mailgun did not answer in time', {
      code: 'timeout',
      transport: 'mailgun',
      handedOver: true,
      cause: error,
    });
  }
  return new EmailError(`Mailgun could not be reached${netCode ? ` (${netCode})` : ''}`, {
    code: 'network',
    transport: 'mailgun',
    handedOver: !beforeRequest,
    cause: error,
  });
}

/** The request body: every field of the message as Mailgun names it. */
function toFormData(message: EmailMessage, options: MailgunTransportOptions): FormData {
  if (message.tags.length > MAX_TAGS) {
    throw new MessageError('tags', `Mailgun accepts at most ${MAX_TAGS} tags per message`);
  }
  const form = new FormData();
  form.append('from', formatAddress(message.from));
  for (const address of message.to) form.append('to', formatAddress(address));
  for (const address of message.cc) form.append('cc', formatAddress(address));
  for (const address of message.bcc) form.append('bcc', formatAddress(address));
  form.append('subject', message.subject);
  if (message.text !== undefined) form.append('text', message.text);
  if (message.html !== undefined) form.append('html', message.html);
  // Our Message-ID, so every retry of one email carries the same one.
  form.append('h:Message-Id', message.messageId);
  if (message.replyTo.length) form.append('h:Reply-To', message.replyTo.map(formatAddress).join(', '));
  for (const [name, value] of Object.entries(message.headers)) form.append(`h:${name}`, value);
  for (const tag of message.tags) form.append('o:tag', tag);
  for (const [key, value] of Object.entries(message.metadata)) form.append(`v:${key}`, String(value));
  if (options.testMode) form.append('o:testmode', 'yes');
  const when = options.deliveryTime?.(message);
  if (when !== undefined) form.append('o:deliverytime', when.toUTCString());
  for (const attachment of message.attachments) {
    const type = attachment.contentType ?? 'application/octet-stream';
    const bytes =
      typeof attachment.content === 'string' ? attachment.content : Buffer.from(attachment.content);
    const blob = new Blob([bytes], { type });
    // Mailgun names an inline image's Content-ID after its file name.
    if (attachment.cid) form.append('inline', blob, attachment.cid);
    else form.append('attachment', blob, attachment.filename);
  }
  return form;
}

function checkOptions(options: MailgunTransportOptions) {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('mailgunTransport: options are required');
  const { apiKey, domain, region = 'us', baseUrl, timeoutMs = 15_000 } = options;
  if (typeof apiKey !== 'string' || apiKey.trim() === '')
    throw new ConfigError('apiKey', 'a Mailgun API key is required');
  if (typeof domain !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(domain)) {
    throw new ConfigError('domain', 'must be a sending domain such as mg.example.com');
  }
  if (!(region in REGIONS)) throw new ConfigError('region', 'must be us or eu');
  if (baseUrl !== undefined && !(URL.canParse(baseUrl) && /^https?:$/.test(new URL(baseUrl).protocol))) {
    throw new ConfigError('baseUrl', 'must be an http(s) URL');
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new ConfigError('timeoutMs', 'must be a positive number');
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ConfigError('fetch', 'must be a fetch function');
  }
  const base = (baseUrl ?? REGIONS[region]).replace(/\/+$/, '');
  return {
    endpoint: `${base}/v3/${encodeURIComponent(domain)}/messages`,
    authorization: `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`,
    timeoutMs,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text === '' ? undefined : text;
  }
}
