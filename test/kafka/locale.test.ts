/**
 * The envelope's `locale`: written by the service through a queue, checked when read, and the
 * worker renders the template in it; a malformed tag is dead-lettered as invalid-envelope naming
 * `locale`. Against librdkafka's mock cluster, like worker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { isMessageError } from '../../src/errors.js';
import { createEnvelope, parseEnvelope } from '../../src/kafka/index.js';
import type { EmailQueue, QueuedEmail } from '../../src/queue.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';
import { FAST_RETRY, freshWorker, HEADERS, readTopic, useKafka, waitFor } from './harness.js';

const ctx = useKafka();

const welcome = { template: 'welcome' as const, data: { username: 'Jane' }, to: 'jane@example.com' };

describe('the envelope carries the locale', () => {
  it('is optional, canonicalised by nobody but checked by both ends, naming locale', () => {
    expect(createEnvelope({ ...welcome, idempotencyKey: 'k' })).not.toHaveProperty('locale');
    expect(createEnvelope({ ...welcome, idempotencyKey: 'k', locale: 'pt-BR' }).locale).toBe('pt-BR');
    const bad = thrown(
      () => createEnvelope({ ...welcome, idempotencyKey: 'k', locale: 'pt_BR' }),
      isMessageError,
      'a MessageError',
    );
    expect(bad.field).toBe('locale');
    const record = JSON.stringify({
      ...createEnvelope({ ...welcome, idempotencyKey: 'k' }),
      locale: 'english!',
    });
    expect(thrown(() => parseEnvelope(record), isMessageError, 'a MessageError').field).toBe('locale');
  });

  it('the service writes a send’s locale, and its own default only when it is not English', async () => {
    const queued: QueuedEmail[] = [];
    const queue: EmailQueue = {
      name: 'list',
      async enqueue(email) {
        queued.push(email);
        return { id: String(queued.length), idempotencyKey: String(email.idempotencyKey) };
      },
    };
    const english = new EmailService({ transport: memoryTransport(), from: 'a@acme.example', queue });
    await english.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    await english.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', locale: 'fr' });
    const french = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      queue,
      locale: 'fr',
    });
    await french.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(queued.map((q) => q.locale)).toEqual([undefined, 'fr', 'fr']);
  });
});

describe('the worker renders in the envelope’s locale', () => {
  it('sends German for a German envelope, English without one, and dead-letters a bad tag', async () => {
    const { topics, transport, producer, worker } = await freshWorker(ctx, { retry: FAST_RETRY });
    const raw = ctx.kafka.producer();
    await raw.connect();
    ctx.cleanup.push(() => raw.disconnect());
    const key = 'same-partition@example.com';
    const bad = JSON.stringify({
      ...createEnvelope({ ...welcome, to: key, idempotencyKey: 'bad' }),
      locale: 'de_DE',
    });
    await raw.send({ topic: topics.topic, messages: [{ key, value: bad }] });
    await worker.start();
    await producer.publish({ ...welcome, to: key, idempotencyKey: 'de', locale: 'de' });
    await producer.publish({ ...welcome, to: key, idempotencyKey: 'en' });
    await waitFor(() => transport.delivered.length === 2, 'both good records');
    const byKey = Object.fromEntries(transport.delivered.map((m) => [m.idempotencyKey, m]));
    expect(byKey.de?.subject).toBe('Willkommen bei Acme, Jane!');
    expect(byKey.de?.text).toContain('Ihr Konto ist eingerichtet.');
    expect(byKey.de?.html).toContain('<html lang="de"');
    expect(byKey.de?.headers['Content-Language']).toBe('de');
    expect(byKey.en?.subject).toBe('Welcome to Acme, Jane!');
    const dlq = await readTopic(ctx.kafka, topics.deadLetterTopic, 1);
    expect(dlq.map((r) => [r.headers[HEADERS.reason], r.headers[HEADERS.errorMessage]])).toEqual([
      ['invalid-envelope', expect.stringContaining('locale: must be a BCP 47 language tag')],
    ]);
  });
});
