/**
 * VM benchmark: ns per non-matching `-s a/32 -p tcp --dport n -j ACCEPT`
 * rule on a linear chain of 1000 such rules (every rule fails at its first
 * compare except for the protocol/port tests it never reaches), compared
 * with the reference walker. Run on an esbuild bundle, never under vitest:
 *
 *   npx esbuild bench/vm.bench.ts --bundle --platform=node --format=esm \
 *     --external:tinybench --outfile=dist/vm.bench.mjs && node dist/vm.bench.mjs
 */
import { Bench } from 'tinybench';
import {
  LINKTYPE_RAW, NFPROTO_IPV4, NFT_CMP_EQ, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_REG_1, NF_ACCEPT,
  NF_DROP, NF_INET_LOCAL_IN, NftRegs, Packet, ProgramBuilder, Vm, VmEnv, decodePacket, emitCmp, emitCounter, emitPayload,
  emitVerdict, nftDoChainSlow,
} from '../vm/index.js';

const RULES = 1000;
const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
for (let i = 0; i < RULES; i++) {
  b.rule('INPUT');
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [10, (i >> 8) & 0xff, i & 0xff, 1]);
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 9, 1);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [6]);
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [(1000 + i) >> 8, (1000 + i) & 0xff]);
  emitCounter(b);
  emitVerdict(b, NF_ACCEPT);
}
const prog = b.finish();

// 192.168.0.1 → 10.0.0.2, TCP 40000 → 22: matches no rule.
const pkt = new Packet(2048);
pkt.setFrame([
  0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 168, 0, 1, 10, 0, 0, 2,
  0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
]);
decodePacket(pkt, LINKTYPE_RAW);
const vm = new Vm(new VmEnv());
const regs = new NftRegs();
const stack = new Int32Array(32);
if (vm.run(prog, 0, pkt) !== NF_DROP) throw new Error('benchmark packet matched a rule');

const bench = new Bench({ name: 'vm', time: 2000, warmupTime: 500 });
bench.add(`interpreter: ${RULES} non-matching rules`, () => {
  vm.run(prog, 0, pkt);
});
bench.add(`reference walker: ${RULES} non-matching rules`, () => {
  nftDoChainSlow(prog, 0, pkt, regs, stack, vm.env);
});
await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result;
  const ms = r && r.state === 'completed' ? r.latency.mean : NaN;
  return { task: t.name, 'µs/packet': +(ms * 1000).toFixed(2), 'ns/rule': +((ms * 1e6) / RULES).toFixed(2) };
});
console.table(rows);
console.log(`bytecode: ${prog.code.length * 4} bytes for ${RULES} rules (${(prog.code.length * 4) / RULES} bytes/rule)`);
