/**
 * The footer's unsubscribe links through Kafka (librdkafka's mock cluster): the app publishes a
 * template and its data, the worker renders it with `service.render` and sends it with
 * `service.send`, and the product email arrives with the footer's Unsubscribe URL equal to its
 * List-Unsubscribe; the security email and a product template sent as transactional have neither.
 * The footer is in the envelope's language, and data carrying the link's placeholder is refused.
 */
import { describe, expect, it } from 'vitest';
import type { KafkaClientLike } from '../../src/kafka/client.js';
import { createEmailProducer, createEmailWorker, HEADERS } from '../../src/kafka/index.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { verifyUnsubscribeToken } from '../../src/unsubscribe/index.js';
import type { KafkaCluster } from '../helpers/kafka-cluster.js';
import { optedIn } from '../helpers/opted-in.js';
import {
  FAST_CONSUMER,
  FAST_RETRY,
  freshTopics,
  readTopic,
  scriptedTransport,
  useKafkaCluster,
  waitFor,
} from '../kafka/harness.js';

let cluster: KafkaCluster;
let kafka: Parameters<typeof readTopic>[0];
let client: KafkaClientLike;
const cleanup = useKafkaCluster((started, plumbing, underTest) => {
  cluster = started;
  kafka = plumbing;
  client = underTest;
});

const from = 'Acme <no-reply@acme.example>';

