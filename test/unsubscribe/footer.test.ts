/**
 * The footer's "Manage notification settings" and "Unsubscribe" links (issue 13 §3): on every
 * product and marketing email, in HTML and text, the Unsubscribe URL the very one in
 * List-Unsubscribe; never on security or transactional mail. Through sendTemplate, the send*
 * helpers, send() with the caller's own HTML, sendBatch, a custom layout reading `it.unsubscribe`,
 * and render-then-send as the Kafka worker does it. A GET of the link changes nothing.
 */
import type { RequestListener } from 'node:http';
import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../src/config.js';
import { isConfigError, isMessageError, isTemplateError } from '../../src/errors.js';
import type { EmailMessage } from '../../src/message.js';
import { memoryPreferenceStore } from '../../src/preferences.js';
import { EmailService, type EmailServiceOptions } from '../../src/service.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { createUnsubscribeHandler, verifyUnsubscribeToken } from '../../src/unsubscribe/index.js';
import { optedIn } from '../helpers/opted-in.js';
import { loopbackServers } from '../helpers/serve.js';

const from = 'Acme <no-reply@acme.example>';
const SECRET = 'footer-secret-footer-secret-footer-secret';
const MANAGE = 'https://acme.example/settings/notifications';
const PLACEHOLDER = 'unsubscribe-link.mailroom.invalid';
const news = {
  headline: 'Shared workspaces are here',
  summary: 'Invite your team to a shared workspace.',
  actionUrl: 'https://acme.example/whats-new',
};

function service(extra: Partial<EmailServiceOptions> = {}, unsubscribe: object = {}) {
  const transport = memoryTransport();
  const mail = new EmailService({
    transport,
    from,
    retry: false,
    preferences: optedIn(),
    unsubscribe: {
      url: 'https://acme.example/unsubscribe',
      secrets: [SECRET],
      manageUrl: MANAGE,
      ...unsubscribe,
    },
    ...extra,
  });
  const sent = () => transport.outbox.map((entry) => entry.message);
  return { mail, transport, sent };
}

/** The one URL of List-Unsubscribe (no mailto configured here). */
function headerUrl(message: EmailMessage): string {
  const match = /^<([^>]+)>$/.exec(message.headers['List-Unsubscribe'] ?? '');
  expect(match, 'List-Unsubscribe').not.toBeNull();
  return match![1]!;
}

/** The hrefs of the footer's links, by label, as written in the HTML (entities decoded). */
function footerLinks(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<a href="([^"]*)"[^>]*>(Manage notification settings|Unsubscribe)<\/a>/g))
    out[m[2]!] = m[1]!.replaceAll('&amp;', '&');
  return out;
}

/** The URL on the line after `label:` in the text part. */
function textLink(text: string, label: string): string | undefined {
  const lines = text.split('\n');
  const at = lines.indexOf(`${label}:`);
  return at < 0 ? undefined : lines[at + 1];
}

function expectFooter(message: EmailMessage, category: 'product' | 'marketing', address: string) {
  const url = headerUrl(message);
  const links = footerLinks(message.html!);
  expect(links).toEqual({ 'Manage notification settings': MANAGE, Unsubscribe: url });
  expect(textLink(message.text!, 'Unsubscribe')).toBe(url);
  expect(textLink(message.text!, 'Manage notification settings')).toBe(MANAGE);
  const token = new URL(url).searchParams.get('token');
  expect(verifyUnsubscribeToken(token, { secrets: [SECRET] })).toMatchObject({ ok: true, address, category });
  expect(message.html).not.toContain(PLACEHOLDER);
  expect(message.text).not.toContain(PLACEHOLDER);
}

function expectNoFooter(message: EmailMessage) {
  expect(message.headers['List-Unsubscribe']).toBeUndefined();
  for (const part of [message.html ?? '', message.text ?? '']) {
    expect(part).not.toMatch(/Unsubscribe|Manage notification settings/);
    expect(part).not.toContain(PLACEHOLDER);
    expect(part).not.toContain(MANAGE);
  }
}

