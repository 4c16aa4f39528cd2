/**
 * Internal: one diagnosis of a template's syntax errors, for the API (`compileAll()`, a send) and
 * the preview alike: the part or file, the line, and a short reason — never eta's generated code.
 * Each source is compiled alone, so the line is the file's own, not the composed document's.
 */
import { Eta } from 'eta';
import { TemplateError } from '../errors.js';
import type { TemplateAssets } from './compile.js';
import type { TemplateHandle } from './define.js';

/** The parts a template writes itself, and their file names in a template folder. */
export const PART_FILES = {
  subject: 'subject.eta',
  html: 'html.eta',
  text: 'text.eta',
  preheader: 'preheader.eta',
} as const;
export type Part = keyof typeof PART_FILES;

/** The file a part came from, for a template defined from a folder. */
export function partFile(handle: TemplateHandle, part: string): string | undefined {
  const file = handle.source.file;
  if (!file || !(part in PART_FILES)) return undefined;
  return file.replace(/html\.eta$/, PART_FILES[part as Part]);
}

const eta = new Eta({ useWith: false, cache: false, autoTrim: false });

/** Where a source failed to compile, and why in a few words; undefined when it compiles. */
export function syntaxProblem(source: string): { line?: number; reason: string } | undefined {
  try {
    eta.compile(source);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    const line = /at line (\d+)/.exec(message)?.[1];
    const reason = unclosedBlock(source)
      ? 'a `{` opened in a tag is never closed (a missing `<% } %>`?)'
      : shortReason(message);
    return { ...lineOf(source, line), reason };
  }
}

/** Throws a {@link TemplateError} with part or file and line for the first own part with bad syntax. */
export function checkSyntax(handle: TemplateHandle): void {
  for (const part of Object.keys(PART_FILES) as Part[]) {
    const source = handle.source[part];
    if (typeof source !== 'string') continue;
    const problem = syntaxProblem(source);
    if (!problem) continue;
    const file = partFile(handle, part);
    throw new TemplateError(handle.name, `bad template syntax: ${problem.reason}`, {
      part,
      ...(file ? { file } : {}),
      ...(problem.line ? { line: problem.line } : {}),
    });
  }
}

/**
 * The error for a composed source that eta refused although each of the template's own parts
 * compiles: the layout or a partial is at fault, or else the reason alone is given.
 */
export function composedSyntaxError(
  handle: TemplateHandle,
  part: string,
  cause: unknown,
  assets: TemplateAssets,
): TemplateError {
  const layout = handle.source.layout;
  const suspects: [string, string | undefined][] = [
    ...(layout === false
      ? []
      : [[`layout "${layout}"`, assets.layouts.get(layout)] as [string, string | undefined]]),
    ...[...assets.partials].map(([name, body]): [string, string] => [`partial @${name}`, body]),
  ];
  for (const [where, source] of suspects) {
    const problem = source === undefined ? undefined : syntaxProblem(source);
    if (problem) {
      return new TemplateError(handle.name, `bad template syntax: ${problem.reason}`, {
        part: where,
        ...(problem.line ? { line: problem.line } : {}),
        cause,
      });
    }
  }
  return new TemplateError(handle.name, `bad template syntax: ${shortReason((cause as Error).message)}`, {
    part,
    cause,
  });
}

/** A few words on what is wrong, from eta's or the JavaScript parser's message. */
export function shortReason(message: string): string {
  if (/unclosed tag|Invalid regular expression/i.test(message))
    return 'unclosed `<%` tag? (no `%>` after it)';
  if (/unclosed string|Unterminated string/i.test(message)) return 'unclosed string in a tag';
  if (/end of input/i.test(message)) return 'a `{`, `(` or `[` opened in a tag is never closed';
  const first = message
    .replace(/^Bad template syntax\s*/, '')
    .split(/\n/)
    .map((line) => line.trim())
    .find((line) => line && !/^=+$/.test(line));
  return (first ?? 'unknown syntax error').slice(0, 200);
}

/** Closings of up to three open blocks: `}` for `if`, `})` for a callback such as `forEach`. */
const CLOSERS = [1, 2, 3].flatMap((depth) =>
  Array.from({ length: 2 ** depth }, (_, bits) =>
    Array.from({ length: depth }, (_, i) => ((bits >> i) & 1 ? '})' : '}')).join(''),
  ),
);

/** Whether `source` compiles once its open blocks are closed: it only ends too soon. */
function unclosedBlock(source: string): boolean {
  return CLOSERS.some((closer) => {
    try {
      eta.compile(`${source}<% ${closer} %>`);
      return true;
    } catch {
      return false;
    }
  });
}

/** eta's own line, else the first prefix of lines that fails other than by ending too soon. */
function lineOf(source: string, said: string | undefined): { line?: number } {
  if (said) return { line: Number(said) };
  const lines = source.split('\n');
  // Else the line after the last prefix that compiles: where the unclosed thing was opened.
  let after = 1;
  for (let n = 1; n <= lines.length; n++) {
    const prefix = lines.slice(0, n).join('\n');
    try {
      eta.compile(prefix);
      after = n + 1;
    } catch (error) {
      const text = (error as Error).message;
      const soon = /end of input|unclosed|missing \) after|Unterminated/i.test(text);
      if (!soon && !unclosedBlock(prefix)) return { line: n };
    }
  }
  return after <= lines.length ? { line: after } : {};
}
