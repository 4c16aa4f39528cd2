/**
 * What a person checks in an email laid out in Chromium, measured in the page: shared by the
 * screenshot tests (test/templates/screenshots*.test.ts).
 */
import type { Page } from 'playwright-core';

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
