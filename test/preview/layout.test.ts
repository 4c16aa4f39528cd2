/**
 * The preview on a phone and on a desktop, in Chromium: nothing cut off at 390 px, the email frame
 * as tall as its email, the dark-mode toggle, the outbox's search, delete and attachments, and the
 * settings view (secrets as set/unset, verify against a real SMTP server). Configured from the
 * environment, as `mailroom preview` is: the hold in front of SMTP.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv, EmailService, type HoldTransport, heldId } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { launchChromium } from '../helpers/chromium.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

/* The shapes the callbacks that run in Chromium use: the tests compile without the DOM library. */
interface Box {
  left: number;
  right: number;
  bottom: number;
  width: number;
  height: number;
}
interface El {
  id: string;
  tagName: string;
  className: string;
  dataset: Record<string, string>;
  clientHeight: number;
  getBoundingClientRect(): Box;
}
interface Doc {
  readyState: string;
  body: El | null;
  documentElement: El & { scrollHeight: number; clientWidth: number; scrollWidth: number };
  getElementById(id: string): El | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): Iterable<El>;
}
interface Frame extends El {
  contentDocument: Doc | null;
}
declare const document: Doc;
declare function getComputedStyle(node: El): { backgroundColor: string };

const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));
const SECRET = 'Sm7p-secret-Do-Not-Show-41';
const WAIT = { timeout: 10_000 };
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

let root: string;
let peer: SmtpPeer;
let handler: PreviewHandler;
let server: Server;
let port: number;
let browser: Browser;
let hold: HoldTransport;
const saved: Record<string, string | undefined> = {};
const ids: Record<'long' | 'withFiles' | 'reset' | 'discarded', string> = {
  long: '',
  withFiles: '',
  reset: '',
  discarded: '',
};
const PDF = Buffer.alloc(2500, 0x25);

function setEnv(values: Record<string, string>) {
  for (const [name, value] of Object.entries(values)) {
    if (!(name in saved)) saved[name] = process.env[name];
    process.env[name] = value;
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailroom-preview-layout-'));
  await mkdir(artifacts, { recursive: true });
  peer = await startSmtpPeer({ users: { mailer: SECRET } });
  await writeFile(join(root, 'ca.pem'), peer.cert);
  setEnv({
    SMTP_HOST: peer.host,
    SMTP_PORT: String(peer.port),
    SMTP_USER: 'mailer',
    SMTP_PASSWORD: SECRET,
    SMTP_CA_FILE: join(root, 'ca.pem'),
    SMTP_FROM_EMAIL: 'no-reply@acme.example',
    APP_NAME: 'Acme',
    MAILROOM_HOLD: 'true',
    MAILROOM_SANDBOX_DIR: join(root, 'outbox'),
    MAILROOM_KAFKA_TOPIC: 'acme.mail',
  });
  const options = configFromEnv();
  hold = options.transport as HoldTransport;
  const mail = new EmailService(options);
  ids.reset = heldId(
    await mail.sendPasswordResetEmail({
      to: 'rita@example.com',
      username: 'Rita',
      resetUrl: 'https://acme.example/reset?t=1',
      expiresInMinutes: 30,
    }),
  )!;
  ids.long = heldId(
    await mail.send({
      to: 'lena@example.com',
      subject: 'A very long newsletter',
      html: `<!doctype html><html><body style="margin:0;font:16px sans-serif">${Array.from(
        { length: 80 },
        (_, i) => `<p>Paragraph ${i + 1}: the quick brown fox jumps over the lazy dog.</p>`,
      ).join('')}<p id="footer">The footer, last line</p></body></html>`,
      text: 'long',
    }),
  )!;
  ids.withFiles = heldId(
    await mail.sendWelcomeEmail({
      to: 'fred@example.com',
      username: 'Fred',
      actionUrl: 'https://acme.example/start',
      attachments: [
        { filename: 'invoice 2026-12.pdf', content: PDF, contentType: 'application/pdf' },
        { filename: 'notes.txt', content: 'line one\nline two\n' },
      ],
    }),
  )!;
  ids.discarded = heldId(
    await mail.sendWelcomeEmail({
      to: 'dora@example.com',
      username: 'Dora',
      actionUrl: 'https://acme.example/',
    }),
  )!;
  await hold.discard([ids.discarded]);
  handler = createPreviewHandler({ enabled: true, watch: false });
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  browser = await launchChromium('the preview layout');
});

