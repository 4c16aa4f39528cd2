/** sendgridTransport against a local HTTP server that speaks SendGrid's v3 Mail Send API. */
import { describe, expect, it } from 'vitest';
import { type EmailError, isConfigError, isMessageError } from '../../src/errors.js';
import { type SendgridTransportOptions, sendgridTransport } from '../../src/transports/sendgrid.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import { type SendgridPeer, type SendgridPeerOptions, startSendgridPeer } from '../helpers/sendgrid-peer.js';
import type { Fault } from './contract.js';
import { jsonApiContract, jsonApiHarness } from './json-api-cases.js';

const KEY = 'SG.abcdefghijklmnop.qrstuvwxyz0123456789';

const clientFor = (peer: SendgridPeer, extra: Partial<SendgridTransportOptions> = {}) =>
  sendgridTransport({ apiKey: KEY, baseUrl: peer.url, ...extra });

const sendgridError = (status: number, message: string, field: string | null = null) => ({
  status,
  body: { errors: [{ message, field, help: null }] },
});

const faults: Record<Fault, JsonApiFault> = {
  transient: sendgridError(500, 'Internal server error'),
  permanent: sendgridError(400, 'Does not contain a valid address.', 'personalizations.0.to'),
  drop: { drop: 'after-body' },
  slow: { delay: 2000 },
};

jsonApiContract<SendgridPeer, SendgridTransportOptions>(
  'sendgrid',
  'SendGrid',
  () => startSendgridPeer({ apiKey: KEY }),
  clientFor,
  faults,
  { apiKey: 'SG.wrong' },
);

