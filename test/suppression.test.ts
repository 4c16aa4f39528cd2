import { afterEach, describe, expect, it } from 'vitest';
import { isMessageError } from '../src/errors.js';
import type { QueuedEmail } from '../src/queue.js';
import { EmailService, type SuppressedEvent } from '../src/service.js';
import { memorySuppressionStore, type SuppressionStore, suppressFromEvents } from '../src/suppression.js';
import { memoryTransport } from '../src/transports/memory.js';
import { createWebhookHandler } from '../src/webhooks/index.js';
import { rejection } from './helpers/thrown.js';
import { suppressionStoreContract } from './suppression-contract.js';
import { listen, MAILGUN_KEY, mailgun, post, RESEND_SECRET, resend, sample } from './webhooks/signing.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** What the promise `fn` returns rejects with. */

function service(suppressions: SuppressionStore) {
  const transport = memoryTransport();
  const mail = new EmailService({
    transport,
    from: 'Acme <no-reply@acme.example>',
    suppressions,
    retry: false,
  });
  const events: SuppressedEvent[] = [];
  mail.on('suppressed', (e) => void events.push(e));
  return { mail, transport, events };
}

const email = { subject: 'Your invoice', text: 'Hello' };

suppressionStoreContract('memorySuppressionStore', async () => ({ store: memorySuppressionStore() }));

