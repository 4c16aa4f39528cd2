/**
 * Internal: the compile-time check that a template only reads names it has. `it.totl` for a field
 * `total` would otherwise render "Total: undefined" and send it.
 */
import { nearest } from '../did-you-mean.js';
import { TemplateError } from '../errors.js';
import type { TemplateHandle } from './define.js';
import { PART_FILES, type Part, partFile } from './diagnose.js';
import { blankLiterals, lineAt, scanTags } from './scan.js';
import { guardUrlSlots, scanUrls } from './urls.js';

/**
 * What a template's `it` holds besides its fields: the brand and what mailroom sets. (`it.body` and
 * `it.preheader` are the layout's, placed before rendering: in a template they would print "undefined".)
 */
export const CONTEXT_NAMES: readonly string[] = ['app', 'hasReplyTo', 'unsubscribe', 'locale', 'dir'];

/** `it.name`, `it?.name`, `it['name']`, `it?.["name"]` (found on code with its strings blanked). */
const REFERENCE =
  /(?<![\w$.])it\s*(?:(?:\?\.|\.)\s*([A-Za-z_$][\w$]*)|(?:\?\.\s*)?\[\s*(["'])([^"'\n]*)\2\s*\])/g;

/**
 * Throws a {@link TemplateError} naming the part (or file), the line and the closest declared
 * field for the first `it.` name in the template's own sources that is neither a field nor context.
 * Layouts and partial bodies are not checked: they read their own names (a partial's arguments).
 */
export function checkReferences(handle: TemplateHandle): void {
  const known = new Set([...Object.keys(handle.fields), ...CONTEXT_NAMES]);
  for (const part of Object.keys(PART_FILES) as Part[]) {
    const source = handle.source[part];
    if (typeof source !== 'string') continue;
    for (const tag of scanTags(source)) {
      const code = blankLiterals(tag.code);
      for (const match of code.matchAll(REFERENCE)) {
        // A quoted name is blanked in `code`: read it from the original.
        const name =
          match[1] ?? tag.code.slice(match.index + match[0].indexOf(match[2]!) + 1).split(match[2]!)[0]!;
        if (known.has(name)) continue;
        const file = partFile(handle, part);
        const suggestion = closest(name, Object.keys(handle.fields));
        throw new TemplateError(
          handle.name,
          `it.${name} is not a field of this template (${
            suggestion
              ? `did you mean it.${suggestion}?`
              : `fields: ${Object.keys(handle.fields).join(', ') || 'none'}`
          })`,
          { part, ...(file ? { file } : {}), line: lineAt(source, tag.codeStart + match.index) },
        );
      }
    }
  }
}

/** The candidate nearest to `name` by edit distance, when near enough to be a typo. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  const { candidate, distance } = nearest(name, candidates);
  return candidate !== undefined && distance <= Math.max(1, Math.min(3, Math.floor(name.length / 3)))
    ? candidate
    : undefined;
}

/** Refuses a URL attribute in the template's own HTML or preheader that cannot be checked, with its line. */
export function checkUrls(handle: TemplateHandle): void {
  for (const part of ['html', 'preheader'] as const) {
    const source = handle.source[part];
    if (typeof source !== 'string') continue;
    const problem = scanUrls(source).problems[0];
    if (!problem) continue;
    const file = partFile(handle, part);
    throw new TemplateError(handle.name, problem.message, {
      part,
      ...(file ? { file } : {}),
      line: lineAt(source, problem.offset),
    });
  }
}

/** The composed HTML with every URL placed by data checked per message (a layout's or partial's too). */
export function guardUrls(template: string, html: string): string {
  const { slots, problems } = scanUrls(html);
  if (problems[0]) throw new TemplateError(template, `${problems[0].message} (in the layout or a partial)`);
  return guardUrlSlots(html, slots);
}
