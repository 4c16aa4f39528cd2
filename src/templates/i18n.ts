/**
 * Internal: translations. A template's words are looked up by key with `t('key', values)`, each an
 * ICU MessageFormat string (plurals, selects, numbers, dates) formatted by FormatJS's
 * `intl-messageformat`, along the locale's fallback chain (`pt-BR` → `pt` → `en`).
 *
 * Where words come from, first match wins, locale by locale along the chain:
 * 1. the template's own (`defineTemplate({ messages })`, a folder's `locales/<tag>.json`);
 * 2. the service's (`new EmailService({ messages })`): add a language, or override ours;
 * 3. the built-in catalogs (`templates/locales/<tag>.json`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IntlMessageFormat } from 'intl-messageformat';
import { loadMessageFormat } from '../lazy-deps.js';
import { canonicalLocale, DEFAULT_LOCALE, localeChain, textDirection } from '../locale.js';

/** Messages by key: ICU MessageFormat strings, nested objects read as dotted keys (`layout.questions`). */
export interface MessageCatalog {
  readonly [key: string]: string | MessageCatalog;
}

/** Catalogs by BCP 47 locale: `{ de: { verification: { heading: 'Bestätigen Sie …' } } }`. */
export type Translations = Readonly<Record<string, MessageCatalog>>;

/** Flat messages by canonical locale (a `Map`, or the built-in catalogs, read one locale at a time). */
export interface MessageLayer {
  get(locale: string): Readonly<Record<string, string>> | undefined;
  keys(): IterableIterator<string>;
}

/** Nested catalogs as dotted keys; `where` names the problem's place (`messages.de.layout`). */
function flattenCatalog(
  catalog: unknown,
  where: string,
  fail: (field: string, problem: string) => never,
  prefix = '',
  out: Record<string, string> = {},
): Record<string, string> {
  if (typeof catalog !== 'object' || catalog === null || Array.isArray(catalog)) {
    return fail(where, 'must be an object of messages by key');
  }
  for (const [key, value] of Object.entries(catalog)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'string') out[path] = value;
    else flattenCatalog(value, `${where}.${key}`, fail, path, out);
  }
  return out;
}

/** Checks translations given in code or read from files: locales canonical, every message ICU. */
export function messageLayer(
  translations: unknown,
  where: string,
  fail: (field: string, problem: string) => never,
): Map<string, Readonly<Record<string, string>>> {
  if (typeof translations !== 'object' || translations === null || Array.isArray(translations)) {
    return fail(where, 'must be an object of catalogs by locale, e.g. { de: { … } }');
  }
  const layer = new Map<string, Record<string, string>>();
  for (const [tag, catalog] of Object.entries(translations)) {
    const checked = canonicalLocale(tag);
    if ('problem' in checked) return fail(`${where}.${tag}`, checked.problem);
    const flat = flattenCatalog(catalog, `${where}.${tag}`, fail);
    for (const [key, message] of Object.entries(flat)) {
      const problem = icuProblem(message, checked.locale);
      if (problem) fail(`${where}.${tag}.${key}`, problem);
    }
    layer.set(checked.locale, { ...layer.get(checked.locale), ...flat });
  }
  return layer;
}

/** The catalogs in a folder: `<dir>/<tag>.json` each, every message checked. Empty when there is no folder. */
export function readLocalesDir(
  dir: string,
  fail: (field: string, problem: string) => never,
): Map<string, Readonly<Record<string, string>>> {
  if (!existsSync(dir)) return new Map();
  const translations: Record<string, MessageCatalog> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    try {
      translations[file.slice(0, -5)] = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch (cause) {
      fail(join(dir, file), `is not JSON: ${(cause as Error).message}`);
    }
  }
  return messageLayer(translations, dir, fail);
}

/** What is wrong with an ICU message, or undefined. */
function icuProblem(message: string, locale: string): string | undefined {
  try {
    formatter(locale, message);
    return undefined;
  } catch (error) {
    return `is not a valid ICU message: ${(error as Error).message}`;
  }
}

const formatters = new Map<string, IntlMessageFormat>();

function formatter(locale: string, message: string): IntlMessageFormat {
  const key = `${locale}\u0000${message}`;
  let format = formatters.get(key);
  if (!format) {
    const { IntlMessageFormat } = loadMessageFormat();
    // Tags are text: markup belongs in the template, where eta escapes around it.
    format = new IntlMessageFormat(message, locale, undefined, { ignoreTag: true });
    formatters.set(key, format);
  }
  return format;
}

