/**
 * The one-line packet spec: parsing, errors with their columns, encoding with
 * checksums checked by an independent summation, and decodePacket() round trips.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NfvmError } from '../../core/errors.js';
import { crc32c, encodeSpec, parseSpec, specPacket, type PacketSpec } from '../../hooks/input/spec.js';
import {
  F_L4PROTO, F_MAC_HEADER, M_CT_DIR, M_CT_MARK, M_CT_STATE, M_FLAGS, M_FRAGOFF, M_IIF, M_L4PROTO, M_LEN, M_MARK,
  M_NFPROTO, M_NHOFF, M_OIF, M_PKTTYPE, M_PROTOCOL, M_THOFF, PACKET_MULTICAST,
} from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { runs } from '../helpers/runs.js';

function specError(text: string): string {
  try {
    parseSpec(text);
  } catch (e) {
    expect(e).toBeInstanceOf(NfvmError);
    return (e as NfvmError).message;
  }
  throw new Error(`no error for ${text}`);
}

/** Ones'-complement sum of 16-bit big-endian words, computed separately from the encoder. */
function onesSum(chunks: ArrayLike<number>[]): number {
  const all: number[] = [];
  for (const c of chunks) for (let i = 0; i < c.length; i++) all.push(c[i]!);
  if (all.length % 2) all.push(0);
  let s = 0;
  for (let i = 0; i < all.length; i += 2) {
    s += all[i]! * 256 + all[i + 1]!;
    s = (s % 0x10000) + Math.floor(s / 0x10000);
  }
  return s;
}

/** Checks every checksum in a raw IP packet; returns the names of those checked. */
function verifyChecksums(d: Uint8Array): string[] {
  const checked: string[] = [];
  let proto: number;
  let src: Uint8Array;
  let dst: Uint8Array;
  let l4: Uint8Array;
  if (d[0]! >> 4 === 4) {
    const ihl = (d[0]! & 15) * 4;
    expect(onesSum([d.subarray(0, ihl)])).toBe(0xffff);
    checked.push('ip');
    if ((((d[6]! << 8) | d[7]!) & 0x1fff) !== 0) return checked;
    proto = d[9]!;
    src = d.subarray(12, 16);
    dst = d.subarray(16, 20);
    l4 = d.subarray(ihl, (d[2]! << 8) | d[3]!);
  } else {
    proto = d[6]!;
    src = d.subarray(8, 24);
    dst = d.subarray(24, 40);
    let at = 40;
    if (proto === 44) {
      if ((((d[42]! << 8) | d[43]!) & 0xfff8) !== 0) return checked;
      proto = d[40]!;
      at = 48;
    }
    l4 = d.subarray(at, 40 + ((d[4]! << 8) | d[5]!));
  }
  const len = l4.length;
  const pseudo = [...src, ...dst, 0, proto, len >> 8, len & 0xff];
  if (proto === 6 || proto === 17 || proto === 58) {
    expect(onesSum([pseudo, l4])).toBe(0xffff);
    checked.push(proto === 6 ? 'tcp' : proto === 17 ? 'udp' : 'icmpv6');
  } else if (proto === 1) {
    expect(onesSum([l4])).toBe(0xffff);
    checked.push('icmp');
  } else if (proto === 132) {
    const copy = l4.slice();
    const stored = copy[8]! | (copy[9]! << 8) | (copy[10]! << 16) | (copy[11]! << 24);
    copy.fill(0, 8, 12);
    expect(crc32c(copy)).toBe(stored >>> 0);
    checked.push('sctp');
  }
  return checked;
}

