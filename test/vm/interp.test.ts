/**
 * Interpreter semantics on hand-built programs and packets. Every run goes
 * through both the interpreter and the slow interpreter (helpers/run.ts),
 * which must agree on verdict, registers, counters, metadata and events.
 */
import { describe, expect, it } from 'vitest';
import {
  F_NFTRACE, M_FLAGS, M_L4PROTO, M_MARK, M_PKTTYPE, M_SKUID, NFT_BITWISE_LSHIFT, NFT_BITWISE_RSHIFT,
  NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, NFT_GOTO, NFT_JUMP,
  NFT_JUMP_STACK_SIZE, NFT_LIMIT_PKTS, NFT_META_CPU, NFT_META_IIF, NFT_META_IIFGROUP, NFT_META_IIFNAME,
  NFT_META_IIFTYPE, NFT_META_L4PROTO, NFT_META_LEN, NFT_META_MARK, NFT_META_NFPROTO, NFT_META_NFTRACE,
  NFT_META_OIFNAME, NFT_META_PKTTYPE, NFT_META_PRANDOM, NFT_META_PROTOCOL, NFT_META_SKUID, NFT_NG_INCREMENTAL,
  NFT_NG_RANDOM, NFT_PAYLOAD_LL_HEADER as LL, NFT_PAYLOAD_NETWORK_HEADER as NH, NFT_PAYLOAD_TRANSPORT_HEADER as TH,
  NFT_RANGE_EQ, NFT_RANGE_NEQ, NFT_REG32_00, NFT_REG32_01, NFT_REG_1, NFT_REG_2, NFT_RETURN, NFT_SET_INTERVAL, NftSet,
  PACKET_BROADCAST, PACKET_LOOPBACK, PACKET_MULTICAST, ProgramBuilder, TRACE_LOG, TRACE_NFTRACE, TRACE_POLICY,
  TRACE_RETURN, TRACE_RULE, VmError, emitBitwise, emitBitwiseShift, emitByteorder, emitCmp, emitCounter,
  emitImmediate, emitLimit, emitLog, emitLookup, emitMetaGet, emitMetaSet, emitNumgen, emitPayload, emitRange,
  emitVerdict, emitRandomCmp, VmEnv, NftRegs, nftDoChain, nftDoChainSlow, jitCode, jitDoChain, NFT_REG_3, NFT_REG_4, type Packet, type Program,
} from '../../vm/index.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_QUEUE } from '../../core/netfilter.js';
import { eth, ext, ip4, ipv4, ipv6, packet, raw, tcp, udp, vlan } from './helpers/pkt.js';
import { runBoth, runOne } from './helpers/run.js';

const R1 = NFT_REG_1;

/** One base chain INPUT (policy DROP unless given) whose single rule is built by `body`, ending in accept. */
function oneRule(body: (b: ProgramBuilder) => void, family = NFPROTO_IPV4): Program {
  const b = new ProgramBuilder(family, 'filter');
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
  b.rule('INPUT');
  body(b);
  emitVerdict(b, NF_ACCEPT);
  return b.finish();
}

/** Does the rule built by `body` match `pkt`? (accept = matched, the DROP policy = not.) */
function matches(pkt: Packet, body: (b: ProgramBuilder) => void, family = NFPROTO_IPV4): boolean {
  const v = runBoth(oneRule(body, family), 0, pkt).verdict;
  return v === NF_ACCEPT;
}

/** Register words after running `body` (a rule that always completes) on `pkt`. */
function regsAfter(pkt: Packet, body: (b: ProgramBuilder) => void): Int32Array {
  return runBoth(oneRule(body), 0, pkt).regs;
}

const tcp22 = (): Packet => packet([ipv4({ src: '192.168.1.7', dst: '10.0.0.2' }), tcp({ sport: 1024, dport: 22 })]);

describe('the kernel-facts §1.7 rule', () => {
  function prog(fuse = true): Program {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.rule('INPUT', { line: 3, col: 1 });
    emitPayload(b, R1, NH, 12, 3);
    emitCmp(b, NFT_CMP_EQ, R1, [192, 168, 1]);
    emitPayload(b, R1, NH, 9, 1);
    emitCmp(b, NFT_CMP_EQ, R1, [6]);
    emitPayload(b, R1, TH, 2, 2);
    emitCmp(b, NFT_CMP_EQ, R1, [0, 22]);
    emitCounter(b);
    emitVerdict(b, NF_ACCEPT);
    return b.finish({ fuse });
  }

  it('accepts a matching packet and counts it with its L3 length', () => {
    const p = prog();
    const r = runBoth(p, 0, tcp22());
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.counters).toEqual([1, 40]);
    expect([...p.srcmap]).toEqual([3, 1]);
  });

  it('falls to the DROP policy, uncounted, when any test fails', () => {
    const p = prog();
    for (const pkt of [
      packet([ipv4({ src: '192.168.2.7' }), tcp({ dport: 22 })]),
      packet([ipv4({ src: '192.168.1.7' }), udp({ dport: 22 })]),
      packet([ipv4({ src: '192.168.1.7' }), tcp({ dport: 23 })]),
    ]) {
      const r = runBoth(p, 0, pkt);
      expect(r.verdict).toBe(NF_DROP);
      expect(r.counters).toEqual([0, 0]);
    }
  });

  it('takes 10 words (40 bytes) of bytecode, plus the chain END word; 13 words (52 bytes) without superinstructions', () => {
    // [rule header 2] [payload+cmp 2] x 3 [counter 1] [verdict 1]
    expect(prog().code.length).toBe(10 + 1);
    expect(prog(false).code.length).toBe(13 + 1);
  });
});

