/**
 * Resend's API: `POST /emails` with a JSON body, `Authorization: Bearer <key>` and an
 * `Idempotency-Key` header (resend.com/docs/api-reference/emails/send-email). Over node:http(s) with
 * keep-alive connections, or an injected `fetch`.
 */
import { createHash } from 'node:crypto';
import { type EmailError, type EmailErrorCode, MessageError } from '../errors.js';
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

/** Options of {@link resendTransport}. */
export interface ResendTransportOptions {
  /** Your API key (`re_…`), with sending access. Never logged, never in an error. */
  apiKey: string;
  /**
   * Another API base URL (a proxy, a local test server), e.g. `https://resend-proxy.internal`.
   * `https:` unless the host is this machine (`localhost`, 127.0.0.0/8, `::1`), since the key
   * travels in every request; no user name, password, query or fragment. Default
   * `https://api.resend.com`.
   */
  baseUrl?: string;
  /** An HTTP client to use instead of the built-in one (node:http with keep-alive connections). */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take, body and answer included (ms). Default 15 000. */
  timeoutMs?: number;
}

/** A Resend transport. */
export interface ResendTransport extends Transport {
  readonly name: 'resend';
  /** Releases idle keep-alive connections. */
  close(): Promise<void>;
}

const API: HttpApi = {
  transport: 'resend',
  label: 'Resend',
  defaultBaseUrl: 'https://api.resend.com',
  keyOption: 'apiKey (RESEND_API_KEY)',
};

/**
 * Resend's documented error names (resend.com/docs/api-reference/errors) that are not decided by
 * the status alone.
 */
const ERROR_NAMES: Readonly<Record<string, EmailErrorCode>> = {
  missing_api_key: 'auth',
  restricted_api_key: 'auth',
  invalid_api_key: 'auth',
  // The same key with another body: this message will never go through under that key.
  invalid_idempotent_request: 'rejected',
  // The first request with this key is still being processed: ask again later.
  concurrent_idempotent_requests: 'deferred',
  rate_limit_exceeded: 'rate-limit',
  // Resets the next day: worth a later attempt (a queue's), honouring Retry-After.
  daily_quota_exceeded: 'rate-limit',
  // Nothing goes until the plan changes or the month ends.
  monthly_quota_exceeded: 'account',
};
const STATUS_CODES: Readonly<Record<number, EmailErrorCode>> = {
  400: 'rejected',
  401: 'auth',
  // A 403 `validation_error` is a sending domain that is not verified: setup, not this message.
  403: 'config',
  404: 'config',
  405: 'config',
  409: 'rejected',
  413: 'rejected',
  422: 'rejected',
  429: 'rate-limit',
  451: 'rejected',
};
/** Resend tag names and values: "ASCII letters, numbers, underscores, or dashes", at most 256. */
const TAG_TEXT = /^[A-Za-z0-9_-]{1,256}$/;
/** Resend's longest idempotency key. */
const MAX_KEY = 256;

/**
 * Sends through Resend's API.
 *
 * Mapping: `from`, `to`, `cc`, `bcc`, `reply_to` as `Name <address>`; `subject`, `html`, `text`;
 * our Message-ID and custom headers in `headers`; attachments base64 in `attachments` (an inline
 * image's `content_id`, the calendar invitation as `invite.ics`); Resend has no metadata field, so
 * each tag becomes a tag `{ name: tag, value: 'true' }` and each metadata entry a tag
 * `{ name: key, value }`. Tag names and values allow only ASCII letters, digits, `_` and `-`: other
 * characters are refused with a `MessageError` naming the field (`tags[0]`, `metadata.plan`).
 *
 * No `verify()`: a sending-only Resend key may call no endpoint but sending (others answer 401
 * `restricted_api_key`), so a key can only be checked by sending.
 *
 * Idempotency: every attempt of one email carries the same `Idempotency-Key` header: the message's
 * `idempotencyKey` when it has one, else its Message-ID (hashed if longer than 256 characters).
 * Resend answers a repeat within 24 hours with the first answer and sends nothing again, so a
 * retry after a dropped connection does not deliver twice.
 *
 * Errors: 401 and 403 `invalid_api_key` → `auth`; 403 `validation_error` (domain not verified)
 * → `config`; 400/422 → `rejected`; 409 `concurrent_idempotent_requests` → `deferred`
 * (transient), `invalid_idempotent_request` → `rejected`; 429 → `rate-limit` (Retry-After
 * honoured), but `monthly_quota_exceeded` → `account`; 5xx → `provider` (transient); a connection
 * dropped after the request went out → ambiguous.
 *
 * @example
 * ```ts
 * const transport = resendTransport({ apiKey: process.env.RESEND_API_KEY! });
 * ```
 */
