/**
 * The preview page in a real browser (headless Chromium through playwright-core): what a person
 * sees when they pick templates, data sets, widths and tabs, open captured emails, edit a
 * template, or break one. Email HTML must never run a script, neither from a captured email nor
 * from a template's data.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmailService, memoryTransport, sandboxTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FROM = 'Acme <no-reply@acme.example>';
const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));
const readmeShot = fileURLToPath(new URL('../../examples/preview/screenshot.png', import.meta.url));

const INVOICE_HTML = `<p>Dear <%= it.customer %>,</p>
<h1>Invoice <%= it.number %></h1>
<p class="amount">Amount due: <%= it.amount %></p>
<%~ include('@button', { url: it.payUrl, label: 'Pay now' }) %>
`;
const HOSTILE_HTML =
  '<p id="x">hi</p><script>fetch("/pwned");window.top.__pwned=1;parent.__pwned=1</script><img src=x onerror="fetch(\'/pwned-img\')">';
const SCRIPT_IN_DATA = '<script>parent.__pwned=1</script>';

let root: string;
let templatesDir: string;
let outboxDir: string;
let handler: PreviewHandler;
let server: Server;
let base: string;
let browser: Browser;
/** Every path the server was asked for, in order. */
const requested: string[] = [];
const pwned = () => requested.filter((path) => path.startsWith('/pwned'));
const eventStreams = () => requested.filter((path) => path === '/events').length;

beforeAll(async () => {
  // No browser is a failure with a way out, never a skipped test.
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is needed for the preview's browser test and is not at ${CHROMIUM}: ` +
        'install it (apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary',
    );
  }
  root = await mkdtemp(join(tmpdir(), 'mailroom-preview-browser-'));
  templatesDir = join(root, 'templates');
  outboxDir = join(root, 'outbox');
  await mkdir(artifacts, { recursive: true });
  await mkdir(dirname(readmeShot), { recursive: true });

  // The outbox: real captures from the sandbox transport, the hostile one last (newest).
  const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from: FROM });
  await mail.sendVerificationEmail({
    to: 'jane@example.com',
    username: 'Jane',
    verificationUrl: 'https://acme.example/verify?token=3f9c2a71e8b04d65',
  });
  await new Promise((resolve) => setTimeout(resolve, 20)); // a later date, so it is listed first
  await mail.send({ to: 'jane@example.com', subject: 'Hostile <script>', html: HOSTILE_HTML, text: 'hostile' });

  // A user template with three data sets, one of them with a script in a field.
  const invoice = join(templatesDir, 'invoice');
  await mkdir(join(invoice, 'preview'), { recursive: true });
  await writeFile(join(invoice, 'html.eta'), INVOICE_HTML);
  await writeFile(join(invoice, 'subject.eta'), 'Invoice <%= it.number %> from <%= it.app.name %>\n');
  await writeFile(
    join(invoice, 'template.json'),
    JSON.stringify({ fields: { customer: 'string', number: 'string', amount: 'string', payUrl: 'url' } }),
  );
  const set = (name: string, data: object) =>
    writeFile(join(invoice, 'preview', `${name}.json`), JSON.stringify(data, null, 2));
  await set('default', {
    customer: 'Jane Doe',
    number: 'INV-1001',
    amount: '$120.00',
    payUrl: 'https://acme.example/pay/INV-1001',
  });
  await set('huge-order', {
    customer: 'Globex Corporation International Holdings and Subsidiaries',
    number: 'INV-2025-000981-B',
    amount: '$1,284,906,532.50',
    payUrl: 'https://acme.example/pay/INV-2025-000981-B?utm_source=email&utm_campaign=invoice',
  });
  await set('script-in-name', {
    customer: SCRIPT_IN_DATA,
    number: 'INV-666',
    amount: '$0.00',
    payUrl: 'https://acme.example/pay/INV-666',
  });

  handler = createPreviewHandler({
    enabled: true,
    service: { transport: memoryTransport(), from: FROM, appName: 'Acme' },
    templatesDir,
    outboxDir,
  });
  server = createServer((req, res) => {
    requested.push(new URL(req.url ?? '/', 'http://preview.invalid').pathname);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  } catch (error) {
    throw new Error(`Chromium at ${CHROMIUM} did not start: ${(error as Error).message}`);
  }
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
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
});
afterEach(async () => {
  await context?.close();
});

