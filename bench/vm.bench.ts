/**
 * VM micro-benchmark: ns per non-matching `-s a/32 -p tcp --dport n -j DROP`
 * rule on a linear chain of 1000 such rules (every rule fails at its first
 * compare), compared with the slow interpreter. The same workload with the
 * slope between 1000 and 2000 rules is the `vm` task of bench/main.ts
 * (`npm run bench -- vm`). Run on an esbuild bundle, never under vitest:
 *
 *   npx esbuild bench/vm.bench.ts --bundle --platform=node --format=esm \
 *     --external:tinybench --outfile=dist/vm.bench.mjs && node dist/vm.bench.mjs
 */
import { Bench } from 'tinybench';
import { NftRegs, Vm, VmEnv, nftDoChainSlow } from '../vm/index.js';
import { NF_ACCEPT } from '../core/netfilter.js';
import { benchPacket, bytesPerRule, example17, linearChain } from './vm-chain.js';

const RULES = 1000;
const prog = linearChain(RULES);
const pkt = benchPacket();
const vm = new Vm(new VmEnv());
const regs = new NftRegs();
const stack = new Int32Array(32);
if (vm.run(prog, 0, pkt) !== NF_ACCEPT) throw new Error('benchmark packet matched a rule');

const bench = new Bench({ name: 'vm', time: 2000, warmupTime: 500 });
bench.add(`interpreter: ${RULES} non-matching rules`, () => {
  vm.run(prog, 0, pkt);
});
bench.add(`slow interpreter: ${RULES} non-matching rules`, () => {
  nftDoChainSlow(prog, 0, pkt, regs, stack, vm.env);
});
await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result;
  const ms = r && r.state === 'completed' ? r.latency.mean : NaN;
  return { task: t.name, 'µs/packet': +(ms * 1000).toFixed(2), 'ns/rule': +((ms * 1e6) / RULES).toFixed(2) };
});
console.table(rows);
console.log(`bytecode: ${bytesPerRule(prog)} bytes/rule on the chain, ${bytesPerRule(example17())} bytes for the kernel-facts §1.7 rule`);
