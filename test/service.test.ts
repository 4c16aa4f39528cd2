import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configure, defaultService, sendVerificationEmail, sendWelcomeEmail } from '../src/default.js';
import { EmailError, isConfigError, isEmailError, isMessageError, isTemplateError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { allRecipients, type EmailMessage } from '../src/message.js';
import { EmailService, type FailedEvent, type SentEvent } from '../src/service.js';
import type { Transport } from '../src/transport.js';
import { failoverTransport } from '../src/transports/failover.js';
import { memoryTransport } from '../src/transports/memory.js';
import { sandboxTransport } from '../src/transports/sandbox.js';
import { smtpTransport } from '../src/transports/smtp.js';
import { stagingTransport } from '../src/transports/staging.js';
import { INVITE } from './fixtures/invite.js';
import { type SmtpPeer, startSmtpPeer } from './helpers/smtp-peer.js';

function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message?: string }[] = [];
  const at = (level: string) => (fields: object, message?: string) =>
    lines.push({ level, fields: fields as Record<string, unknown>, ...(message ? { message } : {}) });
  const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return { logger, lines };
}

const from = 'Acme <no-reply@acme.example>';

describe('EmailService', () => {
  let transport: ReturnType<typeof memoryTransport>;
  let service: EmailService;
  beforeEach(() => {
    transport = memoryTransport();
    service = new EmailService({ transport, from, replyTo: 'help@acme.example' });
  });

  it('sends the verification email with subject, HTML, text and the template name', async () => {
    const result = await service.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?token=abc',
    });
    expect(result.accepted).toEqual(['jane@example.com']);
    const { message } = transport.outbox[0]!;
    expect(result.messageId).toBe(message.messageId);
    expect(message.template).toBe('verification');
    expect(message.subject).toBe('Verify your email address for Acme');
    expect(message.html).toContain('https://acme.example/verify?token=abc');
    expect(message.text).toContain('https://acme.example/verify?token=abc');
    expect(message.from).toEqual({ name: 'Acme', address: 'no-reply@acme.example' });
    expect(message.replyTo).toEqual([{ address: 'help@acme.example' }]);
  });

  it('sends the password-reset and welcome emails', async () => {
    await service.sendPasswordResetEmail({
      to: 'jane@example.com',
      username: 'Jane',
      resetUrl: 'https://acme.example/reset?t=1',
      expiresInMinutes: 1,
    });
    await service.sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'Jane',
      cc: 'boss@example.com',
      tags: ['onboarding'],
    });
    const [reset, welcome] = transport.outbox.map((e) => e.message);
    expect(reset?.text).toContain('This link expires in 1 minute.');
    expect(welcome?.template).toBe('welcome');
    expect(welcome?.cc).toEqual([{ address: 'boss@example.com' }]);
    expect(welcome?.tags).toEqual(['onboarding']);
  });

  it('sends a message you composed, with the default sender', async () => {
    await service.send({ to: 'a@example.com', subject: 'Hi', text: 'Hello' });
    expect(transport.outbox[0]?.message.from.address).toBe('no-reply@acme.example');
  });

  it.each([
    ['a CR/LF in the subject', { subject: 'Hi\r\nBcc: victim@example.com' }, 'subject'],
    ['a CR/LF in an address', { to: 'jane@example.com\r\nBcc: victim@example.com' }, 'to[0]'],
  ])('refuses %s with a typed error and sends nothing', async (_, patch, field) => {
    const error = await service
      .send({ to: 'a@example.com', subject: 'Hi', text: 'x', ...patch })
      .catch((e) => e);
    expect(isMessageError(error) && error.field).toBe(field);
    expect(transport.outbox).toHaveLength(0);
  });

  it('refuses a CR/LF smuggled in through template data into the subject, naming the field', async () => {
    const error = await service
      .sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane\r\nBcc: victim@example.com' })
      .catch((e) => e);
    expect(isTemplateError(error) && error.field).toBe('username');
    expect(error.message).toBe(
      'template "welcome": username: in the subject, control characters and line breaks are not allowed (found U+000D)',
    );
    expect(transport.outbox).toHaveLength(0);
  });

  it.each([
    ['an unknown template', 'nope', {}],
    ['a ../ template name', '../verification', {}],
    ['missing required data', 'verification', { username: 'J' }],
    [
      'a javascript: URL',
      'verification',
      { username: 'J', verificationUrl: 'javascript:alert(document.cookie)' },
    ],
  ])('refuses %s with a TemplateError and writes nothing to any outbox', async (_, name, data) => {
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-svc-'));
    try {
      const sandboxed = new EmailService({ transport: sandboxTransport({ dir }), from });
      const error = await sandboxed.sendTemplate(name, { to: 'jane@example.com', data }).catch((e) => e);
      expect(isTemplateError(error)).toBe(true);
      expect(await readdir(dir)).toEqual([]);
      const memoryError = await service.sendTemplate(name, { to: 'jane@example.com', data }).catch((e) => e);
      expect(isTemplateError(memoryError)).toBe(true);
      expect(transport.outbox).toHaveLength(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('emits sent and failed events, and an unsubscribed listener hears nothing', async () => {
    const sent: SentEvent[] = [];
    const failed: FailedEvent[] = [];
    const off = service.on('sent', (e) => sent.push(e));
    service.on('failed', (e) => failed.push(e));
    await service.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    await service.sendTemplate('nope', { to: 'jane@example.com', data: {} }).catch(() => {});
    off();
    await service.sendWelcomeEmail({ to: 'bob@example.com', username: 'Bob' });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.message.to[0]?.address).toBe('jane@example.com');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.template).toBe('nope');
    expect(isTemplateError(failed[0]?.error)).toBe(true);
  });

  it('still resolves when a listener throws', async () => {
    service.on('sent', () => {
      throw new Error('listener bug');
    });
    await expect(
      service.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' }),
    ).resolves.toMatchObject({
      accepted: ['jane@example.com'],
    });
  });

  it('retries a retryable failure, then reports it with the attempts made', async () => {
    let calls = 0;
    const failing: Transport = {
      name: 'flaky',
      async send() {
        calls++;
        throw new EmailError('connection reset', { code: 'network', transport: 'flaky' });
      },
    };
    const { logger, lines } = recordingLogger();
    const failed: FailedEvent[] = [];
    const flaky = new EmailService({
      transport: failing,
      from,
      logger,
      retry: { maxAttempts: 3, baseDelayMs: 1 },
    });
    flaky.on('failed', (e) => failed.push(e));
    const error = await flaky.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' }).catch((e) => e);
    expect(isEmailError(error) && [error.retryable, error.failure]).toEqual([true, 'transient']);
    expect(calls).toBe(3);
    expect(failed[0]?.message?.template).toBe('welcome');
    expect(failed[0]?.attempts).toBe(3);
    expect(lines.map((l) => `${l.level} ${l.fields.event} ${l.fields.attempt ?? l.fields.attempts}`)).toEqual(
      [
        'info email.transport undefined',
        'warn email.retrying 1',
        'warn email.retrying 2',
        'error email.failed 3',
      ],
    );
    expect(lines[1]?.fields.error).toMatchObject({
      code: 'network',
      failure: 'transient',
      transport: 'flaky',
    });
    calls = 0;
    await flaky.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', retry: false }).catch(() => {});
    expect(calls).toBe(1);
  });

  it('derives the Message-ID from an idempotency key, the same on every send of that key', async () => {
    const key = 'welcome:user-42';
    const one = await service.sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'Jane',
      idempotencyKey: key,
    });
    const two = await service.sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'Jane',
      idempotencyKey: key,
    });
    const other = await service.sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'Jane',
      idempotencyKey: 'x',
    });
    expect(one.messageId).toMatch(/^<[0-9a-f]{32}@acme\.example>$/);
    expect(two.messageId).toBe(one.messageId);
    expect(other.messageId).not.toBe(one.messageId);
    expect(one.messageId).not.toContain('user-42');
    expect(transport.outbox[0]?.message.idempotencyKey).toBe(key);
    const bad = await service
      .sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', idempotencyKey: 'a\r\nb' })
      .catch((e) => e);
    expect(isMessageError(bad) && bad.field).toBe('idempotencyKey');
  });

  it('logs without bodies, links or full addresses', async () => {
    const { logger, lines } = recordingLogger();
    const logged = new EmailService({ transport: memoryTransport(), from, logger });
    const url = 'https://acme.example/reset?token=SECRET-TOKEN-123';
    await logged.sendPasswordResetEmail({
      to: 'jane.doe@example.com',
      username: 'Jane',
      resetUrl: url,
      expiresInMinutes: 5,
    });
    await logged
      .sendTemplate('password-reset', {
        to: 'jane.doe@example.com',
        data: { username: 'J', resetUrl: 'ftp://x', expiresInMinutes: 5 },
      })
      .catch(() => {});
    expect(lines.map((l) => `${l.level} ${l.fields.event}`)).toEqual([
      'info email.transport',
      'info email.sent',
      'error email.failed',
    ]);
    expect(lines[1]?.fields).toMatchObject({
      template: 'password-reset',
      transport: 'memory',
      to: ['j***@example.com'],
    });
    const all = JSON.stringify(lines);
    expect(all).not.toContain('SECRET-TOKEN-123');
    expect(all).not.toContain('jane.doe@');
    expect(all).not.toContain('You can choose a new one here');
  });

  it("builds no email.sent line for a logger that drops info lines (pino's isLevelEnabled), and still emits sent", async () => {
    const { logger, lines } = recordingLogger();
    const asked: string[] = [];
    const quiet = new EmailService({
      transport: memoryTransport(),
      from,
      logger: {
        ...logger,
        isLevelEnabled: (level) => {
          asked.push(level);
          return level !== 'info';
        },
      },
    });
    const durations: number[] = [];
    quiet.on('sent', ({ durationMs }) => durations.push(durationMs));
    await quiet.send({ to: 'jane@example.com', subject: 'Hi', text: 'Hi' });
    expect(lines.map((l) => `${l.level} ${l.fields.event}`)).not.toContain('info email.sent');
    expect(asked).toContain('info');
    expect(durations).toHaveLength(1);
    expect(durations[0]).toBeGreaterThanOrEqual(0);
    // The same logger, keeping info lines: the line is there.
    const { logger: loud, lines: loudLines } = recordingLogger();
    const kept = new EmailService({
      transport: memoryTransport(),
      from,
      logger: { ...loud, isLevelEnabled: () => true },
    });
    await kept.send({ to: 'jane@example.com', subject: 'Hi', text: 'Hi' });
    expect(loudLines.map((l) => `${l.level} ${l.fields.event}`)).toContain('info email.sent');
  });

  it('states once, at construction, where its mail goes', () => {
    const { logger, lines } = recordingLogger();
    new EmailService({ transport: memoryTransport(), from, logger });
    const custom: Transport = {
      name: 'relay',
      describe: () => 'relay smtp.acme.example:587',
      send: () => Promise.reject(new Error('unused')),
    };
    new EmailService({ transport: custom, from, appName: 'Acme', logger });
    const queue = { name: 'kafka notifications.email', enqueue: () => Promise.reject(new Error('unused')) };
    new EmailService({ transport: memoryTransport(), from, logger, queue });
    // A failover to the outbox delivers some mail and keeps the rest: said, not hidden.
    new EmailService({
      transport: failoverTransport([custom, memoryTransport()]),
      from,
      appName: 'Acme',
      logger,
    });
    expect(lines.map((l) => [l.fields, l.message])).toEqual([
      [
        {
          event: 'email.transport',
          transport: 'memory',
          destination: 'memory (an in-process outbox)',
          captures: true,
          sender: 'no-reply@acme.example',
        },
        'mailroom: emails are captured, not delivered: memory (an in-process outbox)',
      ],
      [
        {
          event: 'email.transport',
          transport: 'relay',
          destination: 'relay smtp.acme.example:587',
          captures: false,
          sender: 'no-reply@acme.example',
        },
        'mailroom: emails are delivered through relay smtp.acme.example:587',
      ],
      [
        expect.objectContaining({ queue: 'kafka notifications.email' }),
        'mailroom: emails are published to kafka notifications.email, for a worker to send',
      ],
      [
        expect.objectContaining({ transport: 'failover', captures: false, capturesSome: true }),
        'mailroom: emails are delivered through failover: relay smtp.acme.example:587 -> memory (an in-process outbox), but some may be captured instead (a capturing transport is behind it)',
      ],
    ]);
  });

  it('refuses a missing transport or a bad sender at construction', () => {
    expect(() => new EmailService({ from } as never)).toThrow(TypeError);
    expect(() => new EmailService({ transport, from: 'not an address' })).toThrow(/from/);
  });
});

