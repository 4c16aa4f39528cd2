/**
 * CSS a template cannot have inlined at compile time still reaches the email, and a preheader
 * with nowhere to go is an error: what a user writes is what the recipient gets.
 */
import type { Browser, Locator } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTemplateError, type TemplateError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import { defineTemplate, type TemplateDefinition } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { launchChromium } from '../helpers/chromium.js';
import { thrown } from '../helpers/thrown.js';

type Definition = TemplateDefinition<Record<string, 'string' | 'boolean' | 'string?'>>;
const service = (templates: Definition[], layouts?: Record<string, string>) =>
  new EmailService({
    transport: memoryTransport(),
    from: 'Acme <no-reply@acme.example>',
    templates: templates.map((t) => defineTemplate(t)),
    ...(layouts ? { layouts } : {}),
  });

/** The CSS of every `<style>` block in the head of a rendered email. */
function headStyles(html: string): string {
  const head = html.match(/<head>([\s\S]*?)<\/head>/)?.[1] ?? '';
  return [...head.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]).join('\n');
}
/** The style attribute of the first element with `class="…"` exactly. */
function inlineStyle(html: string, className: string): string {
  const tag = html.match(new RegExp(`<[a-z]+[^>]*class="${className}"[^>]*>`))?.[0] ?? '';
  return tag.match(/style="([^"]*)"/)?.[1] ?? '';
}
/** CSS without whitespace, so `.a { b: c; }` and `.a{b:c}` compare alike. */
const squeeze = (css: string) => css.replace(/\s+/g, '').replace(/;}/g, '}');

const templateError = (fn: () => unknown): TemplateError => thrown(fn, isTemplateError, 'a TemplateError');

const ALERT: Definition = {
  name: 'alert',
  fields: { level: 'string' },
  subject: 'Alert',
  html: '<p class="alert <%= it.level %>">Something happened.</p>',
  css: '.alert { padding: 8px; } .alert.error { background-color: #dc3545; }',
};
const URGENT: Definition = {
  name: 'urgent',
  fields: { urgent: 'boolean' },
  subject: 'Notice',
  html: '<p <% if (it.urgent) { %>class="urgent"<% } %>>Read me now.</p>',
  css: '.urgent { font-weight: bold; }',
};

describe('CSS that cannot be inlined at compile time', () => {
  it('keeps a rule for a class chosen by data in the head, and inlines the rest', () => {
    const { html } = service([ALERT]).render('alert', { level: 'error' });
    expect(html).toContain('<p class="alert error"');
    expect(squeeze(headStyles(html))).toContain('.alert.error{background-color:#dc3545}');
    const p = html.match(/<p class="alert error"[^>]*>/)?.[0] ?? '';
    expect(p).toContain('padding: 8px');
    expect(p).not.toContain('background-color');
  });

  it('keeps a rule for a class set under a condition in the head, not inlined everywhere', () => {
    const mail = service([URGENT]);
    const urgent = mail.render('urgent', { urgent: true }).html;
    expect(urgent).toContain('<p class="urgent"');
    expect(squeeze(headStyles(urgent))).toContain('.urgent{font-weight:bold}');
    const calm = mail.render('urgent', { urgent: false }).html;
    const p = calm.match(/<p[^>]*>Read me now/)?.[0] ?? '';
    expect(p).not.toContain('class="urgent"');
    expect(p).not.toContain('font-weight');
  });

  it.each([
    ['a selector on an attribute a mail client adds', '[data-ogsc] .card { color: #ffffff; }'],
    ['a pseudo-class', 'a:hover { color: #0056b3; }'],
    ['a pseudo-class on a focused link', 'a:focus { outline: 2px solid #0056b3; }'],
    ['an @media block', '@media (prefers-color-scheme: dark) { .card { background-color: #111111; } }'],
    [
      'an @font-face block',
      '@font-face { font-family: Brand; src: url(https://cdn.acme.example/brand.woff2); }',
    ],
    ['an @supports block', '@supports (display: grid) { .card { display: grid; } }'],
    ['an @keyframes block', '@keyframes pulse { from { opacity: 1; } to { opacity: 0.5; } }'],
  ])('keeps %s in a <style> block in the head', (_, css) => {
    const mail = service([
      { name: 'kept', fields: {}, subject: 'S', html: '<p><a href="https://acme.example">Acme</a></p>', css },
    ]);
    const { html } = mail.render('kept', {});
    expect(squeeze(headStyles(html))).toContain(squeeze(css));
  });

  it('does not repeat in the head a rule it inlined, and keeps the selectors of a rule that matched nothing', () => {
    const mail = service([
      {
        name: 'note',
        fields: {},
        subject: 'S',
        html: '<p class="note">Hi</p>',
        css: '.note, .later { color: #123456; } .note { letter-spacing: 1px; }',
      },
    ]);
    const { html } = mail.render('note', {});
    expect(inlineStyle(html, 'note')).toContain('color: #123456; letter-spacing: 1px;');
    const kept = squeeze(headStyles(html));
    expect(kept).toContain('.later{color:#123456}');
    expect(kept).not.toContain('.note');
    expect(kept).not.toContain('letter-spacing');
  });

  it('keeps unmatched rules for a template without a layout, in its own head', () => {
    const mail = service([
      {
        name: 'bare',
        fields: { level: 'string' },
        subject: 'S',
        layout: false,
        html: '<!DOCTYPE html><html><head><title>T</title></head><body><p class="alert <%= it.level %>">Hi</p></body></html>',
        css: '.alert.error { color: #dc3545; }',
      },
    ]);
    const { html } = mail.render('bare', { level: 'error' });
    expect(squeeze(headStyles(html))).toContain('.alert.error{color:#dc3545}');
  });

  it('refuses CSS that would close its <style> block, naming the template', () => {
    const mail = service([
      { name: 'breakout', fields: {}, subject: 'S', html: '<p>Hi</p>', css: '</style><script>1</script>' },
    ]);
    const err = templateError(() => mail.templates.compileAll());
    expect(err.template).toBe('breakout');
    expect(err.message).toMatch(/<\/style/);
  });
});

