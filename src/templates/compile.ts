/**
 * Internal: compiles a template once — layout and partials composed, CSS inlined by juice, eta
 * functions built for subject, HTML and text — so that each message costs only a render.
 */
import { Eta } from 'eta';
import { isTemplateError, TemplateError } from '../errors.js';
import { DEFAULT_LOCALE } from '../locale.js';
import { unsafeText } from '../message.js';
import type { FooterFragment, UnsubscribeLinks } from '../unsubscribe/footer.js';
import type { AppInfo } from './brand.js';
import { builtinTemplatesDir, checkBuiltinRules } from './builtins.js';
import { checkReferences, checkUrls, guardUrls } from './check.js';
import { cssProblem, inlineCss } from './css.js';
import type { Fields, TemplateHandle } from './define.js';
import { checkSyntax, composedSyntaxError } from './diagnose.js';
import { etaSource, expandPartials } from './expand.js';
import { checkValue, type DateTimeOptions, formatDateTime } from './fields.js';
import {
  activeLocale,
  builtinMessages,
  type MessageLayer,
  MissingMessage,
  Translator,
  translate,
  withTranslator,
} from './i18n.js';
import { composeLayout } from './layout.js';
import { type ArgSpec, checkPartialArgs, PartialArgError } from './partial-args.js';
import { deriveTextTemplate, hasLabelColons, htmlToText, labelColons, tidyText } from './text.js';

/** A template's output for one message. */
export interface RenderedEmail {
  readonly subject: string;
  readonly html: string;
  readonly text: string;
}

/** Shared sources a template is compiled with. */
export interface TemplateAssets {
  /** Layouts by name; each contains `<%~ it.body %>` once, and may place `<%~ it.preheader %>`. */
  readonly layouts: ReadonlyMap<string, string>;
  /** Partials by name, used as `<%~ include('@name', data) %>`. */
  readonly partials: ReadonlyMap<string, string>;
  /** The default layout's stylesheet, an eta template rendered once with `it.app`. */
  readonly css: string;
}

/** What a template sees besides its data and `it.app`, decided per message by the service. */
export interface RenderContext {
  /** Whether the email has a Reply-To, so "just reply to this email" reaches someone. Default false. */
  readonly hasReplyTo?: boolean;
  /**
   * `it.unsubscribe`: the footer's links on `product` and `marketing` mail when the service has
   * the `unsubscribe` option (the URL a placeholder the send replaces). Default: none.
   */
  readonly unsubscribe?: UnsubscribeLinks;
  /**
   * The canonical BCP 47 locale to render in (`it.locale`, `t()`, dates, durations). Default `en`.
   * Checked by the caller (the service), with `Intl.getCanonicalLocales`.
   */
  readonly locale?: string;
  /** Catalogs `t()` reads after the template's own, most important first. Default: the built-in ones. */
  readonly messages?: readonly MessageLayer[];
}

export interface CompiledTemplate {
  readonly name: string;
  /** The inlined HTML source, before eta runs (what the preview shows as source). */
  readonly htmlSource: string;
  /** Whether the text part is rendered from a template (true) or converted per message. */
  readonly textFromTemplate: boolean;
  render(data: unknown, context?: RenderContext): RenderedEmail;
}

class UnsafeUrl extends Error {}
/**
 * What `unsafeText` refuses (a line break, a control character, a bidi override, an encoded-word)
 * in the subject: placed by a value (the field is found by {@link renderError}), or written by the
 * subject template itself (`ownText`). `problem` is unsafeText's description.
 */
class SubjectBreak extends Error {
  constructor(
    readonly problem: string,
    readonly ownText = false,
  ) {
    super(problem);
  }
}

/** The data field that put a refused character into the subject, for the error (the error path only). */
function subjectField(it: Record<string, unknown>): string | undefined {
  return Object.keys(it).find((key) => typeof it[key] === 'string' && unsafeText(it[key] as string));
}

