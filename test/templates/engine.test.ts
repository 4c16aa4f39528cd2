/**
 * The template engine as an author meets it: partials wherever they are written, newlines as they
 * are written, and author text that stays text. Every case checks the HTML and the text part.
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';

type Definition = Parameters<typeof defineTemplate>[0];

const partials = {
  tag: '<span class="tag"><%= it.text %></span>\n',
  // A partial that places another, next to a built-in one.
  card: "<div class=\"card\"><%= it.title %>\n<%~ include('@tag', { text: it.title + '!' }) %></div>\n",
  greet: '<p>Hello <%= it.username %></p>',
};

function service(definition: Partial<Definition>) {
  const template = defineTemplate({
    name: 't',
    fields: {},
    subject: 'S',
    layout: false,
    ...definition,
  } as Definition);
  return new EmailService({
    transport: memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
    templates: [template],
    partials,
  });
}

/** Compiles every template, as at start-up, then renders: what compileAll() accepts must render. */
function render(definition: Partial<Definition>, data: Record<string, unknown> = {}) {
  const s = service(definition);
  s.templates.compileAll();
  return s.render('t', data as never);
}

function compileError(definition: Partial<Definition>): TemplateError {
  try {
    service(definition).templates.compileAll();
  } catch (err) {
    if (isTemplateError(err)) return err;
    throw err;
  }
  throw new Error('expected compileAll() to refuse the template');
}

const urls = { acceptUrl: 'https://acme.example/accept', declineUrl: 'https://acme.example/decline' };

