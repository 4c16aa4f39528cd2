/**
 * Locales: BCP 47 language tags (RFC 5646), checked and canonicalised by `Intl.getCanonicalLocales`,
 * the fallback chain a translation is looked up along, and the direction a language is written in.
 */

/** The locale every lookup ends at: the built-in catalogs are complete in English. */
export const DEFAULT_LOCALE = 'en';

/** A tag's language subtag: `fr` of `fr-CA`, `zh` of `zh-Hant-TW` (RFC 5646 §2.2.1). */
export function languageOf(tag: string): string {
  const dash = tag.indexOf('-');
  return dash < 0 ? tag : tag.slice(0, dash);
}

/**
 * The canonical form of a BCP 47 tag (`pt-br` → `pt-BR`), or a message saying what is wrong. One
 * tag only; an empty string, a list or a malformed tag (`en_US`, `english`) is refused.
 */
export function canonicalLocale(value: unknown): { locale: string } | { problem: string } {
  if (typeof value !== 'string' || value.trim() === '') {
    return { problem: 'must be a BCP 47 language tag, e.g. en, de, pt-BR' };
  }
  const known = canonical.get(value);
  if (known !== undefined) return { locale: known };
  try {
    const [locale] = Intl.getCanonicalLocales(value);
    if (locale) {
      // Sends name a handful of tags: each is canonicalised once (about 2.6 µs), not per email.
      if (canonical.size >= 1000) canonical.clear();
      canonical.set(value, locale);
      return { locale };
    }
  } catch {
    // RangeError: not a well-formed tag.
  }
  return {
    problem: `must be a BCP 47 language tag, e.g. en, de, pt-BR (got ${JSON.stringify(value.slice(0, 40))})`,
  };
}

/** Tags seen, as given → canonical; bounded, as tags may come from queue records. */
const canonical = new Map<string, string>();

/**
 * The canonical form of `value` (see {@link canonicalLocale}); a malformed one throws what
 * `fail(problem)` makes (a `MessageError` or `ConfigError` naming the field it came from).
 */
export function requireLocale(value: unknown, fail: (problem: string) => Error): string {
  const checked = canonicalLocale(value);
  if ('problem' in checked) throw fail(checked.problem);
  return checked.locale;
}

const chains = new Map<string, readonly string[]>();

/**
 * Where a translation is looked for, most specific first, always ending in English:
 * `pt-BR` → `pt-BR`, `pt`, `en`; `zh-Hant-TW` → `zh-Hant-TW`, `zh-Hant`, `zh`, `en` (RFC 4647 §3.4
 * lookup, subtags dropped from the end). `tag` must be canonical.
 */
export function localeChain(tag: string): readonly string[] {
  let chain = chains.get(tag);
  if (!chain) {
    const out: string[] = [];
    const parts = tag.split('-');
    for (let n = parts.length; n > 0; n--) {
      // A single-letter subtag (an extension's singleton: `-u-`, `-x-`) never ends a prefix.
      if (parts[n - 1]!.length === 1) continue;
      out.push(parts.slice(0, n).join('-'));
    }
    if (!out.includes(DEFAULT_LOCALE)) out.push(DEFAULT_LOCALE);
    chain = Object.freeze(out);
    chains.set(tag, chain);
  }
  return chain;
}

/**
 * Scripts written right to left, for runtimes without `Intl.Locale#getTextInfo` / `textInfo`
 * (Unicode CLDR `characterOrder`): Arabic, Hebrew, Syriac, Thaana, N'Ko, Samaritan, Mandaic,
 * Adlam, Hanifi Rohingya, Old South Arabian, Imperial Aramaic, Nabataean, Palmyrene, Phoenician.
 */
const RTL_SCRIPTS = new Set([
  'Arab',
  'Hebr',
  'Syrc',
  'Thaa',
  'Nkoo',
  'Samr',
  'Mand',
  'Adlm',
  'Rohg',
  'Sarb',
  'Armi',
  'Nbat',
  'Palm',
  'Phnx',
]);

type TextInfo = { direction?: string };

/** `rtl` for a language written right to left (`ar`, `he`, `fa`, `ur`), else `ltr`. `tag` must be canonical. */
export function textDirection(tag: string): 'ltr' | 'rtl' {
  const locale = new Intl.Locale(tag);
  // Node 20 has the `textInfo` getter; the TC39 Intl Locale Info proposal renamed it getTextInfo().
  const info =
    (locale as unknown as { getTextInfo?: () => TextInfo; textInfo?: TextInfo }).getTextInfo?.() ??
    (locale as unknown as { textInfo?: TextInfo }).textInfo;
  if (info?.direction) return info.direction === 'rtl' ? 'rtl' : 'ltr';
  const script = locale.maximize().script;
  return script && RTL_SCRIPTS.has(script) ? 'rtl' : 'ltr';
}
