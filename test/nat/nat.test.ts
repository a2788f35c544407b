/**
 * The NAT core against nf_nat_core.c / nf_nat_proto.c (6.18): bindings made
 * once per connection and applied both ways, the null binding, port
 * selection (keep the port, then the port class or the range; --random,
 * --persistent, offsets), clash resolution, TIME_WAIT eviction, REDIRECT,
 * MASQUERADE, NETMAP, ICMP error translation; every rewritten packet's
 * checksums are recomputed from scratch and must agree.
 */
import { describe, expect, it } from 'vitest';
import { NfConntrack } from '../../hooks/conntrack/core.js';
import { nfConntrackSysctl } from '../../hooks/conntrack/sysctl.js';
import { conntrackList } from '../../hooks/conntrack/print.js';
import {
  NfNat, NfNatRange2, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_OFFSET,
  NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_SPECIFIED, jhash2, nfNatRangeFrom, reciprocalScale,
} from '../../hooks/nat/core.js';
import { nfNatFn } from '../../hooks/nat/proto.js';
import { inetSelectAddr, ipv6DevGetSaddr, nfNatMasqueradeIpv4, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from '../../hooks/nat/masquerade.js';
import { nfNatRedirectIpv4, nfNatRedirectIpv6 } from '../../hooks/nat/redirect.js';
import { nfNatNetmap } from '../../hooks/nat/netmap.js';
import { inetChecksum, crc32c } from '../../hooks/input/spec.js';
import { parseIPv6 } from '../../hooks/route/addr.js';
import { IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_SRC_NAT, IPS_SRC_NAT_DONE, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_RELATED_BIT, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { M_CT_ID, M_CT_STATE, M_CT_STATUS } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { ACK, FIN, SYN, ipPacket, packet, sec } from '../helpers/ctpkt.js';

const ip = (s: string) => s.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
const bytes = (s: string) => Uint8Array.from(s.split('.').map(Number));

/** A range as the SNAT/DNAT targets give it. */
function range(min: string, max = min, ports?: [number, number], extra = 0, base?: number): NfNatRange2 {
  return nfNatRangeFrom({
    flags: NF_NAT_RANGE_MAP_IPS | (ports ? NF_NAT_RANGE_PROTO_SPECIFIED : 0) | extra,
    minAddr: bytes(min), maxAddr: bytes(max), minPort: ports?.[0], maxPort: ports?.[1], basePort: base,
  });
}

interface Path {
  ct: NfConntrack;
  nat: NfNat;
  /** nat PREROUTING / POSTROUTING chains: return a verdict, may call targets. */
  pre?: (p: Packet) => number;
  post?: (p: Packet) => number;
  outIf?: number;
}

interface Out {
  verdict: number;
  data: Uint8Array;
  state: number;
  status: number;
  reroute: boolean;
}

/** A forwarded packet: conntrack, nat PREROUTING (DNAT), nat POSTROUTING (SNAT), confirm, release. */
function fwd(path: Path, b: Uint8Array, now: number): Out {
  const { ct, nat } = path;
  const p = packet(b);
  let v = ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, now);
  let reroute = false;
  if (v === NF_ACCEPT) {
    v = nfNatFn(nat, p, NF_INET_PRE_ROUTING, 0, path.pre);
    reroute = nat.rerouteNeeded;
  }
  if (v === NF_ACCEPT) v = nfNatFn(nat, p, NF_INET_POST_ROUTING, path.outIf ?? 2, path.post);
  if (v === NF_ACCEPT) v = ct.nfConfirm(p, now);
  const out = { verdict: v, data: p.data.slice(0, p.len), state: p.meta[M_CT_STATE]!, status: p.meta[M_CT_STATUS]!, reroute };
  ct.nfResetCt(p);
  return out;
}

function newPath(o: Partial<Path> = {}, sys: Record<string, string> = {}, seed = 1): Path {
  const ct = new NfConntrack(nfConntrackSysctl(sys), { seed });
  return { ct, nat: new NfNat(ct), ...o };
}

/** Every checksum of a raw IP packet recomputed from scratch: IPv4 header, TCP/UDP (with pseudo-header), ICMP, ICMPv6, SCTP; ICMP errors' inner IPv4 header too. */
function checksumsOk(d: Uint8Array): boolean {
  const v6 = d[0]! >> 4 === 6;
  const hl = v6 ? 40 : (d[0]! & 15) * 4;
  const proto = v6 ? d[6]! : d[9]!;
  if (!v6 && inetChecksum(d, 0, hl) !== 0) return false;
  const len = d.length - hl;
  const pseudo = (~inetChecksum(d, v6 ? 8 : 12, v6 ? 40 : 20) & 0xffff) + proto + (len >>> 16) + (len & 0xffff);
  switch (proto) {
    case 6: return inetChecksum(d, hl, d.length, pseudo) === 0;
    case 17: return (d[hl + 6] === 0 && d[hl + 7] === 0) || inetChecksum(d, hl, d.length, pseudo) === 0;
    case 1: {
      if (inetChecksum(d, hl) !== 0) return false;
      const t = d[hl]!;
      if (t === 3 || t === 11) return inetChecksum(d, hl + 8, hl + 8 + (d[hl + 8]! & 15) * 4) === 0;
      return true;
    }
    case 58: return inetChecksum(d, hl, d.length, pseudo) === 0;
    case 132: {
      const c = d.slice(hl);
      const stored = (c[8]! | (c[9]! << 8) | (c[10]! << 16) | (c[11]! << 24)) >>> 0;
      c[8] = c[9] = c[10] = c[11] = 0;
      return crc32c(c) === stored;
    }
    default: return true;
  }
}

const addrOf = (d: Uint8Array, at: number) => `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`;
const src = (d: Uint8Array) => addrOf(d, 12);
const dst = (d: Uint8Array) => addrOf(d, 16);
const sport = (d: Uint8Array) => (d[20]! << 8) | d[21]!;
const dport = (d: Uint8Array) => (d[22]! << 8) | d[23]!;

const tcp = (s: string, sp: number, t: string, dp: number, flags = SYN, seq = 1000, ack = 0) =>
  ipPacket(s, t, { proto: 'tcp', sport: sp, dport: dp, flags, seq, ack, payload: flags & SYN ? 0 : 10 });
const udp = (s: string, sp: number, t: string, dp: number, payload = 12) => ipPacket(s, t, { proto: 'udp', sport: sp, dport: dp, payload });

describe('SNAT', () => {
  it('keeps the source port when the tuple is unique; replies are de-NATed; checksums agree', () => {
    const path = newPath();
    const r = range('192.0.2.1');
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const out = fwd(path, tcp('10.0.0.2', 40000, '10.1.0.2', 80), sec(1));
    expect(out.verdict).toBe(NF_ACCEPT);
    expect([src(out.data), sport(out.data), dst(out.data), dport(out.data)]).toEqual(['192.0.2.1', 40000, '10.1.0.2', 80]);
    expect(checksumsOk(out.data)).toBe(true);
    expect(out.status & (IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE)).toBe(IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE);
    expect(out.status & IPS_DST_NAT).toBe(0);
    const back = fwd(path, tcp('10.1.0.2', 80, '192.0.2.1', 40000, SYN | ACK, 5000, 1001), sec(1.1));
    expect(back.state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    expect([src(back.data), dst(back.data), dport(back.data)]).toEqual(['10.1.0.2', '10.0.0.2', 40000]);
    expect(checksumsOk(back.data)).toBe(true);
    // The rules ran once: later packets of the connection never reach them. (10 bytes unacknowledged: the 300 s timeout.)
    let calls = 0;
    path.post = () => (calls++, NF_ACCEPT);
    const later = fwd(path, tcp('10.0.0.2', 40000, '10.1.0.2', 80, ACK, 1001, 5001), sec(1.2));
    expect(calls).toBe(0);
    expect(src(later.data)).toBe('192.0.2.1');
    expect(conntrackList(path.ct, sec(1.2))[0]).toBe(
      'tcp      6 300 ESTABLISHED src=10.0.0.2 dst=10.1.0.2 sport=40000 dport=80 src=10.1.0.2 dst=192.0.2.1 sport=80 dport=40000 [ASSURED] mark=0 use=1');
  });

  it('a source port clash moves the port within its class (1024-65535, 600-1023, 1-511), each unique', () => {
    for (const [port, lo, hi] of [[40000, 1024, 65535], [700, 600, 1023], [100, 1, 511]] as const) {
      const path = newPath();
      const r = range('192.0.2.1');
      path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
      const seen = new Set<number>();
      for (let c = 2; c < 12; c++) {
        const out = fwd(path, udp(`10.0.0.${c}`, port, '10.1.0.2', 53), sec(1));
        expect(src(out.data)).toBe('192.0.2.1');
        const p = sport(out.data);
        if (c === 2) expect(p).toBe(port);
        else expect(p >= lo && p <= hi).toBe(true);
        expect(seen.has(p)).toBe(false);
        seen.add(p);
        expect(checksumsOk(out.data)).toBe(true);
      }
    }
  });

  it('the same seed gives the same ports; another seed other ports (the kernel draws get_random_u16)', () => {
    const ports = (seed: number) => {
      const path = newPath({}, {}, seed);
      const r = range('192.0.2.1');
      path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
      return [2, 3, 4, 5].map((c) => sport(fwd(path, udp(`10.0.0.${c}`, 40000, '10.1.0.2', 53), sec(1)).data));
    };
    expect(ports(7)).toEqual(ports(7));
    expect(ports(7)).not.toEqual(ports(8));
  });

  it('--to-source with a port range: ports from the range; the range exhausted, the clash is found at confirm', () => {
    const path = newPath();
    const r = range('192.0.2.1', '192.0.2.1', [2000, 2001]);
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const a = fwd(path, tcp('10.0.0.2', 40000, '10.1.0.2', 80), sec(1));
    const b = fwd(path, tcp('10.0.0.3', 40000, '10.1.0.2', 80), sec(1));
    expect([sport(a.data), sport(b.data)].sort()).toEqual([2000, 2001]);
    const c = fwd(path, tcp('10.0.0.4', 40000, '10.1.0.2', 80), sec(1));
    expect(c.verdict).toBe(NF_DROP);
  });

  it('--random: the port is random even when the original one is free', () => {
    const path = newPath();
    const r = range('192.0.2.1', '192.0.2.1', undefined, NF_NAT_RANGE_PROTO_RANDOM);
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const ports = [2, 3, 4].map((c) => sport(fwd(path, udp(`10.0.0.${c}`, 40000, '10.1.0.2', 53), sec(1)).data));
    expect(ports.some((p) => p !== 40000)).toBe(true);
    for (const p of ports) expect(p >= 1024).toBe(true);
  });

  it('an address range: jhash2 of source and destination picks the address; --persistent ignores the destination', () => {
    const choose = (flags: number, client: string, server: string) => {
      const path = newPath();
      const r = range('192.0.2.10', '192.0.2.20', undefined, flags);
      path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
      return src(fwd(path, udp(client, 40000, server, 53), sec(1)).data);
    };
    // find_best_ips_proto by hand: j = jhash2(src.u3 as the host reads it, 4, dst.all[0] ^ zone), address = min + reciprocal_scale(j, 11)
    const le = (a: string) => { const b = bytes(a); return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0; };
    const expectAddr = (client: string, server: string, persistent: boolean) => {
      const j = jhash2([le(client), 0, 0, 0], 4, persistent ? 0 : le(server));
      const v = ip('192.0.2.10') + reciprocalScale(j, 11);
      return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    };
    const servers = ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6', '10.1.0.7'];
    const plain = servers.map((s) => choose(0, '10.0.0.2', s));
    expect(plain).toEqual(servers.map((s) => expectAddr('10.0.0.2', s, false)));
    expect(new Set(plain).size).toBeGreaterThan(1);
    const pers = servers.map((s) => choose(NF_NAT_RANGE_PERSISTENT, '10.0.0.2', s));
    expect(new Set(pers).size).toBe(1);
    expect(pers[0]).toBe(expectAddr('10.0.0.2', '', true));
  });

  it('the null binding: no rule, nothing changes, both NAT_DONE bits; it still moves a port that would clash', () => {
    const path = newPath();
    const r = range('10.0.0.3');
    // Connection A is SNATed to 10.0.0.3:40000 ...
    path.post = (p) => (src(p.data.subarray(0, 20)) === '10.0.0.2' ? path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC) : NF_ACCEPT);
    const a = fwd(path, udp('10.0.0.2', 40000, '10.1.0.2', 53), sec(1));
    expect([src(a.data), sport(a.data)]).toEqual(['10.0.0.3', 40000]);
    // ... so B, really from 10.0.0.3:40000 with no rule, gets a null binding that must move its port.
    const b = fwd(path, udp('10.0.0.3', 40000, '10.1.0.2', 53), sec(1));
    expect(b.status & (IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE)).toBe(IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE);
    expect(src(b.data)).toBe('10.0.0.3');
    expect(sport(b.data)).not.toBe(40000);
    expect(b.status & IPS_SRC_NAT).toBe(IPS_SRC_NAT);
    const c = fwd(path, udp('10.0.0.4', 40000, '10.1.0.2', 53), sec(1));
    expect(c.status & (IPS_SRC_NAT | IPS_DST_NAT)).toBe(0);
    expect(sport(c.data)).toBe(40000);
  });

  it('a TIME_WAIT SNATed connection is evicted when a new SYN needs its port and has passed its sequence numbers', () => {
    const path = newPath();
    const r = range('192.0.2.1', '192.0.2.1', [5000, 5001]);
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const close = (client: string, seq: number) => {
      const a = fwd(path, tcp(client, 40000, '10.1.0.2', 80, SYN, seq), sec(1));
      const mp = sport(a.data);
      fwd(path, tcp('10.1.0.2', 80, '192.0.2.1', mp, SYN | ACK, 9000, seq + 1), sec(1));
      fwd(path, ipPacket(client, '10.1.0.2', { proto: 'tcp', sport: 40000, dport: 80, flags: FIN | ACK, seq: seq + 1, ack: 9001 }), sec(1));
      fwd(path, ipPacket('10.1.0.2', '192.0.2.1', { proto: 'tcp', sport: 80, dport: mp, flags: FIN | ACK, seq: 9001, ack: seq + 2 }), sec(1));
      fwd(path, ipPacket(client, '10.1.0.2', { proto: 'tcp', sport: 40000, dport: 80, flags: ACK, seq: seq + 2, ack: 9002 }), sec(1));
      return mp;
    };
    const p1 = close('10.0.0.2', 1000);
    const p2 = close('10.0.0.3', 1000);
    expect([p1, p2].sort()).toEqual([5000, 5001]);
    // Both ports in TIME_WAIT; a third client whose ISN is beyond theirs takes one over.
    const c = fwd(path, tcp('10.0.0.4', 40000, '10.1.0.2', 80, SYN, 100_000), sec(2));
    expect(c.verdict).toBe(NF_ACCEPT);
    expect([5000, 5001]).toContain(sport(c.data));
    expect(path.ct.dump(sec(2)).length).toBe(2);
  });
});

describe('DNAT, REDIRECT, NETMAP', () => {
  it('DNAT to an address and port: rerouted at PRE_ROUTING, replies rewritten back, a full TCP handshake stays valid', () => {
    const path = newPath();
    const r = range('10.1.0.5', '10.1.0.5', [8080, 8080]);
    path.pre = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_DST);
    const syn = fwd(path, tcp('10.0.0.2', 40000, '192.0.2.80', 80, SYN, 100), sec(1));
    expect(syn.reroute).toBe(true);
    expect([dst(syn.data), dport(syn.data), src(syn.data), sport(syn.data)]).toEqual(['10.1.0.5', 8080, '10.0.0.2', 40000]);
    expect(checksumsOk(syn.data)).toBe(true);
    const sa = fwd(path, tcp('10.1.0.5', 8080, '10.0.0.2', 40000, SYN | ACK, 700, 101), sec(1.1));
    expect([src(sa.data), sport(sa.data)]).toEqual(['192.0.2.80', 80]);
    expect(checksumsOk(sa.data)).toBe(true);
    const ack = fwd(path, tcp('10.0.0.2', 40000, '192.0.2.80', 80, ACK, 101, 701), sec(1.2));
    expect(ack.state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    expect(dst(ack.data)).toBe('10.1.0.5');
    expect(conntrackList(path.ct, sec(1.2))[0]).toContain('src=10.0.0.2 dst=192.0.2.80 sport=40000 dport=80 src=10.1.0.5 dst=10.0.0.2 sport=8080 dport=40000 [ASSURED]');
  });

  it('DNAT with a shifted port range (PROTO_OFFSET, --to-destination a:8000-8100/80): port = min + (dport - base)', () => {
    const path = newPath();
    const r = range('10.1.0.5', '10.1.0.5', [8000, 8100], NF_NAT_RANGE_PROTO_OFFSET, 80);
    path.pre = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_DST);
    expect(dport(fwd(path, tcp('10.0.0.2', 40000, '192.0.2.80', 85), sec(1)).data)).toBe(8005);
  });

  it('REDIRECT: to the input device\'s first address (PRE_ROUTING) or 127.0.0.1 (LOCAL_OUT); no address drops', () => {
    const path = newPath();
    const r = nfNatRangeFrom({ flags: NF_NAT_RANGE_PROTO_SPECIFIED, minAddr: new Uint8Array(4), maxAddr: new Uint8Array(4), minPort: 3128, maxPort: 3128 });
    path.pre = (p) => nfNatRedirectIpv4(path.nat, p, r, NF_INET_PRE_ROUTING, [ip('10.0.0.1'), ip('10.0.0.100')]);
    const out = fwd(path, tcp('10.0.0.2', 40000, '93.184.216.34', 80), sec(1));
    expect([dst(out.data), dport(out.data)]).toEqual(['10.0.0.1', 3128]);
    expect(checksumsOk(out.data)).toBe(true);
    // LOCAL_OUT
    const ct = path.ct, nat = path.nat;
    const p = packet(tcp('10.0.0.1', 50000, '93.184.216.34', 80));
    ct.nfConntrackLocal(p, sec(2));
    expect(nfNatFn(nat, p, NF_INET_LOCAL_OUT, 0, (q) => nfNatRedirectIpv4(nat, q, r, NF_INET_LOCAL_OUT, []))).toBe(NF_ACCEPT);
    expect(nat.rerouteNeeded).toBe(true);
    expect([dst(p.data), dport(p.data)]).toEqual(['127.0.0.1', 3128]);
    ct.nfResetCt(p);
    const none = newPath();
    none.pre = (q) => nfNatRedirectIpv4(none.nat, q, r, NF_INET_PRE_ROUTING, []);
    expect(fwd(none, tcp('10.0.0.2', 40000, '93.184.216.34', 80), sec(1)).verdict).toBe(NF_DROP);
  });

  it('REDIRECT for IPv6: the first usable address of the destination\'s scope; ::1 on LOCAL_OUT', () => {
    const w = (a: string) => Array.from(parseIPv6(a)!).map((x) => x | 0);
    const path = newPath();
    const r = nfNatRangeFrom({ flags: 0, minAddr: new Uint8Array(16), maxAddr: new Uint8Array(16) });
    const addrs = [{ addr: w('2001:db8::1'), tentative: true }, { addr: w('fe80::1') }, { addr: w('2001:db8::2') }];
    path.pre = (p) => nfNatRedirectIpv6(path.nat, p, r, NF_INET_PRE_ROUTING, addrs);
    const g = fwd(path, ipPacket('2001:db8:5::9', '2001:db8:9::9', { proto: 'tcp', flags: SYN, seq: 1 }), sec(1));
    // A global destination: no scope filter, the tentative one skipped: fe80::1 comes first.
    expect(Array.from(g.data.subarray(24, 26))).toEqual([0xfe, 0x80]);
    expect(checksumsOk(g.data)).toBe(true);
    const ll = newPath();
    ll.pre = (p) => nfNatRedirectIpv6(ll.nat, p, r, NF_INET_PRE_ROUTING, [{ addr: w('2001:db8::2') }, { addr: w('fe80::7') }]);
    const l = fwd(ll, ipPacket('fe80::9', 'fe80::5', { proto: 'udp', sport: 1, dport: 2, payload: 4 }), sec(1));
    expect(l.data[39]).toBe(7);
  });

  it('NETMAP: the network part replaced, the host part kept, both ways', () => {
    const path = newPath();
    const r = nfNatRangeFrom({ flags: NF_NAT_RANGE_MAP_IPS, minAddr: bytes('192.168.5.0'), maxAddr: bytes('192.168.5.255') });
    path.post = (p) => nfNatNetmap(path.nat, p, r, NF_INET_POST_ROUTING);
    const out = fwd(path, udp('10.0.0.77', 1234, '10.1.0.2', 53), sec(1));
    expect([src(out.data), sport(out.data)]).toEqual(['192.168.5.77', 1234]);
    const back = fwd(path, udp('10.1.0.2', 53, '192.168.5.77', 1234), sec(1.1));
    expect(dst(back.data)).toBe('10.0.0.77');
    expect(checksumsOk(back.data)).toBe(true);
    const dn = newPath();
    dn.pre = (p) => nfNatNetmap(dn.nat, p, r, NF_INET_PRE_ROUTING);
    expect(dst(fwd(dn, udp('10.0.0.2', 1, '10.9.9.42', 2), sec(1)).data)).toBe('192.168.5.42');
  });
});

