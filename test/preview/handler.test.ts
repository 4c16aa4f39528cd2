/** createPreviewHandler over HTTP: problems shown with file and line, names looked up, reloads, refusals. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/handler.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { sandboxFiles, sandboxTransport } from '../../src/transports/sandbox.js';

let dir: string;
let server: Server;
let handler: PreviewHandler;
let base: string;
const service = { transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', appName: 'Acme' };

async function template(name: string, files: Record<string, string>) {
  for (const [file, body] of Object.entries(files)) {
    await mkdir(join(dir, 'templates', name, file.includes('/') ? 'preview' : ''), { recursive: true });
    await writeFile(join(dir, 'templates', name, file), body);
  }
}
const get = async (path: string) => {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
};
const api = async (path: string) => JSON.parse((await get(path)).body);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailroom-preview-'));
  await template('receipt', {
    'html.eta': '<p>Thanks, <%= it.customer %>.</p>\n<p>Total: <%= it.total %></p>',
    'subject.eta': 'Your receipt',
    'template.json': JSON.stringify({ fields: { customer: 'string', total: 'number' } }),
    'preview/default.json': JSON.stringify({ customer: 'Jane', total: 12 }),
    'preview/wrong-type.json': JSON.stringify({ customer: 'Jane', total: 'twelve' }),
    'preview/not-json.json': '{ customer: Jane',
  });
  await template('syntax', {
    'html.eta': '<p>one</p>\n<p>two</p>\n<% if (it.x { %>\n<p>four</p>\n<% } %>',
    'subject.eta': 'Syntax',
    'preview/default.json': JSON.stringify({ x: true }),
  });
  await template('runtime', {
    'html.eta': '<p>one</p>\n<p><%= it.order.id %></p>',
    'subject.eta': 'Runtime',
    'template.json': JSON.stringify({ fields: { order: 'string?' } }),
    'preview/default.json': '{}',
  });
  await template('runtime-minutes', {
    'html.eta': '<p>Expires in <%= formatMinutes(it.minutes) %></p>\n<p>one</p>\n<p><%= it.order.id %></p>',
    'subject.eta': 'Runtime',
    'template.json': JSON.stringify({ fields: { minutes: 'minutes', order: 'string?' } }),
    'preview/default.json': JSON.stringify({ minutes: 90 }),
  });
  await template('bad-fields', {
    'html.eta': '<p>x</p>',
    'subject.eta': 'x',
    'template.json': JSON.stringify({ fields: { total: 'money' } }),
  });
  handler = createPreviewHandler({
    enabled: true,
    service,
    templatesDir: join(dir, 'templates'),
    outboxDir: join(dir, 'outbox'),
  });
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  handler.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('createPreviewHandler', () => {
  it('lists templates with their data sets, and what could not be loaded', async () => {
    const list = await api('/api/templates');
    const sets = Object.fromEntries(
      list.templates.map((t: { name: string; sets: string[] }) => [t.name, t.sets]),
    );
    expect(sets.receipt).toEqual(['default', 'not-json', 'wrong-type']);
    expect(sets.verification).toEqual(['default', 'long-name', 'unicode']);
    expect(list.problems).toEqual([
      expect.objectContaining({
        template: 'bad-fields',
        field: 'total',
        message: expect.stringMatching(/type must be/),
      }),
    ]);
  });

  it('renders a data set', async () => {
    const view = await api('/api/templates/receipt/default');
    expect(view.subject).toBe('Your receipt');
    expect(view.html).toContain('Thanks, Jane.');
    expect(view.text).toContain('Total: 12');
    expect(view.frame).toBe('frame/template/receipt/default?locale=en');
  });

  it('renders a built-in in the language asked for, and names a bad one', async () => {
    const german = await api('/api/templates/welcome/default?locale=de');
    expect(german.subject).toMatch(/^Willkommen bei /);
    expect(german.frame).toBe('frame/template/welcome/default?locale=de');
    expect(german.headers).toContainEqual(['Language', 'de']);
    const bad = await api('/api/templates/welcome/default?locale=en_US');
    expect(bad.problem).toMatchObject({
      message: expect.stringContaining('locale: must be a BCP 47 language tag'),
    });
    const list = await api('/api/templates');
    expect(list.locales).toEqual({ default: 'en', available: ['en', 'ar', 'de', 'es', 'fr', 'pt-BR'] });
  });

  it('shows a syntax error with the file and line', async () => {
    const view = await api('/api/templates/syntax/default');
    expect(view.problem).toMatchObject({
      template: 'syntax',
      file: join(dir, 'templates', 'syntax', 'html.eta'),
      line: 3,
    });
    expect(view.problem.message).not.toContain('__eta');
  });

  it('finds the line of a runtime error in a template that uses mailroom’s helpers', async () => {
    const view = await api('/api/templates/runtime-minutes/default');
    expect(view.problem).toMatchObject({
      file: join(dir, 'templates', 'runtime-minutes', 'html.eta'),
      line: 3,
    });
  });

  it('shows a runtime error with the file and line', async () => {
    const view = await api('/api/templates/runtime/default');
    expect(view.problem).toMatchObject({ file: join(dir, 'templates', 'runtime', 'html.eta'), line: 2 });
    expect(view.problem.message).toMatch(/Cannot read properties of undefined/);
  });

  it('blames the data set file for wrong data, and for data that is not JSON', async () => {
    expect((await api('/api/templates/receipt/wrong-type')).problem).toMatchObject({
      field: 'total',
      file: join(dir, 'templates', 'receipt', 'preview', 'wrong-type.json'),
    });
    expect((await api('/api/templates/receipt/not-json')).problem).toMatchObject({
      file: join(dir, 'templates', 'receipt', 'preview', 'not-json.json'),
      message: expect.stringMatching(/JSON/),
    });
  });

  it('lists captured emails newest first, with headers decoded', async () => {
    const mail = new EmailService({
      transport: sandboxTransport({ dir: join(dir, 'outbox') }),
      from: service.from,
    });
    await mail.send({ to: 'jane@example.com', subject: 'Grüße · 你好 · مرحبا 🎉', text: 'first' });
    await mail.send({ to: 'jane@example.com', subject: 'Second', text: 'second' });
    const list = await api('/api/outbox');
    expect(list.map((e: { subject: string }) => e.subject)).toEqual(['Second', 'Grüße · 你好 · مرحبا 🎉']);
    const email = await api(`/api/outbox/${list[1].id}`);
    expect(email.headers).toContainEqual(['Subject', 'Grüße · 你好 · مرحبا 🎉']);
    expect(email.text).toBe('first');
    const eml = await fetch(`${base}/eml/${list[1].id}.eml`);
    expect(eml.headers.get('content-type')).toBe('message/rfc822');
    expect(await eml.text()).toMatch(/^Subject: =\?UTF-8\?/m);
  });

  it('looks names up and never reads a path it was given', async () => {
    for (const path of [
      '/api/templates/..%2F..%2Fpackage.json/default',
      '/frame/template/receipt/..%2F..%2F..%2Fpackage',
      '/frame/outbox/..%2F..%2Fetc%2Fpasswd',
      '/eml/..%2F..%2Fetc%2Fpasswd.eml',
      '/api/outbox/..%2Fx',
      '/nothing',
    ]) {
      const response = await get(path);
      expect(response.body).not.toMatch(/"name": "mailroom-js"|root:/);
      if (path.startsWith('/api/templates'))
        expect(JSON.parse(response.body).problem.message).toMatch(/no template/);
      else expect(response.status).toBe(404);
    }
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('serves the email in a sandbox, with scripts off', async () => {
    const response = await fetch(`${base}/frame/template/receipt/default`);
    expect(response.headers.get('content-security-policy')).toMatch(/^sandbox /);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('tells the page when a data set changes', async () => {
    const response = await fetch(`${base}/events`);
    const reader = response.body!.getReader();
    await reader.read(); // the retry line
    await writeFile(
      join(dir, 'templates', 'receipt', 'preview', 'default.json'),
      JSON.stringify({ customer: 'Joe', total: 3 }),
    );
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toContain('event: change');
    await reader.cancel();
    expect((await api('/api/templates/receipt/default')).html).toContain('Thanks, Joe.');
  });

  it('notices an outbox that appears after it started (the first email sent)', async () => {
    const outboxDir = join(dir, 'later-outbox');
    const late = createPreviewHandler({ enabled: true, service, outboxDir });
    const lateServer = createServer(late);
    await new Promise<void>((resolve) => lateServer.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(
        `http://127.0.0.1:${(lateServer.address() as { port: number }).port}/events`,
      );
      const reader = response.body!.getReader();
      await reader.read(); // the retry line
      const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from: service.from });
      await mail.send({ to: 'jane@example.com', subject: 'First', text: 'first' });
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toContain('event: change');
      await reader.cancel();
    } finally {
      late.close();
      lateServer.closeAllConnections();
      await new Promise((resolve) => lateServer.close(resolve));
    }
  });

  it('is off unless enabled, and refuses production unless forced', () => {
    const optionOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return isConfigError(error) ? error.option : error;
      }
    };
    expect(optionOf(() => createPreviewHandler({ enabled: false }))).toBe('enabled');
    const before = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      expect(optionOf(() => createPreviewHandler({ enabled: true, service }))).toBe('force');
      const forced = createPreviewHandler({ enabled: true, force: true, service, watch: false });
      expect(typeof forced).toBe('function');
      forced.close();
      // A NODE_ENV mailroom does not know (a deployment's own name for production) is held to
      // production's rule, and the refusal says why.
      process.env.NODE_ENV = 'live';
      expect(() => createPreviewHandler({ enabled: true, service })).toThrow(
        /with NODE_ENV=live \(a value mailroom does not know as development, test or staging/,
      );
      process.env.NODE_ENV = 'staging';
      const staging = createPreviewHandler({ enabled: true, service, watch: false });
      expect(typeof staging).toBe('function');
      staging.close();
    } finally {
      process.env.NODE_ENV = before;
    }
  });
});

/** What a browser would get for `path` when its address bar said `host` (a raw `Host` header). */
function getAs(
  port: number,
  host: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host } }, (res) => {
      const type = res.headers['content-type'];
      // An event stream never ends: its headers are the answer.
      if (type === 'text/event-stream') {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, type, body: '' });
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type, body }));
    });
    req.on('error', reject).end();
  });
}

