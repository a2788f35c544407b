/**
 * Each scheduler against the sequence its kernel code gives (Linux 6.18
 * net/netfilter/ipvs/ip_vs_<name>.c), derived by hand in the comments.
 *
 * The services are built as `ipvsadm -R` builds them: ip_vs_add_service()
 * then one __ip_vs_update_dest() per `-a` in file order, each a
 * list_add_rcu() at the HEAD of svc->destinations followed by
 * sched->add_dest(). So the kernel's list is the reverse of the file.
 */
import { describe, expect, it } from 'vitest';
import { IpvsService, parseIpvsadmSave, type SchedPacket, IP_VS_DEST_F_OVERLOAD } from '../../../hooks/ipvs/index.js';
import { WrrScheduler } from '../../../hooks/ipvs/sched/wrr.js';
import { parseIPv4 } from '../../../core/addr.js';

/** A TCP service at 10.0.0.100:80 with real servers A, B, C... (10.1.0.1, .2, ...) of these weights, in file order. */
function svc(sched: string, weights: number[], extra = ''): { s: IpvsService; name: Map<unknown, string> } {
  let text = `-A -t 10.0.0.100:80 -s ${sched}${extra}\n`;
  weights.forEach((w, i) => (text += `-a -t 10.0.0.100:80 -r 10.1.0.${i + 1}:80 -m -w ${w}\n`));
  const s = new IpvsService(parseIpvsadmSave(text, 't').services[0]!, 't');
  const name = new Map<unknown, string>();
  for (const d of s.dests) name.set(d, String.fromCharCode(64 + d.addr[3]!));
  return { s, name };
}

const pkt = (saddr: string, sport = 40000, daddr = '10.0.0.100'): SchedPacket => ({
  family: 4, saddr: parseIPv4(saddr)!, daddr: parseIPv4(daddr)!, sport, dport: 80, protocol: 6,
});

function seq(s: IpvsService, name: Map<unknown, string>, n: number, p = pkt('192.0.2.1')): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const d = s.schedule(p);
    out += d ? name.get(d) : '-';
  }
  return out;
}

describe('the kernel list order', () => {
  it('is the reverse of the -a lines (list_add_rcu at the head)', () => {
    const { s, name } = svc('rr', [1, 1, 1]);
    expect(s.dests.map((d) => name.get(d)).join('')).toBe('CBA');
  });
});

describe('rr (ip_vs_rr_schedule)', () => {
  it('walks the list from the head, wrapping', () => {
    // sched_data starts at the head: C, B, A, then from A's successor (the head) again.
    const { s, name } = svc('rr', [1, 1, 1]);
    expect(seq(s, name, 7)).toBe('CBACBAC');
  });
  it('skips weight 0 (quiesced) and overloaded dests; none left: no dest', () => {
    // list C(1) B(0) A(1): B fails `weight > 0`.
    const { s, name } = svc('rr', [1, 0, 1]);
    expect(seq(s, name, 4)).toBe('CACA');
    s.dests[0]!.flags |= IP_VS_DEST_F_OVERLOAD; // C overloaded
    expect(seq(s, name, 3)).toBe('AAA');
    s.dests[2]!.weight = 0;
    expect(seq(s, name, 1)).toBe('-');
  });
});

describe('wrr (ip_vs_wrr_schedule, ip_vs_wrr_dest_changed)', () => {
  it('weights 4, 3, 2 added in that order: cw carried over from the first add', () => {
    // init_svc on no dests: di = 1 (gcd of nothing), mw = 0, cw = 0.
    // add A(4): list [A]; di = 4, mw = 4 - 3 = 1; cw == 0 -> cw = mw = 1.
    // add B(3): list [B A]; di = 1, mw = 4; cw = 1 fits (not > mw, not 0), di == 1 -> stays 1.
    // add C(2): list [C B A]; di = 1, mw = 4, cw stays 1.
    // cw = 1: C, B, A. End of list: cw = 0 -> mw = 4 (restarted): A (4 >= 4).
    // Then cw 3: B, A; cw 2: C, B, A; cw 1: C, B, A; cw 4: A; ...
    const { s, name } = svc('wrr', [4, 3, 2]);
    expect(seq(s, name, 21)).toBe('CBA' + 'ABACBACBA' + 'ABACBACBA');
  });
  it('a scheduler bound over all the dests at once starts at cw = mw', () => {
    // ip_vs_wrr_init_svc with [C2 B3 A4]: di 1, mw 4, cw 4: A; cw 3: B A; cw 2: C B A; cw 1: C B A.
    const { s, name } = svc('rr', [4, 3, 2]);
    const w = new WrrScheduler(s.dests);
    let out = '';
    for (let i = 0; i < 9; i++) out += name.get(w.schedule(s.dests)!);
    expect(out).toBe('ABACBACBA');
  });
  it('a gcd above 1 steps cw by di', () => {
    // add A(2): di 2, mw 2 - 1 = 1, cw 0 -> 1. add B(4): list [B A]; di 2, mw 4 - 1 = 3; cw 1 fits;
    // di > 1 -> cw = (1 / 2) * 2 + 1 = 1.
    // cw 1: B, A. End: cw = 1 - 2 = -1 -> mw 3 (restarted), last_pass = (3 <= 2) false: B (4 >= 3).
    // Next call from A: A (2 < 3) no; end: cw 1, last_pass, stop = B's slot: B (4 >= 1) found first. Then A.
    const { s, name } = svc('wrr', [2, 4]);
    expect(seq(s, name, 8)).toBe('BA' + 'BBA' + 'BBA');
  });
  it('weight 0 is never chosen; all 0: no dest (mw 0)', () => {
    // list C(1) B(0) A(1): di 1, mw 1, cw 1: C, A; end: cw 0 -> 1, last_pass: C, A, ...
    const { s, name } = svc('wrr', [1, 0, 1]);
    expect(seq(s, name, 6)).toBe('CACACA');
    const z = svc('wrr', [0, 0]);
    expect(seq(z.s, z.name, 2)).toBe('--');
  });
  it('all overloaded: no dest (err_over)', () => {
    const { s, name } = svc('wrr', [2, 1]);
    for (const d of s.dests) d.flags |= IP_VS_DEST_F_OVERLOAD;
    expect(seq(s, name, 2)).toBe('--');
  });
});

