/**
 * Turns an error from defining, compiling or rendering a template into what a person needs on the
 * page: the message, and where possible the file and line. eta reports JavaScript syntax errors
 * without a line and composed sources (layout + body) have other line numbers than the files, so
 * the line is found again on the file's own source.
 */
import { join } from 'node:path';
import { Eta } from 'eta';
import { isTemplateError } from '../errors.js';
import { builtinAssets } from '../templates/builtins.js';
import type { TemplateHandle } from '../templates/define.js';

/** A problem as the preview shows it. */
export interface PreviewProblem {
  readonly message: string;
  readonly template?: string;
  readonly field?: string;
  readonly file?: string;
  readonly line?: number;
}

const PARTS = {
  subject: 'subject.eta',
  html: 'html.eta',
  text: 'text.eta',
  preheader: 'preheader.eta',
} as const;
type Part = keyof typeof PARTS;

/** Describes any error; with the template's handle and data, finds the file and line it came from. */
export function describeProblem(
  error: unknown,
  where: { template?: string; file?: string; handle?: TemplateHandle; data?: unknown } = {},
): PreviewProblem {
  const message = cleanMessage(error);
  const base: PreviewProblem = {
    message,
    ...(where.template ? { template: where.template } : {}),
    ...(where.file ? { file: where.file } : {}),
  };
  if (!isTemplateError(error)) return base;
  const withField = { ...base, template: error.template, ...(error.field ? { field: error.field } : {}) };
  const handle = where.handle;
  if (!handle || error.field) return withField;
  const part = (/^template "[^"]+": (subject|html|text|preheader): /.exec(error.message)?.[1] ??
    'html') as Part;
  const source = handle.source[part];
  if (typeof source !== 'string') return withField;
  const dir = handle.source.file ? join(handle.source.file, '..') : undefined;
  const line = findLine(source, where.data);
  return {
    ...withField,
    ...(dir ? { file: join(dir, PARTS[part]) } : {}),
    ...(line === undefined ? {} : { line }),
  };
}

/** The first lines of an error's message, without the compiled function eta appends. */
function cleanMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (
    text
      .split(/\n={3,}/)[0]!
      .replace(/\n{2,}/g, ': ')
      .trim()
      .slice(0, 500) || 'unknown error'
  );
}

/** The line of `source` at fault: eta's own "line N", else the first prefix that fails to compile. */
function findLine(source: string, data: unknown): number | undefined {
  const eta = new Eta({ useWith: false, debug: true, autoTrim: false });
  for (const [name, partial] of builtinAssets().partials) eta.loadTemplate(`@${name}`, partial);
  try {
    eta.renderString(source, { app: { colors: {} }, ...(data as object) });
    return undefined;
  } catch (error) {
    const said = /line (\d+)/.exec((error as Error).message);
    if (said) return Number(said[1]);
  }
  // A JavaScript syntax error inside a tag: the first prefix of lines that fails other than by
  // ending too soon holds the mistake.
  const lines = source.split('\n');
  for (let n = 1; n <= lines.length; n++) {
    try {
      eta.compile(lines.slice(0, n).join('\n'));
    } catch (error) {
      const text = (error as Error).message;
      if (!/end of input|unclosed|missing \) after|Unterminated/i.test(text)) return n;
    }
  }
  return undefined;
}
