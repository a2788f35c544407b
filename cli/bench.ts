/**
 * `nfvm bench`: the kube-proxy benchmark (bench/kube-run.ts), run by the
 * benchmark bundle built beside this one (dist/bench.mjs, `npm run build`;
 * it loads tinybench, a development dependency, so it runs from a checkout).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCommand, UsageError, type CommandSpec } from './args.js';

export const BENCH: CommandSpec = {
  name: 'bench',
  usage: `  nfvm bench [--quick] [--json] [--svg FILE] [--kernel-model] [--services N,N,...] [--endpoints M]
      kube-proxy's modes (iptables unoptimized and optimized, IPVS, nftables)
      through the full node path for 100, 1k, 5k, 10k and 30k Services:
      ns per first and established packet, Mpps, p50/p99, the rules the
      kernel walks; rule-update latency (full compile, a one-Service change)
      and bytecode size; ClassBench ACL/FW/IPC at 1k and 10k rules. --json
      prints one JSON document, --svg FILE writes the chart (cost against
      N, log scales, one line per mode), --quick runs small sizes (CI, under
      a minute), --kernel-model prints the kernel's modelled cost beside
      nfvm's (calibrated as root: node dist/bench.mjs kernel-model). Runs
      from a checkout (the benchmark bundle, dist/bench.mjs, and tinybench).
`,
  options: {
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    svg: { type: 'string' },
    'kernel-model': { type: 'boolean' },
    services: { type: 'string' },
    endpoints: { type: 'string' },
  },
};

export function cmdBench(argv: readonly string[]): { out: string; code: number } | string {
  const a = parseCommand(BENCH, argv);
  if (a.help) return BENCH.usage;
  if (a.positionals.length) throw new UsageError(`bench takes no operands ("${a.positionals[0]}")`);
  const bundle = fileURLToPath(new URL('./bench.mjs', import.meta.url));
  if (!existsSync(bundle)) throw new UsageError(`bench: ${bundle} not found (build it from a checkout: npm run build)`);
  const args = [bundle, 'kube'];
  for (const f of ['quick', 'json', 'kernel-model']) if (a.flag(f)) args.push(`--${f}`);
  for (const s of ['svg', 'services', 'endpoints']) {
    const v = a.str(s);
    if (v !== undefined) args.push(`--${s}`, v);
  }
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  return { out: '', code: r.status ?? 1 };
}
