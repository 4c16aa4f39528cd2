/**
 * Build step (`npm run build` runs `tsx src/templates/precompile.ts dist` after tsup): compiles each
 * built-in email with the built-in layout, partials and stylesheet, and writes the eta sources to
 * `dist/builtin-templates.json` for precompiled.ts. Not part of the package's code.
 *
 * The brand is not known here, so the stylesheet is rendered with an `it.app` whose every value
 * reads as a unique token; after juice has inlined it, each token becomes `<%= it.app.… %>` again
 * and the HTML reads the brand when it renders. A stylesheet that does more with a brand value than
 * print it (a condition, arithmetic, a method call) cannot be kept that way: the build fails, either
 * at once (the token refuses) or because the check at the end, which renders every built-in with
 * sample brands and data both ways, finds a byte that differs.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LINK_PLACEHOLDER } from '../unsubscribe/footer.js';
import { type AppInfo, DEFAULT_PALETTE, resolveBrand } from './brand.js';
import { builtinAssets, builtinTemplates, builtinTemplatesDir } from './builtins.js';
import {
  compileSources,
  compileTemplate,
  type RenderContext,
  renderStylesheet,
  type TemplateAssets,
  type TemplateSources,
  templateSources,
} from './compile.js';
import type { TemplateHandle } from './define.js';
import { sampleValue } from './fields.js';
import { builtinMessages } from './i18n.js';
import { PRECOMPILED_FILE, type PrecompiledBuiltins, sourceKey } from './precompiled.js';
import { templateCss } from './registry.js';

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** Compiles the given built-ins; throws when the result would differ from compiling from source. */
export function precompileBuiltins(
  handles: readonly TemplateHandle[],
  assets: TemplateAssets,
): PrecompiledBuiltins {
  const everything = [
    assets.css,
    ...assets.layouts.values(),
    ...assets.partials.values(),
    ...handles.map(sourceKey),
  ].join('\n');
  let prefix = 'mrbrand';
  while (everything.toLowerCase().includes(prefix)) prefix += 'q';
  const { app, paths } = tokenApp(prefix);
  const tokenCss = renderStylesheet(assets.css, app as AppInfo);
  const token = new RegExp(`${prefix}(\\d+)x`, 'g');
  const untoken = (source: string) => {
    const out = source.replace(token, (_, i: string) => `<%= it.app.${paths[Number(i)]} %>`);
    if (out.toLowerCase().includes(prefix)) {
      throw new Error(
        `precompile: a brand value in the stylesheet was changed by inlining: ${excerpt(out, prefix)}`,
      );
    }
    return out;
  };
  checkStylesheet(assets.css, tokenCss, token, paths);

  const templates: Record<string, PrecompiledBuiltins['templates'][string]> = {};
  for (const handle of handles) {
    const css = templateCss(handle, tokenCss, '');
    const tokenised = templateSources(handle, assets, css);
    const sources: TemplateSources = {
      subject: tokenised.subject,
      html: untoken(tokenised.html),
      text: tokenised.text === undefined ? undefined : untoken(tokenised.text),
    };
    checkTemplate(handle, assets, sources);
    templates[handle.name] = { key: sourceKey(handle), ...sources, text: sources.text ?? null };
  }
  return {
    version: 1,
    layouts: Object.fromEntries(assets.layouts),
    partials: Object.fromEntries(assets.partials),
    css: assets.css,
    brandPaths: paths,
    templates,
  };
}

/**
 * An `it.app` whose every value, printed, is a token naming its path (`mrbrand0x` for
 * `colors.primary`). Anything else a template could do with a value throws.
 */
function tokenApp(prefix: string): { app: object; paths: string[] } {
  const paths: string[] = [];
  const refuse = (path: string[], what: string): never => {
    throw new Error(
      `precompile: the built-in stylesheet ${what} it.app.${path.join('.')}; it may only print brand values`,
    );
  };
  const node = (path: string[]): object =>
    new Proxy(Object.create(null), {
      get(_, key) {
        if (key === Symbol.toPrimitive || key === 'toString') {
          return (hint?: string) => {
            if (hint === 'number') refuse(path, 'computes with');
            const joined = path.join('.');
            let i = paths.indexOf(joined);
            if (i < 0) i = paths.push(joined) - 1;
            return `${prefix}${i}x`;
          };
        }
        if (typeof key !== 'string' || !IDENT.test(key)) return refuse(path, `reads ${String(key)} of`);
        return node([...path, key]);
      },
      has: (_, key) => refuse(path, `tests "${String(key)}" in`),
      ownKeys: () => refuse(path, 'lists the keys of'),
      set: () => refuse(path, 'assigns to'),
    });
  return { app: node([]), paths };
}

/**
 * Sample brands, as the service resolves them: the defaults; every colour changed (light and dark),
 * a logo, a home page, a company, an address and a support link; a support address instead.
 */
