/**
 * Internal: the footer links of `product` and `marketing` mail ("Manage notification settings",
 * "Unsubscribe"). A template renders before anyone knows whom it goes to (the Kafka worker renders,
 * then sends), so it prints {@link LINK_PLACEHOLDER} as `it.unsubscribe.url`, and the send puts the
 * recipient's signed link there: the same string, from the same call, as `List-Unsubscribe`.
 * The labels live in one file, `templates/partials/unsubscribe.eta` (the `@unsubscribe` partial).
 */
import { MessageError } from '../errors.js';
import type { EmailMessage } from '../message.js';

/**
 * What a template prints for `it.unsubscribe.url` until the send signs the real link. An http(s)
 * URL (so `safeUrl` takes it) with nothing HTML escapes, on a reserved name (RFC 2606 `.invalid`)
 * so that it goes nowhere if it ever leaked.
 */
export const LINK_PLACEHOLDER = 'https://unsubscribe-link.mailroom.invalid/';
/** The placeholder's host: what data is searched for (escaped or not, the host reads the same). */
const PLACEHOLDER_HOST = 'unsubscribe-link.mailroom.invalid';

/**
 * `it.unsubscribe` in a template: present on `product` and `marketing` mail when the service has
 * the `unsubscribe` option, absent (undefined) otherwise.
 */
export interface UnsubscribeLinks {
  /** The recipient's one-click unsubscribe URL (a GET shows the confirmation page; only the POST unsubscribes). */
  readonly url: string;
  /** `unsubscribe.manageUrl`, the app's notification settings page; absent when not configured. */
  readonly manageUrl?: string;
}

/** The footer alone (the `@unsubscribe` partial rendered), for mail whose own body does not show it. */
export interface FooterFragment {
  readonly html: string;
  readonly text: string;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] as string);
}

/**
 * The message with the placeholder replaced by `href` in its HTML (escaped) and text. A part that
 * does not show the link (a caller's own HTML, a template with its own text part, a layout without
 * the links) gets `fragment()` added: before `</body>` in HTML, at the end of the text.
 */
export function withFooterLinks(
  message: EmailMessage,
  href: string,
  fragment: () => FooterFragment,
): { html: string | undefined; text: string | undefined } {
  let { html, text } = message;
  if (html !== undefined) {
    if (!html.includes(LINK_PLACEHOLDER)) html = beforeBodyEnd(html, fragment().html);
    html = html.replaceAll(LINK_PLACEHOLDER, escapeHtml(href));
  }
  if (text !== undefined) {
    if (!text.includes(LINK_PLACEHOLDER)) text = `${text.replace(/\s+$/, '')}\n\n${fragment().text}\n`;
    text = text.replaceAll(LINK_PLACEHOLDER, href);
  }
  return { html, text };
}

/** `addition` placed before the last `</body>`, or at the end of an HTML fragment without one. */
function beforeBodyEnd(html: string, addition: string): string {
  const end = html.toLowerCase().lastIndexOf('</body');
  return end < 0 ? `${html}\n${addition}` : `${html.slice(0, end)}${addition}\n${html.slice(end)}`;
}

/**
 * Internal: on a send's input whose HTML and text this same service rendered as the category the
 * email is sent as (`sendTemplate`, a queue worker), from data that does not hold the placeholder.
 * Such a render printed it exactly when the send fills it in (the service has the `unsubscribe`
 * option and the mail is `product`/`marketing`), so the send skips {@link checkNoFooterLinks}, a
 * scan of the whole HTML. Set through {@link markRenderedAsSent}.
 */
const RENDERED_AS_SENT = Symbol.for('mailroom.unsubscribe.rendered-as-sent');

/**
 * Marks `input` as rendered by this service as the category it is sent as, unless `data` holds
 * the placeholder (HTML another render made, passed on as data): that HTML is scanned as usual.
 */
export function markRenderedAsSent(input: object, data: unknown): void {
  if (!holdsPlaceholder(data, 0)) (input as { [RENDERED_AS_SENT]?: boolean })[RENDERED_AS_SENT] = true;
}

/** True when `input` was marked by {@link markRenderedAsSent}. */
export function renderedAsSent(input: object): boolean {
  return (input as { [RENDERED_AS_SENT]?: boolean })[RENDERED_AS_SENT] === true;
}

/** Whether a string in `value` (its arrays and objects, 8 levels down; deeper counts as yes) holds the placeholder. */
function holdsPlaceholder(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.includes(PLACEHOLDER_HOST);
  if (typeof value !== 'object' || value === null || value instanceof Date) return false;
  if (depth >= 8) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (holdsPlaceholder(item, depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    if (Object.hasOwn(value, key) && holdsPlaceholder((value as Record<string, unknown>)[key], depth + 1))
      return true;
  }
  return false;
}

/**
 * Refuses mail that carries the placeholder where nothing would fill it in: mail that must not
 * offer an unsubscribe (`security`, `transactional`: rendered as product mail, sent as something
 * else), or any mail from a service without the `unsubscribe` option (`noOption`: rendered by
 * another service), which would otherwise reach the reader with a link that goes nowhere.
 */
export function checkNoFooterLinks(message: EmailMessage, noOption = false): void {
  for (const part of ['html', 'text'] as const) {
    if (message[part]?.includes(LINK_PLACEHOLDER)) {
      throw new MessageError(
        part,
        noOption
          ? `this ${part} was rendered with the unsubscribe link (it.unsubscribe.url), but this service has no unsubscribe option to fill it in: configure unsubscribe where the email is sent`
          : `${message.category} mail carries no unsubscribe link, but this ${part} was rendered with one (it.unsubscribe.url): render it with the category it is sent as`,
      );
    }
  }
}
