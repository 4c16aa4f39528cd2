/** createPreviewHandler over HTTP: problems shown with file and line, names looked up, reloads, refusals. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { createPreviewHandler, type PreviewHandler } from '../../src/preview/handler.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { sandboxTransport } from '../../src/transports/sandbox.js';

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
    expect(view.frame).toBe('frame/template/receipt/default');
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
    } finally {
      process.env.NODE_ENV = before;
    }
  });
});