export function resendTransport(options: ResendTransportOptions): ResendTransport {
  const { endpoint, authorization, timeoutMs } = checkOptions(options);
  const api = apiConnection(API, endpoint, { fetch: options.fetch, timeoutMs }, statusError);

  return {
    name: 'resend',
    // It never sends a retry meant for some recipients only: it refuses it instead.
    narrowsRecipients: true,
    describe: () => `resend ${endpoint.origin}`,
    check: (message) => void toBody(message),
    async send(message, context) {
      api.admit(message, context);
      const body = JSON.stringify(toBody(message));
      const response = await api.request({
        headers: {
          authorization,
          'content-type': 'application/json',
          'idempotency-key': idempotencyKey(message),
        },
        body,
        signal: context.signal,
      });
      const answer = parseJson(response.text) as { id?: unknown } | undefined;
      return acceptedResult(API, message, answer, answer?.id);
    },
    async close() {
      api.close();
    },
  };
}

/** Maps a Resend answer that is not 2xx to our error, by its `name` first, else its status. */
function statusError(response: PostResponse, endpoint: string): EmailError {
  const answer = parseJson(response.text) as { name?: unknown; message?: unknown } | undefined;
  const name = typeof answer?.name === 'string' ? answer.name : undefined;
  const code =
    response.status >= 500
      ? 'provider'
      : ((name === undefined ? undefined : ERROR_NAMES[name]) ?? STATUS_CODES[response.status] ?? 'provider');
  const detail =
    typeof answer?.message === 'string' ? `${answer.message}${name ? ` (${name})` : ''}` : undefined;
  return answerError(API, response, endpoint, code, detail);
}

/** The same for every attempt of one email, and at most 256 characters, as Resend requires. */
function idempotencyKey(message: EmailMessage): string {
  const key = message.idempotencyKey ?? message.messageId;
  return key.length <= MAX_KEY ? key : createHash('sha256').update(key).digest('hex');
}

/** The request body: every field of the message as Resend's API names it. */
function toBody(message: EmailMessage): Record<string, unknown> {
  const tags = [
    ...message.tags.map((tag, i) => ({ name: tagText(tag, `tags[${i}]`), value: 'true' })),
    ...Object.entries(providerMetadata(message)).map(([key, value]) => ({
      name: tagText(key, `metadata.${key}`),
      value: tagText(String(value), `metadata.${key}`),
    })),
  ];
  const files = apiFiles(message);
  return {
    from: formatAddress(message.from),
    to: message.to.map(formatAddress),
    ...(message.cc.length ? { cc: message.cc.map(formatAddress) } : {}),
    ...(message.bcc.length ? { bcc: message.bcc.map(formatAddress) } : {}),
    ...(message.replyTo.length ? { reply_to: message.replyTo.map(formatAddress) } : {}),
    subject: message.subject,
    ...(message.html === undefined ? {} : { html: message.html }),
    ...(message.text === undefined ? {} : { text: message.text }),
    // Our Message-ID, so every retry of one email carries the same one.
    headers: { 'Message-ID': message.messageId, ...message.headers },
    ...(tags.length ? { tags } : {}),
    ...(files.length
      ? {
          attachments: files.map((file) => ({
            filename: file.filename,
            content: file.base64,
            content_type: file.contentType,
            ...(file.cid ? { content_id: file.cid } : {}),
          })),
        }
      : {}),
  };
}

function tagText(value: string, field: string): string {
  if (!TAG_TEXT.test(value)) {
    throw new MessageError(
      field,
      'Resend tags allow only ASCII letters, digits, underscores and dashes (at most 256 characters)',
    );
  }
  return value;
}

function checkOptions(options: ResendTransportOptions) {
  requireOptions(API, options);
  const { base, timeoutMs } = checkApiOptions(API, options, { option: 'apiKey', value: options.apiKey });
  return {
    endpoint: new URL(`${base}/emails`),
    authorization: `Bearer ${options.apiKey}`,
    timeoutMs,
  };
}