describe('payload', () => {
  it('loads from the link, network and transport headers', () => {
    const pkt = packet([eth({ dst: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee] }), ipv4({ src: '1.2.3.4' }), tcp({ dport: 443 })]);
    expect(matches(pkt, (b) => {
      emitPayload(b, R1, LL, 0, 6);
      emitCmp(b, NFT_CMP_EQ, R1, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
      emitPayload(b, R1, LL, 12, 2);
      emitCmp(b, NFT_CMP_EQ, R1, [0x08, 0x00]);
      emitPayload(b, R1, NH, 12, 4);
      emitCmp(b, NFT_CMP_EQ, R1, ip4('1.2.3.4'));
      emitPayload(b, R1, TH, 2, 2);
      emitCmp(b, NFT_CMP_EQ, R1, [0x01, 0xbb]);
    })).toBe(true);
  });

  it('sees 802.1Q tags inline at the link layer and finds the network header after them', () => {
    const pkt = packet([eth(), vlan({ vid: 42 }), ipv4({ dst: '9.9.9.9' }), udp({ dport: 53 })]);
    expect(matches(pkt, (b) => {
      emitPayload(b, R1, LL, 12, 4);
      emitCmp(b, NFT_CMP_EQ, R1, [0x81, 0x00, 0x00, 42]);
      emitPayload(b, R1, NH, 16, 4);
      emitCmp(b, NFT_CMP_EQ, R1, ip4('9.9.9.9'));
      emitPayload(b, R1, TH, 2, 2);
      emitCmp(b, NFT_CMP_EQ, R1, [0, 53]);
    })).toBe(true);
  });

  it('BREAKs on a link-layer load without a MAC header (raw IP)', () => {
    expect(matches(tcp22(), (b) => emitPayload(b, R1, LL, 0, 1))).toBe(false);
  });

  it('BREAKs past the end of the packet, so a following neq does not match either', () => {
    const pkt = tcp22(); // 40 bytes of IP
    expect(matches(pkt, (b) => emitPayload(b, R1, NH, 36, 4))).toBe(true);
    expect(matches(pkt, (b) => emitPayload(b, R1, NH, 37, 4))).toBe(false);
    expect(matches(pkt, (b) => {
      emitPayload(b, R1, TH, 19, 2);
      emitCmp(b, NFT_CMP_NEQ, R1, [0, 0]);
    })).toBe(false);
  });

  it('zeroes the partial last word of the destination, even on BREAK', () => {
    const r = regsAfter(tcp22(), (b) => {
      emitImmediate(b, R1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      emitPayload(b, R1, NH, 9, 1);
    });
    expect(r[4]).toBe(6);
    expect(r[5]).toBe(-1);
    const p = oneRule((b) => {
      emitImmediate(b, R1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      emitPayload(b, R1, NH, 200, 6);
    });
    const r2 = runBoth(p, 0, tcp22());
    expect(r2.verdict).toBe(NF_DROP);
    expect(r2.regs[4]).toBe(-1);
    expect(r2.regs[5]).toBe(0);
  });

  it('a non-first IPv4 fragment: the kernel\'s fast loads (1, 2, 4 aligned bytes) read its data at thoff, the others BREAK', () => {
    const dport = (b: ProgramBuilder): void => {
      emitPayload(b, R1, TH, 2, 2);
      emitCmp(b, NFT_CMP_EQ, R1, [0, 22]);
    };
    expect(matches(packet([ipv4({ mf: true }), tcp({ dport: 22 })]), dport)).toBe(true);
    const later = packet([ipv4({ fragoff: 185 }), tcp({ dport: 22 })]);
    // nft_payload_fast_eval() of 6.18 tests NFT_PKTINFO_L4PROTO only (test/kernel/backend-semantics-kernel.test.ts)
    expect(matches(later, dport)).toBe(true);
    // nft_payload_eval() (3 bytes, or 2 at an odd offset) BREAKs on pkt->fragoff
    expect(matches(later, (b) => emitPayload(b, R1, TH, 1, 3))).toBe(false);
    expect(matches(later, (b) => emitPayload(b, R1, TH, 1, 2))).toBe(false);
    expect(matches(packet([ipv4({ mf: true }), tcp({ dport: 22 })]), (b) => emitPayload(b, R1, TH, 1, 2))).toBe(true);
    expect(matches(later, (b) => {
      emitMetaGet(b, R1, NFT_META_L4PROTO);
      emitCmp(b, NFT_CMP_EQ, R1, [6]);
    })).toBe(true);
    // iptables -f: network bytes 6..7 & 0x1fff != 0
    expect(matches(later, (b) => {
      emitPayload(b, R1, NH, 6, 2);
      emitBitwise(b, R1, R1, [0x1f, 0xff], [0, 0]);
      emitCmp(b, NFT_CMP_NEQ, R1, [0, 0]);
    })).toBe(true);
  });

  it('BREAKs a dport load from a truncated TCP header', () => {
    const pkt = packet([ipv4(), tcp({ dport: 22, truncate: 3 })]);
    expect(matches(pkt, (b) => emitPayload(b, R1, TH, 0, 2))).toBe(true);
    expect(matches(pkt, (b) => emitPayload(b, R1, TH, 2, 2))).toBe(false);
  });

  it('leaves L4 info unset on a malformed IPv4 header (transport loads and l4proto BREAK)', () => {
    for (const bad of [packet([ipv4({ ihl: 4 }), tcp()]), packet([ipv4({ totLen: 200 }), tcp()]), packet([ipv4({ totLen: 10 }), tcp()])]) {
      expect(matches(bad, (b) => emitPayload(b, R1, TH, 0, 1))).toBe(false);
      expect(matches(bad, (b) => emitMetaGet(b, R1, NFT_META_L4PROTO))).toBe(false);
      expect(matches(bad, (b) => emitPayload(b, R1, NH, 0, 1))).toBe(true);
    }
  });

  it('walks IPv6 extension headers to the transport header', () => {
    const pkt = packet([ipv6(), ext('hbh'), ext('dst', { len: 1 }), ext('frag'), tcp({ dport: 8080 })]);
    expect(pkt.meta[M_L4PROTO]).toBe(6);
    expect(matches(pkt, (b) => {
      emitPayload(b, R1, TH, 2, 2);
      emitCmp(b, NFT_CMP_EQ, R1, [0x1f, 0x90]);
    }, NFPROTO_IPV6)).toBe(true);
  });

  it('treats an IPv6 non-first fragment as the fragment header says, with transport loads BREAKing but the kernel\'s fast ones', () => {
    const pkt = packet([ipv6(), ext('hbh'), ext('frag', { offset: 100 }), raw([1, 2, 3, 4, 5, 6, 7, 8])]);
    const l4 = packet([ipv6(), ext('frag', { offset: 100 }), udp()]);
    expect(l4.meta[M_L4PROTO]).toBe(17);
    expect(matches(l4, (b) => emitPayload(b, R1, TH, 0, 3), NFPROTO_IPV6)).toBe(false);
    // the fast path reads at thoff, which ipv6_find_hdr() leaves at the network header for a non-first fragment
    expect(matches(l4, (b) => {
      emitPayload(b, R1, TH, 0, 1);
      emitCmp(b, NFT_CMP_EQ, R1, [0x60]);
    }, NFPROTO_IPV6)).toBe(true);
    expect(pkt.meta[M_L4PROTO]).toBe(59); // the payload's next header is none (59)
  });

  it('stops at AH (IP6_FH_F_AUTH): l4proto is 51', () => {
    const pkt = packet([ipv6(), ext('ah'), tcp()]);
    expect(matches(pkt, (b) => {
      emitMetaGet(b, R1, NFT_META_L4PROTO);
      emitCmp(b, NFT_CMP_EQ, R1, [51]);
    }, NFPROTO_IPV6)).toBe(true);
  });

  it('BREAKs transport loads when an IPv6 extension header is truncated', () => {
    const pkt = packet([ipv6({ payloadLen: 1 }), ext('hbh'), tcp()]);
    expect(matches(pkt, (b) => emitMetaGet(b, R1, NFT_META_L4PROTO), NFPROTO_IPV6)).toBe(false);
  });
});

describe('cmp', () => {
  const port = (op: number, data: number[], p: number): boolean =>
    matches(packet([ipv4(), tcp({ dport: p })]), (b) => {
      emitPayload(b, R1, TH, 2, 2);
      emitCmp(b, op, R1, data);
    });

  it('orders network-order data as numbers (memcmp over bytes, not host words)', () => {
    // 256 = 01 00 and 255 = 00 ff: as little-endian words 256 would look smaller.
    expect(port(NFT_CMP_GT, [0x00, 0xff], 256)).toBe(true);
    expect(port(NFT_CMP_LT, [0x00, 0xff], 256)).toBe(false);
    expect(port(NFT_CMP_LT, [0x04, 0x00], 1000)).toBe(true);
    expect(port(NFT_CMP_LTE, [0x04, 0x00], 1024)).toBe(true);
    expect(port(NFT_CMP_LTE, [0x04, 0x00], 1025)).toBe(false);
    expect(port(NFT_CMP_GTE, [0x04, 0x00], 1024)).toBe(true);
    expect(port(NFT_CMP_GT, [0x04, 0x00], 1024)).toBe(false);
  });

  it('eq/neq on 1..16 bytes, fast and generic forms', () => {
    expect(port(NFT_CMP_EQ, [0, 22], 22)).toBe(true);
    expect(port(NFT_CMP_NEQ, [0, 22], 22)).toBe(false);
    const six = packet([ipv6({ src: '2001:db8::7' }), udp()]);
    const src = (op: number, a: string): boolean => matches(six, (b) => {
      emitPayload(b, R1, NH, 8, 16);
      emitCmp(b, op, R1, [...new Uint8Array(0), ...ipv6Bytes(a)]);
    }, NFPROTO_IPV6);
    expect(src(NFT_CMP_EQ, '2001:db8::7')).toBe(true);
    expect(src(NFT_CMP_EQ, '2001:db8::8')).toBe(false);
    expect(src(NFT_CMP_NEQ, '2001:db8::8')).toBe(true);
    expect(src(NFT_CMP_LT, '2001:db8::8')).toBe(true);
  });
});

function ipv6Bytes(a: string): number[] {
  const [h, t] = a.split('::');
  const hs = h!.split(':').filter(Boolean);
  const ts = (t ?? '').split(':').filter(Boolean);
  const g = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  return g.flatMap((x) => [parseInt(x, 16) >> 8, parseInt(x, 16) & 0xff]);
}

describe('bitwise, range, byteorder, immediate', () => {
  it('bitwise mask/xor (4-byte fast form and generic) and shifts with carry', () => {
    const r = regsAfter(tcp22(), (b) => {
      emitImmediate(b, R1, [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
      emitBitwise(b, NFT_REG_2, R1, [0xff, 0x00, 0xff, 0x00], [0x01, 0x01, 0x01, 0x01]);
      emitBitwise(b, NFT_REG32_01, R1, [0xf0, 0xf0], [0, 0]);
    });
    expect(r[8]! >>> 0).toBe(0x01570113);
    expect(r[5]! >>> 0).toBe(0x3010);
    const s = regsAfter(tcp22(), (b) => {
      emitImmediate(b, R1, [0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00]);
      emitBitwiseShift(b, NFT_BITWISE_LSHIFT, NFT_REG_2, R1, 8, 1);
      emitBitwiseShift(b, NFT_BITWISE_RSHIFT, NFT_REG32_00 + 12, R1, 8, 4);
    });
    // words [0x80000000, 1] << 1: carry runs from the last word to the first
    expect([s[8]! >>> 0, s[9]! >>> 0]).toEqual([0x00000000, 0x00000002 | 0]);
    expect([s[16]! >>> 0, s[17]! >>> 0]).toEqual([0x08000000, 0x00000000 | 0x00000000]);
  });

  it('range eq/neq with inclusive bounds', () => {
    const r = (op: number, p: number): boolean =>
      matches(packet([ipv4(), udp({ dport: p })]), (b) => {
        emitPayload(b, R1, TH, 2, 2);
        emitRange(b, op, R1, [0, 100], [0, 200]);
      });
    expect([99, 100, 150, 200, 201].map((p) => r(NFT_RANGE_EQ, p))).toEqual([false, true, true, true, false]);
    expect([99, 100, 200, 201].map((p) => r(NFT_RANGE_NEQ, p))).toEqual([true, false, false, true]);
  });

  it('byteorder hton turns a host-order mark into network order for ordered compares', () => {
    const pkt = packet([ipv4(), tcp()], { mark: 0x01020304 });
    const r = regsAfter(pkt, (b) => {
      emitMetaGet(b, R1, NFT_META_MARK);
      emitByteorder(b, NFT_BYTEORDER_HTON, NFT_REG_2, R1, 4, 4);
      emitByteorder(b, NFT_BYTEORDER_HTON, NFT_REG32_00 + 12, R1, 4, 2);
    });
    expect(r[4]).toBe(0x01020304);
    expect(r[8]! >>> 0).toBe(0x04030201);
    expect(r[16]! >>> 0).toBe(0x02010403); // bytes 04 03 02 01 → 03 04 01 02
    expect(matches(pkt, (b) => {
      emitMetaGet(b, R1, NFT_META_MARK);
      emitByteorder(b, NFT_BYTEORDER_HTON, R1, R1, 4, 4);
      emitCmp(b, NFT_CMP_GT, R1, [0x01, 0x02, 0x03, 0x03]);
    })).toBe(true);
  });

  it('immediate data zeroes the rest of a partial word', () => {
    const r = regsAfter(tcp22(), (b) => {
      emitImmediate(b, R1, [0xff, 0xff, 0xff, 0xff]);
      emitImmediate(b, R1, [0xaa]);
      emitImmediate(b, NFT_REG_2, [1, 2, 3, 4, 5, 6]);
    });
    expect(r[4]).toBe(0xaa);
    expect([r[8], r[9]]).toEqual([0x04030201, 0x0605]);
  });
});

describe('meta', () => {
  const withDevs = (): Packet => packet([eth({ dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] }), ipv4(), tcp()], { iif: [3, 'eth0'] });

  it('iifname / oifname: 16 NUL-padded bytes, zeros without a device', () => {
    const p = withDevs();
    expect(matches(p, (b) => {
      emitMetaGet(b, R1, NFT_META_IIFNAME);
      emitCmp(b, NFT_CMP_EQ, R1, [0x65, 0x74, 0x68, 0x30, 0]);
    })).toBe(true);
    expect(matches(p, (b) => {
      emitMetaGet(b, R1, NFT_META_IIFNAME);
      emitCmp(b, NFT_CMP_EQ, R1, [0x65, 0x74, 0x68]);
    })).toBe(true);
    expect(matches(p, (b) => {
      emitMetaGet(b, R1, NFT_META_OIFNAME);
      emitCmp(b, NFT_CMP_EQ, R1, new Array(16).fill(0));
    })).toBe(true);
  });

  it('iif / iiftype / iifgroup; no device: iif 0, type and group BREAK', () => {
    const p = withDevs();
    expect(regsAfter(p, (b) => emitMetaGet(b, R1, NFT_META_IIF))[4]).toBe(3);
    expect(regsAfter(p, (b) => emitMetaGet(b, R1, NFT_META_IIFTYPE))[4]).toBe(1);
    const none = tcp22();
    expect(regsAfter(none, (b) => emitMetaGet(b, R1, NFT_META_IIF))[4]).toBe(0);
    expect(matches(none, (b) => emitMetaGet(b, R1, NFT_META_IIFTYPE))).toBe(false);
    expect(matches(none, (b) => emitMetaGet(b, R1, NFT_META_IIFGROUP))).toBe(false);
    expect(matches(p, (b) => emitMetaGet(b, R1, NFT_META_IIFGROUP))).toBe(true);
  });

  it('protocol (2 bytes, network order), nfproto and l4proto (1 byte), len', () => {
    const r = regsAfter(withDevs(), (b) => {
      emitMetaGet(b, R1, NFT_META_PROTOCOL);
      emitMetaGet(b, NFT_REG32_01, NFT_META_NFPROTO);
      emitMetaGet(b, NFT_REG32_01 + 1, NFT_META_L4PROTO);
      emitMetaGet(b, NFT_REG32_01 + 2, NFT_META_LEN);
    });
    expect([r[4], r[5], r[6], r[7]]).toEqual([0x0008, 2, 6, 40]);
  });

  it('skuid BREAKs without a socket; pkttype from the MAC, loopback remapped', () => {
    const p = withDevs();
    expect(matches(p, (b) => emitMetaGet(b, R1, NFT_META_SKUID))).toBe(false);
    p.meta[M_SKUID] = 1000;
    expect(regsAfter(p, (b) => emitMetaGet(b, R1, NFT_META_SKUID))[4]).toBe(1000);
    expect(regsAfter(p, (b) => emitMetaGet(b, R1, NFT_META_PKTTYPE))[4]).toBe(PACKET_BROADCAST);
    const lo = packet([ipv4({ dst: '224.0.0.1' }), udp()]);
    lo.meta[M_PKTTYPE] = PACKET_LOOPBACK;
    expect(regsAfter(lo, (b) => emitMetaGet(b, R1, NFT_META_PKTTYPE))[4]).toBe(PACKET_MULTICAST);
    const lo2 = packet([ipv4({ dst: '10.0.0.1' }), udp()]);
    lo2.meta[M_PKTTYPE] = PACKET_LOOPBACK;
    expect(regsAfter(lo2, (b) => emitMetaGet(b, R1, NFT_META_PKTTYPE))[4]).toBe(PACKET_BROADCAST);
  });

  it('prandom and cpu are reproducible', () => {
    const a = regsAfter(tcp22(), (b) => {
      emitMetaGet(b, R1, NFT_META_PRANDOM);
      emitMetaGet(b, NFT_REG_2, NFT_META_CPU);
    });
    const b2 = regsAfter(tcp22(), (b) => {
      emitMetaGet(b, R1, NFT_META_PRANDOM);
      emitMetaGet(b, NFT_REG_2, NFT_META_CPU);
    });
    expect(a[4]).toBe(b2[4]);
    expect(a[4]).not.toBe(0);
    expect(a[8]).toBe(0);
  });

  it('the random compare record is the four expressions it replaces, at and around the threshold, on every engine', () => {
    const mask = [0xff, 0xff, 0xff, 0x7f];
    const env = (draw: number): VmEnv => {
      const e = new VmEnv(1234, 0);
      e.drawAt = () => draw;
      return e;
    };
    for (const t of [0x2aaaaaab, 0x40000000, 0, 0x7fffffff, 0x80000000, 0xfffffffe]) {
      const data = [t >>> 24, (t >>> 16) & 255, (t >>> 8) & 255, t & 255];
      for (const op of [NFT_CMP_EQ, NFT_CMP_NEQ, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_GT, NFT_CMP_GTE]) {
        const four = oneRule((b) => {
          emitMetaGet(b, R1, NFT_META_PRANDOM);
          emitBitwise(b, R1, R1, mask, [0, 0, 0, 0]);
          emitByteorder(b, NFT_BYTEORDER_HTON, R1, R1, 4, 4);
          emitCmp(b, op, R1, data);
        });
        const one = oneRule((b) => emitRandomCmp(b, R1, op, data));
        expect(one.code.length).toBeLessThan(four.code.length);
        for (const d of [t - 1, t, t + 1, t | 0x80000000, 0, -1]) {
          const want = runOne('slow', four, 0, tcp22(), {}, env(d | 0));
          for (const engine of ['interp', 'slow', 'jit', 'jit-runs'] as const) {
            const got = runOne(engine, one, 0, tcp22(), {}, env(d | 0));
            expect([engine, t, op, d, got.verdict, [...got.regs]]).toEqual([engine, t, op, d, want.verdict, [...want.regs]]);
          }
        }
      }
    }
  });

  it('meta set mark is seen by later rules; meta set nftrace records an event', () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.rule('INPUT');
    emitImmediate(b, R1, [0x34, 0x12, 0, 0]);
    emitMetaSet(b, NFT_META_MARK, R1);
    emitImmediate(b, NFT_REG_2, [1]);
    emitMetaSet(b, NFT_META_NFTRACE, NFT_REG_2);
    b.rule('INPUT');
    emitMetaGet(b, R1, NFT_META_MARK);
    emitCmp(b, NFT_CMP_EQ, R1, [0x34, 0x12, 0, 0]);
    emitVerdict(b, NF_QUEUE);
    const r = runBoth(b.finish(), 0, tcp22(), { trace: true });
    expect(r.verdict).toBe(NF_QUEUE);
    expect(r.meta[M_MARK]).toBe(0x1234);
    expect(r.meta[M_FLAGS]! & F_NFTRACE).toBe(F_NFTRACE);
    expect(r.events.map((e) => e.type)).toEqual([TRACE_NFTRACE]);
  });
});

describe('lookup', () => {
  function setProg(set: NftSet, invert: boolean, off: number, len: number): Program {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.addSet(set);
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.rule('INPUT');
    emitPayload(b, R1, NH, off, len);
    emitLookup(b, R1, set.name, invert);
    emitVerdict(b, NF_ACCEPT);
    return b.finish();
  }

  it('hash set hit, miss and inverted', () => {
    const s = new NftSet('src', 4);
    for (let i = 0; i < 50; i++) s.add([10, 0, i, 1]);
    const hit = packet([ipv4({ src: '10.0.7.1' }), tcp()]);
    const miss = packet([ipv4({ src: '10.0.7.2' }), tcp()]);
    expect(runBoth(setProg(s, false, 12, 4), 0, hit).verdict).toBe(NF_ACCEPT);
    expect(runBoth(setProg(s, false, 12, 4), 0, miss).verdict).toBe(NF_DROP);
    expect(runBoth(setProg(s, true, 12, 4), 0, hit).verdict).toBe(NF_DROP);
    expect(runBoth(setProg(s, true, 12, 4), 0, miss).verdict).toBe(NF_ACCEPT);
    expect(s.size).toBe(50);
  });

  it('keys of a length that is not a word multiple ignore the bytes after the key', () => {
    const s = new NftSet('pfx', 3).add([192, 168, 1]);
    expect(runBoth(setProg(s, false, 12, 3), 0, tcp22()).verdict).toBe(NF_ACCEPT);
  });

  it('interval set: inclusive ranges, merged', () => {
    const s = new NftSet('ports', 2, NFT_SET_INTERVAL).addRange([0, 100], [0, 200]).addRange([0, 150], [1, 0]).add([0x1f, 0x90]);
    expect(s.size).toBe(2);
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.addSet(s);
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.rule('INPUT');
    emitPayload(b, R1, TH, 2, 2);
    emitLookup(b, R1, 'ports');
    emitVerdict(b, NF_ACCEPT);
    const p = b.finish();
    const at = (port: number): number => runBoth(p, 0, packet([ipv4(), tcp({ dport: port })])).verdict;
    expect([99, 100, 256, 257, 8080, 8081].map(at)).toEqual([NF_DROP, NF_ACCEPT, NF_ACCEPT, NF_DROP, NF_ACCEPT, NF_DROP]);
  });
});

describe('registers at a base chain run', () => {
  it('start zeroed whatever the run before left in them (nft_do_chain), on every engine', () => {
    // one rule: every data register word (NFT_REG_1..NFT_REG_4, u32 slots 4..19) is zero, then accept
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.rule('INPUT');
    for (const r of [NFT_REG_1, NFT_REG_2, NFT_REG_3, NFT_REG_4]) emitCmp(b, NFT_CMP_EQ, r, new Array(16).fill(0));
    emitVerdict(b, NF_ACCEPT);
    const prog = b.finish();
    const runners = [
      (regs: NftRegs, p: Packet) => nftDoChain(prog, 0, p, regs, new Int32Array(32), new VmEnv()),
      (regs: NftRegs, p: Packet) => nftDoChainSlow(prog, 0, p, regs, new Int32Array(32), new VmEnv()),
      (regs: NftRegs, p: Packet) => jitDoChain(jitCode(prog), 0, p, regs, new Int32Array(32), new VmEnv()),
    ];
    for (const run of runners) {
      for (let word = 0; word < 20; word++) {
        const regs = new NftRegs();
        regs.r32[word] = -1;
        expect(run(regs, tcp22()), `word ${word} left set`).toBe(NF_ACCEPT);
        expect([...regs.r32].every((w) => w === 0)).toBe(true);
      }
    }
  });
});

describe('chains: jump, goto, return, policy', () => {
  /** INPUT (policy DROP) and user chains; each rule list is [chain, build]. */
  function chains(user: string[], rules: [string, (b: ProgramBuilder) => void][], validate = true): Program {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    for (const u of user) b.chain(u);
    for (const [c, f] of rules) {
      b.rule(c);
      f(b);
    }
    return b.finish({ validate });
  }
  const mark = (v: number) => (b: ProgramBuilder): void => {
    emitImmediate(b, R1, [v, 0, 0, 0]);
    emitMetaSet(b, NFT_META_MARK, R1);
  };

  it('jump returns after the jumping rule; end of a user chain returns too', () => {
    const p = chains(['A'], [
      ['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'A')],
      ['INPUT', (b) => { mark(2)(b); emitVerdict(b, NF_ACCEPT); }],
      ['A', mark(1)],
    ]);
    const r = runBoth(p, 0, tcp22());
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.meta[M_MARK]).toBe(2);
  });

  it('an explicit return pops; the rest of the chain is skipped', () => {
    const p = chains(['A'], [
      ['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'A')],
      ['A', (b) => emitVerdict(b, NFT_RETURN)],
      ['A', (b) => emitVerdict(b, NF_ACCEPT)],
    ]);
    expect(runBoth(p, 0, tcp22()).verdict).toBe(NF_DROP);
  });

  it('RETURN after a goto goes back past the goto, to the last jump', () => {
    const p = chains(['A', 'B'], [
      ['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'A')],
      ['INPUT', (b) => emitVerdict(b, NF_ACCEPT)],
      ['A', (b) => emitVerdict(b, NFT_GOTO, 'B')],
      ['A', mark(7)],
      ['B', (b) => emitVerdict(b, NFT_RETURN)],
    ]);
    const r = runBoth(p, 0, tcp22());
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.meta[M_MARK]).toBe(0);
  });

  it('a goto from the base chain ends in the base policy', () => {
    const p = chains(['B'], [
      ['INPUT', (b) => emitVerdict(b, NFT_GOTO, 'B')],
      ['INPUT', (b) => emitVerdict(b, NF_ACCEPT)],
      ['B', mark(3)],
    ]);
    const r = runBoth(p, 0, tcp22());
    expect(r.verdict).toBe(NF_DROP);
    expect(r.meta[M_MARK]).toBe(3);
  });

  it('a terminal verdict in a user chain ends everything', () => {
    const p = chains(['A'], [
      ['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'A')],
      ['INPUT', (b) => emitVerdict(b, NF_DROP)],
      ['A', (b) => emitVerdict(b, NF_ACCEPT)],
    ]);
    expect(runBoth(p, 0, tcp22()).verdict).toBe(NF_ACCEPT);
  });

  it('15 nested jumps run; 16 are refused at load, and run anyway drop on stack overflow', () => {
    const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `C${i}`);
    const nest = (n: number, validate: boolean): Program =>
      chains(names(n), [
        ['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'C0')],
        ...names(n).map((c, i): [string, (b: ProgramBuilder) => void] => [c, (b) => (i + 1 < n ? emitVerdict(b, NFT_JUMP, `C${i + 1}`) : emitVerdict(b, NF_ACCEPT))]),
      ], validate);
    expect(runBoth(nest(NFT_JUMP_STACK_SIZE - 1, true), 0, tcp22()).verdict).toBe(NF_ACCEPT);
    expect(() => nest(NFT_JUMP_STACK_SIZE, true)).toThrow(/EMLINK/);
    expect(runBoth(nest(NFT_JUMP_STACK_SIZE, false), 0, tcp22()).verdict).toBe(NF_ACCEPT);
    expect(runBoth(nest(NFT_JUMP_STACK_SIZE + 1, false), 0, tcp22()).verdict).toBe(NF_DROP);
  });

  it('loops are refused at load (-ELOOP), jumps to base chains too', () => {
    expect(() => chains(['A', 'B'], [['A', (b) => emitVerdict(b, NFT_JUMP, 'B')], ['B', (b) => emitVerdict(b, NFT_GOTO, 'A')]])).toThrow(/ELOOP/);
    expect(() => chains([], [['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'INPUT')]])).toThrow(VmError);
    expect(() => chains([], [['INPUT', (b) => emitVerdict(b, NFT_JUMP, 'NOPE')]])).toThrow(/not declared/);
  });

  it('counters count only when the expressions before them passed', () => {
    const p = chains([], [
      ['INPUT', (b) => { emitCounter(b); emitPayload(b, R1, NH, 9, 1); emitCmp(b, NFT_CMP_EQ, R1, [17]); emitCounter(b); }],
      ['INPUT', (b) => { emitPayload(b, R1, NH, 9, 1); emitCmp(b, NFT_CMP_EQ, R1, [6]); emitCounter(b); emitVerdict(b, NF_ACCEPT); emitCounter(b); }],
    ]);
    const r = runBoth(p, 0, tcp22());
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.counters).toEqual([1, 40, 0, 0, 1, 40, 0, 0]);
  });

  it('an empty base chain returns its policy; a rule without verdict falls through', () => {
    expect(runBoth(chains([], []), 0, tcp22()).verdict).toBe(NF_DROP);
    expect(runBoth(chains([], [['INPUT', (b) => emitCounter(b)]]), 0, tcp22()).counters).toEqual([1, 40]);
  });
});

describe('numgen, limit, log, trace', () => {
  it('numgen inc counts 0, 1, .., modulus-1, 0 (+offset); random stays in range', () => {
    const p = oneRule((b) => {
      emitNumgen(b, R1, NFT_NG_INCREMENTAL, 3, 100);
      emitNumgen(b, NFT_REG_2, NFT_NG_RANDOM, 10);
    });
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = runBoth(p, 0, tcp22(), { keepState: i > 0 });
      seen.push(r.regs[4]!);
      expect(r.regs[8]).toBeGreaterThanOrEqual(0);
      expect(r.regs[8]).toBeLessThan(10);
    }
    expect(seen).toEqual([100, 101, 102, 100, 101]);
  });

  it('limit: the bucket starts full (burst), refills with the clock; inverted swaps', () => {
    const p = oneRule((b) => emitLimit(b, 1, 1, 2, NFT_LIMIT_PKTS));
    const at = (ns: number, first = false): number => runBoth(p, 0, tcp22(), { keepState: !first, nowNs: ns }).verdict;
    expect([at(0, true), at(1), at(2), at(999_999_999), at(1_000_000_002), at(1_000_000_003)]).toEqual([NF_ACCEPT, NF_ACCEPT, NF_DROP, NF_DROP, NF_ACCEPT, NF_DROP]);
    const inv = oneRule((b) => emitLimit(b, 1, 1, 1, NFT_LIMIT_PKTS, true));
    expect(runBoth(inv, 0, tcp22()).verdict).toBe(NF_DROP);
    expect(runBoth(inv, 0, tcp22(), { keepState: true }).verdict).toBe(NF_ACCEPT);
  });

  it('log records an event and never changes the verdict', () => {
    const p = oneRule((b) => emitLog(b, { prefix: 'x ' }));
    const r = runBoth(p, 0, tcp22(), { trace: true });
    expect(r.verdict).toBe(NF_ACCEPT);
    expect(r.events).toEqual([{ type: TRACE_LOG, chain: 0, rule: 0, verdict: 0, arg: 2 }]);
  });

  it('a packet entering with nftrace set records rule, return and policy events', () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_DROP });
    b.chain('A');
    b.rule('INPUT');
    emitVerdict(b, NFT_JUMP, 'A');
    b.rule('A');
    emitCounter(b);
    const pkt = tcp22();
    pkt.meta[M_FLAGS] |= F_NFTRACE;
    const env = runOne('interp', b.finish(), 0, pkt, { trace: true });
    expect(env.verdict).toBe(NF_DROP);
    expect(env.events.map((e) => [e.type, e.chain, e.rule, e.verdict])).toEqual([
      [TRACE_RULE, 0, 0, NFT_JUMP],
      [TRACE_RULE, 1, 1, -1],
      [TRACE_RETURN, 1, -1, -1],
      [TRACE_RETURN, 0, -1, -1],
      [TRACE_POLICY, 0, -1, NF_DROP],
    ]);
  });
});
