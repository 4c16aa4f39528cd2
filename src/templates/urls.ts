/**
 * Internal: every HTML attribute that takes a URL gets the http(s) rule, however it is written
 * (quoted or not, any case, entities or whitespace before the value). A value placed by data at
 * the start of a URL is checked per message by `safeUrl`; what the template writes itself must
 * not leave the scheme to data, and must not be a script-capable scheme.
 */
import { scanTags } from './scan.js';

/** Attributes whose value is a URL (HTML, SVG, VML, legacy email HTML). */
const URL_ATTRIBUTES = new Set([
  'href',
  'src',
  'action',
  'formaction',
  'xlink:href',
  'background',
  'poster',
  'cite',
  'longdesc',
  'usemap',
  'data',
  'codebase',
  'classid',
  'archive',
  'manifest',
  'icon',
  'ping',
  'lowsrc',
  'dynsrc',
  'profile',
]);
/** Attributes whose value is a comma-separated list of URLs with descriptors. */
const URL_LISTS = new Set(['srcset', 'imagesrcset']);
/** Schemes a template may write itself; data placed after them cannot change the scheme. */
const STATIC_SCHEMES = new Set(['http', 'https', 'mailto', 'tel', 'cid']);

/** A tag whose output starts a URL, to be wrapped in `safeUrl`. */
export interface UrlSlot {
  readonly start: number;
  readonly end: number;
  readonly expr: string;
}
/** A URL the template writes in a way that cannot be checked, or that is not http(s). */
export interface UrlProblem {
  readonly offset: number;
  readonly message: string;
}

