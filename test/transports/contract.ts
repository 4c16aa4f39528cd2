/**
 * The transport contract: every transport runs these cases against its real peer (the memory
 * outbox, the sandbox folder, an SMTP server, a Mailgun-speaking HTTP server). A peer that cannot
 * support a case names the reason in `skip`.
 *
 * The fault cases send through an EmailService, as users do, and count what happened: attempts
 * made, the final outcome, and what the peer holds, so that nothing is lost or doubled silently.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmailError, isEmailError } from '../../src/errors.js';
import { createMessage, type EmailMessageInput } from '../../src/message.js';
import type { FailedEvent, RetryingEvent, SentEvent } from '../../src/service.js';
import { EmailService } from '../../src/service.js';
import type { Transport } from '../../src/transport.js';
import type { ReceivedEmail } from '../helpers/received.js';

/** Ways a remote peer can be made to fail, each the way its own protocol would. */
export type Fault =
  /** A temporary refusal (SMTP 421, HTTP 500): retry. */
  | 'transient'
  /** A refusal of this message (SMTP 550, HTTP 400): never retry. */
  | 'permanent'
  /** The connection drops after the whole message was sent, with no answer: retry, flagged as a possible duplicate. */
  | 'drop'
  /** The peer stalls longer than the transport waits: a timeout, then retry. */
  | 'slow';

export interface ContractFaults {
  /** Makes the next `times` sends fail this way. */
  inject(fault: Fault, times?: number): void;
  /** Sends the peer has seen start (SMTP transactions, HTTP requests), failed ones included. */
  attempts(): number;
  /** A transport for this peer with wrong credentials. */
  badCredentials(): Transport;
  /** A transport for this peer that waits at most `ms` for an answer. */
  impatient(ms: number): Transport;
  /** Makes the peer refuse this recipient for now (SMTP 450 at RCPT TO) the next `times` times. */
  deferRecipient?(address: string, times: number): void;
}

export interface ContractPeer {
  transport: Transport;
  /** Everything the peer has received so far, oldest first. */
  received(): Promise<ReceivedEmail[]>;
  /** Fault injection, for peers across a network. */
  faults?: ContractFaults;
  close?(): Promise<void>;
}

export type ContractCase =
  | 'plain'
  | 'alternative'
  | 'cc-bcc'
  | 'reply-to'
  | 'attachments'
  | 'headers'
  | 'unicode'
  | 'abort'
  | 'auth'
  | 'transient'
  | 'permanent'
  | 'drop'
  | 'slow'
  | 'deferred';

export interface ContractOptions {
  /** Cases this peer cannot run, each with the reason. */
  skip?: Partial<Record<ContractCase, string>>;
}

const base: EmailMessageInput = {
  from: { name: 'Acme', address: 'no-reply@acme.example' },
  to: 'jane@example.com',
  subject: 'Hello',
  text: 'Plain text body',
};

