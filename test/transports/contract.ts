/**
 * The transport contract: every transport runs these cases against its real peer (the memory
 * outbox, the sandbox folder, later an SMTP server and a Mailgun-speaking HTTP server).
 * A peer that cannot support a case names the reason in `skip`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEmailError } from '../../src/errors.js';
import { createMessage, type EmailMessageInput } from '../../src/message.js';
import type { Transport } from '../../src/transport.js';
import type { ReceivedEmail } from '../helpers/received.js';

export interface ContractPeer {
  transport: Transport;
  /** Everything the peer has received so far, oldest first. */
  received(): Promise<ReceivedEmail[]>;
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
  | 'abort';

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

    test('attachments', 'carries attachments byte for byte', async () => {
      const bytes = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
      await send({
        attachments: [
          { filename: 'report.csv', content: 'a,b\n1,2\n', contentType: 'text/csv' },
          { filename: 'blob.bin', content: bytes, contentType: 'application/octet-stream' },
        ],
      });
      const got = await only();
      const byName = Object.fromEntries(got.attachments.map((a) => [a.filename, a]));
      expect(byName['report.csv']?.content.toString()).toBe('a,b\n1,2\n');
      expect(byName['report.csv']?.contentType).toMatch(/^text\/csv/);
      expect([...(byName['blob.bin']?.content ?? [])]).toEqual([...bytes]);
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
  });
}
