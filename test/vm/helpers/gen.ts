/**
 * fast-check generators for random small programs (built through the
 * builder, so they validate) and random packets.
 */
import fc from 'fast-check';
import {
  NFT_BITWISE_LSHIFT, NFT_BITWISE_RSHIFT, NFT_BYTEORDER_HTON, NFT_BYTEORDER_NTOH, NFT_CONTINUE, NFT_BREAK, NFT_GOTO,
  NFT_JUMP, NFT_LIMIT_PKTS, NFT_LIMIT_PKT_BYTES, NFT_META_CPU, NFT_META_IIF, NFT_META_IIFGROUP, NFT_META_IIFNAME,
  NFT_META_IIFTYPE, NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK, NFT_META_NFPROTO, NFT_META_NFTRACE, NFT_META_OIF,
  NFT_META_OIFGROUP, NFT_META_OIFNAME, NFT_META_OIFTYPE, NFT_META_PKTTYPE, NFT_META_PRANDOM, NFT_META_PRIORITY,
  NFT_META_PROTOCOL, NFT_META_SECMARK, NFT_META_SKGID, NFT_META_SKUID, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_NG_INCREMENTAL,
  NFT_NG_RANDOM, NFT_RETURN, NFT_SET_INTERVAL, NftSet, ProgramBuilder, M_FLAGS, F_NFTRACE, M_PKTTYPE, M_SKUID,
  M_SKGID, M_CPU, M_PRIORITY, regSlot, emitBitwise, emitBitwiseShift, emitByteorder, emitCmp, emitCounter,
  emitImmediate, emitLimit, emitLog, emitLookup, emitMetaGet, emitMetaSet, emitNumgen, emitPayload, emitRange,
  emitVerdict, emitCtGet, emitCtSet, emitFib, emitXtL4, emitReject, emitQueue, emitNat, emitXtMatchPorts, emitXtMatchTcpOpt, emitXtCompat,
  NFT_CT_STATE, NFT_CT_DIRECTION, NFT_CT_STATUS, NFT_CT_MARK, NFT_CT_XT_STATE, NFTA_FIB_F_SADDR, NFTA_FIB_F_DADDR, NFTA_FIB_F_IIF, NFTA_FIB_F_OIF,
  NFT_REJECT_ICMP_UNREACH, NFT_REJECT_TCP_RST, NFT_REJECT_ICMPX_UNREACH, NFT_QUEUE_FLAG_BYPASS, NFT_QUEUE_FLAG_CPU_FANOUT,
  NAT_SNAT, NAT_DNAT, NAT_MASQ, NAT_REDIR, M_CT_STATE, M_CT_MARK, M_CT_STATUS, M_CT_DIR,
  type Packet, type Program,
} from '../../../vm/index.js';
import { NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_QUEUE } from '../../../core/netfilter.js';
import { eth, ext, ipv4, ipv6, packet, raw, tcp, udp, vlan, type Layer } from './pkt.js';