describe('default service', () => {
  afterEach(() => configure({ transport: memoryTransport(), from }));

  it('uses the service given to configure()', async () => {
    const transport = memoryTransport();
    configure({ transport, from });
    await sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/v',
    });
    await sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(transport.outbox.map((e) => e.message.template)).toEqual(['verification', 'welcome']);
    expect(defaultService().transport).toBe(transport);
  });
});

/** A transport that delivers (captures is not true) and records what it was given. */
function deliveringTransport(name = 'smtp') {
  const sent: EmailMessage[] = [];
  const transport: Transport = {
    name,
    async send(message) {
      sent.push(message);
      return {
        messageId: message.messageId,
        accepted: allRecipients(message),
        rejected: [],
        transport: name,
      };
    },
  };
  return { transport, sent };
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the send to fail');
    },
    (error: unknown) => error,
  );
}

describe('one rule for every message, whatever the transport', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-rule-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses five tags on memory and on sandbox alike, before anything is kept', async () => {
    const memory = memoryTransport();
    const sandbox = sandboxTransport({ dir });
    for (const transport of [memory, sandbox]) {
      const mail = new EmailService({ transport, from });
      const error = await errorOf(
        mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', tags: ['a', 'b', 'c', 'd', 'e'] }),
      );
      expect(isMessageError(error) && error.field).toBe('tags');
    }
    expect(memory.outbox).toHaveLength(0);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('refuses metadata with CR LF, bare CR, bare LF or NUL on the sandbox and writes nothing', async () => {
    const mail = new EmailService({ transport: sandboxTransport({ dir }), from });
    for (const ref of ['1\r\nBcc: evil@x.com', '1\rBcc: evil@x.com', '1\nBcc: evil@x.com', '1\u0000']) {
      const error = await errorOf(
        mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', metadata: { ref } }),
      );
      expect(isMessageError(error) && error.field).toBe('metadata.ref');
    }
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('refuses a Message-ID header and points to idempotencyKey; In-Reply-To and References arrive', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from });
    const error = await errorOf(
      mail.send({
        to: 'jane@example.com',
        subject: 'Hi',
        text: 'x',
        headers: { 'Message-ID': '<a@b.example>' },
      }),
    );
    expect(isMessageError(error) && error.field).toBe('headers.Message-ID');
    expect((error as Error).message).toMatch(/idempotencyKey/);
    await mail.send({
      to: 'jane@example.com',
      subject: 'Re: Hi',
      text: 'x',
      headers: { 'In-Reply-To': '<first@acme.example>', References: '<first@acme.example>' },
    });
    expect(transport.outbox[0]?.message.headers).toEqual({
      'In-Reply-To': '<first@acme.example>',
      References: '<first@acme.example>',
    });
  });

  it('keeps In-Reply-To and References in memory as the SMTP server receives them', async () => {
    const peer = await startSmtpPeer();
    const memory = memoryTransport();
    const smtp = smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert });
    try {
      const headers = {
        'In-Reply-To': ' <b@acme.example>',
        References: '<a@acme.example>    <b@acme.example>',
      };
      for (const transport of [memory, smtp]) {
        await new EmailService({ transport, from }).send({
          to: 'jane@example.com',
          subject: 'Re: Hi',
          text: 'x',
          headers,
        });
      }
      const wire = await PostalMime.parse(peer.messages[0]!.raw);
      const onWire = (name: string) => wire.headers.find((h) => h.key === name.toLowerCase())?.value;
      const kept = memory.outbox[0]!.message.headers;
      expect(kept).toEqual({
        'In-Reply-To': '<b@acme.example>',
        References: '<a@acme.example> <b@acme.example>',
      });
      expect([onWire('In-Reply-To'), onWire('References')]).toEqual([kept['In-Reply-To'], kept.References]);
      // A value the wire would have rewritten is refused on both, before anything is sent.
      for (const transport of [memory, smtp]) {
        const error = await errorOf(
          new EmailService({ transport, from }).send({
            to: 'jane@example.com',
            subject: 'Re: Hi',
            text: 'x',
            headers: { 'In-Reply-To': 'order 42, see <a@b.example>' },
          }),
        );
        expect(isMessageError(error) && error.field).toBe('headers.In-Reply-To');
      }
      expect([memory.outbox.length, peer.messages.length]).toEqual([1, 1]);
    } finally {
      await smtp.close?.();
      await peer.close();
    }
  });

  it('refuses template data a reader would decode or reorder into something else, and sends nothing', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from, appName: 'Acme' });
    for (const username of ['=?UTF-8?B?SmFuZQ0KQmNjOiB4QGV2aWw=?= Doe', 'Jane\u202Eeod']) {
      const error = await errorOf(mail.sendWelcomeEmail({ to: 'jane@example.com', username }));
      expect(isTemplateError(error) && error.field).toBe('username');
    }
    const named = await errorOf(
      mail.send({
        to: { name: '=?UTF-8?B?UGF5UGFsIDxzZWN1cml0eUBwYXlwYWwuY29tPg==?=', address: 'jane@example.com' },
        subject: 'Hi',
        text: 'x',
      }),
    );
    expect(isMessageError(named) && named.field).toBe('to[0].name');
    expect(transport.outbox).toHaveLength(0);
  });
});