afterAll(async () => {
  await browser?.close();
  handler?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await hold?.close?.();
  await peer?.close();
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  if (root) await rm(root, { recursive: true, force: true });
});

let context: BrowserContext;
let page: Page;
afterEach(() => context?.close());

async function open(viewport: { width: number; height: number }, hash: string) {
  context = await browser.newContext({ viewport });
  page = await context.newPage();
  await page.goto(`http://127.0.0.1:${port}/${hash}`);
  await page.locator('#title').filter({ hasNotText: 'Loading' }).waitFor(WAIT);
}

/** Waits until the frame has loaded the current email and been sized to it. */
async function frameFitted() {
  await expect
    .poll(
      () =>
        page.evaluate(() => {
          const frame = document.querySelector('#frame') as Frame;
          const doc = frame.contentDocument;
          if (doc?.readyState !== 'complete' || doc.body === null) return false;
          // scrollHeight is never less than the frame; the root's box is the content's own height.
          const content = doc.documentElement.getBoundingClientRect().height;
          return (
            frame.clientHeight === doc.documentElement.scrollHeight &&
            Math.abs(frame.clientHeight - content) < 1
          );
        }),
      WAIT,
    )
    .toBe(true);
}

/** Every visible element whose box leaves the viewport sideways, and the page's horizontal overflow. */
function cutOff() {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    for (const node of document.querySelectorAll(
      'aside h1, #menu, aside li, #outbox-search, header > *, .panel, .panel > *, #frame, #settings th, #settings td, #attachments li',
    )) {
      const box = node.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.left < -0.5 || box.right > width + 0.5) {
        out.push(
          `${node.tagName.toLowerCase()}#${node.id}.${node.className}: ${Math.round(box.left)}..${Math.round(box.right)} of ${width}`,
        );
      }
    }
    return { out, overflow: document.documentElement.scrollWidth - width };
  });
}

