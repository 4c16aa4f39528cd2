import { describe, expect, it } from 'vitest';
import { type ConfigError, isConfigError } from '../../src/errors.js';
import { EmailService } from '../../src/service.js';
import type { BrandOptions } from '../../src/templates/brand.js';
import { formatMinutes } from '../../src/templates/compile.js';
import { defineTemplate } from '../../src/templates/define.js';
import { extractLink } from '../../src/testing/index.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';

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
      /<td align="center" class="mr-button-cell" bgcolor="#0B5ED7" style="[^"]*background-color: #0B5ED7/,
    );
    expect(html).toContain('<v:roundrect');
    expect(html).toContain('fillcolor="#0B5ED7"');
  });

  it('keeps media queries for narrow screens and no <style> rules that were inlined', () => {
    const { html } = service.render('welcome', { username: 'Jane' });
    expect(html).toContain('@media only screen and (max-width: 620px)');
    // The light card rule was inlined; only dark mode's repeats the selector.
    expect(html).not.toMatch(/\.card \{\s*background-color: #FFFFFF/);
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
    expect(text.startsWith('Acme & Co\n\nReset your password\n\nHi Jane,')).toBe(true);
  });

  it('carries a hidden preheader for the inbox preview, kept out of the text part', () => {
    const { html, text } = service.render('password-reset', {
      username: 'Jane',
      resetUrl: 'https://acme.example/r',
      expiresInMinutes: 15,
    });
    const style = html.match(
      /<div class="preheader" data-text="skip" style="([^"]*)">Use this link within 15 minutes/,
    )?.[1];
    expect(style).toContain('display: none;');
    expect(style).toContain('mso-hide: all;');
    expect(style).toContain('max-height: 0;');
    // Hidden without the spam filters' tricks: no colour matched to the page, no 1px text.
    expect(style).not.toMatch(/color|font-size|line-height|opacity/);
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
    expect(html).not.toContain('#0B5ED7');
    expect(html).toContain('<img src="https://zed.example/logo.png" alt="Zed"');
  });

  it('renders the text part from a compiled template, not by converting each message', () => {
    for (const [name] of BUILTINS) {
      expect(service.templates.compiled(name).textFromTemplate).toBe(true);
    }
  });
});

/** Each built-in: its name, data, headline (as HTML) and button label. */
const BUILTINS = [
  [
    'verification',
    { username: 'Jane', verificationUrl: 'https://acme.example/v/1' },
    'Confirm your email address',
    'Verify email address',
  ],
  [
    'password-reset',
    { username: 'Jane', resetUrl: 'https://acme.example/r/1', expiresInMinutes: 30 },
    'Reset your password',
    'Reset password',
  ],
  [
    'welcome',
    { username: 'Jane', actionUrl: 'https://acme.example/start' },
    'Welcome to Acme &amp; Co',
    'Get started',
  ],
  [
    'security-alert',
    {
      username: 'Jane',
      event: 'sign-in',
      occurredAt: '2026-12-08T02:00:00Z',
      device: 'Firefox on Windows',
      secureAccountUrl: 'https://acme.example/security',
    },
    'New sign-in to your account',
    "This wasn't me",
  ],
  [
    'product-update',
    {
      username: 'Jane',
      headline: 'Shared workspaces are here',
      summary: 'Invite your team.',
      actionUrl: 'https://acme.example/new',
    },
    'Shared workspaces are here',
    "See what's new",
  ],
  [
    'reminder',
    {
      username: 'Jane',
      task: 'Finish setting up your profile',
      actionUrl: 'https://acme.example/profile',
    },
    'Finish setting up your profile',
    'Continue',
  ],
  [
    'order-confirmation',
    {
      username: 'Jane',
      reference: 'A-1042',
      items: [{ label: 'Desk lamp', value: '$89.00' }],
      total: '$89.00',
      orderUrl: 'https://acme.example/orders/A-1042',
    },
    'Thanks for your order',
    'View your order',
  ],
  [
    'maintenance-notice',
    {
      username: 'Jane',
      startsAt: '2026-12-08T02:00:00Z',
      endsAt: '2026-12-08T04:00:00Z',
      affected: 'Sign-in may be unavailable.',
      statusUrl: 'https://status.acme.example',
    },
    'Scheduled maintenance',
    'View status page',
  ],
] as const;

