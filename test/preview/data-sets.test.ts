/**
 * Preview data as tests: every data set of every template (the built-in emails and the fixture
 * folder's) renders without error, and its HTML and text are kept as snapshots. The preview page
 * and this suite read the same files, so what a person looks at is what CI checks.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadPreviewSources } from '../../src/preview/sources.js';
import { memoryTransport } from '../../src/transports/memory.js';

const templatesDir = fileURLToPath(new URL('../fixtures/templates/', import.meta.url));
const sources = loadPreviewSources(
  { transport: memoryTransport(), from: 'Acme <no-reply@acme.example>', appName: 'Acme' },
  templatesDir,
);
const cases = sources.templates.flatMap((t) => t.sets.map((set) => [t.name, set.name, set] as const));

// The footer carries the year: render as of one fixed day so the snapshots do not age.
beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
});
afterAll(() => vi.useRealTimers());

describe('preview data sets', () => {
  it('finds the built-in emails and the folder templates, each with its sets', () => {
    expect(sources.problems).toEqual([]);
    expect(Object.fromEntries(sources.templates.map((t) => [t.name, t.sets.map((s) => s.name)]))).toEqual({
      invoice: ['default', 'huge-amount'],
      'maintenance-notice': ['default', 'long-values', 'no-name'],
      'order-confirmation': ['default', 'long-values'],
      'password-reset': ['default', 'long-name', 'one-minute'],
      'product-update': ['default', 'long-values'],
      reminder: ['default', 'long-values', 'no-list'],
      'security-alert': ['default', 'long-values', 'password-changed'],
      verification: ['default', 'long-name', 'unicode'],
      welcome: ['default', 'long-name', 'no-action'],
    });
  });

  it.each(cases)('%s / %s renders, and matches its snapshot', (template, _name, set) => {
    expect(set.problem).toBeUndefined();
    const rendered = sources.service.render(template, set.data ?? {});
    expect(rendered.subject).not.toBe('');
    expect(rendered.html).toMatchSnapshot('html');
    expect(rendered.text).toMatchSnapshot('text');
    expect(rendered.subject).toMatchSnapshot('subject');
  });
});

// Every built-in in every shipped locale besides English (which the sets above cover), with its
// default set: words, dates, durations, lang and dir.
const LOCALES = ['de', 'fr', 'es', 'pt-BR', 'ar'];
const builtins = sources.templates.filter((t) => t.name !== 'invoice');
const localeCases = builtins.flatMap((t) =>
  LOCALES.map((locale) => [t.name, locale, t.sets.find((set) => set.name === 'default')] as const),
);

describe('preview data sets in every shipped locale', () => {
  it.each(localeCases)('%s in %s renders, and matches its snapshot', (template, locale, set) => {
    const rendered = sources.service.render(template, set?.data ?? {}, { locale });
    expect(rendered.html).toContain(`lang="${locale}"`);
    expect(rendered.html.includes(' dir=rtl ')).toBe(locale === 'ar');
    expect(rendered.html).toMatchSnapshot('html');
    expect(rendered.text).toMatchSnapshot('text');
    expect(rendered.subject).toMatchSnapshot('subject');
  });
});