describe('sendgridTransport', () => {
  const { start, service, hello, failure } = jsonApiHarness((options: Partial<SendgridPeerOptions> = {}) =>
    startSendgridPeer({ apiKey: KEY, ...options }),
  );

  it('sends text before html, tags as categories, metadata as custom_args, and returns X-Message-Id', async () => {
    const peer = await start();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
    const result = await service(clientFor(peer)).send({
      ...hello,
      replyTo: ['Support <support@acme.example>', 'billing@acme.example'],
      tags: ['welcome', 'signup'],
      metadata: { userId: 42 },
      category: 'marketing',
      attachments: [{ filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo' }],
    });
    const { body, id } = peer.messages[0]!;
    expect(body.content).toEqual([
      { type: 'text/plain', value: 'Hi Jane' },
      { type: 'text/html', value: '<p>Hi Jane</p>' },
    ]);
    expect(body).toMatchObject({
      categories: ['welcome', 'signup'],
      custom_args: { userId: '42', category: 'marketing' },
      reply_to_list: [{ email: 'support@acme.example', name: 'Support' }, { email: 'billing@acme.example' }],
      attachments: [
        {
          filename: 'logo.png',
          type: 'image/png',
          disposition: 'inline',
          content_id: 'logo',
          content: png.toString('base64'),
        },
      ],
    });
    expect(result.providerMessageId).toBe(id);
    expect(peer.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('sends an address given twice (to and cc) once, where SendGrid would refuse the repeat', async () => {
    const peer = await start();
    const result = await service(clientFor(peer)).send({
      ...hello,
      to: ['jane@example.com', 'bob@example.com'],
      cc: ['Jane@example.com', 'carol@example.com'],
      bcc: ['bob@example.com'],
    });
    expect(peer.messages[0]?.body.personalizations).toEqual([
      {
        to: [{ email: 'jane@example.com' }, { email: 'bob@example.com' }],
        cc: [{ email: 'carol@example.com' }],
      },
    ]);
    expect(result.accepted).toContain('carol@example.com');
  });

  it('in sandbox mode SendGrid validates the request and delivers nothing', async () => {
    const peer = await start();
    const transport = clientFor(peer, { sandboxMode: true });
    const result = await service(transport).send(hello);
    expect(peer.messages).toEqual([]);
    expect(peer.sandboxed[0]?.mail_settings).toEqual({ sandbox_mode: { enable: true } });
    expect(result.providerMessageId).toBeUndefined();
    expect(transport.describe?.()).toMatch(/sandbox mode/);
  });

  it.each([
    [sendgridError(400, 'The from email does not contain a valid address.', 'from'), 'rejected', 'permanent'],
    [
      sendgridError(401, 'The provided authorization grant is invalid, expired, or revoked'),
      'auth',
      'systemic',
    ],
    [sendgridError(403, 'The from address does not match a verified Sender Identity.'), 'auth', 'systemic'],
    [sendgridError(413, 'Payload Too Large'), 'rejected', 'permanent'],
    [sendgridError(404, 'resource not found'), 'config', 'systemic'],
  ] as const)('maps %o to %s (%s), one attempt', async (fault, code, failureClass) => {
    const peer = await start();
    peer.failNext(fault);
    const error = await failure(service(clientFor(peer)).send(hello));
    expect([error.code, error.failure, error.status]).toEqual([code, failureClass, fault.status]);
    expect(error.message).toContain(fault.body.errors[0]!.message);
    expect(peer.requests).toHaveLength(1);
  });

  it('names the field SendGrid refused', async () => {
    const peer = await start();
    peer.failNext(sendgridError(400, 'The from email does not contain a valid address.', 'from'));
    const error = await failure(service(clientFor(peer)).send(hello));
    expect(error.message).toMatch(/\(field from\)$/);
  });

  it('waits as long as a 429 Retry-After asks, then delivers once', async () => {
    const peer = await start();
    peer.failNext({ ...sendgridError(429, 'too many requests'), retryAfter: '1' });
    const mail = service(clientFor(peer));
    const retries: EmailError[] = [];
    mail.on('retrying', (e) => retries.push(e.error));
    const result = await mail.send(hello);
    expect(retries.map((e) => [e.code, e.failure, e.retryAfterMs])).toEqual([
      ['rate-limit', 'transient', 1000],
    ]);
    expect(result.attempts).toBe(2);
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(peer.messages).toHaveLength(1);
  });

  it('refuses more custom_args than SendGrid takes before sending, naming metadata', async () => {
    const peer = await start();
    const mail = service(clientFor(peer));
    const long: unknown = await failure(
      mail.send({
        ...hello,
        metadata: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'x'.repeat(200)])),
      }),
    );
    expect(isMessageError(long) && long.field).toBe('metadata');
    expect(peer.requests).toEqual([]);
  });

  it('without Retry-After, waits until the X-RateLimit-Reset SendGrid gives', async () => {
    const peer = await start();
    // Whole seconds: two ahead is at least one away.
    const reset = String(Math.ceil(Date.now() / 1000) + 2);
    peer.failNext({ ...sendgridError(429, 'too many requests'), headers: { 'x-ratelimit-reset': reset } });
    const mail = service(clientFor(peer));
    const waits: number[] = [];
    mail.on('retrying', (e) => waits.push(e.delayMs));
    await mail.send(hello);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(peer.messages).toHaveLength(1);
  });

  it('verify() checks the key and its mail.send scope with GET /v3/scopes, sending nothing', async () => {
    const peer = await start();
    await clientFor(peer).verify();
    await clientFor(peer, { fetch: globalThis.fetch }).verify();
    const wrong = (await clientFor(peer, { apiKey: 'SG.wrong' })
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([wrong.code, wrong.failure, wrong.status]).toEqual(['auth', 'systemic', 401]);
    const narrow = await start({ scopes: ['stats.read'] });
    const scoped = (await clientFor(narrow)
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([scoped.code, scoped.failure]).toEqual(['auth', 'systemic']);
    expect(scoped.message).toContain('mail.send');
    expect([peer.checks, peer.requests.length, narrow.messages.length]).toEqual([3, 0, 0]);
  });

  it('never puts the key in an error or a log line', async () => {
    const peer = await start();
    const logs: unknown[] = [];
    const wrong = 'SG.very-secret-wrong';
    const error = await failure(service(clientFor(peer, { apiKey: wrong }), logs).send(hello));
    peer.failNext(faults.transient);
    await service(clientFor(peer), logs).send(hello);
    const everything = JSON.stringify({ logs, message: error.message, stack: error.stack, error });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(KEY);
  });

  it('calls the region endpoints through an injected fetch', async () => {
    const urls: string[] = [];
    const fetch: typeof globalThis.fetch = async (url) => {
      urls.push(String(url));
      return new Response(null, { status: 202, headers: { 'x-message-id': 'abc' } });
    };
    for (const region of ['global', 'eu'] as const) {
      const result = await service(sendgridTransport({ apiKey: KEY, region, fetch })).send(hello);
      expect(result.providerMessageId).toBe('abc');
    }
    expect(urls).toEqual([
      'https://api.sendgrid.com/v3/mail/send',
      'https://api.eu.sendgrid.com/v3/mail/send',
    ]);
  });

  it('names a bad option when it is built, never repeating the key', () => {
    expect(() => sendgridTransport({ apiKey: '' })).toThrow(/^apiKey: /);
    expect(() => sendgridTransport({ apiKey: KEY, region: 'us' as never })).toThrow(/^region: /);
    expect(() => sendgridTransport({ apiKey: KEY, sandboxMode: 'yes' as never })).toThrow(/^sandboxMode: /);
    const error = (() => {
      try {
        sendgridTransport({ apiKey: KEY, baseUrl: `https://apikey:${KEY}@api.sendgrid.com` });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('baseUrl');
    expect((error as Error).message).not.toContain(KEY);
  });
});