describe('calendar invitations', () => {
  const USER = 'mailer';
  const PASSWORD = 'correct horse battery staple';
  let peer: SmtpPeer | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('arrives over SMTP as a text/calendar; method=REQUEST alternative with the .ics attached', async () => {
    peer = await startSmtpPeer({ users: { [USER]: PASSWORD } });
    const transport = smtpTransport({
      host: peer.host,
      port: peer.port,
      user: USER,
      password: PASSWORD,
      ca: peer.cert,
    });
    const mail = new EmailService({ transport, from, retry: false });
    try {
      await mail.send({
        to: 'jane@example.com',
        subject: 'Invitation: Kick-off',
        text: 'You are invited.',
        html: '<p>You are invited.</p>',
        icalEvent: { content: INVITE },
        headers: { 'In-Reply-To': '<first@acme.example>', References: '<first@acme.example>' },
      });
    } finally {
      await mail.close();
    }
    const raw = peer.messages[0]?.raw.toString('utf8') ?? '';
    // The calendar is a sibling of the text and HTML inside multipart/alternative.
    const boundary = /multipart\/alternative;\s*boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1] ?? '';
    expect(boundary).not.toBe('');
    const alternative = raw.slice(raw.indexOf(`--${boundary}\r\n`), raw.indexOf(`--${boundary}--`));
    expect(alternative).toMatch(/Content-Type: text\/calendar;[^\r\n]*method=REQUEST/i);
    expect(alternative).toMatch(/Content-Type: text\/html/i);

    const email = await PostalMime.parse(raw);
    const calendar = email.attachments.find((a) => a.mimeType === 'text/calendar');
    expect(calendar?.method).toBe('REQUEST');
    expect(email.attachments.some((a) => a.filename === 'invite.ics')).toBe(true);
    expect(email.text?.trim()).toBe('You are invited.');
    expect(email.inReplyTo).toBe('<first@acme.example>');
    expect(email.references).toBe('<first@acme.example>');
  });

  it('is written into the sandbox .eml and summary', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-ical-'));
    const mail = new EmailService({ transport: sandboxTransport({ dir }), from });
    const result = await mail.send({
      to: 'jane@example.com',
      subject: 'Invitation',
      text: 'You are invited.',
      icalEvent: { content: INVITE, method: 'request' },
    });
    const files = result.response as { eml: string; json: string };
    const email = await PostalMime.parse(await readFile(files.eml));
    expect(email.attachments.find((a) => a.mimeType === 'text/calendar')?.method).toBe('REQUEST');
    const summary = JSON.parse(await readFile(files.json, 'utf8'));
    expect(summary.icalEvent).toEqual({ method: 'REQUEST', filename: 'invite.ics' });
  });

  it('is refused on a queued send rather than dropped', async () => {
    const queued: unknown[] = [];
    const queue = {
      name: 'test-queue',
      async enqueue(email: unknown) {
        queued.push(email);
        return { id: '1', idempotencyKey: 'k', topic: 't' } as never;
      },
    };
    const mail = new EmailService({ transport: memoryTransport(), from, queue });
    const error = await errorOf(
      mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', icalEvent: { content: INVITE } }),
    );
    expect(isMessageError(error) && error.field).toBe('icalEvent');
    expect(queued).toEqual([]);
  });
});

