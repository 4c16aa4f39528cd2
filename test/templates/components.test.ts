/**
 * The built-in components as an author uses them: `@button`, `@panel`, `@details` and `@code`
 * look like themselves in any layout (their styles are their own), escape what they are given,
 * read well in the text part, and refuse a wrong argument by name.
 */
import { describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';

type Definition = Parameters<typeof defineTemplate>[0];

const colors = {
  primary: '#FF5A00',
  success: '#118833',
  danger: '#CC0022',
  warning: '#FFB000',
  info: '#0077AA',
  text: '#222222',
};
/** A layout of the user's own: no built-in stylesheet, no classes of ours. */
const plainLayout = '<html><body><div class="mine"><%~ it.body %></div></body></html>';
const LAYOUTS = [
  ['no layout', false],
  ['a custom layout', 'plain'],
  ['the default layout', 'default'],
] as const;

function service(definition: Partial<Definition>) {
  const template = defineTemplate({ name: 't', fields: {}, subject: 'S', ...definition } as Definition);
  return new EmailService({
    transport: memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
    brand: { colors },
    templates: [template],
    layouts: { plain: plainLayout },
  });
}

/** Compiles every template, as at start-up, then renders. */
function render(definition: Partial<Definition>, data: Record<string, unknown> = {}) {
  const s = service(definition);
  s.templates.compileAll();
  return { ...s.render('t', data as never), derived: s.templates.compiled('t').textFromTemplate };
}

function templateError(run: () => unknown): TemplateError {
  try {
    run();
  } catch (err) {
    if (isTemplateError(err)) return err;
    throw err;
  }
  throw new Error('expected a TemplateError');
}

const compileError = (definition: Partial<Definition>) =>
  templateError(() => service(definition).templates.compileAll());

/** The opening tag of the first element with `class`. */
function openTag(html: string, cls: string): string {
  return html.match(new RegExp(`<[a-z]+ [^>]*class="[^"]*\\b${cls}\\b[^"]*"[^>]*>`))?.[0] ?? '';
}

const payUrl = 'https://acme.example/pay/INV-42';

describe('@button', () => {
  it.each(LAYOUTS)('looks like a button in %s: brand background, padding, no underline', (_, layout) => {
    const { html, text } = render(
      {
        fields: { payUrl: 'url' },
        layout,
        html: "<p>Your invoice is ready.</p>\n<%~ include('@button', { url: it.payUrl, label: 'Pay $49.00' }) %>",
      },
      { payUrl },
    );
    const link = openTag(html, 'mr-button-link');
    expect(link).toContain(`href="${payUrl}"`);
    expect(link).toMatch(/style="[^"]*background-color: #FF5A00/);
    expect(link).toMatch(/style="[^"]*padding: 13px 28px/);
    expect(link).toMatch(/style="[^"]*text-decoration: none/);
    // The label is chosen for contrast: dark on this orange (5.95:1; white would be 3.12:1).
    expect(link).toMatch(/style="[^"]*color: #111315/);
    // Outlook: the cell's bgcolor and the VML shape carry the colour.
    expect(openTag(html, 'mr-button-cell')).toMatch(/bgcolor="#FF5A00"/);
    expect(html).toContain('fillcolor="#FF5A00"');
    // Both parts without a sentence about a button that might not work.
    expect(html).not.toMatch(/doesn't work|copy this link/i);
    expect(text).toContain(`Your invoice is ready.\n\nPay $49.00:\n${payUrl}`);
    expect(text).not.toMatch(/button/i);
  });

  it.each(LAYOUTS)(
    'takes a tone in %s: danger is white on a dark red, warning dark ink on a yellow',
    (_, layout) => {
      const { html, text } = render(
        {
          fields: { url: 'url' },
          layout,
          html: [
            "<%~ include('@button', { url: it.url, label: 'This was not me', tone: 'danger' }) %>",
            "<%~ include('@button', { url: it.url, label: 'Status page', tone: 'warning' }) %>",
          ].join('\n'),
        },
        { url: payUrl },
      );
      const [danger, warning] = [...html.matchAll(/<a href[^>]*class="mr-button-link"[^>]*>/g)].map(
        (m) => m[0],
      );
      expect(danger).toMatch(/background-color: #CC0022/);
      expect(danger).toMatch(/[; "]color: #FFFFFF/);
      expect(warning).toMatch(/background-color: #FFB000/);
      expect(warning).toMatch(/[; "]color: #111315/);
      expect(html).toContain('class="mr-button mr-button-danger"');
      expect(html).toContain('class="mr-button mr-button-warning"');
      expect(html).toContain('fillcolor="#CC0022"');
      expect(html).toContain('fillcolor="#FFB000"');
      expect(text).toContain(`This was not me:\n${payUrl}`);
    },
  );

  it('refuses a tone it does not have, by name', () => {
    const err = compileError({
      fields: { url: 'url' },
      html: "<%~ include('@button', { url: it.url, label: 'Go', tone: 'info' }) %>",
    });
    expect(err.field).toBe('@button.tone');
    expect(err.message).toMatch(/must be one of 'primary', 'danger', 'warning'/);
  });

  it('keeps its look against a custom layout’s own stylesheet rules for generic class names', () => {
    const s = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      brand: { colors },
      layouts: { plain: plainLayout },
      css: '.button, .button-link, .link { color: #00FF00; background-color: #00FF00; }',
      templates: [
        defineTemplate({
          name: 't',
          fields: { payUrl: 'url' },
          subject: 'S',
          layout: 'plain',
          html: "<%~ include('@button', { url: it.payUrl, label: 'Pay' }) %>",
        }),
      ],
    });
    const { html } = s.render('t', { payUrl });
    // The rule stays in the <style> block for the user's own elements; none of ours take it.
    expect(html.slice(html.indexOf('<body>'))).not.toContain('#00FF00');
    expect(openTag(html, 'mr-button-link')).toMatch(/background-color: #FF5A00/);
  });
});

const script = '<script>alert(1)</script>';

describe.each(LAYOUTS)('components in %s', (_, layout) => {
  /** The text part without what the default layout adds around the body (brand line, footer). */
  const body = (text: string) => (layout === 'default' ? text.split('\n\n').slice(1, -1).join('\n\n') : text);

  it('@panel: a tinted callout with a coloured bar, escaped; title line then text', () => {
    const { html, text, derived } = render(
      {
        fields: { note: 'string' },
        layout,
        html: [
          '<p>Before</p>',
          "<%~ include('@panel', { tone: 'danger', title: 'Card expiring', text: it.note }) %>",
          "<%~ include('@panel', { text: 'No title, info by default.' }) %>",
          '<p>After</p>',
        ].join('\n'),
      },
      { note: `Update it before Friday ${script}` },
    );
    expect(derived).toBe(true);
    const panel = openTag(html, 'mr-panel-danger');
    expect(panel).toContain('class="mr-panel mr-panel-danger"');
    const cell = openTag(html, 'mr-panel-cell');
    expect(cell).toMatch(/bgcolor="#F8F9FA"/);
    expect(cell).toMatch(/border-left: 4px solid #CC0022/);
    expect(html).toContain('class="mr-panel mr-panel-info"');
    // Severity colours (issue 13): info has its own colour, not the brand's primary.
    expect(openTag(html, 'mr-panel-info')).toBeTruthy();
    expect(html).toMatch(/border-left: 4px solid #0077AA/);
    expect(html).not.toMatch(/border-left: 4px solid #FF5A00/);
    expect(html).toContain('Update it before Friday &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain(script);
    expect(body(text)).toBe(
      `Before\n\nCard expiring\nUpdate it before Friday ${script}\n\nNo title, info by default.\n\nAfter`,
    );
  });

  it('@details: label and value columns, escaped; aligned lines in the text part', () => {
    const { html, text, derived } = render(
      {
        fields: { amount: 'string', due: 'string' },
        layout,
        html: [
          '<p>Invoice INV-42</p>',
          "<%~ include('@details', { rows: [{ label: 'Amount due', value: it.amount }, { label: 'Due date', value: it.due }], total: { label: 'Total', value: it.amount } }) %>",
        ].join('\n'),
      },
      { amount: '$12,499.00', due: `12 January 2027 ${script}` },
    );
    expect(derived).toBe(true);
    expect(openTag(html, 'mr-details')).toMatch(/width="100%"/);
    expect(html).toMatch(/class="mr-details-label"[^>]*style="[^"]*color: #697279[^>]*>Amount due<\/td>/);
    expect(html).toMatch(/class="mr-details-value"[^>]*>\$12,499\.00<\/td>/);
    expect(html).toMatch(/class="mr-details-total"/);
    expect(html).toContain('12 January 2027 &lt;script&gt;');
    expect(html).not.toContain(script);
    expect(body(text)).toBe(
      [
        'Invoice INV-42',
        '',
        'Amount due   $12,499.00',
        `Due date     12 January 2027 ${script}`,
        'Total        $12,499.00',
      ].join('\n'),
    );
  });

  it('@details: rows from a loop over data are aligned too, derived or converted per message', () => {
    const loop = [
      '<% const items = [["Widget", it.widget], ["Extended warranty", it.warranty]] %>',
      "<%~ include('@details', { rows: items.map(([label, value]) => ({ label, value })) }) %>",
    ];
    const data = { widget: '$10.00', warranty: '$2.50' };
    const expected = 'Widget              $10.00\nExtended warranty   $2.50';
    const fields = { widget: 'string', warranty: 'string' } as const;
    const derived = render({ fields, layout, html: loop.join('\n') }, data);
    expect(derived.derived).toBe(true);
    expect(body(derived.text)).toBe(expected);
    // Raw output makes the text part a per-message conversion of the HTML: still aligned.
    const converted = render({ fields, layout, html: ['<p><%~ "Hi" %></p>', ...loop].join('\n') }, data);
    expect(converted.derived).toBe(false);
    expect(body(converted.text)).toBe(`Hi\n\n${expected}`);
  });

  it('@code: large, monospace, letter-spaced and selectable; on a line of its own, never wrapped', () => {
    const long = 'ABCD-EFGH IJKL-MNOP QRST-UVWX YZ12-3456 7890-ABCD EFGH-IJKL MNOP-QRST UVWX-YZ12';
    const { html, text } = render(
      {
        fields: { code: 'string', recovery: 'string' },
        layout,
        html: [
          '<p>Your sign-in code:</p>',
          "<%~ include('@code', { code: it.code }) %>",
          "<%~ include('@code', { code: it.recovery }) %>",
          '<p>It expires in 10 minutes.</p>',
        ].join('\n'),
      },
      { code: `493 017${script}`, recovery: long },
    );
    const cell = openTag(html, 'mr-code-cell');
    expect(cell).toMatch(/font-family: Consolas, Menlo, [^;]*monospace/);
    expect(cell).toMatch(/font-size: 28px/);
    expect(cell).toMatch(/letter-spacing: 6px/);
    expect(cell).toMatch(/user-select: all/);
    expect(cell).toMatch(/bgcolor="#F8F9FA"/);
    expect(html).toContain('>493 017&lt;script&gt;alert(1)&lt;/script&gt;</td>');
    expect(body(text)).toBe(`Your sign-in code:\n\n493 017${script}\n\n${long}\n\nIt expires in 10 minutes.`);
  });
});

describe('components composed', () => {
  it('places two components and two buttons in a row, inside an if and a loop, each with its own data', () => {
    const { html, text, derived } = render(
      {
        fields: { urgent: 'boolean', code: 'string', acceptUrl: 'url', declineUrl: 'url' },
        layout: false,
        html: [
          '<% if (it.urgent) { %>',
          "<%~ include('@panel', { tone: 'warning', title: 'Action needed', text: 'Reply by Friday.' }) %>",
          '<% } %>',
          "<%~ include('@code', { code: it.code }) %>",
          "<% for (const [label, url] of [['Accept', it.acceptUrl], ['Decline', it.declineUrl]]) { %><%~ include('@button', { url, label }) %><% } %>",
          "<% for (const n of [1, 2]) { %><%~ include('@details', { rows: [{ label: 'Seat', value: n }, { label: 'Row', value: 'K' }] }) %><% } %>",
        ].join('\n'),
      },
      {
        urgent: true,
        code: '1234',
        acceptUrl: 'https://acme.example/accept',
        declineUrl: 'https://acme.example/decline',
      },
    );
    expect(derived).toBe(true);
    expect(html.indexOf('Action needed')).toBeLessThan(html.indexOf('>1234<'));
    expect(html.indexOf('>Accept</a>')).toBeGreaterThan(html.indexOf('>1234<'));
    expect(html.indexOf('>Decline</a>')).toBeGreaterThan(html.indexOf('>Accept</a>'));
    expect(html.match(/class="mr-details"/g)).toHaveLength(2);
    expect(text).toBe(
      [
        'Action needed',
        'Reply by Friday.',
        '',
        '1234',
        '',
        'Accept:',
        'https://acme.example/accept',
        '',
        'Decline:',
        'https://acme.example/decline',
        '',
        'Seat   1',
        'Row    K',
        '',
        'Seat   2',
        'Row    K',
      ].join('\n'),
    );
  });

  it('reads the same in a text part converted per message as in one derived at compile time', () => {
    const components = [
      "<%~ include('@panel', { tone: 'success', title: 'Paid & done', text: it.note }) %>",
      "<%~ include('@details', { rows: [{ label: 'A & B', value: it.note }, { label: 'Seats', value: 3 }] }) %>",
      "<%~ include('@code', { code: it.note }) %>",
      "<%~ include('@button', { url: 'https://acme.example/x', label: 'Open' }) %>",
    ];
    const data = { note: `${script} & more` };
    const fields = { note: 'string' } as const;
    const derived = render({ fields, layout: false, html: ['<p>Hi</p>', ...components].join('\n') }, data);
    const converted = render(
      { fields, layout: false, html: ['<p><%~ "Hi" %></p>', ...components].join('\n') },
      data,
    );
    expect([derived.derived, converted.derived]).toEqual([true, false]);
    expect(converted.text).toBe(derived.text);
    expect(derived.text).toBe(
      [
        'Hi',
        '',
        'Paid & done',
        `${script} & more`,
        '',
        `A & B   ${script} & more`,
        'Seats   3',
        '',
        `${script} & more`,
        '',
        'Open:',
        'https://acme.example/x',
      ].join('\n'),
    );
  });

  it('leaves out a component whose if does not hold, in both parts', () => {
    const { html, text } = render(
      {
        fields: { urgent: 'boolean' },
        layout: false,
        html: "<% if (it.urgent) { %><%~ include('@panel', { text: 'Urgent' }) %><% } %><p>Hello</p>",
      },
      { urgent: false },
    );
    expect(html).toBe('<p>Hello</p>');
    expect(text).toBe('Hello');
  });
});

describe('component arguments', () => {
  it.each([
    [
      'a tone that is not one',
      "include('@panel', { tone: 'warn', text: 'x' })",
      '@panel.tone',
      /must be one of 'info', 'success', 'warning', 'danger' \(got "warn"\)/,
    ],
    ['a missing text', "include('@panel', { title: 'Heads up' })", '@panel.text', /is required/],
    [
      'a misspelt argument',
      "include('@panel', { text: 'x', titel: 'T' })",
      '@panel.titel',
      /is not an argument of @panel \(tone, title, text\)/,
    ],
    ['no rows', "include('@details', { rows: [] })", '@details.rows', /non-empty array/],
    [
      'a row without its value',
      "include('@details', { rows: [{ label: 'A', value: '1' }, { label: 'B' }] })",
      '@details.rows[1].value',
      /is required/,
    ],
    [
      'a row with a blank label',
      "include('@details', { rows: [{ label: ' ', value: '1' }] })",
      '@details.rows[0].label',
      /must not be empty/,
    ],
    ['a missing code', "include('@code', {})", '@code.code', /is required/],
    [
      'a button without a label',
      "include('@button', { url: 'https://acme.example/' })",
      '@button.label',
      /is required/,
    ],
    [
      'a button to javascript:',
      "include('@button', { url: 'javascript:alert(1)', label: 'Go' })",
      '@button.url',
      /must be an http\(s\) URL/,
    ],
  ])('refuses at compile time %s, naming the argument', (_, call, field, problem) => {
    const err = compileError({ layout: false, html: `<p>x</p>\n<%~ ${call} %>` });
    expect(err.template).toBe('t');
    expect(err.field).toBe(field);
    expect(err.message).toMatch(problem);
    expect(err.message).toContain(`template "t": ${field}: `);
  });

  // Template data is scalars; rows and arguments a template computes are checked when it renders.
  it.each([
    ['a tone from data', "include('@panel', { tone: it.tone, text: 'x' })", { tone: 'warn' }, '@panel.tone'],
    [
      'rows computed empty',
      "include('@details', { rows: it.flag ? [{ label: 'A', value: '1' }] : [] })",
      { flag: false },
      '@details.rows',
    ],
    [
      'a row value left undefined',
      "include('@details', { rows: [{ label: 'Discount', value: it.discount }] })",
      {},
      '@details.rows[0].value',
    ],
    ['a code that is not text', "include('@code', { code: it.flag })", { flag: true }, '@code.code'],
    [
      'a label that is undefined',
      "include('@button', { url: 'https://acme.example/', label: it.discount })",
      {},
      '@button.label',
    ],
    [
      'an argument that is not one',
      "include('@code', { code: '1', [it.key]: 'x' })",
      { key: 'size' },
      '@code.size',
    ],
  ])('refuses at render %s, naming the argument, never printing "undefined"', (_, call, data, field) => {
    const s = service({
      fields: { tone: 'string?', flag: 'boolean?', discount: 'string?', key: 'string?' },
      layout: false,
      html: `<p>x</p>\n<%~ ${call} %>`,
    });
    s.templates.compileAll();
    const err = templateError(() => s.render('t', data as never));
    expect(err.template).toBe('t');
    expect(err.field).toBe(field);
  });
});
