/**
 * Internal: the unsubscribe endpoint's pages: the question a GET shows, the confirmation after the
 * page's own POST, and the refusals. Small, self-contained (no script, no external asset), in the
 * emails' palette with their dark mode, in the request's language (see language.ts), every value
 * HTML-escaped, under a strict CSP.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { inkOn } from '../contrast.js';
import type { ChoosableCategory } from '../preferences.js';
import type { Palette } from '../templates/brand.js';
import type { Translator } from '../templates/i18n.js';
import { PAGE_KEYS } from './language.js';

/** What a page needs of the app: its name (optional) and the two palettes. */
export interface PageLook {
  readonly appName: string | undefined;
  readonly colors: Palette;
  readonly darkColors: Palette;
}

/** The refusals a page can show (the handler decides the status). */
export type Refusal = 'incomplete' | 'invalid' | 'expired' | 'bad-request' | 'try-again';

/** A page's parts, ready to answer with, each in the language of the `words` it is given. */
export interface Pages {
  question(words: Translator, address: string, category: ChoosableCategory, token: string): string;
  done(words: Translator, address: string, category: ChoosableCategory): string;
  refusal(words: Translator, kind: Refusal): string;
  /**
   * The headers of every response of the endpoint, pages and plain-text answers alike, set once
   * per request by the handler: the CSP with the stylesheet's hash (on a plain-text answer it
   * governs nothing, and still forbids framing), no caching, no referrer, no sniffing.
   */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Where the address goes in a formatted sentence: the sentence is escaped whole, then the marker
 * becomes the escaped address in `<strong>`, so catalogs hold no markup. A private-use character,
 * which no catalog uses and which is taken out of the app's name.
 */
const ADDRESS = '\uE000';

/** The pages for one look; the stylesheet (and so its CSP hash) is made once. */
export function pages(look: PageLook): Pages {
  const style = stylesheet(look.colors, look.darkColors);
  const hash = createHash('sha256').update(style, 'utf8').digest('base64');
  const headers = Object.freeze({
    // Nothing but the one inline stylesheet, forms only to this origin, never framed.
    'content-security-policy': `default-src 'none'; style-src 'sha256-${hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    // The URL holds the token: not cached, not sent on as a referrer.
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  });
  const app = look.appName?.replaceAll(ADDRESS, '');
  // The arguments of every sentence: ICU selects on the category and on whether there is a name.
  const values = (category: ChoosableCategory) => ({
    category,
    hasApp: app === undefined ? 'no' : 'yes',
    app: app ?? '',
    address: ADDRESS,
  });
  /** A sentence naming the address, as HTML: the address bold, in `<bdi>` so it keeps its order in Arabic. */
  const sentence = (words: Translator, key: string, address: string, category: ChoosableCategory) =>
    escapeHtml(words.t(`${PAGE_KEYS}${key}`, values(category)))
      .split(ADDRESS)
      .join(`<strong><bdi>${escapeHtml(address)}</bdi></strong>`);
  // Locales are the catalogs' own tags (see language.ts), escaped all the same.
  const page = (words: Translator, title: string, body: string) =>
    `<!doctype html>
<html lang="${escapeHtml(words.locale)}"${words.dir === 'rtl' ? ' dir="rtl"' : ''}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
  return {
    headers,
    question(words, address, category, token) {
      const title = words.t(`${PAGE_KEYS}question.title`, values(category));
      // The form keeps the page's language, so the confirmation is in the same one.
      const action = `?token=${encodeURIComponent(token)}&lang=${encodeURIComponent(words.locale)}`;
      return page(
        words,
        title,
        `<h1>${escapeHtml(title)}</h1>
<p>${sentence(words, 'question.body', address, category)}</p>
<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<input type="hidden" name="confirm" value="page">
<button type="submit">${escapeHtml(words.t(`${PAGE_KEYS}question.button`))}</button>
</form>`,
      );
    },
    done(words, address, category) {
      const title = words.t(`${PAGE_KEYS}done.title`);
      return page(
        words,
        title,
        `<h1>${escapeHtml(title)}</h1>
<p>${sentence(words, 'done.body', address, category)}</p>`,
      );
    },
    refusal(words, kind) {
      const title = words.t(`${PAGE_KEYS}${kind}.title`);
      const detail = words.t(`${PAGE_KEYS}${kind}.detail`);
      return page(words, title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(detail)}</p>`);
    },
  };
}

/** Answers with a page (the handler has set `Pages.headers`). */
export function sendPage(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
}

function stylesheet(light: Palette, dark: Palette): string {
  // Colours are #RRGGBB from resolveBrand: safe in CSS as they are.
  return `
body { margin:0; padding:40px 16px; background:${light.background}; color:${light.text}; font:16px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif; }
main { max-width:480px; margin:0 auto; background:${light.surface}; border:1px solid ${light.border}; border-radius:8px; padding:32px; }
h1 { font-size:22px; line-height:1.3; margin:0 0 16px; }
p { margin:0 0 24px; color:${light.muted}; overflow-wrap:anywhere; }
strong { color:${light.text}; }
button { background:${light.primary}; color:${inkOn(light.primary)}; border:0; border-radius:6px; padding:12px 24px; font:inherit; font-weight:600; cursor:pointer; }
button:focus-visible { outline:3px solid ${light.text}; outline-offset:2px; }
@media (prefers-color-scheme: dark) {
  body { background:${dark.background}; color:${dark.text}; }
  main { background:${dark.surface}; border-color:${dark.border}; }
  p { color:${dark.muted}; }
  strong { color:${dark.text}; }
  button { background:${dark.primary}; color:${inkOn(dark.primary)}; }
  button:focus-visible { outline-color:${dark.text}; }
}
`;
}

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
