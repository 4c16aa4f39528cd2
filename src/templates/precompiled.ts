/**
 * Internal: the built-in emails as compiled when the package was built (`precompile.ts` writes
 * `dist/builtin-templates.json`): CSS already inlined and the text part already derived, so the
 * first render of a built-in costs an eta compile and never loads juice or html-to-text.
 *
 * The precompiled form is used only when it is exactly what compiling from source would give: the
 * built-in's sources, fields, layout, partials and stylesheet unchanged, no `css` option, and each
 * brand value the stylesheet reads a plain colour or word (the build checked that such values come
 * out byte for byte as from source). Anything else compiles from source. Running from `src/`
 * (tests, tsx) there is no file, so everything compiles from source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppInfo } from './brand.js';
import type { TemplateAssets, TemplateSources } from './compile.js';
import type { TemplateHandle } from './define.js';

/** The file's name, in `dist/`. */
export const PRECOMPILED_FILE = 'builtin-templates.json';

/** What `dist/builtin-templates.json` holds. */
export interface PrecompiledBuiltins {
  readonly version: 1;
  /** The layouts, partials and stylesheet the built-ins were compiled with. */
  readonly layouts: Readonly<Record<string, string>>;
  readonly partials: Readonly<Record<string, string>>;
  readonly css: string;
  /** The `it.app` values the stylesheet reads (`colors.primary`); the HTML reads them at render time. */
  readonly brandPaths: readonly string[];
  readonly templates: Readonly<
    Record<
      string,
      { readonly key: string; readonly subject: string; readonly html: string; readonly text: string | null }
    >
  >;
}

/**
 * Brand values that pass through juice and eta's escaping unchanged: hex colours, colour names,
 * numbers. The build checks samples of each; anything else (`rgb(…)`, quotes) compiles from source.
 */
const PLAIN = /^#?[A-Za-z0-9]{1,40}$/;

let loaded: PrecompiledBuiltins | null | undefined;

/** The precompiled sources of a built-in for this registry, or undefined to compile from source. */
export function precompiledSources(
  handle: TemplateHandle,
  assets: TemplateAssets,
  app: AppInfo,
): TemplateSources | undefined {
  loaded ??= readPrecompiled();
  const entry = loaded?.templates[handle.name];
  if (!loaded || !entry || entry.key !== sourceKey(handle)) return undefined;
  const { layout } = handle.source;
  if (layout !== false && assets.layouts.get(layout) !== loaded.layouts[layout]) return undefined;
  for (const [name, partial] of Object.entries(loaded.partials)) {
    if (assets.partials.get(name) !== partial) return undefined;
  }
  if (assets.css !== loaded.css) return undefined;
  if (!loaded.brandPaths.every((path) => isPlain(brandValue(app, path)))) return undefined;
  return { subject: entry.subject, html: entry.html, text: entry.text ?? undefined };
}

/** Everything about a template's definition that compiling reads (not the folder it came from). */
export function sourceKey(handle: TemplateHandle): string {
  const { subject, html, text, preheader, css, layout } = handle.source;
  return JSON.stringify([handle.fields, subject, html, text ?? null, preheader ?? null, css ?? null, layout]);
}

/** `app.colors.primary` for `colors.primary`. */
export function brandValue(app: AppInfo, path: string): unknown {
  let value: unknown = app;
  for (const key of path.split('.')) {
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  }
  return value;
}

function isPlain(value: unknown): boolean {
  return (typeof value === 'string' || typeof value === 'number') && PLAIN.test(String(value));
}

/** The file next to this module (dist/) or one folder up (dist/cli/); null when running from src/. */
function readPrecompiled(): PrecompiledBuiltins | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, dirname(here)]) {
    const file = join(dir, PRECOMPILED_FILE);
    if (!existsSync(file)) continue;
    const data = JSON.parse(readFileSync(file, 'utf8')) as PrecompiledBuiltins;
    return data.version === 1 ? data : null;
  }
  return null;
}
