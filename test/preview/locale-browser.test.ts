/**
 * The preview's locale picker in a real browser (headless Chromium): the built-ins in each shipped
 * language, Arabic right to left, with a screenshot of an Arabic built-in among the artifacts.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { launchChromium } from '../helpers/chromium.js';

const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));
const WAIT = { timeout: 15_000 };

let root: string;
let handler: PreviewHandler;
let server: Server;
let base: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailroom-preview-locale-'));
  await mkdir(artifacts, { recursive: true });
  handler = createPreviewHandler({
    enabled: true,
    service: {
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      appName: 'Acme',
      brand: { supportUrl: 'https://acme.example/help' },
    },
    outboxDir: join(root, 'outbox'),
    watch: false,
  });
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await launchChromium("the preview's locale picker test");
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
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

const frame = () => page.frameLocator('#frame');
const text = (selector: string) => page.locator(selector).textContent();
/** A computed style property of the element, as the browser laid it out. */
const style = (locator: Locator, property: string) =>
  locator.evaluate(
    (el, p) =>
      (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(
        el,
      )[p],
    property,
  );

describe('the locale picker in Chromium', () => {
  it('offers every shipped language and shows a built-in in each; Arabic right to left', async () => {
    await page.goto(`${base}#template/security-alert/default`);
    await expect.poll(() => text('#subject'), WAIT).toBe('Subject: New sign-in to your Acme account');
    expect(
      await page
        .locator('#locale option')
        .evaluateAll((o) => o.map((x) => (x as unknown as { value: string }).value)),
    ).toEqual(['en', 'ar', 'de', 'es', 'fr', 'pt-BR']);
    expect(await page.locator('#locale option[value="de"]').textContent()).toBe('Deutsch (de)');

    await page.selectOption('#locale', 'de');
    await expect.poll(() => text('#subject'), WAIT).toBe('Subject: Neue Anmeldung bei Ihrem Acme-Konto');
    await expect.poll(() => frame().locator('h1').textContent(), WAIT).toBe('Neue Anmeldung bei Ihrem Konto');
    expect(await frame().locator('html').getAttribute('lang')).toBe('de');
    expect(await frame().locator('html').getAttribute('dir')).toBeNull();

    await page.selectOption('#locale', 'ar');
    await expect.poll(() => frame().locator('h1').textContent(), WAIT).toBe('تسجيل دخول جديد إلى حسابك');
    const html = frame().locator('html');
    expect(await html.getAttribute('lang')).toBe('ar');
    expect(await html.getAttribute('dir')).toBe('rtl');
    // Right to left as the browser lays it out: the heading and the table's labels hug the right edge.
    const h1 = frame().locator('h1');
    expect(await style(h1, 'direction')).toBe('rtl');
    expect(await style(h1, 'textAlign')).toBe('right');
    const label = frame().locator('.mr-details-label').first();
    expect(await style(label, 'textAlign')).toBe('right');
    const [labelBox, valueBox] = await Promise.all([
      label.boundingBox(),
      frame().locator('.mr-details-value').first().boundingBox(),
    ]);
    expect(labelBox!.x).toBeGreaterThan(valueBox!.x);
    await page.click('[data-tab="text"]');
    await expect.poll(() => text('#text'), WAIT).toContain('إذا لم يكن ذلك منك، فيُرجى تأمين حسابك الآن.');
    await page.click('[data-tab="html"]');
    await page.screenshot({ path: join(artifacts, 'locale-ar-security-alert.png') });

    await page.goto(`${base}#template/maintenance-notice/default`);
    await page.selectOption('#locale', 'ar');
    await expect.poll(() => frame().locator('h1').textContent(), WAIT).toBe('صيانة مجدولة');
    const panel = frame().locator('.mr-panel-cell');
    expect(await style(panel, 'borderRightWidth')).toBe('4px');
    expect(await style(panel, 'borderLeftWidth')).toBe('0px');
    await page.screenshot({ path: join(artifacts, 'locale-ar-maintenance-notice.png') });
  });
});
