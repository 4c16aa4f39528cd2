/**
 * Notification preferences (issue 13 §2): the memory store, and what `EmailService` does with a
 * recipient's choice for each category.
 */
import { describe, expect, it } from 'vitest';
import { memoryPreferenceStore, type PreferenceStore } from '../src/preferences.js';
import { EmailService, type SuppressedEvent } from '../src/service.js';
import { memorySuppressionStore } from '../src/suppression.js';
import { memoryTransport } from '../src/transports/memory.js';
import { preferenceStoreContract } from './preference-contract.js';

const from = 'Acme <no-reply@acme.example>';
const email = { subject: 'Hello', text: 'Hello there' };

function service(
  preferences: PreferenceStore,
  extra: Partial<ConstructorParameters<typeof EmailService>[0]> = {},
) {
  const transport = memoryTransport();
  const mail = new EmailService({ transport, from, preferences, retry: false, ...extra });
  const events: SuppressedEvent[] = [];
  mail.on('suppressed', (e) => void events.push(e));
  return { mail, transport, events };
}

preferenceStoreContract('memoryPreferenceStore', async () => ({ store: memoryPreferenceStore() }));

describe('EmailService with preferences', () => {
  it('sends product mail unless the recipient turned it off; marketing only after they opted in', async () => {
    const store = memoryPreferenceStore();
    await store.set('off@example.com', 'product', false);
    await store.set('yes@example.com', 'marketing', true);
    const { mail, transport, events } = service(store);

    const productOff = await mail.send({ ...email, to: 'off@example.com', category: 'product' });
    expect(productOff).toMatchObject({ accepted: [], attempts: 0 });
    expect(productOff.suppressed).toEqual([{ address: 'off@example.com', reason: 'opted-out' }]);
    const productDefault = await mail.send({ ...email, to: 'new@example.com', category: 'product' });
    expect(productDefault.accepted).toEqual(['new@example.com']);
    const marketingDefault = await mail.send({ ...email, to: 'new@example.com', category: 'marketing' });
    expect(marketingDefault.suppressed).toEqual([{ address: 'new@example.com', reason: 'not-opted-in' }]);
    const marketingYes = await mail.send({ ...email, to: 'yes@example.com', category: 'marketing' });
    expect(marketingYes.accepted).toEqual(['yes@example.com']);

    expect(transport.outbox.map((c) => c.message.to[0]?.address)).toEqual([
      'new@example.com',
      'yes@example.com',
    ]);
    expect(events.map((e) => [e.suppressed[0]?.reason, e.sent])).toEqual([
      ['opted-out', false],
      ['not-opted-in', false],
    ]);
  });

  it('never asks for security or transactional mail, whatever the recipient chose', async () => {
    const store = memoryPreferenceStore();
    await store.set('off@example.com', 'product', false);
    await store.set('off@example.com', 'marketing', false);
    let asked = 0;
    const counting: PreferenceStore = {
      ...store,
      get: (...args) => {
        asked++;
        return store.get(...args);
      },
    };
    const { mail, transport } = service(counting);
    await mail.send({ ...email, to: 'off@example.com', category: 'security' });
    await mail.send({ ...email, to: 'off@example.com', category: 'transactional' });
    await mail.send({ ...email, to: 'off@example.com' });
    expect(transport.outbox).toHaveLength(3);
    expect(asked).toBe(0);
  });

  it('leaves out only the recipients who do not want it; a suppression’s reason comes first', async () => {
    const store = memoryPreferenceStore();
    await store.set('off@example.com', 'product', false);
    await store.set('bounced@example.com', 'product', false);
    const suppressions = memorySuppressionStore();
    await suppressions.suppress('bounced@example.com', 'hard-bounce');
    const { mail, transport } = service(store, { suppressions });
    const result = await mail.send({
      ...email,
      to: ['jane@example.com', 'off@example.com'],
      cc: 'bounced@example.com',
      category: 'product',
    });
    expect(result.accepted).toEqual(['jane@example.com']);
    expect(result.suppressed).toEqual([
      { address: 'off@example.com', reason: 'opted-out' },
      { address: 'bounced@example.com', reason: 'hard-bounce' },
    ]);
    const sent = transport.outbox[0]?.message;
    expect(sent?.to.map((a) => a.address)).toEqual(['jane@example.com']);
    expect(sent?.cc).toEqual([]);
  });

  it('fails the send when the store cannot answer: nothing sent', async () => {
    const broken: PreferenceStore = {
      ...memoryPreferenceStore(),
      get: async () => {
        throw new Error('database down');
      },
    };
    const { mail, transport } = service(broken);
    await expect(mail.send({ ...email, to: 'jane@example.com', category: 'marketing' })).rejects.toThrow(
      'database down',
    );
    expect(transport.outbox).toHaveLength(0);
  });

  it('refuses something that is not a store', () => {
    expect(
      () => new EmailService({ transport: memoryTransport(), from, preferences: {} as PreferenceStore }),
    ).toThrow(/preferences must be a PreferenceStore/);
  });
});
