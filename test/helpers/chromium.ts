/**
 * Headless Chromium for the browser tests (Debian's `chromium`, driven by playwright-core). A
 * missing or broken browser is a failure with the way out in its message, never a skipped test.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

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
