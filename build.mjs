// Builds the esbuild bundles: the `nfvm` command (bundle.mjs), the library and the benchmarks.
import { build } from 'esbuild';
import { mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { bundleCli } from './bundle.mjs';

const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', sourcemap: true, legalComments: 'none', logLevel: 'warning' };
await mkdir('dist', { recursive: true });
await rm('dist/cli.mjs.map', { force: true });
await bundleCli('dist', { warm: true });
await build({ ...common, entryPoints: ['index.ts'], outfile: 'dist/index.mjs' });
if (existsSync('bench/main.ts')) await build({ ...common, entryPoints: ['bench/main.ts'], outfile: 'dist/bench.mjs', external: ['tinybench'] });
