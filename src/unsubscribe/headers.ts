/**
 * Internal: the `List-Unsubscribe` (RFC 2369) and `List-Unsubscribe-Post` (RFC 8058) headers the
 * service puts on every `product` and `marketing` email when `unsubscribe` is configured, and the
 * footer's "Unsubscribe" link, which is the same URL (see footer.ts).
 */
import { ConfigError, MessageError } from '../errors.js';
import { isLoopback } from '../loopback.js';
import { configAddress, type EmailMessage } from '../message.js';
import { isChoosable } from '../preferences.js';
import { checkNoFooterLinks, type FooterFragment, withFooterLinks } from './footer.js';
import { checkMaxAgeDays, secretList, signUnsubscribeToken, type UnsubscribeSecret } from './token.js';

/** `EmailServiceOptions.unsubscribe`: one-click unsubscribe links on `product` and `marketing` mail. */
export interface UnsubscribeOptions {
  /**
   * Where `createUnsubscribeHandler()` is mounted, e.g. `https://acme.example/unsubscribe`; each
   * email's signed token is added as the `token` query parameter, and the language it is written
   * in (its `locale`, else the service's) as `lang` (the page's language, not signed). HTTPS (RFC 8058 §3.1 requires an HTTPS URI), or
   * http on a loopback host for local testing. At most 500 characters, no `token` parameter of
   * its own, no fragment. From `MAILROOM_UNSUBSCRIBE_URL`.
   */
  url: string;
  /**
   * The signing secrets, newest first, each at least 32 bytes: tokens are signed with the first,
   * and the handler accepts any. Give the handler the same list. From
   * `MAILROOM_UNSUBSCRIBE_SECRETS` (comma-separated). Never logged.
   */
  secrets: readonly UnsubscribeSecret[];
  /**
   * An address that takes unsubscribe requests by email, listed after the URL as
   * `<mailto:…?subject=unsubscribe>` (RFC 2369 §3.2) for mail apps without one-click. Processing
   * what arrives there is yours: the request's From is the recipient. From
   * `MAILROOM_UNSUBSCRIBE_MAILTO`. Default: none (the URL only).
   */
  mailto?: string;
  /**
   * Your app's notification settings page, e.g. `https://acme.example/settings/notifications`,
   * linked as "Manage notification settings" in the footer of `product` and `marketing` mail, next
   * to "Unsubscribe". The same URL for everyone (the page signs the reader in as usual). https, or
   * http on a loopback host; at most 500 characters; no user name or password. Default: none, and
   * the footer shows only "Unsubscribe". From `MAILROOM_UNSUBSCRIBE_MANAGE_URL`.
   */
  manageUrl?: string;
  /**
   * How long a link stays good, in days (default 90). The service does not read it; it is here so
   * one object can configure the service and `createUnsubscribeHandler()` alike.
   */
  maxAgeDays?: number;
}

/** The checked options. */
export interface ResolvedUnsubscribe {
  readonly url: URL;
  readonly secret: Buffer;
  readonly mailto: string | undefined;
  readonly manageUrl: string | undefined;
}

const HEADER_NAMES = new Set(['list-unsubscribe', 'list-unsubscribe-post']);
const MAX_URL_LENGTH = 500;

/** Checks `unsubscribe`; every mistake a `ConfigError` naming `unsubscribe.<field>`. */
export function resolveUnsubscribe(options: unknown): ResolvedUnsubscribe | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('unsubscribe', 'must be { url, secrets, mailto?, manageUrl?, maxAgeDays? }');
  const { url, secrets, mailto, manageUrl, maxAgeDays } = options as Partial<UnsubscribeOptions>;
  const keys = secretList(secrets, 'unsubscribe.secrets');
  checkMaxAgeDays(maxAgeDays, 'unsubscribe.maxAgeDays');
  return Object.freeze({
    url: checkUrl(url, 'unsubscribe.url'),
    secret: keys[0] as Buffer,
    mailto: mailto === undefined ? undefined : configAddress(mailto, 'unsubscribe.mailto').address,
    manageUrl: manageUrl === undefined ? undefined : checkManageUrl(manageUrl, 'unsubscribe.manageUrl'),
  });
}

/** The settings page's URL: https, or http on loopback; a `ConfigError` naming `option`. */
function checkManageUrl(value: unknown, option: string): string {
  return linkUrl(value, option, 'https://acme.example/settings/notifications', 'must be https').href;
}

