/**
 * Internal: what every HTTP API transport (Mailgun, Postmark, Resend, SendGrid) shares, so each
 * provider's file holds only its own request and its own answers: the base URL rule (the key
 * travels in every request), the options every one of them takes, the connection that posts and
 * turns a refusal into the provider's error, the mapping of a request that got no answer, the
 * refusal of a retry meant for some recipients only, and the result and error for an answer.
 * Amazon SES (through the AWS SDK) uses the URL rule and the mapping of a request with no answer.
 */
import { ConfigError, connectionFailure, EmailError, type EmailErrorCode } from '../errors.js';
import { oneLine } from '../log.js';
import { isLoopback } from '../loopback.js';
import {
  type Attachment,
  allRecipients,
  type EmailMessage,
  envelopeRecipients,
  type MetadataValue,
} from '../message.js';
import { parseRetryAfter } from '../retry.js';
import { type SendContext, type SendResult, throwIfAborted } from '../transport.js';
import {
  fetchPoster,
  neverConnected,
  nodePoster,
  PostError,
  type PostOptions,
  type PostResponse,
} from './http-post.js';

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

/** A programmer's mistake, so a `TypeError`: the factory was called without its options object. */
export function requireOptions(api: HttpApi, options: unknown): asserts options is object {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${api.transport}Transport: options are required`);
  }
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
  checkTimeout(timeoutMs);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ConfigError('fetch', 'must be a fetch function');
  }
  return { base: (baseUrl ?? api.defaultBaseUrl).replace(/\/+$/, ''), timeoutMs };
}

/** `timeoutMs`: how long one request may take. */
export function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new ConfigError('timeoutMs', 'must be a positive number');
}

/**
 * A base URL the API key may be sent to: http(s), `https:` unless the host is this machine, no
 * user name, password, query or fragment. The errors never repeat the value: a mistaken
 * `https://api:key@host` holds a secret. `option` and `carried` name the option and what would
 * cross the network in plain text (Amazon SES: `endpoint`, the mail).
 */
export function checkBaseUrl(
  api: HttpApi,
  baseUrl: unknown,
  option = 'baseUrl',
  carried = 'the API key',
): URL {
  const fail = (problem: string) => new ConfigError(option, problem);
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
      `must be https: ${carried} would cross the network in plain text (http is allowed only to localhost, 127.0.0.0/8 and ::1)`,
    );
  }
  return url;
}

/** `host:port` of a URL, the port spelled out even when it is the scheme's default. */
export function hostAndPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/** A provider's endpoint and the one client that posts to it (node:http(s), or the caller's `fetch`). */
export interface ApiConnection {
  /** The endpoint's `host:port`, as errors name it. */
  readonly server: string;
  /**
   * Before the request is built: the caller's abort, and the refusal of a retry meant for some
   * recipients only (these APIs send to every recipient of the request, so the others would get
   * it twice; deferred by another transport, behind failover).
   */
  admit(message: EmailMessage, context: SendContext): void;
  /**
   * One request to the endpoint (or `url`, for a check): the answer when it is 2xx; otherwise the
   * provider's own error for its answer (`refusal`), or ours for no answer ({@link requestError}).
   */
  request(options: Omit<PostOptions, 'timeoutMs'>, url?: URL): Promise<PostResponse>;
  /** Releases idle keep-alive connections. */
  close(): void;
}

/** The connection of a provider's transport; `refusal` maps an answer that is not 2xx. */
export function apiConnection(
  api: HttpApi,
  endpoint: URL,
  options: { fetch?: typeof globalThis.fetch | undefined; timeoutMs: number },
  refusal: (response: PostResponse, server: string) => EmailError,
): ApiConnection {
  const poster = options.fetch ? fetchPoster(options.fetch) : nodePoster();
  const server = hostAndPort(endpoint);
  return {
    server,
    admit(message, context) {
      throwIfAborted(context, api.transport);
      if (envelopeRecipients(message)) {
        throw new EmailError(`${api.label} cannot send to only some of the recipients of a message`, {
          code: 'provider',
          transport: api.transport,
          endpoint: server,
        });
      }
    },
    async request(request, url = endpoint) {
      let response: PostResponse;
      try {
        response = await poster.post(url, { ...request, timeoutMs: options.timeoutMs });
      } catch (error) {
        throw requestError(api, error, server);
      }
      if (response.status < 200 || response.status > 299) throw refusal(response, server);
      return response;
    },
    close: () => poster.close(),
  };
}

/**
 * What a provider that took the message reports: every recipient accepted (these APIs take or
 * refuse a message as a whole), its answer, and its id for the message when it gave one.
 */
export function acceptedResult(
  api: HttpApi,
  message: EmailMessage,
  response: unknown,
  providerMessageId: unknown,
): SendResult {
  return {
    messageId: message.messageId,
    accepted: allRecipients(message),
    rejected: [],
    transport: api.transport,
    response,
    ...(typeof providerMessageId === 'string' ? { providerMessageId } : {}),
  };
}

/**
 * Maps a request that got no answer: the caller's abort, our timeout, or a failure to connect,
 * judged by the same rule as SMTP's (`connectionFailure`): an unknown host is `config`, any TLS
 * failure `tls`, the rest `network`. Once the whole body was sent, a failure is ambiguous: the
 * provider may have acted on it. Our poster says whether it was (`PostError.sent`); for another
 * client's error (the AWS SDK's), or given no `outcome`, only a failure to connect at all
 * (`neverConnected`) counts as nothing sent. `endpoint` is undefined when the client chose it.
 */
export function requestError(
  api: HttpApi,
  error: unknown,
  endpoint: string | undefined,
  outcome: { reason: string; sent: boolean } = error instanceof PostError
    ? error
    : { reason: 'network', sent: !neverConnected(connectionFailure(error)?.causeCode) },
): EmailError {
  const { reason, sent } = outcome;
  const options = {
    transport: api.transport,
    handedOver: sent,
    ...(endpoint === undefined ? {} : { endpoint }),
    cause: error,
  };
  const at = endpoint === undefined ? '' : ` at ${endpoint}`;
  if (reason === 'aborted') return new EmailError('the send was aborted', { ...options, code: 'aborted' });
  if (reason === 'timeout')
    return new EmailError(`${api.label}${at} did not answer in time`, { ...options, code: 'timeout' });
  const connection = connectionFailure(error);
  const code = connection?.code ?? 'network';
  const causeCode = connection?.causeCode ?? (reason === 'network' ? undefined : reason);
  const why = causeCode ? ` (${causeCode})` : '';
  const host = endpoint === undefined ? '' : ` ${endpoint}`;
  const text =
    code === 'config'
      ? `${api.label}: the API host${host} could not be found${why}; ${api.hostHint ?? 'check baseUrl'}`
      : code === 'tls'
        ? `${api.label}: TLS could not be set up${endpoint === undefined ? '' : ` with ${endpoint}`}${why}`
        : `${api.label} could not be reached${at}${why}`;
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
 * of email each was. A caller's own `metadata.category` says the same (`createMessage` checks it).
 */
export function providerMetadata(message: EmailMessage): Record<string, MetadataValue> {
  return { ...message.metadata, category: message.category };
}