describe('parsing', () => {
  it('reads the example of the brief', () => {
    const s = parseSpec('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0 mark 0x1');
    expect([s.family, s.proto, [...s.src], [...s.dst], s.sport, s.dport, s.tcpFlags, s.iif, s.mark]).toEqual([
      4, 6, [10, 0, 0, 2], [10, 0, 0, 1], 40000, 22, 0x02, 'eth0', 1,
    ]);
    expect(s.pos.get('dport')).toEqual({ line: 1, col: 31 });
    expect(s.pos.get('iif')).toEqual({ line: 1, col: 38 });
  });

  it('reads IPv6 endpoints, flag lists, icmp names and metadata', () => {
    const s = parseSpec('tcp [2001:db8::1]:443 > [2001:db8::2]:40000 syn,ack psh hl 3 dscp 46 ecn 1 flowlabel 0x12345 len 10 ct established ct reply ct mark 7 oif eth1');
    expect([s.family, s.sport, s.dport, s.tcpFlags, s.ttl, s.tos, s.flowLabel, s.payloadLen, s.ct, s.ctReply, s.ctMark, s.oif]).toEqual([
      6, 443, 40000, 0x1a, 3, (46 << 2) | 1, 0x12345, 10, 'established', true, 7, 'eth1',
    ]);
    const i = parseSpec('icmp 10.0.0.1 > 10.0.0.2 port-unreachable');
    expect([i.icmpType, i.icmpCode]).toEqual([3, 3]);
    const j = parseSpec('icmpv6 ::1 > ::2 type 135 code 0');
    expect([j.icmpType, j.icmpCode, j.family]).toEqual([135, 0, 6]);
    expect(parseSpec('icmp6 [fe80::1] > [ff02::1] neighbour-solicitation').icmpType).toBe(135);
    const g = parseSpec('ip proto gre 10.0.0.1 > 10.0.0.2 len 24 from local');
    expect([g.proto, g.sport, g.tcpFlags, g.icmpType, g.fromLocal]).toEqual([47, -1, -1, -1, true]);
    expect(parseSpec('ip6 proto 50 ::1 > ::2').proto).toBe(50);
    expect(parseSpec('udp 10.0.0.1>10.0.0.2:53').dport).toBe(53);
  });

  it('applies the documented defaults', () => {
    const t = parseSpec('tcp 10.0.0.1 > 10.0.0.2');
    expect([t.sport, t.dport, t.tcpFlags, t.seq, t.ackSeq, t.window, t.ttl, t.ipId, t.tos, t.payloadLen]).toEqual([40000, 80, 2, 1, 0, 64240, 64, 1, 0, 0]);
    expect(parseSpec('tcp 10.0.0.1 > 10.0.0.2 ct established').tcpFlags).toBe(0x10);
    expect(parseSpec('tcp 10.0.0.1 > 10.0.0.2 ct established').ackSeq).toBe(1);
    const e = parseSpec('icmpv6 ::1 > ::2');
    expect([e.icmpType, e.icmpCode, e.icmpId, e.icmpSeq]).toEqual([128, 0, 1, 1]);
    const f = parseSpec('udp 10.0.0.1 > 10.0.0.2 frag offset 1480');
    expect([f.sport, f.fragOffset, f.payloadLen]).toEqual([-1, 1480, 8]);
  });

  it.each([
    ['tcp 10.0.0.2:40000 > 10.0.0.1:22 synn', 'packet spec:1:34: unknown word "synn" (did you mean syn?)'],
    ['tcp 10.0.0.2:40000 > 10.0.0.1:22 syn ttll 3', 'packet spec:1:38: unknown word "ttll" (did you mean ttl?)'],
    ['tpc 10.0.0.1 > 10.0.0.2', 'packet spec:1:1: expected a protocol (tcp, udp, udplite, sctp, icmp, icmpv6, ip proto N), not "tpc" (did you mean tcp?)'],
    ['', 'packet spec:1:1: expected a protocol at the end of the spec'],
    ['tcp 10.0.0.256 > 10.0.0.1', 'packet spec:1:5: bad IPv4 src address "10.0.0.256"'],
    ['tcp 10.0.0.1 > 10.1:80', 'packet spec:1:16: bad IPv4 dst address "10.1"'],
    ['tcp 10.0.0.1:70000 > 10.0.0.2', 'packet spec:1:14: port 70000 out of range (0-65535)'],
    ['tcp [2001:db8::1]:x > [::2]', 'packet spec:1:19: port "x" is not a number'],
    ['tcp 10.0.0.1 > [2001:db8::1]:80', 'packet spec:1:16: address family mismatch: source is IPv4, destination is IPv6'],
    ['icmp ::1 > ::2', 'packet spec:1:6: icmp needs IPv4 addresses (use icmpv6 for IPv6)'],
    ['icmpv6 10.0.0.1 > 10.0.0.2', 'packet spec:1:8: icmpv6 needs IPv6 addresses (use icmp for IPv4)'],
    ['udp 10.0.0.1 > 10.0.0.2 syn', 'packet spec:1:25: "syn" needs tcp (the protocol is udp)'],
    ['icmp 10.0.0.1:5 > 10.0.0.2', 'packet spec:1:15: a port needs tcp, udp, udplite or sctp (the protocol is icmp)'],
    ['tcp 10.0.0.1 10.0.0.2', 'packet spec:1:14: expected ">" between the source and the destination, not "10.0.0.2"'],
    ['tcp 10.0.0.1 > 10.0.0.2 ttl 300', 'packet spec:1:29: TTL 300 out of range (0-255)'],
    ['tcp 10.0.0.1 > 10.0.0.2 ttl 3 ttl 4', 'packet spec:1:31: duplicate "ttl"'],
    ['tcp 10.0.0.1 > 10.0.0.2 ttl', 'packet spec:1:28: expected a TTL at the end of the spec'],
    ['tcp 10.0.0.1 > 10.0.0.2 ct estab', 'packet spec:1:28: unknown conntrack state "estab" (expected new|established|related|invalid|untracked, mark or reply)'],
    ['tcp 10.0.0.1 > 10.0.0.2 ct newx', 'packet spec:1:28: unknown conntrack state "newx" (expected new|established|related|invalid|untracked, mark or reply) (did you mean new?)'],
    ['tcp 10.0.0.1 > 10.0.0.2 ct mark 1', 'packet spec:1:25: ct mark and ct reply need a tracked connection (ct new|established|related)'],
    ['tcp 10.0.0.1 > 10.0.0.2 frag offset 12', 'packet spec:1:37: fragment offset 12 is not a multiple of 8'],
    ['tcp 10.0.0.1:1 > 10.0.0.2 frag offset 16', 'packet spec:1:14: a non-first fragment (offset 16) has no transport header for "sport"'],
    ['tcp 10.0.0.1 > 10.0.0.2 iif eth0 from local', 'packet spec:1:25: a locally generated packet (from local) has no input interface'],
    ['tcp 10.0.0.1 > 10.0.0.2 src-mac 00:11:22:33:44', 'packet spec:1:33: bad MAC address "00:11:22:33:44"'],
    ['tcp ::1 > ::2 df', 'packet spec:1:15: "df" needs IPv4 (IPv6 has no DF bit)'],
    ['tcp 10.0.0.1 > 10.0.0.2 flags 0x12 syn', 'packet spec:1:36: TCP flags given twice (flags N and flag words)'],
    ['tcp 10.0.0.1 > 10.0.0.2 > 10.0.0.3', 'packet spec:1:25: unexpected ">" (one source and one destination only)'],
    ['ip proto nope 10.0.0.1 > 10.0.0.2', 'packet spec:1:10: unknown protocol "nope"'],
    ['tcp 10.0.0.1 > 10.0.0.2 iif averyveryverylongname', 'packet spec:1:29: bad interface name "averyveryverylongname"'],
  ])('%s', (text, msg) => {
    expect(specError(text)).toBe(msg);
  });

  it('never throws anything but NfvmError on random input (fuzz)', () => {
    const words = ['tcp', 'udp', 'icmp', 'icmpv6', 'ip', 'proto', '10.0.0.1', '[::1]:80', '::2', '>', 'syn', 'ack,fin', 'ttl', '3',
      'ct', 'mark', 'new', 'frag', 'offset', '8', 'mf', 'iif', 'eth0', 'from', 'local', 'vlan', '70000', 'len', '0x10', 'echo-request'];
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.array(fc.constantFrom(...words), { maxLength: 14 }).map((w) => w.join(' '))), (text) => {
        try {
          const s = parseSpec(text);
          encodeSpec(s);
        } catch (e) {
          if (!(e instanceof NfvmError)) throw e;
          expect(e.message).toMatch(/^packet spec:1:\d+: /);
        }
      }),
      { numRuns: runs(3000) },
    );
  });
});

