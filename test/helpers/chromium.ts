/**
 * Headless Chromium for the browser tests (Debian's `chromium`, driven by playwright-core). A
 * missing or broken browser is a failure with the way out in its message, never a skipped test.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { contrastRatio, MIN_TEXT_CONTRAST } from '../../src/contrast.js';

/** The Chromium binary: `CHROMIUM_PATH`, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Starts Chromium headless with no network of its own (no background requests, which this
 * machine's closed network refuses), plus `extraArgs`. `purpose` names the test in the error.
 */
export async function launchChromium(purpose: string, extraArgs: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is needed for ${purpose} and is not at ${CHROMIUM}: ` +
        'install it (apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary',
    );
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        ...extraArgs,
      ],
    });
  } catch (error) {
    throw new Error(`Chromium at ${CHROMIUM} did not start (${purpose}): ${(error as Error).message}`);
  }
}

/** A visible text of a page: its colour and the first opaque background behind it (CSS `rgb()`), and their contrast. */
export interface MeasuredText {
  text: string;
  color: string;
  background: string;
  ratio: number;
}

/**
 * Every visible, enabled element of `page` with text of its own, measured: its colour against the
 * first opaque background among it and its ancestors (white when none is), as WCAG 2.1 computes
 * contrast. `failing` are those under AA's 4.5:1. Runs as a script in the page (this project's
 * types have no DOM): what the page's own script would see.
 */
export async function measureTextContrast(
  page: Page,
): Promise<{ texts: MeasuredText[]; failing: MeasuredText[] }> {
  const found = (await page.evaluate(`(() => {
    const opaque = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const bg = getComputedStyle(e).backgroundColor;
        if (!/rgba\\(.*,\\s*0\\)$/.test(bg) && bg !== 'transparent') return bg;
      }
      return 'rgb(255, 255, 255)';
    };
    const found = [];
    for (const el of document.querySelectorAll('body *')) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || el.offsetParent === null || el.closest(':disabled')) continue;
      found.push({ text: el.textContent.trim().slice(0, 40), color: getComputedStyle(el).color, background: opaque(el) });
    }
    return found;
  })()`)) as Array<Omit<MeasuredText, 'ratio'>>;
  const hex = (rgb: string) =>
    `#${(rgb.match(/\d+/g) ?? [])
      .slice(0, 3)
      .map((n) => Number(n).toString(16).padStart(2, '0'))
      .join('')}`;
  const texts = found.map((t) => ({ ...t, ratio: contrastRatio(hex(t.color), hex(t.background)) }));
  return { texts, failing: texts.filter((t) => t.ratio < MIN_TEXT_CONTRAST) };
}