describe('partials', () => {
  it('places two built-in buttons on consecutive lines, each with its own data', () => {
    const { html, text } = render(
      {
        fields: { acceptUrl: 'url', declineUrl: 'url' },
        html: [
          '<p>Join the team?</p>',
          "<%~ include('@button', { url: it.acceptUrl, label: 'Accept' }) %>",
          "<%~ include('@button', { url: it.declineUrl, label: 'Decline' }) %>",
          '',
        ].join('\n'),
        layout: 'default',
      },
      urls,
    );
    expect(html.indexOf('>Accept</a>')).toBeGreaterThan(0);
    expect(html.indexOf('>Decline</a>')).toBeGreaterThan(html.indexOf('>Accept</a>'));
    expect(html).toContain(`href="${urls.acceptUrl}" class="mr-button-link"`);
    expect(html).toContain(`href="${urls.declineUrl}" class="mr-button-link"`);
    // The text part has no buttons: each reads as its label and its link.
    expect(text).toContain(`Join the team?\n\nAccept:\n${urls.acceptUrl}\n\nDecline:\n${urls.declineUrl}\n`);
    expect(text).not.toMatch(/button/i);
  });

  const tag = (text: string) => `<span class="tag">${text}</span>`;
  it.each<[string, string, Record<string, unknown>, string, string]>([
    [
      'two on one line',
      "<p><%~ include('@tag', { text: 'a' }) %><%~ include('@tag', { text: 'b' }) %></p>",
      {},
      `<p>${tag('a')}${tag('b')}</p>`,
      'ab',
    ],
    [
      'two on one line with text between',
      "<p><%~ include('@tag', { text: 'a' }) %> and <%~ include('@tag', { text: 'b' }) %></p>",
      {},
      `<p>${tag('a')} and ${tag('b')}</p>`,
      'a and b',
    ],
    [
      'consecutive lines',
      "<p>\n<%~ include('@tag', { text: 'a' }) %>\n<%~ include('@tag', { text: 'b' }) %>\n</p>",
      {},
      `<p>\n${tag('a')}\n${tag('b')}\n</p>`,
      'a b',
    ],
    [
      'inside an if that holds',
      "<% if (it.show) { %>\n<p><%~ include('@tag', { text: 'a' }) %></p>\n<% } %>\n<p>end</p>",
      { show: true },
      `<p>${tag('a')}</p>\n<p>end</p>`,
      'a\n\nend',
    ],
    [
      'inside an if that does not hold',
      "<% if (it.show) { %>\n<p><%~ include('@tag', { text: 'a' }) %></p>\n<% } %>\n<p>end</p>",
      { show: false },
      '<p>end</p>',
      'end',
    ],
    [
      'inside an if, on the same line',
      "<p><% if (it.show) { %><%~ include('@tag', { text: 'a' }) %><% } else { %>none<% } %></p>",
      { show: true },
      `<p>${tag('a')}</p>`,
      'a',
    ],
    [
      'inside a loop, with the loop variable',
      "<p><% for (const text of ['x', 'y', 'z']) { %><%~ include('@tag', { text }) %><% } %></p>",
      {},
      `<p>${tag('x')}${tag('y')}${tag('z')}</p>`,
      'xyz',
    ],
    [
      'a partial that includes another',
      "<%~ include('@card', { title: 'T' }) %>",
      {},
      `<div class="card">T\n${tag('T!')}</div>`,
      'T T!',
    ],
    [
      'no data: the partial sees the template’s own',
      "<%~ include('@greet') %>",
      { username: 'Jane' },
      '<p>Hello Jane</p>',
      'Hello Jane',
    ],
    [
      'data with a bracket, a tag end and && inside a string',
      "<p><%~ include('@tag', { text: ') %> && <' }) %></p>",
      {},
      `<p>${tag(') %&gt; &amp;&amp; &lt;')}</p>`,
      ') %> && <',
    ],
    [
      'a trim marker on the include',
      "<p>\n<%~ include('@tag', { text: 'a' }) -%>\n</p>",
      {},
      `<p>\n${tag('a')}</p>`,
      'a',
    ],
  ])('renders an include %s', (_, html, data, expectedHtml, expectedText) => {
    const fields = Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, typeof value === 'boolean' ? 'boolean' : 'string']),
    );
    const rendered = render({ fields: fields as Definition['fields'], html }, data);
    expect(rendered.html).toBe(expectedHtml);
    expect(rendered.text).toBe(expectedText);
  });

  it('places a custom partial next to a built-in one, in order', () => {
    const { html, text } = render(
      {
        fields: { acceptUrl: 'url' },
        html: "<%~ include('@tag', { text: 'first' }) %><%~ include('@button', { url: it.acceptUrl, label: 'Go' }) %>\n<%~ include('@tag', { text: 'last' }) %>",
      },
      { acceptUrl: urls.acceptUrl },
    );
    expect(html.startsWith(tag('first'))).toBe(true);
    expect(html.endsWith(`</table>\n${tag('last')}`)).toBe(true);
    expect(html).toContain('>Go</a>');
    expect(text).toBe(`first\n\nGo:\n${urls.acceptUrl}\n\nlast`);
  });

  it.each([
    ['escaped output', "<%= include('@tag', { text: 'a' }) %>", /write a partial as <%~ include\('@name'/],
    ['a code tag', "<% include('@tag', { text: 'a' }) %>", /write a partial as/],
    [
      'an expression around it',
      "<%~ include('@tag', { text: 'a' }) + include('@tag') %>",
      /write a partial as/,
    ],
    ['a name without @', "<%~ include('tag', { text: 'a' }) %>", /write a partial as/],
    ['an unknown partial', "<%~ include('@nope') %>", /unknown partial "@nope"/],
  ])('refuses at compile time an include written as %s', (_, html, pattern) => {
    const err = compileError({ html });
    expect(err.template).toBe('t');
    expect(err.message).toMatch(pattern);
  });

  it('refuses at compile time an include in the text part or the subject', () => {
    const include = "<%~ include('@tag', { text: 'a' }) %>";
    expect(compileError({ html: '<p>x</p>', text: include }).message).toMatch(
      /text(, line 1)?: (bad template syntax: )?include\(\) places a partial only in the HTML/,
    );
    expect(compileError({ html: '<p>x</p>', subject: include }).message).toMatch(
      /subject(, line 1)?: (bad template syntax: )?include\(\) places a partial only in the HTML/,
    );
  });

  it('refuses partials that include each other endlessly', () => {
    const s = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      templates: [defineTemplate({ name: 't', fields: {}, subject: 'S', html: "<%~ include('@loop') %>" })],
      partials: { loop: "<b><%~ include('@loop') %></b>" },
    });
    expect(() => s.templates.compileAll()).toThrow(/partials nest deeper than 5/);
  });
});