describe('built-in data is validated like any template data', () => {
  let transport: ReturnType<typeof memoryTransport>;
  let mail: EmailService;
  beforeEach(() => {
    transport = memoryTransport();
    mail = new EmailService({ transport, from, replyTo: 'help@acme.example' });
  });
  const reset = (expiresInMinutes: number) =>
    mail.sendPasswordResetEmail({
      to: 'jane@example.com',
      username: 'Jane',
      resetUrl: 'https://acme.example/reset?t=1',
      expiresInMinutes,
    });

  it.each([
    ['username', () => mail.sendWelcomeEmail({ to: 'jane@example.com', username: '' })],
    ['username', () => mail.sendWelcomeEmail({ to: 'jane@example.com', username: '   ' })],
    [
      'username',
      () =>
        mail.sendVerificationEmail({
          to: 'j@example.com',
          username: '',
          verificationUrl: 'https://a.example/',
        }),
    ],
    ['expiresInMinutes', () => reset(-5)],
    ['expiresInMinutes', () => reset(0)],
    ['expiresInMinutes', () => reset(1.5)],
    ['expiresInMinutes', () => reset(Number.NaN)],
    ['expiresInMinutes', () => reset(7 * 24 * 60 + 1)],
  ])('refuses a bad %s with a TemplateError naming it, and sends nothing', async (field, send) => {
    const error = await errorOf(send());
    expect(isTemplateError(error) && error.field).toBe(field);
    expect(transport.outbox).toHaveLength(0);
  });

  it.each([
    [1, '1 minute'],
    [5, '5 minutes'],
    [60, '1 hour'],
    [90, '1 hour 30 minutes'],
    [120, '2 hours'],
    [1440, '1 day'],
    [7 * 24 * 60, '7 days'],
  ])('says %i minutes as "%s" in the HTML, the text and the preheader', async (minutes, words) => {
    await reset(minutes);
    const { message } = transport.outbox[0]!;
    expect(message.html).toContain(`expires in ${words}.`);
    expect(message.html).toContain(`within ${words} to choose`);
    expect(message.text).toContain(`expires in ${words}.`);
  });

  it.each([
    ['sendWelcomeEmail', () => (mail.sendWelcomeEmail as (o?: unknown) => unknown)()],
    ['sendVerificationEmail', () => (mail.sendVerificationEmail as (o?: unknown) => unknown)()],
    ['sendPasswordResetEmail', () => (mail.sendPasswordResetEmail as (o?: unknown) => unknown)(null)],
    ['sendTemplate', () => (mail.sendTemplate as (t: string, o?: unknown) => unknown)('welcome')],
    ['send', () => (mail.send as (o?: unknown) => unknown)()],
  ])('%s without options throws a TypeError naming the method', async (method, call) => {
    const error = await errorOf(Promise.resolve().then(call));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(new RegExp(`^${method}: expected an options object`));
  });

  it('without a sender is a ConfigError naming from', () => {
    const error = (() => {
      try {
        new EmailService({ transport } as never);
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('from');
  });
});

describe('brand', () => {
  const configErrorOf = (make: () => unknown): unknown => {
    try {
      make();
    } catch (error) {
      return error;
    }
    throw new Error('expected a ConfigError');
  };

  it('refuses a delivering transport without appName and without a sender name', () => {
    const error = configErrorOf(
      () => new EmailService({ transport: deliveringTransport().transport, from: 'no-reply@acme.example' }),
    );
    expect(isConfigError(error) && error.option).toBe('appName');
  });

  it('names the app after appName, or the sender, with a delivering transport', async () => {
    const { transport, sent } = deliveringTransport();
    await new EmailService({ transport, from: 'no-reply@acme.example', appName: 'Acme' }).sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'J',
    });
    await new EmailService({ transport, from: 'Zed <no-reply@zed.example>' }).sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'J',
    });
    expect(sent.map((m) => m.subject)).toEqual(['Welcome to Acme, J!', 'Welcome to Zed, J!']);
    expect(sent[0]?.from).toEqual({ name: 'Acme', address: 'no-reply@acme.example' });
    expect(sent.map((m) => m.html).join('')).not.toContain('Mailroom');
  });

  it('falls back to "Mailroom" only on capturing transports, staging and failover included', async () => {
    const memory = memoryTransport();
    expect(memory.captures).toBe(true);
    expect(sandboxTransport().captures).toBe(true);
    const staged = stagingTransport({ transport: memory, allow: ['@example.com'] });
    expect(staged.captures).toBe(true);
    const mail = new EmailService({ transport: staged, from: 'no-reply@acme.example' });
    await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'J' });
    expect(memory.outbox[0]?.message.subject).toBe('[STAGING] Welcome to Mailroom, J!');

    const real = deliveringTransport().transport;
    for (const transport of [
      stagingTransport({ transport: real, allow: ['@example.com'] }),
      failoverTransport([memoryTransport(), real]),
    ]) {
      expect(transport.captures).toBe(false);
      const error = configErrorOf(() => new EmailService({ transport, from: 'no-reply@acme.example' }));
      expect(isConfigError(error) && error.option).toBe('appName');
    }
    expect(failoverTransport([memoryTransport(), sandboxTransport()]).captures).toBe(true);
  });

  it.each(['Acme\r\nBcc: evil@x.com', 'Acme\nBcc: evil@x.com', 'Acme\u0000', 'Acme\u2028', 'Acme\u0085', ''])(
    'refuses appName %j with a ConfigError naming it',
    (appName) => {
      const error = configErrorOf(() => new EmailService({ transport: memoryTransport(), from, appName }));
      expect(isConfigError(error) && error.option).toBe('appName');
    },
  );

  it('refuses a sender with a line break in its name as a ConfigError naming from', () => {
    const error = configErrorOf(
      () =>
        new EmailService({
          transport: memoryTransport(),
          from: { name: 'A\r\nBcc: e@x.com', address: 'a@b.example' },
        }),
    );
    expect(isConfigError(error) && error.option).toBe('from');
  });
});