const REGS = [1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
const GET_KEYS = [
  NFT_META_LEN, NFT_META_PROTOCOL, NFT_META_PRIORITY, NFT_META_MARK, NFT_META_IIF, NFT_META_OIF, NFT_META_IIFNAME,
  NFT_META_OIFNAME, NFT_META_IIFTYPE, NFT_META_OIFTYPE, NFT_META_SKUID, NFT_META_SKGID, NFT_META_SECMARK,
  NFT_META_NFPROTO, NFT_META_L4PROTO, NFT_META_PKTTYPE, NFT_META_CPU, NFT_META_IIFGROUP, NFT_META_OIFGROUP, NFT_META_PRANDOM,
];
const FUSE_KEYS = [NFT_META_MARK, NFT_META_LEN, NFT_META_IIF, NFT_META_OIF, NFT_META_PRIORITY, NFT_META_SECMARK, NFT_META_CPU];
const SET_KEYS = [NFT_META_MARK, NFT_META_PRIORITY, NFT_META_PKTTYPE, NFT_META_NFTRACE, NFT_META_SECMARK];
const INTERESTING = [0, 0, 6, 17, 22, 80, 10, 192, 168, 1, 0xff, 0x08, 0x45];

/** Expression kinds emitSpec() knows (0..33). */
const EXPR_KINDS_GENERATED = 34;

export type ExprSpec = [kind: number, a: number, b: number, c: number, d: number, data: number[]];
export interface ProgSpec {
  users: number;
  rules: { chain: number; exprs: ExprSpec[] }[];
  policy: number;
}

const byte = fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 }));
const exprSpec: fc.Arbitrary<ExprSpec> = fc.tuple(
  fc.integer({ min: 0, max: EXPR_KINDS_GENERATED - 1 }), fc.nat(1000), fc.nat(1000), fc.nat(1000), fc.nat(1000),
  fc.oneof({ arbitrary: fc.array(byte, { minLength: 1, maxLength: 2 }), weight: 3 }, { arbitrary: fc.array(byte, { minLength: 1, maxLength: 16 }), weight: 1 }),
);

export const progSpec: fc.Arbitrary<ProgSpec> = fc.record({
  users: fc.integer({ min: 0, max: 3 }),
  rules: fc.array(fc.record({ chain: fc.nat(3), exprs: fc.array(exprSpec, { maxLength: 6 }) }), { maxLength: 10 }),
  policy: fc.constantFrom(NF_ACCEPT, NF_DROP),
});

/** Picks a register for `len` bytes and clamps `len` to what fits from it. */
function reg(a: number, len: number): [number, number] {
  const r = REGS[a % REGS.length]!;
  const room = 80 - regSlot(r) * 4;
  return [r, Math.max(1, Math.min(len, room))];
}

