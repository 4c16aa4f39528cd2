/**
 * The unsubscribe pages in the reader's language (issue 13 §3/§5): the link carries the email's
 * locale as `lang` (not signed), the question page, the confirmation after its POST and every
 * refusal follow it, else the browser's Accept-Language, else the handler's `locale`; only
 * languages a catalog covers, never what the request sent echoed. The one-click POST of mailbox
 * providers is unchanged.
 */
import { readFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { memoryPreferenceStore, type PreferenceStore } from '../../src/preferences.js';
import { EmailService } from '../../src/service.js';
import { memoryTransport } from '../../src/transports/memory.js';
import {
  createUnsubscribeHandler,
  signUnsubscribeToken,
  type UnsubscribeHandlerOptions,
  verifyUnsubscribeToken,
} from '../../src/unsubscribe/index.js';
import { loopbackServers } from '../helpers/serve.js';
import { thrown } from '../helpers/thrown.js';

const SECRET = 'language-secret-language-secret-language';
const ONE_CLICK = 'List-Unsubscribe=One-Click';
const day = 86_400_000;
const from = 'Acme <no-reply@acme.example>';

/** The shipped page words, by locale: `words.de['incomplete.title']`. */
const words = Object.fromEntries(
  ['en', 'de', 'fr', 'es', 'pt-BR', 'ar'].map((locale) => {
    const catalog = JSON.parse(
      readFileSync(new URL(`../../templates/locales/${locale}.json`, import.meta.url), 'utf8'),
    )['unsubscribe-page'] as Record<string, Record<string, string>>;
    const flat: Record<string, string> = {};
    for (const [group, messages] of Object.entries(catalog))
      for (const [key, message] of Object.entries(messages)) flat[`${group}.${key}`] = message;
    return [locale, flat];
  }),
);

const serve = loopbackServers();

async function endpoint(extra: Partial<UnsubscribeHandlerOptions> = {}) {
  const preferences = extra.preferences ?? memoryPreferenceStore();
  const handler = createUnsubscribeHandler({
    secrets: [SECRET],
    preferences,
    app: { name: 'Acme' },
    onError: () => {},
    ...extra,
  });
  return { url: await serve(handler as RequestListener, '/unsubscribe'), preferences };
}

const token = (options: { issuedAt?: Date; secret?: string } = {}) =>
  signUnsubscribeToken(
    { address: 'jane@example.com', category: 'product', issuedAt: options.issuedAt ?? new Date() },
    options.secret ?? SECRET,
  );

async function page(url: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
  const response = await fetch(url, { redirect: 'manual', ...init, headers });
  const html = await response.text();
  return {
    status: response.status,
    html,
    lang: /<html lang="([^"]*)"/.exec(html)?.[1],
    dir: /<html lang="[^"]*"(?: dir="([^"]*)")?>/.exec(html)?.[1] ?? 'ltr',
    h1: /<h1>([\s\S]*?)<\/h1>/.exec(html)?.[1],
    action: /<form method="post" action="([^"]*)">/.exec(html)?.[1]?.replaceAll('&#38;', '&'),
  };
}

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  page(url, { 'content-type': 'application/x-www-form-urlencoded', ...headers }, { method: 'POST', body });