/** Opens the page and waits until its lists are there. */
async function open(): Promise<void> {
  await page.goto(base);
  await expect.poll(() => page.locator('#templates [data-template]').count()).toBeGreaterThan(0);
}
const frame = () => page.frameLocator('#frame');
const shot = (name: string) => page.screenshot({ path: join(artifacts, `${name}.png`) });
const pagePwned = () => page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned);

describe('the preview page in Chromium', () => {
  it('shows a template with its data sets, at mobile width, as text and with headers', async () => {
    await open();
    const names = page.locator('#templates [data-template]');
    // A built-in's badge is part of its button's text.
    await expect(names).toHaveText(['invoice', 'password-resetbuilt-in', 'verificationbuilt-in', 'welcomebuilt-in']);
    for (const name of ['password-reset', 'verification', 'welcome']) {
      await expect(page.locator(`[data-template="${name}"] .badge`)).toHaveText('built-in');
    }
    await expect(page.locator('[data-template="invoice"] .badge')).toHaveCount(0);

    await page.click('[data-template="verification"]');
    await expect(page.locator('#title')).toHaveText('verification');
    await expect(page.locator('#subject')).toHaveText('Subject: Verify your email address for Acme');
    await expect(page.locator('#set option')).toHaveText(['default', 'long-name', 'unicode']);
    await expect(frame().locator('body')).toContainText('Hi Jane,');
    await expect(frame().getByText('Verify email address')).toBeVisible();
    await expect(frame().locator('body')).toContainText('Thanks for signing up for Acme.');
    const desktop = await page.locator('#frame').boundingBox();
    expect(desktop?.width).toBeGreaterThan(900);
    await shot('1-verification-desktop');
    await page.screenshot({ path: readmeShot });

    await page.selectOption('#set', 'long-name');
    await expect(frame().locator('body')).toContainText(
      'Hi Maximiliana Theodora von Hohenzollern-Sigmaringen-Wittelsbach,',
    );

    await page.click('[data-width="mobile"]');
    await expect(page.locator('[data-width="mobile"]')).toHaveAttribute('aria-pressed', 'true');
    await expect.poll(async () => (await page.locator('#frame').boundingBox())?.width).toBe(375);
    await expect(frame().locator('body')).toContainText('Maximiliana');
    await shot('2-verification-mobile');

    await page.click('[data-tab="text"]');
    await expect(page.locator('#frame')).toBeHidden();
    await expect(page.locator('#text')).toBeVisible();
    await expect(page.locator('#text')).toContainText('Hi Maximiliana Theodora');
    await expect(page.locator('#text')).toContainText(
      'https://acme.example/account/email/verify?token=3f9c2a71e8b04d65a0c9d1e2f3a4b5c6d7e8f9a0b1c2d3e4',
    );
    await shot('3-verification-text');

    await page.click('[data-tab="headers"]');
    await expect(page.locator('#headers')).toBeVisible();
    await expect(page.locator('#headers tr', { hasText: 'Subject' }).locator('td')).toHaveText(
      'Verify your email address for Acme',
    );
    await expect(page.locator('#headers tr', { hasText: 'Data set' }).locator('td')).toContainText(
      'long-name.json',
    );
  });

  it('opens a captured email from the outbox, newest first, with its .eml to download', async () => {
    await open();
    const emails = page.locator('#outbox [data-email]');
    await expect(emails).toHaveCount(2);
    await expect(page.locator('#outbox-empty')).toBeHidden();
    await expect(emails.nth(0)).toContainText('Hostile <script>');
    await expect(emails.nth(1)).toContainText('Verify your email address for Acme');
    await expect(emails.nth(1)).toContainText('jane@example.com');

    await emails.nth(1).click();
    await expect(page.locator('#title')).toHaveText('Verify your email address for Acme');
    await expect(page.locator('#set')).toBeHidden();
    await expect(frame().locator('body')).toContainText('Hi Jane,');
    const id = await emails.nth(1).getAttribute('data-email');
    const download = page.locator('#download');
    await expect(download).toBeVisible();
    await expect(download).toHaveAttribute('href', `eml/${id}.eml`);
    await shot('4-outbox-email');

    const res = await fetch(new URL((await download.getAttribute('href'))!, page.url()));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('message/rfc822');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${id}.eml"`);
    const eml = await res.text();
    expect(eml).toContain('Subject: Verify your email address for Acme');
    expect(eml).toMatch(/^To: jane@example\.com\r?$/m);

    await page.click('[data-tab="headers"]');
    await expect(page.locator('#headers tr', { hasText: 'Subject' }).first().locator('td')).toHaveText(
      'Verify your email address for Acme',
    );
  });

  it('runs no script, neither from a captured email nor from template data', async () => {
    await open();
    await page.locator('#outbox [data-email]').first().click();
    await expect(page.locator('#title')).toHaveText('Hostile <script>');
    await expect(frame().locator('#x')).toHaveText('hi');
    await page.click('[data-tab="source"]');
    await expect(page.locator('#source')).toContainText('<script>fetch("/pwned");');
    await page.click('[data-tab="html"]');
    await shot('5-hostile-email');

    await page.click('[data-template="invoice"]');
    await expect(page.locator('#set option')).toHaveText(['default', 'huge-order', 'script-in-name']);
    await page.selectOption('#set', 'script-in-name');
    await expect(frame().locator('body')).toContainText(`Dear ${SCRIPT_IN_DATA},`);
    await expect(frame().locator('h1')).toHaveText('Invoice INV-666');

    // Give anything that might run the time to run, then check it did not.
    await page.waitForTimeout(500);
    expect(await pagePwned()).toBeUndefined();
    expect(pwned()).toEqual([]);
  });

  it('reloads a template in place when its file changes', async () => {
    await open();
    const before = eventStreams();
    await page.click('[data-template="invoice"]');
    await expect(frame().locator('h1')).toHaveText('Invoice INV-1001');
    await expect(frame().locator('body')).toContainText('Dear Jane Doe,');
    await page.selectOption('#set', 'huge-order');
    await expect(frame().locator('h1')).toHaveText('Invoice INV-2025-000981-B');
    await page.evaluate(() => {
      (globalThis as { __samePage?: boolean }).__samePage = true;
    });
    // The page listens for changes before anything is changed.
    await expect.poll(eventStreams).toBeGreaterThan(before);

    const sentence = 'Payment is due within 30 days of the invoice date.';
    await writeFile(join(templatesDir, 'invoice', 'html.eta'), `${INVOICE_HTML}<p>${sentence}</p>\n`);
    await expect(frame().locator('body')).toContainText(sentence, { timeout: 5_000 });
    await expect(frame().locator('h1')).toHaveText('Invoice INV-2025-000981-B');
    await expect(page.locator('#set')).toHaveValue('huge-order');
    expect(await page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage)).toBe(true);
  });

  it('names the file and line of a broken template, and keeps serving', async () => {
    await open();
    const before = eventStreams();
    await page.click('[data-template="invoice"]');
    await expect(frame().locator('h1')).toHaveText('Invoice INV-1001');
    await expect.poll(eventStreams).toBeGreaterThan(before);

    // Written aside and moved in, so the new folder appears whole.
    const draft = join(root, 'broken');
    await mkdir(draft);
    await writeFile(join(draft, 'subject.eta'), 'Broken\n');
    await writeFile(join(draft, 'html.eta'), '<p>One</p>\n<p>Two</p>\n<% if (it.x { %>\n<p>X</p>\n<% } %>\n');
    await rename(draft, join(templatesDir, 'broken'));

    const broken = page.locator('[data-template="broken"]');
    await expect(broken).toBeVisible({ timeout: 5_000 });
    await broken.click();
    const problem = page.locator('#problem');
    await expect(problem).toBeVisible();
    await expect(problem).toHaveAttribute('role', 'alert');
    await expect(problem).toContainText('Template "broken"');
    await expect(problem).toContainText('broken/html.eta');
    await expect(problem).toContainText('line 3');
    await expect(page.locator('#stage')).toBeHidden();
    await shot('6-broken-template');

    // The server is fine: the list loads again, and the other templates still render.
    await open();
    await expect(page.locator('#templates [data-template]')).toHaveText([
      'broken',
      'invoice',
      'password-resetbuilt-in',
      'verificationbuilt-in',
      'welcomebuilt-in',
    ]);
    await page.click('[data-template="invoice"]');
    await expect(page.locator('#problem')).toBeHidden();
    await expect(frame().locator('h1')).toHaveText('Invoice INV-1001');
  });
});
