/**
 * Every built-in email in every shipped language other than English, as sent (unsubscribe
 * configured, so product mail carries its footer links), in headless Chromium: 320 px dark and
 * 600 px light, a screenshot of each among the test artifacts
 * (test-artifacts/screenshots/locales/<locale>/) for a person to look at, and the checks a person
 * would make: the document's language and direction (Arabic right to left), nothing wider than the
 * screen, a headline, a button that fits, can be tapped and says the catalog's word, readable text,
 * no English left over, and the footer's links in the email's language.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IntlMessageFormat } from 'intl-messageformat';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailService } from '../../src/service.js';
import { BUILTIN_CATEGORIES, builtinTemplatesDir } from '../../src/templates/builtins.js';
import type { RenderedEmail } from '../../src/templates/compile.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { BUILTIN_NAMES } from '../helpers/builtins.js';
import { launchChromium } from '../helpers/chromium.js';
import { expectReadable, look } from '../helpers/email-look.js';
import { optedIn } from '../helpers/opted-in.js';

const artifacts = fileURLToPath(new URL('../../test-artifacts/screenshots/locales/', import.meta.url));
const localesDir = join(builtinTemplatesDir(), 'locales');
const SHOTS = [
  { width: 320, scheme: 'dark' },
  { width: 600, scheme: 'light' },
] as const;

type Catalog = Record<string, Record<string, string>>;
const catalog = (locale: string): Catalog =>
  JSON.parse(readFileSync(join(localesDir, `${locale}.json`), 'utf8')) as Catalog;
/** Every shipped language but English, as its catalog file names it. */
const LOCALES = readdirSync(localesDir)
  .filter((file) => file.endsWith('.json') && file !== 'en.json')
  .map((file) => file.slice(0, -'.json'.length))
  .sort();
const english = catalog('en');

/** A message with no arguments, formatted as `t()` formats it (ICU: `''` is one apostrophe). */
const word = (locale: string, message: string) =>
  String(new IntlMessageFormat(message, locale, undefined, { ignoreTag: true }).format());

interface AstElement {
  type: number;
  value?: string;
  options?: Record<string, { value: AstElement[] }>;
}
/** The literal runs of an ICU message, the words between its arguments (into select and plural branches). */
function literalRuns(elements: readonly AstElement[], runs: string[] = []): string[] {
  let run = '';
  const flush = () => {
    if (run.trim()) runs.push(run.replace(/\s+/g, ' ').trim());
    run = '';
  };
  for (const element of elements) {
    if (element.type === 0) run += element.value ?? '';
    else {
      flush();
      for (const option of Object.values(element.options ?? {})) literalRuns(option.value, runs);
    }
  }
  flush();
  return runs;
}
/**
 * The English a reader would spot: each run of three words or more of the English catalog's
 * messages for this template, its greeting and the layout.
 */
const englishPhrases = (name: string): string[] =>
  [name, 'greeting', 'layout']
    .flatMap((section) => Object.values(english[section] ?? {}))
    .flatMap((message) =>
      literalRuns(
        new IntlMessageFormat(message, 'en', undefined, { ignoreTag: true }).getAst() as AstElement[],
      ),
    )
    .filter((run) => run.split(' ').length >= 3);

const outbox = memoryTransport();
const service = new EmailService({
  transport: outbox,
  from: 'Acme <no-reply@acme.example>',
  appName: 'Acme',
  brand: { supportUrl: 'https://acme.example/help' },
  now: () => new Date('2027-03-01T12:00:00Z'),
  preferences: optedIn(),
  unsubscribe: {
    url: 'https://acme.example/unsubscribe',
    secrets: ['screenshot-secret-screenshot-secret-screenshot'],
    manageUrl: 'https://acme.example/settings/notifications',
  },
});

/**
 * The built-in's default preview data set. A caller's own `actionLabel` (product-update, reminder)
 * is the caller's words, in English in the data set: left out, so the button says the catalog's.
 */
