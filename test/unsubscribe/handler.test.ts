/**
 * The unsubscribe endpoint on a real HTTP server: the one-click POST records the opt-out dated
 * when the email was sent; GET changes nothing; forged, tampered, expired, malformed and
 * replayed tokens record nothing; the pages are escaped and locked down. End to end: the URL in a
 * product email's header, POSTed as a mailbox provider does, stops the next product email.
 */
import type { RequestListener } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { memoryPreferenceStore, type PreferenceStore } from '../../src/preferences.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import {
  createUnsubscribeHandler,
  signUnsubscribeToken,
  type UnsubscribeHandler,
  type UnsubscribeHandlerOptions,
} from '../../src/unsubscribe/index.js';
import { loopbackServers } from '../helpers/serve.js';

const SECRET = 'unsubscribe-secret-unsubscribe-secret-1';
const OLD_SECRET = 'an-older-secret-an-older-secret-an-older';
const ONE_CLICK = 'List-Unsubscribe=One-Click';
const day = 86_400_000;

const serveAt = loopbackServers();
const serve = (handler: UnsubscribeHandler) => serveAt(handler as RequestListener, '/unsubscribe');

async function endpoint(extra: Partial<UnsubscribeHandlerOptions> = {}) {
  const preferences = extra.preferences ?? memoryPreferenceStore();
  const errors: unknown[] = [];
  const handler = createUnsubscribeHandler({
    secrets: [SECRET, OLD_SECRET],
    preferences,
    app: { name: 'Acme' },
    onError: (e) => void errors.push(e),
    ...extra,
  });
  return { url: await serve(handler), preferences, errors };
}

const token = (
  options: { address?: string; category?: 'product' | 'marketing'; issuedAt?: Date; secret?: string } = {},
) =>
  signUnsubscribeToken(
    {
      address: options.address ?? 'jane@example.com',
      category: options.category ?? 'product',
      issuedAt: options.issuedAt ?? new Date(),
    },
    options.secret ?? SECRET,
  );

/** A one-click POST as a mailbox provider sends it (RFC 8058 §3.2). */
function oneClick(url: string, t: string, body: string | FormData = ONE_CLICK) {
  return fetch(`${url}?token=${t}`, {
    method: 'POST',
    redirect: 'manual',
    ...(typeof body === 'string'
      ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }
      : { body }),
  });
}

