/**
 * Big rulesets from outside: `nfvm save` and `nfvm disasm --optimize=1` of
 * kube-proxy rulesets (bench/gen-kube.ts, 2 endpoints per Service), of a
 * zoned host/edge firewall with ClassBench-shaped rules (firewallRuleset()
 * below) and of linear chains (bench/kernel.ts's rule) of 10k, 100k and
 * 200k rules (NFVM_BENCH_BIG): wall and CPU seconds and peak resident memory
 * of the bundled command, so that linearity shows (targets at 100k: save
 * ≤ 1 s, disasm ≤ 2 s, both ≤ 200 MB).
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

/**
 * A filter table of about `n` rules shaped like an edge firewall: conntrack
 * state rules first, then per zone (an input interface and a /16) a jump to
 * the zone's chain, whose rules are ClassBench-shaped 5-tuple filters
 * (source and destination prefixes of mixed lengths, tcp/udp with single
 * ports, port ranges or none, some icmp), each with a comment, some with
 * `-m conntrack --ctstate NEW`, ending in ACCEPT, DROP, REJECT or LOG.
 * Deterministic.
 */
export function firewallRuleset(n: number): string {
  let x = 0x9e3779b9;
  const rnd = (k: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % k;
  };
  const ip = (): string => `${10 + rnd(200)}.${rnd(256)}.${rnd(256)}.${rnd(256)}`;
  const net = (lens: readonly number[]): string => {
    const len = lens[rnd(lens.length)]!;
    const v = ((10 + rnd(200)) * 16777216 + rnd(16777216)) >>> 0;
    const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const a = (v & m) >>> 0;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${len}`;
  };
  const WELL_KNOWN = [22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995, 3306, 5432, 6379, 8080, 8443, 9090];
  const port = (): string => {
    const r = rnd(10);
    if (r < 6) return String(WELL_KNOWN[rnd(WELL_KNOWN.length)]);
    const lo = 1024 + rnd(60000);
    return `${lo}:${Math.min(65535, lo + rnd(2000))}`;
  };
  const zones = Math.max(1, Math.round(n / 1000));
  const head = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]'];
  const rules: string[] = [
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "return traffic" -j ACCEPT',
    '-A INPUT -m conntrack --ctstate INVALID -j DROP',
    '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "return traffic" -j ACCEPT',
    '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
  ];
  const per = Math.max(1, Math.floor((n - rules.length - 2 * zones) / zones));
  for (let z = 0; z < zones; z++) {
    const chain = `ZONE-${String(z).padStart(4, '0')}-IN`;
    head.push(`:${chain} - [0:0]`);
    rules.push(`-A FORWARD -i eth${z % 8} -s 10.${z & 255}.0.0/16 -m comment --comment "zone ${z}" -j ${chain}`);
    for (let i = 0; i < per; i++) {
      const r = rnd(10);
      let spec = `-s ${net([8, 12, 16, 20, 24, 24, 28, 32, 32])} -d ${net([16, 24, 24, 32, 32, 32])}`;
      if (r < 6) spec += ` -p tcp -m tcp${rnd(3) === 0 ? ` --sport ${port()}` : ''} --dport ${port()}`;
      else if (r < 9) spec += ` -p udp -m udp --dport ${port()}`;
      else spec += ' -p icmp -m icmp --icmp-type 8';
      if (rnd(4) === 0) spec += ' -m conntrack --ctstate NEW';
      spec += ` -m comment --comment "fw ${z}.${i} ${ip()}"`;
      const v = rnd(20);
      spec += v < 12 ? ' -j ACCEPT' : v < 17 ? ' -j DROP' : v < 19 ? ' -j REJECT --reject-with icmp-port-unreachable' : ' -j LOG --log-prefix "fw-drop "';
      rules.push(`-A ${chain} ${spec}`);
    }
    rules.push(`-A ${chain} -j RETURN`);
  }
  return [...head, ...rules, 'COMMIT', ''].join('\n');
}

function linear(n: number): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  for (let i = 0; i < n; i++) lines.push(`-A INPUT ${chainRule(i)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export function benchBig(sizes = (process.env.NFVM_BENCH_BIG ?? '10000,100000,200000').split(',').map(Number), repeat = Number(process.env.NFVM_BENCH_REPEAT ?? 3)): BigRow[] {
  const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bench-big-'));
  const rows: BigRow[] = [];
  try {
    for (const n of sizes) {
      // kube-proxy: 8 rules per Service with 2 endpoints, plus 8
      const sets: [string, string][] = [
        ['kube-proxy', kubeProxyRuleset({ services: Math.round(n / 8), endpointsPerService: 2 })],
        ['firewall', firewallRuleset(n)],
        ['linear chain', linear(n)],
      ];
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
