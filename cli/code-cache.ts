/**
 * Running the command bundle through V8's code cache.
 *
 * `nfvm` is two files in dist/: nfvm.cjs, the commands bundled as one
 * CommonJS script, and cli.mjs, the executable that runs it (cli/launch.ts).
 * The build runs the example trace once and keeps V8's compiled code of
 * every function it met (nfvm.cjs.cache). A command then starts from that
 * code instead of compiling the 1.2 MB bundle again: 50-70 ms of the
 * 200-300 ms a short command took on a 2-core machine.
 *
 * The cache starts with the SHA-1 of the bundle it was made from (V8 itself
 * compares only the source's length); V8 checks the rest against its
 * version and flags and rejects what does not fit (another Node,
 * `node --some-flag`, a damaged file). In every such case, and without a
 * cache, the bundle is compiled as usual. Only the bundle nfvm built is run:
 * nothing from a command's input is ever compiled.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** The CommonJS bundle next to the executable. */
export const BUNDLE_FILE = 'nfvm.cjs';
/** Its code cache, written by the build: a SHA-1 of the bundle it was made from and of the data, then V8's data. */
export const CACHE_SUFFIX = '.cache';
const HASH_BYTES = 20;

/**
 * The bundle as a function of CommonJS's module variables, on one line with
 * the bundle's first so that line numbers stay the file's.
 */
export function bundleScript(source: string, file: string, cachedData: Buffer | undefined): Script {
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
}

/**
 * What became of the cache: none to read; made for another bundle or
 * damaged (V8 compares only the source's length and, in a release build,
 * does not checksum its data: nfvm's hash does both); rejected by V8
 * (another V8 or other flags); used.
 */
export type CacheUse = 'none' | 'mismatch' | 'rejected' | 'used';

function digest(bundle: Buffer, data: Buffer): Buffer {
  return createHash('sha1').update(bundle).update(data).digest();
}

/** The bundle `file` compiled, from its cache when that fits. */
export function loadBundle(file: string, useCache = true): { script: Script; cache: CacheUse } {
  const bytes = readFileSync(file);
  const source = bytes.toString('latin1');
  let cached: Buffer | undefined;
  try {
    cached = useCache ? readFileSync(file + CACHE_SUFFIX) : undefined;
  } catch {
    cached = undefined;
  }
  if (cached === undefined || cached.length <= HASH_BYTES) return { script: bundleScript(source, file, undefined), cache: 'none' };
  const data = cached.subarray(HASH_BYTES);
  if (!digest(bytes, data).equals(cached.subarray(0, HASH_BYTES))) return { script: bundleScript(source, file, undefined), cache: 'mismatch' };
  const script = bundleScript(source, file, data);
  return { script, cache: script.cachedDataRejected === true ? 'rejected' : 'used' };
}

/** Writes the cache of what `script` (the bundle `file`) has compiled so far. */
export function writeCache(file: string, script: Script): void {
  const tmp = `${file}${CACHE_SUFFIX}.${process.pid}`;
  const data = script.createCachedData();
  writeFileSync(tmp, Buffer.concat([digest(readFileSync(file), data), data]));
  renameSync(tmp, file + CACHE_SUFFIX);
}

/**
 * Runs the bundle `file` as the executable `entry` (its URL: what the
 * bundle's `import.meta.url` stands for, so that replay's worker threads
 * start the executable again). With `makeCache`, the cache of the
 * functions this run compiled is written beside the bundle at exit (the
 * build does this once).
 */
export function runBundle(file: string, entry: string, makeCache: boolean): void {
  const { script } = loadBundle(file, !makeCache);
  if (makeCache) process.on('exit', () => writeCache(file, script));
  const module = { exports: {}, nfvmEntry: entry };
  const run = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void;
  run(module.exports, createRequire(file), module, file, dirname(file));
}
