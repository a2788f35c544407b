/**
 * The schedulers mh, lblc and lblcr against the sequences of their kernel
 * code (Linux 6.18 net/netfilter/ipvs/ip_vs_mh.c, ip_vs_lblc.c,
 * ip_vs_lblcr.c), derived in the comments. Services are built as
 * `ipvsadm -R` builds them: the kernel's list is the reverse of the -a lines.
 */
import { describe, expect, it } from 'vitest';
import { IpvsService, parseIpvsadmSave, type SchedPacket } from '../../../hooks/ipvs/index.js';
import { IP_VS_MH_TAB_SIZE, MhScheduler, hsiphash32, mhHashkey } from '../../../hooks/ipvs/sched/mh.js';
import { LblcrScheduler } from '../../../hooks/ipvs/sched/lblcr.js';
import { parseIPv4 } from '../../../core/addr.js';

const HZ = 250;
const HOUR = 3600 * HZ;

function svc(sched: string, weights: number[], extra = ''): { s: IpvsService; name: (d: unknown) => string } {
  let text = `-A -t 10.0.0.100:80 -s ${sched}${extra}\n`;
  weights.forEach((w, i) => (text += `-a -t 10.0.0.100:80 -r 10.1.0.${i + 1}:80 -m -w ${w}\n`));
  const s = new IpvsService(parseIpvsadmSave(text, 't').services[0]!, 't');
  return { s, name: (d) => (d ? String.fromCharCode(64 + (d as { addr: Uint8Array }).addr[3]!) : '-') };
}

const pkt = (saddr: string, daddr = '10.0.0.100', sport = 40000): SchedPacket => ({
  family: 4, saddr: parseIPv4(saddr)!, daddr: parseIPv4(daddr)!, sport, dport: 80, protocol: 6,
});

