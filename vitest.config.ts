import { defineConfig } from 'vitest/config';
import { readFileSync } from 'node:fs';
import { scaled } from './test/helpers/runs.js';

export default defineConfig({
  // data files imported as their text, as esbuild's text loader does in build.mjs
  plugins: [
    {
      name: 'nfvm-text-files',
      load(id: string) {
        if (id.endsWith('.sysctl')) return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
        return undefined;
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // longer at NFVM_PROPERTY_SCALE > 1, as the run counts grow
    testTimeout: scaled(120_000),
    hookTimeout: 300_000,
    maxWorkers: 2,
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
  },
});
