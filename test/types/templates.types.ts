/**
 * Type tests, checked by `tsc --noEmit` (npm test): templates by handle and by name type-check their
 * data, and a wrong or missing field is an error that names it. Each `@ts-expect-error` fails the
 * type-check if the line below it stops being an error.
 */
import { defineTemplate, EmailService, memoryTransport, type TemplateData } from 'mailroom-js';
import type { EmailProducer } from 'mailroom-js/kafka';
import { createTestMailer } from 'mailroom-js/testing';

export const receipt = defineTemplate({
  name: 'type-test-receipt',
  fields: { number: 'string', payUrl: 'url', note: 'string?' },
  subject: 'Receipt <%= it.number %>',
  html: '<p><%= it.number %></p>',
});

declare module 'mailroom-js' {
  interface MailroomTemplates {
    'type-test-receipt': TemplateData<typeof receipt>;
  }
}

const mail = new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>' });
const payUrl = 'https://acme.example/pay';

export async function byHandle() {
  await mail.sendTemplate(receipt, { to: 'a@example.com', data: { number: 'A-1', payUrl } });
  // @ts-expect-error the handle's own field is missing: payUrl
  await mail.sendTemplate(receipt, { to: 'a@example.com', data: { number: 'A-1' } });
  const to = 'a@example.com';
  // @ts-expect-error a built-in's field is not the handle's
  await mail.sendTemplate(receipt, { to, data: { number: 'A-1', payUrl, resetUrl: payUrl } });
  mail.render(receipt, { number: 'A-1', payUrl, note: 'thanks' });
  // @ts-expect-error a typo of a field
  mail.render(receipt, { numbr: 'A-1', payUrl });
}

export async function byName() {
  await mail.sendTemplate('type-test-receipt', { to: 'a@example.com', data: { number: 'A-1', payUrl } });
  // @ts-expect-error a declared name checks its data too
  await mail.sendTemplate('type-test-receipt', { to: 'a@example.com', data: { number: 1, payUrl } });
  mail.render('verification', { username: 'J', verificationUrl: payUrl });
  // @ts-expect-error a built-in's missing field
  mail.render('verification', { username: 'J' });
  // A name nobody declared is looked up at run time, its data unchecked.
  mail.render('someone-elses', { anything: 1 });
}

export function inTests() {
  const mailer = createTestMailer();
  mailer.outbox.expectNotSent({ template: 'type-test-receipt' });
  mailer.outbox.expectNotSent({ template: 'not-declared-but-allowed' });
}

export async function queued(producer: EmailProducer) {
  await producer.publish({
    template: 'type-test-receipt',
    data: { number: 'A-1', payUrl },
    to: 'a@example.com',
  });
  // @ts-expect-error a declared name's data is checked when published
  await producer.publish({ template: 'type-test-receipt', data: { number: 'A-1' }, to: 'a@example.com' });
  await producer.publish({ template: receipt, data: { number: 'A-1', payUrl }, to: 'a@example.com' });
}
