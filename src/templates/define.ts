import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageError, TemplateError } from '../errors.js';
import { CATEGORIES, type EmailCategory } from '../message.js';
import { MAX_MINUTES, MAX_ROWS } from './fields.js';
import { type MessageLayer, messageLayer, readLocalesDir, type Translations } from './i18n.js';

export { MAX_MINUTES, MAX_ROWS };

/**
 * The type of one template field:
 * - `string`: a string, not blank (an optional one may be left out, not given empty);
 * - `url`: a string that is an http(s) URL;
 * - `number`: a finite number;
 * - `minutes`: a whole number of minutes from 1 to {@link MAX_MINUTES} (a week), shown in words
 *   with `<%= formatMinutes(it.field) %>` ("1 hour 30 minutes");
 * - `boolean`;
 * - `datetime`: an instant, as a `Date` or an ISO 8601 / RFC 3339 string with an offset or `Z`
 *   (`2026-12-08T02:00:00Z`, `2026-12-08T03:00:00+01:00`); a string without an offset, or a date
 *   that does not exist (30 February), is refused. Shown in the reader's time zone with
 *   `<%= formatDateTime(it.field, { timeZone: it.timeZone }) %>` ("Tuesday, 8 December 2026, 02:00 (UTC)");
 * - `timeZone`: an IANA time zone name that the runtime's `Intl` knows (`Europe/Berlin`, `UTC`);
 * - `rows`: a list of 1 to {@link MAX_ROWS} rows `{ label, value }`, each a non-blank string of at
 *   most 500 characters, as the `@details` component takes them (`rows: it.items`); an error names
 *   the row (`items[2].value`).
 *
 * Besides these kinds, a field may be a choice of words separated by `|`
 * (`'sign-in|password-changed'`): its value must be one of them, and its type is their union.
 */
export type FieldKind =
  | 'string'
  | 'url'
  | 'number'
  | 'minutes'
  | 'boolean'
  | 'datetime'
  | 'timeZone'
  | 'rows';

/** A field whose value is one of a few words: `'sign-in|password-changed'`. */
export type FieldChoice = `${string}|${string}`;
/** A field's type; a trailing `?` makes it optional (`'url?'`). */
export type FieldSpec = FieldKind | `${FieldKind}?` | FieldChoice;
/** The fields a template's data has, by name. */
export type Fields = Readonly<Record<string, FieldSpec>>;

/**
 * One row of a `rows` field, as `@details` shows it: both non-blank strings of at most 500
 * characters, shown as given (format amounts yourself: `'$89.00'`). A field takes 1 to 50 rows; a
 * bad one is a `TemplateError` naming its place (`items[2].value`).
 */
export interface DetailRow {
  readonly label: string;
  readonly value: string;
}
type Words<S extends string> = S extends `${infer Head}|${infer Rest}` ? Head | Words<Rest> : S;
type ValueOf<K> = K extends 'number' | 'minutes'
  ? number
  : K extends 'boolean'
    ? boolean
    : K extends 'datetime'
      ? Date | string
      : K extends 'rows'
        ? readonly DetailRow[]
        : K extends FieldKind
          ? string
          : K extends string
            ? Words<K>
            : never;
type Required<F extends Fields> = { [K in keyof F as F[K] extends `${string}?` ? never : K]: ValueOf<F[K]> };
type Optional<F extends Fields> = {
  [K in keyof F as F[K] extends `${string}?` ? K : never]?: F[K] extends `${infer B}?` ? ValueOf<B> : never;
};
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The data type a set of {@link Fields} describes. */
export type DataOf<F extends Fields> = Simplify<Required<F> & Optional<F>>;

