/**
 * `nfvm bench` (node dist/bench.mjs kube [options]): the kube-proxy modes
 * through the full node path, rule-update latency and ClassBench
 * (bench/kube.ts, bench/engines.ts), as a table, --json or an --svg chart.
 *
 *   --quick          N = 100 and 1,000, short timings, ClassBench 1k only (CI: under a minute)
 *   --json           one JSON document instead of the tables
 *   --svg FILE       the chart: ns per first packet against N, log-log, one line per mode
 *   --kernel-model   the kernel's expected cost beside nfvm's (bench/kernel-model.ts)
 *   --services LIST  the sizes (default 100,1000,5000,10000,30000)
 *   --endpoints M    endpoints per Service in the packet figures (default 2)
 */
import { writeFileSync } from 'node:fs';
import { BENCH_MODES, benchPackets, benchUpdate, type PacketRow, type UpdateRow } from './kube.js';
import { benchEngines, type EngineRow } from './engines.js';
import { logChart } from './chart.js';
import { kernelModel, type KernelModel } from './kernel-model.js';

export interface KubeBenchDoc {
  schema: 1;
  node: string;
  quick: boolean;
  packets: PacketRow[];
  update: UpdateRow[];
  classbench: EngineRow[];
  kernelModel?: KernelModel | string;
}

function usage(msg: string): never {
  process.stderr.write(`nfvm: bench: ${msg}\n`);
  process.exit(2);
}

export async function kubeMain(argv: readonly string[]): Promise<number> {
  let quick = false;
  let json = false;
  let svg: string | undefined;
  let kmodel = false;
  let sizes = [100, 1000, 5000, 10_000, 30_000];
  let endpoints = 2;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--json') json = true;
    else if (a === '--kernel-model') kmodel = true;
    else if (a === '--svg') svg = argv[++i] ?? usage('--svg takes a FILE');
    else if (a === '--services') sizes = (argv[++i] ?? usage('--services takes a list')).split(',').map((s) => (/^\d{1,7}$/.test(s) && Number(s) > 0 ? Number(s) : usage(`--services: bad size "${s}"`)));
    else if (a === '--endpoints') endpoints = /^\d{1,3}$/.test(argv[++i] ?? '') && Number(argv[i]) > 0 ? Number(argv[i]) : usage('--endpoints takes 1 to 999');
    else usage(`unknown option ${a}`);
  }
  if (quick) sizes = sizes.filter((n) => n <= 1000).slice(0, 2).concat(sizes.every((n) => n > 1000) ? [100, 1000] : []);
  const time = quick ? 150 : Number(process.env.NFVM_BENCH_MS ?? 1000);
  // the parts print progress with console.log (bench/kernel.ts's rows): under --json stdout carries the document only
  if (json) console.log = (...xs: unknown[]): void => void process.stderr.write(`${xs.map(String).join(' ')}\n`);
  const out = (s: string): void => void process.stdout.write(s);
  const log = (s: string): void => {
    if (!json) process.stdout.write(s);
    else process.stderr.write(s);
  };
  const packets: PacketRow[] = [];
  for (const n of sizes) {
    for (const mode of BENCH_MODES) {
      const rows = await benchPackets(mode, n, endpoints, time);
      packets.push(...rows);
      log(`. ${mode} ${n}\n`);
    }
  }
  const update: UpdateRow[] = [];
  for (const [n, m] of quick ? [[1000, 2]] : [[1000, 10], [10_000, 10], [30_000, 10]]) update.push(benchUpdate(n!, m!));
  const classbench = await benchEngines(quick ? 100 : 1000, 1, quick ? ['acl1_1k'] : undefined);
  const doc: KubeBenchDoc = { schema: 1, node: process.version, quick, packets, update, classbench };
  if (kmodel) doc.kernelModel = kernelModel();
  if (svg) {
    const series = BENCH_MODES.flatMap((mode) => [
      { name: `${mode}: first packet`, points: packets.filter((r) => r.mode === mode && r.packet === 'first').map((r) => [r.services, r['ns/packet']] as const) },
    ]);
    const est = BENCH_MODES.filter((m) => m !== 'iptables').map((mode) => ({ name: `${mode}: established`, dashed: true, points: packets.filter((r) => r.mode === mode && r.packet === 'established').map((r) => [r.services, r['ns/packet']] as const) }));
    writeFileSync(svg, logChart('nfvm: kube-proxy modes, cost per packet through the node', 'Services (log scale)', 'ns per packet (log scale)', [...series, ...est]));
  }
  if (json) {
    out(JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }
  const km = typeof doc.kernelModel === 'object' ? doc.kernelModel : undefined;
  console.log('packets through the full node path (ns/packet: mean of batches; p50/p99 of the batches; one process, machine possibly shared):');
  console.table(packets.map((r) => ({ ...r, ...(km && r.packet === 'first' ? { 'kernel model ns': km.predict(r.mode, r['kernel rules walked']) } : {}) })));
  if (typeof doc.kernelModel === 'string') console.log(`kernel model: ${doc.kernelModel}`);
  else if (km) console.log(`kernel model: ${km.describe}`);
  console.log('rule updates (iptables mode optimized):');
  console.table(update);
  console.log('ClassBench (VM optimized against the x_tables evaluator, ns/packet):');
  console.table(classbench);
  return 0;
}