export function sampleBrands(): AppInfo[] {
  const base = { senderName: 'Acme', senderAddress: 'no-reply@acme.example', year: 2026 };
  const colours = ['#FF5A00', '#0A0', '#1A2B3C', '#FFF', '#000', '#123ABC', '#C0FFEE', '#808'];
  const palette = (shift: number) =>
    Object.fromEntries(
      Object.keys(DEFAULT_PALETTE).map((key, i) => [key, colours[(i + shift) % colours.length]]),
    );
  return [
    { ...base, name: 'Acme', ...resolveBrand(undefined, 'Acme') },
    {
      ...base,
      name: 'Ada & "Co" <Mail>',
      ...resolveBrand(
        {
          logoUrl: 'https://cdn.acme.example/logo.png?v=1&size=2',
          url: 'https://acme.example/',
          company: 'Ada & "Co" <Mail> Inc.',
          address: '1 Market Street, San Francisco <CA>',
          supportUrl: 'https://acme.example/help?x=1&y=2',
          colors: palette(0),
          darkColors: palette(5),
        },
        'Ada & "Co" <Mail>',
      ),
    },
    {
      ...base,
      name: 'Acme',
      ...resolveBrand(
        { url: 'https://acme.example', supportEmail: 'help@acme.example', colors: palette(3) },
        'Acme',
      ),
    },
  ];
}

/** Data for a template: its preview sets, every field given, and only the required ones. */
export function sampleData(handle: TemplateHandle): Record<string, unknown>[] {
  const value = (kind: string, name: string): unknown =>
    kind === 'url'
      ? 'https://acme.example/a?token=abc&x=1'
      : kind === 'string'
        ? 'Ada <Lovelace> & "Co"'
        : kind === 'rows'
          ? [{ label: 'Ada <b> & "Co"', value: '1 < 2 & 3' }]
          : sampleValue(kind, name);
  const fields = Object.entries(handle.fields);
  const all = Object.fromEntries(
    fields.map(([field, spec]) => [field, value(spec.replace(/\?$/, ''), field)]),
  );
  const required = Object.fromEntries(
    fields.filter(([, spec]) => !spec.endsWith('?')).map(([f]) => [f, all[f]]),
  );
  const sets: Record<string, unknown>[] = [all, required, ...Object.values(handle.preview)];
  const dir = handle.source.file ? join(dirname(handle.source.file), 'preview') : undefined;
  if (dir && existsSync(dir)) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      sets.push(JSON.parse(readFileSync(join(dir, file), 'utf8')));
    }
  }
  return sets;
}

/** The tokenised stylesheet, each token replaced by a sample brand's value, is that brand's stylesheet. */
function checkStylesheet(css: string, tokenCss: string, token: RegExp, paths: readonly string[]): void {
  for (const brand of sampleBrands()) {
    const expected = renderStylesheet(css, brand);
    const got = tokenCss.replace(token, (_, i: string) => String(valueAt(brand, paths[Number(i)]!)));
    if (got !== expected) {
      throw new Error(
        'precompile: the built-in stylesheet does more with a brand value than print it (a condition?); ' +
          `with brand ${JSON.stringify(brand.name)} it differs at: ${excerpt(expected, firstDifference(got, expected))}`,
      );
    }
  }
}

/** Reply-To or not; the footer's unsubscribe links, with and without a settings page (`&` and quotes to escape). */
const SAMPLE_CONTEXTS: readonly RenderContext[] = [
  { hasReplyTo: false },
  { hasReplyTo: true },
  { hasReplyTo: false, unsubscribe: { url: LINK_PLACEHOLDER } },
  {
    hasReplyTo: true,
    unsubscribe: { url: 'https://acme.example/u?a=1&b=2', manageUrl: 'https://acme.example/s?x="1"&y=2' },
  },
];

/** Every shipped locale: translations are looked up at render time, so both ways must agree in each. */
function shippedLocales(): string[] {
  return [...builtinMessages(builtinTemplatesDir()).keys()].sort();
}

/** Every sample brand, data set, locale, reply-to setting and footer renders the same both ways, byte for byte. */
function checkTemplate(handle: TemplateHandle, assets: TemplateAssets, sources: TemplateSources): void {
  for (const app of sampleBrands()) {
    const fromSource = compileTemplate(
      handle,
      assets,
      app,
      templateCss(handle, renderStylesheet(assets.css, app), ''),
    );
    const precompiled = compileSources(handle, sources, assets, app);
    for (const data of sampleData(handle)) {
      for (const locale of shippedLocales()) {
        for (const sample of SAMPLE_CONTEXTS) {
          const context = { ...sample, locale };
          const want = fromSource.render(data, context);
          const got = precompiled.render(data, context);
          for (const part of ['subject', 'html', 'text'] as const) {
            if (got[part] !== want[part]) {
              throw new Error(
                `precompile: ${handle.name}'s ${part} in ${locale} with brand ${JSON.stringify(app.name)} differs ` +
                  `from compiling from source at: ${excerpt(want[part], firstDifference(got[part], want[part]))}`,
              );
            }
          }
        }
      }
    }
  }
}

function valueAt(app: AppInfo, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], app);
}

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

function excerpt(text: string, at: number | string): string {
  const i = typeof at === 'number' ? at : text.toLowerCase().indexOf(at);
  return JSON.stringify(text.slice(Math.max(0, i - 60), i + 60));
}

/** `tsx src/templates/precompile.ts <outDir>`: writes `<outDir>/builtin-templates.json`. */
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const outDir = resolve(process.argv[2] ?? 'dist');
  const result = precompileBuiltins(builtinTemplates(), builtinAssets());
  writeFileSync(join(outDir, PRECOMPILED_FILE), `${JSON.stringify(result)}\n`);
  console.log(
    `precompiled ${Object.keys(result.templates).join(', ')} into ${join(outDir, PRECOMPILED_FILE)}`,
  );
}
