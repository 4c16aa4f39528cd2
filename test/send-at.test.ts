/**
 * Send later, direct: `sendAt` checked on every message, recorded by the memory outbox and the
 * sandbox, refused by a transport that cannot hold an email (SMTP against a real server), quiet
 * hours for product and marketing mail only; and the Kafka envelope's `sendAt` limits.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isMessageError, type MessageError } from '../src/errors.js';
import { createEnvelope, parseEnvelope } from '../src/kafka/envelope.js';
import { createMessage } from '../src/message.js';
import { MAX_QUEUED_SEND_AHEAD_MS, type QuietHours } from '../src/send-at.js';
import { EmailService } from '../src/service.js';
import { failoverTransport } from '../src/transports/failover.js';
import { memoryTransport } from '../src/transports/memory.js';
import { sandboxTransport } from '../src/transports/sandbox.js';
import { smtpTransport } from '../src/transports/smtp.js';
import { type SmtpPeer, startSmtpPeer } from './helpers/smtp-peer.js';
import { rejection as caughtAsync, thrown } from './helpers/thrown.js';

const FROM = 'Acme <no-reply@acme.example>';
const hello = { to: 'jane@example.com', subject: 'Hello', text: 'Hi Jane' };
const HOUR = 3_600_000;

async function rejection(promise: Promise<unknown>): Promise<MessageError> {
  try {
    await promise;
  } catch (error) {
    if (isMessageError(error)) return error;
    throw error;
  }
  throw new Error('expected a MessageError');
}

describe('sendAt on a message', () => {
  it('takes a Date or an ISO 8601 instant with an offset, and keeps it while it is ahead', () => {
    const at = new Date(Date.now() + HOUR);
    expect(createMessage({ ...hello, from: FROM, sendAt: at }).sendAt?.getTime()).toBe(at.getTime());
    const local = new Date(Date.now() + 2 * HOUR);
    // The same instant written with a +02:00 offset.
    const shifted = new Date(local.getTime() + 2 * HOUR).toISOString().replace('Z', '+02:00');
    expect(createMessage({ ...hello, from: FROM, sendAt: shifted }).sendAt?.getTime()).toBe(local.getTime());
  });

  it.each([
    ['a local time without an offset', '2030-06-01T09:30:00'],
    ['a date only', '2030-06-01'],
    ['words', 'tomorrow morning'],
    ['an invalid Date', new Date(Number.NaN)],
    ['a number', 1_900_000_000_000],
  ])('refuses %s with a MessageError naming sendAt', (_, sendAt) => {
    const error = thrown(
      () => createMessage({ ...hello, from: FROM, sendAt: sendAt as Date }),
      isMessageError,
      'a MessageError',
    );
    expect(error.field).toBe('sendAt');
  });

  it('drops a time already past: the email goes now, through any transport', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: FROM });
    await mail.send({ ...hello, sendAt: '2020-01-01T00:00:00Z' });
    expect(transport.outbox[0]?.message).not.toHaveProperty('sendAt');
  });
});

describe('a direct send with sendAt', () => {
  const peers: SmtpPeer[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.close()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('is recorded by the memory outbox as asked', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: FROM });
    const at = new Date(Date.now() + 40 * 24 * HOUR);
    await mail.send({ ...hello, sendAt: at });
    expect(transport.outbox[0]?.message.sendAt).toEqual(at);
  });

  it('is written into the sandbox summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-send-at-'));
    dirs.push(dir);
    const mail = new EmailService({ transport: sandboxTransport({ dir, onFirstWrite: false }), from: FROM });
    const at = new Date(Date.now() + HOUR);
    await mail.send({ ...hello, sendAt: at });
    const json = readdirSync(dir).find((f) => f.endsWith('.json')) as string;
    expect(JSON.parse(readFileSync(join(dir, json), 'utf8')).sendAt).toBe(at.toISOString());
  });

  it('is refused by SMTP before anything reaches the server, naming sendAt and Kafka', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    peers.push(peer);
    const transport = smtpTransport({ host: peer.host, port: peer.port, tls: 'none' });
    const mail = new EmailService({ transport, from: FROM });
    const error = await rejection(mail.send({ ...hello, sendAt: new Date(Date.now() + HOUR) }));
    expect(error.field).toBe('sendAt');
    expect(error.message).toContain('smtp transport cannot hold an email until later');
    expect(error.message).toContain('Kafka');
    expect(peer.transactions).toBe(0);
    // The same email without sendAt goes: the server is fine, only the schedule was refused.
    await mail.send(hello);
    expect(peer.messages).toHaveLength(1);
    await transport.close?.();
  });

  it('is refused behind failover unless every transport schedules', async () => {
    const mail = new EmailService({
      transport: failoverTransport([memoryTransport(), { name: 'plain', send: async () => ({}) as never }]),
      from: FROM,
    });
    const error = await rejection(mail.send({ ...hello, sendAt: new Date(Date.now() + HOUR) }));
    expect(error.field).toBe('sendAt');
  });
});

describe('quiet hours', () => {
  const morning = new Date(Date.now() + 10 * HOUR);
  const asked: Array<[string, string]> = [];
  const quietHours: QuietHours = (recipient, category) => {
    asked.push([recipient, category]);
    return recipient.startsWith('night') ? morning : undefined;
  };
  afterEach(() => {
    asked.length = 0;
  });

  it('moves product and marketing mail to the recipient’s next allowed time', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: FROM, quietHours });
    await mail.send({ ...hello, to: 'night-owl@example.com', category: 'marketing' });
    await mail.send({ ...hello, to: 'day@example.com', category: 'product' });
    expect(transport.outbox.map((e) => e.message.sendAt)).toEqual([morning, undefined]);
    // The later of its own sendAt and quiet hours wins.
    const later = new Date(morning.getTime() + HOUR);
    await mail.send({ ...hello, to: 'night-owl@example.com', category: 'product', sendAt: later });
    expect(transport.outbox[2]?.message.sendAt).toEqual(later);
  });

  it('never asks for security or transactional mail', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: FROM, quietHours });
    await mail.send({ ...hello, to: 'night-owl@example.com', category: 'security' });
    await mail.send({ ...hello, to: 'night-owl@example.com' });
    expect(asked).toEqual([]);
    expect(transport.outbox.map((e) => e.message.sendAt)).toEqual([undefined, undefined]);
  });

  it('refuses, rather than sends early, through a transport that cannot schedule', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    const transport = smtpTransport({ host: peer.host, port: peer.port, tls: 'none' });
    try {
      const mail = new EmailService({ transport, from: FROM, quietHours });
      const error = await rejection(
        mail.send({ ...hello, to: 'night-owl@example.com', category: 'product' }),
      );
      expect(error.field).toBe('sendAt');
      expect(error.message).toContain('quiet hours');
      expect(peer.transactions).toBe(0);
    } finally {
      await transport.close?.();
      await peer.close();
    }
  });

  it('a hook that throws or answers with no Date: the send rejects naming it, nothing sent', async () => {
    const transport = memoryTransport();
    const failing = new EmailService({
      transport,
      from: FROM,
      quietHours: () => {
        throw new Error('time zone lookup timed out');
      },
    });
    const wrong = new EmailService({ transport, from: FROM, quietHours: () => 'tomorrow' as never });
    const failed = await caughtAsync(() =>
      failing.send({ ...hello, to: 'jane@example.com', category: 'product' }),
    );
    expect((failed as Error).message).toBe('time zone lookup timed out');
    const answered = await rejection(wrong.send({ ...hello, to: 'jane@example.com', category: 'product' }));
    expect(answered).toMatchObject({ field: 'quietHours' });
    expect(transport.outbox).toEqual([]);
  });

  it('in a batch, a hook that throws for one recipient fails that entry alone, with its error', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({
      transport,
      from: FROM,
      quietHours: (recipient) => {
        if (recipient.startsWith('zone-unknown')) throw new Error('time zone lookup timed out');
        return undefined;
      },
    });
    const entry = (to: string) => ({ ...hello, to, category: 'product' as const });
    const result = await mail.sendBatch([entry('zone-unknown@example.com'), entry('jane@example.com')]);
    expect(result).toMatchObject({ sent: 1, failed: 1 });
    expect(result.outcomes[0]).toMatchObject({
      status: 'failed',
      error: { message: 'time zone lookup timed out' },
    });
    expect(transport.outbox.map((e) => e.message.to[0]?.address)).toEqual(['jane@example.com']);
  });

  it('is a ConfigError when it is not a function', () => {
    expect(
      () => new EmailService({ transport: memoryTransport(), from: FROM, quietHours: 'night' as never }),
    ).toThrow(/quietHours/);
  });
});

describe('sendAt in the Kafka envelope', () => {
  it('is written as an ISO instant when ahead, and left out when past', () => {
    const at = new Date(Date.now() + HOUR);
    expect(createEnvelope({ ...hello, sendAt: at }).sendAt).toBe(at.toISOString());
    expect(createEnvelope({ ...hello, sendAt: '2020-01-01T00:00:00Z' })).not.toHaveProperty('sendAt');
  });

  it('refuses more than 30 days ahead, naming sendAt', () => {
    const tooFar = new Date(Date.now() + MAX_QUEUED_SEND_AHEAD_MS + HOUR);
    const error = thrown(
      () => createEnvelope({ ...hello, sendAt: tooFar }),
      isMessageError,
      'a MessageError',
    );
    expect(error.field).toBe('sendAt');
    expect(error.message).toContain('30 days');
  });

  it('refuses a record read off the topic with a malformed sendAt or one too far after createdAt', () => {
    const base = createEnvelope(hello);
    for (const sendAt of ['soon', 42, '2030-06-01T09:30:00']) {
      const error = thrown(
        () => parseEnvelope(JSON.stringify({ ...base, sendAt })),
        isMessageError,
        'a MessageError',
      );
      expect(error.field).toBe('sendAt');
    }
    const far = new Date(Date.parse(base.createdAt) + MAX_QUEUED_SEND_AHEAD_MS + 1).toISOString();
    const error = thrown(() => parseEnvelope(JSON.stringify({ ...base, sendAt: far })), isMessageError, 'x');
    expect(error.field).toBe('sendAt');
    const fine = new Date(Date.parse(base.createdAt) + MAX_QUEUED_SEND_AHEAD_MS).toISOString();
    expect(parseEnvelope(JSON.stringify({ ...base, sendAt: fine })).sendAt).toBe(fine);
  });

  it('travels from a service with a queue, past times dropped', async () => {
    const published: unknown[] = [];
    const mail = new EmailService({
      transport: memoryTransport(),
      from: FROM,
      queue: {
        name: 'test',
        enqueue: async (email) => {
          published.push(email);
          return { id: '1', idempotencyKey: 'k' };
        },
      },
    });
    const at = new Date(Date.now() + HOUR);
    await mail.send({ ...hello, sendAt: at });
    await mail.sendTemplate('welcome', { to: 'jane@example.com', data: { username: 'Jane' }, sendAt: at });
    await mail.send({ ...hello, sendAt: '2020-01-01T00:00:00Z' });
    expect(published.map((e) => (e as { sendAt?: Date }).sendAt)).toEqual([at, at, undefined]);
  });
});
