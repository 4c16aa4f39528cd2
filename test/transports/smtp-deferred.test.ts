/**
 * Recipients an SMTP server defers at RCPT TO (greylisting 450, "too many recipients" 452) are
 * retried on their own through EmailService, against a real smtp-server on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EmailError, isEmailError } from '../../src/errors.js';
import type { RetryOptions } from '../../src/retry.js';
import { EmailService, type RetryingEvent, type SentEvent } from '../../src/service.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.net';
const hello = { to: [ALICE, BOB], subject: 'Hello', text: 'Hi both', html: '<p>Hi both</p>' };

describe('smtpTransport: recipients deferred at RCPT TO', () => {
  const peers: SmtpPeer[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  const start = async () => {
    const peer = await startSmtpPeer();
    peers.push(peer);
    return peer;
  };
  /** A service over the peer that records its events and log lines. */
  const serviceFor = (peer: SmtpPeer, retry: RetryOptions = { maxAttempts: 3 }) => {
    const transport = smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert });
    closers.push(() => transport.close());
    const logs: Record<string, unknown>[] = [];
    const log = (o: object) => logs.push(o as Record<string, unknown>);
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      retry: { baseDelayMs: 10, maxDelayMs: 50, ...retry },
      logger: { info: log, warn: log, error: log, debug: log },
    });
    const events = { sent: [] as SentEvent[], retrying: [] as RetryingEvent[] };
    mail.on('sent', (e) => events.sent.push(e));
    mail.on('retrying', (e) => events.retrying.push(e));
    return { mail, events, logs };
  };
  const envelopes = (peer: SmtpPeer) => peer.messages.map((m) => m.envelope.rcptTo);

  it.each([
    [450, '4.2.0 Greylisted, please try again later'],
    [452, '4.5.3 Too many recipients'],
  ])(
    'a %i for one recipient: retries that recipient alone, then both have it, the other exactly once',
    async (code, text) => {
      const peer = await start();
      peer.rejectRecipient(BOB, code, 1, text);
      const { mail, events } = serviceFor(peer);
      const result = await mail.send(hello);

      expect(result).toMatchObject({ accepted: [ALICE, BOB], rejected: [], attempts: 2 });
      expect(result.deferred ?? []).toEqual([]);
      expect(envelopes(peer)).toEqual([[ALICE], [BOB]]);
      // The retry is the same message: same bytes, so same headers, Date and Message-ID.
      const [first, second] = peer.messages;
      expect(second?.raw.equals(first?.raw ?? Buffer.alloc(0))).toBe(true);
      const parsed = await fromMime(second!.raw);
      expect(parsed.to).toEqual([ALICE, BOB]);
      expect(parsed.messageId).toBe(result.messageId);
      // The wait between is an ordinary transient failure, naming the recipient's reply.
      expect(events.retrying.map((e) => [e.error.code, e.error.failure, e.error.status])).toEqual([
        ['deferred', 'transient', code],
      ]);
      expect(events.retrying[0]?.error.refusals).toEqual([
        { address: BOB, failure: 'transient', status: code, response: `${code} ${text}` },
      ]);
    },
  );

  it('400 recipients to a server that takes 100 per transaction: every one gets it, exactly once', async () => {
    const peer = await startSmtpPeer({ maxRecipients: 100 });
    peers.push(peer);
    const to = Array.from({ length: 400 }, (_, i) => `user${i}@example.com`);
    const { mail } = serviceFor(peer, { maxAttempts: 4 });
    const result = await mail.send({ ...hello, to });

    expect(result.attempts).toBe(4);
    expect(result.deferred ?? []).toEqual([]);
    expect([...result.accepted].sort()).toEqual([...to].sort());
    const delivered = peer.messages.flatMap((m) => m.envelope.rcptTo);
    expect(delivered).toHaveLength(400);
    expect(new Set(delivered).size).toBe(400);
  });

  it('400 recipients, 100 per transaction, 3 attempts: 300 delivered, the other 100 reported deferred, none lost', async () => {
    const peer = await startSmtpPeer({ maxRecipients: 100 });
    peers.push(peer);
    const to = Array.from({ length: 400 }, (_, i) => `user${i}@example.com`);
    const result = await serviceFor(peer, { maxAttempts: 3 }).mail.send({ ...hello, to });

    expect([result.accepted.length, result.rejected.length, result.deferred?.length]).toEqual([300, 0, 100]);
    expect(new Set([...result.accepted, ...(result.deferred ?? [])]).size).toBe(400);
    expect(result.refusals?.every((r) => r.status === 452 && r.failure === 'transient')).toBe(true);
    expect(peer.messages.flatMap((m) => m.envelope.rcptTo).sort()).toEqual([...result.accepted].sort());
  });

  it('reports a mix of accepted, refused (550) and still deferred (450) recipients, each with its reply', async () => {
    const peer = await start();
    peer.rejectRecipient('carol@example.org', 450);
    peer.rejectRecipient('dave@example.org', 550);
    const { mail, events, logs } = serviceFor(peer);
    const result = await mail.send({ ...hello, to: [ALICE, 'carol@example.org', 'dave@example.org'] });

    expect(result).toMatchObject({
      accepted: [ALICE],
      rejected: ['dave@example.org'],
      deferred: ['carol@example.org'],
      attempts: 3,
    });
    expect(result.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      ['dave@example.org', 'permanent', 550],
      ['carol@example.org', 'transient', 450],
    ]);
    // dave is not asked again once refused for good; alice is never sent to twice.
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([[ALICE]]);
    expect(peer.transactions).toBe(3);
    expect(events.sent).toHaveLength(1);
    expect(events.sent[0]?.result).toEqual(result);
    expect(logs.find((l) => l.event === 'email.sent')).toMatchObject({
      rejected: 1,
      deferred: 1,
      attempts: 3,
    });
  });

  it('fails as deferred (transient) with every refusal when every recipient is deferred to the end', async () => {
    const peer = await start();
    peer.rejectRecipient(ALICE, 450);
    peer.rejectRecipient(BOB, 452);
    const { mail } = serviceFor(peer);
    const error = (await mail.send(hello).catch((e: unknown) => e)) as EmailError;

    expect(isEmailError(error)).toBe(true);
    expect([error.code, error.failure, error.retryable, error.attempts]).toEqual([
      'deferred',
      'transient',
      true,
      3,
    ]);
    expect(error.refusals?.map((r) => [r.address, r.failure, r.status])).toEqual([
      [ALICE, 'transient', 450],
      [BOB, 'transient', 452],
    ]);
    expect(peer.messages).toEqual([]);
  });

  it('keeps to the retry budget: as many attempts as allowed, and none with retries off', async () => {
    const peer = await start();
    peer.rejectRecipient(BOB, 450);
    const many = await serviceFor(peer, { maxAttempts: 5 }).mail.send(hello);
    expect([many.attempts, peer.transactions]).toEqual([5, 5]);
    expect(many.deferred).toEqual([BOB]);

    const once = await serviceFor(peer).mail.send({ ...hello, retry: false });
    expect([once.attempts, peer.transactions]).toEqual([1, 6]);
    expect(once.deferred).toEqual([BOB]);
    expect(once.accepted).toEqual([ALICE]);
  });

  it('carries one Message-ID on every attempt, narrowed or not', async () => {
    const peer = await start();
    peer.failNext({ reply: 421, at: 'mail', message: 'Try again later' });
    peer.rejectRecipient(BOB, 450, 2);
    const { mail, events } = serviceFor(peer, { maxAttempts: 4 });
    const result = await mail.send(hello);

    expect(result.attempts).toBe(4);
    expect(envelopes(peer)).toEqual([[ALICE], [BOB]]);
    const ids = await Promise.all(peer.messages.map(async (m) => (await fromMime(m.raw)).messageId));
    expect(ids).toEqual([result.messageId, result.messageId]);
    expect(events.retrying.map((e) => [e.attempt, e.error.code, e.message.messageId])).toEqual([
      [1, 'deferred', result.messageId],
      [2, 'deferred', result.messageId],
      [3, 'deferred', result.messageId],
    ]);
  });
});
