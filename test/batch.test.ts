/**
 * sendBatch (issue 13 §7): one outcome per entry, never all-or-nothing; a 10 000-recipient batch
 * through a real SMTP server with recipients who opted out and recipients the server refuses.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isEmailError, isMessageError, isTemplateError } from '../src/errors.js';
import { memoryPreferenceStore } from '../src/preferences.js';
import { EmailService } from '../src/service.js';
import { defineTemplate } from '../src/templates/define.js';
import type { SendResult, Transport } from '../src/transport.js';
import { memoryTransport } from '../src/transports/memory.js';
import { smtpTransport } from '../src/transports/smtp.js';
import { type SmtpPeer, startSmtpPeer } from './helpers/smtp-peer.js';

const from = 'Acme <no-reply@acme.example>';
const notice = defineTemplate({
  name: 'notice',
  category: 'product',
  fields: { username: 'string' },
  subject: 'Scheduled maintenance',
  html: '<p>Hi <%= it.username %>, we will be down for an hour.</p>',
});

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  vi.useRealTimers();
});

describe('sendBatch through a real SMTP server', () => {
  it('reports each of 10 000 recipients correctly: sent, opted out, refused by the server, invalid', async () => {
    const peer: SmtpPeer = await startSmtpPeer();
    closers.push(() => peer.close());
    const transport = smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert });
    closers.push(() => transport.close());
    const preferences = memoryPreferenceStore();
    const address = (i: number) => `user-${i}@example.com`;
    const optedOut = new Set<number>();
    const refused = new Set<number>();
    const invalid = new Set([1234, 8765]);
    for (let i = 0; i < 10_000; i++) {
      if (i % 50 === 7) {
        optedOut.add(i);
        await preferences.set(address(i), 'product', false);
      } else if (i % 97 === 3) {
        refused.add(i);
        peer.rejectRecipient(address(i), 550, undefined, 'No such user');
      }
    }
    const mail = new EmailService({ transport, from, preferences, templates: [notice], retry: false });
    const entries = Array.from({ length: 10_000 }, (_, i) => ({
      to: invalid.has(i) ? `user-${i}@@example.com` : address(i),
      data: { username: `User ${i}` },
    }));
    let lastProgress = { done: 0 };
    const result = await mail.sendBatch(notice, entries, {
      concurrency: 20,
      onProgress: (p) => {
        lastProgress = p;
      },
    });

    const expectedSent = 10_000 - optedOut.size - refused.size - invalid.size;
    expect(result).toMatchObject({
      total: 10_000,
      done: 10_000,
      sent: expectedSent,
      suppressed: optedOut.size,
      failed: refused.size + invalid.size,
      skipped: 0,
    });
    expect(lastProgress).toMatchObject({ done: 10_000 });
    expect(peer.messages).toHaveLength(expectedSent);
    const delivered = new Set(peer.messages.map((m) => m.envelope.rcptTo[0]));
    result.outcomes.forEach((outcome, i) => {
      expect(outcome.index).toBe(i);
      if (optedOut.has(i)) {
        expect(outcome).toMatchObject({
          status: 'suppressed',
          result: { suppressed: [{ address: address(i), reason: 'opted-out' }] },
        });
      } else if (invalid.has(i)) {
        expect(outcome.status).toBe('failed');
        const error = outcome.status === 'failed' ? outcome.error : undefined;
        expect(isMessageError(error) && error.field).toMatch(/^to/);
      } else if (refused.has(i)) {
        expect(outcome.status).toBe('failed');
        const error = outcome.status === 'failed' ? outcome.error : undefined;
        expect(isEmailError(error) && error.failure).toBe('permanent');
        expect(delivered.has(address(i))).toBe(false);
      } else {
        expect(outcome.status).toBe('sent');
        expect(delivered.has(address(i))).toBe(true);
      }
    });
  }, 180_000);
});

describe('sendBatch', () => {
  /** A transport that counts how many sends are in flight at once. */
  function countingTransport() {
    let inFlight = 0;
    let most = 0;
    const sent: string[] = [];
    const transport: Transport & { most: () => number; sent: string[] } = {
      name: 'counting',
      sent,
      most: () => most,
      async send(message) {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
        sent.push(message.to[0]!.address);
        return {
          messageId: message.messageId,
          accepted: [message.to[0]!.address],
          rejected: [],
          transport: 'counting',
        } satisfies SendResult;
      },
    };
    return transport;
  }

  it('keeps at most `concurrency` sends in flight and sends a list of messages too', async () => {
    const transport = countingTransport();
    const mail = new EmailService({ transport, from });
    const messages = Array.from({ length: 40 }, (_, i) => ({
      to: `u${i}@example.com`,
      subject: 'Hi',
      text: 'Hello',
    }));
    const result = await mail.sendBatch(messages, { concurrency: 3 });
    expect(result.sent).toBe(40);
    expect(transport.most()).toBe(3);
    expect(new Set(transport.sent).size).toBe(40);
  });

  it('starts at most `perSecond` sends per second', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from });
    const messages = Array.from({ length: 5 }, (_, i) => ({
      to: `u${i}@example.com`,
      subject: 'Hi',
      text: 'x',
    }));
    const running = mail.sendBatch(messages, { concurrency: 5, perSecond: 2 });
    await vi.advanceTimersByTimeAsync(0);
    expect(transport.outbox).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(transport.outbox).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(transport.outbox).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(500);
    expect((await running).sent).toBe(5);
  });

  it('skips what has not started when aborted; what started finishes', async () => {
    const transport = countingTransport();
    const mail = new EmailService({ transport, from });
    const abort = new AbortController();
    const messages = Array.from({ length: 20 }, (_, i) => ({
      to: `u${i}@example.com`,
      subject: 'Hi',
      text: 'x',
    }));
    const result = await mail.sendBatch(messages, {
      concurrency: 2,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.done === 4) abort.abort();
        throw new Error('a broken listener changes nothing');
      },
    });
    expect(result.sent + result.skipped).toBe(20);
    expect(result.sent).toBeGreaterThanOrEqual(4);
    expect(result.sent).toBeLessThanOrEqual(6);
    expect(transport.sent).toHaveLength(result.sent);
    expect(result.outcomes.at(-1)).toEqual({ index: 19, status: 'skipped' });
  });

  it('publishes each entry with a queue: every outcome is sent with its receipt', async () => {
    let published = 0;
    const mail = new EmailService({
      transport: memoryTransport(),
      from,
      templates: [notice],
      queue: {
        name: 'test queue',
        enqueue: async () => ({ id: String(++published), idempotencyKey: `k${published}` }),
      },
    });
    const result = await mail.sendBatch(notice, [
      { to: 'a@example.com', data: { username: 'A' } },
      { to: 'b@example.com', data: { username: 'B' } },
    ]);
    expect(result.sent).toBe(2);
    expect(result.outcomes.map((o) => (o.status === 'sent' ? o.result.queued?.id : o.status)).sort()).toEqual(
      ['1', '2'],
    );
  });

  it('refuses an unknown template and bad options before sending anything', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from });
    const unknown = await mail
      .sendBatch('no-such-template' as 'welcome', [{ to: 'a@example.com', data: { username: 'A' } }])
      .catch((e: unknown) => e);
    expect(isTemplateError(unknown)).toBe(true);
    const messages = [{ to: 'a@example.com', subject: 'Hi', text: 'x' }];
    await expect(mail.sendBatch(messages, { concurrency: 0 })).rejects.toThrow(/concurrency/);
    await expect(mail.sendBatch(messages, { perSecond: -1 })).rejects.toThrow(/perSecond/);
    await expect(mail.sendBatch('welcome', {} as never)).rejects.toThrow(/entries must be an array/);
    expect(transport.outbox).toHaveLength(0);
  });
});
