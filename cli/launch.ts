/**
 * The `nfvm` executable (dist/cli.mjs): runs the command bundle beside it
 * (dist/nfvm.cjs, cli/main.ts bundled) from V8's code cache, see
 * cli/code-cache.ts. NFVM_WRITE_CODE_CACHE=1 is the build's: it writes the
 * cache of the run. V8's flags are set first (cli/v8-flags.ts), so that the
 * build's cache is made under the flags it is used with.
 */
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILE, runBundle } from './code-cache.js';
import { setV8Flags } from './v8-flags.js';

setV8Flags();
runBundle(fileURLToPath(new URL(`./${BUNDLE_FILE}`, import.meta.url)), import.meta.url, process.env.NFVM_WRITE_CODE_CACHE === '1');
