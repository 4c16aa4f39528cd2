/**
 * The template editor in Chromium: a folder template (the invoice fixture, copied to a temp dir)
 * edited in the page renders before it is saved, saves only the files that changed, refuses to
 * save a template that does not compile, and a new template comes from the starter. Editing is
 * refused from another origin, over a name that is not loopback, and in production.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memoryTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { launchChromium, measureTextContrast } from '../helpers/chromium.js';

const fixture = fileURLToPath(new URL('../fixtures/templates/invoice', import.meta.url));
const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));
const TOKEN = 'editor-test-token-1';

let root: string;
let templatesDir: string;
let invoice: string;
let handler: PreviewHandler;
let server: Server;
let port: number;
let base: string;
let browser: Browser;

/** Every file under `dir` with its text and mtime, to see which ones a save touched. */
async function snapshot(dir: string): Promise<Map<string, { text: string; mtime: number }>> {
  const files = new Map<string, { text: string; mtime: number }>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length + 1), {
      text: await readFile(path, 'utf8'),
      mtime: (await stat(path)).mtimeMs,
    });
  }
  return files;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailroom-editor-browser-'));
  templatesDir = join(root, 'templates');
  invoice = join(templatesDir, 'invoice');
  await cp(fixture, invoice, { recursive: true });
  handler = createPreviewHandler({
    enabled: true,
    service: { transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', appName: 'Acme' },
    templatesDir,
    outboxDir: join(root, 'outbox'),
    allowedHosts: ['mail.test'],
    token: TOKEN,
  });
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}/`;
  browser = await launchChromium("the template editor's browser test", [
    '--host-resolver-rules=MAP mail.test 127.0.0.1',
  ]);
});

afterAll(async () => {
  await browser?.close();
  handler?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  if (root) await rm(root, { recursive: true, force: true });
});

let context: BrowserContext;
let page: Page;
beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
});
afterEach(async () => {
  await context?.close();
});

const WAIT = { timeout: 8_000 };
// biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator; the rendered text is what a person sees
const shown = (locator: Locator) => locator.innerText({ timeout: 500 }).catch(() => '');
const draft = () => page.frameLocator('#editor-frame');
const frame = () => page.frameLocator('#frame');

/** The editor's text meets WCAG 2.1 AA (4.5:1), `texts` among what was measured. */
async function expectReadable(texts: string[]): Promise<void> {
  await page.mouse.move(900, 700); // nothing hovered
  const measured = await measureTextContrast(page);
  expect(measured.failing).toEqual([]);
  for (const text of texts) expect(measured.texts).toContainEqual(expect.objectContaining({ text }));
}

async function open(url = `${base}?token=${TOKEN}`, template = 'invoice'): Promise<void> {
  await page.goto(`${url}#template/${template}`);
  await expect.poll(() => shown(page.locator('#title')), WAIT).toBe(template);
}

/** POSTs JSON with the headers given (a forged request sets what a browser would not). */
function post(
  path: string,
  headers: Record<string, string>,
  body: unknown,
  to = port,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: to,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function get(path: string, host = `127.0.0.1:${port}`, to = port): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: to, path, headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    })
      .on('error', reject)
      .end();
  });
}

const SAVE_BODY = {
  template: 'invoice',
  files: { 'subject.eta': 'Forged <%= it.number %>', 'html.eta': '<p>forged</p>' },
};

