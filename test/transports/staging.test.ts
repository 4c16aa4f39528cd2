import { describe, expect, it } from 'vitest';
import { isEmailError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { stagingTransport } from '../../src/transports/staging.js';
import { startSmtpPeer } from '../helpers/smtp-peer.js';

const message = createMessage({
  from: 'a@acme.example',
  to: ['dev@acme.example', 'customer@example.org'],
  cc: 'other@example.net',
  subject: 'Your order',
  text: 'x',
});

describe('stagingTransport', () => {
  it('redirects everyone not on the allowlist to one inbox and keeps a record of who they were', async () => {
    const inner = memoryTransport();
    const staging = stagingTransport({
      transport: inner,
      allow: ['@acme.example'],
      redirectTo: 'qa@acme.example',
    });
    const result = await staging.send(message, { attempt: 1 });
    const sent = inner.outbox[0]!.message;
    expect(sent.to.map((a) => a.address)).toEqual(['dev@acme.example', 'qa@acme.example']);
    expect(sent.cc).toEqual([]);
    expect(sent.subject).toBe('[STAGING] Your order');
    expect(sent.headers['X-Mailroom-Original-Recipients']).toBe(
      'dev@acme.example, customer@example.org, other@example.net',
    );
    expect(sent.messageId).toBe(message.messageId);
    expect(result.rejected).toEqual([]);
  });

  it('refuses, and reports, recipients off the allowlist when there is no redirect', async () => {
    const inner = memoryTransport();
    const staging = stagingTransport({
      transport: inner,
      allow: ['dev@acme.example'],
      subjectPrefix: '[QA] ',
    });
    const result = await staging.send(message, { attempt: 1 });
    expect(inner.outbox[0]!.message.to.map((a) => a.address)).toEqual(['dev@acme.example']);
    expect(inner.outbox[0]!.message.subject).toBe('[QA] Your order');
    expect(result.rejected).toEqual(['customer@example.org', 'other@example.net']);
  });

  it('fails loudly instead of dropping a message with no allowed recipient', async () => {
    const inner = memoryTransport();
    const staging = stagingTransport({ transport: inner, allow: ['@nowhere.example'] });
    const error = await staging.send(message, { attempt: 1 }).catch((e) => e);
    expect(isEmailError(error) && error.code).toBe('rejected');
    expect(inner.outbox).toHaveLength(0);
  });

  it('redirects everything when only redirectTo is given', async () => {
    const inner = memoryTransport();
    await stagingTransport({ transport: inner, redirectTo: 'qa@acme.example' }).send(message, { attempt: 1 });
    expect(inner.outbox[0]!.message.to.map((a) => a.address)).toEqual(['qa@acme.example']);
  });

  it('needs a transport and a rule', () => {
    expect(() => stagingTransport({ transport: memoryTransport() })).toThrow(/allow, redirectTo/);
    expect(() => stagingTransport({ allow: [] } as never)).toThrow(/transport is required/);
  });

  it('passes a retry of deferred recipients through: only they get it, the very same message', async () => {
    const peer = await startSmtpPeer();
    const smtp = smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert });
    try {
      peer.rejectRecipient('bob@example.net', 450, 1);
      const mail = new EmailService({
        transport: stagingTransport({ transport: smtp, allow: ['@example.com', '@example.net'] }),
        from: 'Acme <a@acme.example>',
        retry: { baseDelayMs: 10 },
      });
      const result = await mail.send({
        to: ['alice@example.com', 'bob@example.net', 'customer@example.org'],
        subject: 'Your order',
        text: 'x',
      });
      expect(result).toMatchObject({
        accepted: ['alice@example.com', 'bob@example.net'],
        rejected: ['customer@example.org'],
        attempts: 2,
      });
      expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([
        ['alice@example.com'],
        ['bob@example.net'],
      ]);
      expect(peer.messages[1]?.raw.equals(peer.messages[0]!.raw)).toBe(true);
    } finally {
      await smtp.close();
      await peer.close();
    }
  });
});