describe('the layout', () => {
  for (const [label, viewport] of [
    ['390', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    it(`at ${label} px, nothing is cut off: email, template, settings`, async () => {
      await open(viewport, `#email/${ids.withFiles}`);
      await frameFitted();
      expect(await cutOff()).toEqual({ out: [], overflow: 0 });
      // The email gets the width: at 390 px, not the ~130 px a fixed sidebar left it.
      const frameWidth = await page
        .locator('#frame')
        .evaluate((f) => (f as unknown as El).getBoundingClientRect().width);
      expect(frameWidth).toBeGreaterThan(viewport.width === 390 ? 340 : 900);
      await page.screenshot({ path: join(artifacts, `layout-${label}-email.png`), fullPage: true });
      if (viewport.width === 390) {
        expect(await page.locator('#outbox').isVisible()).toBe(false);
        await page.locator('#menu').click();
        await page.locator('#outbox').waitFor({ state: 'visible', ...WAIT });
        expect(await cutOff()).toEqual({ out: [], overflow: 0 });
        await page.screenshot({ path: join(artifacts, `layout-${label}-menu.png`) });
        await page.locator(`[data-template="password-reset"]`).click();
        expect(await page.locator('#outbox').isVisible()).toBe(false);
      } else {
        await page.locator(`[data-template="password-reset"]`).click();
      }
      await page.locator('#title').filter({ hasText: 'password-reset' }).waitFor(WAIT);
      await frameFitted();
      expect(await cutOff()).toEqual({ out: [], overflow: 0 });
      await page.screenshot({ path: join(artifacts, `layout-${label}-template.png`), fullPage: true });
      await page.goto(`http://127.0.0.1:${port}/#settings`);
      await page.locator('#settings-groups table').first().waitFor(WAIT);
      expect(await cutOff()).toEqual({ out: [], overflow: 0 });
      await page.screenshot({ path: join(artifacts, `layout-${label}-settings.png`), fullPage: true });
    });
  }

  it('sizes the frame to its email: a long email shows whole, down to the footer, at both widths', async () => {
    await open(DESKTOP, `#email/${ids.long}`);
    await frameFitted();
    const measure = () =>
      page.locator('#frame').evaluate((node) => {
        const frame = node as unknown as Frame;
        const doc = frame.contentDocument!;
        const footer = doc.getElementById('footer')!.getBoundingClientRect();
        return {
          frame: frame.clientHeight,
          document: doc.documentElement.scrollHeight,
          inner: doc.documentElement.clientHeight,
          footerInside: footer.bottom <= frame.clientHeight,
        };
      });
    const desktop = await measure();
    expect(desktop.frame).toBe(desktop.document);
    expect(desktop.inner).toBe(desktop.document);
    expect(desktop.footerInside).toBe(true);
    expect(desktop.frame).toBeGreaterThan(900);
    await page.locator('[data-width="mobile"]').click();
    await page.locator('#frame.mobile').waitFor(WAIT);
    await frameFitted();
    const mobile = await measure();
    expect(mobile.frame).toBe(mobile.document);
    expect(mobile.footerInside).toBe(true);
    // Narrower wraps more lines: the frame grew with it, and shrinks back.
    expect(mobile.frame).toBeGreaterThan(desktop.frame);
    await page.locator('[data-width="desktop"]').click();
    await page.locator('#frame.desktop').waitFor(WAIT);
    await frameFitted();
    expect((await measure()).frame).toBe(desktop.frame);
  });

  it('the dark toggle shows the email’s dark styles in the frame, and light again', async () => {
    await open(DESKTOP, `#template/welcome`);
    await frameFitted();
    const background = () =>
      page.locator('#frame').evaluate((node) => {
        const frame = node as unknown as Frame;
        const doc = frame.contentDocument!;
        const card = doc.querySelector('.card') ?? doc.body!;
        return [getComputedStyle(doc.body!).backgroundColor, getComputedStyle(card).backgroundColor];
      });
    const light = await background();
    await page.locator('[data-scheme="dark"]').click();
    await expect.poll(background, WAIT).not.toEqual(light);
    // The built-in dark palette: background #111315, surface #1B1E22.
    expect(await background()).toEqual(['rgb(17, 19, 21)', 'rgb(27, 30, 34)']);
    await frameFitted();
    await page.screenshot({ path: join(artifacts, 'layout-desktop-dark.png') });
    await page.locator('[data-scheme="light"]').click();
    await expect.poll(background, WAIT).toEqual(light);
  });

  it('forces light even when the viewer’s system is dark', async () => {
    context = await browser.newContext({ viewport: PHONE, colorScheme: 'dark' });
    page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/#template/welcome`);
    await page.locator('#title').filter({ hasText: 'welcome' }).waitFor(WAIT);
    await frameFitted();
    const body = () =>
      page
        .locator('#frame')
        .evaluate((f) => getComputedStyle((f as unknown as Frame).contentDocument!.body!).backgroundColor);
    expect(await body()).not.toBe('rgb(17, 19, 21)');
    await page.locator('[data-scheme="dark"]').click();
    await expect.poll(body, WAIT).toBe('rgb(17, 19, 21)');
    await frameFitted();
    await page.screenshot({ path: join(artifacts, 'layout-390-dark.png'), fullPage: true });
  });
});

describe('the outbox', () => {
  const visible = () =>
    page
      .locator('#outbox li:visible button')
      .evaluateAll((buttons) => buttons.map((b) => (b as unknown as El).dataset.email));

  it('search filters by subject, recipient and template', async () => {
    await open(DESKTOP, '');
    await page.locator('#outbox li').nth(3).waitFor(WAIT);
    expect((await visible()).sort()).toEqual(Object.values(ids).sort());
    await page.locator('#outbox-search').fill('newsletter');
    expect(await visible()).toEqual([ids.long]);
    await page.locator('#outbox-search').fill('FRED@example');
    expect(await visible()).toEqual([ids.withFiles]);
    await page.locator('#outbox-search').fill('password-reset');
    expect(await visible()).toEqual([ids.reset]);
    await page.locator('#outbox-search').fill('welcome dora');
    expect(await visible()).toEqual([ids.discarded]);
    await page.locator('#outbox-search').fill('nothing-like-this');
    expect(await visible()).toEqual([]);
    expect(await page.locator('#outbox-none').isVisible()).toBe(true);
    await page.locator('#outbox-search').fill('');
    expect(await visible()).toHaveLength(4);
  });

  it('lists the attachments with name, type and size, and downloads their bytes', async () => {
    await open(DESKTOP, `#email/${ids.withFiles}`);
    await page.locator('#attachments li').nth(1).waitFor(WAIT);
    expect(await page.locator('#attachments-title').textContent()).toBe('Attachments (2)');
    expect(await page.locator('#attachments li').allTextContents()).toEqual([
      'invoice 2026-12.pdfapplication/pdf2.4 KB',
      'notes.txttext/plain18 B',
    ]);
    const href = await page.locator('#attachments a').first().getAttribute('href');
    const download = await fetch(`http://127.0.0.1:${port}/${href}`);
    expect(download.headers.get('content-type')).toBe('application/octet-stream');
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; /);
    expect(Buffer.from(await download.arrayBuffer()).equals(PDF)).toBe(true);
    await open(DESKTOP, `#email/${ids.long}`);
    await page.locator('#attachments-title').filter({ hasText: 'No attachments' }).waitFor(WAIT);
  });

  it('deletes a captured email from the page; a held one is refused; a forged cross-origin delete is refused', async () => {
    const files = async (id: string) => (await readdir(join(root, 'outbox'))).filter((f) => f.startsWith(id));
    expect(await files(ids.discarded)).toHaveLength(4);
    // From another origin, even with a JSON body: nothing is deleted.
    const forged = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/outbox/delete',
          method: 'POST',
          headers: {
            host: `127.0.0.1:${port}`,
            origin: 'http://evil.example',
            'content-type': 'application/json',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject).end(JSON.stringify({ ids: [ids.discarded] }));
    });
    expect(forged).toBe(403);
    expect(await files(ids.discarded)).toHaveLength(4);
    // Ids are looked up in the folder's listing, never joined into a path as given.
    const hostile = await fetch(`http://127.0.0.1:${port}/api/outbox/delete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
      body: JSON.stringify({ ids: ['../ca', `../outbox/${ids.discarded}`, '.hold'] }),
    });
    for (const id of [`../outbox/${ids.discarded}`, '.hold', '..']) {
      const answer = await fetch(`http://127.0.0.1:${port}/api/outbox/delete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
        body: JSON.stringify({ ids: [ids.discarded, id] }),
      });
      expect(await answer.json()).toMatchObject({ error: { field: 'ids[1]' } });
    }
    expect(hostile.status).toBe(400);
    expect(await hostile.json()).toMatchObject({ error: { name: 'MessageError', field: 'ids[0]' } });
    expect((await readdir(root)).sort()).toEqual(['ca.pem', 'outbox']);
    expect(await files(ids.discarded)).toHaveLength(4);

    await open(DESKTOP, `#email/${ids.reset}`);
    await page.locator('[data-action="delete"]').click();
    await expect.poll(() => page.locator('#action-result').textContent(), WAIT).toMatch(/Still held/);
    expect(await files(ids.reset)).toHaveLength(4);

    await page.locator(`[data-email="${ids.discarded}"]`).click();
    await page.locator('#hold-status').filter({ hasText: 'Discarded' }).waitFor(WAIT);
    await page.locator('[data-action="delete"]').click();
    await expect.poll(() => page.locator('#action-result').textContent(), WAIT).toBe('Deleted.');
    await page.locator(`[data-email="${ids.discarded}"]`).waitFor({ state: 'detached', ...WAIT });
    expect(await files(ids.discarded)).toEqual([]);
    expect(await page.locator('#outbox li').count()).toBe(3);
  });
});

