import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Examples import 'mailroom' like a user would; in the test run that is the source.
    alias: [
      { find: /^mailroom\/testing$/, replacement: src('testing/index.ts') },
      { find: /^mailroom\/preview$/, replacement: src('preview/index.ts') },
      { find: /^mailroom\/kafka$/, replacement: src('kafka/index.ts') },
      { find: /^mailroom$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
});