describe('the one-click POST', () => {
  it('records the opt-out dated when it is asked for, and answers 200 without a redirect', async () => {
    const { url, preferences } = await endpoint();
    const sent = new Date(Math.floor(Date.now() / 1000) * 1000 - 3 * day);
    const before = Date.now();
    const response = await oneClick(url, token({ issuedAt: sent }));
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    const stored = await preferences.get('jane@example.com', 'product');
    expect(stored).toEqual({
      address: 'jane@example.com',
      category: 'product',
      allowed: false,
      at: expect.any(Date),
      source: 'one-click-unsubscribe',
    });
    expect(stored!.at.getTime()).toBeGreaterThanOrEqual(before);
    expect(await preferences.get('jane@example.com', 'marketing')).toBeUndefined();
  });

  it('takes multipart/form-data too, and a token signed with an older secret still in the list', async () => {
    const { url, preferences } = await endpoint();
    const form = new FormData();
    form.append('List-Unsubscribe', 'One-Click');
    const response = await oneClick(url, token({ category: 'marketing', secret: OLD_SECRET }), form);
    expect(response.status).toBe(200);
    expect((await preferences.get('jane@example.com', 'marketing'))?.allowed).toBe(false);
  });

  it('takes a multipart body whose boundary has capitals, as browsers and many clients make it', async () => {
    const { url, preferences } = await endpoint();
    const boundary = '----WebKitFormBoundary7MA4YWxkTrZu0gW';
    const response = await fetch(`${url}?token=${token()}`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`,
    });
    expect(response.status).toBe(200);
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });

  it('honours every opt-out it answers 200 to: from an email older than the last settings change, and in the same second as an opt-in', async () => {
    const { url, preferences } = await endpoint();
    const old = token({ issuedAt: new Date(Date.now() - 10 * day) });
    // The recipient opted in on the settings page after that email was sent…
    await preferences.set('jane@example.com', 'product', true, {
      at: new Date(Date.now() - 5 * day),
      source: 'settings-page',
    });
    // …and now presses Unsubscribe in it: the latest wish wins.
    expect((await oneClick(url, old)).status).toBe(200);
    expect(await preferences.get('jane@example.com', 'product')).toMatchObject({
      allowed: false,
      source: 'one-click-unsubscribe',
    });
    // Signed up a moment ago, mailed in the same second (the token keeps whole seconds), unsubscribed.
    await preferences.set('jane@example.com', 'marketing', true, { at: new Date(), source: 'signup' });
    expect((await oneClick(url, token({ category: 'marketing', issuedAt: new Date() }))).status).toBe(200);
    expect((await preferences.get('jane@example.com', 'marketing'))?.allowed).toBe(false);
    // Changing their mind later on the settings page wins again.
    await preferences.set('jane@example.com', 'product', true, {
      at: new Date(Date.now() + 1000),
      source: 'settings-page',
    });
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(true);
  });

  it.each([
    ['forged (another secret)', 403, () => token({ secret: 'someone-elses-secret-someone-elses-secret' })],
    ['tampered (another address in the payload)', 403, () => tamper(token())],
    ['expired (91 days old)', 403, () => token({ issuedAt: new Date(Date.now() - 91 * day) })],
    ['from the future', 403, () => token({ issuedAt: new Date(Date.now() + day) })],
    ['malformed', 400, () => 'not-a-token'],
    ['cut short', 400, () => token().slice(0, 20)],
    ['missing', 400, () => ''],
  ])('%s: %i with a plain page, nothing recorded', async (_name, status, make) => {
    const { url, preferences } = await endpoint();
    const response = await oneClick(url, make());
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await response.text()).toMatch(/<h1>This link (is incomplete|is not valid|has expired)<\/h1>/);
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('a POST without List-Unsubscribe=One-Click records nothing: 400', async () => {
    const { url, preferences } = await endpoint();
    for (const body of ['', 'List-Unsubscribe=Other', 'hello']) {
      expect((await oneClick(url, token(), body)).status).toBe(400);
    }
    const json = await fetch(`${url}?token=${token()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"List-Unsubscribe":"One-Click"}',
    });
    expect(json.status).toBe(400);
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('a store that fails: 500, so that the provider tries again; the error goes to onError', async () => {
    const broken: PreferenceStore = {
      ...memoryPreferenceStore(),
      set: () => Promise.reject(new Error('database down')),
    };
    const { url, errors } = await endpoint({ preferences: broken });
    expect((await oneClick(url, token())).status).toBe(500);
    expect(errors.map((e) => (e as Error).message)).toEqual(['database down']);
  });

  it('a body past 64 KiB gets 413, nothing recorded', async () => {
    const { url, preferences } = await endpoint();
    const response = await oneClick(url, token(), `${ONE_CLICK}&pad=${'x'.repeat(70_000)}`);
    expect(response.status).toBe(413);
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('other methods get 405 with Allow', async () => {
    const { url } = await endpoint();
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const response = await fetch(`${url}?token=${token()}`, { method });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD, POST');
    }
  });
});

describe('the page a person reaches', () => {
  it('GET changes nothing (link scanners fetch links) and asks, in the app’s words, with a button that POSTs', async () => {
    const { url, preferences } = await endpoint();
    const t = token({ category: 'marketing' });
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${url}?token=${t}`);
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).toContain('<h1>Unsubscribe from marketing emails from Acme?</h1>');
      // The form keeps the page's language, so the confirmation is in the same one.
      expect(html).toContain(`<form method="post" action="?token=${t}&#38;lang=en">`);
      expect(html).toContain('<input type="hidden" name="List-Unsubscribe" value="One-Click">');
      expect(html).toContain('jane@example.com');
    }
    expect((await fetch(`${url}?token=${t}`, { method: 'HEAD' })).status).toBe(200);
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('the page’s own POST records the choice and answers with a confirmation page', async () => {
    const { url, preferences } = await endpoint();
    const response = await oneClick(url, token(), `${ONE_CLICK}&confirm=page`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<h1>You are unsubscribed</h1>');
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });

  it('is locked down: strict CSP with the stylesheet’s hash, no caching, no referrer, no framing, no external asset', async () => {
    const { url } = await endpoint();
    const response = await fetch(`${url}?token=${token()}`);
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toMatch(
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'$/,
    );
    const html = await response.text();
    const { createHash } = await import('node:crypto');
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(html).not.toMatch(/<script|src=|href=|@import|url\(/i);
  });

  it('every answer, page or plain text, goes with the same locked-down headers', async () => {
    const broken: PreferenceStore = {
      ...memoryPreferenceStore(),
      set: () => Promise.reject(new Error('database down')),
    };
    const { url } = await endpoint();
    const failing = await endpoint({ preferences: broken });
    const answers: [string, Promise<Response>, number, RegExp][] = [
      ['the question', fetch(`${url}?token=${token()}`), 200, /^text\/html/],
      ['a forged link', fetch(`${url}?token=${token({ secret: 'x'.repeat(40) })}`), 403, /^text\/html/],
      ['the one-click answer', oneClick(url, token()), 200, /^text\/plain/],
      ['the confirmation', oneClick(url, token(), `${ONE_CLICK}&confirm=page`), 200, /^text\/html/],
      ['a POST without the one-click field', oneClick(url, token(), 'x=1'), 400, /^text\/html/],
      [
        'a body too large',
        oneClick(url, token(), `${ONE_CLICK}&pad=${'x'.repeat(70_000)}`),
        413,
        /^text\/plain/,
      ],
      ['another method', fetch(`${url}?token=${token()}`, { method: 'PUT' }), 405, /^text\/plain/],
      ['a store that fails', oneClick(failing.url, token()), 500, /^text\/html/],
    ];
    for (const [name, answer, status, type] of answers) {
      const response = await answer;
      expect([name, response.status, response.headers.get('content-type')]).toEqual([
        name,
        status,
        expect.stringMatching(type),
      ]);
      expect(response.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(response.headers.get('referrer-policy'), name).toBe('no-referrer');
      expect(response.headers.get('cache-control'), name).toBe('no-store');
      expect(response.headers.get('x-frame-options'), name).toBe('DENY');
      expect(response.headers.get('content-security-policy'), name).toMatch(/; frame-ancestors 'none'$/);
      await response.body?.cancel();
    }
  });

  it('uses the emails’ palette, light and dark', async () => {
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      brand: { colors: { primary: '#FF5A00' }, darkColors: { background: '#0B0B0C' } },
    });
    const { url } = await endpoint({ app: mail.app });
    const html = await (await fetch(`${url}?token=${token()}`)).text();
    // The button's label chosen for contrast: dark on this orange (5.95:1; white is 3.12:1).
    expect(html).toContain('background:#FF5A00; color:#111315;');
    expect(html).toMatch(/@media \(prefers-color-scheme: dark\)[\s\S]*background:#0B0B0C/);
    expect(html).toContain('<meta name="color-scheme" content="light dark">');
  });

  it('escapes every value it shows', async () => {
    const { url } = await endpoint({ app: { name: 'Acme <script>alert(1)</script> & "Co"' } });
    const html = await (await fetch(`${url}?token=${token({ address: "o'brien&co@example.com" })}`)).text();
    expect(html).not.toContain('<script>');
    expect(html).not.toContain("o'brien&co");
    expect(html).toContain('Acme &#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;Co&#34;');
    expect(html).toContain('o&#39;brien&#38;co@example.com');
  });
});

describe('createUnsubscribeHandler options', () => {
  const make = (options: object) => () =>
    createUnsubscribeHandler({
      secrets: [SECRET],
      preferences: memoryPreferenceStore(),
      ...options,
    } as UnsubscribeHandlerOptions);
  it.each([
    ['a short secret', 'secrets[1]', { secrets: [SECRET, 'short'] }],
    ['no secrets', 'secrets', { secrets: [] }],
    ['no store', 'preferences', { preferences: undefined }],
    ['a bad maxAgeDays', 'maxAgeDays', { maxAgeDays: -1 }],
    ['an app without a name', 'app', { app: { brand: {} } }],
    [
      'a colour that is no colour',
      'app.colors.primary',
      { app: { name: 'A', colors: { primary: 'red;}</style>' }, darkColors: {} } },
    ],
  ])('%s is a ConfigError naming %s', (_name, option, options) => {
    let error: unknown;
    try {
      make(options)();
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error) && error.option).toBe(option);
  });
});

describe('end to end', () => {
  it('a product email’s List-Unsubscribe URL, POSTed one-click, stops the next product email; security mail still goes', async () => {
    const preferences = memoryPreferenceStore();
    const handler = createUnsubscribeHandler({ secrets: [SECRET], preferences });
    const base = await serve(handler);
    const transport = memoryTransport();
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      preferences,
      unsubscribe: { url: base, secrets: [SECRET] },
      retry: false,
    });
    const email = { to: 'jane@example.com', subject: 'New this week', text: '…' };
    await mail.send({ ...email, category: 'product' });
    const header = transport.outbox[0]!.message.headers['List-Unsubscribe']!;
    const target = /^<([^>]+)>$/.exec(header)![1]!;
    expect(target.startsWith(`${base}?token=`)).toBe(true);

    const response = await fetch(target, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: transport.outbox[0]!.message.headers['List-Unsubscribe-Post'],
    });
    expect(response.status).toBe(200);

    const next = await mail.send({ ...email, category: 'product' });
    expect(next.suppressed).toEqual([{ address: 'jane@example.com', reason: 'opted-out' }]);
    const alert = await mail.send({ ...email, subject: 'New sign-in', category: 'security' });
    expect(alert.accepted).toEqual(['jane@example.com']);
    expect(transport.outbox.map((c) => c.message.category)).toEqual(['product', 'security']);
  });
});

/** The token with its payload's address changed, the signature kept. */
function tamper(t: string): string {
  const [body, mac] = t.split('.');
  const text = Buffer.from(body!, 'base64url').toString('utf8').replace('jane@', 'john@');
  return `${Buffer.from(text).toString('base64url')}.${mac}`;
}