const durationParts = new Map<string, { units: Intl.NumberFormat[]; list: Intl.ListFormat }>();

/**
 * A whole number of minutes in words, in the locale of the render in progress (or `locale`):
 * `90` → `1 hour 30 minutes`, `120` → `2 hours`, `1` → `1 minute`, days past 24 hours; in German
 * `1 Stunde, 30 Minuten`, in Arabic `ساعة و30 دقيقة`. Each unit's plural form comes from CLDR
 * through `Intl.NumberFormat`'s `unit` style, the parts are joined by `Intl.ListFormat` (`unit`, narrow).
 */
export function formatMinutes(value: unknown, locale: string = activeLocale()): string {
  const total = Number(value);
  if (!Number.isInteger(total) || total < 0) return String(value);
  let formats = durationParts.get(locale);
  if (!formats) {
    formats = {
      units: (['day', 'hour', 'minute'] as const).map(
        (unit) => new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'long' }),
      ),
      list: new Intl.ListFormat(locale, { type: 'unit', style: 'narrow' }),
    };
    durationParts.set(locale, formats);
  }
  const amounts = [Math.floor(total / 1440), Math.floor((total % 1440) / 60), total % 60];
  const parts = amounts.flatMap((n, i) => (n === 0 ? [] : [formats.units[i]!.format(n)]));
  return parts.length ? formats.list.format(parts) : formats.units[2]!.format(0);
}

/** `formatDateTime` in the locale of the render in progress, unless the template names one. */
function formatDateTimeHere(value: unknown, options: DateTimeOptions = {}): string {
  return formatDateTime(value, { locale: activeLocale(), ...options });
}

let lastSafeUrl: string | undefined;

/** Every URL placed at the start of an href or src goes through this. */
function safeUrl(value: unknown, field: string): string {
  // One email repeats its link (button, Outlook button, plain link): check each value once.
  if (typeof value === 'string' && value === lastSafeUrl) return value;
  const url = typeof value === 'string' ? value : '';
  if (!/^https?:\/\/[^\s\u0000-\u001f\u007f]+$/i.test(url) || !URL.canParse(url)) {
    throw new UnsafeUrl(field);
  }
  lastSafeUrl = url;
  return url;
}

/** A built-in partial's first line: its arguments, checked on every render. */
function partialArgs(it: Record<string, unknown>, partial: string, spec: ArgSpec): void {
  checkPartialArgs(it, partial.charCodeAt(0) === 64 ? partial.slice(1) : partial, spec, isHttpUrl);
}

class MailroomEta extends Eta {
  safeUrl = safeUrl;
  formatMinutes = formatMinutes;
  formatDateTime = formatDateTimeHere;
  t = translate;
  partialArgs = partialArgs;
  /** A label in a column of aligned lines (`@details`): as it is in the HTML, padded in the text part. */
  textPad = (value: unknown, _width: number): unknown => value;
}

class TextEta extends MailroomEta {
  override textPad = (value: unknown, width: number): unknown => String(value).padEnd(width);
}

const etaOptions = {
  functionHeader:
    'const safeUrl = this.safeUrl, formatMinutes = this.formatMinutes, formatDateTime = this.formatDateTime, partialArgs = this.partialArgs, textPad = this.textPad, t = this.t;',
  cache: false,
  useWith: false,
  // Newlines are kept as written; etaSource() drops the lines that hold only code tags.
  autoTrim: false,
} as const;
const htmlEta = new MailroomEta({ ...etaOptions, autoEscape: true });
/** mailroom's engine in eta's debug mode, whose errors give the line (the preview's diagnosis). */
export function debugEta(): Eta {
  return new MailroomEta({ ...etaOptions, autoEscape: true, debug: true });
}
const textEta = new TextEta({ ...etaOptions, autoEscape: false });

