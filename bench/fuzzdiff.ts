/**
 * `nfvm diff` and `nfvm fuzz` timed from outside, on the esbuild bundle
 * (CPU time of the child: user + system):
 *  - diff of a 30,000-Service kube-proxy ruleset (bench/gen-kube.ts, two
 *    endpoints each) against the same with one planted change (the DNAT
 *    target of one endpoint in the middle), on the example node: the
 *    whole run, load of both rulesets included, until the change is found;
 *  - fuzz --random-rulesets: generated rulesets per minute of CPU.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeProxyRuleset, kubeRuleCount } from './gen-kube.js';
import { kubeServices } from '../gen/kube-proxy.js';
import { timed } from './proc.js';

export interface FuzzDiffRow {
  task: string;
  cpu: number;
  wall: number;
  result: string;
}

export function benchFuzzDiff(cli: string, repo: string): FuzzDiffRow[] {
  const rows: FuzzDiffRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'nfvm-bench-diff-'));
  try {
    const opts = { services: 30_000, endpointsPerService: 2 };
    const old = kubeProxyRuleset(opts);
    // Service 15000's first endpoint: its DNAT target moves to the next address
    const sv = kubeServices({ services: opts.services, endpoints: opts.endpointsPerService, mode: 'iptables' })[15_000]!;
    const from = `--to-destination ${sv.endpoints[0]}:${sv.targetPort}`;
    if (old.split(from).length !== 2) throw new Error('planted change not unique');
    const changed = old.replace(from, `--to-destination ${sv.endpoints[0]!.replace(/\d+$/, (d) => String(Number(d) ^ 1))}:${sv.targetPort}`);
    writeFileSync(join(dir, 'old.txt'), old);
    writeFileSync(join(dir, 'new.txt'), changed);
    for (let i = 0; i < 3; i++) {
      const t = timed(process.execPath, [cli, 'diff', join(dir, 'old.txt'), join(dir, 'new.txt'), '--snapshot', join(repo, 'examples', 'node'), '--packets', '200', '--max', '1', '--json'], [1]);
      const doc = JSON.parse(t.stdout) as { differences: { packets: string[]; differs: string[] }[] };
      const d = doc.differences[0];
      rows.push({ task: `diff kube-proxy ${opts.services} Services (${kubeRuleCount(opts)} rules), one DNAT target changed`, cpu: t.cpu, wall: t.wall, result: d ? `found: ${d.packets.join(' then ')} (${d.differs.join(', ')})` : 'NOT FOUND' });
    }
    for (let i = 0; i < 3; i++) {
      const t = timed(process.execPath, [cli, 'fuzz', '--random-rulesets', '3000', '--seed', String(i + 1), '--json'], [0, 1]);
      const doc = JSON.parse(t.stdout) as { randomRulesets: { rulesets: number; rulesetsPerMinute: number; cpuSeconds: number }; divergences: unknown[] };
      rows.push({ task: 'fuzz --random-rulesets 3000 (16 packets each, every engine)', cpu: t.cpu, wall: t.wall, result: `${Math.round((doc.randomRulesets.rulesets / t.cpu) * 60)} rulesets/min of child CPU (${doc.randomRulesets.rulesetsPerMinute}/min inside the loop), ${doc.divergences.length} divergences` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
