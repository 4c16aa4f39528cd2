import { describe, expect, it } from 'vitest';
import { isConfigError, isEmailError, isMessageError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { failoverTransport } from '../../src/transports/failover.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { roundRobinTransport } from '../../src/transports/round-robin.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { stagingTransport } from '../../src/transports/staging.js';
import { startSmtpPeer } from '../helpers/smtp-peer.js';
import { thrown } from '../helpers/thrown.js';

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

  it('never names a blind copy in the header every recipient reads, and keeps one such header', async () => {
    const inner = memoryTransport();
    const staging = stagingTransport({
      transport: inner,
      allow: ['@acme.example'],
      redirectTo: 'qa@acme.example',
    });
    const secret = createMessage({
      from: 'a@acme.example',
      to: 'dev@acme.example',
      bcc: ['secret-customer@example.org', 'audit@acme.example'],
      subject: 'Your order',
      text: 'x',
      // A caller's own header of that name, in another case: replaced, not doubled.
      headers: { 'x-mailroom-original-recipients': 'forged@example.org' },
    });
    await staging.send(secret, { attempt: 1 });
    const sent = inner.outbox[0]!.message;
    const named = Object.entries(sent.headers).filter(
      ([n]) => n.toLowerCase() === 'x-mailroom-original-recipients',
    );
    expect(named).toEqual([['X-Mailroom-Original-Recipients', 'dev@acme.example, (and 2 blind copies)']]);
    expect(JSON.stringify(sent.headers)).not.toContain('secret-customer');
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

  /** The error stagingTransport throws for these options. */
  const refusal = (options: Record<string, unknown>) => {
    try {
      stagingTransport({ transport: memoryTransport(), ...options });
    } catch (e) {
      return e as Error;
    }
    throw new Error('stagingTransport accepted the options');
  };

  it.each([
    ['a bare domain', ['@acme.example', 'acme.example'], 'entry 1 "acme.example"'],
    ['a wildcard', ['*@acme.example'], 'entry 0 "*@acme.example"'],
    ['two entries in one', ['@a.example;@b.example'], 'entry 0'],
    ['two entries with a comma', ['qa@acme.example,dev@acme.example'], 'entry 0'],
    ['an empty entry', ['qa@acme.example', ''], 'entry 1 ""'],
    ['a blank entry', ['  '], 'entry 0'],
    ['a line break', ['qa@acme.example\nbcc@evil.example'], 'entry 0 "qa@acme.example\\nbcc@evil.example"'],
    ['an invalid domain', ['@acme'], 'entry 0 "@acme"'],
    ['a lone @', ['@'], 'entry 0 "@"'],
  ])('refuses an allowlist with %s when built, naming allow and the entry', (_, allow, says) => {
    const error = refusal({ allow, redirectTo: 'qa@acme.example' });
    expect(isConfigError(error) && error.option).toBe('allow');
    expect(error.message).toContain(says);
    expect(error.message).toContain('an address (qa@acme.example) or a whole domain (@acme.example)');
  });

  it('refuses an empty allowlist with nowhere to redirect: every send would fail', () => {
    const error = refusal({ allow: [] });
    expect(isConfigError(error) && [error.option, error.message]).toEqual([
      'allow',
      'allow: is empty and there is no redirectTo: every message would be refused',
    ]);
  });

  it('refuses a subject prefix that is not header text when built, not at every send', () => {
    for (const subjectPrefix of ['[QA]\r\nBcc: x@evil.example ', '[QA]\n', '[QA]\u0007 ']) {
      const error = refusal({ allow: ['@acme.example'], subjectPrefix });
      expect(isConfigError(error) && error.option).toBe('subjectPrefix');
      expect(error.message).toMatch(/^subjectPrefix: control characters and line breaks are not allowed/);
    }
  });

  it('refuses a bad redirectTo when built, naming it', () => {
    for (const redirectTo of [
      'qa@',
      'qa@acme',
      'qa@acme.example\r\nBcc: x@evil.example',
      { address: 'nope' },
    ]) {
      const error = refusal({ redirectTo });
      expect(isConfigError(error) && error.option).toBe('redirectTo');
    }
  });

  it('keeps TypeError for options of the wrong type', () => {
    expect(refusal({ allow: '@acme.example' })).toBeInstanceOf(TypeError);
    expect(refusal({ allow: [42] })).toBeInstanceOf(TypeError);
    expect(refusal({ redirectTo: 42 })).toBeInstanceOf(TypeError);
    expect(refusal({ redirectTo: 'qa@acme.example', subjectPrefix: 1 })).toBeInstanceOf(TypeError);
  });

  it('matches allowlist entries as messages spell addresses: case-insensitive, international domains in ASCII', async () => {
    const inner = memoryTransport();
    const staging = stagingTransport({
      transport: inner,
      allow: [' @Acme.Example ', '@bücher.example', 'QA@Shop.Example'],
    });
    const result = await staging.send(
      createMessage({
        from: 'a@acme.example',
        to: ['dev@acme.example', 'leser@bücher.example', 'qa@shop.example', 'customer@example.org'],
        subject: 'Your order',
        text: 'x',
      }),
      { attempt: 1 },
    );
    expect(inner.outbox[0]!.message.to.map((a) => a.address)).toEqual([
      'dev@acme.example',
      'leser@xn--bcher-kva.example',
      'qa@shop.example',
    ]);
    expect(result.rejected).toEqual(['customer@example.org']);
  });

  it('never sees an address its server may route on (% and ! in the local part): refused in allow and in a message', () => {
    for (const entry of ['ops%relay.example@acme.example', 'relay.example!ops@acme.example']) {
      const error = thrown(
        () => stagingTransport({ transport: memoryTransport(), allow: ['@acme.example', entry] }),
        isConfigError,
        'a ConfigError',
      );
      expect(error.message, entry).toContain('entry 1');
    }
    // A domain entry cannot admit one: no message holds one (see test/message.test.ts).
    const error = thrown(
      () =>
        createMessage({ from: 'a@acme.example', to: 'x%evil.example@acme.example', subject: 's', text: 'x' }),
      isMessageError,
      'a MessageError',
    );
    expect(error.field).toBe('to[0]');
  });

  it('says it is staged, and failover or round robin will not put it beside a transport that is not', () => {
    const staged = stagingTransport({ transport: memoryTransport(), allow: ['@acme.example'] });
    expect(staged.staged).toBe(true);
    for (const list of [
      [staged, memoryTransport()],
      [memoryTransport(), staged],
    ]) {
      for (const make of [failoverTransport, roundRobinTransport]) {
        let error: unknown;
        try {
          make(list);
        } catch (e) {
          error = e;
        }
        expect(isConfigError(error) && error.option).toBe('transports');
        expect((error as Error).message).toMatch(/is staged but entry \d \(memory\) is not/);
      }
    }
    const both = failoverTransport([
      staged,
      stagingTransport({ transport: memoryTransport(), redirectTo: 'qa@acme.example' }),
    ]);
    expect(both.staged).toBe(true);
    expect(roundRobinTransport([both, staged]).staged).toBe(true);
    expect(failoverTransport([memoryTransport(), memoryTransport()]).staged).toBeUndefined();
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
