/**
 * Internal: eta source as mailroom reads it, before eta compiles it.
 *
 * - `<%~ include('@name', data) %>` is replaced by the partial's source at compile time (so juice
 *   styles it with the rest), inside a block of its own: it composes with whatever surrounds it —
 *   the same line, the next line, an `if`, a loop, another partial.
 * - eta runs with `autoTrim: false`, so every newline the author wrote after an output tag stays;
 *   only a line that holds nothing but code tags (`<% if (…) { %>`) leaves no line behind.
 */

import { declaredArgs, includeArgsProblem } from './partial-args.js';
import { blankLiterals, type EtaTag, scanTags } from './scan.js';

const MENTIONS_INCLUDE = /\binclude(?:Async)?\s*\(/;
const INCLUDE_CALL = /^include\(\s*(["'])@([\w.-]+)\1\s*(?:,([\s\S]*))?\)$/;
export const MAX_PARTIAL_DEPTH = 5;
const INCLUDE_FORM = "<%~ include('@name', { … }) %>";

/** Whether brackets in an argument list balance without closing the call early. */
function balanced(args: string): boolean {
  let depth = 0;
  for (const char of blankLiterals(args)) {
    if ('([{'.includes(char)) depth++;
    else if (')]}'.includes(char) && --depth < 0) return false;
  }
  return depth === 0;
}

/**
 * Replaces every `<%~ include('@name', data) %>` with the partial's source. The partial sees its
 * data as `it`, plus the brand as `it.app` (the caller's `it` when no data is given). Calls `fail`
 * for an unknown partial, an include written any other way, nesting past {@link MAX_PARTIAL_DEPTH},
 * or data that does not fit the arguments the partial declares (as far as the source shows them).
 */
export function expandPartials(
  source: string,
  partials: ReadonlyMap<string, string>,
  fail: (problem: string, cause?: unknown, field?: string) => never,
  isUrl: (value: string) => boolean = () => true,
): string {
  let out = source;
  for (let depth = 0; ; depth++) {
    const includes = scanTags(out).filter((tag) => MENTIONS_INCLUDE.test(blankLiterals(tag.code)));
    if (includes.length === 0) return out;
    if (depth === MAX_PARTIAL_DEPTH) fail(`partials nest deeper than ${MAX_PARTIAL_DEPTH}`);
    let expanded = '';
    let from = 0;
    for (const tag of includes) {
      const call = INCLUDE_CALL.exec(tag.code);
      const args = call?.[3]?.trim();
      if (tag.kind !== '~' || !call || (args !== undefined && !balanced(args))) {
        fail(`write a partial as ${INCLUDE_FORM}, alone in its tag: ${out.slice(tag.start, tag.end)}`);
      }
      const name = call?.[2] as string;
      const body = partials.get(name) ?? fail(`unknown partial "@${name}"`);
      const spec = declaredArgs(body);
      const wrong = spec && includeArgsProblem(name, spec, args, isUrl);
      if (wrong) fail(wrong.problem, undefined, `@${name}.${wrong.arg}`);
      // A block of its own: no statement before or after can run into it, and `it` is the partial's.
      const data = `__mailroomPartial${depth}`;
      expanded +=
        out.slice(from, tag.start) +
        `<%${tag.trimLeft} { const ${data} = Object.assign({ app: it.app }, ${args || 'it'}); { const it = ${data}; %>` +
        // A file's final newline ends the file; it is not part of what the partial places.
        body.replace(/\r?\n$/, '') +
        `<% } } ${tag.trimRight}%>`;
      from = tag.end;
    }
    out = expanded + out.slice(from);
  }
}

/**
 * Prepares a source for eta (which runs with `autoTrim: false`): a line holding only code tags and
 * whitespace leaves nothing behind — its indentation is dropped and its newline trimmed by a `-`
 * marker, so line numbers in eta's errors still match the source. Lines whose tags carry their own
 * trim markers are left as written. Throws for `include()` outside the HTML's partial form.
 */
export function etaSource(source: string): string {
  const tags = scanTags(source);
  for (const tag of tags) {
    if (MENTIONS_INCLUDE.test(blankLiterals(tag.code))) {
      throw new Error(`include() places a partial only in the HTML, as ${INCLUDE_FORM}`);
    }
  }
  let out = '';
  let from = 0;
  let line: EtaTag[] = [];
  let lineStart = 0;
  const flush = (lineEnd: number, newline: boolean) => {
    const controlOnly =
      newline &&
      line.length > 0 &&
      line.every((tag) => tag.kind === '' && !tag.trimLeft && !tag.trimRight) &&
      gaps(source, line, lineStart, lineEnd).every((gap) => gap.trim() === '');
    if (controlOnly) {
      out += source.slice(from, lineStart);
      for (const tag of line) out += source.slice(tag.start, tag.end);
      out = `${out.slice(0, -2)}-%>`;
      from = lineEnd;
    }
    line = [];
  };
  let tagIndex = 0;
  for (let i = 0; i <= source.length; i++) {
    const tag = tags[tagIndex];
    if (tag && i === tag.start) {
      line.push(tag);
      tagIndex++;
      i = tag.end - 1;
      continue;
    }
    if (i === source.length || source[i] === '\n') {
      flush(i, i < source.length);
      lineStart = i + 1;
    }
  }
  return out + source.slice(from);
}

/** The text between and around a line's tags. */
function gaps(source: string, line: readonly EtaTag[], lineStart: number, lineEnd: number): string[] {
  const out: string[] = [];
  let at = lineStart;
  for (const tag of line) {
    out.push(source.slice(at, tag.start));
    at = tag.end;
  }
  out.push(source.slice(at, lineEnd).replace(/\r$/, ''));
  return out;
}
