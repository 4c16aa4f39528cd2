/**
 * Every email in the reader's language: the shipped catalogs are complete and valid, the built-ins
 * render in each locale (words, plurals, dates, lang/dir, subject, preheader and text part), the
 * fallback chain, and users' own translations over ours.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IntlMessageFormat } from 'intl-messageformat';
import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../src/config.js';
import { isConfigError, isMessageError, isTemplateError } from '../../src/errors.js';
import { canonicalLocale, localeChain, textDirection } from '../../src/locale.js';
import { EmailService } from '../../src/service.js';
import { formatMinutes } from '../../src/templates/compile.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { thrown } from '../helpers/thrown.js';

const localesDir = fileURLToPath(new URL('../../templates/locales/', import.meta.url));
const SHIPPED = ['ar', 'de', 'en', 'es', 'fr', 'pt-BR'];

function flat(catalog: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(catalog)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'string') out[path] = value;
    else Object.assign(out, flat(value as Record<string, unknown>, path));
  }
  return out;
}
const catalogs = Object.fromEntries(
  readdirSync(localesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.slice(0, -5), flat(JSON.parse(readFileSync(join(localesDir, f), 'utf8')))]),
);

/** The argument names of an ICU message, and whether it has plural/select branches, recursively. */
function placeholders(message: string): string[] {
  const names = new Set<string>();
  type Ast = ReturnType<IntlMessageFormat['getAst']>;
  const walk = (elements: Ast) => {
    for (const el of elements) {
      // Type 0 is literal text; the others with a string value name an argument.
      if (el.type !== 0 && 'value' in el && typeof el.value === 'string') names.add(el.value);
      if ('options' in el) for (const option of Object.values(el.options)) walk(option.value as Ast);
    }
  };
  walk(new IntlMessageFormat(message, 'en', undefined, { ignoreTag: true }).getAst());
  return [...names].sort();
}

const mail = new EmailService({
  transport: memoryTransport(),
  from: 'Acme <no-reply@acme.example>',
  brand: { supportUrl: 'https://acme.example/help' },
});
const reset = (expiresInMinutes: number) => ({
  username: 'Jane',
  resetUrl: 'https://acme.example/reset?t=1',
  expiresInMinutes,
});

describe('shipped catalogs', () => {
  it('ship English, German, French, Spanish, Brazilian Portuguese and Arabic', () => {
    expect(Object.keys(catalogs).sort()).toEqual(SHIPPED);
  });

  it.each(SHIPPED.filter((l) => l !== 'en'))('%s has every English key and no other', (locale) => {
    expect(Object.keys(catalogs[locale]!).sort()).toEqual(Object.keys(catalogs.en!).sort());
  });

  it.each(SHIPPED)('%s: every message is valid ICU with the same placeholders as English', (locale) => {
    for (const [key, message] of Object.entries(catalogs[locale]!)) {
      const english = catalogs.en![key];
      if (english === undefined) continue;
      expect({ key, names: placeholders(message) }).toEqual({ key, names: placeholders(english) });
    }
  });
});

describe('locales', () => {
  it('canonicalises BCP 47 tags and refuses what is not one', () => {
    expect(canonicalLocale('pt-br')).toEqual({ locale: 'pt-BR' });
    expect(canonicalLocale('EN')).toEqual({ locale: 'en' });
    for (const bad of ['en_US', 'english!', '', 42, 'x'])
      expect(canonicalLocale(bad)).toHaveProperty('problem');
  });

  it('falls back pt-BR → pt → en', () => {
    expect(localeChain('pt-BR')).toEqual(['pt-BR', 'pt', 'en']);
    expect(localeChain('zh-Hant-TW')).toEqual(['zh-Hant-TW', 'zh-Hant', 'zh', 'en']);
    expect(localeChain('en-GB')).toEqual(['en-GB', 'en']);
  });

  it('knows which languages are written right to left', () => {
    expect(['ar', 'he', 'fa', 'ur', 'ar-EG'].map(textDirection)).toEqual(['rtl', 'rtl', 'rtl', 'rtl', 'rtl']);
    expect(['en', 'de', 'fr', 'es', 'pt-BR', 'ja'].map(textDirection)).toEqual(Array(6).fill('ltr'));
  });
});

