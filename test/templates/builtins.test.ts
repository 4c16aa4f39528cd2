import { describe, expect, it } from 'vitest';
import { EmailService } from '../../src/service.js';
import { formatMinutes } from '../../src/templates/compile.js';
import { memoryTransport } from '../../src/transports/memory.js';

const service = new EmailService({
  transport: memoryTransport(),
  from: 'Acme Support <support@acme.example>',
  appName: 'Acme & Co',
});

describe('built-in emails', () => {
  it('renders 1,000 users with 1,000 correct, distinct links in HTML and text', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const url = `https://acme.example/verify?token=t${i}x&user=${i}`;
      const { subject, html, text } = service.render('verification', {
        username: `User ${i}`,
        verificationUrl: url,
      });
      expect(subject).toBe('Verify your email address for Acme & Co');
      // In HTML the & of the query string is an entity, as it must be inside an attribute.
      const inHtml = url.replace(/&/g, '&amp;');
      expect(html).toContain(`href="${inHtml}"`);
      expect(html).toContain(`Hi User ${i},`);
      expect(text.split('\n')).toContain(url);
      expect(text).toContain(`Hi User ${i},`);
      seen.add(url);
      const links = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
      expect(new Set(links)).toEqual(new Set([inHtml]));
    }
    expect(seen.size).toBe(1000);
  });

  it('gives the button its inline styles and an Outlook (VML) fallback', () => {
    const { html } = service.render('verification', {
      username: 'Jane',
      verificationUrl: 'https://acme.example/v/1',
    });
    const button =
      html.match(/<a href="https:\/\/acme.example\/v\/1" class="mr-button-link"[^>]*>/)?.[0] ?? '';
    expect(button).toMatch(
      /style="[^"]*display: inline-block;[^"]*background|style="[^"]*padding: 13px 28px/,
    );
    expect(button).toContain('color: #FFFFFF');
    expect(html).toMatch(
      /<td align="center" class="mr-button-cell" bgcolor="#007BFF" style="[^"]*background-color: #007BFF/,
    );
    expect(html).toContain('<v:roundrect');
    expect(html).toContain('fillcolor="#007BFF"');
  });

  it('keeps media queries for narrow screens and no <style> rules that were inlined', () => {
    const { html } = service.render('welcome', { username: 'Jane' });
    expect(html).toContain('@media only screen and (max-width: 620px)');
    expect(html).not.toMatch(/\.card \{\s*background-color/);
    expect(html).toMatch(/class="container"[^>]*style="width: 100%; max-width: 600px;"/);
  });

  it('never puts an HTML entity in a subject', () => {
    const names = ['Tom & Jerry', "O'Brien", '<b>Bold</b>', '"Quoted"', 'Zoë 😀'];
    for (const username of names) {
      const { subject } = service.render('welcome', { username });
      expect(subject).toBe(`Welcome to Acme & Co, ${username}!`);
      expect(subject).not.toMatch(/&(amp|lt|gt|quot|#\d+|#x[0-9a-f]+);/i);
    }
  });

  it('escapes HTML in template data', () => {
    const { html, text } = service.render('welcome', { username: '<script>alert(1)</script>' });
    expect(html).not.toContain('<script>');
    expect(html).toContain('Hi &lt;script&gt;alert(1)&lt;/script&gt;,');
    expect(text).toContain('Hi <script>alert(1)</script>,');
  });

  it('writes a text part that reads well: the link on its own line, no CSS or markup', () => {
    const url = 'https://acme.example/reset?token=abc123';
    const { text } = service.render('password-reset', {
      username: 'Jane',
      resetUrl: url,
      expiresInMinutes: 30,
    });
    expect(text.split('\n')).toContain(url);
    expect(text.split(url)).toHaveLength(2);
    expect(text).toContain('This link expires in 30 minutes.');
    expect(text).not.toMatch(/[{}]|<\/?[a-z]|style=|@media|&[a-z]+;/i);
    expect(text).not.toMatch(/\n{3,}/);
    expect(text.startsWith('Acme & Co\n\nHi Jane,')).toBe(true);
  });

  it('carries a hidden preheader for the inbox preview, kept out of the text part', () => {
    const { html, text } = service.render('password-reset', {
      username: 'Jane',
      resetUrl: 'https://acme.example/r',
      expiresInMinutes: 15,
    });
    expect(html).toMatch(
      /<div class="preheader" data-text="skip" style="display: none;[^"]*">Use this link within 15 minutes to choose a new password\./,
    );
    expect(text).not.toContain('Use this link within');
  });

  it('shows the welcome button only when an action URL is given', () => {
    const without = service.render('welcome', { username: 'Jane' });
    const withUrl = service.render('welcome', { username: 'Jane', actionUrl: 'https://acme.example/start' });
    expect(without.html).not.toContain('class="mr-button-link"');
    expect(without.text).not.toContain('https://');
    expect(withUrl.html).toContain('href="https://acme.example/start"');
    expect(withUrl.text.split('\n')).toContain('https://acme.example/start');
  });

  it('brands from config: app name, colours and logo', () => {
    const branded = new EmailService({
      transport: memoryTransport(),
      from: 'Zed <hi@zed.example>',
      brand: { colors: { primary: '#FF5A00' }, logoUrl: 'https://zed.example/logo.png' },
    });
    const { html, subject } = branded.render('verification', {
      username: 'A',
      verificationUrl: 'https://zed.example/v',
    });
    expect(subject).toBe('Verify your email address for Zed');
    expect(html).toContain('bgcolor="#FF5A00"');
    expect(html).not.toContain('#007BFF');
    expect(html).toContain('<img src="https://zed.example/logo.png" alt="Zed"');
    expect(html).toContain('hi@zed.example');
  });

  it('renders the text part from a compiled template, not by converting each message', () => {
    for (const name of ['verification', 'password-reset', 'welcome']) {
      expect(service.templates.compiled(name).textFromTemplate).toBe(true);
    }
  });
});

describe('the text part of each built-in email', () => {
  it.each([
    [
      'verification',
      { username: 'Jane', verificationUrl: 'https://acme.example/v/1' },
      'Verify email address',
    ],
    [
      'password-reset',
      { username: 'Jane', resetUrl: 'https://acme.example/r/1', expiresInMinutes: 30 },
      'Reset password',
    ],
    ['welcome', { username: 'Jane', actionUrl: 'https://acme.example/start' }, 'Get started'],
  ] as const)(
    '%s reads the button as its label and its link, and never mentions a button',
    (name, data, label) => {
      const { text } = service.render(name, data as never);
      const url = Object.values(data).find((v) => typeof v === 'string' && v.startsWith('https:'));
      expect(text).toContain(`\n${label}:\n${url}\n`);
      expect(text).not.toMatch(/button|copy this link/i);
    },
  );
});

describe('formatMinutes', () => {
  it.each([
    [1, '1 minute'],
    [59, '59 minutes'],
    [60, '1 hour'],
    [61, '1 hour 1 minute'],
    [90, '1 hour 30 minutes'],
    [120, '2 hours'],
    [1440, '1 day'],
    [1500, '1 day 1 hour'],
    [10_080, '7 days'],
  ])('says %i minutes as "%s"', (minutes, words) => {
    expect(formatMinutes(minutes)).toBe(words);
  });
});
