/**
 * The code cache the build keeps beside the command bundle
 * (cli/code-cache.ts): V8 takes it, it changes nothing a command prints,
 * and one that does not fit the bundle (made for another, damaged, empty,
 * missing) is not used: the bundle is compiled as usual.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE_FILE, CACHE_SUFFIX, loadBundle, writeCache } from '../../cli/code-cache.js';
import { setV8Flags } from '../../cli/v8-flags.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { REPO } from '../helpers/corpus.js';

let dir: string;
let cli: string;
let bundle: string;

beforeAll(async () => {
  // this process then compiles the bundle under the executable's V8 flags, as the executable does
  setV8Flags();
  dir = mkdtempSync(join(tmpdir(), 'nfvm-code-cache-'));
  cli = await buildCli(dir, true);
  bundle = join(dir, BUNDLE_FILE);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the executable makes of `cache` as the bundle's. */
function use(cache: Buffer) {
  writeFileSync(bundle + CACHE_SUFFIX, cache);
  return loadBundle(bundle).cache;
}

const TRACE = ['trace', join(REPO, 'examples/node'), '--packet', 'tcp 198.51.100.7:40000 > 192.168.1.10:30443 syn iif eth0'];
const SAVE = ['save', join(REPO, 'examples/node/iptables-save.txt')];

describe('code cache', () => {
  it('is written by the build and taken by V8 for the bundle it was made from', () => {
    const cache = readFileSync(bundle + CACHE_SUFFIX);
    expect(cache.length).toBeGreaterThan(100_000);
    expect(use(cache)).toBe('used');
  });

  it('changes nothing a command prints; one that does not fit is not used and does no harm', () => {
    const good = readFileSync(bundle + CACHE_SUFFIX);
    const withCache = [runCli(cli, TRACE), runCli(cli, SAVE), runCli(cli, ['save', join(dir, 'missing.txt')])];
    expect(withCache[0]!.code).toBe(0);
    expect(withCache[0]!.out).toContain('DNAT to 10.244.1.30:8443');
    expect(withCache[1]!.code).toBe(0);
    expect(withCache[2]!.code).toBe(2);
    expect(withCache[2]!.err).toContain('no such file');
    // a damaged cache (a byte of V8's data changed)
    const damaged = Buffer.from(good);
    damaged[damaged.length >> 1]! ^= 0xff;
    // one made for another bundle of the same length (V8 alone would take it)
    const source = readFileSync(bundle);
    const otherFile = join(dir, 'other.cjs');
    writeFileSync(otherFile, Buffer.from(source.toString('latin1').replace('nfvm', 'nfvX'), 'latin1'));
    writeCache(otherFile, loadBundle(otherFile, false).script);
    const other = readFileSync(otherFile + CACHE_SUFFIX);
    const cases: [Buffer | undefined, string][] = [[damaged, 'mismatch'], [other, 'mismatch'], [Buffer.alloc(0), 'none'], [undefined, 'none']];
    for (const [cache, what] of cases) {
      if (cache) expect(use(cache)).toBe(what);
      else {
        rmSync(bundle + CACHE_SUFFIX);
        expect(loadBundle(bundle).cache).toBe(what);
      }
      const runs = [runCli(cli, TRACE), runCli(cli, SAVE), runCli(cli, ['save', join(dir, 'missing.txt')])];
      expect(runs).toEqual(withCache);
    }
    expect(use(good)).toBe('used');
  }, 60_000);
});