describe('the link carries the email’s language', () => {
  function service(url: string, preferences: PreferenceStore, locale?: string) {
    const transport = memoryTransport();
    const mail = new EmailService({
      transport,
      from,
      retry: false,
      preferences,
      unsubscribe: { url, secrets: [SECRET] },
      ...(locale ? { locale } : {}),
    });
    return { mail, sent: () => transport.outbox.map((entry) => entry.message) };
  }
  const news = {
    headline: 'Shared workspaces are here',
    summary: 'Invite your team.',
    actionUrl: 'https://acme.example/whats-new',
  };

  it('a German email’s link opens a German page, and its button answers in German', async () => {
    const { url: base, preferences } = await endpoint();
    const { mail, sent } = service(base, preferences);
    await mail.sendProductUpdate({ to: 'jane@example.com', ...news, locale: 'de' });
    const [message] = sent();
    const link = /^<([^>]+)>$/.exec(message!.headers['List-Unsubscribe']!)![1]!;
    expect(link).toMatch(/\?token=[\w.-]+&lang=de$/);
    // The footer's "Abbestellen" is the very same link, escaped in the HTML.
    expect(message!.html).toMatch(
      new RegExp(`href="${link.replaceAll('&', '&amp;').replace(/[.?]/g, '\\$&')}"[^>]*>Abbestellen</a>`),
    );
    expect(message!.text).toContain(`Abbestellen:\n${link}`);

    const question = await page(link);
    expect(question).toMatchObject({ status: 200, lang: 'de', dir: 'ltr' });
    expect(question.h1).toBe('E-Mails zu Produktneuigkeiten von Acme abbestellen?');
    expect(question.html).toContain('<button type="submit">Abbestellen</button>');
    expect(question.html).toContain(
      '<p>An <strong><bdi>jane@example.com</bdi></strong> senden wir keine E-Mails zu Produktneuigkeiten von Acme mehr.',
    );
    expect(await preferences.list('jane@example.com')).toEqual([]);

    // What the browser does with the page's form (Node's fetch asks for any language).
    const done = await post(new URL(question.action!, link).href, `${ONE_CLICK}&confirm=page`);
    expect(done).toMatchObject({ status: 200, lang: 'de', h1: 'Sie haben die E-Mails abbestellt' });
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });

  it('a plain send without a locale links in the service’s language, as its footer is written', async () => {
    const { url: base, preferences } = await endpoint();
    const { mail, sent } = service(base, preferences, 'fr');
    await mail.send({ to: 'lea@example.com', subject: 'Nouveautés', text: 'Bonjour', category: 'product' });
    const [message] = sent();
    const link = /^<([^>]+)>$/.exec(message!.headers['List-Unsubscribe']!)![1]!;
    expect(link).toMatch(/&lang=fr$/);
    expect(message!.text).toContain(`Se désabonner\u00a0:\n${link}`);
    expect((await page(link)).lang).toBe('fr');
  });

  it('lang is not signed, and a configured lang takes the email’s language in its place', async () => {
    const { url: base, preferences } = await endpoint();
    const { mail, sent } = service(`${base}?lang=xx&list=news`, preferences);
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'News', category: 'product' });
    await mail.send({
      to: 'jane@example.com',
      subject: 'Hi',
      text: 'News',
      category: 'product',
      locale: 'pt-br',
    });
    const [plain, portuguese] = sent().map(
      (m) => new URL(/^<([^>]+)>$/.exec(m.headers['List-Unsubscribe']!)![1]!),
    );
    // The configured URL's `lang` takes the email's language: its own locale, else the service's.
    expect(plain!.search).toMatch(/^\?lang=en&list=news&token=[\w.-]+$/);
    expect(portuguese!.search).toMatch(/^\?lang=pt-BR&list=news&token=[\w.-]+$/);
    for (const link of [plain!, portuguese!])
      expect(verifyUnsubscribeToken(link.searchParams.get('token'), { secrets: [SECRET] })).toMatchObject({
        ok: true,
        address: 'jane@example.com',
        category: 'product',
      });
  });
});