describe('the settings view', () => {
  it('shows where each value came from, secrets as set/unset only', async () => {
    await open(PHONE, '#settings');
    await page.locator('#settings-groups table').first().waitFor(WAIT);
    const row = (name: string) =>
      page
        .locator('#settings tr')
        .filter({ has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) })
        .first();
    expect(await row('SMTP password').locator('td').allTextContents()).toEqual([
      'set',
      'environment (SMTP_PASSWORD)',
    ]);
    expect(await row('SASL password').locator('td').allTextContents()).toEqual(['unset', 'default']);
    expect(await row('Sends through').locator('td').nth(1).textContent()).toBe('environment (SMTP_HOST)');
    expect(await row('Sends through').locator('td').first().textContent()).toMatch(/^smtp 127\.0\.0\.1:\d+/);
    expect(await row('Hold').locator('td').allTextContents()).toEqual(['on', 'environment (MAILROOM_HOLD)']);
    expect(await row('Delivers').locator('td').first().textContent()).toBe('when a person releases it');
    expect(await row('Topic').locator('td').allTextContents()).toEqual([
      'acme.mail',
      'environment (MAILROOM_KAFKA_TOPIC)',
    ]);
    expect(await row('Consumer group').locator('td').allTextContents()).toEqual([
      'mailroom-email-worker',
      'default',
    ]);
    expect(await row('App name').locator('td').allTextContents()).toEqual(['Acme', 'environment (APP_NAME)']);
    expect(await page.content()).not.toContain(SECRET);
    expect(await (await fetch(`http://127.0.0.1:${port}/api/settings`)).text()).not.toContain(SECRET);
  });

  it('verify connection logs in to the SMTP server and shows its result; a wrong password shows the typed error', async () => {
    await open(DESKTOP, '#settings');
    const before = peer.authAttempts;
    await page.locator('[data-action="verify"]').click();
    await expect
      .poll(() => page.locator('#action-result').textContent(), WAIT)
      .toMatch(/^Connection verified: hold .*released through smtp 127\.0\.0\.1/);
    expect(peer.authAttempts).toBe(before + 1);
    expect(peer.messages).toHaveLength(0);
    await page.screenshot({ path: join(artifacts, 'layout-desktop-settings-verified.png'), fullPage: true });

    const wrong = createPreviewHandler({
      enabled: true,
      watch: false,
      service: configFromEnv({ ...process.env, SMTP_PASSWORD: 'not-the-password' }),
    });
    const wrongServer = createServer(wrong);
    await new Promise<void>((resolve) => wrongServer.listen(0, '127.0.0.1', resolve));
    try {
      const at = `http://127.0.0.1:${(wrongServer.address() as AddressInfo).port}`;
      const answer = await fetch(`${at}/api/settings/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: at },
        body: '{}',
      });
      expect(answer.status).toBe(502);
      const body = (await answer.json()) as {
        ok: boolean;
        error: { code: string; status: number; message: string };
      };
      expect(body).toMatchObject({ ok: false, error: { code: 'auth', status: 535 } });
      expect(JSON.stringify(body)).not.toContain('not-the-password');
      const forged = await fetch(`${at}/api/settings/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
        body: '{}',
      });
      expect(forged.status).toBe(403);
    } finally {
      wrong.close();
      wrongServer.closeAllConnections();
      await new Promise((resolve) => wrongServer.close(resolve));
    }
  });
});