describe('the template editor in Chromium', () => {
  it('renders unsaved edits of the subject and the HTML, then saves only the files that changed', async () => {
    const before = await snapshot(invoice);
    await open();
    expect(await page.locator('#edit').isVisible()).toBe(true);
    await page.click('#edit');
    await expect.poll(() => shown(draft().locator('h1')), WAIT).toBe('Invoice INV-2026-0042');
    expect(await page.locator('#editor [data-file="html.eta"]').inputValue()).toContain('<h1>Invoice');

    const badge = page.locator('[data-template="invoice"] + .badge.checks');
    await expect.poll(() => shown(badge), WAIT).toBe('1 warning'); // no preheader
    await page.fill('#editor [data-file="subject.eta"]', 'Your bill <%= it.number %> is ready');
    await page.fill('#editor [data-file="preheader.eta"]', 'Pay by card in one click.');
    const html = (await readFile(join(invoice, 'html.eta'), 'utf8')).replace(
      '<h1>Invoice <%= it.number %></h1>',
      '<h1>Bill <%= it.number %></h1>\n<p id="thanks">Thank you for your business.</p>',
    );
    await page.fill('#editor [data-file="html.eta"]', html);
    // The render changes before anything is saved.
    await expect.poll(() => shown(draft().locator('h1')), WAIT).toBe('Bill INV-2026-0042');
    await expect.poll(() => shown(draft().locator('#thanks')), WAIT).toBe('Thank you for your business.');
    await expect
      .poll(() => shown(page.locator('#editor-subject')), WAIT)
      .toBe('Subject: Your bill INV-2026-0042 is ready');
    expect(await snapshot(invoice)).toEqual(before);
    await page.screenshot({ path: join(artifacts, 'editor-unsaved.png') });

    await page.click('#editor-save');
    await expect
      .poll(() => shown(page.locator('#editor-status')), WAIT)
      .toBe('Saved subject.eta, preheader.eta, html.eta');
    await expectReadable(['Save', 'Close']);
    const after = await snapshot(invoice);
    expect(after.get('subject.eta')?.text).toBe('Your bill <%= it.number %> is ready');
    expect(after.get('html.eta')?.text).toBe(html);
    const touched = [...after.keys()].filter((file) => {
      const old = before.get(file);
      return !old || old.text !== after.get(file)?.text || old.mtime !== after.get(file)?.mtime;
    });
    expect(touched.sort()).toEqual(['html.eta', 'preheader.eta', 'subject.eta']);
    expect(after.get('preheader.eta')?.text).toBe('Pay by card in one click.');
    // No temp file left beside them.
    expect([...after.keys()].sort()).toEqual([...before.keys(), 'preheader.eta'].sort());

    // The page's own view reads the new files: close the editor and see them.
    await page.click('#editor-close');
    await expect
      .poll(() => shown(page.locator('#subject')), WAIT)
      .toBe('Subject: Your bill INV-2026-0042 is ready');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Bill INV-2026-0042');
    // The sidebar's badge checked the saved files: the preheader warning is gone.
    await expect.poll(() => shown(badge), WAIT).toBe('checks ok');

    await page.reload();
    await expect
      .poll(() => shown(page.locator('#subject')), WAIT)
      .toBe('Subject: Your bill INV-2026-0042 is ready');
    await expect.poll(() => shown(frame().locator('#thanks')), WAIT).toBe('Thank you for your business.');
  });

  it('shows a syntax error at its file and line, and saves nothing', async () => {
    const before = await snapshot(invoice);
    await open();
    await page.click('#edit');
    await expect.poll(() => shown(draft().locator('h1')), WAIT).not.toBe('');
    const html = await page.locator('#editor [data-file="html.eta"]').inputValue();
    await page.fill('#editor [data-file="html.eta"]', `${html}\n<p>\n<% if (it.amount) { %>\nunclosed\n`);
    const lines = html.split('\n').length;
    await expect.poll(() => shown(page.locator('#editor-problem')), WAIT).toContain('html.eta');
    const problem = await shown(page.locator('#editor-problem'));
    expect(problem).toContain(`${join(invoice, 'html.eta')}, line ${lines + 2}`);
    expect(problem).toMatch(/never closed/);
    await page.screenshot({ path: join(artifacts, 'editor-syntax-error.png') });

    await page.click('#editor-save');
    await expect
      .poll(() => shown(page.locator('#editor-status')), WAIT)
      .toBe('Not saved: it does not compile');
    expect(await snapshot(invoice)).toEqual(before);
    await expectReadable(['Not saved: it does not compile']);

    // A data set that is not JSON is refused the same way, at its own file.
    await page.fill('#editor [data-file="html.eta"]', html);
    await page.fill('#editor [data-set="default"]', '{\n  "number": "X",\n  oops\n}');
    await expect
      .poll(() => shown(page.locator('#editor-problem')), WAIT)
      .toContain(`${join(invoice, 'preview', 'default.json')}, line 3`);
    await page.click('#editor-save');
    await expect
      .poll(() => shown(page.locator('#editor-status')), WAIT)
      .toBe('Not saved: it does not compile');
    expect(await snapshot(invoice)).toEqual(before);
  });

  it('creates a template from the starter, refusing a bad or existing name', async () => {
    await open();
    expect(await page.locator('#new-template').isVisible()).toBe(true);
    await page.fill('#new-name', '../evil');
    await page.click('#new-create');
    await expect.poll(() => shown(page.locator('#new-result')), WAIT).toMatch(/not a valid template name/);
    await page.fill('#new-name', 'invoice');
    await page.click('#new-create');
    await expect.poll(() => shown(page.locator('#new-result')), WAIT).toMatch(/exists already/);
    expect(await readdir(templatesDir)).toEqual(['invoice']);

    await page.fill('#new-name', 'welcome-back');
    await page.click('#new-create');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('welcome-back');
    await expect.poll(() => page.locator('[data-template="welcome-back"]').count(), WAIT).toBe(1);
    await expect.poll(() => shown(page.locator('#subject')), WAIT).toBe('Subject: Hello Jane');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Hello Jane');
    expect((await readdir(join(templatesDir, 'welcome-back'), { recursive: true })).sort()).toEqual([
      'html.eta',
      'preview',
      join('preview', 'default.json'),
      'subject.eta',
      'template.json',
    ]);
  });

  it('has no Edit button for a built-in template, and says why', async () => {
    await open(undefined, 'welcome');
    await expect.poll(() => shown(page.locator('#edit-why')), WAIT).toMatch(/built-in template/);
    expect(await page.locator('#edit').isVisible()).toBe(false);
    const answer = await post(
      '/api/edit/save',
      { origin: base.slice(0, -1), 'x-mailroom-token': TOKEN },
      { template: 'welcome', files: { 'subject.eta': 'x' } },
    );
    expect(answer.status).toBe(403);
  });

  it('renders a request that sends only the file it changed, with the data sets on disk', async () => {
    const answer = await post(
      '/api/edit/render',
      { origin: base.slice(0, -1), 'x-mailroom-token': TOKEN },
      { template: 'invoice', set: 'huge-amount', files: { 'subject.eta': 'Only <%= it.amount %>' } },
    );
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.body);
    expect(body.problem).toBeUndefined();
    expect(body.subject).toBe('Only €1,234,567,890.99');
    const html = await get(`/${body.frame}`);
    expect(html.status).toBe(200);
    expect(html.body).toContain('€1,234,567,890.99');
  });

  it('refuses a forged cross-origin save (403) and writes nothing', async () => {
    const before = await snapshot(invoice);
    const forged = await post(
      '/api/edit/save',
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', 'x-mailroom-token': TOKEN },
      SAVE_BODY,
    );
    expect(forged.status).toBe(403);
    const noOrigin = await post('/api/edit/save', { 'x-mailroom-token': TOKEN }, SAVE_BODY);
    expect(noOrigin.status).toBe(403);
    // The preview has a token: the same origin without it is refused too.
    const noToken = await post('/api/edit/save', { origin: base.slice(0, -1) }, SAVE_BODY);
    expect(noToken.status).toBe(403);
    expect(await snapshot(invoice)).toEqual(before);

    // From a page on another origin in Chromium: the browser's own request, refused.
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>evil</title>');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      const status = await page.evaluate(
        async ([url, body]) => {
          const r = await fetch(url as string, {
            method: 'POST',
            mode: 'no-cors',
            headers: { 'content-type': 'text/plain' },
            body: JSON.stringify(body),
          }).catch(() => undefined);
          return r?.type;
        },
        [`${base}api/edit/save`, SAVE_BODY] as const,
      );
      expect(status).toBe('opaque');
    } finally {
      evil.closeAllConnections();
      await new Promise((resolve) => evil.close(resolve));
    }
    expect(await snapshot(invoice)).toEqual(before);
  });

  it('refuses editing over a name that is not loopback, even with the token', async () => {
    const before = await snapshot(invoice);
    const list = JSON.parse((await get('/api/templates', `mail.test:${port}`)).body);
    expect(list.editing).toMatchObject({ allowed: false, canCreate: false });
    expect(list.editing.why).toMatch(/loopback/);
    expect((await get('/api/edit/invoice', `mail.test:${port}`)).status).toBe(403);
    const answer = await post(
      '/api/edit/save',
      { host: `mail.test:${port}`, origin: `http://mail.test:${port}`, 'x-mailroom-token': TOKEN },
      SAVE_BODY,
    );
    expect(answer.status).toBe(403);
    expect(answer.body).toMatch(/loopback/);
    expect(await snapshot(invoice)).toEqual(before);

    await open(`http://mail.test:${port}/?token=${TOKEN}`);
    await expect.poll(() => shown(page.locator('#subject')), WAIT).not.toBe('');
    expect(await page.locator('#edit').isVisible()).toBe(false);
    expect(await page.locator('#new-template').isVisible()).toBe(false);
  });

  it('refuses editing while the server listens beyond loopback, even to a loopback request', async () => {
    const wide = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => wide.listen(0, '0.0.0.0', resolve));
    const to = (wide.address() as AddressInfo).port;
    try {
      const list = JSON.parse((await get('/api/templates', `127.0.0.1:${to}`, to)).body);
      expect(list.editing.allowed).toBe(false);
      expect(list.editing.why).toMatch(/listens on 0\.0\.0\.0/);
      const origin = { origin: `http://127.0.0.1:${to}`, 'x-mailroom-token': TOKEN };
      expect((await post('/api/edit/save', origin, SAVE_BODY, to)).status).toBe(403);
      // The same handler on the loopback server still edits: the refusal is about the listener.
      expect(JSON.parse((await get('/api/templates')).body).editing.allowed).toBe(true);
    } finally {
      wide.closeAllConnections();
      await new Promise((resolve) => wide.close(resolve));
    }
  });

  it('refuses editing with NODE_ENV=production, even when the preview is forced on', async () => {
    const before = await snapshot(invoice);
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    const forced = createPreviewHandler({
      enabled: true,
      force: true,
      service: { transport: memoryTransport(), from: 'Acme <no-reply@acme.example>' },
      templatesDir,
      outboxDir: join(root, 'outbox'),
      watch: false,
    });
    const prod = createServer((req, res) => forced(req, res));
    await new Promise<void>((resolve) => prod.listen(0, '127.0.0.1', resolve));
    const to = (prod.address() as AddressInfo).port;
    const origin = { origin: `http://127.0.0.1:${to}` };
    try {
      const list = JSON.parse((await get('/api/templates', `127.0.0.1:${to}`, to)).body);
      expect(list.editing).toMatchObject({ allowed: false });
      expect(list.templates.find((t: { name: string }) => t.name === 'invoice').editable).toBe(false);
      const answer = await post('/api/edit/save', origin, SAVE_BODY, to);
      expect(answer.status).toBe(403);
      expect(answer.body).toMatch(/production/);
      expect((await post('/api/edit/new', origin, { name: 'prod-made' }, to)).status).toBe(403);
      expect((await post('/api/edit/render', origin, SAVE_BODY, to)).status).toBe(403);
    } finally {
      process.env.NODE_ENV = saved;
      forced.close();
      prod.closeAllConnections();
      await new Promise((resolve) => prod.close(resolve));
    }
    expect(await snapshot(invoice)).toEqual(before);
    expect(await readdir(templatesDir)).not.toContain('prod-made');
  });
});
