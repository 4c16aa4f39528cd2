/** roundRobinTransport across real peers: two Postmark-speaking servers, then Postmark and Resend. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmailError, isConfigError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { postmarkTransport } from '../../src/transports/postmark.js';
import { resendTransport } from '../../src/transports/resend.js';
import { roundRobinTransport } from '../../src/transports/round-robin.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import { type PostmarkPeer, startPostmarkPeer } from '../helpers/postmark-peer.js';
import { type ResendPeer, startResendPeer } from '../helpers/resend-peer.js';
import { type Fault, transportContract } from './contract.js';

const TOKEN = 'round-robin-token';
const KEY = 're_round_robin';

const contractFaults: Record<Fault, JsonApiFault> = {
  transient: { status: 500, body: { ErrorCode: 0, Message: 'Internal' } },
  permanent: { status: 422, body: { ErrorCode: 300, Message: 'Invalid email request' } },
  drop: { drop: 'after-body' },
  slow: { delay: 2000 },
};

transportContract(
  'round-robin',
  async () => {
    // One fault list for both peers: the next request, whichever peer its turn reaches, meets it.
    const faults: JsonApiFault[] = [];
    const peers = [
      await startPostmarkPeer({ serverToken: TOKEN, faults }),
      await startPostmarkPeer({ serverToken: TOKEN, faults }),
    ];
    const across = (extra: { serverToken?: string; timeoutMs?: number } = {}) =>
      roundRobinTransport(
        peers.map((p) => postmarkTransport({ serverToken: TOKEN, baseUrl: p.url, ...extra })),
      );
    return {
      transport: across(),
      received: async () => peers.flatMap((p) => p.received()),
      faults: {
        inject: (fault, times = 1) => {
          for (let i = 0; i < times; i++) faults.push(contractFaults[fault]);
        },
        attempts: () => peers.reduce((n, p) => n + p.requests.length, 0),
        badCredentials: () => across({ serverToken: 'wrong' }),
        impatient: (ms) => across({ timeoutMs: ms }),
      },
      close: async () => {
        await Promise.all(peers.map((p) => p.close()));
      },
    };
  },
  {
    skip: {
      transient:
        'a transient failure moves to the next transport within the same attempt (tested below), not to a retry',
      deferred: 'the Postmark peers accept or refuse a message as a whole',
    },
  },
);

describe('roundRobinTransport', () => {
  let postmark: PostmarkPeer;
  let resend: ResendPeer;
  beforeEach(async () => {
    postmark = await startPostmarkPeer({ serverToken: TOKEN });
    resend = await startResendPeer({ apiKey: KEY });
  });
  afterEach(async () => {
    await Promise.all([postmark.close(), resend.close()]);
  });
  const both = (options: { serverToken?: string; timeoutMs?: number; cooldownMs?: number } = {}) =>
    roundRobinTransport(
      [
        postmarkTransport({
          serverToken: options.serverToken ?? TOKEN,
          baseUrl: postmark.url,
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        }),
        resendTransport({ apiKey: KEY, baseUrl: resend.url }),
      ],
      options.cooldownMs === undefined ? {} : { cooldownMs: options.cooldownMs },
    );
  const service = (transport: ReturnType<typeof roundRobinTransport>) =>
    new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      retry: { maxAttempts: 2, baseDelayMs: 5 },
    });
  const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi' };
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected the send to fail');
      },
      (error: unknown) => error as EmailError,
    );

  it('spreads sends across the transports in turn', async () => {
    const mail = service(both());
    const used: string[] = [];
    for (let i = 0; i < 5; i++) used.push((await mail.send(hello)).transport);
    expect(used).toEqual(['postmark', 'resend', 'postmark', 'resend', 'postmark']);
    expect([postmark.messages.length, resend.messages.length]).toEqual([3, 2]);
  });

  it('moves a transient failure to the next transport within the same attempt, and reports it', async () => {
    postmark.failNext({ status: 503, body: { ErrorCode: 0, Message: 'Unavailable' } });
    const result = await service(both()).send(hello);
    expect(result).toMatchObject({ transport: 'resend', attempts: 1 });
    expect(result.failovers?.map((e) => [e.transport, e.failure])).toEqual([['postmark', 'transient']]);
    expect([postmark.messages.length, resend.messages.length]).toEqual([0, 1]);
  });

  it('does not pass on a timeout after the request went out (it may have been sent); the retry goes back to it', async () => {
    postmark.failNext({ delay: 2000 });
    const mail = service(both({ timeoutMs: 300 }));
    const retries: EmailError[] = [];
    mail.on('retrying', (e) => retries.push(e.error));
    const result = await mail.send(hello);
    expect(retries.map((e) => [e.transport, e.code, e.failure])).toEqual([
      ['postmark', 'timeout', 'ambiguous'],
    ]);
    // Not the next turn: the provider that may have it answers the retry (its log, its idempotency).
    expect(result).toMatchObject({ transport: 'postmark', attempts: 2 });
    expect(resend.messages).toHaveLength(0);
    expect(result.failovers).toBeUndefined();
  });

  it('a retry after a dropped answer reaches Resend again, whose Idempotency-Key delivers it once', async () => {
    const mail = service(
      roundRobinTransport([
        resendTransport({ apiKey: KEY, baseUrl: resend.url }),
        postmarkTransport({ serverToken: TOKEN, baseUrl: postmark.url }),
      ]),
    );
    resend.failNext({ drop: 'after-body' });
    const result = await mail.send(hello);
    expect(result).toMatchObject({ transport: 'resend', attempts: 2 });
    expect([resend.messages.length, postmark.messages.length]).toEqual([1, 0]);
  });

  it('leaves a transport that failed systemically out of the turn while it cools down', async () => {
    const mail = service(both({ serverToken: 'wrong' }));
    const used: string[] = [];
    for (let i = 0; i < 4; i++) used.push((await mail.send(hello)).transport);
    expect(used).toEqual(['resend', 'resend', 'resend', 'resend']);
    // Postmark was asked once (the first send's turn), then skipped.
    expect(postmark.requests).toHaveLength(1);
    expect(resend.messages).toHaveLength(4);
  });

  it('tries a cooled-down transport again once the cooldown is over', async () => {
    const mail = service(both({ serverToken: 'wrong', cooldownMs: 0 }));
    for (let i = 0; i < 3; i++) await mail.send(hello);
    expect(postmark.requests.length).toBeGreaterThan(1);
  });

  it('does not pass on a permanent or an ambiguous failure: thrown, the other transport not asked', async () => {
    postmark.failNext({ status: 422, body: { ErrorCode: 300, Message: 'Invalid email request' } });
    const permanent = await failure(service(both()).send(hello));
    expect([permanent.transport, permanent.failure]).toEqual(['postmark', 'permanent']);
    postmark.failNext({ drop: 'after-body' });
    // A fresh transport: the turn starts with postmark again. No retry, so the failure is seen as thrown.
    const ambiguous = await failure(service(both()).send({ ...hello, retry: false }));
    expect([ambiguous.transport, ambiguous.failure]).toEqual(['postmark', 'ambiguous']);
    expect(resend.requests).toEqual([]);
  });

  it('throws the last failure when every transport fails', async () => {
    postmark.failNext({ status: 500, body: { ErrorCode: 0, Message: 'Internal' } });
    resend.failNext({ status: 500, body: { statusCode: 500, name: 'application_error', message: 'Oops' } });
    const error = await failure(service(both()).send({ ...hello, retry: false }));
    expect([error.transport, error.failure]).toEqual(['resend', 'transient']);
  });

  it('says what it spreads across, and refuses a bad list or cooldown', () => {
    const memory = memoryTransport();
    expect(roundRobinTransport([memory, memory]).describe?.()).toMatch(/^round-robin: memory.*, memory/);
    expect(roundRobinTransport([memory]).captures).toBe(true);
    expect(() => roundRobinTransport([])).toThrow(TypeError);
    expect(() => roundRobinTransport([{} as never])).toThrow(/every entry must be a Transport/);
    const error = (() => {
      try {
        roundRobinTransport([memory], { cooldownMs: -1 });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('cooldownMs');
  });
});