describe('which language a request gets', () => {
  it('Arabic is right to left, the address isolated in its sentence', async () => {
    const { url } = await endpoint();
    const question = await page(`${url}?token=${token()}&lang=ar`);
    expect(question).toMatchObject({ status: 200, lang: 'ar', dir: 'rtl' });
    expect(question.h1).toBe('إلغاء الاشتراك في رسائل المستجدات من Acme؟');
    expect(question.html).toContain('إلى <strong><bdi>jane@example.com</bdi></strong> بعد الآن.');
    expect(question.action).toBe(`?token=${token()}&lang=ar`);
  });

  it('without lang, Accept-Language decides: q-values honoured, the best covered one wins', async () => {
    const { url } = await endpoint();
    const at = `${url}?token=${token()}`;
    const french = await page(at, { 'accept-language': 'fr-CA,fr;q=0.9,en;q=0.5' });
    expect(french).toMatchObject({
      lang: 'fr',
      h1: 'Se désabonner des e-mails sur les nouveautés envoyés par Acme\u00a0?',
    });
    // The form keeps it, so the confirmation does not depend on the next request's headers.
    expect(french.action).toBe(`?token=${token()}&lang=fr`);
    expect((await page(at, { 'accept-language': 'en;q=0.5, de;q=0.9' })).lang).toBe('de');
    expect((await page(at, { 'accept-language': 'it, ja;q=0.9, es-MX;q=0.8, en;q=0.1' })).lang).toBe('es');
    expect((await page(at, { 'accept-language': 'de;q=0, fr;q=bad, *' })).lang).toBe('en');
    // `pt` is not covered by `pt-BR`, as an email in `pt` is written in English.
    expect((await page(at, { 'accept-language': 'pt-PT, pt;q=0.9' })).lang).toBe('en');
    expect((await page(at, { 'accept-language': 'pt-br' })).lang).toBe('pt-BR');
  });

  it('lang wins over Accept-Language; the handler’s locale is the last resort', async () => {
    const { url } = await endpoint({ locale: 'es-MX' });
    const at = `${url}?token=${token()}`;
    expect((await page(`${at}&lang=de-AT`, { 'accept-language': 'fr' })).lang).toBe('de');
    expect((await page(at, { 'accept-language': 'fr' })).lang).toBe('fr');
    const spanish = await page(at);
    expect(spanish).toMatchObject({
      lang: 'es',
      h1: '¿Cancelar la suscripción a los correos de novedades de Acme?',
    });
  });

  it.each([
    ['an unknown tag', 'xx'],
    ['markup', '<script>alert(1)</script>'],
    ['a 300-character tag', `de-${'abcdefgh-'.repeat(33)}x`.slice(0, 300)],
    ['a list', 'de,fr'],
  ])('%s as lang is ignored and never echoed', async (_name, lang) => {
    const { url } = await endpoint();
    const t = token();
    const question = await page(`${url}?token=${t}&lang=${encodeURIComponent(lang)}`, {
      'accept-language': 'fr',
    });
    expect(question).toMatchObject({ status: 200, lang: 'fr', action: `?token=${t}&lang=fr` });
    // The token is printed in the form: what is left must not hold the value in any form.
    const rest = question.html.replaceAll(t, '');
    for (const form of [lang, encodeURIComponent(lang), escaped(lang)]) expect(rest).not.toContain(form);
    expect(rest).not.toMatch(/<script/i);
  });
});