describe('the footer of product and marketing mail', () => {
  it('a built-in product email shows both links in HTML and text, the Unsubscribe URL the header’s', async () => {
    const { mail, sent } = service();
    await mail.sendProductUpdate({ to: 'Jane <Jane@Example.com>', ...news });
    await mail.sendTemplate('product-update', { to: 'joe@example.com', data: news, category: 'marketing' });
    await mail.sendReminder({
      to: 'ann@example.com',
      username: 'Ann',
      task: 'Finish your profile',
      actionUrl: news.actionUrl,
    });
    const [product, marketing, reminder] = sent();
    expectFooter(product!, 'product', 'jane@example.com');
    expectFooter(marketing!, 'marketing', 'joe@example.com');
    expectFooter(reminder!, 'product', 'ann@example.com');
    // Inside the layout's footer cell, styled like its other lines.
    const footer = product!.html!.slice(product!.html!.indexOf('class="footer"'));
    expect(footer).toMatch(/<p class="footer-text footer-unsubscribe" style="[^"]*font-size: 12px/);
    expect(footer).toContain('>Unsubscribe</a>');
  });

  it('never on security or transactional mail, built-in or the caller’s own', async () => {
    const { mail, sent } = service();
    await mail.sendSecurityAlert({
      to: 'jane@example.com',
      username: 'Jane',
      event: 'sign-in',
      occurredAt: new Date('2026-12-01T10:00:00Z'),
      device: 'Firefox on Linux',
      secureAccountUrl: 'https://acme.example/secure',
    });
    await mail.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?t=1',
    });
    await mail.send({
      to: 'jane@example.com',
      subject: 'Receipt',
      html: '<p>Paid</p>',
      category: 'transactional',
    });
    await mail.send({
      to: 'jane@example.com',
      subject: 'New sign-in',
      text: 'Was it you?',
      category: 'security',
    });
    expect(sent()).toHaveLength(4);
    for (const message of sent()) expectNoFooter(message);
  });

  it('without manageUrl only the Unsubscribe link; without the unsubscribe option none at all', async () => {
    const only = service({}, { manageUrl: undefined });
    await only.mail.sendProductUpdate({ to: 'jane@example.com', ...news });
    const [message] = only.sent();
    expect(footerLinks(message!.html!)).toEqual({ Unsubscribe: headerUrl(message!) });
    expect(message!.text).not.toContain('Manage notification settings');
    expect(message!.html).not.toContain('&middot;');

    const transport = memoryTransport();
    const plain = new EmailService({ transport, from, retry: false });
    await plain.sendProductUpdate({ to: 'jane@example.com', ...news });
    expectNoFooter(transport.outbox[0]!.message);
  });

  it('escapes the URL in the HTML and leaves it whole in the text', async () => {
    const { mail, sent } = service(
      {},
      {
        url: 'https://acme.example/unsubscribe?list=news&lang=en',
        manageUrl: 'https://acme.example/settings?tab=mail&x=1',
      },
    );
    await mail.sendProductUpdate({ to: 'jane@example.com', ...news });
    const [message] = sent();
    const url = headerUrl(message!);
    // The configured URL's own `lang` keeps its place and takes the email's locale.
    expect(url).toMatch(/^https:\/\/acme\.example\/unsubscribe\?list=news&lang=en&token=[\w.-]+$/);
    expect(message!.html).toContain(`href="${url.replaceAll('&', '&amp;')}"`);
    expect(message!.html).toContain('href="https://acme.example/settings?tab=mail&amp;x=1"');
    expect(message!.html).not.toContain('list=news&lang');
    expect(textLink(message!.text!, 'Unsubscribe')).toBe(url);
    expect(textLink(message!.text!, 'Manage notification settings')).toBe(
      'https://acme.example/settings?tab=mail&x=1',
    );
  });

  it('the caller’s own HTML and text get the links added: before </body>, and at the end', async () => {
    const { mail, sent } = service();
    await mail.send({
      to: 'jane@example.com',
      subject: 'Our spring sale',
      html: '<!DOCTYPE html><html><body><p>20% off</p></BODY></html>',
      text: 'Our spring sale: 20% off\n',
      category: 'marketing',
    });
    await mail.send({ to: 'joe@example.com', subject: 'Tip', text: 'Did you know?', category: 'product' });
    const [sale, tip] = sent();
    expectFooter(sale!, 'marketing', 'jane@example.com');
    expect(sale!.html).toMatch(
      /<p>20% off<\/p><div class="mr-unsubscribe"[^>]*>.*<\/div>\n<\/BODY><\/html>$/s,
    );
    expect(sale!.text!.startsWith('Our spring sale: 20% off\n\nManage notification settings:\n')).toBe(true);
    expect(tip!.html).toBeUndefined();
    expect(textLink(tip!.text!, 'Unsubscribe')).toBe(headerUrl(tip!));
  });

  it('sendBatch: each recipient’s footer carries their own token, equal to their header', async () => {
    const { mail, sent } = service();
    const people = ['a@example.com', 'b@example.com', 'c@example.com'];
    const result = await mail.sendBatch(
      'product-update',
      people.map((to) => ({ to, data: news })),
    );
    expect(result.sent).toBe(3);
    const urls = sent().map((message, i) => {
      expectFooter(message, 'product', people[i]!);
      return headerUrl(message);
    });
    expect(new Set(urls).size).toBe(3);
  });

  it('a custom layout shows the links where it wants through it.unsubscribe', async () => {
    const digest = defineTemplate({
      name: 'digest',
      category: 'product',
      fields: { count: 'number' },
      subject: 'Your digest',
      html: '<p><%= it.count %> new comments</p>',
      layout: 'plain',
    });
    const layout =
      '<html><body><%~ it.body %><% if (it.unsubscribe) { %><footer><a href="<%= it.unsubscribe.url %>">Stop these emails</a>' +
      '<% if (it.unsubscribe.manageUrl) { %> <a href="<%= it.unsubscribe.manageUrl %>">Your settings</a><% } %></footer><% } %></body></html>';
    const { mail, sent } = service({ templates: [digest], layouts: { plain: layout } });
    await mail.sendTemplate(digest, { to: 'jane@example.com', data: { count: 3 } });
    await mail.sendTemplate(digest, {
      to: 'jane@example.com',
      data: { count: 4 },
      category: 'transactional',
    });
    const [product, transactional] = sent();
    const url = headerUrl(product!);
    // Escaped where it is printed: the link carries `&lang=en` after its token.
    expect(product!.html).toContain(
      `<footer><a href="${url.replaceAll('&', '&amp;')}">Stop these emails</a> <a href="${MANAGE}">Your settings</a></footer>`,
    );
    // Shown by the layout, so nothing is added: the partial's labels appear nowhere.
    expect(product!.html).not.toContain('mr-unsubscribe');
    expect(product!.text).toContain(url);
    expect(product!.text).not.toContain('Unsubscribe:');
    expect(transactional!.html).toBe('<html><body><p>4 new comments</p></body></html>');
    expectNoFooter(transactional!);
  });

  it('render then send, as the Kafka worker does: the footer is filled in by the send', async () => {
    const { mail, sent } = service();
    const rendered = mail.render('product-update', news);
    expect(rendered.html).toContain(`https://${PLACEHOLDER}/`);
    expect(rendered.text).toContain(`https://${PLACEHOLDER}/`);
    await mail.send({ to: 'jane@example.com', ...rendered, category: 'product' });
    expectFooter(sent()[0]!, 'product', 'jane@example.com');
    // Rendered as the category it goes out as: no links for transactional mail.
    expect(mail.render('product-update', news, { category: 'transactional' }).html).not.toContain(
      PLACEHOLDER,
    );
  });

  it('refuses mail rendered with the links but sent as security or transactional, naming the part', async () => {
    const { mail, sent } = service();
    const rendered = mail.render('product-update', news);
    const error = await mail
      .send({ to: 'jane@example.com', ...rendered, category: 'transactional' })
      .catch((e: unknown) => e);
    expect(isMessageError(error)).toBe(true);
    expect(error).toMatchObject({ field: 'html' });
    expect((error as Error).message).toMatch(/transactional mail carries no unsubscribe link/);
    const text = await mail
      .send({ to: 'jane@example.com', subject: 'x', text: rendered.text, category: 'security' })
      .catch((e: unknown) => e);
    expect(text).toMatchObject({ field: 'text' });
    expect(sent()).toEqual([]);
  });

  it('refuses it too when a template of yours passes such HTML on as data, sent as transactional', async () => {
    const digest = defineTemplate({
      name: 'digest',
      fields: { body: 'string' },
      category: 'transactional',
      subject: 'Your digest',
      html: '<div><%~ it.body %></div>',
      text: 'Your digest',
    });
    const { mail, sent } = service({ templates: [digest] });
    const body = mail.render('product-update', news).html;
    const error = await mail
      .sendTemplate('digest', { to: 'jane@example.com', data: { body } })
      .catch((e: unknown) => e);
    expect(isMessageError(error)).toBe(true);
    expect(error).toMatchObject({ field: 'html' });
    await mail.sendTemplate('digest', { to: 'jane@example.com', data: { body: '<p>Nothing new</p>' } });
    expect(sent().map((m) => m.html)).toEqual([expect.stringContaining('Nothing new')]);
  });

  it('refuses mail rendered with the links by a service that cannot fill them in', async () => {
    const rendered = service().mail.render('product-update', news);
    const transport = memoryTransport();
    const plain = new EmailService({ transport, from, retry: false });
    const error = await plain
      .send({ to: 'jane@example.com', ...rendered, category: 'product' })
      .catch((e: unknown) => e);
    expect(isMessageError(error)).toBe(true);
    expect(error).toMatchObject({ field: 'html' });
    expect((error as Error).message).toMatch(/no unsubscribe option to fill it in/);
    expect(transport.outbox).toEqual([]);
  });

  it('in the reader’s language: the built-ins’, the caller’s own HTML and a batch entry’s; RTL marked', async () => {
    const { mail, sent } = service();
    await mail.sendProductUpdate({ to: 'jana@example.com', ...news, locale: 'de' });
    await mail.send({
      to: 'amal@example.com',
      subject: 'عرض الربيع',
      html: '<html><body><p>خصم 20%</p></body></html>',
      text: 'خصم 20%',
      category: 'marketing',
      locale: 'ar',
    });
    await mail.sendBatch('product-update', [{ to: 'lea@example.com', data: news, locale: 'fr' }]);
    const [de, ar, fr] = sent();
    const labels = (html: string) =>
      [...html.matchAll(/<a href="[^"]*" class="footer-link"[^>]*>([^<]*)<\/a>/g)].map((m) => m[1]).slice(-2);
    expect(labels(de!.html!)).toEqual(['Benachrichtigungseinstellungen verwalten', 'Abbestellen']);
    expect(textLink(de!.text!, 'Abbestellen')).toBe(headerUrl(de!));
    expect(labels(ar!.html!)).toEqual(['إدارة إعدادات الإشعارات', 'إلغاء الاشتراك']);
    expect(ar!.html).toMatch(/<div class="mr-unsubscribe" lang="ar" dir="rtl"/);
    expect(textLink(ar!.text!, 'إلغاء الاشتراك')).toBe(headerUrl(ar!));
    expect(labels(fr!.html!)).toEqual(['Gérer les préférences de notification', 'Se désabonner']);
    for (const message of [de!, ar!, fr!]) {
      expect(message.html).not.toMatch(/>(Unsubscribe|Manage notification settings)</);
      expect(message.text).not.toMatch(/^(Unsubscribe|Manage notification settings):$/m);
    }
  });

  it('an English footer in a right-to-left document is marked left to right', async () => {
    const { mail, sent } = service();
    await mail.send({
      to: 'amal@example.com',
      subject: 'عرض الربيع',
      html: '<html dir="rtl" lang="ar"><body><p>خصم 20%</p></body></html>',
      category: 'marketing',
      locale: 'en',
    });
    expect(sent()[0]!.html).toMatch(/<div class="mr-unsubscribe" lang="en" dir="ltr"/);
  });

  it('in the service’s language when the message names none, and with the service’s own wording', async () => {
    const { mail, sent } = service({
      locale: 'es',
      messages: { es: { layout: { unsubscribe: 'Darme de baja' } } },
    });
    await mail.send({ to: 'ana@example.com', subject: 'Novedades', text: 'Hola', category: 'product' });
    await mail.sendProductUpdate({ to: 'luis@example.com', ...news });
    for (const message of sent()) {
      expect(textLink(message.text!, 'Darme de baja')).toBe(headerUrl(message));
      expect(textLink(message.text!, 'Gestionar la configuración de notificaciones')).toBe(MANAGE);
    }
  });

  it('a footer that cannot be rendered for the caller’s own HTML is a TemplateError naming @unsubscribe and the key; nothing sent', async () => {
    const own = {
      to: 'jana@example.com',
      subject: 'Neu',
      html: '<p>Neu</p>',
      category: 'product',
      locale: 'de',
    } as const;
    const badWord = service({ messages: { de: { layout: { unsubscribe: 'Abbestellen {what}' } } } });
    const missing = service({
      partials: {
        unsubscribe: `<% if (it.unsubscribe) { %><a href="<%= it.unsubscribe.url %>"><%= t('acme.unsubscribe') %></a><% } %>`,
      },
    });
    for (const [{ mail, transport }, field] of [
      [badWord, undefined],
      [missing, 'acme.unsubscribe'],
    ] as const) {
      const error = await mail.send(own).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTemplateError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ template: '@unsubscribe', field });
      expect(transport.outbox).toEqual([]);
    }
  });

  it('a template field named unsubscribe is refused: mailroom sets it', () => {
    let error: unknown;
    try {
      defineTemplate({ name: 'x', fields: { unsubscribe: 'url' }, subject: 'x', html: '<p>x</p>' });
    } catch (e) {
      error = e;
    }
    expect(isTemplateError(error)).toBe(true);
    expect(error).toMatchObject({ field: 'unsubscribe' });
  });
});

