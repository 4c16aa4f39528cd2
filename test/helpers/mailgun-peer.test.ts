/** The Mailgun peer, driven by Mailgun's own client (mailgun.js) and by plain fetch. */
import { gzipSync } from 'node:zlib';
import Mailgun from 'mailgun.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type MailgunPeer, startMailgunPeer } from './mailgun-peer.js';

const KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const DOMAIN = 'mg.acme.example';
const AUTH = `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}`;
const hello = {
  from: 'Acme <no-reply@mg.acme.example>',
  to: 'jane@example.com',
  subject: 'Hi',
  text: 'Hi Jane',
};

async function peerFor(): Promise<MailgunPeer> {
  const peer = await startMailgunPeer({ apiKey: KEY, domains: [DOMAIN] });
  onTestFinished(() => peer.close());
  return peer;
}

const clientFor = (peer: MailgunPeer, key = KEY) =>
  new Mailgun(FormData).client({ username: 'api', key, url: peer.url });

/** mailgun.js rejects with an APIError carrying the HTTP status and the body's message as `details`. */
async function rejection(promise: Promise<unknown>) {
  const error = await promise.then(
    () => expect.fail('expected the call to be rejected'),
    (e: unknown) => e,
  );
  return error as { status?: number; details?: string; message?: string };
}

function post(
  peer: MailgunPeer,
  body: RequestInit['body'],
  headers: Record<string, string> = {},
  path = DOMAIN,
) {
  return fetch(`${peer.url}/v3/${path}/messages`, {
    method: 'POST',
    headers: { authorization: AUTH, ...headers },
    body,
  });
}

