/**
 * `nfvm bench --quick` on the bundles (the command and the benchmark bundle
 * beside it, as `npm run build` lays them out): the output's shape, not its
 * timings: every mode and size has its first- and established-packet rows
 * (IPVS: a reason while the node does not run it), the update and
 * ClassBench rows, and the --svg chart has one line per mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO } from '../helpers/corpus.js';
import { buildCli, runCli } from '../helpers/cli.js';

let dir: string;
let cli: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nfvm-bench-'));
  cli = await buildCli(dir);
  await build({ bundle: true, platform: 'node', format: 'esm', logLevel: 'error', entryPoints: [join(REPO, 'bench/main.ts')], outfile: join(dir, 'bench.mjs') });
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nfvm bench --quick', () => {
  it('prints every mode and size, the updates and ClassBench as JSON, and the chart', () => {
    const svg = join(dir, 'chart.svg');
    const r = runCli(cli, ['bench', '--quick', '--json', '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as { schema: number; quick: boolean; packets: Record<string, unknown>[]; update: Record<string, unknown>[]; classbench: Record<string, unknown>[] };
    expect(doc.schema).toBe(1);
    expect(doc.quick).toBe(true);
    for (const services of [100, 1000]) {
      for (const mode of ['iptables', 'iptables-opt', 'ipvs', 'nftables']) {
        for (const packet of ['first', 'established']) {
          const row = doc.packets.find((p) => p.mode === mode && p.services === services && p.packet === packet);
          expect(row, `${mode} ${services} ${packet}`).toBeDefined();
          for (const k of ['ns/packet', 'Mpps', 'p50 ns', 'p99 ns']) expect(row![k], `${mode} ${services} ${packet} ${k}`).toBeGreaterThan(0);
          expect(row!['kernel rules walked']).toBeGreaterThanOrEqual(0);
        }
      }
    }
    // x_tables walks KUBE-SERVICES: the modelled rules grow with N in iptables mode only
    const walked = (mode: string, n: number) => doc.packets.find((p) => p.mode === mode && p.services === n && p.packet === 'first')!['kernel rules walked'] as number;
    expect(walked('iptables', 1000)).toBeGreaterThan(5 * walked('iptables', 100));
    expect(walked('nftables', 1000)).toBe(walked('nftables', 100));
    expect(doc.update).toHaveLength(1);
    for (const k of ['compile ms', 'one-Service change ms', 'bytecode+pool MB']) expect(doc.update[0]![k]).toBeGreaterThan(0);
    expect(doc.classbench.length).toBeGreaterThanOrEqual(process.env.CI ? 1 : 0);
    const chart = readFileSync(svg, 'utf8');
    expect(chart).toMatch(/^<svg /);
    expect(chart).toContain('Services (log scale)');
    expect(chart).toContain('ns per packet (log scale)');
    expect(chart.match(/<polyline /g)!.length).toBeGreaterThanOrEqual(5);
  }, 150_000);

  it('refuses an unknown option (exit 2)', () => {
    const r = runCli(cli, ['bench', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^nfvm: bench: unknown option --bogus/);
  });
});