describe('unsubscribe.manageUrl', () => {
  it.each([
    ['not a URL', 'settings'],
    ['plain http', 'http://acme.example/settings'],
    ['a user name', 'https://me:pw@acme.example/settings'],
    ['too long', `https://acme.example/${'a'.repeat(500)}`],
  ])('refuses %s, naming unsubscribe.manageUrl', (_name, manageUrl) => {
    let error: unknown;
    try {
      service({}, { manageUrl });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'unsubscribe.manageUrl' });
  });

  it('comes from MAILROOM_UNSUBSCRIBE_MANAGE_URL, and a bad one names the variable', async () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
      MAILROOM_UNSUBSCRIBE_URL: 'https://acme.example/unsubscribe',
      MAILROOM_UNSUBSCRIBE_SECRETS: SECRET,
      MAILROOM_UNSUBSCRIBE_MANAGE_URL: MANAGE,
    };
    const options = configFromEnv(env);
    expect(options.unsubscribe).toMatchObject({ manageUrl: MANAGE });
    const transport = memoryTransport();
    const mail = new EmailService({ ...options, preferences: optedIn(), transport, retry: false });
    await mail.sendProductUpdate({ to: 'jane@example.com', ...news });
    expect(footerLinks(transport.outbox[0]!.message.html!)['Manage notification settings']).toBe(MANAGE);

    let error: unknown;
    try {
      configFromEnv({ ...env, MAILROOM_UNSUBSCRIBE_MANAGE_URL: 'http://acme.example/settings' });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'MAILROOM_UNSUBSCRIBE_MANAGE_URL' });
  });
});

describe('following the footer link', () => {
  const serve = loopbackServers();

  it('a GET (what a mail scanner does) shows the confirmation page and unsubscribes no one; the POST does', async () => {
    const preferences = memoryPreferenceStore();
    const handler = createUnsubscribeHandler({ secrets: [SECRET], preferences, app: { name: 'Acme' } });
    const base = await serve(handler as RequestListener, '/unsubscribe');
    const { mail, sent } = service({ preferences }, { url: base });
    await mail.sendProductUpdate({ to: 'jane@example.com', ...news });
    const link = footerLinks(sent()[0]!.html!).Unsubscribe!;
    expect(link).toBe(headerUrl(sent()[0]!));

    const page = await fetch(link, { redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<form[^>]*method="post"/i);
    expect(await preferences.list('jane@example.com')).toEqual([]);

    const post = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(post.status).toBe(200);
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });
});
