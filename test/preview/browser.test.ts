/**
 * The preview page in a real browser (headless Chromium through playwright-core): what a person
 * sees when they pick templates, data sets, widths and tabs, open captured emails, edit a
 * template, or break one. Email HTML must never run a script, neither from a captured email nor
 * from a template's data.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmailService, memoryTransport, sandboxTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { BUILTIN_NAMES } from '../helpers/builtins.js';
import { launchChromium, type MeasuredText, measureTextContrast } from '../helpers/chromium.js';

const FROM = 'Acme <no-reply@acme.example>';
const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));
// The README's picture is rewritten only when asked (UPDATE_SCREENSHOTS=1), so a test run leaves
// the work tree clean; every run saves the same shot among the artifacts.
const readmeShot = fileURLToPath(
  process.env.UPDATE_SCREENSHOTS === '1'
    ? new URL('../../examples/preview/screenshot.png', import.meta.url)
    : new URL('../../test-artifacts/preview/readme.png', import.meta.url),
);

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
/** A second preview, mounted at /_mail/ like in an app, with a tidy outbox for the README's screenshot. */
let showcase: PreviewHandler;
let server: Server;
let base: string;
let browser: Browser;
/** Every path the server was asked for, in order. */
const requested: string[] = [];
/** A moment, so that the next capture has a later date (the outbox lists newest first). */
const later = () => new Promise((resolve) => setTimeout(resolve, 20));
const pwned = () => requested.filter((path) => path.startsWith('/pwned'));
const eventStreams = () => requested.filter((path) => path === '/events').length;

