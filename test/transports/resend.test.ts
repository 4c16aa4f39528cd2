/** resendTransport against a local HTTP server that speaks Resend's API, idempotency keys included. */
import { describe, expect, it } from 'vitest';
import { type EmailError, isConfigError, isMessageError } from '../../src/errors.js';
import { type ResendTransportOptions, resendTransport } from '../../src/transports/resend.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import { type ResendPeer, startResendPeer } from '../helpers/resend-peer.js';
import type { Fault } from './contract.js';
import { jsonApiContract, jsonApiHarness } from './json-api-cases.js';

const KEY = 're_123456789_abcdefghijklmnop';

const clientFor = (peer: ResendPeer, extra: Partial<ResendTransportOptions> = {}) =>
  resendTransport({ apiKey: KEY, baseUrl: peer.url, ...extra });

const resendError = (statusCode: number, name: string, message: string) => ({
  status: statusCode,
  body: { statusCode, name, message },
});

const faults: Record<Fault, JsonApiFault> = {
  transient: resendError(500, 'application_error', 'An unexpected error occurred.'),
  permanent: resendError(422, 'validation_error', 'Invalid `to` field.'),
  // Resend sent it, and the answer was lost: the retry's Idempotency-Key gets the first answer.
  drop: { drop: 'after-processing' },
  slow: { delay: 2000 },
};

jsonApiContract<ResendPeer, ResendTransportOptions>(
  'resend',
  'Resend',
  () => startResendPeer({ apiKey: KEY }),
  clientFor,
  faults,
  { apiKey: 're_wrong' },
);