function emitSpec(b: ProgramBuilder, e: ExprSpec, chain: number, users: number): void {
  const [kind, a, bb, c, d, data] = e;
  switch (kind) {
    case 0: case 15: case 16: case 17: {
      const [r, len] = reg(a, d % 2 ? 1 + (d % 4) : 1 + (d % 16));
      emitPayload(b, r, bb % 3, c % 2 ? c % 24 : c % 64, len);
      return;
    }
    case 1: case 18: case 19: case 20: {
      const [r, len] = reg(a, data.length);
      // now and then against what the register was just given: equal operands
      // are what tell lt from lte and gt from gte
      if (c % 4 === 0) emitImmediate(b, r, data.slice(0, len));
      emitCmp(b, bb % 6, r, data.slice(0, len));
      return;
    }
    case 2: {
      const [r, len] = reg(a, data.length);
      const [r2, len2] = reg(bb, len);
      const n = Math.min(len, len2);
      emitBitwise(b, r2, r, data.slice(0, n), data.slice(0, n).map((x) => (x * 7) & 0xff));
      return;
    }
    case 3: {
      const [r, len] = reg(a, 1 + (d % 16));
      const [r2, len2] = reg(bb, len);
      emitBitwiseShift(b, c % 2 ? NFT_BITWISE_LSHIFT : NFT_BITWISE_RSHIFT, r2, r, Math.min(len, len2), d % 32);
      return;
    }
    case 4: {
      const [r, len] = reg(a, data.length);
      const from = data.slice(0, len);
      emitRange(b, bb % 2, r, from, from.map((x, i) => (i === 0 ? Math.min(255, x + (c % 8)) : x)));
      return;
    }
    case 5: {
      const size = bb % 2 ? 2 : 4;
      const [r, len] = reg(a, 1 + (d % 16));
      const [r2, len2] = reg(c, len);
      emitByteorder(b, bb % 4 < 2 ? NFT_BYTEORDER_HTON : NFT_BYTEORDER_NTOH, r2, r, Math.min(len, len2), size);
      return;
    }
    case 6: {
      const key = GET_KEYS[bb % GET_KEYS.length]!;
      const [r, len] = reg(a, key === NFT_META_IIFNAME || key === NFT_META_OIFNAME ? 16 : 4);
      if ((key === NFT_META_IIFNAME || key === NFT_META_OIFNAME) && len < 16) return;
      emitMetaGet(b, r, key);
      return;
    }
    case 7: {
      const [r] = reg(a, 4);
      emitMetaSet(b, SET_KEYS[bb % SET_KEYS.length]!, r);
      return;
    }
    case 8: {
      const [r, len] = reg(a, data.length);
      // now and then over whole words of 0xff, then a compare of the whole
      // last word: the bytes past `len` are zero (the partial word is cleared)
      const whole = (len + 3) & ~3;
      const check = c % 3 === 0 && whole !== len;
      if (check) emitImmediate(b, r, new Array<number>(whole).fill(0xff));
      emitImmediate(b, r, data.slice(0, len));
      if (check) emitCmp(b, bb % 6, r, data.slice(0, len).concat([0, 0, 0]).slice(0, whole));
      return;
    }
    case 9: case 21: {
      const targets = [];
      for (let u = 0; u < users; u++) if (u + 1 > chain) targets.push(`U${u}`);
      const pick = bb % 8;
      if (pick >= 6 && targets.length) {
        emitVerdict(b, pick === 6 ? NFT_JUMP : NFT_GOTO, targets[c % targets.length]!);
        return;
      }
      emitVerdict(b, [NF_ACCEPT, NF_DROP, NF_QUEUE, NFT_CONTINUE, NFT_BREAK, NFT_RETURN][pick % 6]!);
      return;
    }
    case 10:
      emitCounter(b);
      return;
    case 11: {
      const [name, klen] = bb % 2 ? ['addrs', 4] : ['ports', 2];
      const [r, len] = reg(a, klen);
      if (len < klen) return;
      emitLookup(b, r, name, c % 2 === 1);
      return;
    }
    case 12: {
      const [r] = reg(a, 4);
      emitNumgen(b, r, bb % 2 ? NFT_NG_RANDOM : NFT_NG_INCREMENTAL, 1 + (c % 5), d % 3);
      return;
    }
    case 13:
      emitLimit(b, 1 + (bb % 3), 1, c % 3, d % 2 ? NFT_LIMIT_PKTS : NFT_LIMIT_PKT_BYTES, a % 2 === 1);
      return;
    case 14:
      emitLog(b, bb % 2 ? { prefix: 'p' } : { group: c % 4 });
      return;
    case 22: {
      // a load and an eq/neq compare the builder fuses (PAYLOAD_CMP)
      const [r, len] = reg(a, 1 + (d % 4));
      emitPayload(b, r, 1 + (bb % 2), c % 2 ? c % 24 : c % 64, len);
      emitCmp(b, d % 3 ? NFT_CMP_EQ : NFT_CMP_NEQ, r, (c % 3 ? data : [6, 0, 0x16, 0x50]).concat([0, 0, 0, 0]).slice(0, len));
      return;
    }
    case 23: {
      // meta load of a plain u32 key and an eq/neq compare (META_CMP)
      const key = FUSE_KEYS[bb % FUSE_KEYS.length]!;
      const [r, len] = reg(a, 1 + (d % 4));
      emitMetaGet(b, r, key);
      emitCmp(b, d % 3 ? NFT_CMP_EQ : NFT_CMP_NEQ, r, (c % 2 ? data : [1, 0, 0, 0]).concat([0, 0, 0, 0]).slice(0, len));
      return;
    }
    case 24: {
      // ct load: every key the compiler loads (x_tables' state word included)
      const key = [NFT_CT_STATE, NFT_CT_DIRECTION, NFT_CT_STATUS, NFT_CT_MARK, NFT_CT_XT_STATE][bb % 5]!;
      const [r, len] = reg(a, key === NFT_CT_DIRECTION ? 1 : 4);
      if (len < (key === NFT_CT_DIRECTION ? 1 : 4)) return;
      emitCtGet(b, r, key);
      return;
    }
    case 25: {
      const [r, len] = reg(a, 4);
      if (len < 4) return;
      emitCtSet(b, NFT_CT_MARK, r);
      return;
    }
    case 26: {
      // fib address type against the node's address sets (the program's 4-byte set), or restricted to the input or output device
      const [r, len] = reg(a, 4);
      if (len < 4) return;
      const dev = [0, NFTA_FIB_F_IIF, NFTA_FIB_F_OIF][(bb >> 1) % 3]!;
      emitFib(b, r, (bb % 2 ? NFTA_FIB_F_SADDR : NFTA_FIB_F_DADDR) | dev, c % 3 ? 'addrs' : undefined, c % 2 ? 'addrs' : undefined);
      return;
    }
    case 27:
      emitXtL4(b, [4, 8, 20, 1, 60][bb % 5]!, c % 2 === 1);
      return;
    case 28:
      emitReject(b, [NFT_REJECT_ICMP_UNREACH, NFT_REJECT_TCP_RST, NFT_REJECT_ICMPX_UNREACH][bb % 3]!, c % 256);
      return;
    case 29: {
      const total = 1 + (c % 4);
      emitQueue(b, bb % 2 ? 65535 - total + 1 : bb % 40000, total, d % 4 & (NFT_QUEUE_FLAG_BYPASS | NFT_QUEUE_FLAG_CPU_FANOUT));
      return;
    }
    case 30: {
      const type = [NAT_SNAT, NAT_DNAT, NAT_MASQ, NAT_REDIR][bb % 4]!;
      const addr = c % 3 === 0 ? {} : { minAddr: Uint8Array.of(10, 0, 0, c % 7), maxAddr: Uint8Array.of(10, 0, 0, 7 + (c % 9)) };
      emitNat(b, type, { ...addr, flags: d % 8, minPort: d % 2 ? 1024 : 0, maxPort: d % 2 ? 1024 + (a % 100) : 0 });
      return;
    }
    case 31: {
      if (bb % 2) {
        // multiport --ports: both 2-byte ports loaded, either in the set
        const [r1, l1] = reg(a, 2);
        const [r2, l2] = reg(c, 2);
        if (l1 < 2 || l2 < 2) return;
        emitXtMatchPorts(b, r1, r2, 'ports', d % 2 === 1);
      } else emitXtMatchTcpOpt(b, 1 + (c % 255), d % 2 === 1);
      return;
    }
    case 32: {
      // an x_tables match through nft_compat: a function of the packet (its length), hotdropping some
      const m = 2 + (bb % 5);
      emitXtCompat(b, { kind: 'match', name: 'length', rev: 0, fn: (pkt) => (pkt.len % m === 0 ? -(c % 2) : pkt.len % m === 1 ? 1 : 0) });
      return;
    }
    case 33: {
      // an x_tables match or target (nft_compat) over the packet bytes: deterministic in the packet
      const k = bb % 4;
      if (k < 2) emitXtCompat(b, { kind: 'match', name: 'gen', rev: 0, fn: (pkt) => (pkt.len === 0 ? -1 : (pkt.data[c % 40]! + k) & 1) });
      else emitXtCompat(b, { kind: 'target', name: 'GEN', rev: 0, fn: (pkt) => ((pkt.data[d % 40]! & 3) === 0 ? [NF_ACCEPT, NF_DROP][k & 1]! : NFT_CONTINUE) });
      return;
    }
    default:
      return;
  }
}

