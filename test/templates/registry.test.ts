import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';

const fixtures = new URL('../fixtures/templates/', import.meta.url);
const make = (templates: Parameters<typeof defineTemplate>[0][] = [], extra = {}) =>
  new EmailService({
    transport: memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
    templates: templates.map((t) => defineTemplate(t)),
    ...extra,
  });

const templateError = (fn: () => unknown): TemplateError => thrown(fn, isTemplateError, 'a TemplateError');

describe('template names', () => {
  const service = make();
  it.each([
    '../verification',
    '../../etc/passwd',
    '/etc/passwd',
    'verification/../welcome',
    'Verification',
    '',
    'a b',
  ])('refuses %j as a name', (name) => {
    const err = templateError(() => service.render(name, {}));
    expect(err.message).toMatch(/not a valid template name/);
  });

  it('says which templates exist when a name is unknown', () => {
    const err = templateError(() => service.render('invoice', {}));
    expect(err.template).toBe('invoice');
    expect(err.message).toMatch(
      /known: maintenance-notice, order-confirmation, password-reset, product-update, reminder, security-alert, verification, welcome/,
    );
  });
});

describe('template data', () => {
  const service = make();
  it('names the template and the missing field', () => {
    const err = templateError(() => service.render('verification', { username: 'Jane' } as never));
    expect(err.template).toBe('verification');
    expect(err.field).toBe('verificationUrl');
    expect(err.message).toBe('template "verification": verificationUrl: is required');
  });

  it.each([
    [
      'a field the template does not have',
      { username: 'J', verificationUrl: 'https://a.example', extra: 1 },
      'extra',
    ],
    ['a number where a string goes', { username: 5, verificationUrl: 'https://a.example' }, 'username'],
    ['a javascript: URL', { username: 'J', verificationUrl: 'javascript:alert(1)' }, 'verificationUrl'],
    [
      'an upper-case JAVASCRIPT: URL',
      { username: 'J', verificationUrl: 'JAVASCRIPT:alert(1)' },
      'verificationUrl',
    ],
    [
      'a data: URL',
      { username: 'J', verificationUrl: 'data:text/html,<script>1</script>' },
      'verificationUrl',
    ],
    [
      'a URL with a leading space',
      { username: 'J', verificationUrl: ' https://a.example' },
      'verificationUrl',
    ],
    ['a relative URL', { username: 'J', verificationUrl: '/verify' }, 'verificationUrl'],
  ])('refuses %s', (_, data, field) => {
    expect(templateError(() => service.render('verification', data as never)).field).toBe(field);
  });

  it('refuses data that is not an object', () => {
    expect(templateError(() => service.render('welcome', null as never)).message).toMatch(
      /data must be an object/,
    );
  });
});

