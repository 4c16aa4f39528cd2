/**
 * The proofing desk in the preview: held emails released, released elsewhere or discarded from the
 * page in Chromium through a real SMTP server; a test email sent from a template; and the buttons
 * refused to a forged cross-origin request, to a request without the page's token on a name that
 * is not loopback, and to hostile ids.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmailService, heldId, holdTransport, smtpTransport } from '../../src/index.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/index.js';
import { launchChromium } from '../helpers/chromium.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const FROM = 'Acme <no-reply@acme.example>';
const TOKEN = 'proof-desk-token-7c41';
const artifacts = fileURLToPath(new URL('../../test-artifacts/preview/', import.meta.url));

let root: string;
let peer: SmtpPeer;
let hold: ReturnType<typeof holdTransport>;
let mail: EmailService;
let handler: PreviewHandler;
let server: Server;
let port: number;
/** A page on another origin, for forged requests. */
let evil: Server;
let evilPort: number;
let browser: Browser;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailroom-preview-hold-'));
  await mkdir(artifacts, { recursive: true });
  peer = await startSmtpPeer();
  hold = holdTransport({
    transport: smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert }),
    dir: join(root, 'outbox'),
    onFirstWrite: false,
  });
  mail = new EmailService({ transport: hold, from: FROM, appName: 'Acme' });
  handler = createPreviewHandler({
    enabled: true,
    service: { transport: hold, from: FROM, appName: 'Acme' },
    allowedHosts: ['qa.lan', 'open.lan'],
    token: TOKEN,
  });
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  evil = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>evil</title>');
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  evilPort = (evil.address() as AddressInfo).port;
  browser = await launchChromium('the hold buttons of the preview', [
    '--host-resolver-rules=MAP qa.lan 127.0.0.1, MAP evil.example 127.0.0.1',
  ]);
});

afterAll(async () => {
  await browser?.close();
  handler?.close();
  for (const s of [server, evil]) {
    if (!s) continue;
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await hold?.close?.();
  await peer?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Holds one welcome email for `to`; returns its id. */
const held = async (to = 'jane@example.com', username = 'Jane') =>
  heldId(await mail.sendWelcomeEmail({ to, username, actionUrl: 'https://acme.example/start' }))!;

/** A POST with exactly these headers (Host included), as any client could send it. */
function post(path: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject).end(body);
  });
}

