/** Template mistakes caught when compiling, each with the part or file, the line and a short reason. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { describeProblem } from '../../src/preview/diagnose.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate, type TemplateDefinition } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';

type Definition = TemplateDefinition<Record<string, 'string' | 'number' | 'url' | 'url?'>>;
const service = (definition: Partial<Definition>, extra = {}) =>
  new EmailService({
    transport: memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
    templates: [
      defineTemplate({
        name: 'receipt',
        fields: { total: 'number', customer: 'string' },
        subject: 'Your receipt',
        html: '<p>Total: <%= it.total %></p>',
        ...definition,
      } as Definition),
    ],
    ...extra,
  });

function compileError(definition: Partial<Definition>, extra = {}): TemplateError {
  const mail = service(definition, extra);
  try {
    mail.templates.compileAll();
  } catch (err) {
    if (isTemplateError(err)) return err;
    throw err;
  }
  throw new Error('expected a TemplateError');
}

describe('names a template reads that it does not have', () => {
  it.each([
    ['it.x', 'html', { html: '<p>one</p>\n<p>Total: <%= it.totl %></p>' }, 2],
    ["it['x']", 'html', { html: "<p>Total: <%= it['totl'] %></p>" }, 1],
    ['it["x"]', 'html', { html: '<p>\n\nTotal: <%= it["totl"] %></p>' }, 3],
    ['optional chaining', 'html', { html: '<p>\n<%= it?.totl ?? 0 %></p>' }, 2],
    ["optional chaining with ['x']", 'html', { html: "<p><%= it?.['totl'] %></p>" }, 1],
    [
      'a partial argument',
      'html',
      { html: "<p>x</p>\n<%~ include('@button', { url: it.totl, label: 'Pay' }) %>" },
      2,
    ],
    ['the subject', 'subject', { subject: 'Receipt\nfor <%= it.totl %>' }, 2],
    ['the text part', 'text', { text: 'Hello\n\n\nTotal: <%= it.totl %>' }, 4],
    ['the preheader', 'preheader', { preheader: 'Your total is <%= it.totl %>' }, 1],
    ['a code block', 'html', { html: '<% if (it.totl > 10) { %>big<% } %>' }, 1],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an eta template holding a JavaScript template literal
    ['a template literal', 'html', { html: '<%= `${it.totl} EUR` %>' }, 1],
  ])(
    'in %s: a TemplateError at compile time with the part, line and "did you mean"',
    (_, part, patch, line) => {
      const err = compileError(patch);
      expect(err.template).toBe('receipt');
      expect(err.part).toBe(part);
      expect(err.line).toBe(line);
      expect(err.message).toBe(
        `template "receipt": ${part}, line ${line}: it.totl is not a field of this template (did you mean it.total?)`,
      );
    },
  );

  it('lists the fields when nothing is close', () => {
    const err = compileError({ html: '<%= it.shippingAddress %>' });
    expect(err.message).toMatch(
      /it\.shippingAddress is not a field of this template \(fields: total, customer\)/,
    );
  });

  it('suggests across a change of case', () => {
    expect(compileError({ html: '<%= it.Customer %>' }).message).toMatch(/did you mean it\.customer\?/);
  });

  it.each(['it.body', 'it.preheader'])(
    'refuses %s in a template: the layout places those, the template would print "undefined"',
    (ref) => {
      const err = compileError({ html: `<p><%= ${ref} %></p>` });
      expect(err.message).toMatch(new RegExp(`${ref.replace('.', '\\.')} is not a field`));
    },
  );

  it('reads the brand, the layout slots and what mailroom sets, and names in strings or comments', () => {
    const mail = service({
      subject: '<%= it.app.name %> receipt',
      html: [
        '<p><%= it.app.name %> <%= it?.app?.senderAddress %> <%= it["app"].year %></p>',
        "<p><%= it.hasReplyTo ? 'Reply to us' : 'it.nope is only text' %></p>",
        '<p><%= it.total /* it.totl in a comment */ %> <%= "it.totl" %></p>',
        '<p><%= it.customer.toUpperCase() %> <%= Object.keys(it).length > 0 %></p>',
        '<p><%= { it: { nope: 1 } }.it.nope %></p>',
      ].join('\n'),
      preheader: 'Total <%= it.total %>',
    });
    expect(() => mail.templates.compileAll()).not.toThrow();
    const { html } = mail.render('receipt', { total: 3, customer: 'Jane' });
    expect(html).toContain('it.nope is only text');
    expect(html).toMatch(/>3 it\.totl<\/p>/);
  });

  it('checks the built-in templates too, and they pass', () => {
    expect(() => service({}).templates.compileAll()).not.toThrow();
  });

  it('checks no names a layout or partial reads for itself', () => {
    const mail = service(
      { html: "<%~ include('@card', { heading: it.customer }) %>", layout: 'shell' },
      {
        layouts: { shell: '<div><%= it.username %><%= it.campaign %><%~ it.body %></div>' },
        partials: { card: '<h2><%= it.heading %></h2>' },
      },
    );
    expect(() => mail.templates.compileAll()).not.toThrow();
  });
});

