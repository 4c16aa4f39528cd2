import { describe, expect, it } from 'vitest';
import { EmailError } from '../src/errors.js';
import { createMessage, type EmailMessage, envelopeRecipients } from '../src/message.js';
import {
  backoffDelay,
  DEFAULT_RETRY,
  parseRetryAfter,
  resolveRetry,
  withRecipientRetries,
  withRetries,
} from '../src/retry.js';
import type { RecipientRefusal, SendResult } from '../src/transport.js';

const fast = resolveRetry({ maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 4 });
const transient = () => new EmailError('busy', { code: 'deferred', transport: 't', status: 421 });

describe('backoffDelay', () => {
  it('draws from [0, base·2ⁿ⁻¹], capped at maxDelayMs (full jitter)', () => {
    const options = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect(backoffDelay(1, options, 0, () => 0.999)).toBe(100);
    expect(backoffDelay(3, options, 0, () => 0.999)).toBe(400);
    expect(backoffDelay(10, options, 0, () => 0.999)).toBe(999);
    expect(backoffDelay(3, options, 0, () => 0)).toBe(0);
    expect(backoffDelay(3, options, 0, () => 0.5)).toBe(200);
  });

  it('never waits less than Retry-After asked', () => {
    const options = resolveRetry({ baseDelayMs: 100 });
    expect(backoffDelay(1, options, 5000, () => 0.5)).toBe(5000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });
  it('reads an HTTP-date', () => {
    expect(parseRetryAfter('Sun, 22 Nov 2026 10:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Sun, 22 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
  });
});

describe('resolveRetry', () => {
  it('fills defaults, and false means one attempt', () => {
    expect(resolveRetry(undefined)).toEqual(DEFAULT_RETRY);
    expect(resolveRetry(false).maxAttempts).toBe(1);
  });
  it('names a bad option', () => {
    expect(() => resolveRetry({ maxAttempts: 0 })).toThrow(/retry.maxAttempts/);
    expect(() => resolveRetry({ baseDelayMs: -1 })).toThrow(/retry.baseDelayMs/);
    expect(() => resolveRetry({ maxElapsedMs: Number.NaN })).toThrow(/retry.maxElapsedMs/);
  });
});

describe('withRetries', () => {
  it('retries transient failures until one succeeds, reporting each wait', async () => {
    const seen: number[] = [];
    let calls = 0;
    const value = await withRetries(
      async (n) => {
        calls++;
        if (n < 3) throw transient();
        return 'ok';
      },
      fast,
      { transport: 't', onRetry: (_error, attempt) => seen.push(attempt) },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(seen).toEqual([1, 2]);
  });

  it('stops at maxAttempts and throws the last error', async () => {
    let calls = 0;
    const error = await withRetries(
      async () => {
        calls++;
        throw transient();
      },
      fast,
      { transport: 't' },
    ).catch((e: unknown) => e);
    expect(calls).toBe(4);
    expect((error as EmailError).code).toBe('deferred');
  });

  it('does not retry permanent, systemic or foreign errors', async () => {
    for (const thrown of [
      new EmailError('no', { code: 'rejected', transport: 't', status: 550 }),
      new EmailError('creds', { code: 'auth', transport: 't', status: 535 }),
      new TypeError('bug'),
    ]) {
      let calls = 0;
      const error = await withRetries(
        async () => {
          calls++;
          throw thrown;
        },
        fast,
        { transport: 't' },
      ).catch((e: unknown) => e);
      expect(error).toBe(thrown);
      expect(calls).toBe(1);
    }
  });

  it('gives up rather than wait past maxElapsedMs', async () => {
    let calls = 0;
    const options = resolveRetry({ maxAttempts: 5, maxElapsedMs: 1000 });
    const error = await withRetries(
      async () => {
        calls++;
        throw new EmailError('later', {
          code: 'rate-limit',
          transport: 't',
          status: 429,
          retryAfterMs: 5000,
        });
      },
      options,
      { transport: 't' },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((error as EmailError).code).toBe('rate-limit');
  });

  it('stops waiting at once when the signal aborts', async () => {
    const controller = new AbortController();
    let calls = 0;
    const pending = withRetries(
      async () => {
        calls++;
        throw transient();
      },
      resolveRetry({ maxAttempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000 }),
      { transport: 't', signal: controller.signal, onRetry: () => setImmediate(() => controller.abort()) },
    );
    const error = (await pending.catch((e: unknown) => e)) as EmailError;
    expect(error.code).toBe('aborted');
    expect(error.retryable).toBe(false);
    expect(calls).toBe(1);
  });
});

describe('withRecipientRetries', () => {
  const message = createMessage({
    from: 'a@acme.example',
    to: ['alice@example.com', 'bob@example.net', 'carol@example.org'],
    subject: 'Hello',
    text: 'x',
  });
  const deferred = (address: string, status = 450): RecipientRefusal => ({
    address,
    failure: 'transient',
    status,
    response: `${status} later`,
  });
  /** A transport stand-in: each call answers with the next scripted outcome, for the recipients it was given. */
  const scripted = (outcomes: ((to: readonly string[]) => SendResult | EmailError)[]) => {
    const calls: (readonly string[] | undefined)[] = [];
    const send = async (m: EmailMessage) => {
      calls.push(envelopeRecipients(m));
      const outcome = outcomes[calls.length - 1]!(envelopeRecipients(m) ?? []);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    };
    return { send, calls };
  };
  const ok = (accepted: string[], more: Partial<SendResult> = {}): SendResult => ({
    messageId: message.messageId,
    accepted,
    rejected: [],
    transport: 't',
    ...more,
  });

  it('a recipient refused for good on its retry ends up rejected, not deferred', async () => {
    const { send, calls } = scripted([
      () =>
        ok(['alice@example.com', 'carol@example.org'], {
          deferred: ['bob@example.net'],
          refusals: [deferred('bob@example.net')],
        }),
      () => new EmailError('SMTP 554: refused', { code: 'rejected', transport: 't', status: 554 }),
    ]);
    const result = await withRecipientRetries(message, send, fast, { transport: 't' }, true);
    expect(calls).toEqual([undefined, ['bob@example.net']]);
    expect(result.accepted).toEqual(['alice@example.com', 'carol@example.org']);
    expect(result.rejected).toEqual(['bob@example.net']);
    expect(result.deferred).toBeUndefined();
    expect(result.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      ['bob@example.net', 'permanent', 554],
    ]);
  });

  it('keeps what was delivered when a retry of the deferred fails otherwise: they stay deferred', async () => {
    const { send } = scripted([
      () =>
        ok(['alice@example.com'], {
          deferred: ['bob@example.net', 'carol@example.org'],
          refusals: [deferred('bob@example.net'), deferred('carol@example.org', 452)],
        }),
      ...Array.from({ length: 3 }, () => () => new EmailError('down', { code: 'network', transport: 't' })),
    ]);
    const result = await withRecipientRetries(message, send, fast, { transport: 't' }, true);
    expect(result.accepted).toEqual(['alice@example.com']);
    expect(result.deferred).toEqual(['bob@example.net', 'carol@example.org']);
    expect(result.refusals?.map((r) => r.status)).toEqual([450, 452]);
  });

  it('a message refused as a whole with some recipients deferred retries those only, and the error carries every refusal', async () => {
    const refusals = [
      { address: 'alice@example.com', failure: 'permanent', status: 550 } as const,
      deferred('bob@example.net'),
      deferred('carol@example.org'),
    ];
    const { send, calls } = scripted([
      () => new EmailError('all refused', { code: 'deferred', transport: 't', status: 450, refusals }),
      () =>
        new EmailError('all refused', {
          code: 'deferred',
          transport: 't',
          status: 450,
          refusals: refusals.slice(1),
        }),
    ]);
    const error = (await withRecipientRetries(
      message,
      send,
      resolveRetry({ ...fast, maxAttempts: 2 }),
      { transport: 't' },
      true,
    ).catch((e: unknown) => e)) as EmailError;
    expect(calls).toEqual([undefined, ['bob@example.net', 'carol@example.org']]);
    expect(error.refusals?.map((r) => [r.address, r.failure])).toEqual([
      ['alice@example.com', 'permanent'],
      ['bob@example.net', 'transient'],
      ['carol@example.org', 'transient'],
    ]);
  });

  it("a first attempt every recipient accepted: the transport's own fields, the message's id, attempts 1", async () => {
    const response = { id: 'provider-1' };
    const { send } = scripted([
      () => ({
        messageId: '<other@x.example>',
        accepted: ['a@b.example'],
        rejected: [],
        transport: 't',
        response,
      }),
    ]);
    const result = await withRecipientRetries(message, send, fast, { transport: 't' }, true);
    expect(result).toStrictEqual({
      messageId: message.messageId,
      accepted: ['a@b.example'],
      rejected: [],
      transport: 't',
      response,
      attempts: 1,
    });
  });

  it('counts the attempts a delivery took, and leaves out an empty deferred list', async () => {
    const { send } = scripted([
      () => transient(),
      () => ok(['alice@example.com', 'bob@example.net', 'carol@example.org'], { deferred: [] }),
    ]);
    const result = await withRecipientRetries(message, send, fast, { transport: 't' }, true);
    expect(result.attempts).toBe(2);
    expect('deferred' in result).toBe(false);
    expect(result.rejected).toEqual([]);
  });

  it('never retries the deferred through a transport that cannot send to them alone: it reports them', async () => {
    const { send, calls } = scripted([
      () =>
        ok(['alice@example.com', 'carol@example.org'], {
          deferred: ['bob@example.net'],
          refusals: [deferred('bob@example.net')],
        }),
    ]);
    const result = await withRecipientRetries(message, send, fast, { transport: 't' }, false);
    // One attempt: a second would reach alice and carol again.
    expect(calls).toEqual([undefined]);
    expect(result.accepted).toEqual(['alice@example.com', 'carol@example.org']);
    expect(result.deferred).toEqual(['bob@example.net']);
  });
});
