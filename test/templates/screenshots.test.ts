/**
 * The built-in emails (and one built from the components) in headless Chromium (playwright-core), at 320 and 600 px, in light and dark:
 * a screenshot of each among the test artifacts (test-artifacts/screenshots/) for a person to look
 * at, and the checks a person would make: nothing wider than the screen, a button that fits and can
 * be tapped, a headline, and text that can be read on its background in both colour schemes.
 * `UPDATE_SCREENSHOTS=1` also rewrites the README's pictures (examples/screenshots/).
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderConfirmation } from '../../examples/app-config/emails/order-confirmation.js';
import { memoryPreferenceStore } from '../../src/preferences.js';
import { EmailService } from '../../src/service.js';
import { builtinTemplatesDir } from '../../src/templates/builtins.js';
import type { RenderedEmail } from '../../src/templates/compile.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { launchChromium } from '../helpers/chromium.js';
import { expectReadable, type Look, look } from '../helpers/email-look.js';

const artifacts = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));
const readmeShots = fileURLToPath(new URL('../../examples/screenshots/', import.meta.url));
const WIDTHS = [320, 600] as const;
const SCHEMES = ['light', 'dark'] as const;

const service = new EmailService({
  transport: memoryTransport(),
  from: 'Acme <no-reply@acme.example>',
  now: () => new Date('2027-03-01T12:00:00Z'),
  templates: [orderConfirmation],
});
/** The built-ins alone: the example's own `order-confirmation` replaces the built-in one in `service`. */
const builtins = new EmailService({
  transport: memoryTransport(),
  from: 'Acme <no-reply@acme.example>',
  now: () => new Date('2027-03-01T12:00:00Z'),
});
/** A built-in rendered with one of its preview data sets (templates/<name>/preview/<set>.json). */
const withDataSet = (name: string, set: string) =>
  builtins.render(
    name as 'welcome',
    JSON.parse(readFileSync(join(builtinTemplatesDir(), name, 'preview', `${set}.json`), 'utf8')),
  );
/** A product email as sent with `unsubscribe` configured: the footer's two links, filled in. */
const footerOutbox = memoryTransport();
await new EmailService({
  transport: footerOutbox,
  from: 'Acme <no-reply@acme.example>',
  now: () => new Date('2027-03-01T12:00:00Z'),
  preferences: memoryPreferenceStore(),
  unsubscribe: {
    url: 'https://acme.example/unsubscribe',
    secrets: ['screenshot-secret-screenshot-secret-screenshot'],
    manageUrl: 'https://acme.example/settings/notifications',
  },
}).sendTemplate('product-update', {
  to: 'jane@example.com',
  data: JSON.parse(
    readFileSync(join(builtinTemplatesDir(), 'product-update', 'preview', 'default.json'), 'utf8'),
  ),
});
const withFooter = footerOutbox.outbox[0]!.message as RenderedEmail;

/** Each email with the label of the button a reader taps. */
const EMAILS: Record<string, { email: RenderedEmail; label: string; minContrast?: number }> = {
  verification: {
    email: service.render('verification', {
      username: 'Jane',
      verificationUrl: 'https://acme.example/verify?token=3f9c2a71e8b04d65',
    }),
    label: 'Verify email address',
  },
  'password-reset': {
    email: service.render('password-reset', {
      username: 'Jane',
      resetUrl: 'https://acme.example/reset?token=9b1d4e7a2c',
      expiresInMinutes: 30,
    }),
    label: 'Reset password',
  },
  welcome: {
    email: service.render('welcome', { username: 'Jane', actionUrl: 'https://acme.example/get-started' }),
    label: 'Get started',
  },
  // An app's own email built from the components (@details, @panel, @button): examples/app-config.
  'app-order-confirmation': {
    email: service.render(orderConfirmation, orderConfirmation.preview.gift as never),
    label: 'View your order',
  },
  // The content library, each with its default data set and its long one.
  'security-alert': {
    email: withDataSet('security-alert', 'default'),
    label: "This wasn't me",
  },
  'security-alert-long': {
    email: withDataSet('security-alert', 'long-values'),
    label: "This wasn't me",
  },
  'product-update': { email: withDataSet('product-update', 'default'), label: 'Try shared workspaces' },
  'product-update-footer': { email: withFooter, label: 'Try shared workspaces' },
  'product-update-long': { email: withDataSet('product-update', 'long-values'), label: "See what's new" },
  reminder: { email: withDataSet('reminder', 'default'), label: 'Finish your profile' },
  'reminder-long': { email: withDataSet('reminder', 'long-values'), label: 'Finish setting up' },
  'order-confirmation': { email: withDataSet('order-confirmation', 'default'), label: 'View your order' },
  'order-confirmation-long': {
    email: withDataSet('order-confirmation', 'long-values'),
    label: 'View your order',
  },
  'maintenance-notice': {
    email: withDataSet('maintenance-notice', 'default'),
    label: 'View status page',
  },
  'maintenance-notice-long': {
    email: withDataSet('maintenance-notice', 'long-values'),
    label: 'View status page',
  },
};

let browser: Browser;

beforeAll(async () => {
  await mkdir(artifacts, { recursive: true });
  if (process.env.UPDATE_SCREENSHOTS === '1') await mkdir(readmeShots, { recursive: true });
  browser = await launchChromium('the screenshots of the built-in emails');
});
afterAll(async () => {
  await browser?.close();
});

describe('the built-in emails in Chromium', () => {
  for (const [name, { email, label, minContrast }] of Object.entries(EMAILS)) {
    for (const scheme of SCHEMES) {
      for (const width of WIDTHS) {
        it(`${name} at ${width} px, ${scheme}: fits, has a headline, a button to tap, readable text`, async () => {
          const context = await browser.newContext({
            viewport: { width, height: 400 },
            colorScheme: scheme,
            javaScriptEnabled: false,
          });
          try {
            const page = await context.newPage();
            // Email HTML loads nothing here: the built-ins' only remote part is an optional logo.
            await page.route('**/*', (route) => route.abort());
            await page.setContent(email.html, { waitUntil: 'load' });
            const shot = `${name}-${width}-${scheme}.png`;
            await page.screenshot({ path: join(artifacts, shot), fullPage: true });
            if (process.env.UPDATE_SCREENSHOTS === '1')
              await page.screenshot({ path: join(readmeShots, shot), fullPage: true });

            await expectReadable(page, label, width, scheme, minContrast);
          } finally {
            await context.close();
          }
        });
      }
    }
  }
});

describe('the footer links of a product email in Chromium', () => {
  for (const scheme of SCHEMES) {
    for (const width of WIDTHS) {
      it(`at ${width} px, ${scheme}: "Manage notification settings" and "Unsubscribe" on screen and readable`, async () => {
        const context = await browser.newContext({
          viewport: { width, height: 400 },
          colorScheme: scheme,
          javaScriptEnabled: false,
        });
        try {
          const page = await context.newPage();
          await page.route('**/*', (route) => route.abort());
          await page.setContent(withFooter.html, { waitUntil: 'load' });
          for (const label of ['Manage notification settings', 'Unsubscribe']) {
            const measured = await look(page, label);
            expect(measured.button, `a visible "${label}" link`).toBeDefined();
            const link = measured.button as NonNullable<Look['button']>;
            expect(link.left).toBeGreaterThanOrEqual(0);
            expect(link.right).toBeLessThanOrEqual(width);
            // The footer's muted grey (#697279) on the light page is 4.65:1.
            expect(link.contrast, `"${label}" readable on its background`).toBeGreaterThanOrEqual(4.5);
          }
        } finally {
          await context.close();
        }
      });
    }
  }
});
