/**
 * Turns an error from defining, compiling or rendering a template into what a person needs on the
 * page: the message, and where possible the file and line. Mistakes found when compiling carry
 * their own part, file and line (the same diagnosis the API gives, see templates/diagnose.ts);
 * for an error while rendering, the line is found again by rendering the file's own source.
 */
import { isTemplateError } from '../errors.js';
import { builtinAssets } from '../templates/builtins.js';
import { debugEta } from '../templates/compile.js';
import type { TemplateHandle } from '../templates/define.js';
import { partFile } from '../templates/diagnose.js';

/** A problem as the preview shows it. */
export interface PreviewProblem {
  readonly message: string;
  readonly template?: string;
  readonly field?: string;
  readonly file?: string;
  readonly line?: number;
}

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
  if (error.line !== undefined || error.file !== undefined) {
    return {
      ...withField,
      ...(error.file ? { file: error.file } : {}),
      ...(error.line ? { line: error.line } : {}),
    };
  }
  const handle = where.handle;
  if (!handle || error.field) return withField;
  const source = handle.source.html;
  const file = partFile(handle, 'html');
  const line = findLine(source, where.data);
  return { ...withField, ...(file ? { file } : {}), ...(line === undefined ? {} : { line }) };
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

/** The line of `source` at fault while rendering, as eta's debug mode reports it. */
function findLine(source: string, data: unknown): number | undefined {
  const eta = debugEta();
  for (const [name, partial] of builtinAssets().partials) eta.loadTemplate(`@${name}`, partial);
  try {
    eta.renderString(source, { app: { colors: {} }, ...(data as object) });
    return undefined;
  } catch (error) {
    const said = /line (\d+)/.exec((error as Error).message);
    if (said) return Number(said[1]);
  }
  return undefined;
}
