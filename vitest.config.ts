import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Examples import 'mailroom-js' like a user would; in the test run that is the source.
    alias: [
      { find: /^mailroom-js\/testing$/, replacement: src('testing/index.ts') },
      { find: /^mailroom-js\/preview$/, replacement: src('preview/index.ts') },
      { find: /^mailroom-js\/kafka$/, replacement: src('kafka/index.ts') },
      { find: /^mailroom-js$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
  },
});
