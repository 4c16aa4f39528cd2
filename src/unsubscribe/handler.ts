/**
 * The unsubscribe endpoint: the one-click POST of RFC 8058 that mailbox providers send, and the
 * page a person reaches by following the link. A node:http handler, mountable like the webhooks.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import { bodyUnread, rawBody, reply } from '../http-request.js';
import type { PreferenceStore } from '../preferences.js';
import {
  type BrandOptions,
  DEFAULT_PALETTE,
  hexColor,
  type Palette,
  resolveBrand,
} from '../templates/brand.js';
import type { Translations, Translator } from '../templates/i18n.js';
import { pageLanguages } from './language.js';
import { type Pages, pages, type Refusal, sendPage } from './page.js';
import {
  checkMaxAgeDays,
  secretList,
  type UnsubscribeSecret,
  type UnsubscribeTokenFailure,
  verifyWith,
} from './token.js';

/** Options of {@link createUnsubscribeHandler}. */
export interface UnsubscribeHandlerOptions {
  /**
   * The secrets tokens may be signed with, newest first: the service's `unsubscribe.secrets`.
   * Required, each at least 32 bytes.
   */
  secrets: readonly UnsubscribeSecret[];
  /** Where the opt-out is recorded (the service's `preferences`). Required. */
  preferences: PreferenceStore;
  /** How long a link stays good, in days. Default 90 (see `verifyUnsubscribeToken`). */
  maxAgeDays?: number;
  /**
   * Who the page speaks for: the app's name ("Unsubscribe from product update emails from Acme?")
   * and its brand colours. Pass an `EmailService`'s `mail.app` to match its emails exactly, or
   * `{ name, brand }`. Default: no name, the default palette.
   */
  app?: { readonly name: string; readonly brand?: BrandOptions } | UnsubscribeAppLook;
  /**
   * The language of the pages when the request names none this handler has words for: a BCP 47
   * tag, as the service's `locale`. A request is answered in its link's `lang` (the email's
   * locale, which the service adds after `token`), else its `Accept-Language` (q-values honoured),
   * else this. Each is used only when a catalog covers it: its own tag or one it falls back to
   * (`de-AT` → `de`, `fr-CA` → `fr`), as emails fall back; `pt` and `pt-PT` are not covered by
   * `pt-BR`, just as an email in `pt` is written in English. The page then says `lang="de"` (and
   * `dir="rtl"` for Arabic). Built-in: `en`, `de`, `fr`, `es`, `pt-BR`, `ar`. A malformed tag is
   * a `ConfigError` naming `locale`; one no catalog covers means English. Default `en`.
   */
  locale?: string;
  /**
   * The pages' words over mailroom's own, as the service's `messages` (the same object may be
   * passed to both): catalogs by locale, ICU MessageFormat strings by key under
   * `unsubscribe-page` (see `templates/locales/en.json`: `unsubscribe-page.question.title`, …).
   * Override one of ours, or add a language: a locale with any `unsubscribe-page` word can be
   * chosen, its missing words falling back to English. A sentence (`question.title`,
   * `question.body`, `done.body`) gets `{category}` (`product` or `marketing`), `{hasApp}` (`yes`
   * or `no`), `{app}` and `{address}`; the other words get none. Write no markup: every word is
   * escaped, and the address is put in bold. A tag that is not BCP 47, a message that is not ICU,
   * or one that uses an argument it is not given is a `ConfigError` naming it
   * (`messages.de.unsubscribe-page.question.title`).
   */
  messages?: Translations;
  /** Where a store failure goes (the request gets 500). Default: `console.error`. */
  onError?: (error: unknown) => void;
}

/** What the page takes of an `EmailService`'s `app`. */
export interface UnsubscribeAppLook {
  readonly name: string;
  readonly colors: Palette;
  readonly darkColors: Palette;
}

/** A node:http request handler that also works as Express middleware (`next` gets mounting mistakes). */
export type UnsubscribeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const MAX_BODY_BYTES = 64 * 1024;
const ONE_CLICK = 'One-Click';

