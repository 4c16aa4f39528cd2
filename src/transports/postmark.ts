/**
 * Postmark's Email API: `POST /email` with a JSON body and the `X-Postmark-Server-Token` header
 * (postmarkapp.com/developer/api/email-api). Over node:http(s) with keep-alive connections, or an
 * injected `fetch`.
 */
import { ConfigError, type EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import { type EmailMessage, formatAddress } from '../message.js';
import type { Transport } from '../transport.js';
import {
  acceptedResult,
  answerError,
  apiConnection,
  apiFiles,
  checkApiOptions,
  type HttpApi,
  parseJson,
  providerMetadata,
  requireOptions,
} from './http-api.js';
import type { PostResponse } from './http-post.js';

const TEST_TOKEN = 'POSTMARK_API_TEST';

/** Options of {@link postmarkTransport}. */
export interface PostmarkTransportOptions {
  /**
   * The server's API token (Servers → your server → API Tokens). Never logged, never in an error.
   * `POSTMARK_API_TEST` makes Postmark check each request without delivering it.
   */
  serverToken: string;
  /**
   * The message stream to send through, e.g. `outbound` (Postmark's default transactional stream)
   * or a broadcast stream's id. Default: none sent, so Postmark uses `outbound`.
   */
  messageStream?: string;
  /**
   * Another API base URL (a proxy, a local test server), e.g. `https://postmark-proxy.internal`.
   * `https:` unless the host is this machine (`localhost`, 127.0.0.0/8, `::1`), since the token
   * travels in every request; no user name, password, query or fragment. Default
   * `https://api.postmarkapp.com`.
   */
  baseUrl?: string;
  /** An HTTP client to use instead of the built-in one (node:http with keep-alive connections). */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take, body and answer included (ms). Default 15 000. */
  timeoutMs?: number;
  /** Open tracking (`TrackOpens`). Default: the server's setting. */
  trackOpens?: boolean;
}

/** A Postmark transport. */
export interface PostmarkTransport extends Transport {
  readonly name: 'postmark';
  /** Checks the server token (`GET /server`); nothing is sent. */
  verify(): Promise<void>;
  /** Releases idle keep-alive connections. */
  close(): Promise<void>;
}

const API: HttpApi = {
  transport: 'postmark',
  label: 'Postmark',
  defaultBaseUrl: 'https://api.postmarkapp.com',
  keyOption: 'serverToken (POSTMARK_SERVER_TOKEN)',
};

/**
 * Postmark's API error codes (the `ErrorCode` of a 422 answer, postmarkapp.com/developer/api/overview
 * "Error codes") that are not a refusal of this message; any other code is `rejected` (permanent).
 */
const ERROR_CODES: Readonly<Record<number, EmailErrorCode>> = {
  /** Bad or missing API token. */
  10: 'auth',
  /** Maintenance: try again later. */
  100: 'deferred',
  /** Sender signature not found, or not confirmed: nothing from this sender goes until it is. */
  400: 'config',
  401: 'config',
  /** Not allowed to send (out of credits), account pending, account may not send. */
  405: 'account',
  412: 'account',
  413: 'account',
  /** Rate limit exceeded. */
  429: 'rate-limit',
};
/** HTTP statuses, for answers without an `ErrorCode` (a proxy's, a 5xx); 5xx is `provider`, transient. */
const STATUS_CODES: Readonly<Record<number, EmailErrorCode>> = {
  401: 'auth',
  403: 'auth',
  404: 'config',
  413: 'rejected',
  422: 'rejected',
  429: 'rate-limit',
};

/**
 * Sends through Postmark's Email API.
 *
 * Mapping: `From`, `To`, `Cc`, `Bcc`, `ReplyTo` as `Name <address>` lists; `Subject`, `HtmlBody`,
 * `TextBody`; our Message-ID and custom headers in `Headers`; attachments base64 in `Attachments`
 * (an inline image's `ContentID` as `cid:…`, the calendar invitation as `invite.ics`); the one tag
 * in `Tag` (Postmark takes one: a message with more is refused with a `MessageError` naming
 * `tags`); metadata in `Metadata` as strings.
 *
 * Errors: HTTP 401 or `ErrorCode` 10 → `auth`; 300 (invalid email request), 406 (inactive
 * recipient) and other refusals of the message → `rejected`; 400/401 (sender signature) →
 * `config`; 405/412/413 → `account`; 429 → `rate-limit` (Retry-After honoured); 5xx → `provider`
 * (transient); a connection dropped after the request went out → ambiguous.
 *
 * Idempotency: Postmark documents no idempotency key, so a retry after a dropped connection may
 * deliver twice; it carries the same Message-ID header, so a receiver can tell.
 *
 * @example
 * ```ts
 * const transport = postmarkTransport({
 *   serverToken: process.env.POSTMARK_SERVER_TOKEN!,
 *   messageStream: 'outbound',
 * });
 * ```
 */
export function postmarkTransport(options: PostmarkTransportOptions): PostmarkTransport {
  const { endpoint, headers, timeoutMs } = checkOptions(options);
  const api = apiConnection(API, endpoint, { fetch: options.fetch, timeoutMs }, statusError);
  // Postmark's documented test token (API overview, Authentication): requests are checked, nothing is sent.
  const testToken = options.serverToken === TEST_TOKEN;

  return {
    name: 'postmark',
    // The test token: Postmark checks each request and delivers nothing.
    ...(testToken ? { captures: true } : {}),
    // It never sends a retry meant for some recipients only: it refuses it instead.
    narrowsRecipients: true,
    describe: () =>
      `postmark ${endpoint.origin}${options.messageStream ? ` (stream ${options.messageStream})` : ''}${testToken ? ' (test token: nothing delivered)' : ''}`,
    check: (message) => void toBody(message, options),
    async send(message, context) {
      api.admit(message, context);
      const body = JSON.stringify(toBody(message, options));
      const response = await api.request({ headers, body, signal: context.signal });
      const answer = parseJson(response.text) as { MessageID?: unknown; ErrorCode?: unknown } | undefined;
      // Postmark answers 200 with ErrorCode 0; a non-zero code in a 200 is still a refusal.
      if ((answer?.ErrorCode ?? 0) !== 0) throw statusError(response, api.server);
      return acceptedResult(API, message, answer, answer?.MessageID);
    },
    /**
     * Checks the server token with `GET /server` (Postmark's "Get the server"): rejects with the
     * same errors as a send (`auth` for a bad token). Nothing is sent.
     */
    async verify() {
      const check = new URL(endpoint.href.replace(/\/email$/, '/server'));
      await api.request({ headers, body: '', method: 'GET' }, check);
    },
    async close() {
      api.close();
    },
  };
}

/** Maps a Postmark answer that is a refusal to our error, by its `ErrorCode` first, else its status. */
function statusError(response: PostResponse, endpoint: string): EmailError {
  const answer = parseJson(response.text) as { ErrorCode?: unknown; Message?: unknown } | undefined;
  const errorCode = typeof answer?.ErrorCode === 'number' ? answer.ErrorCode : undefined;
  const code =
    response.status >= 500
      ? 'provider'
      : errorCode !== undefined && errorCode !== 0
        ? (ERROR_CODES[errorCode] ?? 'rejected')
        : (STATUS_CODES[response.status] ?? 'provider');
  const detail =
    typeof answer?.Message === 'string'
      ? `${answer.Message}${errorCode === undefined ? '' : ` (ErrorCode ${errorCode})`}`
      : undefined;
  return answerError(API, response, endpoint, code, detail);
}

/** The request body: every field of the message as Postmark's Email API names it. */
function toBody(message: EmailMessage, options: PostmarkTransportOptions): Record<string, unknown> {
  if (message.tags.length > 1) {
    throw new MessageError(
      'tags',
      `Postmark takes one tag per message (Tag); this one has ${message.tags.length}`,
    );
  }
  const list = (addresses: EmailMessage['to']) => addresses.map(formatAddress).join(', ');
  const files = apiFiles(message);
  return {
    From: formatAddress(message.from),
    To: list(message.to),
    ...(message.cc.length ? { Cc: list(message.cc) } : {}),
    ...(message.bcc.length ? { Bcc: list(message.bcc) } : {}),
    ...(message.replyTo.length ? { ReplyTo: list(message.replyTo) } : {}),
    Subject: message.subject,
    ...(message.html === undefined ? {} : { HtmlBody: message.html }),
    ...(message.text === undefined ? {} : { TextBody: message.text }),
    // Our Message-ID, so every retry of one email carries the same one.
    Headers: [
      { Name: 'Message-ID', Value: message.messageId },
      ...Object.entries(message.headers).map(([Name, Value]) => ({ Name, Value })),
    ],
    ...(message.tags.length ? { Tag: message.tags[0] } : {}),
    Metadata: Object.fromEntries(Object.entries(providerMetadata(message)).map(([k, v]) => [k, String(v)])),
    ...(files.length
      ? {
          Attachments: files.map((file) => ({
            Name: file.filename,
            Content: file.base64,
            ContentType: file.contentType,
            ...(file.cid ? { ContentID: `cid:${file.cid}` } : {}),
          })),
        }
      : {}),
    ...(options.messageStream ? { MessageStream: options.messageStream } : {}),
    ...(options.trackOpens === undefined ? {} : { TrackOpens: options.trackOpens }),
  };
}

function checkOptions(options: PostmarkTransportOptions) {
  requireOptions(API, options);
  const { base, timeoutMs } = checkApiOptions(API, options, {
    option: 'serverToken',
    value: options.serverToken,
  });
  const stream = options.messageStream;
  if (stream !== undefined && (typeof stream !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(stream))) {
    throw new ConfigError(
      'messageStream',
      'must be a message stream id such as outbound (letters, digits, - and _)',
    );
  }
  if (options.trackOpens !== undefined && typeof options.trackOpens !== 'boolean') {
    throw new ConfigError('trackOpens', 'must be true or false');
  }
  return {
    endpoint: new URL(`${base}/email`),
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      'x-postmark-server-token': options.serverToken,
    },
    timeoutMs,
  };
}
