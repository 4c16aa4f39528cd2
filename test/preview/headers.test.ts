/**
 * The headers on every kind of response the preview gives: no sniffing and no referrer on all of
 * them (the page is opened with `?token=…`), and a Content-Security-Policy whose `frame-ancestors`
 * lets only the preview frame it: checked on each kind of response, then in Chromium.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/handler.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { sandboxFiles, sandboxTransport } from '../../src/transports/sandbox.js';
import { launchChromium } from '../helpers/chromium.js';

let dir: string;
let server: Server;
let preview: PreviewHandler;
let base: string;
let id: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailroom-preview-headers-'));
  const outboxDir = join(dir, 'outbox');
  const from = 'Acme <no-reply@acme.example>';
  const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from });
  const files = sandboxFiles(
    await mail.send({
      to: 'jane@example.com',
      subject: 'Invoice',
      html: '<p>Your invoice</p>',
      attachments: [{ filename: 'invoice.html', content: '<script>alert(1)</script>' }],
    }),
  );
  id = files!.eml.replace(/^.*\//, '').replace(/\.eml$/, '');
  preview = createPreviewHandler({
    enabled: true,
    service: { transport: memoryTransport(), from },
    outboxDir,
    watch: false,
    basePath: '/_mail',
  });
  server = createServer(preview);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  preview.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** Each kind of response: its request, and the status and type it is known by. */
const kinds: [name: string, path: string, init: RequestInit, status: number, type: RegExp][] = [
  ['the page', '/_mail/?token=secret-token', {}, 200, /^text\/html/],
  ['the redirect to the page', '/_mail?token=secret-token', { redirect: 'manual' }, 302, /^$/],
  ['a template’s frame', '/_mail/frame/template/welcome/default', {}, 200, /^text\/html/],
  ['a captured email’s frame', `/_mail/frame/outbox/ID`, {}, 200, /^text\/html/],
  ['the template list', '/_mail/api/templates', {}, 200, /^application\/json/],
  ['a template’s view', '/_mail/api/templates/welcome/default', {}, 200, /^application\/json/],
  ['the outbox', '/_mail/api/outbox', {}, 200, /^application\/json/],
  ['a captured email', `/_mail/api/outbox/ID`, {}, 200, /^application\/json/],
  ['the settings', '/_mail/api/settings', {}, 200, /^application\/json/],
  ['the hold', '/_mail/api/hold', {}, 200, /^application\/json/],
  ['the checks', '/_mail/api/checks', {}, 200, /^application\/json/],
  ['one email’s checks', '/_mail/api/checks/template/welcome/default', {}, 200, /^application\/json/],
  [
    'a check from another site, refused',
    '/_mail/api/checks',
    { headers: { 'sec-fetch-site': 'cross-site' } },
    403,
    /^application\/json/,
  ],
  [
    'a button’s answer',
    '/_mail/api/send',
    { method: 'POST', headers: { 'sec-fetch-site': 'same-origin', 'content-type': 'text/plain' } },
    415,
    /^application\/json/,
  ],
  ['a button pressed from elsewhere', '/_mail/api/send', { method: 'POST' }, 403, /^application\/json/],
  ['an attachment', `/_mail/attachment/ID/0`, {}, 200, /^application\/octet-stream/],
  ['the .eml', `/_mail/eml/ID.eml`, {}, 200, /^message\/rfc822/],
  ['nothing there', '/_mail/nothing', {}, 404, /^text\/plain/],
  ['outside the base path', '/elsewhere', {}, 404, /^text\/plain/],
  ['a bad path', '/_mail/%E0%A4%A', {}, 400, /^text\/plain/],
  ['another method', '/_mail/', { method: 'PUT' }, 405, /^text\/plain/],
  ['a button that does not exist', '/_mail/api/nothing', { method: 'POST' }, 405, /^text\/plain/],
];

describe('every response of the preview', () => {
  it.each(kinds)(
    '%s: nosniff, no referrer, framed only by the preview',
    async (_name, path, init, status, type) => {
      const response = await fetch(`${base}${path.replace('ID', id)}`, init);
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type') ?? '').toMatch(type);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('content-security-policy')).toMatch(/(^|; )frame-ancestors 'self'$/);
      await response.body?.cancel();
    },
  );

  it('a host it does not answer too (a DNS-rebinding name: fetch cannot set Host)', async () => {
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(`${base}/_mail/`, { headers: { host: 'evil.test' } }, (res) => {
        expect(res.statusCode).toBe(403);
        res.resume();
        resolve(res.headers);
      });
      req.on('error', reject);
      req.end();
    });
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['content-security-policy']).toBe("frame-ancestors 'self'");
  });

  it('the event stream too', async () => {
    const response = await fetch(`${base}/_mail/events`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('content-security-policy')).toBe("frame-ancestors 'self'");
    await response.body?.cancel();
  });

  it('keeps each route’s own policy whole beside frame-ancestors', async () => {
    const policy = async (path: string) =>
      (await fetch(`${base}${path.replace('ID', id)}`)).headers.get('content-security-policy')!;
    expect(await policy('/_mail/')).toMatch(
      /^default-src 'none'; script-src 'nonce-[^']+'; style-src 'nonce-[^']+'; .*; form-action 'none'; frame-ancestors 'self'$/,
    );
    expect(await policy('/_mail/frame/outbox/ID')).toMatch(
      /^sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; .*; frame-ancestors 'self'$/,
    );
    expect(await policy('/_mail/attachment/ID/0')).toBe(
      "sandbox; default-src 'none'; frame-ancestors 'self'",
    );
  });
});

describe('in Chromium', () => {
  it('another site’s page cannot frame the preview or a captured email; the preview’s own page still frames its renders', async () => {
    // Another origin: another port, on the name the preview also answers.
    const elsewhere = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<iframe id="page" src="${base}/_mail/"></iframe><iframe id="email" src="${base}/_mail/frame/outbox/${id}"></iframe>`,
      );
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const browser = await launchChromium('the preview’s frame-ancestors');
    try {
      const page = await browser.newPage();
      const refused: string[] = [];
      page.on('console', (message) => {
        if (/frame-ancestors/.test(message.text())) refused.push(message.text());
      });
      await page.goto(`http://localhost:${(elsewhere.address() as { port: number }).port}/`);
      await expect.poll(() => refused.length).toBe(2);
      for (const frame of page.frames().slice(1)) expect(frame.url()).not.toMatch(/^http:\/\/127\.0\.0\.1/);

      await page.goto(`${base}/_mail/?token=secret-token`);
      await page.getByText('Invoice').first().click();
      await expect
        .poll(async () => (await page.frameLocator('#frame').locator('body').textContent()) ?? '')
        .toContain('Your invoice');
      expect(refused).toHaveLength(2);
    } finally {
      await browser.close();
      elsewhere.closeAllConnections();
      await new Promise((resolve) => elsewhere.close(resolve));
    }
  });
});