interface Attribute {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** Finds the URL slots and problems of an HTML source with eta tags. */
export function scanUrls(html: string): { slots: UrlSlot[]; problems: UrlProblem[] } {
  const tags = scanTags(html);
  const tagAt = new Map(tags.map((tag) => [tag.start, tag]));
  const slots: UrlSlot[] = [];
  const problems: UrlProblem[] = [];
  for (const element of elements(html, tagAt)) {
    const attr = (name: string) => element.attributes.find((a) => a.name === name);
    for (const a of element.attributes) {
      const label = `<${element.name} ${a.name}>`;
      let starts: number[] = [];
      if (URL_ATTRIBUTES.has(a.name)) starts = [a.start];
      else if (URL_LISTS.has(a.name)) starts = listStarts(html, a, tagAt);
      else if (
        a.name === 'content' &&
        /^refresh$/i.test(decode(attributeValue(html, attr('http-equiv'))).trim())
      ) {
        const found = refreshStart(html, a, tagAt);
        if (found === undefined) {
          problems.push({ offset: a.start, message: `${label}: write the delay and "url=" literally` });
          continue;
        }
        starts = found === null ? [] : [found];
      }
      for (const start of starts) {
        const problem = checkUrlStart(html, start, a.end, tagAt, slots);
        if (problem) problems.push({ offset: start, message: `${label} ${problem}` });
      }
    }
  }
  return { slots, problems };
}

/** `html` with each URL slot's output passed through `safeUrl(value, field)`. */
export function guardUrlSlots(html: string, slots: readonly UrlSlot[]): string {
  let out = html;
  for (const slot of [...slots].sort((a, b) => b.start - a.start)) {
    const field = JSON.stringify(slot.expr.replace(/^it\./, ''));
    out = `${out.slice(0, slot.start)}<%= safeUrl(${slot.expr}, ${field}) %>${out.slice(slot.end)}`;
  }
  return out;
}

type TagMap = ReadonlyMap<number, { end: number; kind: string; code: string }>;

/** Start tags with their attributes (value offsets); eta tags are skipped whole. */
function* elements(html: string, tagAt: TagMap) {
  let i = 0;
  while (i < html.length) {
    const eta = tagAt.get(i);
    if (eta) {
      i = eta.end;
      continue;
    }
    const open = /^<([A-Za-z][\w:.-]*)/.exec(html.slice(i, i + 100));
    if (!open) {
      i++;
      continue;
    }
    const name = open[1]!.toLowerCase();
    i += open[0].length;
    const attributes: Attribute[] = [];
    while (i < html.length && html[i] !== '>') {
      const inner = tagAt.get(i);
      if (inner) {
        i = inner.end;
        continue;
      }
      const attrName = /^[^\s"'>/=<]+/.exec(html.slice(i, i + 100))?.[0];
      if (!attrName) {
        i++;
        continue;
      }
      i += attrName.length;
      const eq = /^\s*=\s*/.exec(html.slice(i, i + 100));
      if (!eq) continue;
      i += eq[0].length;
      const quote = html[i] === '"' || html[i] === "'" ? html[i] : '';
      if (quote) i++;
      const start = i;
      while (i < html.length) {
        const t = tagAt.get(i);
        if (t) i = t.end;
        else if (quote ? html[i] === quote : /[\s>]/.test(html[i]!)) break;
        else i++;
      }
      attributes.push({ name: attrName.toLowerCase(), start, end: i });
      if (quote) i++;
    }
    yield { name, attributes };
  }
}

function attributeValue(html: string, a: Attribute | undefined): string {
  return a ? html.slice(a.start, a.end) : '';
}

/** The offsets where each URL of a srcset starts: the value's start and after each literal comma. */
function listStarts(html: string, a: Attribute, tagAt: TagMap): number[] {
  const starts = [a.start];
  for (let i = a.start; i < a.end; i++) {
    const t = tagAt.get(i);
    if (t) i = t.end - 1;
    else if (html[i] === ',') starts.push(i + 1);
  }
  return starts;
}

/** Where the URL of a refresh starts; null for none; undefined when data decides the delay or `url=`. */
function refreshStart(html: string, a: Attribute, tagAt: TagMap): number | null | undefined {
  for (let i = a.start; i < a.end; i++) {
    if (tagAt.has(i)) return undefined;
    const url = /^url\s*=\s*['"]?/i.exec(decode(html.slice(i, a.end)));
    if (url) return i + rawLength(html.slice(i, a.end), url[0].length);
  }
  return null;
}

/**
 * Checks one URL, starting at `start`: a tag first (after entities and whitespace) is a slot;
 * literal text must fix a safe scheme, or be a relative reference, before any tag follows.
 */
function checkUrlStart(
  html: string,
  start: number,
  end: number,
  tagAt: TagMap,
  slots: UrlSlot[],
): string | undefined {
  let i = start;
  while (i < end && !tagAt.has(i)) i++;
  const literal = decode(html.slice(start, i))
    .replace(/^[\u0000-\u0020]+/, '')
    .replace(/[\t\n\r]/g, '');
  const tag = tagAt.get(i);
  if (literal === '' || /^[,\s]*$/.test(literal)) {
    if (!tag) return undefined;
    if (!tag.kind) return 'must start with one <%= %> expression, not a <% %> block';
    slots.push({ start: i, end: tag.end, expr: tag.code.trim() });
    return undefined;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(literal)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    return STATIC_SCHEMES.has(scheme) ? undefined : `must be an http(s) URL, not "${scheme}:"`;
  }
  if (/&[A-Za-z][\w]*;/.test(literal.split(/[/?#]/)[0]!)) return 'starts with an entity mailroom cannot read';
  if (/^[^:]*[/?#]/.test(literal) || !tag) return undefined;
  return 'must start with http(s):// or with a <%= %> expression, not leave the scheme to data';
}

const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  colon: ':',
  Tab: '\t',
  NewLine: '\n',
  nbsp: '\u00a0',
  sol: '/',
  quest: '?',
  num: '#',
  period: '.',
  lpar: '(',
  rpar: ')',
  excl: '!',
  equals: '=',
  commat: '@',
  percnt: '%',
};
const ENTITY = /&(?:#(\d+);?|#[xX]([0-9a-fA-F]+);?|([A-Za-z]+);)/g;

/** Decodes the entities a browser would decode in an attribute value (numeric, and common named ones). */
export function decode(text: string): string {
  return text.replace(ENTITY, (whole, dec: string, hex: string, name: string) => {
    const code = dec ? Number(dec) : hex ? Number.parseInt(hex, 16) : undefined;
    if (code !== undefined) return code > 0x10ffff ? '\ufffd' : String.fromCodePoint(code);
    return NAMED[name] ?? whole;
  });
}

/** The number of raw characters of `raw` that decode to its first `decoded` characters. */
function rawLength(raw: string, decoded: number): number {
  for (let n = 0; n <= raw.length; n++) if (decode(raw.slice(0, n)).length >= decoded) return n;
  return raw.length;
}
