/**
 * SendGrid's v3 Mail Send API: `POST /v3/mail/send` with a JSON body and `Authorization: Bearer
 * <key>`; `202 Accepted` with an empty body and the message's id in the `X-Message-Id` header
 * (docs.sendgrid.com/api-reference/mail-send/mail-send). Over node:http(s) with keep-alive
 * connections, or an injected `fetch`.
 */
import { ConfigError, EmailError, type EmailErrorCode, MessageError } from '../errors.js';
import type { Address, EmailMessage } from '../message.js';
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

/** Options of {@link sendgridTransport}. */
export interface SendgridTransportOptions {
  /** Your API key (`SG.…`), with Mail Send access. Never logged, never in an error. */
  apiKey: string;
  /**
   * Send with `mail_settings.sandbox_mode`: SendGrid validates the request and answers 200, but
   * delivers nothing. Default false.
   */
  sandboxMode?: boolean;
  /** `global` (api.sendgrid.com, default) or `eu` (api.eu.sendgrid.com, for EU-pinned subusers). */
  region?: 'global' | 'eu';
  /**
   * Another API base URL (a proxy, a local test server), e.g. `https://sendgrid-proxy.internal`;
   * overrides `region`. `https:` unless the host is this machine (`localhost`, 127.0.0.0/8, `::1`),
   * since the key travels in every request; no user name, password, query or fragment.
   */
  baseUrl?: string;
  /** An HTTP client to use instead of the built-in one (node:http with keep-alive connections). */
  fetch?: typeof globalThis.fetch;
  /** How long one request may take, body and answer included (ms). Default 15 000. */
  timeoutMs?: number;
}

/** A SendGrid transport. */
export interface SendgridTransport extends Transport {
  readonly name: 'sendgrid';
  /** Checks the key and its `mail.send` scope (`GET /v3/scopes`); nothing is sent. */
  verify(): Promise<void>;
  /** Releases idle keep-alive connections. */
  close(): Promise<void>;
}

const REGIONS = { global: 'https://api.sendgrid.com', eu: 'https://api.eu.sendgrid.com' } as const;
const API: HttpApi = {
  transport: 'sendgrid',
  label: 'SendGrid',
  defaultBaseUrl: REGIONS.global,
  keyOption: 'apiKey (SENDGRID_API_KEY)',
  hostHint: 'check baseUrl or region',
};
/** SendGrid's documented Mail Send statuses; any other is `provider` (a 5xx transient, a 4xx permanent). */
const STATUS_CODES: Readonly<Record<number, EmailErrorCode>> = {
  400: 'rejected',
  401: 'auth',
  // "Access forbidden": a key without Mail Send access, or a sender identity not verified.
  403: 'auth',
  404: 'config',
  413: 'rejected',
  429: 'rate-limit',
};
/** Categories: at most 10 per message, 255 characters each (SendGrid, "categories"). */
const MAX_CATEGORY = 255;
/** `custom_args`: at most 10 000 bytes together (SendGrid, "custom_args"). */
const MAX_CUSTOM_ARGS = 10_000;

/**
 * Sends through SendGrid's v3 Mail Send API.
 *
 * Mapping: one personalization with `to`, `cc` and `bcc` as `{ email, name }`, each address once
 * (SendGrid refuses repeats; the first place it appears is kept, To before Cc before Bcc); `from`;
 * `reply_to` (or `reply_to_list` for several); `subject`; `content` as `text/plain` then
 * `text/html` (the order SendGrid requires); our Message-ID and custom headers in `headers`;
 * attachments base64 in `attachments` (`disposition: inline` with a `content_id` for an image with
 * a cid, the calendar invitation as `invite.ics`); tags as `categories` (each at most 255
 * characters); metadata as `custom_args` (strings, at most 10 000 bytes together, else a
 * `MessageError` naming `metadata`).
 *
 * Idempotency: SendGrid's Mail Send API documents no idempotency key, so a retry after a dropped
 * connection may deliver twice; it carries the same Message-ID header, so a receiver can tell.
 *
 * Errors: 401 and 403 → `auth`; 400 and 413 → `rejected`; 404 → `config`; 429 → `rate-limit`
 * (Retry-After honoured, else SendGrid's `X-RateLimit-Reset`); 5xx → `provider` (transient); a
 * connection dropped after the request went out → ambiguous. The message quotes SendGrid's first
 * error and its field.
 *
 * @example
 * ```ts
 * const transport = sendgridTransport({ apiKey: process.env.SENDGRID_API_KEY! });
 * ```
 */
