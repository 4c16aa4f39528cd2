/** postmarkTransport against a local HTTP server that speaks Postmark's Email API. */
import { describe, expect, it } from 'vitest';
import { type EmailError, isConfigError, isMessageError } from '../../src/errors.js';
import { type PostmarkTransportOptions, postmarkTransport } from '../../src/transports/postmark.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import { type PostmarkPeer, type PostmarkPeerOptions, startPostmarkPeer } from '../helpers/postmark-peer.js';
import type { Fault } from './contract.js';
import { jsonApiContract, jsonApiHarness } from './json-api-cases.js';

const TOKEN = 'b6a1f3e2-55aa-4a0f-9c3e-3f6d2a1b0c9d';

const clientFor = (peer: PostmarkPeer, extra: Partial<PostmarkTransportOptions> = {}) =>
  postmarkTransport({ serverToken: TOKEN, baseUrl: peer.url, ...extra });

const faults: Record<Fault, JsonApiFault> = {
  transient: { status: 500, body: { ErrorCode: 0, Message: 'Internal server error' } },
  permanent: { status: 422, body: { ErrorCode: 300, Message: "Error parsing 'To': Illegal email address" } },
  drop: { drop: 'after-body' },
  slow: { delay: 2000 },
};

jsonApiContract<PostmarkPeer, PostmarkTransportOptions>(
  'postmark',
  'Postmark',
  () => startPostmarkPeer({ serverToken: TOKEN }),
  clientFor,
  faults,
  { serverToken: 'wrong-token' },
);