/** Where a template's source comes from: inline strings, or a folder. */
export interface TemplateSource {
  /** eta source of the subject, rendered as plain text (never HTML-escaped). */
  readonly subject: string;
  /** eta source of the HTML body (or of the whole document with `layout: false`). */
  readonly html: string;
  /** eta source of the plain-text body; derived from the HTML when omitted. */
  readonly text?: string;
  /** eta source of the preheader: the hidden line inboxes show after the subject (layouts only). */
  readonly preheader?: string;
  /** CSS inlined into this template's HTML (after the shared stylesheet). */
  readonly css?: string;
  /** The layout the body is placed in: `'default'` (the built-in one) or `false` for none. */
  readonly layout: string | false;
  /** The file the HTML came from, for error messages. */
  readonly file?: string;
}

/** Options for {@link defineTemplate}. */
export interface TemplateDefinition<F extends Fields> {
  /** The name the template is sent and looked up by: lower-case letters, digits, `-`, `_`, `.`. */
  name: string;
  /** The template's data: each field's type; `?` marks optional ones. */
  fields: F;
  /** eta source of the subject. Required unless `dir` has a `subject.eta`. */
  subject?: string;
  /** eta source of the HTML body. Required unless `dir` has an `html.eta`. */
  html?: string;
  /** eta source of the text body; derived from the HTML when omitted. */
  text?: string;
  /**
   * eta source of the preheader, the line an inbox shows after the subject. From `preheader.eta` in
   * `dir`. Its layout must place `<%~ it.preheader %>` (the default one does), or compiling the
   * template is a `TemplateError` naming the template and the layout.
   */
  preheader?: string;
  /**
   * CSS for this template, inlined at compile time. Rules that match no element then (classes chosen
   * by data, `:hover`, `@media`, `@font-face`, `@supports`…) are kept in a `<style>` block in the head.
   */
  css?: string;
  /**
   * A folder with `html.eta`, `subject.eta` and optionally `text.eta`, `preheader.eta` and `style.css`: an absolute
   * path or a `file:` URL (e.g. `new URL('./emails/invoice', import.meta.url)`), never relative to
   * the working directory.
   */
  dir?: string | URL;
  /** The layout: `'default'` (the built-in one, branded from config) or `false`. Default `'default'`. */
  layout?: string | false;
  /**
   * What kind of email this is, and so which rules it follows (`category` in a folder's
   * `template.json`). Default `transactional`.
   * - `security`: sign-in alerts, changed passwords, anything a user must not miss. Never
   *   suppressed, and a send cannot make it anything else.
   * - `transactional`: verification, password reset, receipts a user asked for.
   * - `product`: updates, announcements, reminders.
   * - `marketing`: offers and newsletters.
   * A send may name another category (`sendTemplate(t, { category })`), except for `security` templates.
   */
  category?: EmailCategory;
  /**
   * Named sample data for `mailroom preview` (and tests): e.g. `default`, `long-name`. Sets in
   * `dir/preview/*.json` are added to these.
   */
  preview?: Readonly<Record<string, DataOf<F>>>;
  /**
   * The template's words by locale, read with `<%= t('key', { values }) %>`: ICU MessageFormat
   * strings (`'{count, plural, one {# item} other {# items}}'`), nested objects read as dotted keys.
   * Merged over a folder's `locales/<tag>.json` files (these win). A key found in neither is looked
   * up in the service's `messages`, then in mailroom's own catalogs (`greeting.hello`,
   * `layout.questions` …), along the chain `pt-BR` → `pt` → `en`. A tag that is not BCP 47 or a
   * message that is not ICU is a `TemplateError` naming it (`messages.de.title`).
   *
   * @example
   * ```ts
   * defineTemplate({ name: 'invoice', fields: { count: 'number' }, subject: "<%= t('subject', { count: it.count }) %>", html,
   *   messages: { en: { subject: '{count, plural, one {# invoice} other {# invoices}} due' }, de: { subject: '{count, plural, one {# Rechnung} other {# Rechnungen}} fällig' } } });
   * ```
   */
  messages?: Translations;
}

const TEMPLATE = Symbol.for('mailroom.template');
const DEFINITION = Symbol.for('mailroom.template.definition');
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const FIELD_NAME = /^[A-Za-z_$][\w$]*$/;
const SPEC = /^(?:string|url|number|minutes|boolean|datetime|timeZone|rows|[\w-]+(?:\|[\w-]+)+)\??$/;

