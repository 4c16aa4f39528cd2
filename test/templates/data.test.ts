/**
 * Template data held in getters or inherited (an ORM entity, a class instance, an object made with a
 * prototype): each field is rendered as it was checked, on every path a user sends or renders by.
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError } from '../../src/errors.js';
import type { QueuedEmail } from '../../src/queue.js';
import { EmailService, type FailedEvent } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { rejection, thrown } from '../helpers/thrown.js';

const from = 'Acme <no-reply@acme.example>';

/** A user as an ORM hands it over: its fields behind getters on the class. */
class Member {
  readonly #name: string;
  constructor(name: string) {
    this.#name = name;
  }
  get username(): string {
    return this.#name;
  }
}

const invoice = defineTemplate({
  name: 'invoice',
  fields: { number: 'string', total: 'string', note: 'string?' },
  subject: 'Invoice <%= it.number %>',
  html: '<p>Total: <%= it.total %></p><% if (it.note) { %><p><%= it.note %></p><% } %>',
});

function setup() {
  const transport = memoryTransport();
  const failed: FailedEvent[] = [];
  const mail = new EmailService({ transport, from, templates: [invoice] });
  mail.on('failed', (event) => failed.push(event));
  return { mail, transport, failed };
}

describe('data held in getters or inherited', () => {
  it('renders a class instance as it was checked: the welcome email greets the user by name', async () => {
    const { mail, transport } = setup();
    await mail.sendTemplate('welcome', { to: 'jane@example.com', data: new Member('Jane') });
    const { message } = transport.outbox[0]!;
    expect(message.subject).toBe('Welcome to Acme, Jane!');
    expect(message.text).toContain('Hi Jane,');
  });

  it('renders a product update whose headline and summary are getters, with its subject', () => {
    const { mail } = setup();
    class Announcement {
      actionUrl = 'https://acme.example/new';
      get headline() {
        return 'Shared workspaces are here';
      }
      get summary() {
        return 'Invite your team to a shared workspace.';
      }
    }
    const rendered = mail.render('product-update', new Announcement());
    expect(rendered.subject).toBe('Shared workspaces are here');
    expect(rendered.text).toContain('Invite your team to a shared workspace.');
  });

  it('renders fields a template of yours inherits from the data object’s prototype', async () => {
    const { mail, transport } = setup();
    const data = Object.create({ number: 'A-1', total: '$89.00', note: 'Paid by card' });
    await mail.sendTemplate(invoice, { to: 'jane@example.com', data });
    const { message } = transport.outbox[0]!;
    expect(message.subject).toBe('Invoice A-1');
    expect(message.html).toContain('Total: $89.00');
    expect(message.html).toContain('Paid by card');
  });

  it('passes an optional field a class gives by a getter to a built-in helper (sendProductUpdate)', async () => {
    const { mail, transport } = setup();
    class Update {
      to = 'jane@example.com';
      headline = 'Shared workspaces are here';
      summary = 'Invite your team.';
      actionUrl = 'https://acme.example/new';
      get actionLabel() {
        return 'Try it now';
      }
    }
    await mail.sendProductUpdate(new Update());
    expect(transport.outbox[0]!.message.text).toContain('Try it now');
  });

  it('renders each entry of a batch as it was checked', async () => {
    const { mail, transport } = setup();
    const batch = await mail.sendBatch('welcome', [
      { to: 'jane@example.com', data: new Member('Jane') },
      { to: 'omar@example.com', data: new Member('Omar') },
    ]);
    expect(batch.failed).toBe(0);
    expect(transport.outbox.map(({ message }) => message.subject).sort()).toEqual([
      'Welcome to Acme, Jane!',
      'Welcome to Acme, Omar!',
    ]);
  });

  it('queues the values it checked, which a getter would not give to JSON', async () => {
    const handed: QueuedEmail[] = [];
    const mail = new EmailService({
      transport: memoryTransport(),
      from,
      queue: {
        name: 'test queue',
        enqueue: async (email) => {
          handed.push(email);
          return { id: '1', idempotencyKey: 'k' };
        },
      },
    });
    await mail.sendTemplate('welcome', { to: 'jane@example.com', data: new Member('Jane') });
    expect(JSON.parse(JSON.stringify(handed[0]!.data))).toEqual({ username: 'Jane' });
  });

  it('still refuses an own key that is not a field, and ignores what the prototype holds besides', async () => {
    const { mail } = setup();
    const typo = Object.assign(new Member('Jane'), { usrname: 'Jane' });
    const err = thrown(() => mail.render('welcome', typo), isTemplateError, 'a TemplateError');
    expect(err.field).toBe('usrname');
    class Profile extends Member {
      get email() {
        return 'jane@example.com';
      }
    }
    expect(mail.render('welcome', new Profile('Jane')).subject).toBe('Welcome to Acme, Jane!');
  });

  it('reports a getter that throws as a TemplateError naming the field, the getter’s error its cause', async () => {
    const { mail, transport, failed } = setup();
    const lazy = new Error('relation "users" was not loaded');
    const entity = {
      get username(): string {
        throw lazy;
      },
    };
    const err = thrown(() => mail.render('welcome', entity), isTemplateError, 'a TemplateError');
    expect(err).toMatchObject({ template: 'welcome', field: 'username', cause: lazy });
    // Sending: a rejection reported as failed, as any bad field is (the helper's too, not a throw).
    const sent = await rejection(() =>
      mail.sendTemplate('welcome', { to: 'jane@example.com', data: entity }),
    );
    expect(isTemplateError(sent) && sent.field).toBe('username');
    const signup = {
      to: 'jane@example.com',
      get username(): string {
        throw lazy;
      },
    };
    const helper = await rejection(() => mail.sendWelcomeEmail(signup));
    expect(isTemplateError(helper) && helper.field).toBe('username');
    expect(failed).toHaveLength(2);
    expect(transport.outbox).toHaveLength(0);
  });

  it('renders rows read through getters, and copies them as plain { label, value }', async () => {
    const { mail, transport } = setup();
    class Line {
      readonly #name: string;
      constructor(name: string) {
        this.#name = name;
      }
      get label(): string {
        return this.#name;
      }
      get value(): string {
        return '1 × €9';
      }
    }
    const data = {
      username: 'Jane',
      reference: 'A-1',
      items: [new Line('Mug')],
      total: '€9',
      orderUrl: 'https://acme.example/orders/A-1',
    };
    await mail.sendTemplate('order-confirmation', { to: 'jane@example.com', data });
    expect(transport.outbox[0]?.message.text).toMatch(/Mug\s+1 × €9/);
  });

  it('reports a row whose getter throws as a TemplateError naming the field, not a bare error', async () => {
    const { mail, transport } = setup();
    const lazy = new Error('relation "lines" was not loaded');
    const row = {
      get label(): string {
        throw lazy;
      },
      value: '€9',
    };
    const data = {
      username: 'Jane',
      reference: 'A-1',
      items: [row],
      total: '€9',
      orderUrl: 'https://acme.example/orders/A-1',
    };
    const err = thrown(() => mail.render('order-confirmation', data), isTemplateError, 'a TemplateError');
    expect(err).toMatchObject({ template: 'order-confirmation', field: 'items', cause: lazy });
    const sent = await rejection(() =>
      mail.sendTemplate('order-confirmation', { to: 'jane@example.com', data }),
    );
    expect(isTemplateError(sent) && sent.field).toBe('items');
    expect(transport.outbox).toHaveLength(0);
  });
});
