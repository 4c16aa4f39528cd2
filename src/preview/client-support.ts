/**
 * Internal: the client-support check. Finds which caniemail features an email uses — elements,
 * attributes, CSS properties, values, functions, at-rules, pseudo-classes, units, image formats —
 * and reports those that a major client's latest tested version does not support. What each
 * feature matches is read off caniemail's own titles (`display:flex`, `<video> element`, `width
 * attribute`, `@media (prefers-color-scheme)` …); features whose title says nothing matchable
 * (selectors, comments, doctype) are not looked for.
 */
import { loadSupport, type SupportData, type SupportFeature } from './client-support-data.js';
import { declarations, type HtmlElement, type ScannedHtml } from './html-scan.js';

/** The default clients and platforms: the most used (Litmus's client market share), newest tests. */
export const MAJOR_CLIENTS: readonly string[] = [
  'apple-mail/ios',
  'apple-mail/macos',
  'gmail/desktop-webmail',
  'gmail/ios',
  'gmail/android',
  'outlook/windows',
  'outlook/outlook-com',
  'outlook/macos',
  'outlook/ios',
  'outlook/android',
  'yahoo/desktop-webmail',
  'yahoo/ios',
  'yahoo/android',
];

/** Where a feature was found, and whether a client without it still shows the email as meant. */
export interface FeatureUse {
  readonly feature: SupportFeature;
  readonly where: string;
  /**
   * Only in `<style>` (juice inlined the rest: what is left is progressive enhancement), only in
   * `<head>` (meta tags), or a hint a client may drop without changing what is shown.
   */
  readonly enhancement: boolean;
}

/**
 * Features a client that lacks them shows the email the same without: link targets (webmail
 * opens links in a new tab anyway), language and accessibility hints, and `<body>` (whose styles
 * clients move or drop: the layout's wrapper table carries them).
 */
const HINTS = new Set(['html-target', 'html-lang', 'html-dir', 'html-role', 'html-body']);

/** What one email uses, gathered once. */
interface Usage {
  readonly elements: readonly HtmlElement[];
  /** `[property, value, where]` from inline styles. */
  readonly inline: readonly [string, string, string][];
  /** `[property, value]` from `<style>` blocks. */
  readonly block: readonly [string, string][];
  /** Selectors and at-rule preludes of the `<style>` blocks. */
  readonly preludes: string;
  readonly styleText: string;
}

const SEMANTIC = [
  'article',
  'aside',
  'details',
  'figcaption',
  'figure',
  'footer',
  'header',
  'main',
  'mark',
  'nav',
  'section',
  'summary',
  'time',
];
const IMAGE_EXTENSIONS: Record<string, string[]> = {
  avif: ['avif'],
  bmp: ['bmp'],
  gif: ['gif'],
  heif: ['heif', 'heic'],
  ico: ['ico'],
  jpg: ['jpg', 'jpeg'],
  mp4: ['mp4'],
  png: ['png'],
  svg: ['svg'],
  tiff: ['tif', 'tiff'],
  webp: ['webp'],
};

/** The features of `support` that `html` uses, with the first place each was found. */
export function usedFeatures(scanned: ScannedHtml, support: SupportData): FeatureUse[] {
  const usage = gather(scanned);
  const uses: FeatureUse[] = [];
  for (const feature of support.features) {
    const found = find(feature, usage);
    if (found) {
      const hint = HINTS.has(feature.slug) || feature.slug.startsWith('html-aria-');
      uses.push({ feature, where: found.where, enhancement: found.enhancement || hint });
    }
  }
  return uses;
}

/**
 * Uses that some of `clients` (`family/platform` keys) do not support: a warning when it is in an
 * element or an inline style and two or more client families lack it, else info.
 */
export function unsupportedUses(
  scanned: ScannedHtml,
  clients: readonly string[] = MAJOR_CLIENTS,
): {
  uses: { use: FeatureUse; missing: string[]; severity: 'warning' | 'info' }[];
  support: SupportData | null;
} {
  const support = loadSupport();
  if (!support) return { uses: [], support };
  const wanted = new Set(clients);
  const out: { use: FeatureUse; missing: string[]; severity: 'warning' | 'info' }[] = [];
  for (const use of usedFeatures(scanned, support)) {
    const missing = use.feature.unsupported.filter((key) => wanted.has(key));
    if (missing.length === 0) continue;
    const families = new Set(missing.map((key) => key.split('/')[0]));
    out.push({ use, missing, severity: !use.enhancement && families.size >= 2 ? 'warning' : 'info' });
  }
  return { uses: out, support };
}

