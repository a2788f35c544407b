/**
 * The VM benchmark workload: a linear INPUT chain of `n` iptables-nft rules
 * `-s 10.x.y.1/32 -p tcp --dport 1000+i -j DROP` (policy ACCEPT), built
 * through the public builder API exactly as the compiler lowers them, and a
 * TCP packet that matches none of them (every rule fails at its first
 * compare, the source address). Shared by bench/main.ts (`vm` task) and
 * bench/vm.bench.ts.
 */
import {
  CHAIN_WORDS, LINKTYPE_RAW, NFT_CMP_EQ, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_REG_1, Packet,
  ProgramBuilder, decodePacket, emitCmp, emitCounter, emitPayload, emitVerdict, type Program,
} from '../vm/index.js';
import { NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN } from '../core/netfilter.js';

export function linearChain(n: number): Program {
  const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
  for (let i = 0; i < n; i++) {
    b.rule('INPUT');
    emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
    emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [10, (i >> 8) & 0xff, i & 0xff, 1]);
    emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 9, 1);
    emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [6]);
    emitPayload(b, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [((1000 + i) >> 8) & 0xff, (1000 + i) & 0xff]);
    emitCounter(b);
    emitVerdict(b, NF_DROP);
  }
  return b.finish();
}

/** The same chain as iptables-restore text (for the x_tables reference engine). */
export function linearChainText(n: number): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]'];
  for (let i = 0; i < n; i++) lines.push(`-A INPUT -s 10.${(i >> 8) & 0xff}.${i & 0xff}.1/32 -p tcp -m tcp --dport ${1000 + i} -j DROP`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** 192.168.0.1 → 10.0.0.2, TCP 40000 → 22: matches no rule of linearChain(). */
export function benchPacket(): Packet {
  const pkt = new Packet(2048);
  pkt.setFrame([
    0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 168, 0, 1, 10, 0, 0, 2,
    0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
  ]);
  decodePacket(pkt, LINKTYPE_RAW);
  return pkt;
}

/** The §1.7 example rule `-s 192.168.1.0/24 -p tcp --dport 22 -j ACCEPT`, alone in INPUT. */
export function example17(): Program {
  const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
  b.rule('INPUT');
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 12, 3);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [192, 168, 1]);
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, 9, 1);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [6]);
  emitPayload(b, NFT_REG_1, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [0, 22]);
  emitCounter(b);
  emitVerdict(b, NF_ACCEPT);
  return b.finish();
}

/** Bytes of bytecode per rule: the code array less the one-word END sentinel of each chain, over the rule count. */
export function bytesPerRule(prog: Program): number {
  return ((prog.code.length - prog.chains.length / CHAIN_WORDS) * 4) / prog.nrules;
}
