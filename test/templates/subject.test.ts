/**
 * The rendered subject: a line break or control character that data puts in it is refused naming
 * the field, wherever it falls (at the end too); the template's own edges are still trimmed.
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { rejection, thrown } from '../helpers/thrown.js';

const notice = defineTemplate({
  name: 'notice',
  fields: { title: 'string' },
  subject: '<%= it.title %>',
  html: '<p><%= it.title %></p>',
});

/** A subject written over lines, as an `if` reads best: its own line breaks are not the data's. */
const status = defineTemplate({
  name: 'status',
  fields: { done: 'boolean', what: 'string' },
  subject:
    '\n<% if (it.done) { %>\nDone: <%= it.what %>\n<% } else { %>\nStill waiting: <%= it.what %>\n<% } %>\n',
  html: '<p><%= it.what %></p>',
});

/** A subject whose own text has a line break in it. */
const twoLines = defineTemplate({
  name: 'two-lines',
  fields: { note: 'string' },
  subject: 'Line one\nLine two',
  html: '<p><%= it.note %></p>',
});

function setup() {
  const transport = memoryTransport();
  const mail = new EmailService({
    transport,
    from: 'Acme <no-reply@acme.example>',
    templates: [notice, status, twoLines],
  });
  return { mail, transport };
}

const update = {
  to: 'jane@example.com',
  summary: 'Invite your team to a shared workspace.',
  actionUrl: 'https://acme.example/new',
};

describe('the subject', () => {
  it.each([
    ['a line feed', 'Shared workspaces are here\n'],
    ['CR LF', 'Shared workspaces are here\r\n'],
    ['a line separator (U+2028)', 'Shared workspaces are here\u2028'],
    ['a tab', 'Shared workspaces are here\t'],
    ['a leading line feed', '\nShared workspaces are here'],
  ])('refuses data ending in %s, naming the field, and sends nothing', async (_, headline) => {
    const { mail, transport } = setup();
    const err = await rejection(() => mail.sendProductUpdate({ ...update, headline }));
    expect(isTemplateError(err) && err).toMatchObject({
      template: 'product-update',
      field: 'headline',
      message: expect.stringMatching(/in the subject, control characters and line breaks are not allowed/),
    });
    expect(transport.outbox).toHaveLength(0);
  });

  it('refuses a trailing line break in your template’s data, when rendered or sent in a batch', async () => {
    const { mail, transport } = setup();
    const err = thrown(
      () => mail.render(notice, { title: 'Your invoice\n' }),
      isTemplateError,
      'a TemplateError',
    );
    expect(err.field).toBe('title');
    const batch = await mail.sendBatch(notice, [
      { to: 'jane@example.com', data: { title: 'Your invoice\n' } },
    ]);
    expect(batch.outcomes[0]).toMatchObject({ status: 'failed', error: { field: 'title' } });
    expect(transport.outbox).toHaveLength(0);
  });

  it('keeps a no-break space the data ends with: it is text, not a line break', () => {
    const { mail } = setup();
    expect(mail.render(notice, { title: 'Your invoice\u00a0' }).subject).toBe('Your invoice\u00a0');
  });

  it('trims what the template itself writes around it: a file’s last newline, lines of code', async () => {
    const { mail, transport } = setup();
    await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
    expect(transport.outbox[0]!.message.subject).toBe('Welcome to Acme, Jane!');
    expect(mail.render(status, { done: true, what: 'the export' }).subject).toBe('Done: the export');
    expect(mail.render(status, { done: false, what: 'the export' }).subject).toBe(
      'Still waiting: the export',
    );
  });

  it('still refuses a line break the subject template writes inside it, without blaming a field', () => {
    const { mail } = setup();
    const err = thrown(
      () => mail.render(twoLines, { note: 'a note\nover lines' }),
      isTemplateError,
      'a TemplateError',
    );
    expect(err.field).toBeUndefined();
    expect(err.message).toMatch(
      /in the subject, control characters and line breaks are not allowed \(found U\+000A\) \(the subject template writes one\)/,
    );
  });
});
