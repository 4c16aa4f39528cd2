/**
 * Internal: what each field kind accepts, how a date and time is shown, and sample values for the
 * preview and the build. define.ts declares the kinds; compile.ts checks data with these.
 */
import { languageOf } from '../locale.js';

/** The largest value of a `minutes` field: one week (10 080). Links that live longer are a risk. */
export const MAX_MINUTES = 7 * 24 * 60;
/** The most rows a `rows` field takes: a summary, not a catalogue. */
export const MAX_ROWS = 50;
/** The longest label or value in a `rows` field, in characters. */
export const MAX_ROW_TEXT = 500;

/**
 * ISO 8601 / RFC 3339 date and time with seconds optional and an offset or `Z` required: without an
 * offset the instant depends on the machine that reads it.
 */
const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/i;
/** The shape of an IANA zone name (`Europe/Berlin`, `UTC`, `Etc/GMT+5`); `Intl` decides whether it exists. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/** Whether `value` is an http(s) URL; given by the engine, which owns the rule. */
type IsUrl = (value: string) => boolean;

/** A problem with one field's value: what is wrong, and where below the field (`[2].label`). */
export interface ValueProblem {
  readonly problem: string;
  readonly path?: string;
}

/** What is wrong with one field's value, or undefined. `kind` has no `?`. */
export function checkValue(kind: string, value: unknown, isUrl: IsUrl): ValueProblem | undefined {
  switch (kind) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : problem('must be a number');
    case 'minutes':
      return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_MINUTES
        ? undefined
        : problem(`must be a whole number of minutes from 1 to ${MAX_MINUTES}`);
    case 'boolean':
      return typeof value === 'boolean' ? undefined : problem('must be a boolean');
    case 'url':
      return typeof value === 'string' && isUrl(value) ? undefined : problem('must be an http(s) URL');
    case 'datetime':
      return toInstant(value) === undefined
        ? problem('must be a Date or an ISO 8601 date and time with an offset, e.g. 2026-12-08T02:00:00Z')
        : undefined;
    case 'timeZone':
      return isTimeZone(value) ? undefined : problem('must be an IANA time zone, e.g. Europe/Berlin or UTC');
    case 'rows':
      return rowsProblem(value);
    case 'string':
      return stringProblem(value);
    default: {
      // A choice: `sign-in|password-changed`.
      const choices = choicesOf(kind);
      return typeof value === 'string' && choices.includes(value)
        ? undefined
        : problem(`must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
    }
  }
}

/** A problem found (a module function: checkValue runs for every field of every render). */
function problem(text: string, path?: string): ValueProblem {
  return path ? { problem: text, path } : { problem: text };
}

function stringProblem(value: unknown): ValueProblem | undefined {
  if (typeof value !== 'string') return { problem: 'must be a string' };
  // "Welcome to Acme, !": a blank value is a missing one. Leave an optional field out instead.
  return value.trim() === '' ? { problem: 'must not be empty' } : undefined;
}

function rowsProblem(value: unknown): ValueProblem | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ROWS) {
    return { problem: `must be a list of 1 to ${MAX_ROWS} rows { label, value }` };
  }
  for (const [i, row] of value.entries()) {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      return { problem: 'must be { label, value }', path: `[${i}]` };
    }
    for (const key of Object.keys(row)) {
      if (key !== 'label' && key !== 'value') {
        return { problem: 'is not part of a row (label, value)', path: `[${i}].${key}` };
      }
    }
    for (const key of ['label', 'value'] as const) {
      const text = (row as Record<string, unknown>)[key];
      if (text === undefined || text === null) return { problem: 'is required', path: `[${i}].${key}` };
      const wrong = stringProblem(text);
      if (wrong) return { ...wrong, path: `[${i}].${key}` };
      if ((text as string).length > MAX_ROW_TEXT) {
        return { problem: `must be at most ${MAX_ROW_TEXT} characters`, path: `[${i}].${key}` };
      }
    }
  }
  return undefined;
}

/** The instant a `datetime` value stands for, or undefined when it is not one. */
export function toInstant(value: unknown): Date | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value !== 'string') return undefined;
  const match = ISO_DATETIME.exec(value.trim());
  if (!match) return undefined;
  const [year, month, day, hour, minute, second = '0', offsetHours = '0', offsetMinutes = '0'] =
    match.slice(1);
  const y = Number(year);
  const m = Number(month);
  // Date.parse rolls 30 February over into March; a date that does not exist is a mistake.
  const daysInMonth = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (m < 1 || m > 12 || Number(day) < 1 || Number(day) > daysInMonth) return undefined;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined;
  if (Number(offsetHours) > 23 || Number(offsetMinutes) > 59) return undefined;
  const time = Date.parse(value.trim());
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** Zone names `Intl` accepted; bounded, as values come from each send's data. */
const knownZones = new Set<string>();

/** Whether `value` names a time zone this runtime's `Intl` knows (IANA names, `UTC`). */
export function isTimeZone(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  // Building a formatter to ask costs about 80 µs: each zone is asked once, not on every render.
  if (knownZones.has(value)) return true;
  if (!ZONE_NAME.test(value)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
  } catch {
    return false;
  }
  if (knownZones.size >= 1_000) knownZones.clear();
  knownZones.add(value);
  return true;
}

/** A choice kind's words (`primary|danger`), split once per kind: checks run on every render. */
const choiceLists = new Map<string, readonly string[]>();
export function choicesOf(kind: string): readonly string[] {
  let choices = choiceLists.get(kind);
  if (choices === undefined) {
    choices = Object.freeze(kind.split('|'));
    if (choiceLists.size < 1_000) choiceLists.set(kind, choices);
  }
  return choices;
}

/** Options of {@link formatDateTime}. */
export interface DateTimeOptions {
  /** The reader's IANA time zone. Default `UTC`. */
  readonly timeZone?: string | undefined;
  /** The BCP 47 locale to write it in. Default `en` (British English words, a 24-hour clock). */
  readonly locale?: string | undefined;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * A `datetime` value as a reader reads it, in their time zone, on a 24-hour clock:
 * `Tuesday, 8 December 2026, 02:00 (UTC)`, `Tuesday, 8 December 2026, 03:00 (CET)`. The zone's
 * short name is the one `Intl` gives in British English (`CET`, `GMT-5`). A value that is not a
 * date is shown as it is (the field check refuses it before a template runs).
 */
export function formatDateTime(value: unknown, options: DateTimeOptions = {}): string {
  const instant = toInstant(value);
  if (!instant) return String(value);
  const timeZone = options.timeZone ?? 'UTC';
  const locale = options.locale ?? 'en';
  // Another language: as `Intl.DateTimeFormat` writes it there, with the locale's own clock
  // (`Dienstag, 8. Dezember 2026 um 03:00 MEZ`, `mardi 8 décembre 2026 à 03:00 UTC+1`).
  if (languageOf(locale) !== 'en') return dateTimeFormat(locale, timeZone).format(instant);
  const part = Object.fromEntries(
    dateTimeFormat('en-GB', timeZone, 'h23')
      .formatToParts(instant)
      .map((p) => [p.type, p.value]),
  );
  return `${part.weekday}, ${part.day} ${part.month} ${part.year}, ${part.hour}:${part.minute} (${part.timeZoneName})`;
}

/** The formatter of `locale` in `timeZone` (the locale's own clock unless `hourCycle`), made once. */
function dateTimeFormat(locale: string, timeZone: string, hourCycle?: 'h23'): Intl.DateTimeFormat {
  const key = `${locale}\u0000${timeZone}`;
  let format = formatters.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, {
      timeZone,
      weekday: 'long',
      day: 'numeric',
      month: 'long',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      ...(hourCycle ? { hourCycle } : {}),
      timeZoneName: 'short',
    });
    formatters.set(key, format);
  }
  return format;
}

/** A value of each kind, for a template that has no data set (the preview) and for the build's check. */
export function sampleValue(kind: string, name: string): unknown {
  switch (kind) {
    case 'number':
    case 'minutes':
      return 42;
    case 'boolean':
      return true;
    case 'url':
      return 'https://example.com/';
    case 'datetime':
      // An end (`endsAt`) two hours after every other instant: a sample window never runs backwards.
      return /^end/i.test(name) ? '2026-12-08T04:00:00Z' : '2026-12-08T02:00:00Z';
    case 'timeZone':
      return 'Europe/Berlin';
    case 'rows':
      return [
        { label: 'First', value: 'One' },
        { label: 'Second', value: 'Two' },
      ];
    case 'string':
      return `Sample ${name}`;
    default:
      return kind.split('|')[0];
  }
}
