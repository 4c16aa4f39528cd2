/**
 * The checks on the preview page in headless Chromium: a badge on every template and captured
 * email in the sidebar, "fails" on a template that does not compile (before anyone clicks it),
 * and the checks panel of the email shown.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailService, memoryTransport, sandboxTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { launchChromium, measureTextContrast } from '../helpers/chromium.js';

const FROM = 'Acme <no-reply@acme.example>';
const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));

let root: string;
let handler: PreviewHandler;
let server: Server;
let base: string;
let browser: Browser;

/** A folder template: `html` with `<%= it.name %>`, a subject, a preheader and one data set. */
async function template(dir: string, name: string, html: string): Promise<void> {
  const folder = join(dir, name);
  await mkdir(join(folder, 'preview'), { recursive: true });
  await writeFile(join(folder, 'html.eta'), html);
  await writeFile(join(folder, 'subject.eta'), `Your ${name} note`);
  await writeFile(join(folder, 'preheader.eta'), 'A short note about your account');
  await writeFile(join(folder, 'preview', 'default.json'), JSON.stringify({ name: 'Jane' }));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailroom-checks-browser-'));
  const templatesDir = join(root, 'templates');
  const outboxDir = join(root, 'outbox');
  await mkdir(artifacts, { recursive: true });
  await template(templatesDir, 'fine', '<p>Hello <%= it.name %>, all is well.</p>');
  await template(
    templatesDir,
    'plain-http',
    '<p>Hello <%= it.name %>, see <a href="http://acme.example/account">your account</a>.</p>',
  );
  // Compiles only when rendered: the sidebar must say so before anyone clicks it.
  await template(templatesDir, 'broken', '<p>Hi <%= it.name %></p><% if (it.name { %>x<% } %>');

  const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from: FROM });
  await mail.send({
    to: 'jane@example.com',
    subject: 'Captured with a link nobody can follow',
    html: '<p>Open <a href="http://localhost:3000/account">your account</a>.</p>',
    text: 'Open your account.',
  });

  handler = createPreviewHandler({
    enabled: true,
    service: { transport: memoryTransport(), from: FROM, appName: 'Acme' },
    templatesDir,
    outboxDir,
    watch: false,
  });
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await launchChromium('the preview checks test');
}, 60_000);

afterAll(async () => {
  await browser?.close();
  handler?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  if (root) await rm(root, { recursive: true, force: true });
});