/**
 * Every value the subject places is checked as it is placed, before anything trims the subject:
 * data ending in a line break must be refused, not trimmed away and sent.
 */
function subjectValue(value: unknown): string {
  const text = String(value);
  const problem = unsafeText(text);
  if (problem) throw new SubjectBreak(problem);
  return text;
}
const subjectEta = new TextEta({
  ...etaOptions,
  autoEscape: false,
  autoFilter: true,
  filterFunction: subjectValue,
});

/** Spaces and line breaks the subject template writes around its text (its file's last newline). */
const SUBJECT_EDGES = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/**
 * The eta sources a template compiles to: layout and partials placed, CSS inlined, URLs guarded,
 * the text part derived. Built-in templates ship these precompiled (see precompiled.ts).
 */
export interface TemplateSources {
  /** eta source of the subject. */
  readonly subject: string;
  /** eta source of the inlined HTML. */
  readonly html: string;
  /** eta source of the text part, or undefined to convert each rendered HTML instead. */
  readonly text: string | undefined;
}

/** Compiles a defined template. Throws a {@link TemplateError} naming the template on any problem. */
export function compileTemplate(
  handle: TemplateHandle,
  assets: TemplateAssets,
  app: AppInfo,
  css: string,
): CompiledTemplate {
  return compileSources(handle, templateSources(handle, assets, css), assets, app);
}

/** The eta sources of a template: the expensive part of compiling (juice, html-to-text). */
export function templateSources(
  handle: TemplateHandle,
  assets: TemplateAssets,
  css: string,
): TemplateSources {
  const { name, source } = handle;
  const fail = (problem: string, cause?: unknown, field?: string): never => {
    throw new TemplateError(name, `${problem}${source.file ? ` (${source.file})` : ''}`, { cause, field });
  };
  checkSyntax(handle);
  checkReferences(handle);
  checkUrls(handle);
  let composed = source.html;
  if (source.layout !== false) {
    const layout = assets.layouts.get(source.layout) ?? fail(`unknown layout "${source.layout}"`);
    const placed = composeLayout(source.layout, layout, source.html, source.preheader);
    composed = 'problem' in placed ? fail(placed.problem) : placed.html;
  }
  composed = expandPartials(composed, assets.partials, fail, isHttpUrl);

  const allCss = [css, source.css ?? ''].join('\n');
  const badCss = cssProblem(allCss);
  if (badCss) fail(badCss);
  let inlined: string;
  try {
    inlined = inlineCss(composed, allCss);
  } catch (cause) {
    return fail('could not inline its CSS', cause);
  }
  const text = source.text ?? deriveTextTemplate(inlined);
  return { subject: source.subject, html: guardUrls(name, inlined), text };
}