describe('the welcome email invites replies only when they reach someone', () => {
  const welcome = async (options: { replyTo?: string; perSend?: string }) => {
    const transport = memoryTransport();
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      ...(options.replyTo ? { replyTo: options.replyTo } : {}),
    });
    await mail.sendWelcomeEmail({
      to: 'jane@example.com',
      username: 'Jane',
      ...(options.perSend ? { replyTo: options.perSend } : {}),
    });
    const { message } = transport.outbox[0]!;
    return `${message.html}\n${message.text}`;
  };

  it('says nothing about replying from no-reply@ without a Reply-To', async () => {
    const body = await welcome({});
    expect(body).not.toContain('just reply');
    expect(body).toContain("We're glad to have you with us.");
  });

  it('says "just reply" with the service Reply-To or one given for this email', async () => {
    expect(await welcome({ replyTo: 'help@acme.example' })).toContain('just reply to this email');
    expect(await welcome({ perSend: 'help@acme.example' })).toContain('just reply to this email');
  });

  it('render() takes the Reply-To the email will carry, as a queue worker renders it', () => {
    const mail = new EmailService({ transport: memoryTransport(), from });
    const text = (replyTo?: string | string[]) =>
      mail.render('welcome', { username: 'Jane' }, replyTo === undefined ? undefined : { replyTo }).text;
    expect(text()).not.toContain('just reply');
    expect(text('help@acme.example')).toContain('just reply to this email');
    expect(text([])).not.toContain('just reply');
  });
});