describe('Mailgun peer', () => {
  it('receives every field and the exact file bytes that mailgun.js sends', async () => {
    const peer = await peerFor();
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x0d, 0x0a]);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x01]);

    const result = await clientFor(peer).messages.create(DOMAIN, {
      from: 'Acme <no-reply@mg.acme.example>',
      to: ['Jane <jane@example.com>', 'bob@example.com'],
      cc: 'carol@example.com',
      subject: 'Your report',
      text: 'See attached.',
      html: '<p>See attached. <img src="cid:logo.png"></p>',
      'o:tag': ['reports', 'monthly'],
      'o:testmode': true,
      'h:Reply-To': 'support@acme.example',
      'v:user-id': '42',
      attachment: { data: pdf, filename: 'report.pdf' },
      inline: { data: png, filename: 'logo.png' },
    });

    const [message] = peer.messages;
    expect(result).toEqual({ status: 200, id: message?.id, message: 'Queued. Thank you.' });
    expect(message?.id).toMatch(/^<\d{14}\.[0-9a-f]+@mg\.acme\.example>$/);
    expect(message?.domain).toBe(DOMAIN);
    expect(message?.encoding).toBe('multipart/form-data');
    expect(message?.fields).toEqual({
      from: ['Acme <no-reply@mg.acme.example>'],
      to: ['Jane <jane@example.com>', 'bob@example.com'],
      cc: ['carol@example.com'],
      subject: ['Your report'],
      text: ['See attached.'],
      html: ['<p>See attached. <img src="cid:logo.png"></p>'],
      'o:tag': ['reports', 'monthly'],
      'o:testmode': ['yes'],
      'h:Reply-To': ['support@acme.example'],
      'v:user-id': ['42'],
    });
    // mailgun.js wraps Buffers in untyped Blobs, which go out as application/octet-stream.
    expect(message?.files).toEqual([
      { field: 'attachment', filename: 'report.pdf', contentType: 'application/octet-stream', content: pdf },
      { field: 'inline', filename: 'logo.png', contentType: 'application/octet-stream', content: png },
    ]);
    expect(peer.requests).toEqual([{ at: message?.at, status: 200 }]);
  });

  it('refuses a wrong API key with 401 Forbidden', async () => {
    const peer = await peerFor();
    const error = await rejection(clientFor(peer, 'key-wrong').messages.create(DOMAIN, hello));
    expect([error.status, error.details]).toEqual([401, 'Forbidden']);
    expect(peer.messages).toEqual([]);
    expect(peer.requests.map((r) => r.status)).toEqual([401]);
  });

  it('answers 404 "Domain not found" for a domain it does not have', async () => {
    const peer = await peerFor();
    const error = await rejection(clientFor(peer).messages.create('mg.other.example', hello));
    expect([error.status, error.details]).toEqual([404, 'Domain not found: mg.other.example']);
    expect(peer.messages).toEqual([]);
  });

  it('plays a scripted 429, then accepts the next call on the same keep-alive connection', async () => {
    const peer = await peerFor();
    peer.failNext({ status: 429, retryAfter: '3', body: '{"message":"Too many requests"}' });
    const client = clientFor(peer);
    const error = await rejection(client.messages.create(DOMAIN, hello));
    expect([error.status, error.details]).toEqual([429, 'Too many requests']);
    expect(peer.messages).toEqual([]);

    const result = await client.messages.create(DOMAIN, hello);
    expect(result.status).toBe(200);
    expect(peer.messages.map((m) => m.id)).toEqual([result.id]);
    expect(peer.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(peer.connections).toBe(1);
  });

  it('drops the connection after reading the body: mailgun.js fails and nothing is recorded', async () => {
    const peer = await peerFor();
    peer.failNext({ drop: 'after-body' });
    const client = clientFor(peer);
    const error = await rejection(client.messages.create(DOMAIN, hello));
    // mailgun.js reports a transport failure as status 400 with the socket error's code.
    expect([error.status, error.message]).toEqual([400, 'ECONNRESET']);
    expect(peer.messages).toEqual([]);
    expect(peer.requests.map((r) => r.status)).toEqual(['dropped']);

    expect((await client.messages.create(DOMAIN, hello)).status).toBe(200);
    expect(peer.messages).toHaveLength(1);
  });

  it('accepts a urlencoded POST from plain fetch', async () => {
    const peer = await peerFor();
    const form = new URLSearchParams([...Object.entries(hello), ['to', 'bob@example.com'], ['o:tag', 'x']]);
    const response = await post(peer, form);
    const body = (await response.json()) as { id: string; message: string };
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'application/json']);
    expect(body).toEqual({ id: peer.messages[0]?.id, message: 'Queued. Thank you.' });
    expect(peer.messages[0]).toMatchObject({
      encoding: 'application/x-www-form-urlencoded',
      fields: {
        from: [hello.from],
        to: ['jane@example.com', 'bob@example.com'],
        subject: ['Hi'],
        text: ['Hi Jane'],
        'o:tag': ['x'],
      },
      files: [],
    });
  });

  it.each([
    ['no from', { to: 'a@example.com', text: 'x' }, 'from parameter is missing'],
    ['no to', { from: 'a@example.com', text: 'x' }, 'to parameter is missing'],
    [
      'no body',
      { from: 'a@example.com', to: 'b@example.com', subject: 'x' },
      "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified",
    ],
    ['four tags', { ...hello, 'o:tag': ['a', 'b', 'c', 'd'] }, 'Too many tags; max is 3'],
    [
      'over 16 kB of options',
      { ...hello, 'v:blob': 'x'.repeat(16 * 1024) },
      'Send options (parameters starting with o:, h:, v:, or t:) are limited to 16 kB total',
    ],
  ])('refuses a message with %s (400)', async (_, fields, message) => {
    const peer = await peerFor();
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      for (const v of [value].flat()) form.append(name, v);
    }
    const response = await post(peer, form);
    expect([response.status, await response.json()]).toEqual([400, { message }]);
    expect(peer.messages).toEqual([]);
    expect(peer.requests.map((r) => r.status)).toEqual([400]);
  });

  it('refuses a body over 25 MB with 413, counting a gzip body uncompressed', async () => {
    const peer = await peerFor();
    const urlencoded = { 'content-type': 'application/x-www-form-urlencoded' };
    const big = `text=${'x'.repeat(25 * 1024 * 1024)}&${new URLSearchParams(hello)}`;
    expect((await post(peer, big, urlencoded)).status).toBe(413);
    const gzip = { ...urlencoded, 'content-encoding': 'gzip' };
    expect((await post(peer, gzipSync(big), gzip)).status).toBe(413);
    expect((await post(peer, gzipSync(new URLSearchParams(hello).toString()), gzip)).status).toBe(200);
    expect(peer.requests.map((r) => r.status)).toEqual([413, 413, 200]);
    expect(peer.messages[0]?.fields.text).toEqual([hello.text]);
  });

  it('sends a scripted status with its Retry-After header and body, before checking auth', async () => {
    const peer = await peerFor();
    peer.failNext({ status: 503, retryAfter: 'Wed, 21 Oct 2026 07:28:00 GMT' });
    peer.failNext({ status: 500, body: 'upstream broke' }, 2);
    const first = await post(peer, new URLSearchParams(hello), { authorization: 'Basic nope' });
    expect([first.status, first.headers.get('retry-after'), await first.json()]).toEqual([
      503,
      'Wed, 21 Oct 2026 07:28:00 GMT',
      { message: 'Service Unavailable' },
    ]);
    for (let i = 0; i < 2; i++) {
      const next = await post(peer, new URLSearchParams(hello));
      expect([next.status, next.headers.get('retry-after'), await next.text()]).toEqual([
        500,
        null,
        'upstream broke',
      ]);
    }
    expect((await post(peer, new URLSearchParams(hello))).status).toBe(200);
    expect(peer.requests.map((r) => r.status)).toEqual([503, 500, 500, 200]);
  });

  it('holds a delayed request, then answers 503; close() does not wait for a held one', async () => {
    const peer = await peerFor();
    peer.failNext({ delay: 150 });
    const started = performance.now();
    const response = await post(peer, new URLSearchParams(hello));
    expect(response.status).toBe(503);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(peer.messages).toEqual([]);

    peer.failNext({ delay: 60_000 });
    const held = post(peer, new URLSearchParams(hello)).catch((e: unknown) => e);
    await expect.poll(() => peer.requests.length).toBe(2);
    const closing = performance.now();
    await peer.close();
    expect(performance.now() - closing).toBeLessThan(1000);
    expect(await held).toBeInstanceOf(TypeError);
  });

  it('answers 404 without JSON on other paths and does not count them', async () => {
    const peer = await peerFor();
    const response = await fetch(`${peer.url}/v3/${DOMAIN}/messages`, { headers: { authorization: AUTH } });
    expect([response.status, await response.text()]).toEqual([404, 'Not Found']);
    expect((await post(peer, new URLSearchParams(hello), {}, `${DOMAIN}/events`)).status).toBe(404);
    expect(peer.requests).toEqual([]);
  });
});