/** Sets [activeconns, inactconns] of the dests in kernel list order. */
function load(s: IpvsService, conns: [number, number][]): void {
  conns.forEach(([a, i], k) => {
    s.dests[k]!.activeconns = a;
    s.dests[k]!.inactconns = i;
  });
}

describe('the least-connection family', () => {
  it('lc: smallest activeconns*256 + inactconns, the first of equals', () => {
    // list C B A with overheads C 256, B 300, A 256: C (A ties, not smaller).
    const { s, name } = svc('lc', [3, 2, 1]);
    load(s, [[1, 0], [0, 300], [1, 0]]);
    expect(seq(s, name, 1)).toBe('C');
    // lc ignores weights but skips weight 0: C quiesced -> A (256 < 300).
    s.dests[0]!.weight = 0;
    expect(seq(s, name, 1)).toBe('A');
  });
  it('wlc: loh * w(dest) > doh * w(least), strict', () => {
    // weights A3 B2 C1 -> list C(1) B(2) A(3); overheads C 256, B 300, A 256.
    // least C (256); B: 256*2 = 512 > 300*1 = 300 -> B; A: 300*3 = 900 > 256*2 = 512 -> A.
    const { s, name } = svc('wlc', [3, 2, 1]);
    load(s, [[1, 0], [0, 300], [1, 0]]);
    expect(seq(s, name, 1)).toBe('A');
    // All idle: 0 * w > 0 * w never holds: the first available, C.
    load(s, [[0, 0], [0, 0], [0, 0]]);
    expect(seq(s, name, 1)).toBe('C');
  });
  it('sed: overhead activeconns + 1', () => {
    // list C(1) B(2) A(3), active C 1, B 0, A 1: overheads 2, 1, 2.
    // least C; B: 2*2 = 4 > 1*1 -> B; A: 1*3 = 3 > 2*2 = 4? no -> B.
    const { s, name } = svc('sed', [3, 2, 1]);
    load(s, [[1, 0], [0, 999], [1, 0]]);
    expect(seq(s, name, 1)).toBe('B');
  });
  it('nq: an idle dest at once, else sed', () => {
    // list C(1) B(2) A(3), active 1, 0, 1: B is idle -> B.
    const { s, name } = svc('nq', [3, 2, 1]);
    load(s, [[1, 0], [0, 0], [1, 0]]);
    expect(seq(s, name, 1)).toBe('B');
    // active 1, 2, 1 -> overheads 2, 3, 2. least C; B: 2*2 = 4 > 3*1 -> B; A: 3*3 = 9 > 2*2 -> A.
    load(s, [[1, 0], [2, 0], [1, 0]]);
    expect(seq(s, name, 1)).toBe('A');
    // An idle weight-0 dest is skipped before the idle test.
    load(s, [[1, 0], [0, 0], [1, 0]]);
    s.dests[1]!.weight = 0;
    expect(seq(s, name, 1)).toBe('A');
  });
});

describe('fo and ovf', () => {
  it('fo: the highest weight, the first of equals', () => {
    const { s, name } = svc('fo', [1, 3, 3]); // list C3 B3 A1
    expect(seq(s, name, 2)).toBe('CC');
    s.dests[0]!.flags |= IP_VS_DEST_F_OVERLOAD;
    expect(seq(s, name, 1)).toBe('B');
  });
  it('ovf: the highest weight with activeconns <= weight', () => {
    const { s, name } = svc('ovf', [3, 5, 1]); // list C1 B5 A3
    load(s, [[1, 0], [6, 0], [0, 0]]); // B over its weight, C at it
    expect(seq(s, name, 1)).toBe('A');
    load(s, [[1, 0], [6, 0], [4, 0]]);
    expect(seq(s, name, 1)).toBe('C');
    load(s, [[2, 0], [6, 0], [4, 0]]);
    expect(seq(s, name, 1)).toBe('-');
  });
});