/** An unsubscribe URL: https, or http on loopback; a `ConfigError` naming `option`. */
export function checkUrl(value: unknown, option: string): URL {
  return linkUrl(value, option, 'https://acme.example/unsubscribe', 'must be https (RFC 8058)', (url) => {
    if (url.hash) throw new ConfigError(option, 'must not have a #fragment');
    if (url.searchParams.has('token'))
      throw new ConfigError(option, 'must not have a token parameter: each email adds its own');
  });
}

/**
 * A URL an email links to: https (`httpsRule` says why), or http on loopback for testing; no user
 * name or password; `extra` checks of the caller's; at most `MAX_URL_LENGTH` characters. Each
 * mistake a `ConfigError` naming `option`.
 */
function linkUrl(
  value: unknown,
  option: string,
  example: string,
  httpsRule: string,
  extra?: (url: URL) => void,
): URL {
  if (typeof value !== 'string' || !URL.canParse(value))
    throw new ConfigError(option, `must be an https URL such as ${example}`);
  const url = new URL(value);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname)))
    throw new ConfigError(option, `${httpsRule}; http only on localhost for testing`);
  if (url.username || url.password) throw new ConfigError(option, 'must not carry a user name or password');
  extra?.(url);
  if (url.href.length > MAX_URL_LENGTH)
    throw new ConfigError(option, `longer than ${MAX_URL_LENGTH} characters`);
  return url;
}

/**
 * Refuses what cannot carry one person's unsubscribe link, before anything is looked up or sent:
 * a `product`/`marketing` email to several recipients (the token names one), and a caller's own
 * `List-Unsubscribe*` header (ours is the one that works with the handler; on `security` and
 * `transactional` mail, none may appear: such mail must not offer an unsubscribe), and such mail
 * rendered with the footer's unsubscribe link.
 */
export function checkUnsubscribable(message: EmailMessage, renderedAsSent = false): void {
  const own = Object.keys(message.headers).find((name) => HEADER_NAMES.has(name.toLowerCase()));
  if (own !== undefined) {
    throw new MessageError(
      `headers.${own}`,
      isChoosable(message.category)
        ? 'set by mailroom from the unsubscribe option on product and marketing mail'
        : `${message.category} mail carries no unsubscribe (RFC 8058 is for mail a recipient may turn off); send it as product or marketing`,
    );
  }
  if (!isChoosable(message.category)) {
    if (!renderedAsSent) checkNoFooterLinks(message);
    return;
  }
  const count = message.to.length + message.cc.length + message.bcc.length;
  if (count > 1)
    throw new MessageError(
      'to',
      `${message.category} mail carries one recipient's unsubscribe link: send one email per recipient (this one has ${count} recipients across to, cc and bcc)`,
    );
}

/**
 * The message with `List-Unsubscribe` and `List-Unsubscribe-Post` added for its one recipient and
 * the same URL in its footer (`footer(language)` gives the links for a part that does not show
 * them), or the message itself when it is not `product`/`marketing` mail. `language`: the
 * canonical locale the email is written in (its own `locale`, else the service's).
 *
 * The URL is `<url>?token=<token>&lang=<language>` (a `lang` the configured URL has takes that
 * value), so the handler's page speaks the email's language. `lang` is for display only: the
 * token does not sign it, and the handler records the same opt-out whatever it says.
 */
export function withUnsubscribe(
  message: EmailMessage,
  config: ResolvedUnsubscribe,
  language: string,
  footer: (language: string) => FooterFragment,
  issuedAt: Date = new Date(),
): EmailMessage {
  if (!isChoosable(message.category)) return message;
  const recipient = message.to[0] ?? message.cc[0] ?? message.bcc[0];
  if (!recipient) return message;
  const token = signUnsubscribeToken(
    { address: recipient.address, category: message.category, issuedAt },
    config.secret,
  );
  const url = new URL(config.url);
  url.searchParams.set('token', token);
  // After the token; a `lang` of the configured URL's own keeps its place and takes the email's.
  url.searchParams.set('lang', language);
  // RFC 2369 §2: a literal comma in the URL must be encoded, commas separate the URLs.
  const href = url.href.replace(/,/g, '%2C');
  const links = [`<${href}>`];
  if (config.mailto) links.push(`<mailto:${config.mailto}?subject=unsubscribe>`);
  return Object.freeze({
    ...message,
    ...withFooterLinks(message, href, () => footer(language)),
    headers: Object.freeze({
      ...message.headers,
      'List-Unsubscribe': links.join(', '),
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    }),
  });
}