describe('MASQUERADE', () => {
  it('inet_select_addr: primary, in-scope, on the next hop\'s subnet first; then another device', () => {
    const dev = [
      { local: ip('192.0.2.1'), prefixlen: 24 },
      { local: ip('192.0.2.9'), prefixlen: 24, secondary: true },
      { local: ip('198.51.100.1'), prefixlen: 24 },
      { local: ip('169.254.1.1'), prefixlen: 16, scope: RT_SCOPE_LINK },
    ];
    expect(inetSelectAddr(dev, ip('198.51.100.7'), RT_SCOPE_UNIVERSE)).toBe(ip('198.51.100.1'));
    expect(inetSelectAddr(dev, ip('203.0.113.1'), RT_SCOPE_UNIVERSE)).toBe(ip('192.0.2.1'));
    expect(inetSelectAddr([{ local: ip('169.254.1.1'), prefixlen: 16, scope: RT_SCOPE_LINK }], ip('8.8.8.8'), RT_SCOPE_UNIVERSE, [[{ local: ip('127.0.0.1'), prefixlen: 8, scope: 254 }], [{ local: ip('10.5.0.1'), prefixlen: 24 }]])).toBe(ip('10.5.0.1'));
    expect(inetSelectAddr([], ip('8.8.8.8'), RT_SCOPE_UNIVERSE)).toBe(0);
  });

  it('SNATs to the chosen address; no address drops; a 0.0.0.0 source is left alone; another output interface later kills the connection', () => {
    const path = newPath();
    const r = nfNatRangeFrom({ flags: 0, minAddr: new Uint8Array(4), maxAddr: new Uint8Array(4) });
    const out = [{ local: ip('203.0.113.5'), prefixlen: 24 }];
    path.post = (p) => nfNatMasqueradeIpv4(path.nat, p, r, 7, out, ip('203.0.113.1'));
    path.outIf = 7;
    const a = fwd(path, udp('10.0.0.2', 5000, '8.8.8.8', 53), sec(1));
    expect(src(a.data)).toBe('203.0.113.5');
    expect(checksumsOk(a.data)).toBe(true);
    path.outIf = 8; // the route moved
    const b = fwd(path, udp('10.0.0.2', 5000, '8.8.8.8', 53), sec(2));
    expect(b.verdict).toBe(NF_DROP);
    expect(path.ct.dump(sec(2))).toEqual([]);
    const none = newPath();
    none.post = (p) => nfNatMasqueradeIpv4(none.nat, p, r, 7, [], ip('203.0.113.1'));
    expect(fwd(none, udp('10.0.0.2', 5000, '8.8.8.8', 53), sec(1)).verdict).toBe(NF_DROP);
    const zero = newPath();
    zero.post = (p) => nfNatMasqueradeIpv4(zero.nat, p, r, 7, out, ip('203.0.113.1'));
    expect(src(fwd(zero, udp('0.0.0.0', 68, '255.255.255.255', 67), sec(1)).data)).toBe('0.0.0.0');
  });

  it('IPv6 source selection: scope, deprecated, the output interface, longest prefix', () => {
    const w = (a: string) => Array.from(parseIPv6(a)!).map((x) => x | 0);
    const c = [
      { addr: w('fe80::1'), prefixlen: 64, ifindex: 2 },
      { addr: w('2001:db8:1::1'), prefixlen: 64, ifindex: 3, deprecated: true },
      { addr: w('2001:db8:2::1'), prefixlen: 64, ifindex: 3 },
      { addr: w('2001:db8:1::2'), prefixlen: 64, ifindex: 2 },
    ];
    // Rule 3 drops the deprecated one, rule 5 prefers the output interface over a longer prefix elsewhere.
    expect(ipv6DevGetSaddr(c, w('2001:db8:1::99'), 3)!.addr).toEqual(w('2001:db8:2::1'));
    // On one interface, rule 8: the longest matching prefix.
    expect(ipv6DevGetSaddr([c[2]!, { addr: w('2001:db8:1::3'), prefixlen: 64, ifindex: 3 }], w('2001:db8:1::99'), 3)!.addr).toEqual(w('2001:db8:1::3'));
    expect(ipv6DevGetSaddr(c, w('fe80::9'), 2)!.addr).toEqual(w('fe80::1')); // smallest sufficient scope
  });
});

