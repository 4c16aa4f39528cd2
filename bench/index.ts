/**
 * `npm run bench`: runs every bench in this folder (each a file exporting `run()`), one after the
 * other, against the freshly built package.
 */
import { readdirSync } from 'node:fs';

const files = readdirSync(new URL('.', import.meta.url))
  .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && file !== 'index.ts')
  .sort();

for (const file of files) {
  const bench: { run(): Promise<void> } = await import(`./${file}`);
  try {
    await bench.run();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  }
}
