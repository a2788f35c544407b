// The `nfvm` command as it ships, built into a directory: nfvm.cjs (cli/main.ts bundled as one CommonJS
// script), cli.mjs (the executable, cli/launch.ts, which runs nfvm.cjs) and, when `warm`, nfvm.cjs.cache:
// V8's code of one run of the example trace (cli/code-cache.ts). build.mjs and the tests build it here.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmod, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = dirname(fileURLToPath(import.meta.url));
const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: true, legalComments: 'none', logLevel: 'warning' };

/** The run whose compiled code is cached: the README's first trace. */
export const WARM_ARGS = ['trace', join(REPO, 'examples/node'), '--packet', 'tcp 198.51.100.7:40000 > 192.168.1.10:30443 syn iif eth0'];

export async function bundleCli(dir, { warm = false, sourcemap = true } = {}) {
  // whitespace and comments out (names kept, for profiles and stack traces): less to read and check at each start,
  // and ASCII only, so read as Latin-1
  const opts = { ...common, sourcemap, minifyWhitespace: true, minifySyntax: true, charset: 'ascii' };
  await build({
    ...opts,
    entryPoints: [join(REPO, 'cli/main.ts')],
    outfile: join(dir, 'nfvm.cjs'),
    format: 'cjs',
    // the bundle's import.meta.url is the executable's (cli/code-cache.ts runBundle passes it)
    define: { 'import.meta.url': '__nfvm_import_meta_url' },
    banner: { js: 'var __nfvm_import_meta_url = module.nfvmEntry ?? require("node:url").pathToFileURL(__filename).href;' },
  });
  await build({ ...opts, entryPoints: [join(REPO, 'cli/launch.ts')], outfile: join(dir, 'cli.mjs'), format: 'esm', banner: { js: '#!/usr/bin/env node' } });
  await chmod(join(dir, 'cli.mjs'), 0o755);
  await rm(join(dir, 'nfvm.cjs.cache'), { force: true });
  if (warm) {
    const r = spawnSync(process.execPath, [join(dir, 'cli.mjs'), ...WARM_ARGS], { env: { ...process.env, NFVM_WRITE_CODE_CACHE: '1' }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the example trace failed while the code cache was made: ${r.stderr || r.error}`);
  }
  return join(dir, 'cli.mjs');
}
