/**
 * The built-in emails and the shared layout, stylesheet and partials they use. Sources live in
 * the package's `templates/` folder and are read once, on first use — never at render time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TemplateError } from '../errors.js';
import type { EmailCategory } from '../message.js';
import type { TemplateAssets } from './compile.js';
import { type DataOf, defineTemplate, type TemplateHandle } from './define.js';
import { toInstant } from './fields.js';
import { clearBuiltinMessages } from './i18n.js';

/** The fields of each built-in email. */
export const BUILTIN_FIELDS = {
  verification: { username: 'string', verificationUrl: 'url', expiresInMinutes: 'minutes?' },
  'password-reset': { username: 'string', resetUrl: 'url', expiresInMinutes: 'minutes' },
  welcome: { username: 'string', actionUrl: 'url?' },
  'security-alert': {
    username: 'string',
    event: 'sign-in|password-changed',
    occurredAt: 'datetime',
    timeZone: 'timeZone?',
    device: 'string',
    location: 'string?',
    secureAccountUrl: 'url',
  },
  'product-update': {
    username: 'string?',
    headline: 'string',
    summary: 'string',
    actionUrl: 'url',
    actionLabel: 'string?',
  },
  reminder: {
    username: 'string',
    task: 'string',
    remaining: 'rows?',
    actionUrl: 'url',
    actionLabel: 'string?',
  },
  'order-confirmation': {
    username: 'string',
    reference: 'string',
    items: 'rows',
    total: 'string',
    totalLabel: 'string?',
    orderUrl: 'url',
  },
  'maintenance-notice': {
    username: 'string?',
    startsAt: 'datetime',
    endsAt: 'datetime',
    timeZone: 'timeZone?',
    affected: 'string',
    statusUrl: 'url',
  },
} as const;

/**
 * The category of each built-in (issue 13's rules). Verification, password reset, welcome and the
 * order confirmation are mail the user asked for by what they did: `transactional`, so a hard
 * bounce or a complaint holds them back, and preferences never do. The security alert is
 * `security`: never held back, never sent as anything else. Product updates, reminders and
 * maintenance notices are `product`: on by default, and a user can turn them off.
 */
export const BUILTIN_CATEGORIES: Readonly<Record<keyof typeof BUILTIN_FIELDS, EmailCategory>> = {
  verification: 'transactional',
  'password-reset': 'transactional',
  welcome: 'transactional',
  'security-alert': 'security',
  'product-update': 'product',
  reminder: 'product',
  'order-confirmation': 'transactional',
  'maintenance-notice': 'product',
};

/**
 * Rules across a built-in's fields, which each field's own type cannot say: a maintenance window
 * must end after it starts. Run with the field checks wherever a template's data is checked (the
 * helper, `sendTemplate`, `sendBatch`, `render`, the Kafka producer and worker), so no path sends
 * a notice that ends before it begins. Throws a `TemplateError` naming the field; data whose
 * fields are missing or malformed is left to the field checks.
 */
export function checkBuiltinRules(template: string, data: Readonly<Record<string, unknown>>): void {
  if (template !== 'maintenance-notice') return;
  const startsAt = toInstant(data.startsAt);
  const endsAt = toInstant(data.endsAt);
  if (startsAt && endsAt && endsAt.getTime() <= startsAt.getTime())
    throw new TemplateError(template, 'must be after startsAt', { field: 'endsAt' });
}

/** The data each built-in email takes, by template name. */
export type BuiltinTemplates = { [K in keyof typeof BUILTIN_FIELDS]: DataOf<(typeof BUILTIN_FIELDS)[K]> };

let root: string | undefined;
let handles: TemplateHandle[] | undefined;
let assets: TemplateAssets | undefined;

/** The package's own `templates/` folder, found from this module's location, never the working directory. */
export function builtinTemplatesDir(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'templates', 'layout.eta'))) {
      root = join(dir, 'templates');
      return root;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('mailroom: the package is missing its templates folder');
    dir = parent;
  }
}

/** Forgets the sources read so far, so the next use reads them afresh (live reload in the preview). */
export function clearBuiltinCache(): void {
  handles = undefined;
  assets = undefined;
  clearBuiltinMessages();
}

/** Handles of the built-in emails. */
export function builtinTemplates(): readonly TemplateHandle[] {
  handles ??= Object.entries(BUILTIN_FIELDS).map(([name, fields]) =>
    defineTemplate({
      name,
      fields,
      dir: join(builtinTemplatesDir(), name),
      category: BUILTIN_CATEGORIES[name as keyof typeof BUILTIN_FIELDS],
    }),
  ) as TemplateHandle[];
  return handles;
}

/** The built-in layout (`default`), stylesheet and partials (`@button`, `@greeting`). */
export function builtinAssets(): TemplateAssets {
  if (assets) return assets;
  const dir = builtinTemplatesDir();
  const partialsDir = join(dir, 'partials');
  const partials = new Map(
    readdirSync(partialsDir)
      .filter((file) => file.endsWith('.eta'))
      .map((file) => [file.slice(0, -4), readFileSync(join(partialsDir, file), 'utf8')] as const),
  );
  assets = {
    layouts: new Map([['default', readFileSync(join(dir, 'layout.eta'), 'utf8')]]),
    partials,
    css: readFileSync(join(dir, 'style.css'), 'utf8'),
  };
  return assets;
}
