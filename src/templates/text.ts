/**
 * Internal: the plain-text part.
 *
 * Converting HTML to text per message costs more than rendering the HTML. So at compile time the
 * template's own HTML source is converted once, with each eta tag swapped for an inert token and
 * put back afterwards: the result is an eta *text* template that renders as cheaply as the HTML.
 * When that cannot be done faithfully (raw HTML output, a tag html-to-text dropped), the template
 * falls back to converting each rendered HTML with a converter built once.
 */
import type { FormatCallback, HtmlToTextOptions } from 'html-to-text';
import { loadHtmlToText } from '../lazy-deps.js';
import { languageOf } from '../locale.js';
import { scanTags } from './scan.js';

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

interface Node {
  type?: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: Node[];
}

/** The first element below `node` that is a link with an address. */
function firstLink(node: Node): Node | undefined {
  for (const child of node.children ?? []) {
    if (child.type === 'tag' && child.attribs?.href) return child;
    const found = firstLink(child);
    if (found) return found;
  }
  return undefined;
}

function textOf(node: Node): string {
  return node.type === 'text' ? (node.data ?? '') : (node.children ?? []).map(textOf).join('');
}

// A button (`data-text="button"`) reads as what it says, then where it goes: "Pay invoice:" and the
// link on the next line.
// The text part has no button, so no sentence about one either.
const buttonLine: FormatCallback = (elem, _walk, builder) => {
  const link = firstLink(elem as Node);
  const href = link?.attribs?.href;
  if (!link || !href) return;
  const label = textOf(link).replace(/\s+/g, ' ').trim();
  builder.openBlock({ leadingLineBreaks: 2 });
  if (label && label !== href) {
    builder.addInline(`${label}${LABEL_COLON}`);
    builder.addLineBreak();
  }
  // The address on a line of its own: whole, easy to copy, never wrapped with words.
  builder.addInline(href, { noWordTransform: true });
  builder.closeBlock({ trailingLineBreaks: 2 });
};

const collapse = (text: string) => text.replace(/\s+/g, ' ').trim();

/** Lines as they are, in a block of their own: never wrapped, never joined. */
function addLines(builder: Parameters<FormatCallback>[2], lines: readonly string[]): void {
  if (lines.length === 0) return;
  builder.openBlock({ leadingLineBreaks: 2, isPre: true });
  builder.addInline(lines.join('\n'));
  builder.closeBlock({ trailingLineBreaks: 2 });
}

// A key-value table (`data-text="details"`) reads as aligned lines, labels padded to the longest:
//   Amount due   $12,499.00
//   Due date     12 January 2027
// Derived once at compile time, the labels are eta tags that pad themselves (`textPad`), and the
// tags of the partial's loop sit between the rows: each is kept on a line of its own.
const detailsLines: FormatCallback = (elem, _walk, builder, options) => {
  const items: (string | [string, string])[] = [];
  const visit = (node: Node) => {
    for (const child of node.children ?? []) {
      if (child.type === 'text') items.push(...(child.data ?? '').split(/\s+/).filter(Boolean));
      else if (child.type === 'tag' && /^(thead|tbody|tfoot)$/.test(child.name ?? '')) visit(child);
      else if (child.type === 'tag') {
        const cells = (child.children ?? []).filter((cell) => cell.type === 'tag');
        items.push([collapse(textOf(cells[0] ?? {})), collapse(textOf(cells[1] ?? {}))]);
      }
    }
  };
  visit(elem as Node);
  const width = options.align
    ? Math.max(0, ...items.map((item) => (typeof item === 'string' ? 0 : item[0].length)))
    : 0;
  addLines(
    builder,
    items.map((item) => (typeof item === 'string' ? item : `${item[0].padEnd(width)}   ${item[1]}`)),
  );
};

// A one-time code (`data-text="code"`) stands on a line of its own, whole.
const codeLine: FormatCallback = (elem, _walk, builder) => {
  addLines(builder, [collapse(textOf(elem as Node))].filter(Boolean));
};

const OPTIONS: HtmlToTextOptions = {
  wordwrap: 78,
  formatters: { anchorOwnLine, buttonLine, detailsLines, codeLine },
  selectors: [
    { selector: 'a', format: 'anchorOwnLine' },
    { selector: 'img', format: 'skip' },
    { selector: 'head', format: 'skip' },
    { selector: '[data-text="skip"]', format: 'skip' },
    { selector: '[data-text="button"]', format: 'buttonLine' },
    // A footer link (`data-text="link"`) reads like a button: "Unsubscribe:" and the URL below it.
    { selector: '[data-text="link"]', format: 'buttonLine' },
    // Rendered HTML holds the labels as written: align them here.
    { selector: '[data-text="details"]', format: 'detailsLines', options: { align: true } },
    { selector: '[data-text="code"]', format: 'codeLine' },
    // A panel: its title on one line, its text on the next, apart from what surrounds it.
    {
      selector: '[data-text="panel"]',
      format: 'block',
      options: { leadingLineBreaks: 2, trailingLineBreaks: 2 },
    },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
    { selector: 'th', format: 'block' },
  ],
};

// Deriving a text template, a details table's labels are tags that pad themselves.
const DERIVE_OPTIONS: HtmlToTextOptions = {
  ...OPTIONS,
  selectors: OPTIONS.selectors?.map((selector) =>
    selector.format === 'detailsLines' ? { ...selector, options: { align: false } } : selector,
  ),
};

let converter: ((html: string) => string) | undefined;
let deriver: ((html: string) => string) | undefined;

