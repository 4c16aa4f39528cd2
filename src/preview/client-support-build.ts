/**
 * Build step (`npm run build` runs `tsx src/preview/client-support-build.ts dist` after tsup):
 * writes the client-support table extracted from the `caniemail` devDependency next to the
 * bundles, so that the published package needs neither caniemail nor its dependencies. Not part
 * of the package's code.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractSupport, readCaniemail, SUPPORT_FILE } from './client-support-data.js';

const out = process.argv[2];
if (!out) throw new Error('usage: tsx src/preview/client-support-build.ts <outDir>');
const data = extractSupport(readCaniemail());
const json = JSON.stringify(data);
writeFileSync(join(out, SUPPORT_FILE), json);
console.log(
  `${SUPPORT_FILE}: ${data.features.length} features, ${json.length} bytes (caniemail of ${data.updated})`,
);