describe('memorySuppressionStore', () => {
  it('suppresses, answers case-insensitively, keeps the first cause, lists and lifts', async () => {
    const store = memorySuppressionStore();
    const since = new Date('2026-12-01T10:00:00Z');
    await store.suppress('Jane@Example.com', 'hard-bounce', { detail: 'mailgun: 550: no such user', since });
    await store.suppress('jane@example.com', 'complaint');
    expect(await store.isSuppressed('JANE@example.COM')).toEqual({
      address: 'jane@example.com',
      reason: 'hard-bounce',
      since,
      detail: 'mailgun: 550: no such user',
    });
    expect(await store.isSuppressed('john@example.com')).toBeUndefined();
    expect((await store.list()).map((s) => s.address)).toEqual(['jane@example.com']);
    expect(await store.lift('jane@EXAMPLE.com')).toBe(true);
    expect(await store.lift('jane@example.com')).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  it('refuses a malformed address or reason, naming the field', async () => {
    const store = memorySuppressionStore();
    const bad = await rejection(() => store.suppress('not an address', 'manual'));
    expect(isMessageError(bad) && bad.field).toBe('address');
    const reason = await rejection(() => store.suppress('jane@example.com', 'bored' as 'manual'));
    expect(isMessageError(reason) && reason.field).toBe('reason');
  });
});

describe('suppressFromEvents', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  const base = { provider: 'sendgrid' as const, timestamp: at, raw: {} };

  it('suppresses hard bounces and complaints only, skipping a recipient that is no address', async () => {
    const store = memorySuppressionStore();
    const onEvent = suppressFromEvents(store);
    await onEvent({ ...base, type: 'bounced', bounce: 'soft', recipient: 'full@example.com' });
    await onEvent({ ...base, type: 'unsubscribed', recipient: 'bye@example.com' });
    await onEvent({ ...base, type: 'deferred', recipient: 'slow@example.com' });
    await onEvent({ ...base, type: 'bounced', bounce: 'hard', recipient: 'not an address' });
    await onEvent({
      ...base,
      type: 'bounced',
      bounce: 'hard',
      recipient: 'gone@example.com',
      diagnostic: '5.1.1',
    });
    await onEvent({ ...base, type: 'complained', recipient: 'angry@example.com' });
    expect(await store.list()).toEqual([
      { address: 'gone@example.com', reason: 'hard-bounce', since: at, detail: 'sendgrid: 5.1.1' },
      { address: 'angry@example.com', reason: 'complaint', since: at, detail: 'sendgrid' },
    ]);
  });
});

describe('EmailService with suppressions', () => {
  it('logs what it left out, the address masked', async () => {
    const store = memorySuppressionStore();
    await store.suppress('jane@example.com', 'complaint');
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const record = (fields: Record<string, unknown>, message: string) => void lines.push({ fields, message });
    const logger = { info: record, warn: record, error: record, debug: record };
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      suppressions: store,
      logger,
    });
    await mail.send({ ...email, to: 'jane@example.com' });
    const line = lines.find((l) => l.fields.event === 'email.suppressed');
    expect(line?.fields).toMatchObject({ sent: false, category: 'transactional' });
    expect(JSON.stringify(line)).not.toContain('jane@example.com');
  });

  it('sends nothing when every recipient is suppressed, and says so in the result and an event', async () => {
    const store = memorySuppressionStore();
    await store.suppress('jane@example.com', 'hard-bounce');
    const { mail, transport, events } = service(store);
    const sent: unknown[] = [];
    mail.on('sent', (e) => void sent.push(e));
    const result = await mail.send({ ...email, to: 'Jane <JANE@example.com>' });
    expect(transport.outbox).toHaveLength(0);
    expect(result).toMatchObject({
      accepted: [],
      attempts: 0,
      suppressed: [{ address: 'jane@example.com', reason: 'hard-bounce' }],
    });
    expect(events).toMatchObject([{ sent: false, suppressed: [{ address: 'jane@example.com' }] }]);
    expect(sent).toEqual([]);
  });

  it('leaves suppressed recipients out and sends to the others', async () => {
    const store = memorySuppressionStore();
    await store.suppress('spam-reporter@example.com', 'complaint');
    const { mail, transport, events } = service(store);
    const result = await mail.send({
      ...email,
      to: ['jane@example.com', 'spam-reporter@example.com'],
      cc: 'spam-reporter@example.com',
      bcc: 'audit@example.com',
    });
    expect(transport.outbox).toHaveLength(1);
    const { message } = transport.outbox[0]!;
    expect(message.to.map((a) => a.address)).toEqual(['jane@example.com']);
    expect(message.cc).toEqual([]);
    expect(message.bcc.map((a) => a.address)).toEqual(['audit@example.com']);
    expect(result.accepted).toEqual(['jane@example.com', 'audit@example.com']);
    expect(result.suppressed).toEqual([{ address: 'spam-reporter@example.com', reason: 'complaint' }]);
    expect(events).toMatchObject([{ sent: true }]);
  });

  it('never holds back security mail, and looks nothing up for it', async () => {
    const store = memorySuppressionStore();
    await store.suppress('jane@example.com', 'hard-bounce');
    let lookups = 0;
    const counting: SuppressionStore = {
      ...store,
      isSuppressed: (address) => {
        lookups++;
        return store.isSuppressed(address);
      },
    };
    const { mail, transport, events } = service(counting);
    const result = await mail.send({ ...email, to: 'jane@example.com', category: 'security' });
    expect(transport.outbox).toHaveLength(1);
    expect(result.suppressed).toBeUndefined();
    expect(events).toEqual([]);
    expect(lookups).toBe(0);
  });

  it('applies to templates: a suppressed welcome email is not sent, a password reset is', async () => {
    const store = memorySuppressionStore();
    await store.suppress('jane@example.com', 'hard-bounce');
    const { mail, transport } = service(store);
    const welcome = await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(welcome.suppressed).toHaveLength(1);
    expect(transport.outbox).toHaveLength(0);
    await mail.sendPasswordResetEmail({
      to: 'jane@example.com',
      username: 'Jane',
      resetUrl: 'https://acme.example/reset?t=1',
      expiresInMinutes: 30,
      category: 'security',
    });
    expect(transport.outbox).toHaveLength(1);
  });

  it('fails the send when the store cannot answer', async () => {
    const store: SuppressionStore = {
      ...memorySuppressionStore(),
      isSuppressed: () => Promise.reject(new Error('database down')),
    };
    const { mail, transport } = service(store);
    const failed: unknown[] = [];
    mail.on('failed', (e) => void failed.push(e));
    await expect(mail.send({ ...email, to: 'jane@example.com' })).rejects.toThrow('database down');
    expect(transport.outbox).toHaveLength(0);
    expect(failed).toHaveLength(1);
  });

  it('refuses an unknown category; a queue is handed the category, the default left out', async () => {
    const { mail } = service(memorySuppressionStore());
    const bad = await rejection(() =>
      mail.send({ ...email, to: 'jane@example.com', category: 'urgent' as 'security' }),
    );
    expect(isMessageError(bad) && bad.field).toBe('category');
    const handed: QueuedEmail[] = [];
    const queued = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      queue: {
        name: 'test queue',
        enqueue: async (queuedEmail) => {
          handed.push(queuedEmail);
          return { id: String(handed.length), idempotencyKey: 'k' };
        },
      },
    });
    const ids: string[] = [];
    for (const category of ['security', 'marketing', 'transactional'] as const) {
      const result = await queued.send({ ...email, to: 'jane@example.com', category });
      ids.push(result.queued?.id ?? 'not queued');
    }
    expect(ids).toEqual(['1', '2', '3']);
    expect(handed.map((q) => q.category)).toEqual(['security', 'marketing', undefined]);
  });
});