/** A property of the style Chromium computed for an element (the tests have no DOM types). */
type Computed = { getComputedStyle(el: unknown): Record<string, string> };
const computed = (locator: Locator, property: string) =>
  locator.evaluate((el, prop) => (globalThis as unknown as Computed).getComputedStyle(el)[prop], property);

describe('kept CSS in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium('the kept-CSS test');
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('applies the kept rules in headless Chromium', async () => {
    const page = await browser.newPage({ javaScriptEnabled: false });
    const mail = service([ALERT, URGENT]);
    await page.setContent(mail.render('alert', { level: 'error' }).html);
    expect(await computed(page.locator('p.alert'), 'backgroundColor')).toBe('rgb(220, 53, 69)');
    await page.setContent(mail.render('urgent', { urgent: true }).html);
    expect(await computed(page.locator('p.urgent'), 'fontWeight')).toBe('700');
  });

  it('lets a kept rule marked !important beat the property its base class inlined', async () => {
    const page = await browser.newPage({ javaScriptEnabled: false });
    const mail = service([
      {
        ...ALERT,
        css: '.alert { background-color: #eeeeee; } .alert.error { background-color: #dc3545 !important; }',
      },
    ]);
    const { html } = mail.render('alert', { level: 'error' });
    expect(html).toMatch(/<p class="alert error" style="[^"]*background-color: #eeeeee/);
    await page.setContent(html);
    expect(await computed(page.locator('p.alert'), 'backgroundColor')).toBe('rgb(220, 53, 69)');
  });
});

describe('a preheader and its layout', () => {
  const WITH_PREHEADER: Definition = {
    name: 'digest',
    fields: {},
    subject: 'Your digest',
    html: '<p>Three new things.</p>',
    preheader: 'Three new things since Monday',
    layout: 'plain',
  };

  it('is a compile-time error naming the template and the layout when the layout has no slot', () => {
    const mail = service([WITH_PREHEADER], { plain: '<div><%~ it.body %></div>' });
    const err = templateError(() => mail.templates.compileAll());
    expect(err.template).toBe('digest');
    expect(err.message).toContain('layout "plain"');
    expect(err.message).toContain('<%~ it.preheader %>');
  });

  it('is placed where a custom layout has the slot', () => {
    const mail = service([WITH_PREHEADER], {
      plain: '<div class="pre"><%~it.preheader%></div><div><%~ it.body %></div>',
    });
    expect(mail.render('digest', {}).html).toContain('<div class="pre">Three new things since Monday</div>');
  });

  it('is placed in the default layout', () => {
    const mail = service([{ ...WITH_PREHEADER, layout: 'default' }]);
    expect(mail.render('digest', {}).html).toContain('Three new things since Monday');
  });

  it('is no error on a layout without the slot when the template has no preheader', () => {
    const { preheader: _, ...noPreheader } = WITH_PREHEADER;
    const mail = service([noPreheader], { plain: '<div><%~ it.body %></div>' });
    expect(mail.render('digest', {}).html).toContain('Three new things.');
  });

  it('names the layout when it has no body slot, rather than sending an empty email', () => {
    const { preheader: _, ...noPreheader } = WITH_PREHEADER;
    const mail = service([noPreheader], { plain: '<div>nothing here</div>' });
    const err = templateError(() => mail.templates.compileAll());
    expect(err.template).toBe('digest');
    expect(err.message).toContain('layout "plain" must contain <%~ it.body %> once');
  });
});