describe('built-ins in every shipped locale', () => {
  const plural: Record<string, [string, string]> = {
    en: ['This link expires in 1 hour.', 'This link expires in 2 hours.'],
    de: ['Dieser Link ist 1 Stunde lang gültig.', 'Dieser Link ist 2 Stunden lang gültig.'],
    fr: ['Ce lien expire dans 1 heure.', 'Ce lien expire dans 2 heures.'],
    es: ['Este enlace caduca en 1 hora.', 'Este enlace caduca en 2 horas.'],
    'pt-BR': ['Este link expira em 1 hora.', 'Este link expira em 2 horas.'],
    ar: ['مدة صلاحية هذا الرابط: ساعة.', 'مدة صلاحية هذا الرابط: ساعتان.'],
  };
  it.each(Object.entries(plural))('%s says "expires in 1 hour" and "2 hours" right', (locale, [one, two]) => {
    // CLDR puts a no-break space between number and unit in some languages (French).
    const spaced = (email: { text: string; html: string }) => ({
      text: email.text.replace(/[\u00a0\u202f]/g, ' '),
      html: email.html.replace(/[\u00a0\u202f]/g, ' '),
    });
    const render = (minutes: number) =>
      spaced(
        mail.render(
          'verification',
          { username: 'Jane', verificationUrl: 'https://acme.example/v', expiresInMinutes: minutes },
          { locale },
        ),
      );
    expect(render(60).text).toContain(one);
    expect(render(120).text).toContain(two);
    expect(render(120).html).toContain(two);
  });

  it('writes durations with the language’s own plural forms', () => {
    expect(formatMinutes(90, 'en')).toBe('1 hour 30 minutes');
    expect(formatMinutes(1500, 'de')).toBe('1 Tag, 1 Stunde');
    expect(formatMinutes(5, 'ar')).toBe('5 دقائق');
    expect(formatMinutes(11, 'ar')).toBe('11 دقيقة');
    expect(formatMinutes(2, 'fr')).toBe('2 minutes');
  });

  it.each(SHIPPED)('%s: subject, preheader, HTML and text part are in the locale', (locale) => {
    const { subject, html, text } = mail.render('password-reset', reset(30), { locale });
    const words = catalogs[locale]!;
    const app = 'Acme';
    expect(subject).toBe(words['password-reset.subject']!.replace('{app}', app));
    const preheader = words['password-reset.preheader']!.replace('{duration}', formatMinutes(30, locale));
    expect(html).toContain(escapeHtml(preheader));
    expect(html).toContain(escapeHtml(words['password-reset.heading']!));
    expect(text).toContain(words['password-reset.heading']!);
    expect(text).toContain(words['password-reset.button']!);
    expect(text).toContain(words['layout.contact-support']!);
    expect(html).toContain(`lang="${locale}"`);
  });

  it.each(SHIPPED)('%s: a link’s label in the text part ends in the language’s colon', (locale) => {
    const { text } = mail.render('password-reset', reset(30), { locale });
    const label = catalogs[locale]!['password-reset.button']!;
    // French sets a no-break space before a colon; the others none. The mark never shows.
    expect(text).toContain(`${label}${locale === 'fr' ? '\u00a0:' : ':'}\nhttps://acme.example/`);
    expect(text).not.toContain('\u2063');
  });

  it('writes the colon of a French label the same way in an HTML-only template of yours', () => {
    const own = defineTemplate({
      name: 'raw-button',
      fields: { url: 'url' },
      subject: 'x',
      // Raw output: no text template is derived, the text is converted per message.
      html: '<p><%~ "" %><span data-text="button"><a href="<%= it.url %>">Ouvrir</a></span></p>',
    });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      templates: [own],
    });
    const fr = service.render('raw-button', { url: 'https://acme.example/x' }, { locale: 'fr' }).text;
    const en = service.render('raw-button', { url: 'https://acme.example/x' }, { locale: 'en' }).text;
    expect(fr).toContain('\nOuvrir\u00a0:\nhttps://acme.example/x\n');
    expect(en).toContain('\nOuvrir:\nhttps://acme.example/x\n');
    expect(fr + en).not.toContain('\u2063');
  });

  it('sets dir=rtl for Arabic and no dir for the others', () => {
    expect(mail.render('welcome', { username: 'Jane' }, { locale: 'ar' }).html).toMatch(
      /<html lang="ar"\s+dir=rtl /,
    );
    for (const locale of SHIPPED.filter((l) => l !== 'ar')) {
      const head = mail.render('welcome', { username: 'Jane' }, { locale }).html.split('\n')[1]!;
      expect(head).toMatch(new RegExp(`^<html lang="${locale}"`));
      expect(head).not.toContain('dir=');
    }
  });

  it('writes dates in the locale, in the reader’s time zone', () => {
    const data = {
      username: 'Jane',
      event: 'sign-in' as const,
      occurredAt: '2026-12-08T02:00:00Z',
      timeZone: 'Europe/Berlin',
      device: 'Firefox',
      secureAccountUrl: 'https://acme.example/secure',
    };
    expect(mail.render('security-alert', data).text).toContain('Tuesday, 8 December 2026, 03:00 (CET)');
    expect(mail.render('security-alert', data, { locale: 'de' }).text).toContain(
      'Dienstag, 8. Dezember 2026 um 03:00 MEZ',
    );
    expect(mail.render('security-alert', data, { locale: 'fr' }).subject).toBe(
      'Nouvelle connexion à votre compte Acme',
    );
    expect(
      mail.render('security-alert', { ...data, event: 'password-changed' }, { locale: 'es' }).subject,
    ).toBe('Se ha cambiado su contraseña de Acme');
  });

  it('takes the service’s default locale, and a send’s own over it', () => {
    const german = new EmailService({ transport: memoryTransport(), from: 'a@acme.example', locale: 'de' });
    expect(german.locale).toBe('de');
    expect(german.render('welcome', { username: 'Jane' }).subject).toBe('Willkommen bei Mailroom, Jane!');
    expect(german.render('welcome', { username: 'Jane' }, { locale: 'es' }).subject).toBe(
      '¡Le damos la bienvenida a Mailroom, Jane!',
    );
  });

  it('sends in the locale, with Content-Language', async () => {
    const transport = memoryTransport();
    const service = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
    await service.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', locale: 'pt-br' });
    await service.send({ to: 'jane@example.com', subject: 'Hallo', text: 'Hallo', locale: 'de-AT' });
    const [welcome, plain] = transport.outbox;
    expect(welcome?.message.subject).toBe('Boas-vindas ao Acme, Jane!');
    expect(welcome?.message.headers['Content-Language']).toBe('pt-BR');
    expect(welcome?.message.locale).toBe('pt-BR');
    expect(plain?.message.headers['Content-Language']).toBe('de-AT');
  });

  it('sends a batch with each recipient in their own language', async () => {
    const transport = memoryTransport();
    const service = new EmailService({ transport, from: 'Acme <no-reply@acme.example>', locale: 'fr' });
    const result = await service.sendBatch('welcome', [
      { to: 'jana@example.com', data: { username: 'Jana' }, locale: 'de' },
      { to: 'amal@example.com', data: { username: 'Amal' }, locale: 'ar' },
      { to: 'zoe@example.com', data: { username: 'Zoé' } },
    ]);
    expect(result.outcomes.map((o) => o.status)).toEqual(['sent', 'sent', 'sent']);
    const subjects = Object.fromEntries(
      transport.outbox.map((m) => [m.message.to[0]?.address, m.message.subject]),
    );
    expect(subjects).toEqual({
      'jana@example.com': 'Willkommen bei Acme, Jana!',
      'amal@example.com': 'مرحبًا بك في Acme يا Amal!',
      'zoe@example.com': 'Bienvenue sur Acme, Zoé\u00a0!',
    });
  });

  it('refuses a malformed tag, naming locale', async () => {
    const error = await mail
      .sendTemplate('welcome', { to: 'jane@example.com', data: { username: 'Jane' }, locale: 'en_US' })
      .catch((e: unknown) => e);
    expect(isMessageError(error) && error.field).toBe('locale');
    expect(
      thrown(
        () => mail.render('welcome', { username: 'J' }, { locale: '' }),
        isMessageError,
        'a MessageError',
      ).field,
    ).toBe('locale');
    expect(
      thrown(
        () => new EmailService({ transport: memoryTransport(), from: 'a@acme.example', locale: 'deutsch!' }),
        isConfigError,
        'a ConfigError',
      ).option,
    ).toBe('locale');
    const env = { MAILROOM_TRANSPORT: 'memory', SMTP_FROM_EMAIL: 'a@acme.example' };
    expect(
      thrown(() => configFromEnv({ ...env, MAILROOM_LOCALE: 'en_GB' }), isConfigError, 'a ConfigError')
        .option,
    ).toBe('MAILROOM_LOCALE');
    expect(configFromEnv({ ...env, MAILROOM_LOCALE: 'pt-br' }).locale).toBe('pt-BR');
  });
});