describe('the hold buttons over HTTP', () => {
  const json = { 'content-type': 'application/json' };
  const release = (id: string) => JSON.stringify({ ids: [id] });

  beforeEach(() => {
    peer.messages.length = 0;
  });

  it('refuses a release without Origin or Sec-Fetch-Site, from another origin, or cross-site', async () => {
    const id = await held();
    const host = `127.0.0.1:${port}`;
    for (const headers of [
      { host, ...json },
      { host, ...json, origin: 'http://evil.example' },
      { host, ...json, origin: `http://127.0.0.1:${port + 1}` },
      { host, ...json, 'sec-fetch-site': 'cross-site' },
      { host, ...json, 'sec-fetch-site': 'same-site', origin: `http://${host}` },
    ]) {
      const answer = await post('/api/hold/release', headers, release(id));
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).error.message).toMatch(/cannot change anything here/);
    }
    expect((await hold.get(id))?.status).toBe('held');
    expect(peer.messages).toHaveLength(0);
  });

  it('refuses a body that is not JSON (what a cross-site form sends)', async () => {
    const id = await held();
    const host = `127.0.0.1:${port}`;
    const answer = await post(
      '/api/hold/release',
      { host, origin: `http://${host}`, 'content-type': 'text/plain', 'x-mailroom-token': TOKEN },
      release(id),
    );
    expect(answer.status).toBe(415);
    expect(peer.messages).toHaveLength(0);
  });

  it('on a name that is not loopback, refuses a missing or wrong token and takes the right one', async () => {
    const id = await held();
    const host = `qa.lan:${port}`;
    const same = { host, ...json, origin: `http://${host}` };
    for (const headers of [same, { ...same, 'x-mailroom-token': 'wrong-token-0000' }]) {
      const answer = await post('/api/hold/release', headers, release(id));
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).error.message).toMatch(/token/);
    }
    expect(peer.messages).toHaveLength(0);
    const answer = await post('/api/hold/release', { ...same, 'x-mailroom-token': TOKEN }, release(id));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).results[0].outcome).toBe('released');
    expect(peer.messages).toHaveLength(1);
  });

  it('on a name that is not loopback and no token set, refuses every button', async () => {
    const open = createPreviewHandler({
      enabled: true,
      service: { transport: hold, from: FROM, appName: 'Acme' },
      allowedHosts: ['open.lan'],
      watch: false,
    });
    const openServer = createServer(open);
    await new Promise<void>((resolve) => openServer.listen(0, '127.0.0.1', resolve));
    const openPort = (openServer.address() as AddressInfo).port;
    try {
      const id = await held();
      const host = `open.lan:${openPort}`;
      const answer = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: openPort,
            path: '/api/hold/release',
            method: 'POST',
            headers: { host, ...json, origin: `http://${host}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject).end(release(id));
      });
      expect(answer).toBe(403);
      expect((await hold.get(id))?.status).toBe('held');
    } finally {
      open.close();
      openServer.closeAllConnections();
      await new Promise((resolve) => openServer.close(resolve));
    }
  });

  it('with no token set, a Host that says localhost is not enough: a request through a proxy, or from another machine, is refused', async () => {
    const open = createPreviewHandler({
      enabled: true,
      service: { transport: hold, from: FROM, appName: 'Acme' },
      watch: false,
    });
    const openServer = createServer(open);
    await new Promise<void>((resolve) => openServer.listen(0, '127.0.0.1', resolve));
    const openPort = (openServer.address() as AddressInfo).port;
    const send = (headers: Record<string, string>, body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: openPort, path: '/api/hold/release', method: 'POST', headers },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject).end(body);
      });
    try {
      const id = await held();
      const host = `localhost:${openPort}`;
      const page = { host, ...json, 'sec-fetch-site': 'same-origin' };
      // A proxy on this machine connects over loopback for whoever reached it.
      expect(await send({ ...page, 'x-forwarded-for': '203.0.113.9' }, release(id))).toBe(403);
      expect(await send({ ...page, forwarded: 'for=203.0.113.9' }, release(id))).toBe(403);
      expect((await hold.get(id))?.status).toBe('held');
      // A neighbour reaching a server that listens on 0.0.0.0 arrives on the machine's own network
      // address, whatever Host it writes (tests listen on loopback only: the check itself, here).
      const { refusal } = await import('../../src/preview/actions.js');
      const neighbour = { headers: page, socket: { localAddress: '192.168.1.20' } } as never;
      expect(refusal(neighbour, host, undefined)).toMatch(/beyond this machine.*need a token/);
      const local = { headers: page, socket: { localAddress: '::ffff:127.0.0.1' } } as never;
      expect(refusal(local, host, undefined)).toBeUndefined();
      // From this machine, over loopback, the button works without a token.
      expect(await send(page, release(id))).toBe(200);
      expect((await hold.get(id))?.status).toBe('released');
    } finally {
      open.close();
      openServer.closeAllConnections();
      await new Promise((resolve) => openServer.close(resolve));
    }
  });

  it.each(['../x', '../../outbox/secret', '.hold', '..'])(
    'refuses the hostile id %j with 400 naming the field',
    async (hostile) => {
      const id = await held();
      const host = `127.0.0.1:${port}`;
      const headers = { host, ...json, 'sec-fetch-site': 'same-origin', 'x-mailroom-token': TOKEN };
      for (const path of ['/api/hold/release', '/api/hold/discard']) {
        const answer = await post(path, headers, JSON.stringify({ ids: [id, hostile] }));
        expect(answer.status).toBe(400);
        expect(JSON.parse(answer.body).error).toMatchObject({ name: 'MessageError', field: 'ids[1]' });
      }
      expect((await hold.get(id))?.status).toBe('held');
      expect(peer.messages).toHaveLength(0);
    },
  );

  it('refuses a typed address with a line break, naming to', async () => {
    const id = await held();
    const host = `127.0.0.1:${port}`;
    const headers = { host, ...json, 'sec-fetch-site': 'same-origin', 'x-mailroom-token': TOKEN };
    const answer = await post(
      '/api/hold/release',
      headers,
      JSON.stringify({ ids: [id], to: 'qa@acme.example\r\nBcc: all@evil.example' }),
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).error).toMatchObject({ name: 'MessageError', field: 'to' });
    expect(peer.messages).toHaveLength(0);
  });
});

describe('the hold buttons in Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const WAIT = { timeout: 10_000 };

  beforeEach(async () => {
    peer.messages.length = 0;
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });
  afterEach(() => context?.close());

  /** Opens the page at `address` and the held email `id` in it. */
  const open = async (id: string, address = `http://127.0.0.1:${port}/?token=${TOKEN}`) => {
    await page.goto(address);
    await page.locator(`[data-email="${id}"]`).click(WAIT);
    await page.locator('#hold-status').filter({ hasText: 'Held' }).waitFor(WAIT);
  };
  const status = () => page.locator('#action-result');

  it('releases a held email to its recipients through SMTP, once, however often it is clicked', async () => {
    const id = await held('jane@example.com', 'Jane');
    await open(id);
    await page.locator(`[data-email="${id}"] .badge`).filter({ hasText: 'held' }).waitFor(WAIT);
    await page.screenshot({ path: join(artifacts, 'hold-held.png') });
    // A double click, and the same button pressed in a second tab at that moment: one send.
    const secondTab = page.evaluate(
      ({ id, token }) =>
        fetch('api/hold/release', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-mailroom-token': token },
          body: JSON.stringify({ ids: [id] }),
        }).then((r) => r.json()),
      { id, token: TOKEN },
    );
    await page.locator('[data-action="release"]').dblclick();
    expect(['released', 'busy', 'already-released']).toContain(
      ((await secondTab) as { results: { outcome: string }[] }).results[0]?.outcome,
    );
    await page.locator('#hold-status').filter({ hasText: 'Released' }).waitFor(WAIT);
    await expect
      .poll(() => status().textContent(), WAIT)
      .toMatch(/Released to jane@example.com via smtp|already released|under way/);
    await page.screenshot({ path: join(artifacts, 'hold-released.png') });
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['jane@example.com']);
    expect((await fromMime(peer.messages[0]!.raw)).subject).toMatch(/Welcome/);
    expect(await page.locator('#hold-history li').first().textContent()).toMatch(
      /released to jane@example.com via smtp/,
    );
    expect(await page.locator('[data-action="release"]').isDisabled()).toBe(true);
  });

  it('releases to a typed address, and refuses a malformed one with its typed error', async () => {
    const id = await held('bob@example.com', 'Bob');
    await open(id);
    await page.locator('#release-to').fill('not an address');
    await page.locator('[data-action="release-to"]').click();
    await expect.poll(() => status().textContent(), WAIT).toMatch(/^to: /);
    expect(peer.messages).toHaveLength(0);
    await page.locator('#release-to').fill('proof@acme.example');
    await page.locator('[data-action="release-to"]').click();
    await expect.poll(() => status().textContent(), WAIT).toBe('Released to proof@acme.example via smtp');
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['proof@acme.example']]);
  });

  it('a release the server refuses (550) shows the error and stays held; discard sets it aside', async () => {
    const id = await held('carol@example.com', 'Carol');
    await open(id);
    peer.failNext({ reply: 550, at: 'rcpt', message: 'No such user here' });
    await page.locator('[data-action="release"]').click();
    await expect
      .poll(() => status().textContent(), WAIT)
      .toMatch(/^Not released, still held \(rejected\): SMTP 550 .*No such user here/);
    await page.screenshot({ path: join(artifacts, 'hold-failed.png') });
    expect(await page.locator('#hold-status').textContent()).toMatch(/Held/);
    expect(await page.locator('#hold-history li').first().textContent()).toMatch(/failed/);
    expect((await hold.get(id))?.status).toBe('held');
    await page.locator('[data-action="discard"]').click();
    await page.locator('#hold-status').filter({ hasText: 'Discarded' }).waitFor(WAIT);
    expect(peer.messages).toHaveLength(0);
  });

  it('sends a test email from a template and data set: it is held, listed, and released from the page', async () => {
    await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}#template/password-reset`);
    await page.locator('#test-send').waitFor(WAIT);
    await page.locator('#test-to').fill('dana@example.com');
    await page.locator('[data-action="send-test"]').click();
    await expect
      .poll(() => status().textContent(), WAIT)
      .toMatch(/^Held for dana@example.com, not delivered yet/);
    const emails = await hold.list();
    const test = emails.find((e) => e.to.includes('dana@example.com'));
    expect(test?.template).toBe('password-reset');
    await page.locator('#release-all').click();
    await expect.poll(() => status().textContent(), WAIT).toMatch(/Released to dana@example.com via smtp/);
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toContainEqual(['dana@example.com']);
  });

  it('opened by a LAN name with the token, releases; without it, the button is refused', async () => {
    const id = await held('erin@example.com', 'Erin');
    await open(id, `http://qa.lan:${port}/`);
    await page.locator('[data-action="release"]').click();
    await expect.poll(() => status().textContent(), WAIT).toMatch(/token is missing or wrong/);
    expect(peer.messages).toHaveLength(0);
    await open(id, `http://qa.lan:${port}/?token=${TOKEN}`);
    await page.locator('[data-action="release"]').click();
    await expect.poll(() => status().textContent(), WAIT).toMatch(/Released to erin@example.com/);
    expect(peer.messages).toHaveLength(1);
  });

  it('a page on another origin cannot release: its forged POST is refused', async () => {
    const id = await held('frank@example.com', 'Frank');
    await page.goto(`http://evil.example:${evilPort}/`);
    const statuses = await page.evaluate(
      async ({ target, id }) => {
        const body = JSON.stringify({ ids: [id] });
        const results: (number | string)[] = [];
        // A simple request (no preflight): the browser sends it and only hides the answer.
        await fetch(`${target}/api/hold/release`, { method: 'POST', mode: 'no-cors', body }).then(
          (r) => results.push(r.type),
          (e: Error) => results.push(e.name),
        );
        await fetch(`${target}/api/hold/release`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        }).then(
          (r) => results.push(r.status),
          (e: Error) => results.push(e.name),
        );
        return results;
      },
      { target: `http://127.0.0.1:${port}`, id },
    );
    expect(statuses).toEqual(['opaque', 'TypeError']);
    expect((await hold.get(id))?.status).toBe('held');
    expect(peer.messages).toHaveLength(0);
  });
});