/** A defined template. Its type parameter is the data it takes, so sending with it type-checks. */
export interface TemplateHandle<Data extends object = Record<string, unknown>> {
  readonly name: string;
  readonly fields: Fields;
  readonly source: TemplateSource;
  /** What kind of email it is (see {@link TemplateDefinition.category}). */
  readonly category: EmailCategory;
  /** Named sample data given in code (see {@link TemplateDefinition.preview}). */
  readonly preview: Readonly<Record<string, Data>>;
  /** The template's own translations by canonical locale (see {@link TemplateDefinition.messages}). */
  readonly messages: MessageLayer;
  /** Type-only: the template's data. */
  readonly __data?: Data;
}

/** Checks a template name: names are looked up, never used as paths. */
export function checkTemplateName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw new TemplateError(
      String(name).slice(0, 80),
      'not a valid template name (lower-case letters, digits, . _ -)',
    );
  }
  return name;
}

/**
 * Defines a template and returns a typed handle. The data type comes from `fields`, so a wrong or
 * missing field is a compile error; at run time, the same fields are checked and a
 * {@link TemplateError} names the template and the field.
 *
 * @example
 * ```ts
 * const orderShipped = defineTemplate({
 *   name: 'order-shipped',
 *   fields: { username: 'string', orderNumber: 'string', trackingUrl: 'url' },
 *   subject: 'Order <%= it.orderNumber %> is on its way',
 *   html: '<p>Your order ships today.</p><%~ include("@button", { url: it.trackingUrl, label: "Track it" }) %>',
 * });
 * await mail.sendTemplate(orderShipped, { to, data: { username: 'Jane', orderNumber: 'A-1', trackingUrl } });
 * ```
 */
export function defineTemplate<const F extends Fields>(
  definition: TemplateDefinition<F>,
): TemplateHandle<DataOf<F>> {
  if (typeof definition !== 'object' || definition === null)
    throw new TypeError('defineTemplate expects an object');
  const name = checkTemplateName(definition.name);
  const fields = checkFields(name, definition.fields);
  const dir = definition.dir === undefined ? undefined : resolveDir(name, definition.dir);
  const read = (file: string) => {
    if (!dir) return undefined;
    const path = join(dir, file);
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };
  const subject = definition.subject ?? read('subject.eta');
  const html = definition.html ?? read('html.eta');
  if (typeof subject !== 'string')
    throw new TemplateError(name, 'a subject is required (subject or subject.eta)');
  if (typeof html !== 'string') throw new TemplateError(name, 'an HTML body is required (html or html.eta)');
  const text = definition.text ?? read('text.eta');
  const preheader = (definition.preheader ?? read('preheader.eta'))?.trim();
  const css = [read('style.css'), definition.css].filter(Boolean).join('\n') || undefined;
  const layout = definition.layout ?? 'default';
  if (layout !== false && typeof layout !== 'string')
    throw new TemplateError(name, 'layout must be a name or false');
  const source: TemplateSource = Object.freeze({
    subject,
    html,
    layout,
    ...(text === undefined ? {} : { text }),
    ...(preheader ? { preheader } : {}),
    ...(css === undefined ? {} : { css }),
    ...(dir === undefined ? {} : { file: join(dir, 'html.eta') }),
  });
  const preview = definition.preview ?? {};
  if (typeof preview !== 'object' || preview === null)
    throw new TemplateError(name, 'preview must be an object');
  const category = definition.category ?? 'transactional';
  if (!CATEGORIES.includes(category))
    throw new TemplateError(name, `category must be one of ${CATEGORIES.join(', ')}`, { field: 'category' });
  const messages = templateMessages(name, dir, definition.messages);
  return Object.freeze({
    name,
    fields,
    source,
    category,
    messages,
    preview: Object.freeze({ ...preview }),
    [TEMPLATE]: true,
    [DEFINITION]: definition,
  }) as TemplateHandle<DataOf<F>>;
}