export function buildProg(spec: ProgSpec, fuse = true): Program {
  const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
  b.addSet(new NftSet('addrs', 4).add([10, 0, 0, 1]).add([192, 168, 1, 7]).add([0, 0, 0, 0]));
  b.addSet(new NftSet('ports', 2, NFT_SET_INTERVAL).addRange([0, 0], [0, 22]).addRange([0x04, 0], [0x1f, 0x90]));
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: spec.policy });
  for (let u = 0; u < spec.users; u++) b.chain(`U${u}`);
  for (const r of spec.rules) {
    const chain = r.chain % (spec.users + 1);
    b.rule(chain);
    for (const e of r.exprs) emitSpec(b, e, chain, spec.users);
  }
  return b.finish({ fuse });
}

export interface PktSpec {
  eth: boolean;
  vlan: boolean;
  v6: boolean;
  l4: number;
  sport: number;
  dport: number;
  src: number;
  frag: number;
  trunc: number;
  extra: number[];
  mark: number;
  iif: boolean;
  skuid: number;
  pkttype: number;
  nftrace: boolean;
  garbage: number[] | null;
  /** Conntrack metadata: state bits, mark, status, direction (-1 = none). */
  ct: [state: number, mark: number, status: number, dir: number];
}

export const pktSpec: fc.Arbitrary<PktSpec> = fc.record({
  eth: fc.boolean(),
  vlan: fc.boolean(),
  v6: fc.boolean(),
  l4: fc.integer({ min: 0, max: 3 }),
  sport: fc.constantFrom(22, 80, 1024, 40000, 8080),
  dport: fc.constantFrom(22, 80, 1024, 53, 8080),
  src: fc.nat(3),
  frag: fc.integer({ min: 0, max: 5 }),
  trunc: fc.integer({ min: -1, max: 30 }),
  extra: fc.array(byte, { maxLength: 8 }),
  mark: fc.constantFrom(0, 1, 0x4000, 0x01020304, -1),
  iif: fc.boolean(),
  skuid: fc.constantFrom(-1, 0, 1000),
  pkttype: fc.constantFrom(0, 1, 2, 3, 4, 5),
  nftrace: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
  garbage: fc.option(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 80 }), { freq: 6 }),
  ct: fc.tuple(fc.constantFrom(1, 2, 4, 8, 64), fc.constantFrom(0, 1, 0x4000, -1), fc.constantFrom(0, 0x10, 0x20, 0x30, 0x1ff), fc.constantFrom(-1, 0, 1)),
});