describe('one size limit per message', () => {
  const big = (bytes: number) => [{ filename: 'big.bin', content: new Uint8Array(bytes) }];

  it('refuses a 30 MB attachment on a direct send, and the sandbox writes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-size-'));
    try {
      const memory = memoryTransport();
      for (const transport of [memory, sandboxTransport({ dir })]) {
        const mail = new EmailService({ transport, from });
        const error = await errorOf(
          mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', attachments: big(30_000_000) }),
        );
        expect(isMessageError(error) && error.field).toBe('attachments');
        expect((error as Error).message).toMatch(/maxMessageBytes/);
      }
      expect(memory.outbox).toHaveLength(0);
      expect(await readdir(dir).catch(() => [])).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts attachments base64-encoded: 18 MB passes the 25 MB default, 19 MB does not', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from });
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', attachments: big(18_000_000) });
    const error = await errorOf(
      mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', attachments: big(19_000_000) }),
    );
    expect(isMessageError(error)).toBe(true);
    expect(transport.outbox).toHaveLength(1);
  });

  it('counts a body in UTF-8 bytes: 600 ASCII characters pass a 1 000-byte limit, 600 three-byte ones do not', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from, maxMessageBytes: 1_000 });
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'a'.repeat(600) });
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: '€'.repeat(330) }); // 990 bytes
    const error = await errorOf(mail.send({ to: 'jane@example.com', subject: 'Hi', text: '€'.repeat(600) }));
    expect(isMessageError(error) && error.field).toBe('html');
    expect((error as Error).message).toMatch(/about 1802 bytes/);
    expect(transport.outbox).toHaveLength(2);
  });

  it('applies maxMessageBytes to direct and queued sends alike', async () => {
    const queued: unknown[] = [];
    const queue = {
      name: 'test-queue',
      async enqueue(email: unknown) {
        queued.push(email);
        return { id: '1', idempotencyKey: 'k', topic: 't' } as never;
      },
    };
    const transport = memoryTransport();
    const direct = new EmailService({ transport, from, maxMessageBytes: 2_000 });
    const viaQueue = new EmailService({ transport, from, maxMessageBytes: 2_000, queue });
    for (const mail of [direct, viaQueue]) {
      await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', attachments: big(1_000) });
      const error = await errorOf(
        mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', attachments: big(1_600) }),
      );
      expect(isMessageError(error) && error.field).toBe('attachments');
      const html = await errorOf(
        mail.send({ to: 'jane@example.com', subject: 'Hi', html: 'x'.repeat(2_001) }),
      );
      expect(isMessageError(html) && html.field).toBe('html');
    }
    expect(transport.outbox).toHaveLength(1);
    expect(queued).toHaveLength(1);
  });

  it.each([0, -1, 1.5, '25MB'])('refuses maxMessageBytes %j with a ConfigError', (maxMessageBytes) => {
    expect(() => new EmailService({ transport: memoryTransport(), from, maxMessageBytes } as never)).toThrow(
      /^maxMessageBytes: /,
    );
  });
});