function defaultData(name: string): Record<string, unknown> {
  const data = JSON.parse(
    readFileSync(join(builtinTemplatesDir(), name, 'preview', 'default.json'), 'utf8'),
  ) as Record<string, unknown>;
  delete data.actionLabel;
  return data;
}

/** Each email as the memory transport received it, by locale and template. */
const sent = new Map<string, RenderedEmail>();
let browser: Browser;
let page: Page;

beforeAll(async () => {
  for (const locale of LOCALES) {
    for (const name of BUILTIN_NAMES) {
      const result = await service.sendTemplate(name as 'welcome', {
        to: 'jane@example.com',
        data: defaultData(name) as never,
        locale,
      });
      expect(result.accepted, `${name} in ${locale} sent`).toEqual(['jane@example.com']);
      sent.set(`${locale}/${name}`, outbox.outbox.at(-1)!.message as RenderedEmail);
    }
    await mkdir(join(artifacts, locale), { recursive: true });
  }
  browser = await launchChromium('the screenshots of the built-in emails in every language');
  // One page for every shot: the viewport and the colour scheme change between them.
  const context = await browser.newContext({
    viewport: { width: 600, height: 400 },
    javaScriptEnabled: false,
  });
  page = await context.newPage();
  // Email HTML loads nothing here: the built-ins' only remote part is an optional logo.
  await page.route('**/*', (route) => route.abort());
});
afterAll(async () => {
  await browser?.close();
});

interface Direction {
  lang: string | null;
  dir: string | null;
  /** The card's wrapper (`mr-ltr` / `mr-rtl`): its class and computed direction. */
  wrapper: { className: string; direction: string } | undefined;
  /** The first visible paragraph of the card, and its first line's gap to the edge a reader starts from. */
  paragraph: { direction: string; textAlign: string; startGap: number } | undefined;
  /** The card's and the footer's text as a reader sees it. */
  text: string;
  /** Each footer link's label and the number of lines it is laid out on. */
  footerLinks: { label: string; lines: number }[];
}

/** The document's language and direction as Chromium laid it out (sizes in CSS px). */
function direction(page: Page): Promise<Direction> {
  // Runs in the page (plain JavaScript: the test's own types know no DOM).
  return page.evaluate(`(() => {
    const wrapper = document.querySelector('.card > div');
    const paragraph = [...document.querySelectorAll('.card p')].find((p) => p.offsetHeight > 0);
    let measured;
    if (paragraph) {
      const style = getComputedStyle(paragraph);
      const box = paragraph.getBoundingClientRect();
      const left = box.left + Number.parseFloat(style.paddingLeft);
      const right = box.right - Number.parseFloat(style.paddingRight);
      const range = document.createRange();
      range.selectNodeContents(paragraph);
      // The first line's extent: a line of mixed scripts is several boxes (one per direction run).
      const rects = [...range.getClientRects()].filter((r) => r.width > 0);
      const top = rects[0]?.top ?? 0;
      const line = rects.filter((r) => Math.abs(r.top - top) < 4);
      const lineLeft = Math.min(...line.map((r) => r.left));
      const lineRight = Math.max(...line.map((r) => r.right));
      const rtl = style.direction === 'rtl';
      measured = {
        direction: style.direction,
        textAlign: style.textAlign,
        startGap: line.length ? (rtl ? right - lineRight : lineLeft - left) : -1,
      };
    }
    return {
      lang: document.documentElement.getAttribute('lang'),
      dir: document.documentElement.getAttribute('dir'),
      wrapper: wrapper
        ? { className: wrapper.className, direction: getComputedStyle(wrapper).direction }
        : undefined,
      paragraph: measured,
      text: ['.card', '.footer'].map((part) => document.querySelector(part)?.innerText ?? '').join(' '),
      footerLinks: [...document.querySelectorAll('.footer a')].map((a) => ({
        label: a.textContent.trim(),
        lines: new Set([...a.getClientRects()].map((r) => Math.round(r.top))).size,
      })),
    };
  })()`);
}

