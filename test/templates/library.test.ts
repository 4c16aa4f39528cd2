/**
 * The content library (issue 13 §4) as an app uses it: each built-in through its send helper, in
 * its category, saying what it must say in both parts, refusing bad data by field name.
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError } from '../../src/errors.js';
import { memoryPreferenceStore } from '../../src/preferences.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';

function setup() {
  const transport = memoryTransport();
  const preferences = memoryPreferenceStore();
  const mail = new EmailService({
    transport,
    from: 'Acme <no-reply@acme.example>',
    appName: 'Acme',
    preferences,
  });
  const last = () => {
    const sent = transport.outbox.at(-1);
    if (!sent) throw new Error('nothing was sent');
    return sent.message;
  };
  return { mail, transport, preferences, last };
}

const alert = {
  to: 'jane@example.com',
  username: 'Jane',
  event: 'sign-in',
  occurredAt: '2026-12-08T02:00:00Z',
  timeZone: 'Europe/Berlin',
  device: 'Firefox on Windows',
  secureAccountUrl: 'https://acme.example/security?s=1',
} as const;

describe('sendSecurityAlert', () => {
  it('says what happened, when in the reader’s zone, on which device, and gives a danger-toned way out', async () => {
    const { mail, last } = setup();
    await mail.sendSecurityAlert({ ...alert, location: 'Berlin, Germany' });
    const message = last();
    expect(message.category).toBe('security');
    expect(message.subject).toBe('New sign-in to your Acme account');
    expect(message.text).toContain('When                   Tuesday, 8 December 2026, 03:00 (CET)');
    expect(message.text).toContain('Device                 Firefox on Windows');
    expect(message.text).toContain('Approximate location   Berlin, Germany');
    expect(message.text).toContain('If this was you, there is nothing you need to do.');
    expect(message.text).toContain("This wasn't me:\nhttps://acme.example/security?s=1\n");
    expect(message.html).toContain('class="mr-button mr-button-danger"');
    expect(message.html).toMatch(/class="mr-button-link"[^>]*background-color: #DC3545/);
  });

  it('speaks of a changed password when the event says so, and leaves out a location it was not given', async () => {
    const { mail, last } = setup();
    await mail.sendSecurityAlert({
      ...alert,
      event: 'password-changed',
      occurredAt: new Date(Date.UTC(2026, 11, 8, 2)),
    });
    const message = last();
    expect(message.subject).toBe('Your Acme password was changed');
    expect(message.html).toMatch(/<h1[^>]*>Your password was changed<\/h1>/);
    expect(message.text).not.toContain('sign-in');
    expect(message.text).not.toContain('location');
  });

  it('renders a Date the same after a trip through JSON (a Kafka envelope carries it as an ISO string)', () => {
    const { mail } = setup();
    const { to: _to, ...fields } = alert;
    const data = { ...fields, occurredAt: new Date('2026-12-08T02:00:00Z') };
    const direct = mail.render('security-alert', data);
    const queued = mail.render('security-alert', JSON.parse(JSON.stringify(data)));
    expect(queued).toEqual(direct);
    expect(direct.text).toContain('Tuesday, 8 December 2026, 03:00 (CET)');
  });

  it('refuses an event it does not know, and sends no email', async () => {
    const { mail, transport } = setup();
    const err = await mail.sendSecurityAlert({ ...alert, event: 'logout' as 'sign-in' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTemplateError(err) && err.field).toBe('event');
    expect(transport.outbox).toHaveLength(0);
  });

  it('goes to a recipient who turned product mail off; a product update does not', async () => {
    const { mail, transport, preferences } = setup();
    await preferences.set('jane@example.com', 'product', false);
    await mail.sendSecurityAlert(alert);
    const update = await mail.sendProductUpdate({
      to: 'jane@example.com',
      headline: 'Shared workspaces are here',
      summary: 'Invite your team.',
      actionUrl: 'https://acme.example/new',
    });
    expect(transport.outbox.map((s) => s.message.category)).toEqual(['security']);
    expect(update.suppressed?.map((s) => s.address)).toEqual(['jane@example.com']);
  });

  it('cannot be sent as another category', async () => {
    const { mail } = setup();
    const err = await mail.sendSecurityAlert({ ...alert, category: 'product' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ field: 'category' });
  });
});

describe('sendProductUpdate', () => {
  it('makes the headline the subject and the summary the preheader, with a default label', async () => {
    const { mail, last } = setup();
    await mail.sendProductUpdate({
      to: 'jane@example.com',
      headline: 'Shared <workspaces> & more',
      summary: 'Invite your team to a shared workspace.',
      actionUrl: 'https://acme.example/new',
    });
    const message = last();
    expect(message.category).toBe('product');
    expect(message.subject).toBe('Shared <workspaces> & more');
    expect(message.html).toMatch(/<h1[^>]*>Shared &lt;workspaces&gt; &amp; more<\/h1>/);
    expect(message.html).toMatch(/class="preheader"[^>]*>Invite your team to a shared workspace\./);
    expect(message.text).toContain('Hello,');
    expect(message.text).toContain("See what's new:\nhttps://acme.example/new");
  });
});

describe('sendReminder', () => {
  it('lists what is left when given, and labels the button as asked', async () => {
    const { mail, last } = setup();
    await mail.sendReminder({
      to: 'jane@example.com',
      username: 'Jane',
      task: 'Finish setting up your profile',
      remaining: [
        { label: 'Profile photo', value: 'Not added yet' },
        { label: 'Job title', value: 'Not added yet' },
      ],
      actionUrl: 'https://acme.example/profile',
      actionLabel: 'Finish your profile',
    });
    const message = last();
    expect(message.category).toBe('product');
    expect(message.subject).toBe('Reminder: Finish setting up your profile');
    expect(message.text).toContain(
      'Here is what is left to do:\n\nProfile photo   Not added yet\nJob title       Not added yet',
    );
    expect(message.text).toContain('Finish your profile:\nhttps://acme.example/profile');
  });

  it('says nothing about a list it was not given', async () => {
    const { mail, last } = setup();
    await mail.sendReminder({
      to: 'jane@example.com',
      username: 'Jane',
      task: 'Confirm your billing details',
      actionUrl: 'https://acme.example/billing',
    });
    expect(last().text).not.toContain('what is left');
    expect(last().html).not.toContain('class="mr-details"');
  });
});

describe('sendOrderConfirmation', () => {
  const order = {
    to: 'jane@example.com',
    username: 'Jane',
    reference: 'A-1042',
    items: [
      { label: 'Walnut desk lamp', value: '$89.00' },
      { label: 'Delivery', value: '$5.00' },
    ],
    total: '$94.00',
    orderUrl: 'https://acme.example/orders/A-1042',
  };

  it('gives the reference number, the items with their total, and a link to the order', async () => {
    const { mail, last } = setup();
    await mail.sendOrderConfirmation(order);
    const message = last();
    expect(message.category).toBe('transactional');
    expect(message.subject).toBe('Your Acme order A-1042 is confirmed');
    expect(message.text).toContain('Your reference number is A-1042.');
    expect(message.text).toContain(
      'Walnut desk lamp   $89.00\nDelivery           $5.00\nTotal              $94.00',
    );
    expect(message.html).toMatch(/class="mr-details-total"/);
    expect(message.text).toContain('View your order:\nhttps://acme.example/orders/A-1042');
  });

  it('names the total as asked', async () => {
    const { mail, last } = setup();
    await mail.sendOrderConfirmation({ ...order, totalLabel: 'Total paid' });
    expect(last().text).toContain('Total paid         $94.00');
  });

  it('refuses a bad row by its place in the list', async () => {
    const { mail } = setup();
    const err = await mail
      .sendOrderConfirmation({ ...order, items: [...order.items, { label: 'Gift wrap', value: '' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isTemplateError(err) && err.field).toBe('items[2].value');
  });
});

describe('sendMaintenanceNotice', () => {
  const notice = {
    to: 'jane@example.com',
    startsAt: '2026-12-08T02:00:00Z',
    endsAt: '2026-12-08T04:00:00Z',
    timeZone: 'America/New_York',
    affected: 'Sign-in may be unavailable for up to two hours.',
    statusUrl: 'https://status.acme.example',
  };

  it('gives the window in the reader’s time zone, what is affected, and a warning-toned status link', async () => {
    const { mail, last } = setup();
    await mail.sendMaintenanceNotice(notice);
    const message = last();
    expect(message.category).toBe('product');
    expect(message.text).toContain('Starts   Monday, 7 December 2026, 21:00 (GMT-5)');
    expect(message.text).toContain('Ends     Monday, 7 December 2026, 23:00 (GMT-5)');
    expect(message.text).toContain('What is affected\nSign-in may be unavailable for up to two hours.');
    expect(message.text).toContain('View status page:\nhttps://status.acme.example');
    expect(message.html).toContain('class="mr-panel mr-panel-warning"');
    expect(message.html).toMatch(/class="mr-button-link"[^>]*color: #111315;[^>]*background-color: #FFC107/);
  });

  it('refuses a window that ends before it starts, naming endsAt', () => {
    const { mail } = setup();
    const err = thrown(
      () => mail.sendMaintenanceNotice({ ...notice, endsAt: '2026-12-08T01:00:00Z' }),
      isTemplateError,
      'a TemplateError',
    );
    expect(err.field).toBe('endsAt');
  });

  it('refuses a time without an offset, naming the field', async () => {
    const { mail } = setup();
    const err = await mail.sendMaintenanceNotice({ ...notice, startsAt: '2026-12-08T02:00:00' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTemplateError(err) && err.field).toBe('startsAt');
  });

  it('refuses a window that ends before it starts by name, in a batch and when previewed, too', async () => {
    const { mail, transport } = setup();
    const { to, ...data } = notice;
    const backwards = { ...data, endsAt: '2026-12-08T01:00:00Z' };
    const err = await mail.sendTemplate('maintenance-notice', { to, data: backwards }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTemplateError(err) && err.field).toBe('endsAt');
    const batch = await mail.sendBatch('maintenance-notice', [{ to, data: backwards }]);
    expect(batch.outcomes[0]).toMatchObject({ status: 'failed', error: { field: 'endsAt' } });
    expect(
      thrown(() => mail.render('maintenance-notice', backwards), isTemplateError, 'a TemplateError').field,
    ).toBe('endsAt');
    expect(transport.outbox).toHaveLength(0);
  });
});