describe('sh (ip_vs_sh_reassign, ip_vs_sh_hashkey)', () => {
  // Weights A1 B2 C1 -> list C(1) B(2) A(1); buckets 0..255 repeat C B B A.
  // hash_32(v, 8) = (v * 0x61c88647 mod 2^32) >> 24:
  //   10.0.0.1 = 0x0a000001: * 0x61c88647 = 0x27c88647 -> 39, 39 mod 4 = 3 -> A
  //   10.0.0.2 = 0x0a000002: 0x89910c8e -> 137, 137 mod 4 = 1 -> B
  //   10.0.0.3 = 0x0a000003: 0xeb5992d5 -> 235, mod 4 = 3 -> A
  //   with sh-port, 10.0.0.1 port 40000: 0x0a000001 + 40000 -> 0xcbbd5c07 -> 203 -> A
  it('hashes the source address into weighted buckets', () => {
    const { s, name } = svc('sh', [1, 2, 1]);
    expect(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((a) => name.get(s.schedule(pkt(a)))).join('')).toBe('ABA');
    expect(seq(s, name, 3, pkt('10.0.0.2'))).toBe('BBB');
  });
  it('an unavailable bucket gives no dest; sh-fallback probes (offset + hash) from ihash', () => {
    const plain = svc('sh', [1, 2, 1]);
    plain.s.dests[2]!.flags |= IP_VS_DEST_F_OVERLOAD; // A
    expect(seq(plain.s, plain.name, 1, pkt('10.0.0.1'))).toBe('-');
    // fallback: ihash 39 (A); offset 0: roffset 39, (39 + 39) & 255 = 78, 78 mod 4 = 2 -> B.
    const fb = svc('sh', [1, 2, 1], ' -b sh-fallback');
    fb.s.dests[2]!.flags |= IP_VS_DEST_F_OVERLOAD;
    expect(seq(fb.s, fb.name, 1, pkt('10.0.0.1'))).toBe('B');
  });
  it('a weight-0 dest still takes one bucket (++d_count >= 0)', () => {
    // list C(1) B(0) A(1): buckets C B A C B A ...; 10.0.0.2 -> 137 mod 3 = 2 -> A; 10.0.0.3 -> 235 mod 3 = 1 -> B (weight 0: none).
    const { s, name } = svc('sh', [1, 0, 1]);
    expect(seq(s, name, 1, pkt('10.0.0.2'))).toBe('A');
    expect(seq(s, name, 1, pkt('10.0.0.3'))).toBe('-');
  });
});

describe('dh (ip_vs_dh_reassign, ip_vs_dh_hashkey)', () => {
  // One bucket per dest in list order: bucket i -> list[i mod 3] = C B A.
  // (ntohl(daddr) * 2654435761) & 255 depends on the low bytes only: 2654435761 = 0x9e3779b1.
  //   daddr 10.9.0.1: 0x01 * 0xb1 = 0xb1 = 177, 177 mod 3 = 0 -> C
  //   daddr 10.9.0.2: 0x02 * 0xb1 = 0x162 -> 0x62 = 98, 98 mod 3 = 2 -> A
  it('hashes the destination address', () => {
    const { s, name } = svc('dh', [1, 1, 1]);
    expect(seq(s, name, 2, pkt('192.0.2.1', 1, '10.9.0.1'))).toBe('CC');
    expect(seq(s, name, 1, pkt('192.0.2.1', 1, '10.9.0.2'))).toBe('A');
  });
});

describe('IPVS hook slots (ip_vs_core.c ip_vs_ops4)', () => {
  it('run on LOCAL_IN after the filter and security tables, before the NAT core SNAT side', async () => {
    const { ipvsSlots, hookSlots } = await import('../../../hooks/priorities.js');
    const { NfHookRegistry } = await import('../../../hooks/registry.js');
    const { NFPROTO_IPV4, NF_INET_LOCAL_IN, NF_INET_FORWARD, NF_ACCEPT } = await import('../../../core/netfilter.js');
    const r = new NfHookRegistry<unknown>();
    for (const s of [...hookSlots(NFPROTO_IPV4, 'legacy'), ...ipvsSlots(NFPROTO_IPV4)]) {
      r.register(s.family, s.hook, { name: s.table ? `iptable_${s.table}` : s.owner, priority: s.priority, hook: () => NF_ACCEPT });
    }
    expect(r.entries(NFPROTO_IPV4, NF_INET_LOCAL_IN).map((e) => `${e.name}@${e.priority}`)).toEqual([
      'iptable_mangle@-150', 'iptable_filter@0', 'iptable_security@50', 'ip_vs_out_hook@98', 'ip_vs_in_hook@99', 'iptable_nat@100',
    ]);
    expect(r.entries(NFPROTO_IPV4, NF_INET_FORWARD).map((e) => `${e.name}@${e.priority}`)).toEqual([
      'iptable_mangle@-150', 'iptable_filter@0', 'iptable_security@50', 'ip_vs_forward_icmp@99', 'ip_vs_out_hook@100',
    ]);
  });
});
