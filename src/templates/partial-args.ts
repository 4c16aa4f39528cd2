/**
 * Internal: a partial's arguments, checked. A built-in partial declares them on its first line,
 * `<% partialArgs(it, '@panel', { tone: 'info|success|warning|danger?', text: 'text' }) %>`, so a
 * missing label or a misspelt tone is an error naming the argument — never "undefined" in an email.
 *
 * Kinds: `text` (a non-blank string or a finite number), `url` (an http(s) URL), `rows` (a
 * non-empty array of `{ label, value }`, both text), `row` (one such object), or literal choices
 * `a|b|c`. A trailing `?` makes the argument optional (`undefined` or `null` leave it out).
 *
 * The check runs on every render; where the include's data is an object literal, the same check
 * runs at compile time on what can be known there (names, literal values).
 */
import { choicesOf } from './fields.js';
import { blankLiterals } from './scan.js';

/** Argument name → kind, as declared by the partial. */
export type ArgSpec = Readonly<Record<string, string>>;

/** A partial's argument is missing or wrong; `arg` is its path (`rows[1].label`). */
export class PartialArgError extends Error {
  constructor(
    readonly partial: string,
    readonly arg: string,
    readonly problem: string,
  ) {
    super(`@${partial}.${arg}: ${problem}`);
  }
}

/** Stands for a value computed at render time, which only the render-time check can judge. */
const COMPUTED = Symbol('computed');

const DECLARATION = /^\s*partialArgs\(\s*it\s*,\s*'@([\w.-]+)'\s*,\s*\{([^}]*)\}\s*\)\s*;?\s*$/;
const SPEC_ENTRY = /([A-Za-z_$][\w$]*)\s*:\s*'([^']*)'/g;

/** The declaration of a partial's arguments, read from its source (undefined when it declares none). */
export function declaredArgs(body: string): ArgSpec | undefined {
  const first = /<%\s*([\s\S]*?)%>/.exec(body);
  const match = first && DECLARATION.exec(first[1] ?? '');
  if (!match) return undefined;
  return Object.fromEntries([...(match[2] ?? '').matchAll(SPEC_ENTRY)].map((m) => [m[1], m[2]]));
}

