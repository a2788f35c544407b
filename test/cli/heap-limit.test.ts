/**
 * An input that needs more JavaScript heap than Node.js allows ends in a
 * typed error (exit 2, where the input stood, what heap to give), not in
 * V8's out-of-memory abort (exit 134, a native stack trace), and leaves
 * nothing half-written (core/heap.ts). The bundled command runs under
 * NODE_OPTIONS=--max-old-space-size=64 (a heap limit of 112 MB): parsing a
 * 3,000-Service kube-proxy node (96,000 rules) needs more, and so does
 * generating a 30,000-Service one. The same inputs under the default limit
 * work (the other tests of `trace` and `gen`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from '../helpers/cli.js';

let cli = '';
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nfvm-heap-limit-'));
  cli = await buildCli(dir);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args: readonly string[], heapMb?: number): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, NODE_OPTIONS: heapMb === undefined ? '' : `--max-old-space-size=${heapMb}` };
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectTypedOutOfHeap(r: { status: number | null; stdout: string; stderr: string }, where: RegExp): void {
  expect(r.stderr).not.toMatch(/FATAL ERROR|Native stack trace|internal error|\n\s+at /);
  expect(r.status, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(where);
  expect(r.stderr).toMatch(/needs more memory than this Node\.js allows its JavaScript heap \(\d+ MB in use, the limit \d+ MB\); a larger heap, e\.g\. NODE_OPTIONS=--max-old-space-size=\d+/);
}

describe('a heap too small for the input', () => {
  it('trace: parsing a 96,000-rule node stops with a typed error at the line it reached', () => {
    const node = join(dir, 'k3000');
    const g = run(['gen', 'kube-proxy', '--services', '3000', '--endpoints', '10', '--mode', 'iptables', node]);
    expect(g.status, g.stderr).toBe(0);
    const r = run(['trace', node, '--packet', 'tcp 10.200.0.5:40000 > 10.96.0.10:443 syn iif cni0'], 64);
    expectTypedOutOfHeap(r, /iptables-save\.txt:\d+:1: parsing the ruleset needs more memory/);
    // the same node under the default limit
    const ok = run(['trace', node, '--packet', 'tcp 10.200.0.5:40000 > 10.96.0.10:443 syn iif cni0']);
    expect(ok.status, ok.stderr).toBe(0);
  }, 120_000);

  it('gen: generating a 30,000-Service node stops with a typed error and writes nothing', () => {
    const out = join(dir, 'k30000');
    const r = run(['gen', 'kube-proxy', '--services', '30000', '--endpoints', '10', '--mode', 'iptables', out], 64);
    expectTypedOutOfHeap(r, /^nfvm gen: generating the kube-proxy node needs more memory/);
    expect(existsSync(out)).toBe(false);
    // no temporary directory left beside it
    expect(readdirSync(dir).filter((f) => f.includes('k30000'))).toEqual([]);
  }, 120_000);
});