describe('resendTransport', () => {
  const { start, service, hello, failure } = jsonApiHarness(() => startResendPeer({ apiKey: KEY }));

  it('sends the bearer key, tags and metadata as tags, an inline image, and returns the id', async () => {
    const peer = await start();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
    const result = await service(clientFor(peer)).send({
      ...hello,
      tags: ['welcome'],
      metadata: { userId: 42, plan: 'pro' },
      attachments: [{ filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo' }],
    });
    expect(peer.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
    const { body, id } = peer.messages[0]!;
    expect(body.tags).toEqual([
      { name: 'welcome', value: 'true' },
      { name: 'userId', value: '42' },
      { name: 'plan', value: 'pro' },
      { name: 'category', value: 'transactional' },
    ]);
    expect(body.attachments).toEqual([
      {
        filename: 'logo.png',
        content: png.toString('base64'),
        content_type: 'image/png',
        content_id: 'logo',
      },
    ]);
    expect(result.providerMessageId).toBe(id);
  });

  it('a dropped answer is retried with the same Idempotency-Key, and Resend sends it once', async () => {
    const peer = await start();
    peer.failNext({ drop: 'after-processing' });
    const mail = service(clientFor(peer));
    const retries: EmailError[] = [];
    mail.on('retrying', (e) => retries.push(e.error));
    const result = await mail.send({ ...hello, idempotencyKey: 'welcome/user-42' });
    expect(retries.map((e) => e.failure)).toEqual(['ambiguous']);
    expect(peer.requests.map((r) => [r.status, r.headers['idempotency-key']])).toEqual([
      ['dropped', 'welcome/user-42'],
      [200, 'welcome/user-42'],
    ]);
    expect(peer.messages).toHaveLength(1);
    expect(result.providerMessageId).toBe(peer.messages[0]?.id);
  });

  it('sends the same email twice (a redelivery) once, keyed by its idempotency key', async () => {
    const peer = await start();
    const mail = service(clientFor(peer));
    const first = await mail.send({ ...hello, idempotencyKey: 'verify:user-7' });
    const again = await mail.send({ ...hello, idempotencyKey: 'verify:user-7' });
    expect(again.providerMessageId).toBe(first.providerMessageId);
    expect(peer.messages).toHaveLength(1);
  });

  it('keys an email without an idempotency key by its Message-ID', async () => {
    const peer = await start();
    const result = await service(clientFor(peer)).send(hello);
    expect(peer.requests[0]?.headers['idempotency-key']).toBe(result.messageId);
  });

  it.each([
    [{ tags: ['spring sale'] }, 'tags[0]'],
    [{ metadata: { 'user.id': 1 } }, 'metadata.user.id'],
    [{ metadata: { plan: 'pro plus' } }, 'metadata.plan'],
  ])('refuses %o before sending, naming %s', async (patch, field) => {
    const peer = await start();
    const error: unknown = await failure(service(clientFor(peer)).send({ ...hello, ...patch }));
    expect(isMessageError(error) && error.field).toBe(field);
    expect(peer.requests).toEqual([]);
  });

  it.each([
    [resendError(401, 'missing_api_key', 'Missing API key'), 'auth', 'systemic'],
    [
      resendError(401, 'restricted_api_key', 'This API key is restricted to only send emails'),
      'auth',
      'systemic',
    ],
    [resendError(403, 'invalid_api_key', 'API key is invalid'), 'auth', 'systemic'],
    [resendError(403, 'validation_error', 'The acme.example domain is not verified'), 'config', 'systemic'],
    [resendError(400, 'validation_error', 'Invalid `from` field'), 'rejected', 'permanent'],
    [
      resendError(422, 'invalid_attachment', 'Attachment must have either a `content` or `path`'),
      'rejected',
      'permanent',
    ],
    [
      resendError(409, 'invalid_idempotent_request', 'Same idempotency key used with a different payload'),
      'rejected',
      'permanent',
    ],
    [
      resendError(429, 'monthly_quota_exceeded', 'You have reached your monthly email sending quota'),
      'account',
      'systemic',
    ],
    [
      resendError(451, 'security_error', 'We may have found a security issue with the request'),
      'rejected',
      'permanent',
    ],
  ] as const)('maps %o to %s (%s), one attempt', async (fault, code, failureClass) => {
    const peer = await start();
    peer.failNext(fault);
    const error = await failure(service(clientFor(peer)).send(hello));
    expect([error.code, error.failure, error.status]).toEqual([code, failureClass, fault.status]);
    expect(error.message).toContain(`(${fault.body.name})`);
    expect(peer.requests).toHaveLength(1);
  });

  it.each([
    [resendError(429, 'rate_limit_exceeded', 'Too many requests'), 'rate-limit'],
    [
      resendError(429, 'daily_quota_exceeded', 'You have reached your daily email sending quota'),
      'rate-limit',
    ],
    [
      resendError(
        409,
        'concurrent_idempotent_requests',
        'Same idempotency key used while a request is in progress',
      ),
      'deferred',
    ],
    [resendError(500, 'internal_server_error', 'An unexpected error occurred'), 'provider'],
  ] as const)('retries %o (%s), then delivers once', async (fault, code) => {
    const peer = await start();
    peer.failNext(fault);
    const mail = service(clientFor(peer));
    const retries: EmailError[] = [];
    mail.on('retrying', (e) => retries.push(e.error));
    const result = await mail.send(hello);
    expect(retries.map((e) => [e.code, e.failure])).toEqual([[code, 'transient']]);
    expect(result.attempts).toBe(2);
    expect(peer.messages).toHaveLength(1);
  });

  it('waits as long as a 429 Retry-After asks', async () => {
    const peer = await start();
    peer.failNext({ ...resendError(429, 'rate_limit_exceeded', 'Too many requests'), retryAfter: '1' });
    const mail = service(clientFor(peer));
    const waits: number[] = [];
    mail.on('retrying', (e) => waits.push(e.delayMs));
    await mail.send(hello);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('never puts the key in an error or a log line', async () => {
    const peer = await start();
    const logs: unknown[] = [];
    const wrong = 're_very_secret_wrong';
    const error = await failure(service(clientFor(peer, { apiKey: wrong }), logs).send(hello));
    peer.failNext(faults.transient);
    await service(clientFor(peer), logs).send(hello);
    const everything = JSON.stringify({ logs, message: error.message, stack: error.stack, error });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(KEY);
  });

  it('calls https://api.resend.com/emails by default through an injected fetch', async () => {
    const urls: string[] = [];
    const fetch: typeof globalThis.fetch = async (url) => {
      urls.push(String(url));
      return Response.json({ id: '49a3999c-0ce1-4ea6-ab68-afcd6dc2e794' });
    };
    const result = await service(resendTransport({ apiKey: KEY, fetch })).send(hello);
    expect(urls).toEqual(['https://api.resend.com/emails']);
    expect(result.providerMessageId).toBe('49a3999c-0ce1-4ea6-ab68-afcd6dc2e794');
  });

  it('names a bad option when it is built, never repeating the key', () => {
    expect(() => resendTransport({ apiKey: '' })).toThrow(/^apiKey: /);
    expect(() => resendTransport({ apiKey: KEY, baseUrl: 'http://resend.example.com' })).toThrow(
      /^baseUrl: .*https/,
    );
    const error = (() => {
      try {
        resendTransport({ apiKey: KEY, baseUrl: `https://x:${KEY}@api.resend.com` });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('baseUrl');
    expect((error as Error).message).not.toContain(KEY);
  });
});
