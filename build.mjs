// Builds the esbuild bundles: the `nfvm` command, the library and the benchmarks.
import { build } from 'esbuild';
import { chmod, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';

const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', sourcemap: true, legalComments: 'none', logLevel: 'warning' };
await mkdir('dist', { recursive: true });
await build({ ...common, entryPoints: ['cli/main.ts'], outfile: 'dist/cli.mjs', banner: { js: '#!/usr/bin/env node' } });
await build({ ...common, entryPoints: ['index.ts'], outfile: 'dist/index.mjs' });
if (existsSync('bench/main.ts')) await build({ ...common, entryPoints: ['bench/main.ts'], outfile: 'dist/bench.mjs', external: ['tinybench'] });
await chmod('dist/cli.mjs', 0o755);