describe('the built-in emails in every language in Chromium', () => {
  for (const locale of LOCALES) {
    const words = catalog(locale);
    const rtl = locale === 'ar';
    describe(locale, () => {
      for (const name of BUILTIN_NAMES) {
        const label = word(locale, words[name]?.button ?? '');
        const englishLabel = word('en', english[name]?.button ?? '');
        const category = BUILTIN_CATEGORIES[name as keyof typeof BUILTIN_CATEGORIES];
        const footer = category === 'product' || category === 'marketing';
        for (const { width, scheme } of SHOTS) {
          it(`${name} at ${width} px, ${scheme}: ${rtl ? 'right to left' : 'left to right'}, fits, says the catalog's words`, async () => {
            const email = sent.get(`${locale}/${name}`) as RenderedEmail;
            await page.setViewportSize({ width, height: 400 });
            await page.emulateMedia({ colorScheme: scheme });
            await page.setContent(email.html, { waitUntil: 'load' });
            await page.screenshot({
              path: join(artifacts, locale, `${name}-${width}-${scheme}.png`),
              fullPage: true,
            });

            const laidOut = await direction(page);
            expect(laidOut.lang, '<html lang>').toBe(locale);
            expect(laidOut.dir, '<html dir>').toBe(rtl ? 'rtl' : null);
            expect(laidOut.wrapper, "the card's wrapper").toEqual({
              className: rtl ? 'mr-rtl' : 'mr-ltr',
              direction: rtl ? 'rtl' : 'ltr',
            });
            const paragraph = laidOut.paragraph;
            expect(paragraph, 'a paragraph of body text').toBeDefined();
            expect(paragraph?.direction).toBe(rtl ? 'rtl' : 'ltr');
            expect([rtl ? 'right' : 'left', 'start']).toContain(paragraph?.textAlign);
            // Its first line starts at the edge a reader starts from (right in Arabic).
            expect(paragraph?.startGap, 'the first line hugs the start edge').toBeLessThanOrEqual(1);
            expect(paragraph?.startGap).toBeGreaterThanOrEqual(-1);

            expect(label, `${name}.button translated`).not.toBe(englishLabel);
            await expectReadable(page, label, width, scheme);

            const text = laidOut.text.replace(/\s+/g, ' ');
            const leftovers = englishPhrases(name).filter((phrase) => text.includes(phrase));
            expect(leftovers, 'no English left in the card or the footer').toEqual([]);

            // Product and marketing mail carries the unsubscribe links; every email the support link.
            const keys = footer ? ['contact-support', 'manage-settings', 'unsubscribe'] : ['contact-support'];
            const links = keys.map((key) => word(locale, words.layout?.[key] ?? ''));
            for (const [i, key] of keys.entries())
              expect(links[i], `layout.${key} translated`).not.toBe(word('en', english.layout?.[key] ?? ''));
            expect(
              laidOut.footerLinks.map((link) => link.label),
              "the footer's links",
            ).toEqual(links);
            // A link that fits on a line is not split over two ("Cancelar / la suscripción" at 320 px).
            for (const link of laidOut.footerLinks) expect(link.lines, `"${link.label}" on one line`).toBe(1);
            for (const link of links) {
              const measuredLink = (await look(page, link)).button;
              expect(measuredLink, `a visible "${link}" link`).toBeDefined();
              expect(measuredLink?.left).toBeGreaterThanOrEqual(0);
              expect(measuredLink?.right).toBeLessThanOrEqual(width);
              // The footer's muted grey on the light page is 4.45:1 (see screenshots.test.ts).
              expect(measuredLink?.contrast, `"${link}" readable`).toBeGreaterThanOrEqual(4.4);
            }
          });
        }
      }
    });
  }
});
