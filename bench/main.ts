/**
 * nfvm benchmarks, run on the esbuild bundle (`npm run bench`), never
 * under vitest. Prints a table and writes bench/results/<date>.json.
 *
 *   parse   iptables-restore text → checked AST, for a 100,000-rule
 *           kube-proxy ruleset (target: under 1 s on one core)
 *   save    AST → iptables-save text
 *   vm      ns per non-matching rule on linear chains of 1000 and 2000
 *           `-s a/32 -p tcp --dport n -j DROP` rules (the slope between the
 *           two, so the per-packet fixed cost cancels; target ≤ 4 ns), Mpps
 *           through each chain, bytes of bytecode per rule, and the same for
 *           the slow interpreter (target: interpreter ≥ 5x faster)
 *   engines ns per packet of the VM and the x_tables evaluator on ClassBench and kube-proxy sets
 *   replay  `nfvm replay` (the bundled command) timed from outside on N and 2N frames,
 *           per engine and optimization (bench/replay.ts); only when asked for
 *   stateful `nfvm replay` of a 200-rule stateful firewall, 4,096 two-sided TCP connections,
 *           N and 2N frames, 1 and 2 workers: Mpps and peak RSS (bench/stateful.ts); only when asked for
 *
 * The headline figures, all from outside on the bundled command (bench/headline.ts):
 *   chain   ns per non-matching rule of a compiled linear chain, nfvm's VM and
 *           x_tables evaluator through `nfvm replay` (bench/chain.ts)
 *   kernel  the same for Linux x_tables and nf_tables in a network namespace
 *           (bench/kernel.ts; root only, else a line says why)
 *   headline  chain + kernel + the 1,000-rule ACL and ClassBench 10k ratios
 *   kube    kube-proxy's modes through the node, rule updates, ClassBench (bench/kube-run.ts; `nfvm bench`)
 *   kube-replay  kube-proxy's IPVS and nftables modes through `nfvm replay`, N and 2N frames (bench/kube-replay.ts)
 *   kernel-model  calibrates the kernel cost model (bench/kernel-model.ts; root)
 *   big     100k-rule save / disasm --optimize=1 time and peak memory at 10k,
 *           100k and 200k rules of kube-proxy, firewall and linear sets (bench/big.ts)
 */
import { Bench } from 'tinybench';
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseRestore } from '../compiler/parse/restore.js';
import { saveRuleset } from '../compiler/save.js';
import { kubeProxyRuleset, kubeRuleCount } from './gen-kube.js';
import { NftRegs, Vm, VmEnv, nftDoChainSlow } from '../vm/index.js';
import { NF_ACCEPT } from '../core/netfilter.js';
import { referenceTable } from '../engine/reference/index.js';
import { benchPacket, bytesPerRule, example17, linearChain, linearChainText } from './vm-chain.js';
import { benchEngines } from './engines.js';
import { benchReplay } from './replay.js';
import { benchStateful } from './stateful.js';
import { benchHeadline, type Headline } from './headline.js';
import { benchBig, type BigRow } from './big.js';
import { benchChain } from './chain.js';
import { benchKernel } from './kernel.js';
import { benchFuzzDiff } from './fuzzdiff.js';
import { kubeMain } from './kube-run.js';
import { kubeReplayMain } from './kube-replay.js';
import { calibrate } from './kernel-model.js';

const only = process.argv[2];
if (only === 'kube') process.exit(await kubeMain(process.argv.slice(3)));
if (only === 'kube-replay') process.exit(kubeReplayMain(process.argv.slice(3)));
if (only === 'kernel-model') {
  const c = calibrate();
  console.log(typeof c === 'string' ? `[skip] ${c}` : JSON.stringify(c));
  process.exit(0);
}
const results: Record<string, unknown>[] = [];

async function benchParse() {
  const opts = { services: 12_500, endpointsPerService: 2 };
  const text = kubeProxyRuleset(opts);
  const nrules = kubeRuleCount(opts);
  const rs = parseRestore(text);
  const bench = new Bench({ name: 'parse', time: 5000, iterations: 5, warmupIterations: 1 });
  bench.add(`parse+check ${nrules} rules (${(text.length / 1e6).toFixed(1)} MB)`, () => {
    parseRestore(text);
  });
  bench.add(`save ${nrules} rules`, () => {
    saveRuleset(rs);
  });
  await bench.run();
  for (const t of bench.tasks) {
    const r = t.result;
    if (!r || r.state !== 'completed') continue;
    const ms = r.latency.mean;
    results.push({ task: t.name, ms: +ms.toFixed(1), rulesPerSec: Math.round((nrules / ms) * 1000), usPerRule: +((ms * 1000) / nrules).toFixed(2), samples: r.latency.samplesCount });
  }
}