describe('the text part of each built-in email', () => {
  it.each(BUILTINS)(
    '%s reads the button as its label and its link, and never mentions a button',
    (name, data, _headline, label) => {
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

const branded = (brand: BrandOptions) =>
  new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', brand });

describe('the greeting is something a template asks for', () => {
  it('adds no greeting to a template of yours that has a username field', () => {
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      templates: [
        defineTemplate({
          name: 'digest',
          fields: { username: 'string' },
          subject: 'Your digest',
          html: '<p>Good morning <%= it.username %>, here is your week.</p>',
        }),
      ],
    });
    const { html, text } = mail.render('digest', { username: 'Jane' });
    expect(html).not.toContain('Hi Jane');
    expect(text).not.toContain('Hi Jane');
    expect(html.match(/Jane/g)).toHaveLength(1);
  });

  it('greets by name with @greeting, and says "Hello," when it has no name', () => {
    const mail = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      templates: [
        defineTemplate({
          name: 'note',
          fields: { username: 'string?' },
          subject: 'A note',
          html: "<%~ include('@greeting', { name: it.username }) %>\n<p>Body.</p>",
        }),
      ],
    });
    expect(mail.render('note', { username: 'Jane' }).text).toContain('Hi Jane,\n\nBody.');
    expect(mail.render('note', {}).text).toContain('Hello,\n\nBody.');
    expect(mail.render('note', {}).html).toMatch(/<p class="greeting"[^>]*>Hello,<\/p>/);
  });

  it.each(BUILTINS)('%s has one headline, then one quiet greeting', (name, data, headline) => {
    const { html, text } = service.render(name, data as never);
    expect(html.match(/<h1\b/g)).toHaveLength(1);
    expect(html).toMatch(new RegExp(`<h1[^>]*>${headline}</h1>`));
    expect(html.match(/Hi Jane,/g)).toHaveLength(1);
    expect(text.match(/Hi Jane,/g)).toHaveLength(1);
    expect(html.indexOf('<h1')).toBeLessThan(html.indexOf('Hi Jane,'));
    const greeting = html.match(/<p class="greeting"[^>]*>/)?.[0] ?? '';
    expect(greeting).not.toMatch(/font-weight|font-size/);
  });
});

describe('the footer', () => {
  it("names the company, its address and a support link, and never the sender's address", () => {
    const mail = branded({
      company: 'Acme Inc.',
      url: 'https://acme.example',
      address: '1 Main Street, Springfield, CA 94000, USA',
      supportUrl: 'https://acme.example/help',
    });
    for (const [name, data] of BUILTINS) {
      const { html, text } = mail.render(name, data as never);
      const footer = html.slice(html.indexOf('class="footer"'));
      expect(footer).toMatch(
        /&copy; \d{4} <a href="https:\/\/acme.example" class="footer-link"[^>]*>Acme Inc\.<\/a>/,
      );
      expect(footer).toContain('1 Main Street, Springfield, CA 94000, USA');
      expect(footer).toMatch(
        /<a href="https:\/\/acme.example\/help" class="footer-link"[^>]*>Contact support<\/a>/,
      );
      expect(html).not.toContain('no-reply@acme.example');
      expect(text).not.toContain('no-reply@acme.example');
      expect(text).toContain('1 Main Street, Springfield, CA 94000, USA');
      // The footer's links come after the email's own: the link a test clicks is still the action.
      expect(extractLink({ html, text })).toBe(
        Object.values(data).find((v) => String(v).startsWith('https:')),
      );
    }
  });

  it('links a support address when there is no support page, and names the app when no company is given', () => {
    const { html } = branded({ supportEmail: 'help@acme.example' }).render('welcome', { username: 'Jane' });
    expect(html).toMatch(
      /<a href="mailto:help@acme.example" class="footer-link"[^>]*>help@acme.example<\/a>/,
    );
    expect(html).toMatch(/&copy; \d{4} Acme<\/p>/);
    expect(html).not.toContain('no-reply@acme.example');
  });
});

describe('the verification email', () => {
  it('says when its link expires only when given expiresInMinutes', () => {
    const data = { username: 'Jane', verificationUrl: 'https://acme.example/v/1' };
    const timed = service.render('verification', { ...data, expiresInMinutes: 1440 });
    expect(timed.html).toContain('This link expires in 1 day.');
    expect(timed.text).toContain('This link expires in 1 day.');
    const open = service.render('verification', data);
    expect(open.html).not.toContain('expires');
    expect(open.text).not.toContain('expires');
  });

  it('takes expiresInMinutes in sendVerificationEmail', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
    await mail.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/v/1',
      expiresInMinutes: 90,
    });
    expect(transport.outbox[0]?.message.text).toContain('This link expires in 1 hour 30 minutes.');
  });
});

