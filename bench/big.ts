/**
 * Big rulesets from outside: `nfvm save` and `nfvm disasm --optimize=1` of
 * kube-proxy rulesets (bench/gen-kube.ts, 2 endpoints per Service) and of
 * linear chains (bench/kernel.ts's rule) of 25k, 50k and 100k rules: wall
 * and CPU seconds and peak resident memory of the bundled command, so that
 * linearity shows (targets at 100k: save ≤ 1 s, disasm ≤ 2 s, both ≤ 200 MB).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeProxyRuleset } from './gen-kube.js';
import { CLI } from './chain.js';
import { chainRule } from './kernel.js';
import { timed } from './proc.js';

export interface BigRow {
  ruleset: string;
  rules: number;
  command: string;
  'wall s': number;
  'cpu s': number;
  'peak MB': number;
}

function linear(n: number): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  for (let i = 0; i < n; i++) lines.push(`-A INPUT ${chainRule(i)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export function benchBig(sizes = (process.env.NFVM_BENCH_BIG ?? '25000,50000,100000').split(',').map(Number), repeat = Number(process.env.NFVM_BENCH_REPEAT ?? 3)): BigRow[] {
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bench-big-'));
  const rows: BigRow[] = [];
  try {
    for (const n of sizes) {
      // kube-proxy: 8 rules per Service with 2 endpoints, plus 8
      const sets: [string, string][] = [['kube-proxy', kubeProxyRuleset({ services: Math.round(n / 8), endpointsPerService: 2 })], ['linear chain', linear(n)]];
      for (const [name, text] of sets) {
        const f = join(tmp, `${name.replace(/ /g, '-')}-${n}.txt`);
        writeFileSync(f, text);
        const rules = text.split('\n').filter((l) => l.startsWith('-A ')).length;
        for (const args of [['save', f], ['disasm', '--optimize=1', f]]) {
          // the best of the repetitions: the machine is shared, the least disturbed run is the product's figure
          const runs = Array.from({ length: repeat }, () => timed(process.execPath, [CLI, ...args]));
          const best = (k: 'wall' | 'cpu' | 'rssMB') => Math.min(...runs.map((r) => r[k]));
          rows.push({ ruleset: name, rules, command: `nfvm ${args.slice(0, -1).join(' ')}`, 'wall s': +best('wall').toFixed(2), 'cpu s': +best('cpu').toFixed(2), 'peak MB': Math.round(best('rssMB')) });
          console.log(JSON.stringify(rows[rows.length - 1]));
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