/** What is wrong with one value for a kind, or undefined. `isUrl` is the engine's own URL rule. */
function valueProblem(kind: string, value: unknown, isUrl: (value: string) => boolean): string | undefined {
  if (value === COMPUTED) return undefined;
  if (kind === 'text') {
    if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'must be a finite number';
    if (typeof value !== 'string') return `must be text, not ${describe(value)}`;
    return value.trim() === '' ? 'must not be empty' : undefined;
  }
  if (kind === 'url') {
    return typeof value === 'string' && isUrl(value) ? undefined : 'must be an http(s) URL';
  }
  if (kind.includes('|')) {
    const choices = choicesOf(kind);
    return typeof value === 'string' && choices.includes(value)
      ? undefined
      : `must be one of ${choices.map((c) => `'${c}'`).join(', ')} (got ${describe(value)})`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

const isMissing = (value: unknown) => value === undefined || value === null;

/** Checks one `{ label, value }` row; throws naming `path.label` or `path.value`. */
function checkRow(partial: string, path: string, row: unknown, isUrl: (value: string) => boolean): void {
  if (row === COMPUTED) return;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new PartialArgError(partial, path, `must be { label, value }, not ${describe(row)}`);
  }
  for (const key of ['label', 'value']) {
    const value = (row as Record<string, unknown>)[key];
    if (isMissing(value)) throw new PartialArgError(partial, `${path}.${key}`, 'is required');
    const problem = valueProblem('text', value, isUrl);
    if (problem) throw new PartialArgError(partial, `${path}.${key}`, problem);
  }
  for (const key of Object.keys(row)) {
    if (key !== 'label' && key !== 'value') {
      throw new PartialArgError(partial, `${path}.${key}`, 'is not part of a row (label, value)');
    }
  }
}

/**
 * The render-time check a partial declares on its first line. Throws a {@link PartialArgError}
 * for the first missing, wrong or unknown argument (`app` is the brand, always there).
 */
export function checkPartialArgs(
  it: Record<string, unknown>,
  partial: string,
  spec: ArgSpec,
  isUrl: (value: string) => boolean,
): void {
  // for…in rather than Object.entries/keys: this runs for every partial of every render, and
  // both are object literals of the template's code (own keys only).
  for (const arg in spec) {
    const declared = spec[arg] as string;
    const optional = declared.charCodeAt(declared.length - 1) === 63; // '?'
    const kind = optional ? declared.slice(0, -1) : declared;
    const value = it[arg];
    if (isMissing(value)) {
      if (optional) continue;
      throw new PartialArgError(partial, arg, 'is required');
    }
    if (kind === 'rows') {
      if (value === COMPUTED) continue;
      if (!Array.isArray(value) || value.length === 0) {
        throw new PartialArgError(partial, arg, `must be a non-empty array of { label, value }`);
      }
      for (const [i, row] of value.entries()) checkRow(partial, `${arg}[${i}]`, row, isUrl);
      continue;
    }
    if (kind === 'row') {
      checkRow(partial, arg, value, isUrl);
      continue;
    }
    const problem = valueProblem(kind, value, isUrl);
    if (problem) throw new PartialArgError(partial, arg, problem);
  }
  for (const arg in it) {
    if (arg !== 'app' && !Object.hasOwn(spec, arg) && Object.hasOwn(it, arg)) {
      throw new PartialArgError(
        partial,
        arg,
        `is not an argument of @${partial} (${Object.keys(spec).join(', ')})`,
      );
    }
  }
}

/**
 * The compile-time check of an include's data against the partial's declaration, on what the
 * source shows: the names of an object literal and its literal values. Anything computed is left
 * to the render-time check. Returns the problem, or undefined.
 */
export function includeArgsProblem(
  partial: string,
  spec: ArgSpec,
  args: string | undefined,
  isUrl: (value: string) => boolean,
): PartialArgError | undefined {
  const entries = args === undefined ? undefined : objectLiteral(args);
  if (!entries) return undefined;
  const known: Record<string, unknown> = {};
  for (const [name, source] of entries) {
    const rows = spec[name]?.startsWith('rows') ? arrayLiteral(source) : undefined;
    known[name] = rows ? rows.map(rowLiteral) : literalValue(source);
  }
  try {
    checkPartialArgs(known, partial, spec, isUrl);
  } catch (err) {
    if (err instanceof PartialArgError) return err;
    throw err;
  }
  return undefined;
}

/** A row literal `{ label: 'A', value: it.a }` as values the check can read. */
function rowLiteral(source: string): unknown {
  const entries = objectLiteral(source);
  if (!entries) return COMPUTED;
  return Object.fromEntries(entries.map(([name, value]) => [name, literalValue(value)]));
}

/** A JavaScript literal's value: a quoted string without escapes or `${`, a number, null, undefined. */
function literalValue(source: string): unknown {
  const text = source.trim();
  const quoted = /^(['"])([^'"\\\n]*)\1$/.exec(text) ?? /^`([^`\\$]*)`$/.exec(text);
  if (quoted) return quoted[quoted.length - 1];
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'null') return null;
  if (text === 'undefined') return undefined;
  if (text === 'true' || text === 'false') return text === 'true';
  return COMPUTED;
}

/** Splits `a, b, c` at top-level commas (strings, brackets and comments respected). */
function topLevel(inner: string): string[] {
  const blank = blankLiterals(inner);
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < blank.length; i++) {
    const c = blank[i]!;
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      parts.push(inner.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(inner.slice(from));
  return parts.filter((part) => blankLiterals(part).trim() !== '');
}

/** The entries of `{ a: x, 'b': y, c }` as name → value source, or undefined when not that plain. */
function objectLiteral(source: string): [string, string][] | undefined {
  const text = source.trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  const entries: [string, string][] = [];
  for (const part of topLevel(text.slice(1, -1))) {
    const entry = /^\s*(?:([A-Za-z_$][\w$]*)|(["'])([\w$-]*)\2)\s*(?::([\s\S]*))?$/.exec(part);
    if (!entry) return undefined; // a spread, a computed key, a method: only the render knows
    const name = (entry[1] ?? entry[3]) as string;
    if (entry[4] === undefined && !entry[1]) return undefined;
    entries.push([name, entry[4] ?? name]);
  }
  return entries;
}

/** The elements of `[a, b]`, or undefined when the source is not an array literal. */
function arrayLiteral(source: string): string[] | undefined {
  const text = source.trim();
  if (!text.startsWith('[') || !text.endsWith(']')) return undefined;
  return topLevel(text.slice(1, -1));
}
