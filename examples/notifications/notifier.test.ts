/**
 * The notifier as its users drive it: one turns product updates off, the announcement skips them
 * (and reports it), the security alert still reaches them.
 */
import { memoryPreferenceStore } from 'mailroom-js';
import { createTestMailer } from 'mailroom-js/testing';
import { expect, it } from 'vitest';
import { createNotifier, newSignIn, productUpdate } from './notifier.js';

it('announces to those who want product updates and alerts everyone', async () => {
  const preferences = memoryPreferenceStore();
  const mailer = createTestMailer({ appName: 'Acme', preferences, templates: [productUpdate, newSignIn] });
  const notifier = createNotifier(mailer.service, preferences);
  const users = [
    { email: 'jane@example.com', name: 'Jane' },
    { email: 'sam@example.com', name: 'Sam' },
    { email: 'kim@example.com', name: 'Kim' },
  ];
  await notifier.setProductUpdates('sam@example.com', false);

  const announced = await notifier.announce(users, 'Dark mode', 'https://acme.example/dark-mode');
  expect(announced).toEqual({
    sent: ['jane@example.com', 'kim@example.com'],
    optedOut: ['sam@example.com'],
    failed: [],
  });
  expect(mailer.outbox.find({ category: 'product' })).toHaveLength(2);
  mailer.outbox.expectNotSent({ to: 'sam@example.com', category: 'product' });

  await notifier.alert(users[1]!, 'Firefox on Linux');
  const alert = mailer.outbox.expectSent({ to: 'sam@example.com', category: 'security' });
  expect(alert.subject).toBe('New sign-in to your Acme account');
});