/**
 * A message with only `{name}` arguments, no plural or select, and no apostrophe that quotes (one
 * before `{`, `}`, `'`, `#` or `|`; ICU reads any other as itself, "didn't"): most of them. ICU
 * MessageFormat puts a string argument in as it is, so these are formatted here, and
 * `intl-messageformat` is loaded only for the first message that needs it.
 */
const SIMPLE = /^[^{}]*(?:\{\s*[A-Za-z_$][\w$-]*\s*\}[^{}]*)*$/;
const QUOTING = /'[{}'#|]/;
const ARGUMENT = /\{\s*([A-Za-z_$][\w$-]*)\s*\}/g;

type Format = (values: Record<string, unknown> | undefined) => string;

/** A message made ready once: split at its arguments when simple, else through intl-messageformat. */
function prepare(locale: string, message: string): Format {
  const full: Format = (values) => {
    const out = formatter(locale, message).format(values as Record<string, string>);
    return Array.isArray(out) ? out.join('') : String(out);
  };
  if (!SIMPLE.test(message) || QUOTING.test(message)) return full;
  // Literal text at even indexes, argument names at odd ones.
  const parts = message.split(ARGUMENT);
  return (values) => {
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) {
      const value = values?.[parts[i]!];
      // A number, a date or a missing value: ICU's own formatting (and its error).
      if (typeof value !== 'string') return full(values);
      out += value + parts[i + 1];
    }
    return out;
  };
}

let builtin: MessageLayer | undefined;

/**
 * The built-in catalogs in `templates/locales/`, each file read on the first render in its locale
 * (an English service never reads the others). Their messages are checked by the tests and the build.
 */
export function builtinMessages(templatesDir: string): MessageLayer {
  if (builtin) return builtin;
  const dir = join(templatesDir, 'locales');
  const read = new Map<string, Readonly<Record<string, string>> | undefined>();
  const fail = (field: string, problem: string): never => {
    throw new Error(`mailroom: built-in catalog ${field} ${problem}`);
  };
  let tags: string[] | undefined;
  const files = () => {
    tags ??= readdirSync(dir)
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -5));
    return tags;
  };
  builtin = {
    get(locale) {
      if (!read.has(locale)) {
        const file = join(dir, `${locale}.json`);
        // Only a shipped tag names a file: `locale` is canonical, and checked against the listing.
        const catalog = files().includes(locale)
          ? flattenCatalog(JSON.parse(readFileSync(file, 'utf8')), file, fail)
          : undefined;
        read.set(locale, catalog);
      }
      return read.get(locale);
    },
    keys: () => files()[Symbol.iterator](),
  };
  return builtin;
}

/** Forgets the built-in catalogs (live reload). */
export function clearBuiltinMessages(): void {
  builtin = undefined;
}

/** A missing key, reported by the render as a TemplateError naming it. */
export class MissingMessage extends Error {}

/** One render's locale and the catalogs its `t()` reads, most important first. */
export class Translator {
  readonly locale: string;
  readonly dir: 'ltr' | 'rtl';
  readonly #chain: readonly string[];
  readonly #layers: readonly MessageLayer[];
  readonly #formats = new Map<string, Format>();

  constructor(locale: string, layers: readonly MessageLayer[]) {
    this.locale = locale;
    this.dir = textDirection(locale);
    this.#chain = localeChain(locale);
    this.#layers = layers;
  }

  /** The message for `key` in the first locale of the chain that has it, formatted with `values`. */
  t(key: string, values?: Record<string, unknown>): string {
    let format = this.#formats.get(key);
    if (!format) {
      format = this.#find(key);
      this.#formats.set(key, format);
    }
    return format(values);
  }

  #find(key: string): Format {
    for (const locale of this.#chain) {
      for (const layer of this.#layers) {
        const message = layer.get(locale)?.[key];
        if (message !== undefined) return prepare(locale, message);
      }
    }
    throw new MissingMessage(key);
  }
}

let active: Translator | undefined;

/** Runs `render` with `translator` as what `t()`, `formatDateTime` and `formatMinutes` read. */
export function withTranslator<T>(translator: Translator, render: () => T): T {
  const previous = active;
  active = translator;
  try {
    return render();
  } finally {
    active = previous;
  }
}

/** The eta helper `t('key', { values })`. */
export function translate(key: string, values?: Record<string, unknown>): string {
  if (!active) throw new MissingMessage(key);
  return active.t(key, values);
}

/** The locale of the render in progress, else English. */
export function activeLocale(): string {
  return active?.locale ?? DEFAULT_LOCALE;
}