async function open(hash = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${base}${hash}`);
  return page;
}

/** Notes in the page whether the SpamAssassin button was visible at any moment, from its first script on. */
const WATCH_SPAM_BUTTON = `new MutationObserver(() => {
  if (document.querySelector('#checks-spam-run')?.checkVisibility()) window.spamButtonShown = true;
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['hidden'] });`;

/**
 * Opens `url` with the page's `api/checks` (which says whether spam checks are on) held back until
 * `release()`, so that the checks panel answers first: the order that once showed the button.
 */
async function openHoldingChecks(url: string) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route('**/api/checks', async (route) => {
    await held;
    await route.continue();
  });
  await page.addInitScript(WATCH_SPAM_BUTTON);
  await page.goto(url);
  const spamButtonShown = () => page.evaluate('window.spamButtonShown === true');
  return { page, release, spamButtonShown };
}

/** The badge beside a sidebar button (beside, so that the button's text stays the name). */
const badge = (page: Page, selector: string) =>
  page.locator(`aside li:has(> button${selector}) > .badge.checks`);

describe('checks on the preview page', () => {
  it('shows a badge on every template and captured email, and marks the template that does not compile', async () => {
    const page = await open();
    await expect.poll(() => badge(page, '[data-template="broken"]').textContent()).toBe('fails');
    expect(await badge(page, '[data-template="broken"]').getAttribute('title')).toMatch(
      /html\.eta, line 1: bad template syntax/,
    );
    expect(await badge(page, '[data-template="fine"]').textContent()).toBe('checks ok');
    expect(await badge(page, '[data-template="plain-http"]').textContent()).toBe('1 warning');
    for (const name of ['verification', 'password-reset', 'welcome']) {
      expect(await badge(page, `[data-template="${name}"]`).textContent()).toBe('checks ok');
    }
    // The captured email: its link is not https, not in the text part, and it has no preheader
    // (that the link goes to this machine is info in development).
    expect(await badge(page, '[data-email]').allTextContents()).toEqual(['3 warnings']);
    expect(await page.locator('aside button[data-template="fine"]').textContent()).toBe('fine');
    await page.screenshot({ path: join(artifacts, 'checks-sidebar.png') });
    await page.close();
  });

  it('lists the findings of the template shown, and its SpamAssassin score on request', async () => {
    const { page, release, spamButtonShown } = await openHoldingChecks(`${base}#template/plain-http/default`);
    const rows = page.locator('#checks-list li');
    await expect
      .poll(() => page.locator('#checks-title').textContent(), { timeout: 60_000 })
      .toBe('Checks: 0 errors, 1 warning');
    // Not offered until the page knows spam checks are on, then offered.
    expect(await page.locator('#checks-spam-run').isVisible()).toBe(false);
    release();
    await expect.poll(() => page.locator('#checks-spam-run').isVisible()).toBe(true);
    // The watch the spam: false test trusts sees it.
    expect(await spamButtonShown()).toBe(true);
    expect(await rows.allTextContents()).toEqual([
      'warninglinks: "http://acme.example/account" is not https<a href="http://acme.example/account">',
    ]);
    expect(await page.locator('#checks li[data-check="spam"]').count()).toBe(0);
    await page.click('#checks-spam-run');
    await expect
      .poll(() => page.locator('#checks-spam li[data-check="spam"]').textContent(), { timeout: 60_000 })
      .toMatch(/^infospam: SpamAssassin scores it -?[\d.]+ \(spam from 5(\.0)?\)/);
    await page.screenshot({ path: join(artifacts, 'checks-panel.png'), fullPage: true });
    // The panel's text, its severity labels and the sidebar's badges meet WCAG 2.1 AA (4.5:1).
    await page.mouse.move(900, 700);
    const { texts, failing } = await measureTextContrast(page);
    expect(failing).toEqual([]);
    for (const text of ['warning', 'info', 'checks ok', '1 warning'])
      expect(texts).toContainEqual(expect.objectContaining({ text }));
    await page.close();
  }, 90_000);

  it('answers the page as JSON, and 404 for a name that is not there', async () => {
    const all = (await (await fetch(`${base}api/checks`)).json()) as {
      templates: Record<string, { errors: number; warnings: number; failed?: { line?: number } }>;
      emails: Record<string, unknown>;
    };
    expect(all.templates['plain-http']).toEqual({ errors: 0, warnings: 1, infos: expect.any(Number) });
    expect(all.templates.broken?.failed?.line).toBe(1);
    expect(Object.keys(all.emails)).toHaveLength(1);
    const one = (await (await fetch(`${base}api/checks/template/plain-http/default`)).json()) as {
      findings: { check: string }[];
    };
    expect(one).toMatchObject({ errors: 0, warnings: 1 });
    expect(one.findings.some((f) => f.check === 'spam')).toBe(false);
    for (const path of [
      'template/nope/default',
      'template/plain-http/nope',
      'email/nope',
      'email/nope/spam',
      'x',
    ]) {
      expect((await fetch(`${base}api/checks/${path}`)).status, path).toBe(404);
    }
  });

  it("another site's page cannot start checks (SpamAssassin runs) in the background", async () => {
    const { request } = await import('node:http');
    const status = (path: string, site: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${base}${path}`);
        request(url, { headers: { 'sec-fetch-site': site } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    for (const site of ['cross-site', 'same-site']) {
      expect(await status('api/checks/template/plain-http/default/spam', site)).toBe(403);
      expect(await status('api/checks', site)).toBe(403);
    }
    // The page's own requests (same-origin) and a URL typed in the address bar (none) go ahead.
    expect(await status('api/checks/template/plain-http/default', 'same-origin')).toBe(200);
    expect(await status('api/checks/template/plain-http/default', 'none')).toBe(200);
  });

  it('offers no SpamAssassin with checks: { spam: false }', async () => {
    const quiet = createPreviewHandler({
      enabled: true,
      service: { transport: memoryTransport(), from: FROM },
      outboxDir: join(root, 'outbox'),
      watch: false,
      checks: { spam: false },
    });
    const other = createServer((req, res) => quiet(req, res));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    try {
      expect(((await (await fetch(`${url}api/checks`)).json()) as { spam: boolean }).spam).toBe(false);
      expect((await fetch(`${url}api/checks/template/welcome/default/spam`)).status).toBe(404);
      expect((await fetch(`${base}api/checks/template/plain-http/default/spam`)).status).toBe(200);
      const { page, release, spamButtonShown } = await openHoldingChecks(`${url}#template/welcome/default`);
      await expect
        .poll(() => page.locator('#checks-title').textContent())
        .toBe('Checks: 0 errors, 0 warnings');
      // The panel has answered and api/checks has not: the page does not know yet, so no button.
      expect(await page.locator('#checks-spam-run').isVisible()).toBe(false);
      release();
      await expect.poll(() => badge(page, '[data-template="welcome"]').textContent()).toBe('checks ok');
      expect(await page.locator('#checks-spam-run').isVisible()).toBe(false);
      expect(await spamButtonShown()).toBe(false);
      await page.close();
    } finally {
      quiet.close();
      // Chromium keeps its connections alive: close them, or close() waits for them.
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  }, 60_000);

  it('says the checks did not run when the template does not render', async () => {
    const page = await open('#template/broken/default');
    await expect
      .poll(() => page.locator('#checks-title').textContent())
      .toBe('Checks: not run, the email does not render');
    expect(await page.locator('#checks-spam-run').isVisible()).toBe(false);
    await page.close();
  });
});
