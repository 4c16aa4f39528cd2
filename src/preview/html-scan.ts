/**
 * Internal: reads a rendered email's HTML into what the checks look at — its elements with their
 * attributes, its `<style>` blocks, and its links — without a DOM. Rendered email HTML has no eta
 * left in it, so a tokenizer for tags, comments and raw-text elements is enough.
 */

/** One start tag. */
export interface HtmlElement {
  /** Lower-case tag name. */
  readonly tag: string;
  /** Attributes by lower-case name, entities in values decoded (the common ones). */
  readonly attrs: ReadonlyMap<string, string>;
  /** Offset of `<` in the HTML. */
  readonly offset: number;
  /** Text from this start tag to its end tag, for `<a>` and `<style>` (tags stripped for `<a>`). */
  readonly inner?: string;
  /** In `<head>`: what is there (meta tags, styles) only adds to what the body says. */
  readonly inHead: boolean;
}

/** What the checks need from one HTML document. */
export interface ScannedHtml {
  readonly elements: readonly HtmlElement[];
  /** The contents of every `<style>` element. */
  readonly styles: readonly string[];
}

const TAG = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[^\s/>"'=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*)\s*\/?>/y;
const ATTR = /([^\s/>"'=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g;
const RAW_TEXT = new Set(['style', 'script', 'title', 'textarea']);

/** Tokenizes `html`: comments (and conditional comments for Outlook) are skipped. */
export function scanHtml(html: string): ScannedHtml {
  const elements: HtmlElement[] = [];
  const styles: string[] = [];
  const openLinks: { index: number; start: number }[] = [];
  let inHead = false;
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt === -1) break;
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end === -1 ? html.length : end + 3;
      continue;
    }
    if (html.startsWith('<!', lt) || html.startsWith('<?', lt)) {
      const end = html.indexOf('>', lt);
      i = end === -1 ? html.length : end + 1;
      continue;
    }
    TAG.lastIndex = lt;
    const match = TAG.exec(html);
    if (!match) {
      i = lt + 1;
      continue;
    }
    i = TAG.lastIndex;
    const closing = match[1] === '/';
    const tag = (match[2] as string).toLowerCase();
    if (closing) {
      if (tag === 'head') inHead = false;
      if (tag === 'a') {
        const open = openLinks.pop();
        if (open) {
          const link = elements[open.index] as HtmlElement;
          elements[open.index] = { ...link, inner: textOf(html.slice(open.start, lt)) };
        }
      }
      continue;
    }
    if (tag === 'head') inHead = true;
    if (tag === 'body') inHead = false;
    const element: HtmlElement = { tag, attrs: attributes(match[3] ?? ''), offset: lt, inHead };
    if (RAW_TEXT.has(tag)) {
      const end = html.toLowerCase().indexOf(`</${tag}`, i);
      const inner = html.slice(i, end === -1 ? html.length : end);
      if (tag === 'style') styles.push(inner);
      elements.push(tag === 'style' ? { ...element, inner } : element);
      i = end === -1 ? html.length : end;
      continue;
    }
    if (tag === 'a') openLinks.push({ index: elements.length, start: i });
    elements.push(element);
  }
  return { elements, styles };
}

function attributes(source: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const m of source.matchAll(ATTR)) {
    const name = (m[1] as string).toLowerCase();
    if (!attrs.has(name)) attrs.set(name, decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attrs;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decodes numeric entities and the few named ones that appear in URLs and short text. */
export function decodeEntities(value: string): string {
  return value.replace(/&(#x[\da-f]+|#\d+|[a-z]+);/gi, (whole, body: string) => {
    if (body[0] === '#') {
      const code =
        body[1] === 'x' || body[1] === 'X' ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[body.toLowerCase()] ?? whole;
  });
}

/** The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed. */
export function textOf(fragment: string): string {
  return decodeEntities(fragment.replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}

/** The declarations of an inline `style` attribute or a CSS block: `[property, value]`, lower-case property. */
export function declarations(css: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of css.split(';')) {
    const colon = part.indexOf(':');
    if (colon === -1) continue;
    const property = part.slice(0, colon).trim().toLowerCase();
    const value = part.slice(colon + 1).trim();
    if (/^-?-?[a-z][\w-]*$/.test(property) && value) out.push([property, value]);
  }
  return out;
}