/** lib/siphash.c on a 64-bit kernel, written over BigInt from the macros: SipHash-1-3 of a 4-byte value. */
function hsiphashRef(val: number, k: number): number {
  const M = (1n << 64n) - 1n;
  const rol = (x: bigint, n: bigint) => ((x << n) | (x >> (64n - n))) & M;
  let v0 = 0x736f6d6570736575n ^ BigInt(k), v1 = 0x646f72616e646f6dn ^ BigInt(k);
  let v2 = 0x6c7967656e657261n ^ BigInt(k), v3 = 0x7465646279746573n ^ BigInt(k);
  const round = () => {
    v0 = (v0 + v1) & M; v1 = rol(v1, 13n); v1 ^= v0; v0 = rol(v0, 32n);
    v2 = (v2 + v3) & M; v3 = rol(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M; v3 = rol(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M; v1 = rol(v1, 17n); v1 ^= v2; v2 = rol(v2, 32n);
  };
  const b = (4n << 56n) | BigInt(val >>> 0);
  v3 ^= b; round(); v0 ^= b; v2 ^= 0xffn; round(); round(); round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}

describe('mh (Maglev hashing)', () => {
  it('hsiphash is SipHash-1-3 of the 4-byte value with the fixed keys', () => {
    for (const val of [0, 1, 80, 0x0a010001 + 80, 0xffffffff, 0x80000000, 123456789]) {
      for (const k of [2654435761, 2654446892]) expect(hsiphash32(val, k)).toBe(hsiphashRef(val, k));
    }
  });

  it('populates the 4093 slots in passes over the list, each dest taking `turns` slots a pass', () => {
    // Weights 1,1,1: 4093 = 3 * 1364 + 1, the list head (C, the last -a) takes the extra slot.
    const count = (s: IpvsService, name: (d: unknown) => string) => {
      const c: Record<string, number> = {};
      for (const d of (s.sched as MhScheduler).lookup) c[name(d)] = (c[name(d)] ?? 0) + 1;
      return c;
    };
    const a = svc('mh', [1, 1, 1]);
    expect(count(a.s, a.name)).toEqual({ C: 1365, B: 1364, A: 1364 });
    // Weights A=1, B=2 (list B, A): B takes 2 a pass, A 1; 1364 passes and B's first turn of the last.
    const b = svc('mh', [1, 2]);
    expect(count(b.s, b.name)).toEqual({ B: 2729, A: 1364 });
    // Weights 4 and 6: gcd 2, turns 2 and 3. Weight 0 from the start: no slot.
    const c = svc('mh', [4, 6, 0]);
    expect(count(c.s, c.name)).toEqual({ B: 3 * 818 + 3, A: 2 * 818 });
  });

  it('each dest starts at offset hash1 % 4093 and steps by hash2 % 4092 + 1 (its first slot is its offset)', () => {
    const { s, name } = svc('mh', [1, 1]);
    const t = (s.sched as MhScheduler).lookup;
    for (const d of s.dests) {
      const off = mhHashkey(d.addr, d.port, 2654435761, 0) % IP_VS_MH_TAB_SIZE;
      // The list head fills first: its offset is always its own; the second's unless the head took it.
      if (d === s.dests[0]) expect(name(t[off])).toBe(name(d));
    }
  });

  it('schedules by the source address; a quiesced dest keeps its slots and refuses, mh-fallback probes on', () => {
    const { s, name } = svc('mh', [1, 1, 1]);
    const sched = s.sched as MhScheduler;
    const clients = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
    const before = clients.map((c) => name(s.schedule(pkt(c))));
    // The slot of each client is hsiphash(addr; hash1) % 4093.
    clients.forEach((c, i) => expect(name(sched.lookup[mhHashkey(parseIPv4(c)!, 0, 2654435761, 0) % IP_VS_MH_TAB_SIZE])).toBe(before[i]));
    expect(new Set(before).size).toBe(3);
    // Port not hashed without mh-port: another source port, the same dest.
    expect(name(s.schedule(pkt(clients[0]!, '10.0.0.100', 1)))).toBe(before[0]);
    const b = s.dests.find((d) => name(d) === 'B')!;
    b.weight = 0;
    const after = clients.map((c) => name(s.schedule(pkt(c))));
    clients.forEach((_, i) => expect(after[i]).toBe(before[i] === 'B' ? '-' : before[i]));
    const fb = svc('mh', [1, 1, 1], ' -b mh-fallback');
    fb.s.dests.find((d) => fb.name(d) === 'B')!.weight = 0;
    const fallback = clients.map((c) => fb.name(fb.s.schedule(pkt(c))));
    clients.forEach((_, i) => (before[i] === 'B' ? expect(['A', 'C']).toContain(fallback[i]) : expect(fallback[i]).toBe(before[i])));
  });
});

describe('lblc (locality-based least-connection)', () => {
  it('keeps a destination address on its dest until that dest is overloaded, then reschedules by wlc', () => {
    const { s, name } = svc('lblc', [1, 1, 1]);
    const [c, b] = s.dests; // kernel list: C, B, A
    const x = pkt('192.0.2.1', '10.0.0.100');
    // No entry: wlc over C, B, A with no connections: the head, C.
    expect(name(s.schedule(x, 0))).toBe('C');
    // The entry keeps C even when C has more connections than the others (not yet overloaded: activeconns <= weight).
    c!.activeconns = 1;
    expect(name(s.schedule(x, 1))).toBe('C');
    // is_overloaded: C's 2 active > weight 1 while A has 0*2 < 1: wlc picks B (C 512 > B 0; A ties B), the entry moves to B.
    c!.activeconns = 2;
    expect(name(s.schedule(x, 2))).toBe('B');
    c!.activeconns = 0;
    expect(name(s.schedule(x, 3))).toBe('B');
    // The entry is per destination address: another address schedules afresh (all idle: C).
    expect(name(s.schedule(pkt('192.0.2.1', '10.0.0.101'), 4))).toBe('C');
    // Weight 0 on the entry's dest: rescheduled.
    b!.weight = 0;
    expect(name(s.schedule(x, 5))).toBe('C');
  });

  it('forgets an entry unused for lblc_expiration (24 h) at the timer\'s full check (every 30th tick of 60 s)', () => {
    for (const kind of ['lblc', 'lblcr']) {
      const { s, name } = svc(kind, [1, 1]);
      const [b, a] = s.dests;
      const x = pkt('192.0.2.1', '10.0.0.100');
      expect(name(s.schedule(x, 0))).toBe('B');
      b!.activeconns = 1;
      a!.activeconns = 0;
      // 1 s before 24 h: the last full check (tick 1410, 84,600 s) is before lastuse + 24 h: the entry holds, and is used now.
      expect(name(s.schedule(x, 86_399 * HZ))).toBe('B');
      // The full check of tick 2880 (172,800 s) is past that use (86,399 s) + 24 h: gone, wlc picks A. (A check
      // every 29th tick from the 30th would have run last at tick 2872, 172,320 s, and kept B.)
      expect(name(s.schedule(x, 172_900 * HZ))).toBe('A');
    }
  });
});

describe('lblcr (locality-based least-connection with replication)', () => {
  it('grows the set of an overloaded address, serves its least loaded member, drops the most loaded after the expiration', () => {
    const { s, name } = svc('lblcr', [1, 1]);
    const [b] = s.dests; // kernel list: B, A
    const sched = s.sched as LblcrScheduler;
    const x = pkt('192.0.2.1', '10.0.0.100');
    expect(name(s.schedule(x, 0))).toBe('B');
    // B overloaded (2 active > weight 1, A has 0 * 2 < 1): wlc picks A, which joins the set at its head.
    b!.activeconns = 2;
    expect(name(s.schedule(x, HZ))).toBe('A');
    expect(sched.setOf(x.daddr)!.map(name)).toEqual(['A', 'B']);
    // ip_vs_dest_set_min: A (0) over B (512).
    expect(name(s.schedule(x, 2 * HZ))).toBe('A');
    // More than one member and the set unchanged for 24 h: the most loaded (B) leaves; A still serves.
    expect(name(s.schedule(x, 24 * HOUR + 5 * HZ))).toBe('A');
    expect(sched.setOf(x.daddr)!.map(name)).toEqual(['A']);
  });
});