async function benchVm() {
  const sizes = [1000, 2000];
  const progs = sizes.map((n) => linearChain(n));
  const pkt = benchPacket();
  const vm = new Vm(new VmEnv());
  const regs = new NftRegs();
  const stack = new Int32Array(32);
  for (const p of progs) if (vm.run(p, 0, pkt) !== NF_ACCEPT) throw new Error('vm bench: the packet matched a rule');
  const bench = new Bench({ name: 'vm', time: 3000, warmupTime: 1000 });
  const refs = sizes.map((n) => referenceTable(parseRestore(linearChainText(n)), 'filter'));
  for (const r of refs) if (r.run('INPUT', pkt) !== NF_ACCEPT) throw new Error('vm bench: the packet matched a rule (reference)');
  const engines: [string, (i: number) => void][] = [
    ['interpreter', (i) => vm.run(progs[i]!, 0, pkt)],
    ['slow interpreter (nftDoChainSlow)', (i) => nftDoChainSlow(progs[i]!, 0, pkt, regs, stack, vm.env)],
    ['x_tables evaluator (engine/reference)', (i) => refs[i]!.run('INPUT', pkt)],
  ];
  for (const [name, run] of engines) {
    sizes.forEach((n, i) => bench.add(`${name}: ${n} non-matching rules`, () => run(i)));
  }
  await bench.run();
  const mean = (name: string): number => {
    const r = bench.tasks.find((t) => t.name === name)?.result;
    return r && r.state === 'completed' ? r.latency.mean * 1e6 : NaN; // ns per packet
  };
  const nsRule: Record<string, number> = {};
  for (const [name] of engines) {
    const [a, b] = sizes.map((n) => mean(`${name}: ${n} non-matching rules`)) as [number, number];
    nsRule[name] = (b - a) / (sizes[1]! - sizes[0]!);
    results.push({
      task: `vm ${name}: ns per non-matching rule (slope ${sizes[0]}→${sizes[1]})`,
      nsPerRule: +nsRule[name]!.toFixed(2),
      [`Mpps@${sizes[0]}`]: +(1e3 / a).toFixed(3),
      [`Mpps@${sizes[1]}`]: +(1e3 / b).toFixed(3),
      bytesPerRule: +bytesPerRule(progs[0]!).toFixed(1),
    });
  }
  results.push({ task: 'vm: bytes per rule, the kernel-facts §1.7 example', bytesPerRule: bytesPerRule(example17()) });
  for (const [name] of engines.slice(1)) results.push({ task: `vm: interpreter speed-up over the ${name}`, x: +(nsRule[name]! / nsRule.interpreter!).toFixed(2) });
}