/** `Outlook (Windows, Outlook.com), Gmail (Android)`. */
export function clientNames(keys: readonly string[], names: Readonly<Record<string, string>>): string {
  const byFamily = new Map<string, string[]>();
  for (const key of keys) {
    const [family = key, platform = ''] = key.split('/');
    const list = byFamily.get(family) ?? [];
    list.push(names[platform] ?? platform);
    byFamily.set(family, list);
  }
  return [...byFamily]
    .map(([family, platforms]) => `${names[family] ?? family} (${platforms.join(', ')})`)
    .join(', ');
}

function gather(scanned: ScannedHtml): Usage {
  const inline: [string, string, string][] = [];
  for (const element of scanned.elements) {
    const style = element.attrs.get('style');
    if (style) for (const [p, v] of declarations(style)) inline.push([p, v, `style of <${element.tag}>`]);
  }
  const block: [string, string][] = [];
  let preludes = '';
  const styleText = scanned.styles.join('\n');
  const css = styleText.replace(/\/\*[\s\S]*?\*\//g, '');
  for (const m of css.matchAll(/([^{}]*)\{([^{}]*)\}/g)) {
    preludes += `${m[1]}\n`;
    block.push(...declarations(m[2] ?? ''));
  }
  // At-rules that wrap blocks (`@media … {`) are preludes too, and so are statement at-rules.
  for (const m of css.matchAll(/@[a-z-]+[^{;]*/gi)) preludes += `${m[0]}\n`;
  return { elements: scanned.elements, inline, block, preludes, styleText };
}

type Found = { where: string; enhancement: boolean } | undefined;

function find(feature: SupportFeature, usage: Usage): Found {
  const { slug, title } = feature;
  if (feature.category === 'html') return findHtml(slug, title, usage);
  if (feature.category === 'image') {
    const extensions = IMAGE_EXTENSIONS[slug.slice('image-'.length)];
    if (slug === 'image-base64')
      return element(usage, (e) => e.tag === 'img' && /^data:/i.test(e.attrs.get('src') ?? ''));
    if (!extensions) return undefined;
    const pattern = new RegExp(`\\.(${extensions.join('|')})(?:[?#]|$)`, 'i');
    return element(usage, (e) => e.tag === 'img' && pattern.test(e.attrs.get('src') ?? ''));
  }
  if (feature.category === 'css') return findCss(slug, title, usage);
  return undefined;
}

function element(usage: Usage, test: (e: HtmlElement) => boolean, what?: string): Found {
  // An element in the body counts before one in the head.
  const e = usage.elements.find((x) => !x.inHead && test(x)) ?? usage.elements.find(test);
  return e ? { where: what ?? `<${e.tag}>`, enhancement: e.inHead } : undefined;
}

function findHtml(slug: string, title: string, usage: Usage): Found {
  const tagged = /^<([a-z][\w-]*)(?: type="([\w-]+)")?>(?: element)?$/i.exec(title);
  if (tagged) {
    const [, tag, type] = tagged;
    return element(usage, (e) => e.tag === tag && (!type || e.attrs.get('type')?.toLowerCase() === type));
  }
  const attribute = /^([a-z-]+) attribute$/i.exec(title);
  if (attribute) {
    const name = attribute[1]!.toLowerCase();
    return element(usage, (e) => e.attrs.has(name), undefined);
  }
  const tags: Record<string, string[]> = {
    'html-h1-h6': ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'],
    'html-lists': ['ul', 'ol', 'dl'],
    'html-svg': ['svg'],
    'html-semantics': SEMANTIC,
    'html-image-maps': ['map', 'area'],
    'html-address': ['address'],
  };
  const list = tags[slug];
  if (list) return element(usage, (e) => list.includes(e.tag));
  if (slug === 'html-srcset') return element(usage, (e) => e.attrs.has('srcset') || e.attrs.has('sizes'));
  if (slug === 'html-anchor-links')
    return element(usage, (e) => e.tag === 'a' && (e.attrs.get('href') ?? '').startsWith('#'));
  if (slug === 'html-mailto-links')
    return element(usage, (e) => e.tag === 'a' && /^mailto:/i.test(e.attrs.get('href') ?? ''));
  if (slug === 'html-meta-color-scheme') {
    return element(usage, (e) => e.tag === 'meta' && /color-scheme/i.test(e.attrs.get('name') ?? ''));
  }
  return undefined;
}

function findCss(slug: string, title: string, usage: Usage): Found {
  const match = cssMatcher(slug, title);
  if (!match) return undefined;
  if (match.selector) {
    return match.selector.test(usage.preludes) ? { where: '<style>', enhancement: true } : undefined;
  }
  const test = match.declaration;
  if (!test) return undefined;
  const inline = usage.inline.find(([p, v]) => test(p, v));
  if (inline) return { where: inline[2], enhancement: false };
  if (usage.block.some(([p, v]) => test(p, v))) return { where: '<style>', enhancement: true };
  return undefined;
}

/** How a CSS feature shows: a declaration that passes a test, or a pattern in selectors and at-rules. */
function cssMatcher(
  slug: string,
  raw: string,
): { declaration?: (property: string, value: string) => boolean; selector?: RegExp } | undefined {
  const title = raw.trim();
  if (slug.startsWith('css-selector-') || slug === 'css-nesting' || slug === 'css-comments') return undefined;
  const pseudo = /^css-pseudo-(class|element)-(.+)$/.exec(slug);
  if (pseudo) {
    const name = pseudo[2]!;
    return {
      selector: new RegExp(`${pseudo[1] === 'class' ? '(?<!:)' : ''}::?${escapeRegExp(name)}(?![\\w-])`, 'i'),
    };
  }
  if (title.startsWith('@')) {
    const media = [...title.matchAll(/@media \(([\w-]+)\)/g)].map((m) => m[1]!);
    if (media.length) {
      const names = media
        .map((name) => `(?:min-|max-)?${escapeRegExp(name.replace(/^-webkit-/, ''))}`)
        .join('|');
      return { selector: new RegExp(`@media[^{]*\\((?:-webkit-)?(?:${names})\\b`, 'i') };
    }
    const rule = /^@([\w-]+)$/.exec(title);
    return rule ? { selector: new RegExp(`@${escapeRegExp(rule[1]!)}\\b`, 'i') } : undefined;
  }
  if (slug === 'css-important') return { declaration: (_, v) => /!\s*important/i.test(v) };
  if (slug === 'css-variables') return { declaration: (p, v) => p.startsWith('--') || /\bvar\(/i.test(v) };
  const unit = /^(\w+|%) unit$/.exec(title);
  if (unit) {
    if (unit[1] === 'initial') return { declaration: (_, v) => /^initial\b/i.test(v) };
    const u = unit[1] === '%' ? '%' : `${unit[1]}\\b`;
    return { declaration: (_, v) => new RegExp(`\\d${u}`, 'i').test(v.replace(/url\([^)]*\)/gi, '')) };
  }
  const functions = [...title.matchAll(/([a-z-]+)\(\)/gi)].map((m) => m[1]!.toLowerCase());
  if (functions.length) {
    const pattern = new RegExp(`(?<![\\w-])(?:${functions.map(escapeRegExp).join('|')})\\(`, 'i');
    return { declaration: (_, v) => pattern.test(v) };
  }
  const pair = /^([a-z-]+)\s*:\s*([a-z-]+)$/i.exec(title);
  if (pair) {
    const [, property, value] = pair;
    return { declaration: (p, v) => p === property && v.toLowerCase().split(/[\s!]/)[0] === value };
  }
  const single = /^([a-z-]+)(?: property| CSS property| shorthand)?$/i.exec(title);
  const parts = single ? [single[1]!] : title.split(/\s*(?:,|&)\s*/);
  if (parts.every((part) => /^[a-z][a-z-]*$/.test(part))) {
    const properties = new Set(parts.map((part) => part.toLowerCase()));
    return { declaration: (p) => properties.has(p) };
  }
  return undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
