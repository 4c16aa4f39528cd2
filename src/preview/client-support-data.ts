/**
 * Internal: the email-client support table the client-support check reads, extracted from the
 * `caniemail` package's data (caniemail.com's tests, MIT) down to what the check needs: for each
 * feature, the clients whose latest tested version does not support it, or only in part.
 *
 * `caniemail` is a devDependency, not a dependency: its data is 650 KB and its own dependencies
 * (a CSS parser, an HTML parser, a Prettier plugin …) are for its linter, which we do not use. The
 * build (`npm run build`) runs this file to write `dist/client-support.json` (about a tenth of the
 * size); from source (tests, `tsx`) the table is extracted from the installed package instead.
 *
 * The build step is client-support-build.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file the build writes next to the bundles. */
export const SUPPORT_FILE = 'client-support.json';

/** One caniemail feature, reduced. */
export interface SupportFeature {
  /** caniemail's id, e.g. `css-display-flex`; its page is `https://www.caniemail.com/features/<slug>/`. */
  readonly slug: string;
  /** caniemail's title, e.g. `display:flex`, `<video> element`, `width attribute`. */
  readonly title: string;
  readonly category: 'html' | 'css' | 'image' | 'others';
  /** `family/platform` keys (`outlook/windows`) whose latest tested version has no support. */
  readonly unsupported: readonly string[];
  /** `family/platform` keys whose latest tested version supports it in part. */
  readonly partial: readonly string[];
}

/** The table. */
export interface SupportData {
  readonly version: 1;
  /** caniemail's `last_update_date`. */
  readonly updated: string;
  /** Display names: `gmail` → `Gmail`, `outlook-com` → `Outlook.com`. */
  readonly names: Readonly<Record<string, string>>;
  readonly features: readonly SupportFeature[];
}

interface RawFeature {
  slug: string;
  title: string;
  category: SupportFeature['category'];
  stats: Record<string, Record<string, Record<string, string>>>;
}
export interface RawData {
  last_update_date: string;
  nicenames: { family: Record<string, string>; platform: Record<string, string> };
  data: RawFeature[];
}

/** Reduces caniemail's JSON to the table: only features some client lacks, latest versions only. */
export function extractSupport(raw: RawData): SupportData {
  const features: SupportFeature[] = [];
  for (const feature of raw.data) {
    const unsupported: string[] = [];
    const partial: string[] = [];
    for (const [family, platforms] of Object.entries(feature.stats ?? {})) {
      for (const [platform, versions] of Object.entries(platforms)) {
        // Versions are listed oldest first, as caniemail's own pages read them.
        const latest = Object.values(versions).at(-1)?.trim()[0];
        if (latest === 'n') unsupported.push(`${family}/${platform}`);
        else if (latest === 'a') partial.push(`${family}/${platform}`);
      }
    }
    if (unsupported.length + partial.length === 0) continue;
    features.push({
      slug: feature.slug,
      title: feature.title.trim(),
      category: feature.category,
      unsupported,
      partial,
    });
  }
  return {
    version: 1,
    updated: raw.last_update_date,
    names: { ...raw.nicenames.family, ...raw.nicenames.platform },
    features,
  };
}

let cached: SupportData | null | undefined;

/** The table from `dist/` when built, else from the installed `caniemail`; null when neither is there. */
export function loadSupport(): SupportData | null {
  if (cached !== undefined) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, dirname(here)]) {
    const file = join(dir, SUPPORT_FILE);
    if (!existsSync(file)) continue;
    const data = JSON.parse(readFileSync(file, 'utf8')) as SupportData;
    if (data.version === 1) {
      cached = data;
      return data;
    }
  }
  try {
    cached = extractSupport(readCaniemail());
  } catch {
    cached = null;
  }
  return cached;
}

/** caniemail's own JSON, from the installed package. */
export function readCaniemail(): RawData {
  const file = createRequire(import.meta.url).resolve('caniemail/caniemail.json');
  return JSON.parse(readFileSync(file, 'utf8')) as RawData;
}