/** Builds the eta functions of a template from its sources: cheap, no juice or html-to-text. */
export function compileSources(
  handle: TemplateHandle,
  sources: TemplateSources,
  assets: TemplateAssets,
  app: AppInfo,
): CompiledTemplate {
  const { name, fields } = handle;
  const compile = (eta: MailroomEta, src: string, part: string) => {
    try {
      return eta.compile(etaSource(src)).bind(eta);
    } catch (cause) {
      throw composedSyntaxError(handle, part, cause, assets);
    }
  };
  const subjectFn = compile(subjectEta, sources.subject, 'subject');
  const htmlFn = compile(htmlEta, sources.html, 'html');
  const textFn = sources.text === undefined ? undefined : compile(textEta, sources.text, 'text');
  // A derived text part marks its links' label colons; the render sets them in the language.
  const colons = sources.text !== undefined && hasLabelColons(sources.text);

  const translators = new Map<string, Translator>();
  let translatorLayers: readonly MessageLayer[] | undefined;
  const translatorFor = (locale: string, messages: readonly MessageLayer[] | undefined): Translator => {
    const layers = messages ?? defaultLayers();
    if (layers !== translatorLayers) {
      translators.clear();
      translatorLayers = layers;
    }
    let translator = translators.get(locale);
    if (!translator) {
      translator = new Translator(locale, [handle.messages, ...layers]);
      translators.set(locale, translator);
    }
    return translator;
  };

  return {
    name,
    htmlSource: sources.html,
    textFromTemplate: textFn !== undefined,
    render(data, context) {
      const translator = translatorFor(context?.locale ?? DEFAULT_LOCALE, context?.messages);
      const it = {
        ...(checkedAgainst.get(data as object) === fields ? (data as object) : checkData(name, fields, data)),
        app,
        hasReplyTo: context?.hasReplyTo === true,
        unsubscribe: context?.unsubscribe,
        locale: translator.locale,
        dir: translator.dir,
      };
      try {
        return withTranslator(translator, () => {
          const html = htmlFn(it);
          const subject = subjectFn(it).replace(SUBJECT_EDGES, '');
          // Every value placed was checked: what is left is the template's own text.
          const problem = unsafeText(subject);
          if (problem) throw new SubjectBreak(problem, true);
          const text = textFn
            ? colons
              ? labelColons(tidyText(textFn(it)), translator.locale)
              : tidyText(textFn(it))
            : htmlToText(html, translator.locale);
          return { subject, html, text };
        });
      } catch (cause) {
        throw renderError(name, translator.locale, cause, it);
      }
    },
  };
}

/**
 * What a render of `name` in `locale` threw, as the `TemplateError` naming the field at fault
 * (found in `it`, the data rendered, for a refused subject).
 */
function renderError(
  name: string,
  locale: string,
  cause: unknown,
  it?: Record<string, unknown>,
): TemplateError {
  if (cause instanceof MissingMessage) {
    return new TemplateError(name, `no message for this key in ${locale} or English`, {
      field: cause.message,
    });
  }
  if (cause instanceof SubjectBreak) {
    // Where in the subject is no help to a caller who gave the field: what was found is.
    const problem = `in the subject, ${cause.problem.replace(/ at \d+\)/, ')')}`;
    return cause.ownText
      ? new TemplateError(name, `${problem} (the subject template writes one)`)
      : new TemplateError(name, problem, { field: it && subjectField(it) });
  }
  if (cause instanceof PartialArgError) {
    return new TemplateError(name, cause.problem, { field: `@${cause.partial}.${cause.arg}` });
  }
  if (cause instanceof UnsafeUrl) {
    return new TemplateError(name, 'must be an http(s) URL', { field: cause.message });
  }
  return new TemplateError(name, `render failed: ${(cause as Error).message}`, { cause });
}

let defaults: readonly MessageLayer[] | undefined;
/** The built-in catalogs alone: what a template reads when no service gave its own. */
function defaultLayers(): readonly MessageLayer[] {
  const builtin = builtinMessages(builtinTemplatesDir());
  if (defaults?.[0] !== builtin) defaults = [builtin];
  return defaults;
}

/**
 * Checks data against a template's fields; names the template and the field on the first problem.
 * Returns what the template renders: each declared field's value as read here, once. A field is
 * read as `data[field]` is, so a getter's or an inherited value is checked and rendered alike (an
 * ORM entity, a class instance); an own enumerable key that is not a field is refused; anything
 * else the object holds is not read.
 */