beforeAll(async () => {
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
  await later(); // so that it is listed first
  await mail.send({
    to: 'jane@example.com',
    subject: 'Hostile <script>',
    html: HOSTILE_HTML,
    text: 'hostile',
  });

  // A user template with three data sets, one of them with a script in a field.
  const invoice = await writeInvoice(templatesDir);
  await writeFile(
    join(invoice, 'preview', 'script-in-name.json'),
    JSON.stringify({
      customer: SCRIPT_IN_DATA,
      number: 'INV-666',
      amount: '$0.00',
      payUrl: 'https://acme.example/pay/INV-666',
    }),
  );

  const tidyTemplates = join(root, 'tidy-templates');
  await writeInvoice(tidyTemplates);
  const tidyOutbox = join(root, 'tidy-outbox');
  const tidy = new EmailService({ transport: sandboxTransport({ dir: tidyOutbox }), from: FROM });
  const to = 'jane@example.com';
  await tidy.sendVerificationEmail({
    to,
    username: 'Jane',
    verificationUrl: 'https://acme.example/verify?token=3f9c',
  });
  await later();
  await tidy.sendWelcomeEmail({ to, username: 'Jane', actionUrl: 'https://acme.example/get-started' });
  await later();
  await tidy.sendPasswordResetEmail({
    to,
    username: 'Jane',
    resetUrl: 'https://acme.example/reset?token=9b1d4e7a2c',
    expiresInMinutes: 30,
  });

  const service = { transport: memoryTransport(), from: FROM, appName: 'Acme' };
  // mail.test: the name a developer might open the preview by, allowed; rebind.example: a
  // DNS-rebinding name that resolves to this machine too, not allowed (see the launch below).
  handler = createPreviewHandler({
    enabled: true,
    service,
    templatesDir,
    outboxDir,
    allowedHosts: ['mail.test'],
  });
  showcase = createPreviewHandler({
    enabled: true,
    service,
    templatesDir: tidyTemplates,
    outboxDir: tidyOutbox,
    watch: false,
  });
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    requested.push(new URL(url, 'http://preview.invalid').pathname);
    if (!url.startsWith('/_mail/')) return handler(req, res);
    // What Express does for app.use('/_mail', preview).
    Object.assign(req, { originalUrl: url, url: url.slice('/_mail'.length) });
    showcase(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  // Both names resolve to this machine, as a rebinding name does once its DNS answer changes.
  browser = await launchChromium("the preview's browser test", [
    '--host-resolver-rules=MAP mail.test 127.0.0.1, MAP rebind.example 127.0.0.1',
  ]);
});

/** The user template `invoice` in `dir`, with the data sets `default` and `huge-order`; returns its folder. */
async function writeInvoice(dir: string): Promise<string> {
  const invoice = join(dir, 'invoice');
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
  return invoice;
}

afterAll(async () => {
  await browser?.close();
  handler?.close();
  showcase?.close();
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

const WAIT = { timeout: 5_000 };
/** The text `locator` shows, or '' while it is not there (the frame may be loading). */
// biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator; the rendered text is what a person sees
const shown = (locator: Locator) => locator.innerText({ timeout: 500 }).catch(() => '');
const visible = (locator: Locator) => locator.isVisible();
const width = async (locator: Locator) => (await locator.boundingBox())?.width;
const frame = () => page.frameLocator('#frame');
const shot = (name: string) => page.screenshot({ path: join(artifacts, `${name}.png`) });
const pagePwned = () => page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned);

/** Opens the page (at `url`) and waits until its lists are there and it listens for changes. */
async function open(url = base): Promise<void> {
  const streams = eventStreams();
  await page.goto(url);
  await expect.poll(() => page.locator('#templates [data-template]').count(), WAIT).toBeGreaterThan(0);
  await expect.poll(eventStreams, WAIT).toBeGreaterThan(streams);
}

describe('the preview page in Chromium', () => {
  it('its own text meets WCAG 2.1 AA contrast (4.5:1) wherever a person reads it: a template (each tab), a captured email, the settings', async () => {
    await open();
    const measured: MeasuredText[] = [];
    /** Measures the page as it is now, off the sidebar (the current item as it shows, not hovered). */
    const measure = async (view: string) => {
      await page.mouse.move(900, 700);
      const { texts, failing } = await measureTextContrast(page);
      expect(failing, view).toEqual([]);
      measured.push(...texts);
      return texts;
    };
    await page.click('[data-template="verification"]');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('verification');
    expect((await measure('template')).length).toBeGreaterThan(20);
    for (const tab of ['text', 'source', 'headers']) {
      await page.click(`[data-tab="${tab}"]`);
      await expect.poll(() => visible(page.locator(`#${tab}`)), WAIT).toBe(true);
      await measure(`template, ${tab} tab`);
    }
    await page.locator('#outbox [data-email]').nth(1).click();
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('Verify your email address for Acme');
    await page.click('[data-tab="headers"]');
    await expect.poll(() => visible(page.locator('#headers')), WAIT).toBe(true);
    await measure('captured email, headers tab');
    await page.goto(`${base}#settings`);
    await page.locator('#settings-groups table').first().waitFor(WAIT);
    await measure('settings');
    // Among them a pressed button (its label on the primary colour), the current template, a
    // checks badge, a captured email's download link, a header's name, a setting's name and button.
    for (const [text, background] of [
      ['Desktop', 'rgb(11, 94, 215)'],
      ['verification', 'rgb(231, 241, 255)'],
    ])
      expect(measured).toContainEqual(expect.objectContaining({ text, background }));
    for (const text of ['checks ok', 'Download .eml', 'Subject', 'Sends through', 'Verify connection'])
      expect(measured).toContainEqual(expect.objectContaining({ text }));
  });

  it('shows a template with its data sets, at mobile width, as text and with headers', async () => {
    await open();
    // A built-in's badge is part of its button's text.
    await expect
      .poll(() => page.locator('#templates [data-template]').allTextContents(), WAIT)
      .toEqual(['invoice', ...BUILTIN_NAMES.map((name) => `${name}built-in`)]);
    for (const name of BUILTIN_NAMES) {
      expect(await shown(page.locator(`[data-template="${name}"] .badge`))).toBe('built-in');
    }
    expect(await page.locator('[data-template="invoice"] .badge').count()).toBe(0);

    await page.click('[data-template="verification"]');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('verification');
    await expect
      .poll(() => shown(page.locator('#subject')), WAIT)
      .toBe('Subject: Verify your email address for Acme');
    expect(await page.locator('#set option').allTextContents()).toEqual(['default', 'long-name', 'unicode']);
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Hi Jane,');
    await expect
      .poll(() => shown(frame().locator('body')), WAIT)
      .toContain('Thanks for signing up for Acme.');
    const button = frame().getByRole('link', { name: 'Verify email address' });
    await expect.poll(() => visible(button), WAIT).toBe(true);
    expect(await width(page.locator('#frame'))).toBeGreaterThan(900);
    await shot('1-verification-desktop');

    await page.selectOption('#set', 'long-name');
    await expect
      .poll(() => shown(frame().locator('body')), WAIT)
      .toContain('Hi Maximiliana Theodora von Hohenzollern-Sigmaringen-Wittelsbach,');

    await page.click('[data-width="mobile"]');
    await expect.poll(() => width(page.locator('#frame')), WAIT).toBe(375);
    expect(await page.locator('[data-width="mobile"]').getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Maximiliana');
    await shot('2-verification-mobile');

    await page.click('[data-tab="text"]');
    await expect.poll(() => visible(page.locator('#text')), WAIT).toBe(true);
    expect(await visible(page.locator('#frame'))).toBe(false);
    const text = await shown(page.locator('#text'));
    expect(text).toContain('Hi Maximiliana Theodora');
    expect(text).toContain(
      'https://acme.example/account/email/verify?token=3f9c2a71e8b04d65a0c9d1e2f3a4b5c6d7e8f9a0b1c2d3e4',
    );
    await shot('3-verification-text');

    await page.click('[data-tab="headers"]');
    await expect.poll(() => visible(page.locator('#headers')), WAIT).toBe(true);
    expect(await visible(page.locator('#text'))).toBe(false);
    const row = (name: string) => page.locator('#headers tr', { has: page.locator(`th:text-is("${name}")`) });
    expect(await shown(row('Subject').locator('td'))).toBe('Verify your email address for Acme');
    expect(await shown(row('Data set').locator('td'))).toMatch(/long-name\.json$/);
  });

  it('opens a captured email from the outbox, newest first, with its .eml to download', async () => {
    await open();
    const emails = page.locator('#outbox [data-email]');
    await expect.poll(() => emails.count(), WAIT).toBe(2);
    expect(await visible(page.locator('#outbox-empty'))).toBe(false);
    expect(await shown(emails.nth(0))).toContain('Hostile <script>');
    expect(await shown(emails.nth(1))).toContain('Verify your email address for Acme');
    expect(await shown(emails.nth(1))).toContain('jane@example.com');

    await emails.nth(1).click();
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('Verify your email address for Acme');
    expect(await visible(page.locator('#set'))).toBe(false);
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Hi Jane,');
    const id = await emails.nth(1).getAttribute('data-email');
    const download = page.locator('#download');
    expect(await visible(download)).toBe(true);
    expect(await shown(download)).toBe('Download .eml');
    expect(await download.getAttribute('href')).toBe(`eml/${id}.eml`);
    await shot('4-outbox-email');

    const res = await fetch(new URL((await download.getAttribute('href'))!, page.url()));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('message/rfc822');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${id}.eml"`);
    const eml = await res.text();
    expect(eml).toMatch(/^Subject: Verify your email address for Acme\r?$/m);
    expect(eml).toMatch(/^To: jane@example\.com\r?$/m);

    await page.click('[data-tab="headers"]');
    await expect.poll(() => visible(page.locator('#headers')), WAIT).toBe(true);
    const subject = page.locator('#headers tr', { has: page.locator('th:text-is("Subject")') });
    expect(await shown(subject.locator('td'))).toBe('Verify your email address for Acme');
  });

  it('shows no empty pickers and does not call the outbox empty before its lists answer', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/api/outbox', async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${base}#template/invoice/default`);
    for (const id of ['#set', '#locale', '#outbox-empty'])
      expect(await visible(page.locator(id)), id).toBe(false);
    release();
    await expect.poll(() => page.locator('#set option').allTextContents(), WAIT).toContain('huge-order');
    expect(await visible(page.locator('#set'))).toBe(true);
    expect(await visible(page.locator('#locale'))).toBe(true);
    expect(await page.locator('#outbox [data-email]').count()).toBeGreaterThan(0);
    expect(await visible(page.locator('#outbox-empty'))).toBe(false);
  });

  it('offers the language and data set pickers for a template, not for a captured email', async () => {
    await open();
    const forTemplates = ['#locale', '#set', '#test-send'];
    const forEmails = ['#download', '#email-panel'];
    const controls = async () =>
      Object.fromEntries(
        await Promise.all(
          [...forTemplates, ...forEmails].map(async (id) => [id, await visible(page.locator(id))]),
        ),
      );
    const only = (ids: string[]) =>
      Object.fromEntries([...forTemplates, ...forEmails].map((id) => [id, ids.includes(id)]));

    await page.click('[data-template="verification"]');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('verification');
    expect(await page.locator('#locale option').count()).toBeGreaterThan(1);
    expect(await page.locator('#set option').count()).toBeGreaterThan(1);
    expect(await controls()).toEqual(only(forTemplates));

    // Captured in one language from one set of data: there is nothing to pick.
    await page.locator('#outbox [data-email]').nth(1).click();
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('Verify your email address for Acme');
    expect(await controls()).toEqual(only(forEmails));

    await page.click('[data-template="verification"]');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('verification');
    expect(await controls()).toEqual(only(forTemplates));
  });

  it('opens at #settings without ever showing the controls and frame of an email', async () => {
    // Every header control and the frame the page shows at any moment, from its first script on.
    await page.addInitScript(`window.everShown = new Set();
      new MutationObserver(() => {
        for (const node of document.querySelectorAll('header > :not(#title), #stage'))
          if (node.checkVisibility()) window.everShown.add(node.id || node.getAttribute('aria-label'));
      }).observe(document, { subtree: true, childList: true, attributes: true });`);
    const everShown = () => page.evaluate('[...window.everShown].sort()');
    await page.goto(`${base}#settings`);
    await page.locator('#settings-groups table').first().waitFor(WAIT);
    expect(await shown(page.locator('#title'))).toBe('Settings');
    expect(await everShown()).toEqual([]);

    // The watch sees them once a template is shown.
    await page.click('[data-template="invoice"]');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-1001');
    expect(await everShown()).toEqual(
      expect.arrayContaining(['Colour scheme', 'View', 'Width', 'locale', 'set', 'stage']),
    );
  });

  it('says so when the email shown is deleted elsewhere or a link names none, with no error on the page', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from: FROM });
    await later(); // the newest, listed first
    await mail.send({ to: 'gone@example.com', subject: 'Soon deleted', html: '<p>bye</p>', text: 'bye' });
    const listed = (await (await fetch(`${base}api/outbox`)).json()) as { id: string; subject: string }[];
    const id = listed.find((m) => m.subject === 'Soon deleted')!.id;
    await open(`${base}#email/${id}`);
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('Soon deleted');
    expect(await visible(page.locator('#download'))).toBe(true);

    // Another window deletes it: the page hears of the change and says what happened.
    const deleted = await fetch(`${base}api/outbox/delete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base.slice(0, -1) },
      body: JSON.stringify({ ids: [id] }),
    });
    expect(await deleted.json()).toMatchObject({ results: [{ id, outcome: 'deleted' }] });
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('No such email');
    expect(await shown(page.locator('#problem'))).toContain('not in the outbox');
    for (const gone of ['#download', '#email-panel', '#stage', '#set', '#locale', '#checks'])
      expect(await visible(page.locator(gone)), gone).toBe(false);
    await page.locator(`[data-email="${id}"]`).waitFor({ state: 'detached', ...WAIT });

    // A template still opens from there, and a link to an email never captured says the same.
    await page.click('[data-template="invoice"]');
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('invoice');
    expect(await visible(page.locator('#problem'))).toBe(false);
    await page.goto(`${base}#email/never-captured`);
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('No such email');
    expect(errors).toEqual([]);
  });

  it('says the server did not answer when its lists fail, with no error on the page', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.route('**/api/templates', (route) => route.fulfill({ status: 503, body: 'restarting' }));
    await page.goto(base);
    await expect.poll(() => shown(page.locator('#problem')), WAIT).toContain('did not answer');
    expect(await shown(page.locator('#problem'))).toContain('api/templates: 503');
    expect(errors).toEqual([]);
  });

  it('runs no script, neither from a captured email nor from template data', async () => {
    await open();
    await page.locator('#outbox [data-email]').first().click();
    await expect.poll(() => shown(page.locator('#title')), WAIT).toBe('Hostile <script>');
    await expect.poll(() => shown(frame().locator('#x')), WAIT).toBe('hi');
    await page.click('[data-tab="source"]');
    await expect.poll(() => shown(page.locator('#source')), WAIT).toContain('<script>fetch("/pwned");');
    await page.click('[data-tab="html"]');
    await expect.poll(() => visible(page.locator('#frame')), WAIT).toBe(true);
    await shot('5-hostile-email');

    await page.click('[data-template="invoice"]');
    await expect
      .poll(() => page.locator('#set option').allTextContents(), WAIT)
      .toEqual(['default', 'huge-order', 'script-in-name']);
    await page.selectOption('#set', 'script-in-name');
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain(`Dear ${SCRIPT_IN_DATA},`);
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-666');

    // Give anything that might run the time to run, then check that nothing did.
    await page.waitForTimeout(500);
    expect(await pagePwned()).toBeUndefined();
    expect(pwned()).toEqual([]);
  });

  it('reloads a template in place when its file changes', async () => {
    await open();
    await page.click('[data-template="invoice"]');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-1001');
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Dear Jane Doe,');
    await page.selectOption('#set', 'huge-order');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-2025-000981-B');
    await page.evaluate(() => {
      (globalThis as { __samePage?: boolean }).__samePage = true;
    });

    const sentence = 'Payment is due within 30 days of the invoice date.';
    await writeFile(join(templatesDir, 'invoice', 'html.eta'), `${INVOICE_HTML}<p>${sentence}</p>\n`);
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain(sentence);
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-2025-000981-B');
    expect(await page.locator('#set').inputValue()).toBe('huge-order');
    expect(await page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage)).toBe(true);
  });

  it('names the file and line of a broken template, and keeps serving', async () => {
    await open();
    await page.click('[data-template="invoice"]');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-1001');

    // Written aside and moved in, so that the new folder appears whole.
    const draft = join(root, 'broken');
    await mkdir(draft);
    await writeFile(join(draft, 'subject.eta'), 'Broken\n');
    await writeFile(join(draft, 'html.eta'), '<p>One</p>\n<p>Two</p>\n<% if (it.x { %>\n<p>X</p>\n<% } %>\n');
    await rename(draft, join(templatesDir, 'broken'));

    const broken = page.locator('[data-template="broken"]');
    await expect.poll(() => visible(broken), WAIT).toBe(true);
    await broken.click();
    const problem = page.locator('#problem');
    await expect.poll(() => visible(problem), WAIT).toBe(true);
    expect(await problem.getAttribute('role')).toBe('alert');
    const said = await shown(problem);
    expect(said).toContain('Template "broken"');
    expect(said).toContain('broken/html.eta');
    expect(said).toContain('line 3');
    expect(await visible(page.locator('#stage'))).toBe(false);
    await shot('6-broken-template');

    // The server is fine: the list loads again, and the other templates still render.
    await open();
    expect(await page.locator('#templates [data-template]').allTextContents()).toEqual([
      'broken',
      'invoice',
      ...BUILTIN_NAMES.map((name) => `${name}built-in`),
    ]);
    await page.click('[data-template="invoice"]');
    await expect.poll(() => shown(frame().locator('h1')), WAIT).toBe('Invoice INV-1001');
    expect(await visible(page.locator('#problem'))).toBe(false);
  });

  it('refuses a DNS-rebinding name, page, API and event stream alike, and works under an allowed one', async () => {
    const { port } = new URL(base);
    const rebound = await page.goto(`http://rebind.example:${port}/`);
    expect(rebound?.status()).toBe(403);
    expect(await shown(page.locator('body'))).toContain("allowedHosts: ['rebind.example']");
    // What the rebinding page's script would try next, from its own origin.
    const statuses = await page.evaluate(async () =>
      Promise.all(
        ['api/outbox', 'api/templates', 'events', 'frame/template/verification/default'].map(
          async (path) => (await fetch(path)).status,
        ),
      ),
    );
    expect(statuses).toEqual([403, 403, 403, 403]);

    await open(`http://mail.test:${port}/`);
    const emails = page.locator('#outbox [data-email]');
    await expect.poll(() => emails.count(), WAIT).toBe(2);
    await emails.nth(1).click();
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Hi Jane,');
    expect(await page.locator('#download').getAttribute('href')).toMatch(/^eml\/.+\.eml$/);
  });

  it('looks right for the README: the verification email at desktop width', async () => {
    await page.goto(`${base}_mail/#template/verification/default`);
    await expect.poll(() => shown(frame().locator('body')), WAIT).toContain('Hi Jane,');
    expect(await shown(page.locator('#title'))).toBe('verification');
    expect(await page.locator('[data-width="desktop"]').getAttribute('aria-pressed')).toBe('true');
    expect(await page.locator('[data-tab="html"]').getAttribute('aria-pressed')).toBe('true');
    expect(await page.locator('#outbox [data-email]').allTextContents()).toEqual([
      expect.stringContaining('Reset your Acme password'),
      expect.stringContaining('Welcome to Acme'),
      expect.stringContaining('Verify your email address for Acme'),
    ]);
    expect(await page.locator('#templates [data-template]').allTextContents()).toEqual([
      'invoice',
      ...BUILTIN_NAMES.map((name) => `${name}built-in`),
    ]);
    const button = frame().getByRole('link', { name: 'Verify email address' });
    await expect.poll(() => visible(button), WAIT).toBe(true);
    expect(page.viewportSize()).toEqual({ width: 1280, height: 800 });
    await page.screenshot({ path: readmeShot });
  });
});
