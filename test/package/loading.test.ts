/**
 * What the built package loads, in fresh node processes: importing it and rendering and sending the
 * built-in emails with the memory transport loads none of juice, html-to-text and nodemailer; the
 * sandbox and SMTP transports load nodemailer, a template with its own CSS loads juice. Needs a
 * fresh `dist/` (`npm run build`).
 *
 * How a load is seen on Node 20: `module.registerHooks` (synchronous, in-thread) is Node 22.15+,
 * and `process.moduleLoadList` lists only Node's own modules. So a resolve hook registered with
 * `module.register` (Node 20.6+, run on the loader thread, writing straight to stdout) sees every
 * ES module, and `require.cache` holds every CommonJS one, including those `createRequire` loads
 * and those a CommonJS dependency requires. A control shows the check sees both kinds.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repo, run, show } from './run.js';

const CHILD = 60_000;
const WATCHED = ['juice', 'html-to-text', 'nodemailer'] as const;
type Watched = (typeof WATCHED)[number];

const esmEntry = pathToFileURL(join(repo, 'dist', 'index.js')).href;
const cjsEntry = join(repo, 'dist', 'index.cjs');
const HOOK = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  writeSync(1, 'loaded ' + result.url + '\\n');
  return result;
}`;

/**
 * Runs `body` (an async function body, with `mailroom` the package loaded from dist by ESM
 * `import()` or CJS `require()`) in a fresh node, and returns which watched packages it loaded.
 */
async function loadedBy(format: 'esm' | 'cjs', body: string): Promise<Set<Watched>> {
  if (!existsSync(join(repo, 'dist', 'builtin-templates.json'))) {
    throw new Error('dist/ is missing or stale (no builtin-templates.json): run `npm run build` first.');
  }
  const load =
    format === 'esm' ? `await import(${JSON.stringify(esmEntry)})` : `require(${JSON.stringify(cjsEntry)})`;
  const code = `const { register } = require('node:module');
const { pathToFileURL } = require('node:url');
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)});
(async () => {
  const mailroom = ${load};
  ${body}
  for (const file of Object.keys(require.cache)) console.log('loaded ' + pathToFileURL(file).href);
  console.log('done');
})().catch((error) => { console.error(error); process.exit(1); });`;
  const result = await run(process.execPath, ['-e', code], { cwd: repo });
  if (result.code !== 0 || !result.stdout.includes('done')) throw new Error(show(result));
  const urls = result.stdout.split('\n').filter((line) => line.startsWith('loaded '));
  return new Set(WATCHED.filter((pkg) => urls.some((url) => url.includes(`/node_modules/${pkg}/`))));
}

/** Renders and sends every built-in email with the memory transport. */
const SEND_BUILTINS = `
  const service = new mailroom.EmailService({ transport: mailroom.memoryTransport(), from: 'Acme <no-reply@acme.example>' });
  const to = 'jane@example.com';
  await service.sendVerificationEmail({ to, username: 'Jane', verificationUrl: 'https://acme.example/v?t=1' });
  await service.sendPasswordResetEmail({ to, username: 'Jane', resetUrl: 'https://acme.example/r?t=1', expiresInMinutes: 30 });
  await service.sendWelcomeEmail({ to, username: 'Jane', actionUrl: 'https://acme.example/start' });
  for (const name of service.templates.names()) service.templates.compiled(name);
  if (service.transport.outbox.length !== 3) throw new Error('not sent');
`;

describe('the built package loads juice, html-to-text and nodemailer only when used', () => {
  it(
    'the check sees an ES module, a CommonJS one, and not what was not loaded (control)',
    async () => {
      const seen = await loadedBy('esm', `await import('nodemailer'); require('html-to-text');`);
      expect([...seen].sort()).toEqual(['html-to-text', 'nodemailer']);
    },
    CHILD,
  );

  it.each(['esm', 'cjs'] as const)(
    '%s: import, then render and send every built-in with the memory transport: none of them',
    async (format) => {
      expect([...(await loadedBy(format, SEND_BUILTINS))]).toEqual([]);
    },
    CHILD,
  );

  it.each(['esm', 'cjs'] as const)(
    '%s: sending with the sandbox transport loads nodemailer (MIME), not juice',
    async (format) => {
      const body = `
        const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'mailroom-loading-'));
        const service = new mailroom.EmailService({ transport: mailroom.sandboxTransport({ dir, onFirstWrite: false }), from: 'Acme <no-reply@acme.example>' });
        await service.sendVerificationEmail({ to: 'jane@example.com', username: 'Jane', verificationUrl: 'https://acme.example/v?t=1' });
        require('node:fs').rmSync(dir, { recursive: true });`;
      expect([...(await loadedBy(format, body))]).toEqual(['nodemailer']);
    },
    CHILD,
  );

  it.each(['esm', 'cjs'] as const)(
    '%s: building the SMTP transport loads nodemailer',
    async (format) => {
      const body = `mailroom.smtpTransport({ host: '127.0.0.1', port: 2525, tls: 'none' });`;
      expect([...(await loadedBy(format, body))]).toEqual(['nodemailer']);
    },
    CHILD,
  );

  it.each(['esm', 'cjs'] as const)(
    '%s: a template of your own with its own CSS loads juice and html-to-text when it compiles',
    async (format) => {
      const body = `
        const invoice = mailroom.defineTemplate({ name: 'invoice', fields: { total: 'string' },
          subject: 'Invoice', html: '<p class="total">Total: <%= it.total %></p>', css: '.total { font-weight: bold; }' });
        const service = new mailroom.EmailService({ transport: mailroom.memoryTransport(), from: 'Acme <no-reply@acme.example>', templates: [invoice] });
        const email = service.render(invoice, { total: '$3' });
        if (!email.html.includes('font-weight: bold')) throw new Error('not inlined');`;
      expect([...(await loadedBy(format, body))].sort()).toEqual(['html-to-text', 'juice']);
    },
    CHILD,
  );

  it.each([
    ['a css option', `css: '.card { border: 0; }'`],
    ['a replaced @button partial', `partials: { button: '<a href="<%= it.url %>"><%= it.label %></a>' }`],
    [
      'a replaced default layout',
      `layouts: { default: '<html><body><%~ it.preheader %><%~ it.body %></body></html>' }`,
    ],
  ])(
    'a built-in with %s compiles from source: juice and html-to-text load',
    async (_, option) => {
      const body = `
      const service = new mailroom.EmailService({ transport: mailroom.memoryTransport(), from: 'Acme <no-reply@acme.example>', ${option} });
      service.render('verification', { username: 'Jane', verificationUrl: 'https://acme.example/v?t=1' });`;
      expect([...(await loadedBy('esm', body))].sort()).toEqual(['html-to-text', 'juice']);
    },
    CHILD,
  );
});