export function buildPkt(s: PktSpec): Packet {
  let layers: Layer[];
  if (s.garbage) layers = [raw(s.garbage)];
  else {
    const src = ['10.0.0.1', '192.168.1.7', '0.0.0.0', '224.0.0.5'][s.src]!;
    const l4: Layer = s.l4 === 0 ? tcp({ sport: s.sport, dport: s.dport, truncate: s.trunc >= 0 ? s.trunc : undefined })
      : s.l4 === 1 ? udp({ sport: s.sport, dport: s.dport }) : raw(s.extra);
    const net: Layer[] = s.v6
      ? [ipv6({ src: `2001:db8::${s.src}` }), ...(s.frag === 1 ? [ext('hbh')] : s.frag === 2 ? [ext('frag', { offset: 3 })] : s.frag === 3 ? [ext('frag', { mf: true })] : s.frag === 4 ? [ext('ah')] : [])]
      : [ipv4({ src, fragoff: s.frag === 2 ? 3 : 0, mf: s.frag === 3, ihl: s.frag === 5 ? 4 : undefined })];
    layers = [...(s.eth ? [eth(), ...(s.vlan ? [vlan()] : [])] : []), ...net, l4, raw(s.extra)];
  }
  const p = packet(layers, { mark: s.mark, iif: s.iif ? [2, 'eth0'] : undefined });
  p.meta[M_SKUID] = s.skuid;
  p.meta[M_SKGID] = s.skuid;
  p.meta[M_PKTTYPE] = s.pkttype;
  p.meta[M_CPU] = 1;
  p.meta[M_PRIORITY] = 7;
  if (s.nftrace) p.meta[M_FLAGS] |= F_NFTRACE;
  [p.meta[M_CT_STATE], p.meta[M_CT_MARK], p.meta[M_CT_STATUS], p.meta[M_CT_DIR]] = s.ct;
  return p;
}
