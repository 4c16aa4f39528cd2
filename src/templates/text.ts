/**
 * Internal: the plain-text part.
 *
 * Converting HTML to text per message costs more than rendering the HTML. So at compile time the
 * template's own HTML source is converted once, with each eta tag swapped for an inert token and
 * put back afterwards: the result is an eta *text* template that renders as cheaply as the HTML.
 * When that cannot be done faithfully (raw HTML output, a tag html-to-text dropped), the template
 * falls back to converting each rendered HTML with a converter built once.
 */
import { compile as compileConverter, type FormatCallback, type HtmlToTextOptions } from 'html-to-text';

// Links read best with the full URL on a line of its own, printed once.
const anchorOwnLine: FormatCallback = (elem, walk, builder) => {
  const href = (elem.attribs?.href ?? '').replace(/^mailto:/, '');
  if (!href || href.startsWith('#')) {
    walk(elem.children, builder);
    return;
  }
  let text = '';
  builder.pushWordTransform((word) => {
    text += word;
    return word;
  });
  walk(elem.children, builder);
  builder.popWordTransform();
  if (text === href) return;
  if (text) builder.addLineBreak();
  builder.addInline(href, { noWordTransform: true });
};

const OPTIONS: HtmlToTextOptions = {
  wordwrap: 78,
  formatters: { anchorOwnLine },
  selectors: [
    { selector: 'a', format: 'anchorOwnLine' },
    { selector: 'img', format: 'skip' },
    { selector: 'head', format: 'skip' },
    { selector: '[data-text="skip"]', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
    { selector: 'th', format: 'block' },
  ],
};

let converter: ((html: string) => string) | undefined;

/** html-to-text, configured for email and built once per process. */
export function htmlToText(html: string): string {
  converter ??= compileConverter(OPTIONS);
  return tidyText(converter(html));
}

/** Blank lines left by conditionals collapse to one; no trailing spaces. */
export function tidyText(text: string): string {
  return text
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

const TAG = /<%[\s\S]*?%>/g;
const TOKEN = /MRX(\d+)XRM/g;

/** `=` escaped output, `~` raw output, `` code (eta's optional `-`/`_` trim marker comes first). */
function tagKind(tag: string): string {
  return tag.slice(2).replace(/^[-_]/, '').charAt(0);
}

/**
 * Turns an eta HTML template into an eta text template, or returns undefined when the HTML uses
 * raw output (`<%~ … %>`, which may be markup) or conversion lost a control-flow tag.
 */
export function deriveTextTemplate(htmlSource: string): string | undefined {
  const tags = [...new Set(htmlSource.match(TAG) ?? [])];
  if (tags.some((tag) => tagKind(tag) === '~')) return undefined;
  // The same tag gets the same token, so a link whose text is its URL is recognised as such.
  const index = new Map(tags.map((tag, i) => [tag, i]));
  const text = htmlToText(htmlSource.replace(TAG, (tag) => `MRX${index.get(tag)}XRM`));
  const seen = new Set<number>();
  const restored = text.replace(TOKEN, (_, i: string) => {
    seen.add(Number(i));
    return tags[Number(i)] ?? '';
  });
  const lostCode = tags.some((tag, i) => !seen.has(i) && tagKind(tag) !== '=');
  return lostCode ? undefined : restored;
}
