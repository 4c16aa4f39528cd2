/**
 * Internal: what every HTTP API transport (Mailgun, Postmark, Resend, SendGrid) shares, so each
 * provider's file holds only its own request and its own answers: the base URL rule (the key
 * travels in every request), the options every one of them takes, the mapping of a request that got
 * no answer, the refusal of a retry meant for some recipients only, and the error for an answer.
 */
import { ConfigError, connectionFailure, EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import { oneLine } from '../log.js';
import { isLoopback } from '../loopback.js';
import { type Attachment, type EmailMessage, envelopeRecipients, type MetadataValue } from '../message.js';
import { parseRetryAfter } from '../retry.js';
import { PostError, type Poster, type PostOptions, type PostResponse } from './http-post.js';

/** One provider's API, as its errors name it. */
export interface HttpApi {
  /** The transport's name: `postmark`. */
  readonly transport: string;
  /** The provider's name in messages: `Postmark`. */
  readonly label: string;
  /** The public API base, e.g. `https://api.postmarkapp.com`: shown as the example of `baseUrl`. */
  readonly defaultBaseUrl: string;
  /** Where the key goes instead of the URL, for the baseUrl error: `serverToken (POSTMARK_SERVER_TOKEN)`. */
  readonly keyOption: string;
  /** What to check when the host is not found: `check baseUrl`. */
  readonly hostHint?: string;
}

/** The options every HTTP API transport takes, checked in one place. */
export interface CommonApiOptions {
  baseUrl?: string | undefined;
  fetch?: typeof globalThis.fetch | undefined;
  timeoutMs?: number | undefined;
}

/**
 * Checks `baseUrl`, `fetch` and `timeoutMs` (default 15 000 ms) and a required secret; returns the
 * base URL without a trailing slash and the timeout. Errors name the option, never its value.
 */
export function checkApiOptions(
  api: HttpApi,
  options: CommonApiOptions,
  secret: { option: string; value: unknown },
): { base: string; timeoutMs: number } {
  const { baseUrl, timeoutMs = 15_000 } = options;
  if (typeof secret.value !== 'string' || secret.value.trim() === '' || /[\s\p{Cc}]/u.test(secret.value)) {
    throw new ConfigError(secret.option, `a ${api.label} key is required, without spaces or line breaks`);
  }
  if (baseUrl !== undefined) checkBaseUrl(api, baseUrl);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new ConfigError('timeoutMs', 'must be a positive number');
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ConfigError('fetch', 'must be a fetch function');
  }
  return { base: (baseUrl ?? api.defaultBaseUrl).replace(/\/+$/, ''), timeoutMs };
}

/**
 * A base URL the API key may be sent to: http(s), `https:` unless the host is this machine, no
 * user name, password, query or fragment. The errors never repeat the value: a mistaken
 * `https://api:key@host` holds a secret.
 */
export function checkBaseUrl(api: HttpApi, baseUrl: unknown): void {
  const fail = (problem: string) => new ConfigError('baseUrl', problem);
  if (typeof baseUrl !== 'string' || /[\s\p{Cc}]/u.test(baseUrl) || !URL.canParse(baseUrl)) {
    throw fail(`must be an http(s) URL such as ${api.defaultBaseUrl}, without spaces or line breaks`);
  }
  const url = new URL(baseUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fail('must be an http(s) URL');
  if (url.username !== '' || url.password !== '') {
    throw fail(`must not hold a user name or password: the key goes in ${api.keyOption}`);
  }
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(baseUrl)) {
    throw fail('must not have a query (?…) or a fragment (#…): give the base URL only');
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw fail(
      'must be https: the API key would cross the network in plain text (http is allowed only to localhost, 127.0.0.0/8 and ::1)',
    );
  }
}

/** `host:port` of a URL, the port spelled out even when it is the scheme's default. */
export function hostAndPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * Refuses a retry meant for some recipients only (deferred by another transport, behind
 * failover): these APIs send to every recipient of the request, so the others would get it twice.
 */
export function refuseNarrowed(api: HttpApi, message: EmailMessage, endpoint: string): void {
  if (envelopeRecipients(message)) {
    throw new EmailError(`${api.label} cannot send to only some of the recipients of a message`, {
      code: 'provider',
      transport: api.transport,
      endpoint,
    });
  }
}

