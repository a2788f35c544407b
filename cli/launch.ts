/**
 * The `nfvm` executable (dist/cli.mjs): runs the command bundle beside it
 * (dist/nfvm.cjs, cli/main.ts bundled) from V8's code cache, see
 * cli/code-cache.ts. NFVM_WRITE_CODE_CACHE=1 is the build's: it writes the
 * cache of the run.
 */
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILE, runBundle } from './code-cache.js';

runBundle(fileURLToPath(new URL(`./${BUNDLE_FILE}`, import.meta.url)), import.meta.url, process.env.NFVM_WRITE_CODE_CACHE === '1');