describe('postmarkTransport', () => {
  const { start, service, hello, failure } = jsonApiHarness((options: Partial<PostmarkPeerOptions> = {}) =>
    startPostmarkPeer({ serverToken: TOKEN, ...options }),
  );

  it('sends the token header, the stream, the tag, metadata and an inline image, and returns the MessageID', async () => {
    const peer = await start();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
    const result = await service(clientFor(peer, { messageStream: 'broadcast', trackOpens: true })).send({
      ...hello,
      tags: ['welcome'],
      metadata: { userId: 42, plan: 'pro' },
      category: 'product',
      attachments: [{ filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo' }],
    });
    expect(peer.requests[0]?.headers['x-postmark-server-token']).toBe(TOKEN);
    const { body, id } = peer.messages[0]!;
    expect(body).toMatchObject({
      MessageStream: 'broadcast',
      Tag: 'welcome',
      Metadata: { userId: '42', plan: 'pro', category: 'product' },
      TrackOpens: true,
      Attachments: [
        {
          Name: 'logo.png',
          ContentType: 'image/png',
          ContentID: 'cid:logo',
          Content: png.toString('base64'),
        },
      ],
    });
    expect(result.providerMessageId).toBe(id);
    expect(result.response).toMatchObject({ MessageID: id, ErrorCode: 0, Message: 'OK' });
  });

  it('refuses a second tag before sending anything, naming tags', async () => {
    const peer = await start();
    const error: unknown = await failure(service(clientFor(peer)).send({ ...hello, tags: ['a', 'b'] }));
    expect(isMessageError(error) && error.field).toBe('tags');
    expect(peer.requests).toEqual([]);
  });

  it.each([
    [{ status: 422, body: { ErrorCode: 300, Message: 'Invalid email request' } }, 'rejected', 'permanent'],
    [{ status: 422, body: { ErrorCode: 406, Message: 'Inactive recipient' } }, 'rejected', 'permanent'],
    [
      { status: 422, body: { ErrorCode: 411, Message: 'Forbidden attachment type' } },
      'rejected',
      'permanent',
    ],
    [{ status: 401, body: { ErrorCode: 10, Message: 'Bad or missing API token' } }, 'auth', 'systemic'],
    [{ status: 422, body: { ErrorCode: 10, Message: 'Bad or missing API token' } }, 'auth', 'systemic'],
    [{ status: 422, body: { ErrorCode: 400, Message: 'Sender signature not found' } }, 'config', 'systemic'],
    [
      { status: 422, body: { ErrorCode: 401, Message: 'Sender signature not confirmed' } },
      'config',
      'systemic',
    ],
    [{ status: 422, body: { ErrorCode: 405, Message: 'Not allowed to send' } }, 'account', 'systemic'],
    [{ status: 422, body: { ErrorCode: 412, Message: 'Account is pending' } }, 'account', 'systemic'],
    [{ status: 422, body: { ErrorCode: 413, Message: 'Account may not send' } }, 'account', 'systemic'],
    [{ status: 403, body: '<html>403 Forbidden</html>' }, 'auth', 'systemic'],
  ] as const)('maps %o to %s (%s), one attempt', async (fault, code, failureClass) => {
    const peer = await start();
    peer.failNext(fault);
    const error = await failure(service(clientFor(peer)).send(hello));
    expect([error.code, error.failure, error.status]).toEqual([code, failureClass, fault.status]);
    if (typeof fault.body === 'object')
      expect(error.message).toContain(`(ErrorCode ${fault.body.ErrorCode})`);
    expect(peer.requests).toHaveLength(1);
  });

  it('refuses an inactive recipient the way Postmark does: permanent, the address in the message', async () => {
    const peer = await start({ inactive: ['gone@example.com'] });
    const error = await failure(service(clientFor(peer)).send({ ...hello, to: 'gone@example.com' }));
    expect([error.code, error.failure, error.status]).toEqual(['rejected', 'permanent', 422]);
    expect(error.message).toContain('marked as inactive');
    expect(error.message).toContain('(ErrorCode 406)');
  });

  it('names an unknown message stream as a permanent refusal with its ErrorCode', async () => {
    const peer = await start();
    const error = await failure(service(clientFor(peer, { messageStream: 'nope' })).send(hello));
    expect([error.code, error.status]).toEqual(['rejected', 422]);
    expect(error.message).toContain('(ErrorCode 1235)');
  });

  it('waits as long as a 429 Retry-After asks, then delivers once', async () => {
    const peer = await start();
    peer.failNext({ status: 429, body: { ErrorCode: 429, Message: 'Rate limit exceeded' }, retryAfter: '1' });
    const mail = service(clientFor(peer));
    const waits: number[] = [];
    mail.on('retrying', (e) => waits.push(e.delayMs));
    const result = await mail.send(hello);
    expect(result.attempts).toBe(2);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(peer.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(peer.messages).toHaveLength(1);
  });

  it('treats maintenance (ErrorCode 100) and a 503 as transient', async () => {
    const peer = await start();
    peer.failNext({ status: 422, body: { ErrorCode: 100, Message: 'Maintenance' } });
    peer.failNext({ status: 503, body: { ErrorCode: 0, Message: 'Service unavailable' } });
    const result = await service(clientFor(peer)).send(hello);
    expect(result.attempts).toBe(3);
    expect(peer.messages).toHaveLength(1);
  });

  it.each([
    ['node:http', undefined],
    ['an injected fetch', globalThis.fetch],
  ])('verify() checks the token with GET /server, sending nothing, through %s', async (_via, fetch) => {
    const peer = await start();
    await clientFor(peer, fetch ? { fetch } : {}).verify();
    const error = (await clientFor(peer, { serverToken: 'wrong', ...(fetch ? { fetch } : {}) })
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure, error.status]).toEqual(['auth', 'systemic', 401]);
    expect(error.message).toContain('(ErrorCode 10)');
    expect([peer.checks, peer.requests.length, peer.messages.length]).toEqual([2, 0, 0]);
  });

  it('never puts the token in an error or a log line', async () => {
    const peer = await start();
    const logs: unknown[] = [];
    const wrong = 'very-secret-wrong-token';
    const error = await failure(service(clientFor(peer, { serverToken: wrong }), logs).send(hello));
    peer.failNext({ status: 500, body: { ErrorCode: 0, Message: 'Internal' } });
    await service(clientFor(peer), logs).send(hello);
    const everything = JSON.stringify({ logs, message: error.message, stack: error.stack, error });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(TOKEN);
  });

  it('calls https://api.postmarkapp.com/email by default through an injected fetch', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const fetch: typeof globalThis.fetch = async (url, init) => {
      calls.push([String(url), init]);
      return Response.json({ MessageID: 'm-1', ErrorCode: 0, Message: 'OK' });
    };
    const result = await service(postmarkTransport({ serverToken: TOKEN, fetch })).send(hello);
    expect(calls[0]?.[0]).toBe('https://api.postmarkapp.com/email');
    expect((calls[0]?.[1]?.headers as Record<string, string> | undefined)?.['x-postmark-server-token']).toBe(
      TOKEN,
    );
    expect(result.providerMessageId).toBe('m-1');
  });

  it.each([
    ['plain http to another machine', 'http://postmark-proxy.internal.example', 'must be https'],
    ['a user name and password', 'https://u:SECRET@api.postmarkapp.com', 'user name or password'],
    ['a query', 'https://api.postmarkapp.com/?token=SECRET', 'query'],
  ])('refuses a baseUrl with %s when built, without repeating it', (_, baseUrl, says) => {
    const error = (() => {
      try {
        postmarkTransport({ serverToken: TOKEN, baseUrl });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('baseUrl');
    expect((error as Error).message).toContain(says);
    expect((error as Error).message).not.toContain('SECRET');
  });

  it('names a bad option when it is built', () => {
    expect(() => postmarkTransport({ serverToken: '' })).toThrow(/^serverToken: /);
    expect(() => postmarkTransport({ serverToken: 'a\nb' })).toThrow(/^serverToken: /);
    expect(() => postmarkTransport({ serverToken: TOKEN, messageStream: 'a b' })).toThrow(/^messageStream: /);
    expect(() => postmarkTransport({ serverToken: TOKEN, timeoutMs: 0 })).toThrow(/^timeoutMs: /);
  });
});
