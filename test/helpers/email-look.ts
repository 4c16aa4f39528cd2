/**
 * What a person checks in an email laid out in Chromium, measured in the page: shared by the
 * screenshot tests (test/templates/screenshots*.test.ts).
 */
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

export interface Look {
  /** The page's full width against the screen's. */
  scrollWidth: number;
  headline: { text: string; contrast: number; background: number } | undefined;
  body: { contrast: number; background: number };
  button: { left: number; right: number; height: number; contrast: number; label: string } | undefined;
}

/** What a person checks, measured in the page: sizes in CSS px, contrast as WCAG's ratio, background as relative luminance. */
export function look(page: Page, label: string): Promise<Look> {
  // Runs in the page (plain JavaScript: the test's own types know no DOM).
  return page.evaluate(String.raw`((buttonLabel) => {
    const rgb = (value) => (value.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r = 0, g = 0, b = 0]) => {
      const channel = (c) => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    /** The colour behind an element: the first opaque background of it or an ancestor. */
    const backdrop = (element) => {
      for (let node = element; node; node = node.parentElement) {
        const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
        if (a > 0.5) return [r ?? 0, g ?? 0, b ?? 0];
        const bgcolor = node.getAttribute('bgcolor');
        if (bgcolor && /^#[0-9a-f]{6}$/i.test(bgcolor))
          return [1, 3, 5].map((i) => Number.parseInt(bgcolor.slice(i, i + 2), 16));
      }
      return [255, 255, 255];
    };
    const contrastOf = (element) => {
      const fg = luminance(rgb(getComputedStyle(element).color));
      const bg = luminance(backdrop(element));
      return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    };
    const h1 = document.querySelector('h1');
    const paragraph = [...document.querySelectorAll('p')].find((p) => (p).offsetHeight > 0);
    const link = [...document.querySelectorAll('a')].find(
      (a) => a.textContent?.trim() === buttonLabel && (a).offsetHeight > 0,
    );
    const box = link?.getBoundingClientRect();
    return {
      scrollWidth: document.documentElement.scrollWidth,
      headline: h1
        ? { text: h1.textContent ?? '', contrast: contrastOf(h1), background: luminance(backdrop(h1)) }
        : undefined,
      body: paragraph
        ? { contrast: contrastOf(paragraph), background: luminance(backdrop(paragraph)) }
        : { contrast: 0, background: 0 },
      button:
        link && box
          ? {
              left: box.left,
              right: box.right,
              height: box.height,
              contrast: contrastOf(link),
              label: buttonLabel,
            }
          : undefined,
    };
  })(${JSON.stringify(label)})`);
}

/**
 * The checks a person makes of a laid-out email, measured by {@link look}: nothing wider than the
 * screen, a readable headline and body (WCAG 4.5), a light card in light mode and a dark one in
 * dark, and a visible `label` button that fits, can be tapped (40 px; 44 is the guideline) and
 * reads on its colour (`minButtonContrast`, default WCAG AA's 4.5: every label is chosen for
 * contrast with its fill).
 */
export async function expectReadable(
  page: Page,
  label: string,
  width: number,
  scheme: 'light' | 'dark',
  minButtonContrast = 4.5,
): Promise<void> {
  const measured = await look(page, label);
  expect(measured.scrollWidth, 'nothing wider than the screen').toBeLessThanOrEqual(width);
  expect(measured.headline, 'a headline (h1)').toBeDefined();
  expect(measured.headline?.contrast, 'the headline readable on its background').toBeGreaterThanOrEqual(4.5);
  expect(measured.body.contrast, 'body text readable on its background').toBeGreaterThanOrEqual(4.5);
  // Light means a light card, dark a dark one: what a reader in dark mode expects.
  if (scheme === 'dark') expect(measured.body.background).toBeLessThan(0.2);
  else expect(measured.body.background).toBeGreaterThan(0.7);
  expect(measured.button, `a visible "${label}" button`).toBeDefined();
  const button = measured.button as NonNullable<Look['button']>;
  expect(button.left).toBeGreaterThanOrEqual(0);
  expect(button.right).toBeLessThanOrEqual(width);
  expect(button.height, 'tall enough to tap (44 px guideline, 40 allowed)').toBeGreaterThanOrEqual(40);
  expect(button.contrast, 'the label readable on the button').toBeGreaterThanOrEqual(minButtonContrast);
}