console.log(`nfvm bench — node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`);
let headline: Headline | undefined;
let big: BigRow[] | undefined;
if (!only || only === 'headline') {
  headline = benchHeadline();
  results.push(...headline.chain.map((r) => ({ task: `chain: ${r.engine}`, ...r })));
  if (typeof headline.kernel === 'string') results.push({ task: 'kernel', skipped: headline.kernel });
  else results.push(...headline.kernel.map((r) => ({ task: `kernel: ${r.backend}`, ...r })));
  if (typeof headline.ratios === 'string') results.push({ task: 'classbench ratios', skipped: headline.ratios });
  else results.push(...headline.ratios.map((r) => ({ task: `ratio: ${r.figure}`, ...r })));
}
if (only === 'chain') for (const r of benchChain()) results.push({ task: `chain: ${r.engine}`, ...r });
if (only === 'kernel') {
  const k = benchKernel();
  if (typeof k === 'string') console.log(`[skip] ${k}`);
  else for (const r of k) results.push({ task: `kernel: ${r.backend}`, ...r });
}
if (!only || only === 'big') {
  big = benchBig();
  console.table(big);
  results.push(...big.map((r) => ({ task: `big: ${r.command} ${r.ruleset} ${r.rules}`, ...r })));
}
if (headline || big) printSummary(headline, big);
if (!only || only === 'parse') await benchParse();
if (!only || only === 'vm') await benchVm();
console.table(results);
if (!only || only === 'engines') {
  // VM (optimized, then straight lowering) against the x_tables evaluator (--engine reference) on ClassBench and kube-proxy rulesets
  for (const optimize of [1, 0] as const) {
    const rows = await benchEngines(Number(process.env.NFVM_BENCH_MS ?? 1500), optimize);
    console.log(`engines, VM with --optimize=${optimize} (ns per packet):`);
    console.table(rows);
    results.push(...rows.map((r) => ({ task: `engines optimize=${optimize}: ${r.set}`, ...r })));
  }
}
if (only === 'replay') {
  // `nfvm replay` from outside: the figures a user gets (bench/replay.ts); not part of the default run (minutes)
  const rows = benchReplay();
  console.table(rows);
  results.push(...rows.map((r) => ({ task: `replay: ${r.set}`, ...r })));
}
if (only === 'fuzzdiff') {
  // `nfvm diff` on a 30k-Service kube-proxy pair and `nfvm fuzz --random-rulesets`, from outside (bench/fuzzdiff.ts); only when asked for
  const rows = benchFuzzDiff('dist/cli.mjs', '.');
  console.table(rows);
  results.push(...rows.map((r) => ({ ...r, task: `fuzzdiff: ${r.task}` })));
}
if (only === 'stateful') {
  // `nfvm replay` of the stateful firewall, 1 and 2 workers (bench/stateful.ts); only when asked for
  const rows = benchStateful();
  console.table(rows);
  results.push(...rows.map((r) => ({ task: `stateful replay: ${r.workers} worker(s)`, ...r })));
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/${new Date().toISOString().slice(0, 10)}.json`, JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, results }, null, 2));

/** The issue-style table: nfvm against the kernel and the targets, from this run. */
function printSummary(h: Headline | undefined, b: BigRow[] | undefined): void {
  const rows: Record<string, string>[] = [];
  if (h) {
    const vm = h.chain.find((r) => r.engine.startsWith('nfvm vm'));
    const ref = h.chain.find((r) => r.engine.includes('reference'));
    const xt = typeof h.kernel === 'string' ? undefined : h.kernel.find((r) => r.backend.startsWith('x_tables'));
    const kern = typeof h.kernel === 'string' ? `not measured: ${h.kernel}` : h.kernel.map((r) => `${r.backend} ${r['ns/rule']} ns`).join('; ');
    rows.push({
      figure: 'linear chain, unoptimized: ns per non-matching rule',
      nfvm: `VM ${vm?.['ns/rule']} ns; x_tables evaluator ${ref?.['ns/rule']} ns`,
      'kernel / target': `${kern}; target VM ≤ 0.7x x_tables${xt && vm ? ` (now ${(vm['ns/rule median'] / xt['ns/rule median']).toFixed(2)}x)` : ''}, ≥ 3x cheaper than the evaluator${vm && ref ? ` (now ${(ref['ns/rule median'] / vm['ns/rule median']).toFixed(2)}x)` : ''}`,
    });
    if (typeof h.ratios === 'string') rows.push({ figure: 'ClassBench ratios', nfvm: `not measured: ${h.ratios}`, 'kernel / target': '' });
    else {
      const [acl, ...cb10k] = h.ratios;
      rows.push({ figure: '1,000-rule ACL (acl1_1k), default options', nfvm: `${acl!['µs/frame B']} µs/frame, reference ${acl!['µs/frame A']} µs: ${acl!['A/B']}`, 'kernel / target': '≥ 10x the reference' });
      for (const cb of cb10k) {
        rows.push({ figure: `ClassBench ${cb.figure.slice(0, cb.figure.indexOf(':'))}, optimized vs unoptimized`, nfvm: `${cb['µs/frame B']} µs/frame vs ${cb['µs/frame A']} µs: ${cb['A/B']}`, 'kernel / target': '≥ 10x' });
      }
    }
  }
  if (b) {
    for (const r of b.filter((x) => x.rules >= 100_000)) {
      rows.push({ figure: `${r.rules}-rule ${r.ruleset}: ${r.command}`, nfvm: `${r['wall s']} s wall, ${r['cpu s']} s CPU, ${r['peak MB']} MB peak`, 'kernel / target': r.command.includes('disasm') ? '≤ 2 s, ≤ 200 MB' : '≤ 1 s, ≤ 200 MB' });
    }
  }
  console.log('summary (measured in this run; the machine may be shared: see the ranges above):');
  console.table(rows);
}
