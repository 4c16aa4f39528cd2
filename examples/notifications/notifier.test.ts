/**
 * The notifier as its users drive it: one turns product updates off, the announcement skips them
 * (and reports it), the security alert still reaches them.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { memoryPreferenceStore } from 'mailroom-js';
import { createTestMailer } from 'mailroom-js/testing';
import { expect, it } from 'vitest';
import { createNotifier, newSignIn, productUpdate } from './notifier.js';
import { createUnsubscribeServer } from './unsubscribe.js';

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

it('takes a one-click unsubscribe from the product email, and the next announcement skips that user', async () => {
  const preferences = memoryPreferenceStore();
  const secrets = [randomBytes(32).toString('base64url')];
  // The server listens first: the service signs links to where it really is.
  const server = createUnsubscribeServer(createTestMailer().service, preferences, secrets);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const mailer = createTestMailer({
      appName: 'Acme',
      preferences,
      templates: [productUpdate, newSignIn],
      unsubscribe: { url: `http://127.0.0.1:${port}/unsubscribe`, secrets },
    });
    const notifier = createNotifier(mailer.service, preferences);
    const users = [
      { email: 'jane@example.com', name: 'Jane' },
      { email: 'sam@example.com', name: 'Sam' },
    ];
    await notifier.announce(users, 'Dark mode', 'https://acme.example/dark-mode');
    const update = mailer.outbox.expectSent({ to: 'sam@example.com', category: 'product' });
    expect(update.headers?.['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const link = /<(http:[^>]+)>/.exec(String(update.headers?.['List-Unsubscribe']))?.[1];

    // What a mail app does on "Unsubscribe" (RFC 8058 §3.1).
    const answer = await fetch(link!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
      redirect: 'manual',
    });
    expect(answer.status).toBe(200);

    mailer.outbox.clear();
    const next = await notifier.announce(users, 'Offline mode', 'https://acme.example/offline');
    expect(next).toEqual({ sent: ['jane@example.com'], optedOut: ['sam@example.com'], failed: [] });
    // The security alert still reaches Sam, and carries no unsubscribe.
    await notifier.alert(users[1]!, 'Firefox on Linux');
    const alert = mailer.outbox.expectSent({ to: 'sam@example.com', category: 'security' });
    expect(alert.headers?.['List-Unsubscribe']).toBeUndefined();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