describe('syntax errors, through the API and in the preview', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-diagnose-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each([
    [
      'an unclosed <% tag',
      '<p>one</p>\n<p>two</p>\n<p>Total: <%= it.total </p>\n<p>four</p>',
      3,
      /unclosed `<%` tag\?/,
    ],
    [
      'a parenthesis not closed',
      '<p>one</p>\n<p><%= it.total.toFixed(2 %></p>\n<p>x</p>',
      2,
      /missing \) after/,
    ],
    [
      'a bad token',
      '<p>one</p>\n<p>two</p>\n<% if (it.total { %>\n<p>x</p>\n<% } %>',
      3,
      /Unexpected token '\{'/,
    ],
    ['a block never closed', '<p>one</p>\n<% if (it.total) { %>\n<p>x</p>', 2, /never closed/],
    [
      'a mistake after a block',
      '<% [1].forEach((n) => { %>\n<% if (n) { %>\n<p>x</p>\n<% } %>\n<% }) %>\n<%= it.total) %>',
      6,
      /Unexpected token '\)'/,
    ],
    ['an unclosed string', '<p>one</p>\n<p><%= "abc %></p>', 2, /unclosed string/],
  ])('%s: the file, the line and a short reason, never generated code', async (_, html, line, reason) => {
    const folder = join(dir, `t${line}${html.length}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(folder));
    await writeFile(join(folder, 'html.eta'), html);
    await writeFile(join(folder, 'subject.eta'), 'Receipt');
    const handle = defineTemplate({ name: 'receipt', fields: { total: 'number' }, dir: folder });
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      templates: [handle],
    });
    let err: TemplateError | undefined;
    try {
      mail.templates.compileAll();
    } catch (e) {
      if (isTemplateError(e)) err = e;
    }
    expect(err?.file).toBe(join(folder, 'html.eta'));
    expect(err?.line).toBe(line);
    expect(err?.message).toMatch(reason);
    expect(err?.message).toMatch(
      new RegExp(`^template "receipt": ${folder}/html\\.eta, line ${line}: bad template syntax: `),
    );
    expect(err?.message).not.toMatch(/__eta|=====|\n|Invalid regular expression/);
    // A send fails the same way.
    await expect(mail.sendTemplate(handle, { to: 'jane@example.com', data: { total: 1 } })).rejects.toThrow(
      err!.message,
    );
    // The preview shows the same diagnosis.
    expect(describeProblem(err, { template: 'receipt', handle })).toMatchObject({
      template: 'receipt',
      file: join(folder, 'html.eta'),
      line,
      message: err!.message,
    });
  });

  it('names the part of an inline template', () => {
    const err = compileError({ subject: 'Receipt', text: 'one\n<%= it.total( %>' });
    expect(err.message).toMatch(/^template "receipt": text, line 2: bad template syntax: /);
  });

  it('blames a broken layout or partial, not the template', () => {
    const layout = compileError(
      { layout: 'shell' },
      { layouts: { shell: '<div>\n<% if (x { %>\n<%~ it.body %></div>' } },
    );
    expect(layout.message).toMatch(/^template "receipt": layout "shell", line 2: bad template syntax: /);
    const partial = compileError(
      { html: "<%~ include('@card', {}) %>" },
      { partials: { card: '<h2>\n<%= it.heading %></h2' } },
    );
    expect(partial.message).not.toMatch(/__eta|\n/);
  });
});

describe('every attribute that takes a URL gets the http(s) rule', () => {
  const fields = { link: 'string', total: 'number' } as const;
  const render = (html: string, link: string) =>
    new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      templates: [defineTemplate({ name: 'promo', fields, subject: 'Promo', html })],
    }).render('promo', { link, total: 1 });

  it.each([
    '<a href="<%= it.link %>">x</a>',
    '<a HREF="<%= it.link %>">x</a>',
    '<a href=<%= it.link %>>x</a>',
    "<a href = ' <%= it.link %>'>x</a>",
    '<a href="&#32;<%= it.link %>">x</a>',
    '<a href="&#x09;&NewLine;<%= it.link %>">x</a>',
    '<img src="<%= it.link %>">',
    '<form action="<%= it.link %>"><button formaction="<%= it.link %>">Go</button></form>',
    '<img srcset="<%= it.link %> 2x">',
    '<img srcset="https://acme.example/a.png 1x, <%= it.link %> 2x">',
    '<svg><a xlink:href="<%= it.link %>">x</a></svg>',
    '<table background="<%= it.link %>"><tr><td>x</td></tr></table>',
    '<video poster="<%= it.link %>"></video>',
    '<blockquote cite="<%= it.link %>">x</blockquote>',
    '<meta http-equiv="refresh" content="0; url=<%= it.link %>">',
    '<meta http-equiv="Refresh" content="5;URL=\'<%= it.link %>\'">',
    '<a href="<%_= it.link _%>">x</a>',
    '<a href="<%~ it.link %>">x</a>',
    '<a href="<% = it.link %>">x</a>',
    // A quote inside a comment in an earlier tag must not hide the link from the check.
    '<% /* don\'t */ %><a href="<%= it.link %>">x</a><p>we\'re</p>',
  ])('%s refuses javascript: placed by data, naming the field', (html) => {
    for (const link of ['javascript:alert(1)', ' JavaScript:alert(1)', 'data:text/html,x']) {
      let err: unknown;
      try {
        render(html, link);
      } catch (e) {
        err = e;
      }
      expect(isTemplateError(err) && err.field).toBe('link');
      expect((err as Error).message).toMatch(/must be an http\(s\) URL/);
    }
    expect(render(html, 'https://acme.example/deal').html).toContain('https://acme.example/deal');
  });

  it.each([
    ['<a href="javascript:alert(1)">x</a>', /<a href> must be an http\(s\) URL, not "javascript:"/],
    ['<a href="&#32;javascript:<%= it.link %>">x</a>', /not "javascript:"/],
    ['<a href=" JaVaScRiPt:go()">x</a>', /not "javascript:"/],
    ['<a href="java&#x09;script&colon;go()">x</a>', /not "javascript:"/],
    ['<a href="java<%= it.link %>">x</a>', /not leave the scheme to data/],
    ['<a href="<% if (it.link) { %>https://a.example<% } %>">x</a>', /one <%= %> expression/],
    ['<form action="data:text/html,x"></form>', /<form action> must be an http\(s\) URL, not "data:"/],
    ['<meta http-equiv="refresh" content="<%= it.link %>">', /write the delay and "url=" literally/],
    ['<p>x</p>\n<img\n  srcset="https://acme.example/a.png 1x, vbscript:x 2x">', /not "vbscript:"/],
  ])('%s is refused when compiling, with its line', (html, message) => {
    const err = compileError({ fields, html } as Partial<Definition>);
    expect(err.part).toBe('html');
    expect(err.message).toMatch(message);
    expect(err.line).toBe(html.startsWith('<p>x</p>\n') ? 3 : 1);
  });

  it('leaves URLs the template fixes itself alone, and links written after a safe scheme', () => {
    const html = [
      '<a href="https://acme.example/deal/<%= it.link %>">deal</a>',
      '<a href="mailto:sales@acme.example?subject=<%= it.link %>">mail</a>',
      '<a href="/help">help</a> <a href="#top">top</a> <img src="cid:logo">',
      '<a data-track="<%= it.link %>" title="<%= it.link %>">x</a>',
    ].join('\n');
    const out = render(html, 'javascript:x').html;
    expect(out).toContain('href="https://acme.example/deal/javascript:x"');
    expect(out).toContain('title="javascript:x"');
  });
});