/**
 * The category a send of `template` goes out as: the one the send names, else the template's. A
 * `security` template cannot be sent as anything else (it would become suppressible): a
 * `MessageError` naming `category`. An unknown name is refused later, by the message check.
 */
export function categoryOf(
  template: Pick<TemplateHandle, 'name' | 'category'>,
  given: EmailCategory | undefined,
): EmailCategory {
  if (given === undefined || given === template.category) return template.category;
  if (template.category === 'security')
    throw new MessageError(
      'category',
      `the template "${template.name}" is security mail: it cannot be sent as ${JSON.stringify(given)}`,
    );
  return given;
}

/** The same template defined again, its files read afresh (for live reload). Internal. */
export function redefineTemplate(handle: TemplateHandle): TemplateHandle {
  const definition = (handle as unknown as Record<symbol, TemplateDefinition<Fields> | undefined>)[
    DEFINITION
  ];
  return definition ? (defineTemplate(definition) as unknown as TemplateHandle) : handle;
}

/**
 * The same template with its sources said to come from the folder `dir` (the preview's editor
 * compiles unsaved sources, and its errors must name the files they will be saved to). Internal.
 */
export function placeInFolder(handle: TemplateHandle, dir: string): TemplateHandle {
  return Object.freeze({
    ...handle,
    source: Object.freeze({ ...handle.source, file: join(dir, 'html.eta') }),
    [TEMPLATE]: true,
  }) as TemplateHandle;
}

/** A folder's `locales/<tag>.json`, then `messages` from code over them. */
function templateMessages(name: string, dir: string | undefined, given: unknown): MessageLayer {
  const fail = (field: string, problem: string): never => {
    throw new TemplateError(name, problem, { field });
  };
  const fromDir = dir ? readLocalesDir(join(dir, 'locales'), fail) : new Map();
  if (given === undefined) return fromDir;
  const fromCode = messageLayer(given, 'messages', fail);
  const merged = new Map(fromDir);
  for (const [locale, catalog] of fromCode) merged.set(locale, { ...merged.get(locale), ...catalog });
  return merged;
}

/** True for a value returned by {@link defineTemplate}. */
export function isTemplateHandle(value: unknown): value is TemplateHandle {
  return typeof value === 'object' && value !== null && TEMPLATE in value;
}

function checkFields(name: string, fields: unknown): Fields {
  if (typeof fields !== 'object' || fields === null)
    throw new TemplateError(name, 'fields must be an object');
  for (const [field, spec] of Object.entries(fields)) {
    if (!FIELD_NAME.test(field)) throw new TemplateError(name, 'not a valid field name', { field });
    if (field === 'app') throw new TemplateError(name, '"app" is reserved for the brand', { field });
    if (field === 'locale' || field === 'dir')
      throw new TemplateError(name, `"${field}" is set by mailroom (the language the email is written in)`, {
        field,
      });
    if (field === 'hasReplyTo')
      throw new TemplateError(name, '"hasReplyTo" is set by mailroom (whether replies have an address)', {
        field,
      });
    if (field === 'unsubscribe')
      throw new TemplateError(name, '"unsubscribe" is set by mailroom (the footer\'s unsubscribe links)', {
        field,
      });
    if (typeof spec !== 'string' || !SPEC.test(spec)) {
      throw new TemplateError(
        name,
        'type must be string, url, number, minutes, boolean, datetime, timeZone, rows or a choice (a|b), with ? for optional',
        {
          field,
        },
      );
    }
  }
  return Object.freeze({ ...(fields as Fields) });
}

function resolveDir(name: string, dir: string | URL): string {
  const path = dir instanceof URL ? fileURLToPath(dir) : dir;
  if (typeof path !== 'string' || !isAbsolute(path)) {
    throw new TemplateError(
      name,
      'dir must be an absolute path or a file: URL, not relative to the working directory',
    );
  }
  return path;
}