export function checkData(template: string, fields: Fields, data: unknown): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new TemplateError(template, 'data must be an object');
  }
  const record = data as Record<string, unknown>;
  // for…in with an own-key test rather than Object.keys/entries: this runs on every render, and
  // those made an array (of arrays) each time.
  for (const key in record) {
    if (!Object.hasOwn(fields, key) && Object.hasOwn(record, key))
      throw new TemplateError(template, 'is not a field of this template', { field: key });
  }
  const values: Record<string, unknown> = {};
  for (const field in fields) {
    if (!Object.hasOwn(fields, field)) continue;
    const spec = fields[field] as string;
    const value = readField(template, record, field);
    const optional = spec.charCodeAt(spec.length - 1) === 63; // '?'
    const kind = optional ? spec.slice(0, -1) : spec;
    if (value === undefined || value === null) {
      if (optional) continue;
      throw new TemplateError(template, 'is required', { field });
    }
    if (kind === 'rows') {
      values[field] = checkRows(template, field, value);
      continue;
    }
    const wrong = checkValue(kind, value, isHttpUrl);
    if (wrong) throw new TemplateError(template, wrong.problem, { field: `${field}${wrong.path ?? ''}` });
    values[field] = value;
  }
  checkBuiltinRules(template, values);
  checkedAgainst.set(Object.freeze(values), fields);
  return values;
}

/**
 * A `rows` field, checked and copied as plain `{ label, value }`: rows read through a class's
 * getters render the same here and in a Kafka envelope's JSON, which would drop them. A getter
 * that throws is a `TemplateError` naming the field.
 */
function checkRows(template: string, field: string, value: unknown): Array<{ label: string; value: string }> {
  try {
    const wrong = checkValue('rows', value, isHttpUrl);
    if (wrong) throw new TemplateError(template, wrong.problem, { field: `${field}${wrong.path ?? ''}` });
    return (value as ReadonlyArray<{ label: string; value: string }>).map(({ label, value }) => ({
      label,
      value,
    }));
  } catch (cause) {
    if (isTemplateError(cause)) throw cause;
    throw new TemplateError(template, 'could not be read (a getter threw)', { field, cause });
  }
}

/**
 * What {@link checkData} returned, frozen, and the fields it was checked against: a render of the
 * same template takes it as it is, so `sendTemplate`, which checks before it queues or renders,
 * does not check twice.
 */
const checkedAgainst = new WeakMap<object, Fields>();

/** `data[field]`; a getter that throws is a `TemplateError` naming the field (its error the cause). */
export function readField(template: string, data: object, field: string): unknown {
  try {
    return (data as Readonly<Record<string, unknown>>)[field];
  } catch (cause) {
    // The getter's own message is left to `cause`: it may say more than a log line should.
    throw new TemplateError(template, 'could not be read (its getter threw)', { field, cause });
  }
}

export function isHttpUrl(value: string): boolean {
  try {
    safeUrl(value, '');
    return true;
  } catch {
    return false;
  }
}

/**
 * The `@unsubscribe` partial alone, outside any template, for mail whose own body does not show the
 * links: its HTML in a small muted block of its own (no stylesheet reaches it) marked with the
 * translator's `lang` and `dir`, and its text. Its `t()` labels read `translator`'s catalogs. A
 * render that fails is a `TemplateError` for the template `@unsubscribe`, as a template's would be.
 */
export function renderFooterFragment(
  partial: string,
  app: AppInfo,
  unsubscribe: UnsubscribeLinks,
  translator: Translator,
): FooterFragment {
  const { locale, dir } = translator;
  let inner: string;
  try {
    inner = withTranslator(translator, () =>
      htmlEta.renderString(etaSource(partial), { app, unsubscribe, locale, dir }).trim(),
    );
  } catch (cause) {
    throw renderError('@unsubscribe', locale, cause);
  }
  // dir always: the block goes into the caller's document, whose own direction may be the other.
  const attributes = `class="mr-unsubscribe" lang="${locale}" dir="${dir}"`;
  const html = `<div ${attributes} style="margin: 24px 0 0; font-family: Arial, sans-serif; font-size: 12px; line-height: 18px; color: ${app.colors.muted}; text-align: center;">${inner}</div>`;
  return { html, text: htmlToText(html, locale) };
}

/** Renders the shared stylesheet with the brand, once per registry. */
export function renderStylesheet(css: string, app: AppInfo): string {
  return textEta.renderString(etaSource(css), { app });
}