describe('packet rewriting', () => {
  it('ICMP echo: the id is kept, or moved on a clash and restored in the reply', () => {
    const path = newPath();
    const r = range('192.0.2.1');
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const a = fwd(path, ipPacket('10.0.0.2', '8.8.8.8', { proto: 'icmp', type: 8, id: 77 }), sec(1));
    const b = fwd(path, ipPacket('10.0.0.3', '8.8.8.8', { proto: 'icmp', type: 8, id: 77 }), sec(1));
    const idOf = (d: Uint8Array) => (d[24]! << 8) | d[25]!;
    expect(idOf(a.data)).toBe(77);
    expect(idOf(b.data)).not.toBe(77);
    expect(checksumsOk(b.data)).toBe(true);
    const reply = fwd(path, ipPacket('8.8.8.8', '192.0.2.1', { proto: 'icmp', type: 0, id: idOf(b.data) }), sec(1.1));
    expect([dst(reply.data), idOf(reply.data)]).toEqual(['10.0.0.3', 77]);
    expect(checksumsOk(reply.data)).toBe(true);
  });

  it('an ICMP error about a NATed connection: the outer and the quoted packet translated, checksums recomputed', () => {
    const path = newPath();
    const r = range('192.0.2.1');
    path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const q = fwd(path, udp('10.0.0.2', 5000, '10.1.0.2', 53), sec(1)).data;
    expect(src(q)).toBe('192.0.2.1');
    // The server's port unreachable quotes what it got: 192.0.2.1:5000 -> 10.1.0.2:53.
    const err = fwd(path, ipPacket('10.1.0.2', '192.0.2.1', { proto: 'icmp', type: 3, code: 3, inner: q.slice(0, 28) }), sec(1.1));
    expect(err.state).toBe(NF_CT_STATE_RELATED_BIT);
    expect(dst(err.data)).toBe('10.0.0.2');
    const inner = err.data.subarray(28);
    expect([src(inner), sport(inner), dst(inner), dport(inner)]).toEqual(['10.0.0.2', 5000, '10.1.0.2', 53]);
    expect(checksumsOk(err.data)).toBe(true);
  });

  it('UDP: a zero checksum stays zero; a result of zero is stored as 0xffff (CSUM_MANGLED_0)', () => {
    const snat = () => {
      const path = newPath();
      const r = range('192.0.2.1');
      path.post = (p) => path.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
      return path;
    };
    const z = ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 1, dport: 2, payload: 2, nosum: true });
    const zo = fwd(snat(), z, sec(1)).data;
    expect([zo[26], zo[27]]).toEqual([0, 0]);
    // Payload word w = the NATed checksum of the zero payload makes the NATed sum 0xffff, i.e. checksum 0.
    const c0 = fwd(snat(), ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 1, dport: 2, payload: 2 }), sec(1)).data;
    const w = Uint8Array.of(c0[26]!, c0[27]!);
    const m = fwd(snat(), ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 1, dport: 2, payload: w }), sec(1)).data;
    expect([m[26], m[27]]).toEqual([0xff, 0xff]);
    expect(checksumsOk(m)).toBe(true);
  });

  it('IPv6 TCP and ICMPv6, and SCTP: checksums and the CRC32c still verify after NAT', () => {
    const w6 = (a: string) => { const x = parseIPv6(a)!; const b = new Uint8Array(16); for (let i = 0; i < 4; i++) { b[4 * i] = x[i]! >>> 24; b[4 * i + 1] = (x[i]! >>> 16) & 255; b[4 * i + 2] = (x[i]! >>> 8) & 255; b[4 * i + 3] = x[i]! & 255; } return b; };
    const path = newPath();
    const r6 = nfNatRangeFrom({ flags: NF_NAT_RANGE_MAP_IPS, minAddr: w6('2001:db8:ff::1'), maxAddr: w6('2001:db8:ff::1') });
    path.post = (p) => path.nat.xtNatTarget(p, r6, NF_NAT_MANIP_SRC);
    const t = fwd(path, ipPacket('2001:db8::2', '2001:db8:1::2', { proto: 'tcp', flags: SYN, seq: 5 }), sec(1)).data;
    expect(Array.from(t.subarray(8, 24))).toEqual(Array.from(w6('2001:db8:ff::1')));
    expect(checksumsOk(t)).toBe(true);
    const i6 = fwd(path, ipPacket('2001:db8::2', '2001:db8:1::2', { proto: 'icmpv6', type: 128, id: 3 }), sec(1)).data;
    expect(checksumsOk(i6)).toBe(true);
    const p4 = newPath();
    const r = range('192.0.2.1');
    p4.post = (p) => p4.nat.xtNatTarget(p, r, NF_NAT_MANIP_SRC);
    const sc = fwd(p4, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'sctp', sport: 1, dport: 2, vtag: 0, chunks: [[1, 0, new Array(16).fill(1)]] }), sec(1)).data;
    expect(src(sc)).toBe('192.0.2.1');
    expect(checksumsOk(sc)).toBe(true);
  });

  it('SNAT at LOCAL_IN and DNAT at LOCAL_OUT take part like the others (HOOK2MANIP)', () => {
    const path = newPath();
    const r = range('10.9.9.9');
    const p = packet(udp('10.0.0.2', 5000, '10.0.0.1', 53));
    path.ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1));
    nfNatFn(path.nat, p, NF_INET_PRE_ROUTING, 0);
    nfNatFn(path.nat, p, NF_INET_LOCAL_IN, 0, (q) => path.nat.xtNatTarget(q, r, NF_NAT_MANIP_SRC));
    expect(src(p.data)).toBe('10.9.9.9');
    expect(path.ct.nfConfirm(p, sec(1))).toBe(NF_ACCEPT);
    const id = p.meta[M_CT_ID]!;
    path.ct.nfResetCt(p);
    expect(path.ct.status[id]! & IPS_SRC_NAT).toBeTruthy();
    expect(checksumsOk(p.data.slice(0, p.len))).toBe(true);
  });
});