export function transportContract(
  name: string,
  makePeer: () => Promise<ContractPeer>,
  options: ContractOptions = {},
) {
  describe(`${name} transport contract`, () => {
    let peer: ContractPeer;
    beforeEach(async () => {
      peer = await makePeer();
    });
    afterEach(async () => {
      await peer.close?.();
      await peer.transport.close?.();
    });

    const send = (input: Partial<EmailMessageInput>, signal?: AbortSignal) =>
      peer.transport.send(createMessage({ ...base, ...input }), {
        attempt: 1,
        ...(signal ? { signal } : {}),
      });
    const only = async () => {
      const all = await peer.received();
      expect(all).toHaveLength(1);
      return all[0]!;
    };
    const test = (key: ContractCase, title: string, fn: () => Promise<void>) =>
      options.skip?.[key] ? it.skip(`${title} (skipped: ${options.skip[key]})`, fn) : it(title, fn);

    test('plain', 'delivers a plain-text message with its Message-ID', async () => {
      const message = createMessage(base);
      const result = await peer.transport.send(message, { attempt: 1 });
      expect(result.messageId).toBe(message.messageId);
      expect(result.accepted).toEqual(['jane@example.com']);
      expect(result.rejected).toEqual([]);
      const got = await only();
      expect(got.from).toBe('no-reply@acme.example');
      expect(got.fromName).toBe('Acme');
      expect(got.to).toEqual(['jane@example.com']);
      expect(got.subject).toBe('Hello');
      expect(got.text).toBe('Plain text body');
      expect(got.messageId).toBe(message.messageId);
    });

    test('alternative', 'delivers HTML and text together', async () => {
      await send({ html: '<p>Hello <b>Jane</b></p>', text: 'Hello Jane' });
      const got = await only();
      expect(got.html).toContain('<p>Hello <b>Jane</b></p>');
      expect(got.text).toBe('Hello Jane');
    });

    test('cc-bcc', 'delivers to cc and bcc, and reports every recipient accepted', async () => {
      const result = await send({ cc: ['cc@example.com'], bcc: ['hidden@example.com'] });
      expect([...result.accepted].sort()).toEqual([
        'cc@example.com',
        'hidden@example.com',
        'jane@example.com',
      ]);
      const got = await only();
      expect(got.cc).toEqual(['cc@example.com']);
      expect(JSON.stringify(got.headers)).not.toContain('hidden@example.com');
    });

    test('reply-to', 'sets Reply-To', async () => {
      await send({ replyTo: 'Support <support@acme.example>' });
      expect((await only()).replyTo).toEqual(['support@acme.example']);
    });

    test('attachments', 'carries attachments byte for byte, typed the same on every transport', async () => {
      const bytes = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
      await send({
        attachments: [
          { filename: 'report.csv', content: 'a,b\n1,2\n', contentType: 'text/csv' },
          { filename: 'blob.bin', content: bytes, contentType: 'application/octet-stream' },
          // No type given: the one guessed from the name, whichever transport sends it.
          { filename: 'invoice.pdf', content: '%PDF-1.4' },
          { filename: 'notes.unknownext', content: 'x' },
        ],
      });
      const got = await only();
      const byName = Object.fromEntries(got.attachments.map((a) => [a.filename, a]));
      expect(byName['report.csv']?.content.toString()).toBe('a,b\n1,2\n');
      expect(byName['report.csv']?.contentType).toMatch(/^text\/csv/);
      expect([...(byName['blob.bin']?.content ?? [])]).toEqual([...bytes]);
      expect(byName['invoice.pdf']?.contentType).toMatch(/^application\/pdf/);
      expect(byName['notes.unknownext']?.contentType).toMatch(/^application\/octet-stream/);
    });

    test('headers', 'passes custom headers through', async () => {
      await send({ headers: { 'X-Campaign': 'spring', 'List-Unsubscribe': '<https://acme.example/u/1>' } });
      const got = await only();
      expect(got.headers['x-campaign']).toBe('spring');
      expect(got.headers['list-unsubscribe']).toBe('<https://acme.example/u/1>');
    });

    test('unicode', 'keeps non-ASCII names, subjects and bodies intact', async () => {
      const subject = 'Grüße aus Köln · 你好 · مرحبا 👋';
      const text = 'Schöne Grüße, 谢谢, شكرا 🎉';
      await send({
        from: { name: 'Jürgen 王 أحمد', address: 'no-reply@acme.example' },
        subject,
        text,
        html: `<p>${text}</p>`,
      });
      const got = await only();
      expect(got.subject).toBe(subject);
      expect(got.fromName).toBe('Jürgen 王 أحمد');
      expect(got.text).toBe(text);
      expect(got.html).toContain(text);
    });

    test('abort', 'does not deliver when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      const error = await send({}, controller.signal).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(Error);
      expect(isEmailError(error) ? error.code : (error as Error).name).toMatch(/aborted|AbortError/);
      expect(await peer.received()).toEqual([]);
    });

    /** Sends through a service with quick retries and records every event. */
    const viaService = async (transport: Transport, input: Partial<EmailMessageInput> = {}) => {
      const mail = new EmailService({
        transport,
        from: base.from!,
        retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      });
      const events = {
        sent: [] as SentEvent[],
        retrying: [] as RetryingEvent[],
        failed: [] as FailedEvent[],
      };
      mail.on('sent', (e) => events.sent.push(e));
      mail.on('retrying', (e) => events.retrying.push(e));
      mail.on('failed', (e) => events.failed.push(e));
      const outcome = await mail.send({ ...base, ...input } as EmailMessageInput).then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: undefined, error: error as EmailError }),
      );
      if (transport !== peer.transport) await transport.close?.();
      return { ...outcome, events };
    };
    const faults = () => {
      if (!peer.faults) throw new Error('this peer has no fault injection: name a reason in skip');
      return peer.faults;
    };

    test('auth', 'wrong credentials fail as systemic, and are not retried', async () => {
      const { error, events } = await viaService(faults().badCredentials());
      expect(isEmailError(error)).toBe(true);
      expect([error?.code, error?.failure, error?.retryable]).toEqual(['auth', 'systemic', false]);
      expect(events.retrying).toHaveLength(0);
      expect(events.failed[0]?.attempts).toBe(1);
      expect(await peer.received()).toEqual([]);
    });

    test('transient', 'retries temporary refusals, then delivers exactly once', async () => {
      faults().inject('transient', 2);
      const before = faults().attempts();
      const { result, events } = await viaService(peer.transport);
      expect(result?.attempts).toBe(3);
      expect(events.retrying.map((e) => [e.attempt, e.error.failure])).toEqual([
        [1, 'transient'],
        [2, 'transient'],
      ]);
      expect(faults().attempts() - before).toBe(3);
      const got = await peer.received();
      expect(got).toHaveLength(1);
      expect(got[0]?.messageId).toBe(result?.messageId);
    });

    test('permanent', 'a refused message fails as permanent after one attempt', async () => {
      faults().inject('permanent');
      const before = faults().attempts();
      const { error, events } = await viaService(peer.transport);
      expect([error?.code, error?.failure, error?.retryable]).toEqual(['rejected', 'permanent', false]);
      expect(events.failed[0]?.attempts).toBe(1);
      expect(faults().attempts() - before).toBe(1);
      expect(await peer.received()).toEqual([]);
    });

    test(
      'drop',
      'a connection dropped after the message went out is retried as a possible duplicate',
      async () => {
        faults().inject('drop');
        const { result, events } = await viaService(peer.transport);
        expect(result?.attempts).toBe(2);
        expect(events.retrying).toHaveLength(1);
        expect(events.retrying[0]?.error.failure).toBe('ambiguous');
        expect(events.retrying[0]?.error.possibleDuplicate).toBe(true);
        const got = await peer.received();
        expect(got).toHaveLength(1);
        // Both attempts carried one Message-ID, so a receiver can tell a duplicate.
        expect(got[0]?.messageId).toBe(events.retrying[0]?.message.messageId);
      },
    );

    test('deferred', 'a recipient deferred once is retried alone; each recipient gets one copy', async () => {
      const { deferRecipient } = faults();
      if (!deferRecipient) throw new Error('this peer cannot defer a recipient: name a reason in skip');
      deferRecipient('bob@example.net', 1);
      const before = faults().attempts();
      const { result, events } = await viaService(peer.transport, {
        to: ['jane@example.com', 'bob@example.net'],
      });
      expect(result?.accepted).toEqual(['jane@example.com', 'bob@example.net']);
      expect(result?.deferred ?? []).toEqual([]);
      expect(events.retrying.map((e) => [e.error.code, e.error.refusals?.map((r) => r.address)])).toEqual([
        ['deferred', ['bob@example.net']],
      ]);
      expect(faults().attempts() - before).toBe(2);
      // One copy per delivery: the first for jane, the retry for bob, both the same email.
      const got = await peer.received();
      expect(got.map((g) => g.messageId)).toEqual([result?.messageId, result?.messageId]);
      expect(got.map((g) => g.to)).toEqual([
        ['jane@example.com', 'bob@example.net'],
        ['jane@example.com', 'bob@example.net'],
      ]);
    });

    test('slow', 'a peer slower than the timeout is given up on, then retried', async () => {
      faults().inject('slow');
      const { result, events } = await viaService(faults().impatient(300));
      expect(result?.attempts).toBe(2);
      expect(events.retrying[0]?.error.code).toBe('timeout');
      expect(events.retrying[0]?.error.retryable).toBe(true);
      expect(await peer.received()).toHaveLength(1);
    });
  });
}

/** The fault cases a transport with no remote peer (memory, sandbox) cannot meet, and why. */
export const NO_REMOTE_PEER: ContractOptions['skip'] = {
  auth: 'no credentials: nothing leaves this machine',
  transient: 'no remote peer to refuse the message',
  permanent: 'no remote peer to refuse the message',
  drop: 'no connection to drop',
  slow: 'no remote peer to stall',
  deferred: 'no remote peer to defer a recipient',
};