/**
 * The endpoint at the service's `unsubscribe.url`. Mount it for GET and POST, before or after the
 * app's body parsers: it takes the object `express.urlencoded()` made, the string or bytes of
 * `express.text()` / `express.raw()`, and reads the form itself from a request a parser left unread
 * (Express 4's `{}`, Express 5's undefined). Only a body read and dropped is a mounting mistake:
 *
 * - `POST ?token=…` with the body `List-Unsubscribe=One-Click`, form-urlencoded or multipart
 *   (RFC 8058 §3.2, what mailbox providers send): verifies the token and records
 *   `preferences.set(address, category, false, { at: now, source: 'one-click-unsubscribe' })`,
 *   then answers 200, never a redirect (RFC 8058 §3.2). The choice is dated when the request
 *   comes: the stores keep the latest by `at`, and an opt-out is honoured even from an older email
 *   sent before the recipient last changed their settings (CAN-SPAM: honour every opt-out). A
 *   POST from the handler's own page answers with a confirmation page.
 * - `GET` (and `HEAD`) `?token=…`: changes nothing, since link scanners fetch links; shows "Unsubscribe
 *   from <category> emails from <app>?" with a button that POSTs.
 * - A malformed token (or a POST without `List-Unsubscribe=One-Click`) gets 400; a forged,
 *   tampered, expired or future one 403, as a plain page; nothing is recorded. A store that fails
 *   gets 500, so the provider tries again. Bodies past 64 KiB: 413. Other methods: 405.
 *
 * Pages are in the reader's language (see `locale`): self-contained HTML under
 * `Content-Security-Policy: default-src 'none'` (the one stylesheet allowed by hash) with
 * `frame-ancestors 'none'`. Every answer, page or plain text, carries that policy,
 * `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` and
 * `Referrer-Policy: no-referrer` (the URL holds the token).
 *
 * Throws a `ConfigError` naming `secrets`, `secrets[i]`, `preferences`, `maxAgeDays`, `app`,
 * `locale` or `messages.<locale>.<key>`.
 *
 * @example
 * ```ts
 * import { createUnsubscribeHandler } from 'mailroom-js/unsubscribe';
 *
 * const unsubscribe = createUnsubscribeHandler({ secrets, preferences, app: mail.app, locale: mail.locale });
 * // node:http
 * createServer(unsubscribe);
 * // Express, before or after express.json() / express.urlencoded()
 * app.all('/unsubscribe', unsubscribe);
 * // Fastify: leave the body unread in the route's scope, then hand over the raw request.
 * fastify.register(async (scope) => {
 *   scope.removeAllContentTypeParsers();
 *   scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
 *   scope.route({ method: ['GET', 'HEAD', 'POST'], url: '/unsubscribe', handler: (request, reply) => {
 *     reply.hijack();
 *     unsubscribe(request.raw, reply.raw);
 *   } });
 * });
 * ```
 */
export function createUnsubscribeHandler(options: UnsubscribeHandlerOptions): UnsubscribeHandler {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createUnsubscribeHandler: expected options { secrets, preferences }');
  const keys = secretList(options.secrets, 'secrets');
  const maxAgeDays = checkMaxAgeDays(options.maxAgeDays, 'maxAgeDays');
  const { preferences } = options;
  if (typeof preferences?.set !== 'function')
    throw new ConfigError('preferences', 'required: a PreferenceStore (e.g. memoryPreferenceStore())');
  const look = pages(lookOf(options.app));
  const languages = pageLanguages(options.messages, options.locale);
  const onError = options.onError ?? ((error: unknown) => console.error(error));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST')
      return reply(res, 405, 'Method Not Allowed', { allow: 'GET, HEAD, POST' });
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const token = query.get('token');
    const words = languages.translator(languages.pick(query.get('lang'), req.headers['accept-language']));
    if (method !== 'POST') {
      const verdict = verifyWith(token, keys, maxAgeDays, new Date());
      if (!verdict.ok) return refuse(res, look, words, verdict.reason);
      return sendPage(res, 200, look.question(words, verdict.address, verdict.category, token as string));
    }
    const fields = await formFields(req);
    if (fields === 'too-large') return reply(res, 413, 'Payload Too Large', { connection: 'close' });
    const verdict = verifyWith(token, keys, maxAgeDays, new Date());
    if (!verdict.ok) return refuse(res, look, words, verdict.reason);
    if (fields?.get('List-Unsubscribe') !== ONE_CLICK)
      return sendPage(res, 400, look.refusal(words, 'bad-request'));
    try {
      // Dated now, when the recipient asked: an opt-out is honoured whatever they chose before.
      await preferences.set(verdict.address, verdict.category, false, {
        at: new Date(),
        source: 'one-click-unsubscribe',
      });
    } catch (error) {
      onError(error);
      return sendPage(res, 500, look.refusal(words, 'try-again'));
    }
    if (fields.get('confirm') === 'page')
      return sendPage(res, 200, look.done(words, verdict.address, verdict.category));
    reply(res, 200, 'Unsubscribed');
  };

  return (req, res, next) => {
    // Every answer, page or plain text, refusal or error, goes with these: set here, once.
    for (const [name, value] of Object.entries(look.headers)) res.setHeader(name, value);
    handle(req, res).catch((error: unknown) => {
      // A mounting mistake (a JSON parser ran first): Express answers through its error handlers.
      if (next) return next(error);
      if (!res.headersSent) reply(res, 500, 'Internal Server Error');
      onError(error);
    });
  };
}

