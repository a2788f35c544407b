/**
 * The README's example of nfvm's fast-check arbitraries, run as a user
 * runs it: the code block as written, against the library bundle (the
 * esbuild bundle of index.ts), with this checkout's fast-check standing
 * for the user's.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, expect, it } from 'vitest';
import { REPO } from './helpers/corpus.js';

let dir: string | undefined;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('the nfvmArbitraries example of the README runs and its property holds', async () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('nfvmArbitraries(fc)'));
  expect(blocks.length, 'the README has the nfvmArbitraries example').toBe(1);
  dir = mkdtempSync(join(tmpdir(), 'nfvm-readme-'));
  const lib = join(dir, 'index.mjs');
  await build({ entryPoints: [join(REPO, 'index.ts')], bundle: true, platform: 'node', format: 'esm', outfile: lib, logLevel: 'error' });
  const fcPath = createRequire(join(REPO, 'package.json')).resolve('fast-check');
  const code = blocks[0]!
    .replace(/from 'nfvm'/, `from ${JSON.stringify(pathToFileURL(lib).href)}`)
    .replace(/from 'fast-check'/, `from ${JSON.stringify(pathToFileURL(fcPath).href)}`);
  expect(code).not.toMatch(/from '(nfvm|fast-check)'/);
  // what the example's property checks, said once it held (fc.assert throws when it does not)
  const file = join(dir, 'example.mjs');
  writeFileSync(file, `${code}\nconsole.log('property held');\n`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('property held\n');
}, 180_000);