describe('your translations', () => {
  it('override one of our strings in one language, the rest stays ours', () => {
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      messages: { de: { verification: { heading: 'Nur noch ein Klick' } } },
    });
    const data = { username: 'Jane', verificationUrl: 'https://acme.example/v' };
    const german = service.render('verification', data, { locale: 'de' });
    expect(german.text).toContain('Nur noch ein Klick');
    expect(german.text).not.toContain('Bestätigen Sie Ihre E-Mail-Adresse\n');
    expect(german.subject).toBe('Bestätigen Sie Ihre E-Mail-Adresse für Acme');
    expect(service.render('verification', data, { locale: 'fr' }).text).toContain(
      'Confirmez votre adresse e-mail',
    );
  });

  it('add a language: a locale we do not ship falls back to English key by key', () => {
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <no-reply@acme.example>',
      messages: { it: { welcome: { heading: 'Benvenuto su {app}' } } },
    });
    const { text, html } = service.render('welcome', { username: 'Jane' }, { locale: 'it-CH' });
    expect(text).toContain('Benvenuto su Acme');
    expect(text).toContain("Your account is ready. We're glad to have you with us.");
    expect(html).toContain('lang="it-CH"');
  });

  it('a template of yours: its own catalogs, pt-BR → pt → en, and ours for shared words', () => {
    const invoice = defineTemplate({
      name: 'invoice',
      fields: { count: 'number', username: 'string' },
      subject: "<%= t('subject', { count: it.count }) %>",
      html: "<%~ include('@greeting', { name: it.username }) %><p><%= t('body') %></p>",
      messages: {
        en: { subject: '{count, plural, one {# invoice} other {# invoices}} due', body: 'Please pay.' },
        pt: { subject: '{count, plural, one {# fatura} other {# faturas}} a pagar' },
      },
    });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      templates: [invoice],
    });
    const br = service.render(invoice, { count: 1, username: 'Ana' }, { locale: 'pt-BR' });
    expect(br.subject).toBe('1 fatura a pagar');
    expect(br.text).toContain('Olá, Ana,');
    expect(br.text).toContain('Please pay.');
    expect(service.render(invoice, { count: 3, username: 'Ana' }, { locale: 'pt-PT' }).subject).toBe(
      '3 faturas a pagar',
    );
    expect(service.render(invoice, { count: 3, username: 'Ana' }, { locale: 'de' }).subject).toBe(
      '3 invoices due',
    );
  });

  it('a folder template reads locales/<tag>.json, and code overrides a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailroom-i18n-'));
    writeFileSync(join(dir, 'subject.eta'), "<%= t('subject') %>");
    writeFileSync(join(dir, 'html.eta'), "<p><%= t('body', { name: it.name }) %></p>");
    mkdirSync(join(dir, 'locales'));
    writeFileSync(join(dir, 'locales', 'en.json'), JSON.stringify({ subject: 'Hello', body: 'Hi {name}' }));
    writeFileSync(
      join(dir, 'locales', 'fr.json'),
      JSON.stringify({ subject: 'Bonjour', body: 'Salut {name}' }),
    );
    const note = defineTemplate({
      name: 'note',
      fields: { name: 'string' },
      dir,
      messages: { fr: { subject: 'Coucou' } },
    });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      templates: [note],
    });
    const fr = service.render(note, { name: 'Zoé' }, { locale: 'fr' });
    expect(fr.subject).toBe('Coucou');
    expect(fr.text).toContain('Salut Zoé');
    expect(service.render(note, { name: 'Zoé' }).subject).toBe('Hello');
  });

  it('refuses a bad tag or a message that is not ICU, naming it; a missing key names the key', () => {
    const error = thrown(
      () =>
        new EmailService({
          transport: memoryTransport(),
          from: 'a@acme.example',
          messages: { de: { verification: { heading: 'Hallo {name' } } },
        }),
      isConfigError,
      'a ConfigError',
    );
    expect(error.option).toBe('messages.de.verification.heading');
    const badTag = thrown(
      () =>
        defineTemplate({ name: 'x', fields: {}, subject: 's', html: 'h', messages: { en_GB: { a: 'b' } } }),
      isTemplateError,
      'a TemplateError',
    );
    expect(badTag.field).toBe('messages.en_GB');
    const missing = defineTemplate({ name: 'y', fields: {}, subject: "<%= t('nope') %>", html: '<p>x</p>' });
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'a@acme.example',
      templates: [missing],
    });
    expect(thrown(() => service.render(missing, {}), isTemplateError, 'a TemplateError').field).toBe('nope');
  });
});

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&#39;')
    .replace(/"/g, '&quot;');
}
