import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'testing/index': 'src/testing/index.ts',
      'preview/index': 'src/preview/index.ts',
      'kafka/index': 'src/kafka/index.ts',
      'webhooks/index': 'src/webhooks/index.ts',
      'unsubscribe/index': 'src/unsubscribe/index.ts',
      'nestjs/index': 'src/nestjs/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    target: 'node20',
    sourcemap: true,
    splitting: true,
  },
  {
    // The CLI is one ESM executable with the library bundled in.
    entry: { 'cli/index': 'src/cli/index.ts' },
    format: ['esm'],
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    shims: true,
    sourcemap: true,
  },
]);
