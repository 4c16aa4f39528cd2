/** Internal: finds eta tags in a template source, and the JavaScript inside them, without running eta. */

/** One eta tag in a source: `<%`, optional trim marker, optional `=`/`~`, code, optional marker, `%>`. */
export interface EtaTag {
  readonly start: number;
  /** Index just past `%>`. */
  readonly end: number;
  /** `=` escaped output, `~` raw output, `` code. */
  readonly kind: '' | '=' | '~';
  readonly trimLeft: string;
  readonly trimRight: string;
  /** The code between the markers, without the surrounding whitespace. */
  readonly code: string;
  /** Offset of `code` in the source. */
  readonly codeStart: number;
}

// The same rules as eta's own parser: a `%>` inside a string or a comment does not close the tag.
const OPEN = /<%(-|_)?\s*(=|~)?\s*/g;
const CLOSE = /'|"|`|\/\*|(\s*(-|_)?%>)/g;
const STRINGS: Record<string, RegExp> = {
  "'": /'(?:\\[\s\w"'\\`]|[^\n\r'\\])*?'/g,
  '"': /"(?:\\[\s\w"'\\`]|[^\n\r"\\])*?"/g,
  '`': /`(?:\\[\s\S]|\${(?:[^{}]|{(?:[^{}]|{[^}]*})*})*}|(?!\${)[^\\`])*`/g,
};

/** The tags of an eta source, in order. Stops at a malformed tag: eta reports that one itself. */
export function scanTags(source: string): EtaTag[] {
  const tags: EtaTag[] = [];
  OPEN.lastIndex = 0;
  for (let open = OPEN.exec(source); open; open = OPEN.exec(source)) {
    const codeStart = open.index + open[0].length;
    CLOSE.lastIndex = codeStart;
    let close: RegExpExecArray | null;
    for (close = CLOSE.exec(source); close && !close[1]; close = CLOSE.exec(source)) {
      const token = close[0];
      if (token === '/*') {
        const endComment = source.indexOf('*/', CLOSE.lastIndex);
        if (endComment === -1) return tags;
        CLOSE.lastIndex = endComment + 2;
        continue;
      }
      const string = STRINGS[token] as RegExp;
      string.lastIndex = close.index;
      const match = string.exec(source);
      if (!match || match.index !== close.index) return tags;
      CLOSE.lastIndex = string.lastIndex;
    }
    if (!close) return tags;
    tags.push({
      start: open.index,
      end: CLOSE.lastIndex,
      kind: (open[2] ?? '') as EtaTag['kind'],
      trimLeft: open[1] ?? '',
      trimRight: close[2] ?? '',
      code: source.slice(codeStart, close.index),
      codeStart,
    });
    OPEN.lastIndex = CLOSE.lastIndex;
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
