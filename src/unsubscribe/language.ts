/**
 * Internal: which language the unsubscribe pages speak to a request, and their words. The page is
 * in the email's language when the link says it (`lang`, added by the service), else the
 * browser's (`Accept-Language`), else the handler's `locale`; always one a catalog covers, so
 * `<html lang>` says what the page is written in and nothing the request sent is echoed.
 */
import { ConfigError } from '../errors.js';
import { canonicalLocale, DEFAULT_LOCALE, languageOf, localeChain, requireLocale } from '../locale.js';
import { builtinTemplatesDir } from '../templates/builtins.js';
import { builtinMessages, type MessageLayer, messageLayer, Translator } from '../templates/i18n.js';

/** The catalogs' block of page words: `unsubscribe-page.question.title`, …. */
export const PAGE_KEYS = 'unsubscribe-page.';

/** Longer than any tag a catalog could be chosen for (RFC 5646 §4.4.1 asks for 35 at least). */
const MAX_TAG_LENGTH = 64;
/** Accept-Language entries read: a browser sends a handful. */
const MAX_RANGES = 32;

export interface PageLanguages {
  /** The page's locale: a covered `lang`, else the best covered `Accept-Language`, else the default. */
  pick(lang: string | null, acceptLanguage: string | undefined): string;
  /** The words in `locale` (one `pick` returned), along its fallback chain to English. */
  translator(locale: string): Translator;
}

/**
 * The languages the pages can be shown in: each built-in catalog's locale and each of `messages`
 * that has a page word. `messages` is checked as the service's is (a `ConfigError` naming
 * `messages.<locale>.<key>`), `locale` as a BCP 47 tag (one naming `locale`).
 */
export function pageLanguages(messages: unknown, locale: unknown): PageLanguages {
  const own =
    messages === undefined
      ? undefined
      : messageLayer(messages, 'messages', (field, problem) => {
          throw new ConfigError(field, problem);
        });
  if (own) checkPageWords(own);
  const builtin = builtinMessages(builtinTemplatesDir());
  const layers: MessageLayer[] = own ? [own, builtin] : [builtin];
  const covered = new Set<string>();
  for (const layer of layers)
    for (const tag of layer.keys())
      if (Object.keys(layer.get(tag) ?? {}).some((key) => key.startsWith(PAGE_KEYS))) covered.add(tag);

  /** The first locale along `tag`'s chain that a catalog covers; English only for English tags. */
  const covering = (tag: string): string | undefined => {
    const chain = localeChain(tag);
    // The chain ends in English for every tag: `it` is not covered because English is.
    const own = languageOf(tag) === DEFAULT_LOCALE ? chain : chain.slice(0, -1);
    return own.find((candidate) => covered.has(candidate));
  };
  const fromTag = (value: string): string | undefined => {
    if (value.length > MAX_TAG_LENGTH) return undefined;
    const checked = canonicalLocale(value);
    return 'problem' in checked ? undefined : covering(checked.locale);
  };

  const fallback =
    locale === undefined
      ? DEFAULT_LOCALE
      : (covering(requireLocale(locale, (problem) => new ConfigError('locale', problem))) ?? DEFAULT_LOCALE);

  const translators = new Map<string, Translator>();
  return {
    pick(lang, acceptLanguage) {
      const chosen = lang === null ? undefined : fromTag(lang);
      if (chosen) return chosen;
      for (const range of preferred(acceptLanguage)) {
        const match = fromTag(range);
        if (match) return match;
      }
      return fallback;
    },
    translator(tag) {
      let translator = translators.get(tag);
      if (!translator) {
        translator = new Translator(tag, layers);
        translators.set(tag, translator);
      }
      return translator;
    },
  };
}

/**
 * The page words that page.ts formats with a sentence's arguments (`{category}`, `{hasApp}`,
 * `{app}`, `{address}`); every other word is formatted with none.
 */
const SENTENCES: ReadonlySet<string> = new Set(['question.title', 'question.body', 'done.body']);

/**
 * Formats each of the caller's page words as the pages will, with every category and with and
 * without an app's name: a word that needs an argument it is not given, or one whose value does not
 * suit it, is a `ConfigError` naming it now rather than a 500 for every reader of that language.
 */
function checkPageWords(own: Map<string, Readonly<Record<string, string>>>): void {
  for (const [tag, catalog] of own) {
    const words = new Translator(tag, [own]);
    for (const key of Object.keys(catalog)) {
      if (!key.startsWith(PAGE_KEYS)) continue;
      const sentence = SENTENCES.has(key.slice(PAGE_KEYS.length));
      const samples = sentence
        ? ['product', 'marketing'].flatMap((category) => [
            { category, hasApp: 'yes', app: 'Acme', address: 'jane@example.com' },
            { category, hasApp: 'no', app: '', address: 'jane@example.com' },
          ])
        : [undefined];
      for (const values of samples) {
        try {
          words.t(key, values);
        } catch (error) {
          throw new ConfigError(
            `messages.${tag}.${key}`,
            `cannot be formatted as the page does (${(error as Error).message}): ${
              sentence
                ? 'its arguments are {category} (product or marketing), {hasApp} (yes or no), {app} and {address}'
                : 'it takes no arguments'
            }`,
          );
        }
      }
    }
  }
}

/**
 * The language ranges of an `Accept-Language` header (RFC 9110 §12.5.4), most wanted first:
 * q-values honoured, equal ones in the order sent, `q=0` and `*` left out, a malformed entry skipped.
 */
export function preferred(header: string | undefined): string[] {
  if (!header) return [];
  const ranges: { tag: string; q: number; at: number }[] = [];
  const entries = header.split(',', MAX_RANGES);
  for (const [at, entry] of entries.entries()) {
    const [range = '', ...params] = entry.split(';').map((part) => part.trim());
    if (range === '' || range === '*') continue;
    let q = 1;
    for (const param of params) {
      const weight = /^q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i.exec(param);
      q = weight ? Number(weight[1]) : Number.NaN;
    }
    if (q > 0) ranges.push({ tag: range, q, at });
  }
  return ranges.sort((a, b) => b.q - a.q || a.at - b.at).map((r) => r.tag);
}
