/** Internal: finds eta tags in a template source, and the JavaScript inside them, without running eta. */

/** One `<% … %>` tag: offsets in the source, and its JavaScript. */
export interface EtaTag {
  /** Offset of `<%`. */
  readonly start: number;
  /** Offset just past `%>` (the source's length for an unclosed tag). */
  readonly end: number;
  /** `=` (escaped output), `~` (raw output) or `` (code). */
  readonly kind: '=' | '~' | '';
  /** The JavaScript between the prefix and `%>`, trimmed of eta's whitespace controls. */
  readonly code: string;
  /** Offset of `code` in the source. */
  readonly codeStart: number;
}

/** Every eta tag of `source`, in order. A `%>` inside a string in the tag does not close it, as in eta. */
export function etaTags(source: string): EtaTag[] {
  const tags: EtaTag[] = [];
  let at = source.indexOf('<%');
  while (at !== -1) {
    let i = at + 2;
    if (source[i] === '-' || source[i] === '_') i++;
    const kind = source[i] === '=' || source[i] === '~' ? (source[i] as '=' | '~') : '';
    if (kind) i++;
    const codeStart = i;
    let close = -1;
    while (i < source.length) {
      const c = source[i]!;
      if (c === '"' || c === "'" || c === '`') {
        i = skipString(source, i);
        continue;
      }
      if (c === '%' && source[i + 1] === '>') {
        close = i;
        break;
      }
      i++;
    }
    const codeEnd = close === -1 ? source.length : close;
    let code = source.slice(codeStart, codeEnd);
    if (/[-_]$/.test(code)) code = code.slice(0, -1);
    tags.push({ start: at, end: close === -1 ? source.length : close + 2, kind, code, codeStart });
    if (close === -1) break;
    at = source.indexOf('<%', close + 2);
  }
  return tags;
}

/** The index just past the string literal opening at `i` (or the end of the source). */
function skipString(source: string, i: number): number {
  const quote = source[i];
  for (let j = i + 1; j < source.length; j++) {
    if (source[j] === '\\') j++;
    else if (source[j] === quote) return j + 1;
  }
  return source.length;
}

/**
 * `code` with the contents of string literals and comments blanked out (same length, newlines
 * kept), so that a search for names finds only code; `${…}` inside template literals stays code.
 */
export function blankLiterals(code: string): string {
  let out = '';
  let i = 0;
  const blank = (text: string) => text.replace(/[^\n]/g, ' ');
  while (i < code.length) {
    const c = code[i]!;
    if (c === '/' && code[i + 1] === '/') {
      const end = code.indexOf('\n', i);
      const stop = end === -1 ? code.length : end;
      out += blank(code.slice(i, stop));
      i = stop;
    } else if (c === '/' && code[i + 1] === '*') {
      const end = code.indexOf('*/', i + 2);
      const stop = end === -1 ? code.length : end + 2;
      out += blank(code.slice(i, stop));
      i = stop;
    } else if (c === '"' || c === "'") {
      const stop = skipString(code, i);
      out += `${c}${blank(code.slice(i + 1, stop - 1))}${code[stop - 1] === c ? c : ''}`;
      i = stop;
    } else if (c === '`') {
      out += c;
      i++;
      while (i < code.length && code[i] !== '`') {
        if (code[i] === '\\') {
          out += '  ';
          i += 2;
        } else if (code[i] === '$' && code[i + 1] === '{') {
          const close = matchingBrace(code, i + 1);
          out += `\${${blankLiterals(code.slice(i + 2, close))}}`;
          i = close + 1;
        } else {
          out += code[i] === '\n' ? '\n' : ' ';
          i++;
        }
      }
      if (i < code.length) out += '`';
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out.slice(0, code.length);
}

/** The index of the `}` closing the `{` at `open` (strings skipped), or the end of `code`. */
function matchingBrace(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i]!;
    if (c === '"' || c === "'" || c === '`') i = skipString(code, i) - 1;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return code.length;
}

/** The line (from 1) of an offset in `source`. */
export function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < source.length; i++) if (source[i] === '\n') line++;
  return line;
}