describe('the buttons without a hold', () => {
  it('lists no hold, refuses release with 409, and sends a test email through the transport', async () => {
    const { memoryTransport } = await import('../../src/index.js');
    const memory = memoryTransport();
    const plain = createPreviewHandler({
      enabled: true,
      service: { transport: memory, from: FROM, appName: 'Acme' },
      outboxDir: join(root, 'none'),
      watch: false,
    });
    const plainServer = createServer(plain);
    await new Promise<void>((resolve) => plainServer.listen(0, '127.0.0.1', resolve));
    const at = `http://127.0.0.1:${(plainServer.address() as AddressInfo).port}`;
    const call = (path: string, body: object) =>
      fetch(`${at}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: at },
        body: JSON.stringify(body),
      });
    try {
      expect(await (await fetch(`${at}/api/hold`)).json()).toMatchObject({ enabled: false, emails: [] });
      expect((await call('/api/hold/release', { ids: 'all' })).status).toBe(409);
      const sent = await call('/api/send', { template: 'welcome', set: 'default', to: 'gus@example.com' });
      expect(sent.status).toBe(200);
      expect(await sent.json()).toMatchObject({
        result: { transport: 'memory', accepted: ['gus@example.com'], captures: true },
      });
      expect(memory.outbox.map((e) => e.message.template)).toEqual(['welcome']);
      const bad = await call('/api/send', {
        template: 'welcome',
        set: 'default',
        to: 'gus@example.com\nBcc: x@y.z',
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { field: string } }).error.field).toMatch(/^to/);
      expect(memory.outbox).toHaveLength(1);
    } finally {
      plain.close();
      plainServer.closeAllConnections();
      await new Promise((resolve) => plainServer.close(resolve));
    }
  });
});