describe('your own templates', () => {
  it('checks URLs computed in an href even when the field is a plain string', () => {
    const service = make([
      {
        name: 'note',
        fields: { link: 'string' },
        subject: 'Note',
        html: '<a href="<%= it.link %>">open</a>',
      },
    ]);
    expect(service.render('note', { link: 'https://ok.example/x' }).html).toContain(
      'href="https://ok.example/x"',
    );
    const err = templateError(() => service.render('note', { link: 'javascript:alert(1)' }));
    expect(err.field).toBe('link');
  });

  it('loads a template from a folder with its own stylesheet, the shared layout and a partial', () => {
    const invoice = defineTemplate({
      name: 'invoice',
      fields: { number: 'string', amount: 'string', payUrl: 'url' },
      dir: new URL('invoice', fixtures),
    });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <a@acme.example>',
      templates: [invoice],
    });
    const out = service.render(invoice, {
      number: 'A-17',
      amount: '€42.00',
      payUrl: 'https://acme.example/pay/17',
    });
    expect(out.subject).toBe('Invoice A-17 from Acme');
    expect(out.html).toMatch(/<p class="amount" style="[^"]*font-size: 20px; color: #28A745;/);
    expect(out.html).toContain('class="mr-button-link"');
    expect(out.text).toContain('Amount due: €42.00');
    expect(out.text.split('\n')).toContain('https://acme.example/pay/17');
  });

  it('reads no files when rendering: the folder can vanish after compiling', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-tpl-'));
    await cp(new URL('invoice', fixtures), join(dir, 'invoice'), { recursive: true });
    const invoice = defineTemplate({
      name: 'invoice',
      fields: { number: 'string', amount: 'string', payUrl: 'url' },
      dir: join(dir, 'invoice'),
    });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      templates: [invoice],
    });
    service.templates.compileAll();
    await rm(dir, { recursive: true });
    expect(
      service.render(invoice, { number: '1', amount: '2', payUrl: 'https://a.example/p' }).html,
    ).toContain('Invoice 1');
  });

  it('refuses a folder given relative to the working directory', () => {
    const err = templateError(() => defineTemplate({ name: 'x', fields: {}, dir: 'emails/x' }));
    expect(err.message).toMatch(/absolute path or a file: URL/);
  });

  it('replaces a built-in by name', () => {
    const service = make([
      {
        name: 'welcome',
        fields: { username: 'string' },
        subject: 'Hey <%= it.username %>',
        html: '<p>Yo</p>',
      },
    ]);
    expect(service.render('welcome', { username: 'Jane' }).subject).toBe('Hey Jane');
  });

  it('uses its own text body when it has one', () => {
    const service = make([
      {
        name: 'ping',
        fields: { n: 'number' },
        subject: 'Ping',
        html: '<p>Ping</p>',
        text: 'Ping number <%= it.n %> & more',
      },
    ]);
    expect(service.render('ping', { n: 3 }).text).toBe('Ping number 3 & more');
  });

  it('renders a full document without the layout', () => {
    const service = make([
      {
        name: 'bare',
        fields: {},
        layout: false,
        subject: 'Bare',
        html: '<html><body><p class="x">Bare</p></body></html>',
        css: '.x { color: red; }',
      },
    ]);
    const { html, text } = service.render('bare', {});
    expect(html).not.toContain('class="card"');
    expect(html).toContain('<p class="x" style="color: red;">Bare</p>');
    expect(text).toBe('Bare');
  });

  it('converts raw HTML output to text per message, and still gets it right', () => {
    const service = make([
      {
        name: 'raw',
        fields: { snippet: 'string' },
        subject: 'Raw',
        html: '<div><%~ it.snippet %></div>',
        layout: false,
      },
    ]);
    expect(service.templates.compiled('raw').textFromTemplate).toBe(false);
    expect(service.render('raw', { snippet: '<p>one</p><p>two</p>' }).text).toBe('one\n\ntwo');
  });

  it('uses partials and layouts you register', () => {
    const service = make(
      [
        {
          name: 'promo',
          fields: { code: 'string' },
          subject: 'Promo',
          html: "<%~ include('@badge', { text: it.code }) %>",
          layout: 'plain',
        },
      ],
      {
        partials: { badge: '<span class="badge"><%= it.text %></span>' },
        layouts: { plain: '<div class="plain"><%~ it.body %></div>' },
        css: '.badge { font-weight: bold; }',
      },
    );
    const { html } = service.render('promo', { code: 'SAVE10' });
    expect(html).toBe(
      '<div class="plain"><span class="badge" style="font-weight: bold;">SAVE10</span></div>',
    );
  });

  it.each([
    ['an unknown partial', { html: "<%~ include('@nope') %>" }, /unknown partial "@nope"/],
    ['an unknown layout', { html: '<p>x</p>', layout: 'nope' }, /unknown layout "nope"/],
    ['broken eta', { html: '<% if ( %>' }, /html, line 1: bad template syntax/],
  ])('names the template when it has %s', (_, patch, pattern) => {
    const service = make([{ name: 'broken', fields: {}, subject: 'S', ...patch }]);
    const err = templateError(() => service.render('broken', {}));
    expect(err.template).toBe('broken');
    expect(err.message).toMatch(pattern);
  });

  it.each([
    ['a field called app', { app: 'string' }],
    ['an unknown field type', { a: 'date' }],
    ['a field name that is not an identifier', { 'a-b': 'string' }],
  ])('refuses %s when defining', (_, fields) => {
    expect(
      templateError(() => defineTemplate({ name: 'x', fields: fields as never, subject: 's', html: 'h' }))
        .template,
    ).toBe('x');
  });

  it('type-checks data against the fields', () => {
    const t = defineTemplate({
      name: 'typed',
      fields: { a: 'string', b: 'number?' },
      subject: 's',
      html: '<p><%= it.a %></p>',
    });
    const service = make();
    service.render(t, { a: 'x' });
    service.render(t, { a: 'x', b: 1 });
    // @ts-expect-error: b must be a number
    expect(() => service.render(t, { a: 'x', b: 'one' })).toThrow(/b: must be a number/);
    // @ts-expect-error: a is required
    expect(() => service.render(t, {})).toThrow(/a: is required/);
    // @ts-expect-error: built-in data is typed by name too
    expect(() => service.render('verification', { username: 'x' })).toThrow(/verificationUrl/);
  });
});

describe('template data: the same checks for built-in and your templates', () => {
  const trial = 'trial-ending';
  const service = make([
    {
      name: 'trial-ending',
      fields: { username: 'string', plan: 'string?', minutesLeft: 'minutes' },
      subject: '<%= it.username %>, your trial ends in <%= formatMinutes(it.minutesLeft) %>',
      html: '<p>Only <%= formatMinutes(it.minutesLeft) %> left<% if (it.plan) { %> on <%= it.plan %><% } %>.</p>',
    },
  ]);

  it('shows minutes in words through formatMinutes', () => {
    expect(service.render(trial, { username: 'Jane', minutesLeft: 150 }).subject).toBe(
      'Jane, your trial ends in 2 hours 30 minutes',
    );
    expect(service.render(trial, { username: 'Jane', minutesLeft: 1 }).text).toContain('Only 1 minute left.');
  });

  it.each([
    ['username', { username: '', minutesLeft: 5 }, /must not be empty/],
    ['plan', { username: 'Jane', plan: ' ', minutesLeft: 5 }, /must not be empty/],
    ['minutesLeft', { username: 'Jane', minutesLeft: -5 }, /whole number of minutes from 1 to 10080/],
    ['minutesLeft', { username: 'Jane', minutesLeft: 2.5 }, /whole number/],
    ['minutesLeft', { username: 'Jane', minutesLeft: 10_081 }, /whole number/],
    ['minutesLeft', { username: 'Jane', minutesLeft: '5' }, /whole number/],
  ])('refuses a bad %s, naming it', (field, data, pattern) => {
    const err = templateError(() => service.render(trial, data as never));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(pattern);
  });

  it('refuses a line separator, NEL or NUL put into the subject through data, naming the field', () => {
    for (const username of ['Jane\u2028Bcc: evil@x.com', 'Jane\u0085', 'Jane\u0000']) {
      const err = templateError(() => service.render(trial, { username, minutesLeft: 5 }));
      expect(err.field).toBe('username');
    }
  });

  it('reserves hasReplyTo, which mailroom sets', () => {
    const err = templateError(() =>
      defineTemplate({ name: 'x', fields: { hasReplyTo: 'boolean' }, subject: 's', html: 'h' }),
    );
    expect(err.field).toBe('hasReplyTo');
  });
});