describe('log lines never carry a raw address, even inside an error message', () => {
  it('masks addresses quoted by a MessageError and by a provider reply', async () => {
    const { logger, lines } = recordingLogger();
    const refusing: Transport = {
      name: 'smtp',
      async send() {
        throw new EmailError('550 5.1.1 <jane.doe@example.com>: mailbox unknown', {
          code: 'rejected',
          transport: 'smtp',
          status: 550,
        });
      },
    };
    const mail = new EmailService({ transport: refusing, from, logger, retry: false });
    await errorOf(mail.send({ to: 'jürgen.doe@example.com', subject: 'Hi', text: 'x' }));
    await errorOf(mail.send({ to: 'jane.doe@example.com', subject: 'Hi', text: 'x' }));
    const failed = lines.filter((line) => line.fields.event === 'email.failed');
    expect(failed).toHaveLength(2);
    const all = JSON.stringify(lines);
    expect(all).not.toContain('jürgen.doe@');
    expect(all).not.toContain('jane.doe@');
    expect(failed[0]?.fields.error).toMatchObject({ name: 'MessageError', field: 'to[0]' });
    expect(JSON.stringify(failed[0]?.fields.error)).toContain('j***@example.com');
    expect(JSON.stringify(failed[1]?.fields.error)).toContain('j***@example.com');
  });
});
