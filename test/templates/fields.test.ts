/**
 * The field kinds the content library needs, as a template author uses them: `datetime` shown in
 * the reader's `timeZone` with formatDateTime, `rows` for @details, and a choice of words. Bad data
 * is a TemplateError naming the field (and the row).
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { formatDateTime } from '../../src/templates/fields.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';

const notice = defineTemplate({
  name: 'notice',
  fields: {
    at: 'datetime',
    timeZone: 'timeZone?',
    lines: 'rows?',
    level: 'low|high',
  },
  subject: 'Notice for <%= formatDateTime(it.at, { timeZone: it.timeZone }) %>',
  html: [
    '<p>Level <%= it.level %> at <%= formatDateTime(it.at, { timeZone: it.timeZone }) %>.</p>',
    "<% if (it.lines) { %><%~ include('@details', { rows: it.lines }) %><% } %>",
  ].join('\n'),
});

const mail = new EmailService({
  transport: memoryTransport(),
  from: 'Acme <no-reply@acme.example>',
  templates: [notice],
});
const render = (data: Record<string, unknown>) =>
  mail.render(notice, { at: '2026-12-08T02:00:00Z', level: 'low', ...data } as never);
const refused = (data: Record<string, unknown>): TemplateError =>
  thrown(() => render(data), isTemplateError, 'a TemplateError');

describe('formatDateTime', () => {
  it.each([
    ['2026-12-08T02:00:00Z', undefined, 'Tuesday, 8 December 2026, 02:00 (UTC)'],
    ['2026-12-08T02:00:00Z', 'UTC', 'Tuesday, 8 December 2026, 02:00 (UTC)'],
    ['2026-12-08T02:00:00Z', 'Europe/Berlin', 'Tuesday, 8 December 2026, 03:00 (CET)'],
    ['2026-12-08T02:00:00Z', 'America/New_York', 'Monday, 7 December 2026, 21:00 (GMT-5)'],
    ['2026-07-01T12:00:00+02:00', 'Asia/Kolkata', 'Wednesday, 1 July 2026, 15:30 (GMT+5:30)'],
    ['2026-12-08T03:00:00.250+01:00', undefined, 'Tuesday, 8 December 2026, 02:00 (UTC)'],
  ])('shows %s in %s as "%s"', (value, timeZone, shown) => {
    expect(formatDateTime(value, { timeZone })).toBe(shown);
  });

  it('takes a Date', () => {
    expect(formatDateTime(new Date(Date.UTC(2027, 0, 1, 0, 5)), { timeZone: 'Asia/Tokyo' })).toBe(
      'Friday, 1 January 2027, 09:05 (GMT+9)',
    );
  });
});

describe('datetime and timeZone fields', () => {
  it('show the instant in the time zone given, in the subject, the HTML and the text part', () => {
    const { subject, html, text } = render({ timeZone: 'Europe/Berlin' });
    expect(subject).toBe('Notice for Tuesday, 8 December 2026, 03:00 (CET)');
    expect(html).toContain('Level low at Tuesday, 8 December 2026, 03:00 (CET).');
    expect(text).toContain('Level low at Tuesday, 8 December 2026, 03:00 (CET).');
  });

  it('accept a Date, and show UTC without a time zone', () => {
    const { text } = render({ at: new Date('2026-12-08T02:00:00Z') });
    expect(text).toContain('at Tuesday, 8 December 2026, 02:00 (UTC).');
  });

  it.each([
    ['2026-12-08T02:00:00', 'no offset: the instant would depend on the machine'],
    ['2026-12-08', 'a date without a time'],
    ['2026-02-30T02:00:00Z', 'a day that does not exist'],
    ['2026-12-08T24:00:00Z', 'hour 24'],
    ['tomorrow', 'words'],
    [1796695200000, 'a number of milliseconds'],
    [new Date(Number.NaN), 'an invalid Date'],
  ])('refuse %j (%s), naming the field', (at: unknown, _why: string) => {
    const err = refused({ at });
    expect(err.field).toBe('at');
    expect(err.template).toBe('notice');
    expect(err.message).toMatch(/ISO 8601 date and time with an offset/);
  });

  it.each(['Mars/Olympus_Mons', '+01:00', 'Europe/Berlin; DROP', ''])(
    'refuse the time zone %j, naming the field',
    (timeZone) => {
      const err = refused({ timeZone });
      expect(err.field).toBe('timeZone');
      expect(err.message).toMatch(/IANA time zone/);
    },
  );
});

describe('a rows field', () => {
  it('goes to @details as it is, escaped in the HTML, aligned in the text part', () => {
    const { html, text } = render({
      lines: [
        { label: 'Lamp <b>', value: '$89.00' },
        { label: 'Delivery & tax', value: '<script>alert(1)</script>' },
      ],
    });
    expect(html).toContain('Lamp &lt;b&gt;');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
    expect(text).toContain('Lamp <b>         $89.00\nDelivery & tax   <script>alert(1)</script>');
  });

  it.each([
    [[], 'lines', /list of 1 to 50 rows/],
    ['Lamp: $89', 'lines', /list of 1 to 50 rows/],
    [Array.from({ length: 51 }, () => ({ label: 'A', value: 'B' })), 'lines', /list of 1 to 50 rows/],
    [[{ label: 'A', value: 'B' }, 'C'], 'lines[1]', /\{ label, value \}/],
    [[{ label: 'A' }], 'lines[0].value', /is required/],
    [[{ label: 'A', value: '  ' }], 'lines[0].value', /must not be empty/],
    [[{ label: 'A', value: 3 }], 'lines[0].value', /must be a string/],
    [[{ label: 'A', value: 'B', url: 'https://x.example' }], 'lines[0].url', /not part of a row/],
    [[{ label: 'x'.repeat(501), value: 'B' }], 'lines[0].label', /at most 500 characters/],
  ])('refuses %j, naming %s', (lines, field, message) => {
    const err = refused({ lines });
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe('a choice field', () => {
  it('takes one of its words, and refuses anything else by name', () => {
    expect(render({ level: 'high' }).text).toContain('Level high');
    const err = refused({ level: 'medium' });
    expect(err.field).toBe('level');
    expect(err.message).toMatch(/must be one of "low", "high"/);
  });

  it('is typed as the union of its words', () => {
    type Data = Parameters<typeof mail.render<typeof notice>>[1];
    const ok: Data = { at: new Date(), level: 'high' };
    // @ts-expect-error 'medium' is not one of the words
    const wrong: Data = { at: new Date(), level: 'medium' };
    // @ts-expect-error a number is not a datetime
    const number: Data = { at: 1, level: 'low' };
    expect([ok, wrong, number]).toHaveLength(3);
  });

  it('is declared with words of letters, digits and dashes', () => {
    const err = thrown(
      () => defineTemplate({ name: 'x', fields: { a: 'one|' as never }, subject: 's', html: 'h' }),
      isTemplateError,
      'a TemplateError',
    );
    expect(err.field).toBe('a');
    expect(err.message).toMatch(/datetime, timeZone, rows or a choice \(a\|b\)/);
  });
});