describe('newlines', () => {
  it('keeps the newline after each output tag in a text template', () => {
    const { text } = render(
      {
        fields: { username: 'string', code: 'string' },
        html: '<p>Hi</p>',
        text: 'Hi <%= it.username %>\nYour code: <%= it.code %>\nIt expires in 10 minutes.\n',
      },
      { username: 'Jane', code: '123456' },
    );
    expect(text).toBe('Hi Jane\nYour code: 123456\nIt expires in 10 minutes.');
  });

  it('keeps the line break after an output tag in a derived text part', () => {
    const { html, text } = render(
      {
        fields: { code: 'string', when: 'string' },
        html: '<p>Code: <%= it.code %><br>Expires: <%= it.when %></p>',
      },
      { code: '123456', when: 'tomorrow' },
    );
    expect(html).toBe('<p>Code: 123456<br>Expires: tomorrow</p>');
    expect(text).toBe('Code: 123456\nExpires: tomorrow');
  });

  it('keeps newlines after output tags in the HTML, as in preformatted text', () => {
    const { html, text } = render(
      {
        fields: { code: 'string', when: 'string' },
        html: '<pre>Code: <%= it.code %>\nExpires: <%~ it.when %>\n</pre>',
      },
      { code: '123456', when: 'tomorrow' },
    );
    expect(html).toBe('<pre>Code: 123456\nExpires: tomorrow\n</pre>');
    expect(text).toBe('Code: 123456\nExpires: tomorrow');
  });

  const controlled = [
    'Hi <%= it.username %>',
    '  <% if (it.code) { %>',
    'Your code: <%= it.code %>',
    '  <% } else { %>',
    'No code needed.',
    '  <% } %>',
    '<% for (const n of [1, 2]) { %>',
    'Line <%= n %>',
    '<% } %>',
    'Bye',
    '',
  ].join('\n');
  it.each([
    [
      'a condition that holds',
      { username: 'Jane', code: '42' },
      'Hi Jane\nYour code: 42\nLine 1\nLine 2\nBye',
    ],
    ['a condition that does not', { username: 'Jane' }, 'Hi Jane\nNo code needed.\nLine 1\nLine 2\nBye'],
  ])('leaves no line for a line holding only control tags, with %s', (_, data, expected) => {
    const definition = { fields: { username: 'string', code: 'string?' } as const };
    expect(render({ ...definition, html: '<p>x</p>', text: controlled }, data).text).toBe(expected);
    const html = render({ ...definition, html: `<pre>${controlled}</pre>` }, data);
    expect(html.html).toBe(`<pre>${expected}\n</pre>`);
    expect(html.text).toBe(expected);
  });

  it('honours trim markers the author wrote', () => {
    const { text } = render(
      {
        fields: { a: 'string' },
        html: '<p>x</p>',
        text: 'A: <%= it.a -%>\nsame line\n<%_ if (true) { _%>\n  next\n<% } %>\n',
      },
      { a: '1' },
    );
    expect(text).toBe('A: 1same linenext');
  });
});

describe('author text that reads like a tag', () => {
  it('stays text in both parts and never runs', () => {
    const { html, text } = render(
      {
        fields: { username: 'string' },
        html: '<p>Write &lt;%= it.username %&gt; where the name goes.</p><p>Or &lt;% throw new Error("x") %&gt;</p>',
      },
      { username: 'Jane' },
    );
    expect(html).toBe(
      '<p>Write &lt;%= it.username %&gt; where the name goes.</p><p>Or &lt;% throw new Error("x") %&gt;</p>',
    );
    expect(text).toBe('Write <%= it.username %> where the name goes.\n\nOr <% throw new Error("x") %>');
  });

  it.each([
    [
      'next to a real tag',
      '<p>&lt;<%= it.username %>&gt; &lt;%</p>',
      '<p>&lt;Jane&gt; &lt;%</p>',
      '<Jane> <%',
    ],
    [
      'in a link',
      '<a href="https://acme.example/?q=%3C%25">&lt;%~ it %&gt;</a>',
      null,
      '<%~ it %>\nhttps://acme.example/?q=%3C%25',
    ],
    [
      'as the placeholder mailroom uses inside',
      '<p>MRX0XRM MRXX1XRM <%= it.username %></p>',
      '<p>MRX0XRM MRXX1XRM Jane</p>',
      'MRX0XRM MRXX1XRM Jane',
    ],
  ])('stays text %s', (_, source, expectedHtml, expectedText) => {
    const rendered = render({ fields: { username: 'string' }, html: source }, { username: 'Jane' });
    if (expectedHtml !== null) expect(rendered.html).toBe(expectedHtml);
    expect(rendered.text).toBe(expectedText);
  });
});