describe('dark mode', () => {
  /** The CSS of every `<style>` block in the head. */
  const headStyles = (html: string) =>
    [...(html.match(/<head>([\s\S]*?)<\/head>/)?.[1] ?? '').matchAll(/<style>([\s\S]*?)<\/style>/g)]
      .map((m) => m[1])
      .join('\n');

  it('declares light and dark, and keeps the dark rules for Apple Mail and Outlook.com in the head', () => {
    const mail = branded({ darkColors: { background: '#0A0B0C', primary: '#66B2FF' } });
    const { html } = mail.render('verification', {
      username: 'Jane',
      verificationUrl: 'https://acme.example/v',
    });
    expect(html).toContain('<meta name="color-scheme" content="light dark">');
    expect(html).toContain('<meta name="supported-color-schemes" content="light dark">');
    const css = headStyles(html);
    expect(css).toMatch(/:root \{ color-scheme: light dark;/);
    const dark = css.slice(css.indexOf('@media (prefers-color-scheme: dark)'));
    expect(css).toContain('@media (prefers-color-scheme: dark)');
    expect(dark).toMatch(/\.wrapper \{\s*background-color: #0A0B0C !important;/);
    expect(dark).toMatch(/\.mr-button-cell,\s*\.mr-button-link \{\s*background-color: #66B2FF !important;/);
    expect(css).toMatch(/\[data-ogsc\] \.card,[\s\S]*?\{\s*color: #E6E8EB !important;/);
    expect(css).toMatch(/\[data-ogsb\] \.card \{\s*background-color: #1B1E22 !important;/);
    // A light blue button in dark mode takes the dark label.
    expect(dark).toMatch(/\.mr-button-link \{\s*color: #111315 !important;/);
    expect(css).toMatch(/\[data-ogsc\] \.mr-button-link \{\s*color: #111315 !important;/);
    // The light look is still what is inlined.
    expect(html).toMatch(/class="card" style="background-color: #FFFFFF;/);
  });

  it('uses the light primary colour in dark mode unless a dark one is given', () => {
    const { html } = branded({ colors: { primary: '#F50' } }).render('welcome', { username: 'Jane' });
    expect(headStyles(html)).toMatch(
      /\.mr-button-cell,\s*\.mr-button-link \{\s*background-color: #FF5500 !important;/,
    );
  });
});

describe('brand options are checked when the service is built', () => {
  const configError = (brand: unknown): ConfigError =>
    thrown(() => branded(brand as BrandOptions), isConfigError, 'a ConfigError');

  it.each([
    [{ colors: { primary: 'red' } }, 'brand.colors.primary'],
    [{ colors: { primary: '#12345' } }, 'brand.colors.primary'],
    [{ colors: { text: '#000; } body { display: none' } }, 'brand.colors.text'],
    [{ colors: { background: 42 } }, 'brand.colors.background'],
    [{ darkColors: { surface: 'url(https://evil.example/x.png)' } }, 'brand.darkColors.surface'],
    [{ colors: { primry: '#FF5A00' } }, 'brand.colors.primry'],
    [{ logoUrl: 'javascript:alert(1)' }, 'brand.logoUrl'],
    [{ supportUrl: 'ftp://acme.example/help' }, 'brand.supportUrl'],
    [{ supportEmail: 'help' }, 'brand.supportEmail'],
    [{ address: '1 Main St\r\nBcc: x@evil.example' }, 'brand.address'],
    [{ company: '   ' }, 'brand.company'],
    [{ colours: { primary: '#FFF' } }, 'brand.colours'],
  ])('refuses %j with a ConfigError naming %s', (brand, option) => {
    expect(configError(brand).option).toBe(option);
  });

  it('says what a colour must look like, and suggests the option meant', () => {
    expect(configError({ colors: { primary: 'red' } }).message).toMatch(/hex colour such as #1A2B3C or #ABC/);
    expect(configError({ colors: { primry: '#FFF' } }).message).toMatch(/did you mean primary\?/);
  });

  it('takes #RGB and #rrggbb, written as #RRGGBB', () => {
    const mail = branded({ colors: { primary: '#f50', text: '#1a2b3c' } });
    expect(mail.app.colors).toMatchObject({ primary: '#FF5500', text: '#1A2B3C' });
  });
});