export function sendgridTransport(options: SendgridTransportOptions): SendgridTransport {
  const { endpoint, authorization, timeoutMs } = checkOptions(options);
  const api = apiConnection(API, endpoint, { fetch: options.fetch, timeoutMs }, statusError);

  return {
    name: 'sendgrid',
    // Sandbox mode: SendGrid checks the request and delivers nothing.
    ...(options.sandboxMode === true ? { captures: true } : {}),
    // It never sends a retry meant for some recipients only: it refuses it instead.
    narrowsRecipients: true,
    describe: () =>
      `sendgrid ${endpoint.origin}${options.sandboxMode ? ' (sandbox mode: nothing delivered)' : ''}`,
    check: (message) => void toBody(message, options),
    async send(message, context) {
      api.admit(message, context);
      const body = JSON.stringify(toBody(message, options));
      const response = await api.request({
        headers: { authorization, 'content-type': 'application/json' },
        body,
        signal: context.signal,
      });
      // 202 with an empty body: the message's id is in a header.
      const id = response.header('x-message-id') || undefined;
      return acceptedResult(API, message, { status: response.status, ...(id ? { messageId: id } : {}) }, id);
    },
    /**
     * Checks the key with `GET /v3/scopes` (SendGrid's "Retrieve a list of scopes for which this
     * user has access"): rejects with the same errors as a send (`auth` for a bad key), and with
     * `auth` when the key lacks the `mail.send` scope. Nothing is sent.
     */
    async verify() {
      const check = new URL(endpoint.href.replace(/\/v3\/mail\/send$/, '/v3/scopes'));
      const response = await api.request(
        { headers: { authorization, accept: 'application/json' }, body: '', method: 'GET' },
        check,
      );
      const scopes = (parseJson(response.text) as { scopes?: unknown } | undefined)?.scopes;
      if (Array.isArray(scopes) && !scopes.includes('mail.send')) {
        throw new EmailError(`SendGrid: the API key at ${api.server} lacks the mail.send scope`, {
          code: 'auth',
          transport: 'sendgrid',
          status: response.status,
          endpoint: api.server,
        });
      }
    },
    async close() {
      api.close();
    },
  };
}

/** Maps a SendGrid answer that is not 2xx: `{ errors: [{ message, field, help }] }`. */
function statusError(response: PostResponse, endpoint: string): EmailError {
  const answer = parseJson(response.text) as
    | { errors?: { message?: unknown; field?: unknown }[] }
    | undefined;
  const first = Array.isArray(answer?.errors) ? answer.errors[0] : undefined;
  const detail =
    typeof first?.message === 'string'
      ? `${first.message}${typeof first.field === 'string' && first.field ? ` (field ${first.field})` : ''}`
      : undefined;
  // SendGrid's 429 says when the window resets (`X-RateLimit-Reset`, Unix seconds), not always Retry-After.
  const reset = response.status === 429 ? Number(response.header('x-ratelimit-reset')) : Number.NaN;
  const untilReset = Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - Date.now()) : undefined;
  return answerError(
    API,
    response,
    endpoint,
    STATUS_CODES[response.status] ?? 'provider',
    detail,
    untilReset,
  );
}

/** The request body: every field of the message as the v3 Mail Send API names it. */
function toBody(message: EmailMessage, options: SendgridTransportOptions): Record<string, unknown> {
  const person = (address: Address) => ({
    email: address.address,
    ...(address.name ? { name: address.name } : {}),
  });
  message.tags.forEach((tag, i) => {
    if (tag.length > MAX_CATEGORY)
      throw new MessageError(`tags[${i}]`, `SendGrid categories are at most ${MAX_CATEGORY} characters`);
  });
  const customArgs = Object.fromEntries(
    Object.entries(providerMetadata(message)).map(([k, v]) => [k, String(v)]),
  );
  if (Buffer.byteLength(JSON.stringify(customArgs)) > MAX_CUSTOM_ARGS) {
    throw new MessageError('metadata', `SendGrid takes at most ${MAX_CUSTOM_ARGS} bytes of custom_args`);
  }
  const files = apiFiles(message);
  const [replyTo, ...moreReplyTo] = message.replyTo;
  // SendGrid refuses an address twice in one personalization ("should be unique between to, cc,
  // and bcc"): each recipient is kept where it first appears, To before Cc before Bcc.
  const seen = new Set<string>();
  const once = (list: readonly Address[]) =>
    list.filter((a) => {
      const key = a.address.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  const [to, cc, bcc] = [once(message.to), once(message.cc), once(message.bcc)];
  return {
    personalizations: [
      {
        to: to.map(person),
        ...(cc.length ? { cc: cc.map(person) } : {}),
        ...(bcc.length ? { bcc: bcc.map(person) } : {}),
      },
    ],
    from: person(message.from),
    ...(replyTo === undefined
      ? {}
      : moreReplyTo.length
        ? { reply_to_list: message.replyTo.map(person) }
        : { reply_to: person(replyTo) }),
    subject: message.subject,
    // "text/plain must be first, then text/html" (SendGrid, content).
    content: [
      ...(message.text === undefined ? [] : [{ type: 'text/plain', value: message.text }]),
      ...(message.html === undefined ? [] : [{ type: 'text/html', value: message.html }]),
    ],
    // Our Message-ID, so every retry of one email carries the same one.
    headers: { 'Message-ID': message.messageId, ...message.headers },
    ...(message.tags.length ? { categories: [...message.tags] } : {}),
    custom_args: customArgs,
    ...(files.length
      ? {
          attachments: files.map((file) => ({
            content: file.base64,
            type: file.contentType,
            filename: file.filename,
            disposition: file.cid ? 'inline' : 'attachment',
            ...(file.cid ? { content_id: file.cid } : {}),
          })),
        }
      : {}),
    ...(options.sandboxMode ? { mail_settings: { sandbox_mode: { enable: true } } } : {}),
  };
}

function checkOptions(options: SendgridTransportOptions) {
  requireOptions(API, options);
  const { region = 'global' } = options;
  if (!(region in REGIONS)) throw new ConfigError('region', 'must be global or eu');
  if (options.sandboxMode !== undefined && typeof options.sandboxMode !== 'boolean') {
    throw new ConfigError('sandboxMode', 'must be true or false');
  }
  const { base, timeoutMs } = checkApiOptions({ ...API, defaultBaseUrl: REGIONS[region] }, options, {
    option: 'apiKey',
    value: options.apiKey,
  });
  return {
    endpoint: new URL(`${base}/v3/mail/send`),
    authorization: `Bearer ${options.apiKey}`,
    timeoutMs,
  };
}