describe('from a webhook to the suppression list, end to end', () => {
  it('a Resend bounce of an email to several recipients suppresses none of them (Resend does not say who bounced); to one, that one', async () => {
    const store = memorySuppressionStore();
    const seen: unknown[] = [];
    const suppress = suppressFromEvents(store);
    const hook = createWebhookHandler({
      provider: 'resend',
      secret: RESEND_SECRET,
      onEvent: async (event) => {
        seen.push(event);
        await suppress(event);
      },
    });
    const server = await listen((req, res) => hook(req, res));
    closers.push(server.close);
    const bounced = sample('resend', 'bounced') as { data: { to: string[] } };
    const several = {
      ...bounced,
      data: { ...bounced.data, to: ['alice@example.com', 'Typo <bob@exmaple.com>'] },
    };
    expect((await post(server.url, resend(several))).status).toBe(200);
    // The app still hears of it, for each, marked as not knowing whom it is about.
    expect(seen).toMatchObject([
      { type: 'bounced', recipient: 'alice@example.com', recipientKnown: false },
      { type: 'bounced', recipient: 'bob@exmaple.com', recipientKnown: false },
    ]);
    expect(await store.isSuppressed('alice@example.com')).toBeUndefined();
    expect(await store.isSuppressed('bob@exmaple.com')).toBeUndefined();
    const one = { ...bounced, data: { ...bounced.data, to: ['bob@exmaple.com'] } };
    expect((await post(server.url, resend(one))).status).toBe(200);
    expect((seen[2] as { recipientKnown?: boolean }).recipientKnown).toBeUndefined();
    expect(await store.isSuppressed('bob@exmaple.com')).toMatchObject({ reason: 'hard-bounce' });
  });

  it('a Mailgun hard bounce suppresses the next non-security send to that address; security mail still goes', async () => {
    const store = memorySuppressionStore();
    const hook = createWebhookHandler({
      provider: 'mailgun',
      signingKey: MAILGUN_KEY,
      onEvent: suppressFromEvents(store),
    });
    const server = await listen((req, res) => hook(req, res));
    closers.push(server.close);
    const { mail, transport } = service(store);

    // Before the bounce, mail goes out.
    await mail.send({ ...email, to: 'alice@example.com' });
    expect(transport.outbox).toHaveLength(1);

    // A soft failure changes nothing; the permanent one suppresses.
    expect((await post(server.url, mailgun(sample('mailgun', 'failed-temporary')))).status).toBe(200);
    expect(await store.isSuppressed('alice@example.com')).toBeUndefined();
    expect((await post(server.url, mailgun(sample('mailgun', 'failed-permanent')))).status).toBe(200);
    expect(await store.isSuppressed('alice@example.com')).toMatchObject({
      reason: 'hard-bounce',
      detail: 'mailgun: 550: Not delivering to previously bounced address',
      since: new Date(Math.round(1534110422.389832 * 1000)),
    });

    const product = await mail.send({ ...email, to: 'Alice <alice@example.com>', category: 'product' });
    expect(product.suppressed).toEqual([{ address: 'alice@example.com', reason: 'hard-bounce' }]);
    expect(transport.outbox).toHaveLength(1);

    await mail.send({
      subject: 'Your sign-in code',
      text: '123456',
      to: 'alice@example.com',
      category: 'security',
    });
    expect(transport.outbox).toHaveLength(2);
    expect(transport.outbox[1]!.message.subject).toBe('Your sign-in code');

    // Lifted, the address gets mail again.
    await store.lift('alice@example.com');
    await mail.send({ ...email, to: 'alice@example.com' });
    expect(transport.outbox).toHaveLength(3);
  });

  it('a Resend complaint suppresses too; a forged one does not', async () => {
    const store = memorySuppressionStore();
    const hook = createWebhookHandler({
      provider: 'resend',
      secret: RESEND_SECRET,
      onEvent: suppressFromEvents(store),
    });
    const server = await listen((req, res) => hook(req, res));
    closers.push(server.close);
    const forged = resend(sample('resend', 'complained'), {
      secret: `whsec_${Buffer.from('guess').toString('base64')}`,
    });
    expect((await post(server.url, forged)).status).toBe(403);
    expect(await store.list()).toEqual([]);
    expect((await post(server.url, resend(sample('resend', 'complained')))).status).toBe(200);
    expect(await store.list()).toMatchObject([{ address: 'complained@resend.dev', reason: 'complaint' }]);
  });
});