/** html-to-text, configured for email and built once per process; label colons as `locale` writes them. */
export function htmlToText(html: string, locale?: string): string {
  converter ??= loadHtmlToText().compile(OPTIONS);
  return labelColons(tidyText(converter(html)), locale);
}

/**
 * The colon after a link's label in the text part ("Reset password:" above its URL), marked until
 * the render knows its language: a derived text template keeps the mark, its render resolves it.
 * An invisible separator (U+2063) before the colon, harmless should it ever stay.
 */
const LABEL_COLON = '\u2063:';

/** Whether `text` (a derived text template, say) has a label colon for {@link labelColons} to set. */
export function hasLabelColons(text: string): boolean {
  return text.includes(LABEL_COLON);
}

/**
 * The text part's label colons in `locale`'s punctuation: French sets a no-break space before a
 * colon (Imprimerie nationale, *Lexique des règles typographiques*), every other shipped language
 * none. Default: a plain colon.
 */
export function labelColons(text: string, locale?: string): string {
  if (!text.includes(LABEL_COLON)) return text;
  const french = locale !== undefined && languageOf(locale) === 'fr';
  return text.replaceAll(LABEL_COLON, french ? '\u00A0:' : ':');
}

/** A space or tab at the end of a line (before a line terminator; the one at the very end goes with trim()). */
const TRAILING_BLANK = /[ \t][\n\r\u2028\u2029]/;

/**
 * Blank lines left by conditionals collapse to one; no trailing spaces. Runs on every rendered
 * text part: the trailing-space pass only when a line has one (rendered texts seldom do), and the
 * runs of newlines found with indexOf rather than a second regex pass. Same result as
 * `text.replace(/[ \t]+$/gm, '').replace(/\n{3,}/g, '\n\n').trim()`.
 */
export function tidyText(text: string): string {
  const trimmed = TRAILING_BLANK.test(text) ? text.replace(/[ \t]+$/gm, '') : text;
  return collapseBlankLines(trimmed).trim();
}

/** Every run of three or more newlines as two (`/\n{3,}/g` → `\n\n`). */
function collapseBlankLines(text: string): string {
  let at = text.indexOf('\n\n\n');
  if (at === -1) return text;
  let out = '';
  let from = 0;
  while (at !== -1) {
    out += text.slice(from, at + 2);
    from = at + 3;
    while (text.charCodeAt(from) === 10) from++;
    at = text.indexOf('\n\n\n', from);
  }
  return out + text.slice(from);
}

/** `=` escaped output, `~` raw output, `` code (eta's optional `-`/`_` trim marker comes first). */
function tagKind(tag: string): string {
  const prefix = tag.slice(2).replace(/^[-_]/, '').trimStart().charAt(0);
  return prefix === '=' || prefix === '~' ? prefix : '';
}

/**
 * Turns an eta HTML template into an eta text template, or returns undefined when the HTML uses
 * raw output (`<%~ … %>`, which may be markup) or conversion lost a control-flow tag.
 *
 * Only the source's own tags become tags again: text that merely reads like one once entities are
 * decoded (`&lt;%= it.x %&gt;`) stays text, and so does text that looks like a token.
 */
export function deriveTextTemplate(htmlSource: string): string | undefined {
  const found = scanTags(htmlSource);
  const tags = [...new Set(found.map((tag) => htmlSource.slice(tag.start, tag.end)))];
  if (tags.some((tag) => tagKind(tag) === '~')) return undefined;
  // A token the author's text cannot contain; the same tag gets the same token, so a link whose
  // text is its URL is recognised as such.
  let mark = 'MRX';
  while (htmlSource.includes(mark)) mark += 'X';
  const index = new Map(tags.map((tag, i) => [tag, i]));
  let tokenised = '';
  let from = 0;
  for (const tag of found) {
    tokenised += `${htmlSource.slice(from, tag.start)}${mark}${index.get(htmlSource.slice(tag.start, tag.end))}XRM`;
    from = tag.end;
  }
  deriver ??= loadHtmlToText().compile(DERIVE_OPTIONS);
  const text = codeFirst(tidyText(deriver(tokenised + htmlSource.slice(from))), mark, tags);
  const seen = new Set<number>();
  const token = new RegExp(`${mark}(\\d+)XRM`, 'g');
  let restored = '';
  from = 0;
  for (const match of text.matchAll(token)) {
    const i = Number(match[1]);
    seen.add(i);
    restored += escapeText(text.slice(from, match.index)) + (tags[i] ?? '');
    from = match.index + match[0].length;
  }
  restored += escapeText(text.slice(from));
  const lostCode = tags.some((tag, i) => !seen.has(i) && tagKind(tag) !== '=');
  return lostCode ? undefined : restored;
}

/**
 * Code tags print nothing, so the spaces html-to-text kept between them at the start of a line
 * (where the HTML would collapse them) go: `<% } %> <% if (a) { %>Next` reads `Next`, not ` Next`.
 */
function codeFirst(text: string, mark: string, tags: readonly string[]): string {
  const lead = new RegExp(`^(?:${mark}\\d+XRM[ \\t]*)+`, 'gm');
  return text.replace(lead, (run) => {
    let out = '';
    let code = true;
    for (const [token, i] of run.matchAll(new RegExp(`${mark}(\\d+)XRM[ \\t]*`, 'g'))) {
      code &&= tagKind(tags[Number(i)] ?? '') === '';
      out += code ? token.trimEnd() : token;
    }
    return out;
  });
}

/** Static text for an eta template: a `<%` in it is printed, never opened. */
function escapeText(text: string): string {
  return text.replaceAll('<%', "<%= '<' %>%");
}