describe('refusals in the reader’s language', () => {
  it.each([
    ['a malformed', 'es', 400, 'incomplete', () => 'not-a-token'],
    [
      'a forged',
      'pt-BR',
      403,
      'invalid',
      () => token({ secret: 'someone-elses-secret-someone-elses-secret' }),
    ],
    ['an expired', 'fr', 403, 'expired', () => token({ issuedAt: new Date(Date.now() - 91 * day) })],
  ])('%s link (%s): %i', async (_name, lang, status, refusal, make) => {
    const { url, preferences } = await endpoint();
    const t = make();
    for (const method of ['GET', 'POST']) {
      const refused =
        method === 'GET'
          ? await page(`${url}?token=${t}&lang=${lang}`)
          : await post(`${url}?token=${t}&lang=${lang}`, ONE_CLICK);
      expect(refused).toMatchObject({ status, lang, h1: words[lang]![`${refusal}.title`] });
      expect(refused.h1).not.toBe(words.en![`${refusal}.title`]);
      expect(refused.html).toContain(`<p>${escaped(words[lang]![`${refusal}.detail`]!)}</p>`);
    }
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('a POST without List-Unsubscribe=One-Click, in Arabic: 400', async () => {
    const { url, preferences } = await endpoint();
    const refused = await post(`${url}?token=${token()}&lang=ar`, 'List-Unsubscribe=Other');
    expect(refused).toMatchObject({
      status: 400,
      lang: 'ar',
      dir: 'rtl',
      h1: words.ar!['bad-request.title'],
    });
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });

  it('a store that fails, in German (from Accept-Language): 500', async () => {
    const broken: PreferenceStore = {
      ...memoryPreferenceStore(),
      set: () => Promise.reject(new Error('database down')),
    };
    const { url } = await endpoint({ preferences: broken });
    const refused = await post(`${url}?token=${token()}`, `${ONE_CLICK}&confirm=page`, {
      'accept-language': 'de-DE,de;q=0.9',
    });
    expect(refused).toMatchObject({ status: 500, lang: 'de', h1: words.de!['try-again.title'] });
  });

  it('the one-click POST of a mailbox provider is unchanged: 200, plain text, whatever lang says', async () => {
    const { url, preferences } = await endpoint();
    const response = await fetch(`${url}?token=${token()}&lang=ar`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'de' },
      body: ONE_CLICK,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await response.text()).toBe('Unsubscribed');
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });
});

describe('the handler’s messages and locale', () => {
  it('override our words and add a language, escaped, its missing words in English', async () => {
    const { url } = await endpoint({
      app: { name: 'Acme & Co' },
      messages: {
        de: { 'unsubscribe-page': { question: { button: 'Jetzt abbestellen' } } },
        it: {
          'unsubscribe-page': {
            question: {
              title:
                '{category, select, product {Annullare le novità{hasApp, select, yes { di {app}} other {}}?} other {Annullare il marketing?}}',
            },
          },
        },
        // The service's words for its emails only: not a language of the page.
        ja: { welcome: { heading: 'ようこそ' } },
      },
    });
    const at = `${url}?token=${token()}`;
    const german = await page(`${at}&lang=de`);
    expect(german.html).toContain('<button type="submit">Jetzt abbestellen</button>');
    expect(german.h1).toBe('E-Mails zu Produktneuigkeiten von Acme &#38; Co abbestellen?');
    const italian = await page(`${at}&lang=it`);
    expect(italian).toMatchObject({ lang: 'it', h1: 'Annullare le novità di Acme &#38; Co?' });
    expect(italian.html).toContain('<button type="submit">Unsubscribe</button>');
    expect((await page(`${at}&lang=ja`)).lang).toBe('en');
  });

  it.each([
    [
      'a message that is not ICU',
      'messages.de.unsubscribe-page.question.title',
      { messages: { de: { 'unsubscribe-page': { question: { title: '{category, select,' } } } } },
    ],
    [
      'a sentence with an argument the page does not give',
      'messages.de.unsubscribe-page.question.title',
      { messages: { de: { 'unsubscribe-page': { question: { title: 'Abbestellen, {name}?' } } } } },
    ],
    [
      'an argument in a word that is given none',
      'messages.fr.unsubscribe-page.expired.title',
      { messages: { fr: { 'unsubscribe-page': { expired: { title: 'Ce lien de {app} a expiré' } } } } },
    ],
    ['a locale that is not BCP 47', 'messages.de_DE', { messages: { de_DE: {} } }],
    ['messages that are no catalogs', 'messages', { messages: 'de' }],
    ['a malformed locale', 'locale', { locale: 'en_US' }],
  ])('%s is a ConfigError naming %s', (_name, option, extra) => {
    const error = thrown(
      () =>
        createUnsubscribeHandler({
          secrets: [SECRET],
          preferences: memoryPreferenceStore(),
          ...(extra as object),
        } as UnsubscribeHandlerOptions),
      isConfigError,
      'a ConfigError',
    );
    expect(error.option).toBe(option);
  });
});

/** As the page escapes text. */
function escaped(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
