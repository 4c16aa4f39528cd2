/**
 * The example app as Mailgun and its users drive it: a signed "failed, permanent" webhook
 * arrives, the next newsletter to that address is held back, the password reset still goes out.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { memorySuppressionStore } from 'mailroom-js';
import { createTestMailer } from 'mailroom-js/testing';
import request from 'supertest';
import { expect, it } from 'vitest';
import { createApp } from './app.js';

const KEY = 'example-mailgun-signing-key';

/** A webhook body as Mailgun signs it (its "Securing Webhooks" page): HMAC-SHA256 of timestamp + token. */
function mailgunBounce(recipient: string, key = KEY) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = randomBytes(25).toString('hex');
  const signature = createHmac('sha256', key)
    .update(timestamp + token)
    .digest('hex');
  const eventData = {
    event: 'failed',
    severity: 'permanent',
    reason: 'bounce',
    recipient,
    timestamp: Date.now() / 1000,
    'delivery-status': { code: 550, description: 'No such user' },
  };
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData });
}

it('stops the newsletter to an address Mailgun reports as bounced, but not the password reset', async () => {
  const suppressions = memorySuppressionStore();
  const mailer = createTestMailer({ appName: 'Acme', suppressions });
  const app = createApp({ mail: mailer.service, suppressions, mailgunSigningKey: KEY });

  await request(app)
    .post('/newsletter')
    .send({ to: 'jane@example.com' })
    .expect(200, {
      sentTo: ['jane@example.com'],
      suppressed: [],
    });

  // A forged webhook changes nothing.
  await request(app)
    .post('/hooks/mailgun')
    .set('content-type', 'application/json')
    .send(mailgunBounce('jane@example.com', 'guessed-key'))
    .expect(403);
  await request(app).get('/admin/suppressions').expect(200, []);

  await request(app)
    .post('/hooks/mailgun')
    .set('content-type', 'application/json')
    .send(mailgunBounce('jane@example.com'))
    .expect(200);
  const listed = await request(app).get('/admin/suppressions').expect(200);
  expect(listed.body).toMatchObject([{ address: 'jane@example.com', reason: 'hard-bounce' }]);

  await request(app)
    .post('/newsletter')
    .send({ to: 'jane@example.com' })
    .expect(200, {
      sentTo: [],
      suppressed: [{ address: 'jane@example.com', reason: 'hard-bounce' }],
    });
  await request(app).post('/forgot-password').send({ email: 'jane@example.com' }).expect(202);
  expect(mailer.outbox.messages.map((m) => m.template ?? m.subject)).toEqual([
    'What is new at Acme',
    'password-reset',
  ]);

  await request(app).delete('/admin/suppressions/jane@example.com').expect(200, { lifted: true });
  await request(app).post('/newsletter').send({ to: 'jane@example.com' }).expect(200);
  expect(mailer.outbox.messages).toHaveLength(3);
});