/** An HTTP/1.0 request with no Host header at all (node:http's client always sends one). */
function getWithoutHost(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('end', () => resolve(answer)).on('error', reject);
  });
}

describe('the hosts the preview answers', () => {
  const TOKEN = 'rebinding-canary-5d1e';
  let hostsDir: string;
  let preview: PreviewHandler;
  let hostsServer: Server;
  let port: number;
  let id: string;

  beforeAll(async () => {
    hostsDir = await mkdtemp(join(tmpdir(), 'mailroom-preview-hosts-'));
    const outboxDir = join(hostsDir, 'outbox');
    const mail = new EmailService({ transport: sandboxTransport({ dir: outboxDir }), from: service.from });
    const files = sandboxFiles(
      await mail.sendVerificationEmail({
        to: 'jane@example.com',
        username: 'Jane',
        verificationUrl: `https://acme.example/verify?token=${TOKEN}`,
      }),
    );
    id = files!.eml.replace(/^.*\//, '').replace(/\.eml$/, '');
    preview = createPreviewHandler({
      enabled: true,
      service,
      outboxDir,
      watch: false,
      allowedHosts: ['mail.test', '.dev.test'],
    });
    hostsServer = createServer(preview);
    await new Promise<void>((resolve) => hostsServer.listen(0, '127.0.0.1', resolve));
    port = (hostsServer.address() as { port: number }).port;
  });
  afterAll(async () => {
    preview.close();
    hostsServer.closeAllConnections();
    await new Promise((resolve) => hostsServer.close(resolve));
    await rm(hostsDir, { recursive: true, force: true });
  });

  const routes = () => [
    '/',
    '/api/templates',
    '/api/templates/verification/default',
    '/api/outbox',
    `/api/outbox/${id}`,
    `/frame/outbox/${id}`,
    '/frame/template/verification/default',
    `/eml/${id}.eml`,
    '/events',
    '/nothing-here',
  ];

  it.each([
    'evil.example',
    '127.0.0.1.nip.io',
    'evil.example:3025',
    'localhost.evil.example',
    'mail.test.evil.example',
    'evil-mail.test',
    '[::2]',
    'localhost@evil.example',
    'evil.example/localhost',
  ])('refuses Host %s with a 403 on every route, saying which option to set', async (host) => {
    for (const path of routes()) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const res = await getAs(port, host, path, method);
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.type).toBe('text/plain; charset=utf-8');
        expect(res.body).not.toContain(TOKEN);
        expect(res.body).not.toContain('jane@example.com');
        if (method === 'GET') expect(res.body).toMatch(/allowedHosts/);
      }
    }
  });

  it('names the refused host and the option and flag that would allow it', async () => {
    const res = await getAs(port, '127.0.0.1.nip.io:3025', '/api/outbox');
    expect(res.body).toContain('not "127.0.0.1.nip.io"');
    expect(res.body).toContain("allowedHosts: ['127.0.0.1.nip.io']");
    expect(res.body).toContain('mailroom preview --allowed-hosts 127.0.0.1.nip.io');
    // Anything that is not a plain host name is not echoed.
    const odd = await getAs(port, 'evil.example/<b>', '/api/outbox');
    expect(odd.status).toBe(403);
    expect(odd.body).not.toContain('<b>');
    expect(odd.body).toContain('not this Host');
  });

  it('refuses a request with no Host header', async () => {
    const answer = await getWithoutHost(port, `/api/outbox/${id}`);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).not.toContain(TOKEN);
  });

  it.each([
    'localhost',
    'LocalHost:3025',
    '127.0.0.1',
    '127.0.0.1:3025',
    '127.42.0.7:80',
    '[::1]',
    '[::1]:3025',
    '[::ffff:127.0.0.1]:3025',
  ])('answers the loopback Host %s', async (host) => {
    const res = await getAs(port, host, `/api/outbox/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toContain(TOKEN);
  });

  it.each(['mail.test', 'mail.test:8080', 'dev.test', 'a.dev.test:3000'])(
    'answers %s, named in allowedHosts, on every route',
    async (host) => {
      for (const path of routes().filter((p) => p !== '/nothing-here')) {
        const res = await getAs(port, host, path);
        expect(res.status, path).toBe(200);
      }
      expect((await getAs(port, host, `/api/outbox/${id}`)).body).toContain(TOKEN);
    },
  );

  it('refuses an allowedHosts entry that is not a host name, naming the option', () => {
    for (const allowedHosts of [
      ['http://mail.test'],
      ['mail.test:8080'],
      ['*'],
      [''],
      ['a/b'],
      [42],
      'mail.test',
    ]) {
      let error: unknown;
      try {
        createPreviewHandler({ enabled: true, service, watch: false, allowedHosts: allowedHosts as never });
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error), JSON.stringify(allowedHosts)).toBe(true);
      expect((error as { option: string }).option).toBe('allowedHosts');
    }
  });
});