describe('encoding', () => {
  it('builds a raw IPv4 TCP SYN with correct checksums', () => {
    const { data, linktype, nhoff } = encodeSpec(parseSpec('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn'));
    expect(linktype).toBe(101);
    expect(nhoff).toBe(0);
    expect(data.length).toBe(40);
    expect(verifyChecksums(data)).toEqual(['ip', 'tcp']);
  });

  it('computes CRC32c as RFC 9260 does', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it.each([
    'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn,ack len 7',
    'udp 192.168.1.1:53 > 192.168.1.2:33333 len 101',
    'udp [2001:db8::1]:53 > [2001:db8::2]:1 len 3',
    'icmp 10.0.0.1 > 10.0.0.2 echo-reply id 77 seq 9 len 56',
    'icmpv6 [fe80::1] > [ff02::1] router-advertisement len 16',
    'sctp 10.0.0.1:5000 > 10.0.0.2:5001 len 20',
    'sctp [::1]:1 > [::2]:2',
    'tcp [2001:db8::1]:1 > [2001:db8::2]:2 mf ipid 99 len 5',
    'udp 10.0.0.1:1 > 10.0.0.2:2 mf df len 1',
  ])('checksums of %s', (text) => {
    const enc = encodeSpec(parseSpec(text));
    expect(verifyChecksums(enc.data).length).toBeGreaterThan(0);
  });

  it('builds Ethernet when a MAC, VLAN or input interface is given', () => {
    const e = encodeSpec(parseSpec('udp 10.0.0.1:1 > 10.0.0.2:2 src-mac 00:11:22:33:44:55 dst-mac 01-00-5e-00-00-01 vlan 100'));
    expect(e.linktype).toBe(1);
    expect(e.nhoff).toBe(18);
    expect([...e.data.subarray(0, 18)]).toEqual([1, 0, 0x5e, 0, 0, 1, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x81, 0, 0, 100, 8, 0]);
    expect(verifyChecksums(e.data.subarray(18))).toEqual(['ip', 'udp']);
    expect(encodeSpec(parseSpec('udp ::1 > ::2 iif lo')).data.subarray(12, 14)).toEqual(Uint8Array.of(0x86, 0xdd));
  });
});

describe('spec → frame → decodePacket', () => {
  it('fills the metadata the VM reads', () => {
    const p = specPacket(parseSpec('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0 oif eth1 mark 0xffffffff ct established ct mark 0x80000000'));
    const m = p.meta;
    expect([m[M_NFPROTO], m[M_L4PROTO], m[M_NHOFF], m[M_THOFF], m[M_LEN], m[M_PROTOCOL], m[M_IIF], m[M_OIF], m[M_MARK]]).toEqual([
      NFPROTO_IPV4, 6, 14, 34, 40, 0x0800, 2, 3, -1,
    ]);
    expect(m[M_FLAGS]! & (F_L4PROTO | F_MAC_HEADER)).toBe(F_L4PROTO | F_MAC_HEADER);
    expect([m[M_CT_STATE], m[M_CT_DIR], m[M_CT_MARK]]).toEqual([2, 0, 0x80000000 | 0]);
    const d = p.data;
    expect((d[34]! << 8) | d[35]!).toBe(40000);
    expect((d[36]! << 8) | d[37]!).toBe(22);
    expect(d[47]).toBe(0x02);
  });

  it('decodes IPv6 fragments and multicast MACs as the kernel does', () => {
    const first = specPacket(parseSpec('udp [2001:db8::1]:1 > [2001:db8::2]:2 mf len 16')).meta;
    expect([first[M_NFPROTO], first[M_L4PROTO], first[M_THOFF], first[M_FRAGOFF]]).toEqual([NFPROTO_IPV6, 17, 48, 0]);
    const later = specPacket(parseSpec('udp [2001:db8::1] > [2001:db8::2] frag offset 1232')).meta;
    expect([later[M_L4PROTO], later[M_THOFF], later[M_FRAGOFF]]).toEqual([17, 0, 1232]);
    const v4 = specPacket(parseSpec('udp 10.0.0.1 > 10.0.0.2 frag offset 1480 mf')).meta;
    expect([v4[M_L4PROTO], v4[M_FRAGOFF]]).toEqual([17, 1480 / 8]);
    expect(specPacket(parseSpec('udp 10.0.0.1:1 > 224.0.0.1:2 dst-mac 01:00:5e:00:00:01')).meta[M_PKTTYPE]).toBe(PACKET_MULTICAST);
    expect(specPacket(parseSpec('tcp 10.0.0.1 > 10.0.0.2 ct invalid')).meta[M_CT_DIR]).toBe(-1);
  });

  it('builds IPv6 extension headers in the order written, chained by Next Header, and the decoder skips them as ipv6_find_hdr does', () => {
    const text = 'tcp [2001:db8::1]:1000 > [2001:db8::2]:22 hbh rt type 0 segsleft 1 addrs 2001:db8::9 dst len 1 ah spi 0x1234 len 4';
    const spec = parseSpec(text);
    const d = encodeSpec(spec).data;
    // IPv6 header -> HBH (8) -> RT (8 + 16) -> DST (16) -> AH (24) -> TCP
    expect(d[6]).toBe(0);
    expect([d[40], d[41], d[42], d[43], d[44]]).toEqual([43, 0, 1, 4, 0]); // Next 43, Hdr Ext Len 0, PadN of 4 bytes
    expect([d[48], d[49], d[50], d[51]]).toEqual([60, 2, 0, 1]);
    expect([...d.subarray(56, 72)]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    expect([d[72], d[73], d[74], d[75]]).toEqual([51, 1, 1, 12]); // PadN filling the 14 bytes left
    expect([d[88], d[89], d[92], d[93], d[94], d[95], d[99]]).toEqual([6, 4, 0, 0, 0x12, 0x34, 1]);
    expect(((d[4]! << 8) | d[5]!) - (8 + 24 + 16 + 24)).toBe(20 + 4);
    // the TCP checksum is over the upper layer only
    const tcp = d.subarray(112);
    expect(onesSum([[...spec.src, ...spec.dst, 0, 6, 0, tcp.length], tcp])).toBe(0xffff);
    // nf_tables' pktinfo stops at AH (ipv6_find_hdr with IP6_FH_F_AUTH); without AH it reaches TCP
    const m = specPacket(spec).meta;
    expect([m[M_NFPROTO], m[M_L4PROTO], m[M_THOFF]]).toEqual([NFPROTO_IPV6, 51, 88]);
    const noAh = specPacket(parseSpec(text.replace(' ah spi 0x1234', ''))).meta;
    expect([noAh[M_L4PROTO], noAh[M_THOFF]]).toEqual([6, 88]);
    // with a fragment header last, then an ESP packet with its SPI
    const f = specPacket(parseSpec('udp [2001:db8::1]:1 > [2001:db8::2]:2 dst mf')).meta;
    expect([f[M_L4PROTO], f[M_THOFF], f[M_FRAGOFF]]).toEqual([17, 56, 0]);
    const esp = encodeSpec(parseSpec('ip6 proto esp 2001:db8::1 > 2001:db8::2 spi 77')).data;
    expect([esp[6], esp[43], esp[47], ((esp[4]! << 8) | esp[5]!)]).toEqual([50, 77, 1, 8]);
  });

  it('refuses extension headers on IPv4, and an SPI on anything but ESP', () => {
    expect(specError('tcp 10.0.0.1 > 10.0.0.2 hbh')).toMatch(/1:25: "hbh" \(an IPv6 extension header\) needs IPv6/);
    expect(specError('tcp [2001:db8::1] > [2001:db8::2] spi 1')).toMatch(/"spi" needs ip proto esp/);
    expect(specError('tcp [2001:db8::1] > [2001:db8::2] rt type 0 addrs 10.0.0.1')).toMatch(/bad IPv6 address "10.0.0.1" in the routing header/);
  });

  // A random spec, written as text, then parsed, encoded and decoded.
  const specArb = fc
    .record({
      v6: fc.boolean(),
      proto: fc.constantFrom('tcp', 'udp', 'sctp', 'icmp', 'ip proto 47'),
      a: fc.ipV4(),
      b: fc.ipV4(),
      a6: fc.ipV6(),
      b6: fc.ipV6(),
      sport: fc.integer({ min: 0, max: 65535 }),
      dport: fc.integer({ min: 0, max: 65535 }),
      ttl: fc.integer({ min: 0, max: 255 }),
      len: fc.integer({ min: 0, max: 1400 }),
      eth: fc.boolean(),
      vlan: fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
      mark: fc.integer({ min: 0, max: 0xffffffff }),
    })
    .map((r) => {
      const proto = r.proto === 'icmp' && r.v6 ? 'icmpv6' : r.proto;
      const ports = proto === 'tcp' || proto === 'udp' || proto === 'sctp';
      const ep = (a: string, a6: string, port: number): string => (r.v6 ? (ports ? `[${a6}]:${port}` : `[${a6}]`) : ports ? `${a}:${port}` : a);
      const parts = [proto, ep(r.a, r.a6, r.sport), '>', ep(r.b, r.b6, r.dport), `ttl ${r.ttl}`, `len ${r.len}`, `mark 0x${r.mark.toString(16)}`];
      if (r.eth) parts.push('iif eth0');
      if (r.vlan !== undefined) parts.push(`vlan ${r.vlan}`);
      return { text: parts.join(' '), r, ports, proto };
    });

  it('round-trips random specs (property)', () => {
    fc.assert(
      fc.property(specArb, ({ text, r, ports, proto }) => {
        const s: PacketSpec = parseSpec(text);
        const p = specPacket(s);
        const m = p.meta;
        const nh = r.eth || r.vlan !== undefined ? (r.vlan !== undefined ? 18 : 14) : 0;
        expect(m[M_NHOFF]).toBe(nh);
        expect(m[M_NFPROTO]).toBe(r.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
        expect(m[M_L4PROTO]).toBe(proto === 'tcp' ? 6 : proto === 'udp' ? 17 : proto === 'sctp' ? 132 : proto === 'icmp' ? 1 : proto === 'icmpv6' ? 58 : 47);
        expect(m[M_MARK]).toBe(r.mark | 0);
        const th = m[M_THOFF]!;
        expect(th).toBe(nh + (r.v6 ? 40 : 20));
        if (ports) {
          expect((p.data[th]! << 8) | p.data[th + 1]!).toBe(r.sport);
          expect((p.data[th + 2]! << 8) | p.data[th + 3]!).toBe(r.dport);
        }
        expect(p.data[nh + (r.v6 ? 7 : 8)]).toBe(r.ttl);
        verifyChecksums(p.data.subarray(nh, p.len));
      }),
      { numRuns: runs(300) },
    );
  });
});