/** Posts once; a request that got no answer becomes our error ({@link requestError}). */
export async function post(
  api: HttpApi,
  poster: Poster,
  url: URL,
  endpoint: string,
  options: PostOptions,
): Promise<PostResponse> {
  try {
    return await poster.post(url, options);
  } catch (error) {
    throw requestError(api, error, endpoint);
  }
}

/**
 * Maps a request that got no answer: the caller's abort, our timeout, or a failure to connect,
 * judged by the same rule as SMTP's (`connectionFailure`): an unknown host is `config`, any TLS
 * failure `tls`, the rest `network`. Once the whole body was sent, a failure is ambiguous: the
 * provider may have acted on it.
 */
export function requestError(api: HttpApi, error: unknown, endpoint: string): EmailError {
  const { reason = 'network', sent = true } = error instanceof PostError ? error : {};
  const options = { transport: api.transport, handedOver: sent, endpoint, cause: error };
  if (reason === 'aborted') return new EmailError('the send was aborted', { ...options, code: 'aborted' });
  if (reason === 'timeout')
    return new EmailError(`${api.label} at ${endpoint} did not answer in time`, {
      ...options,
      code: 'timeout',
    });
  const connection = connectionFailure(error);
  const code = connection?.code ?? 'network';
  const causeCode = connection?.causeCode ?? (reason === 'network' ? undefined : reason);
  const why = causeCode ? ` (${causeCode})` : '';
  const text =
    code === 'config'
      ? `${api.label}: the API host ${endpoint} could not be found${why}; ${api.hostHint ?? 'check baseUrl'}`
      : code === 'tls'
        ? `${api.label}: TLS could not be set up with ${endpoint}${why}`
        : `${api.label} could not be reached at ${endpoint}${why}`;
  return new EmailError(text, { ...options, code, ...(causeCode ? { causeCode } : {}) });
}

/**
 * The error for an answer that is not 2xx: `code` as the provider's documentation reads, the
 * provider's own words (one line, at most 200 characters) when it gave some, and the wait it asked
 * for (`Retry-After`, seconds or an HTTP date; `fallbackWaitMs` when the provider says it otherwise).
 */
export function answerError(
  api: HttpApi,
  response: PostResponse,
  endpoint: string,
  code: EmailErrorCode,
  detail: unknown,
  fallbackWaitMs?: number,
): EmailError {
  const status = response.status;
  const said = typeof detail === 'string' && detail !== '' ? `: ${oneLine(detail, 200)}` : '';
  const retryAfterMs = parseRetryAfter(response.header('retry-after')) ?? fallbackWaitMs;
  return new EmailError(`${api.label} ${status} from ${endpoint}${said || ` ${response.statusText}`}`, {
    code,
    transport: api.transport,
    status,
    endpoint,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** An answer's body as JSON, else its text (undefined when empty). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text === '' ? undefined : text;
  }
}

/** A file as the JSON APIs take it: base64 content, a type, and an inline image's Content-ID. */
export interface ApiFile {
  filename: string;
  contentType: string;
  base64: string;
  cid: string | undefined;
}

/**
 * The message's files for a JSON API, the calendar invitation last as `invite.ics` (these APIs have
 * no calendar field: a `text/calendar; method=…` attachment is what clients show as an invitation).
 */
export function apiFiles(message: EmailMessage): ApiFile[] {
  const files = message.attachments.map((attachment: Attachment) => ({
    filename: attachment.filename,
    contentType: attachment.contentType ?? 'application/octet-stream',
    base64: Buffer.from(attachment.content).toString('base64'),
    cid: attachment.cid,
  }));
  const invite = message.icalEvent;
  if (invite) {
    files.push({
      filename: invite.filename,
      contentType: `text/calendar; method=${invite.method}; charset=utf-8`,
      base64: Buffer.from(invite.content).toString('base64'),
      cid: undefined,
    });
  }
  return files;
}

/**
 * The message's metadata as a provider's API carries it, with the email's category under
 * `category` (`transactional` …), so the provider's dashboards and delivery webhooks show what kind
 * of email each was. The caller's own `metadata.category` may only say the same: anything else is a
 * `MessageError` naming `metadata.category`, before anything is sent.
 */
export function providerMetadata(message: EmailMessage): Record<string, MetadataValue> {
  const own = message.metadata.category;
  if (own !== undefined && own !== message.category) {
    throw new MessageError(
      'metadata.category',
      `is where the email's category goes (${message.category}); set category instead, or use another key`,
    );
  }
  return { ...message.metadata, category: message.category };
}
