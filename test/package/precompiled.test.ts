/**
 * The built-in emails as precompiled into the build (dist/builtin-templates.json) render byte for
 * byte what compiling them from source renders: every built-in, several brands, the preview data
 * sets, from the ESM and the CJS build. The source side is this process (src/ has no precompiled
 * file, so it compiles from source); the built side is a fresh node on dist/, which also reports
 * whether it loaded juice, so a build that silently compiled from source cannot pass. Needs a fresh
 * `dist/` (`npm run build`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EmailService, type EmailServiceOptions, memoryTransport } from '../../src/index.js';
import { repo, run, show } from './run.js';

const CHILD = 60_000;

type Brand = Pick<EmailServiceOptions, 'appName' | 'brand' | 'replyTo' | 'unsubscribe'>;

/** Brands the precompiled form serves, and one it must hand back to compiling from source. */
const BRANDS: Record<string, { options: Brand; precompiled: boolean }> = {
  'default palette': { options: {}, precompiled: true },
  'custom colours': {
    options: {
      brand: {
        colors: {
          primary: '#FF5A00',
          text: '#111',
          muted: '#6c757d',
          background: '#FFF',
          surface: '#FAFAFA',
          border: '#ddd',
          success: '#0a0',
          danger: '#DC143C',
        },
        darkColors: { primary: '#FF8A50', background: '#000', text: '#EEE' },
      },
    },
    precompiled: true,
  },
  'a logo, a home page, a name to escape, a reply-to': {
    options: {
      appName: 'Ada & "Co" <Mail>',
      brand: { logoUrl: 'https://cdn.acme.example/logo.png?v=2&s=1', url: 'https://acme.example/' },
      replyTo: 'help@acme.example',
    },
    precompiled: true,
  },
  'a company, an address and a support link': {
    options: {
      brand: {
        company: 'Acme & Sons <Ltd>',
        address: '1 Market Street, San Francisco',
        supportUrl: 'https://acme.example/help?a=1&b=2',
      },
    },
    precompiled: true,
  },
  'a support address': { options: { brand: { supportEmail: 'help@acme.example' } }, precompiled: true },
  // Product mail renders the @unsubscribe partial in the layout's footer (the URL a placeholder).
  "the footer's unsubscribe links": {
    options: {
      unsubscribe: {
        url: 'https://acme.example/unsubscribe',
        secrets: ['precompiled-secret-precompiled-secret-precompiled'],
        manageUrl: 'https://acme.example/settings?tab=mail&x=1',
      },
    },
    precompiled: true,
  },
};

/** Every built-in with each of its preview data sets (templates/<name>/preview/*.json). */
function dataSets(): [string, Record<string, unknown>][] {
  const root = join(repo, 'templates');
  const sets: [string, Record<string, unknown>][] = [];
  for (const name of readdirSync(root)) {
    const dir = join(root, name, 'preview');
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      sets.push([name, JSON.parse(readFileSync(join(dir, file), 'utf8'))]);
    }
  }
  return sets;
}

/** The script both sides run: `{ brand: [[subject, html, text], …] }` for every brand and data set. */
const RENDER = `(EmailService, memoryTransport, brands, sets) => {
  const out = {};
  for (const [brand, { options }] of Object.entries(brands)) {
    // A preference store, as unsubscribe requires (render never asks it).
    const preferences = { get: async () => undefined, set: async () => {}, list: async () => [] };
    const service = new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', preferences, ...options });
    out[brand] = sets.map(([name, data]) => {
      const email = service.render(name, data);
      return [email.subject, email.html, email.text];
    });
  }
  return out;
}`;
type Rendered = Record<string, [string, string, string][]>;

async function renderBuilt(
  format: 'esm' | 'cjs',
  brands: typeof BRANDS,
): Promise<{ out: Rendered; juice: boolean }> {
  if (!existsSync(join(repo, 'dist', 'builtin-templates.json'))) {
    throw new Error('dist/ is missing or stale (no builtin-templates.json): run `npm run build` first.');
  }
  const load =
    format === 'esm'
      ? `await import(${JSON.stringify(pathToFileURL(join(repo, 'dist', 'index.js')).href)})`
      : `require(${JSON.stringify(join(repo, 'dist', 'index.cjs'))})`;
  const code = `(async () => {
  const { EmailService, memoryTransport } = ${load};
  const out = (${RENDER})(EmailService, memoryTransport, ${JSON.stringify(brands)}, ${JSON.stringify(dataSets())});
  const juice = Object.keys(require.cache).some((file) => /[\\\\/]node_modules[\\\\/]juice[\\\\/]/.test(file));
  process.stdout.write(JSON.stringify({ out, juice }));
})().catch((error) => { console.error(error); process.exit(1); });`;
  const result = await run(process.execPath, ['-e', code], { cwd: repo });
  if (result.code !== 0) throw new Error(show(result));
  return JSON.parse(result.stdout);
}

// The same function text the child process runs.
const renderSource = new Function(`return ${RENDER}`)() as (...args: unknown[]) => Rendered;

describe('the precompiled built-ins', () => {
  it('cover every built-in folder with preview data', () => {
    expect(new Set(dataSets().map(([name]) => name))).toEqual(
      new Set(new EmailService({ transport: memoryTransport(), from: 'a@acme.example' }).templates.names()),
    );
  });

  describe.each(['esm', 'cjs'] as const)('%s build', (format) => {
    for (const [name, brand] of Object.entries(BRANDS)) {
      it(
        `${name}: renders subject, HTML and text byte for byte as compiling from source does`,
        async () => {
          const built = await renderBuilt(format, { [name]: brand });
          const source = renderSource(EmailService, memoryTransport, { [name]: brand }, dataSets());
          // Precompiled means no juice; a brand it cannot serve compiles from source with juice.
          expect(built.juice).toBe(!brand.precompiled);
          const sets = dataSets();
          built.out[name]!.forEach(([subject, html, text], i) => {
            const [want, data] = [source[name]![i]!, sets[i]!];
            const where = `${data[0]} ${JSON.stringify(data[1])}`;
            expect(subject, where).toBe(want[0]);
            expect(html, where).toBe(want[1]);
            expect(text, where).toBe(want[2]);
          });
          expect(built.out[name]).toHaveLength(sets.length);
        },
        CHILD,
      );
    }
  });
});
