import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configure, defaultService, sendVerificationEmail, sendWelcomeEmail } from '../src/default.js';
import { EmailError, isEmailError, isMessageError, isTemplateError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { EmailService, type FailedEvent, type SentEvent } from '../src/service.js';
import type { Transport } from '../src/transport.js';
import { memoryTransport } from '../src/transports/memory.js';
import { sandboxTransport } from '../src/transports/sandbox.js';

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
      'template "welcome": username: line breaks and control characters are not allowed in the subject',
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
      ['warn email.retrying 1', 'warn email.retrying 2', 'error email.failed 3'],
    );
    expect(lines[0]?.fields.error).toMatchObject({
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
      'info email.sent',
      'error email.failed',
    ]);
    expect(lines[0]?.fields).toMatchObject({
      template: 'password-reset',
      transport: 'memory',
      to: ['j***@example.com'],
    });
    const all = JSON.stringify(lines);
    expect(all).not.toContain('SECRET-TOKEN-123');
    expect(all).not.toContain('jane.doe@');
    expect(all).not.toContain('Choose a new password');
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