/** What a refused token is told (the words: `unsubscribe-page.<refusal>`): malformed 400, the rest 403. */
const REFUSALS: Record<UnsubscribeTokenFailure, readonly [number, Refusal]> = {
  malformed: [400, 'incomplete'],
  forged: [403, 'invalid'],
  future: [403, 'invalid'],
  expired: [403, 'expired'],
};

function refuse(res: ServerResponse, look: Pages, words: Translator, reason: UnsubscribeTokenFailure): void {
  const [status, refusal] = REFUSALS[reason];
  sendPage(res, status, look.refusal(words, refusal));
}

/**
 * The form's fields (RFC 8058 §3.2: `application/x-www-form-urlencoded` or `multipart/form-data`):
 * the object a body parser made of the stream it read (`express.urlencoded()`), else the body's
 * bytes, from the stream or as `express.text()` / `express.raw()` left them. Bytes are multipart
 * when the request says so, else URL-encoded: a provider's one-click is honoured whatever type it
 * names. Undefined for a multipart body that does not parse.
 */
async function formFields(req: IncomingMessage): Promise<URLSearchParams | undefined | 'too-large'> {
  const parsed = (req as { body?: unknown }).body;
  // Only an object a parser made of the stream: Express 4 leaves `{}` on a form it does not read.
  if (isPlainObject(parsed) && !bodyUnread(req)) {
    const fields = new URLSearchParams();
    for (const [name, value] of Object.entries(parsed))
      for (const one of Array.isArray(value) ? value : [value])
        if (typeof one === 'string') fields.append(name, one);
    return fields;
  }
  const body = await rawBody(req, MAX_BODY_BYTES, 'the unsubscribe handler');
  if (body === 'too-large') return body;
  const header = req.headers['content-type'] ?? '';
  // Only the media type is case-insensitive: the multipart boundary must stay as it was sent.
  if (!header.toLowerCase().startsWith('multipart/form-data'))
    return new URLSearchParams(body.toString('utf8'));
  try {
    const form = await new Response(body, { headers: { 'content-type': header } }).formData();
    const fields = new URLSearchParams();
    for (const [name, value] of form) if (typeof value === 'string') fields.append(name, value);
    return fields;
  } catch {
    return undefined;
  }
}

/** Every colour checked: they are written into the page's stylesheet. */
function palette(colors: Palette, option: string): Palette {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(DEFAULT_PALETTE)) {
    const given = (colors as unknown as Record<string, unknown>)?.[name];
    out[name] = given === undefined ? value : hexColor(given, `${option}.${name}`);
  }
  return out as unknown as Palette;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function lookOf(app: UnsubscribeHandlerOptions['app']) {
  if (app === undefined) {
    const { colors, darkColors } = resolveBrand(undefined, 'app');
    return { appName: undefined, colors, darkColors };
  }
  if (typeof app !== 'object' || app === null || typeof app.name !== 'string' || app.name.trim() === '')
    throw new ConfigError('app', 'must be { name, brand? } or an EmailService’s app');
  if ('colors' in app && 'darkColors' in app)
    return {
      appName: app.name,
      colors: palette(app.colors, 'app.colors'),
      darkColors: palette(app.darkColors, 'app.darkColors'),
    };
  const { colors, darkColors } = resolveBrand((app as { brand?: BrandOptions }).brand, app.name);
  return { appName: app.name, colors, darkColors };
}