describe('footer links through the Kafka worker', () => {
  it('the worker renders product mail with the links and fills them in with the header’s URL', async () => {
    const topics = await freshTopics(cluster);
    const transport = scriptedTransport();
    const producer = createEmailProducer({ kafka: client, topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    const secrets = ['worker-footer-secret-worker-footer-secret'];
    const manageUrl = 'https://acme.example/settings/notifications?from=email&v=2';
    const worker = createEmailWorker({
      kafka: client,
      service: new EmailService({
        transport,
        from,
        retry: false,
        preferences: optedIn(),
        unsubscribe: { url: 'https://acme.example/unsubscribe?list=news&v=2', secrets, manageUrl },
      }),
      ...topics,
      consumer: FAST_CONSUMER,
      retry: FAST_RETRY,
    });
    cleanup.push(() => worker.close());
    // The app's side has no unsubscribe option: the worker's configuration owns the links too.
    const app = new EmailService({ transport: memoryTransport(), from, queue: producer });
    await app.sendProductUpdate({
      to: 'jane@example.com',
      headline: 'Shared workspaces are here',
      summary: 'Invite your team.',
      actionUrl: 'https://acme.example/whats-new',
      idempotencyKey: 'news:jane',
    });
    await app.sendTemplate('product-update', {
      to: 'joe@example.com',
      data: { headline: 'Spring offer', summary: '20% off', actionUrl: 'https://acme.example/offer' },
      category: 'marketing',
      idempotencyKey: 'offer:joe',
    });
    await app.sendSecurityAlert({
      to: 'jane@example.com',
      username: 'Jane',
      event: 'password-changed',
      occurredAt: new Date('2026-12-01T10:00:00Z'),
      device: 'Firefox on Linux',
      secureAccountUrl: 'https://acme.example/secure',
      idempotencyKey: 'alert:jane',
    });
    // A product template sent as transactional: rendered as what it goes out as, so no links.
    await app.sendTemplate('product-update', {
      to: 'ann@example.com',
      data: {
        headline: 'Your export is ready',
        summary: 'As requested.',
        actionUrl: 'https://acme.example/x',
      },
      category: 'transactional',
      idempotencyKey: 'export:ann',
    });
    const records = await readTopic(kafka, topics.topic, 4);
    for (const record of records) expect(record.value).not.toMatch(/unsubscribe/i);
    await worker.start();
    await waitFor(() => transport.delivered.length === 4, 'four emails');
    const byKey = new Map(transport.delivered.map((m) => [m.idempotencyKey, m]));

    for (const [key, address, category] of [
      ['news:jane', 'jane@example.com', 'product'],
      ['offer:joe', 'joe@example.com', 'marketing'],
    ] as const) {
      const message = byKey.get(key)!;
      const url = /^<([^>]+)>$/.exec(message.headers['List-Unsubscribe']!)![1]!;
      expect(verifyUnsubscribeToken(new URL(url).searchParams.get('token'), { secrets })).toMatchObject({
        ok: true,
        address,
        category,
      });
      const escaped = (value: string) => value.replaceAll('&', '&amp;');
      expect(message.html).toContain(`<a href="${escaped(url)}" class="footer-link"`);
      expect(message.html).toContain(`<a href="${escaped(manageUrl)}" class="footer-link"`);
      const lines = message.text!.split('\n');
      expect(lines[lines.indexOf('Unsubscribe:') + 1]).toBe(url);
      expect(lines[lines.indexOf('Manage notification settings:') + 1]).toBe(manageUrl);
      expect(message.html).not.toContain('mailroom.invalid');
      // In the layout's footer, styled (rendered by the worker, not added afterwards).
      expect(message.html).toMatch(/<p class="footer-text footer-unsubscribe" style="/);
      expect(message.html).not.toContain('mr-unsubscribe');
    }
    for (const key of ['alert:jane', 'export:ann']) {
      const message = byKey.get(key)!;
      expect(Object.keys(message.headers)).toEqual([]);
      expect(message.html).not.toMatch(/Unsubscribe|Manage notification settings|mailroom\.invalid/);
      expect(message.text).not.toMatch(/Unsubscribe|Manage notification settings|mailroom\.invalid/);
    }
  });

  it('in the envelope’s language, template or raw HTML; data carrying the placeholder is refused, never sent', async () => {
    const topics = await freshTopics(cluster);
    const transport = scriptedTransport();
    const producer = createEmailProducer({ kafka: client, topic: topics.topic });
    cleanup.push(() => producer.disconnect());
    const secrets = ['worker-footer-secret-worker-footer-secret'];
    const digest = defineTemplate({
      name: 'digest',
      fields: { body: 'string' },
      category: 'transactional',
      subject: 'Your digest',
      html: '<div><%~ it.body %></div>',
      text: 'Your digest',
    });
    const service = new EmailService({
      transport,
      from,
      retry: false,
      preferences: optedIn(),
      unsubscribe: { url: 'https://acme.example/unsubscribe', secrets },
      templates: [digest],
    });
    const worker = createEmailWorker({
      kafka: client,
      service,
      ...topics,
      consumer: FAST_CONSUMER,
      retry: FAST_RETRY,
    });
    cleanup.push(() => worker.close());
    const app = new EmailService({
      transport: memoryTransport(),
      from,
      queue: producer,
      templates: [digest],
    });
    const news = { headline: 'Neu', summary: 'Teams', actionUrl: 'https://acme.example/neu' };
    await app.sendProductUpdate({ to: 'jana@example.com', ...news, locale: 'de', idempotencyKey: 'de' });
    await app.send({
      to: 'amal@example.com',
      subject: 'عرض',
      html: '<html><body><p>خصم</p></body></html>',
      text: 'خصم',
      category: 'marketing',
      locale: 'ar',
      idempotencyKey: 'ar',
    });
    // Product HTML (with the placeholder) passed on as a transactional template's data.
    const body = service.render('product-update', news).html;
    await app.sendTemplate('digest', { to: 'ann@example.com', data: { body }, idempotencyKey: 'digest' });
    await worker.start();
    await waitFor(() => transport.delivered.length === 2, 'the German and the Arabic email');
    const [dead] = await readTopic(kafka, topics.deadLetterTopic, 1);
    expect(dead?.headers[HEADERS.reason]).toBe('invalid-envelope');
    const byKey = new Map(transport.delivered.map((m) => [m.idempotencyKey, m]));
    for (const [key, label] of [
      ['de', 'Abbestellen'],
      ['ar', 'إلغاء الاشتراك'],
    ] as const) {
      const message = byKey.get(key)!;
      const url = /^<([^>]+)>$/.exec(message.headers['List-Unsubscribe']!)![1]!;
      expect(new URL(url).searchParams.get('lang')).toBe(key);
      const lines = message.text!.split('\n');
      expect(lines[lines.indexOf(`${label}:`) + 1]).toBe(url);
    }
    expect(byKey.get('ar')!.html).toMatch(/<div class="mr-unsubscribe" lang="ar" dir="rtl"/);
    expect(byKey.has('digest')).toBe(false);
  });
});
