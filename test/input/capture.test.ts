/**
 * pcap / pcapng readers and writers: round trips, the header bytes tcpdump
 * writes (ecosystem.md §1.13), SLL/SLL2, and error locations.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CaptureError, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
  loadFrame, networkView, readCapture, readCaptureFile, readPcap, readPcapng, sll2Frame, sllFrame, sniffCapture,
  writePcap, writePcapng, type Frame, type OutFrame,
} from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { splitTimestamp, TimestampSplitter } from '../../hooks/input/frame.js';
import { NfvmError } from '../../core/errors.js';
import { Packet } from '../../vm/packet.js';
import { F_L4PROTO, M_FLAGS, M_L4PROTO, M_NFPROTO, M_NHOFF, M_PKTTYPE, M_PROTOCOL, M_THOFF } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC } from '../../core/netfilter.js';
import { runs } from '../helpers/runs.js';

const hex = (b: Uint8Array, n = b.length): string => [...b.subarray(0, n)].map((x) => x.toString(16).padStart(2, '0')).join('');
const raw = (spec: string): Uint8Array => encodeSpec(parseSpec(spec)).data;
const all = (g: Iterable<Frame>): Frame[] => [...g];

/** Expects `fn` to throw a CaptureError whose message is exactly `msg`. */
function expectCaptureError(fn: () => unknown, msg: string | RegExp): CaptureError {
  let e: unknown;
  try {
    fn();
  } catch (x) {
    e = x;
  }
  expect(e).toBeInstanceOf(CaptureError);
  expect(e).toBeInstanceOf(NfvmError);
  if (typeof msg === 'string') expect((e as Error).message).toBe(msg);
  else expect((e as Error).message).toMatch(msg);
  return e as CaptureError;
}

const FRAMES: OutFrame[] = [
  { data: raw('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn'), tsSec: 1_700_000_000, tsNsec: 123_456_000 },
  { data: raw('udp [2001:db8::1]:53 > [2001:db8::2]:40000 len 33'), tsSec: 1_700_000_001, tsNsec: 999_999_000, origLen: 200 },
  { data: raw('icmp 10.0.0.1 > 10.0.0.2 echo-request'), tsSec: 0, tsNsec: 0 },
];

describe('pcap', () => {
  it('writes the header tcpdump writes (little-endian, µs, 2.4, snaplen 262144)', () => {
    const out = writePcap([], { linktype: LINKTYPE_ETHERNET });
    expect(hex(out)).toBe('d4c3b2a1' + '02000400' + '00000000' + '00000000' + '00000400' + '01000000');
    expect(hex(writePcap([], { linktype: 113, nanosecond: true }), 4)).toBe('4d3cb2a1');
    expect(hex(writePcap([], { linktype: 276, bigEndian: true }))).toBe('a1b2c3d4' + '00020004' + '00000000' + '00000000' + '00040000' + '00000114');
  });

  for (const bigEndian of [false, true]) {
    for (const nanosecond of [false, true]) {
      it(`round-trips (${bigEndian ? 'big' : 'little'}-endian, ${nanosecond ? 'ns' : 'µs'})`, () => {
        const buf = writePcap(FRAMES, { linktype: LINKTYPE_RAW, bigEndian, nanosecond });
        expect(sniffCapture(buf)).toBe('pcap');
        const got = all(readCapture(buf, 'x.pcap'));
        expect(got.length).toBe(3);
        let off = 24;
        got.forEach((f, i) => {
          expect(hex(f.data)).toBe(hex(FRAMES[i]!.data));
          expect(f.origLen).toBe(FRAMES[i]!.origLen ?? FRAMES[i]!.data.length);
          expect(f.tsSec).toBe(FRAMES[i]!.tsSec);
          expect(f.tsNsec).toBe(FRAMES[i]!.tsNsec);
          expect(f.linktype).toBe(LINKTYPE_RAW);
          expect(f.offset).toBe(off);
          expect(f.pkttype).toBe(-1);
          // a view into the input, not a copy
          expect(f.data.buffer).toBe(buf.buffer);
          off += 16 + f.data.length;
        });
      });
    }
  }

  it('keeps nanoseconds with the ns magic and truncates to µs without it', () => {
    const fr = [{ data: new Uint8Array([0x45]), tsSec: 5, tsNsec: 123_456_789 }];
    expect(all(readPcap(writePcap(fr, { linktype: 101, nanosecond: true })))[0]!.tsNsec).toBe(123_456_789);
    expect(all(readPcap(writePcap(fr, { linktype: 101 })))[0]!.tsNsec).toBe(123_456_000);
  });

  it('masks the FCS bits of the network field', () => {
    const buf = writePcap([], { linktype: 1 });
    buf[23] = 0x10; // FCS length bits in the top of the field
    expect(all(readPcap(buf)).length).toBe(0);
  });

  it('locates truncated and damaged records', () => {
    const buf = writePcap(FRAMES, { linktype: LINKTYPE_RAW });
    const l0 = FRAMES[0]!.data.length;
    const second = 24 + 16 + l0;
    expectCaptureError(() => all(readPcap(buf.subarray(0, 10), 'a.pcap')), 'a.pcap:@0: truncated pcap file header (10 of 24 bytes)');
    expectCaptureError(() => all(readPcap(buf.subarray(0, second + 7), 'a.pcap')), `a.pcap:@${second}: truncated packet record header (7 of 16 bytes)`);
    expectCaptureError(() => all(readPcap(buf.subarray(0, second + 20), 'a.pcap')), `a.pcap:@${second}: truncated packet record (captured length ${FRAMES[1]!.data.length}, 4 bytes left)`);
    const big = buf.slice();
    new DataView(big.buffer).setUint32(24 + 8, 0x7fffffff, true);
    expectCaptureError(() => all(readPcap(big, 'a.pcap')), 'a.pcap:@24: packet record captured length 2147483647 exceeds the maximum 262144 (damaged file?)');
  });

  it('names unknown link types, bad magics and versions', () => {
    expectCaptureError(() => all(readCapture(writePcap([], { linktype: 105 }), 'w.pcap')), /^w\.pcap:@0: unsupported link type 105 \(LINKTYPE_IEEE802_11\); nfvm reads EN10MB 1, RAW 101, .*LINUX_SLL2 276$/);
    expectCaptureError(() => all(readCapture(writePcap([], { linktype: 4242 }), 'w.pcap')), /^w\.pcap:@0: unsupported link type 4242; /);
    expectCaptureError(() => all(readCapture(new TextEncoder().encode('hello world, not a capture'), 'h.txt')), 'h.txt:@0: not a pcap or pcapng file (magic 0x68656c6c)');
    expectCaptureError(() => all(readCapture(new Uint8Array(2), 'e')), 'e:@0: not a pcap or pcapng file (2 bytes)');
    const v = writePcap([], { linktype: 1 });
    v[4] = 3;
    expectCaptureError(() => all(readPcap(v, 'v.pcap')), 'v.pcap:@0: unsupported pcap version 3.4');
  });
});

describe('pcapng timestamps', () => {
  /** The split of the 64-bit count in BigInt arithmetic: the definition the reader follows. */
  const exact = (hi: number, lo: number, k: number): [number, number] => {
    const units = (BigInt(hi) << 32n) | BigInt(lo);
    const res = 10n ** BigInt(k);
    return [Number(units / res), Number(((units % res) * 1_000_000_000n) / res)];
  };
  it('splits counts of 10^-k s (k up to 9) exactly, nanosecond counts of today included', () => {
    // 2026-12-06 in nanoseconds: hi about 0x1884_0000
    const ns = 1_796_000_000_123_456_789n;
    expect(splitTimestamp(Number(ns >> 32n), Number(ns & 0xffffffffn), 9, false)).toEqual([1_796_000_000, 123_456_789]);
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.integer({ min: 0, max: 9 }), (h, lo, k) => {
        // seconds past 2^53 are not exact in a double either way: hi below 2^21 * 10^k
        const hi = h % Math.min(2 ** 32, 2 ** 21 * 10 ** k);
        expect(splitTimestamp(hi, lo, k, false)).toEqual(exact(hi, lo, k));
      }),
      { numRuns: runs(2000) },
    );
  });
  it('splits a run of counts the same way when the high word is divided once (TimestampSplitter)', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.array(fc.tuple(fc.nat(2), fc.nat(0xffffffff)), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 9 }), (h, los, k) => {
        const base = h % (Math.min(2 ** 32, 2 ** 21 * 10 ** k) - 2);
        const sp = new TimestampSplitter(k, false, 5);
        const f = { tsSec: 0, tsNsec: 0 };
        for (const [dh, lo] of los) {
          sp.set(f, base + dh, lo);
          const [sec, ns] = exact(base + dh, lo, k);
          expect([f.tsSec, f.tsNsec]).toEqual([sec + 5, ns]);
        }
      }),
      { numRuns: runs(2000) },
    );
    // counts just under and at a second's edge (lo = j * 10^9 - 1, j * 10^9), and the largest words
    const sp = new TimestampSplitter(9, false, 0);
    const f = { tsSec: 0, tsNsec: 0 };
    for (const hi of [0, 1, 0x1884_0000, 0x1fffff * 1e3]) {
      for (const lo of [0, 999_999_999, 1_000_000_000, 3_999_999_999, 0xffffffff]) {
        sp.set(f, hi, lo);
        expect([f.tsSec, f.tsNsec]).toEqual(exact(hi, lo, 9));
      }
    }
  });
});

describe('pcapng', () => {
  const ifaces = [
    { linktype: LINKTYPE_RAW, name: 'wg0' },
    { linktype: LINKTYPE_ETHERNET, name: 'eth0', tsresol: 9 },
    { linktype: LINKTYPE_LINUX_SLL2, name: 'any', tsresol: 0x80 | 20 },
  ];
  const frames: OutFrame[] = [
    { data: raw('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn'), ifId: 0, tsSec: 1_700_000_000, tsNsec: 5_000, comment: 'first' },
    { data: raw('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0'), ifId: 1, tsSec: 1_700_000_000, tsNsec: 123_456_789, flags: 1 },
    { data: sll2Frame(raw('udp 10.0.0.1:1 > 10.0.0.2:2'), { ifindex: 7, pkttype: 4 }), ifId: 2, tsSec: 1_700_000_002, tsNsec: 500_000_000 },
    { data: raw('icmpv6 [2001:db8::1] > [2001:db8::2] len 3'), ifId: 0, tsSec: 3, tsNsec: 0, origLen: 1000 },
  ];

  for (const bigEndian of [false, true]) {
    it(`round-trips EPBs over several interfaces (${bigEndian ? 'big' : 'little'}-endian)`, () => {
      const buf = writePcapng(frames, { interfaces: ifaces, bigEndian, comment: 'nfvm test' });
      expect(sniffCapture(buf)).toBe('pcapng');
      const got = all(readCapture(buf, 'x.pcapng'));
      expect(got.map((f) => [f.ifId, f.ifName, f.linktype, f.tsSec, f.tsNsec, f.origLen, f.flags, f.comment])).toEqual([
        [0, 'wg0', LINKTYPE_RAW, 1_700_000_000, 5_000, frames[0]!.data.length, 0, 'first'],
        [1, 'eth0', LINKTYPE_ETHERNET, 1_700_000_000, 123_456_789, frames[1]!.data.length, 1, ''],
        [2, 'any', LINKTYPE_LINUX_SLL2, 1_700_000_002, 500_000_000, frames[2]!.data.length, 0, ''],
        [0, 'wg0', LINKTYPE_RAW, 3, 0, 1000, 0, ''],
      ]);
      got.forEach((f, i) => expect(hex(f.data)).toBe(hex(frames[i]!.data)));
      expect(got[2]!.sllIfindex).toBe(7);
      expect(got[2]!.pkttype).toBe(4);
      expect(got[2]!.protocol).toBe(0x0800);
      expect(got[0]!.data.buffer).toBe(buf.buffer);
    });
  }

  it('reads several sections of different byte order, each with its own interfaces', () => {
    const a = writePcapng([frames[0]!], { interfaces: [ifaces[0]!] });
    const b = writePcapng([{ ...frames[1]!, ifId: 0 }], { interfaces: [ifaces[1]!], bigEndian: true });
    const buf = new Uint8Array(a.length + b.length);
    buf.set(a);
    buf.set(b, a.length);
    const got = all(readPcapng(buf));
    expect(got.map((f) => [f.section, f.ifId, f.ifName, f.linktype, f.offset >= a.length])).toEqual([
      [0, 0, 'wg0', LINKTYPE_RAW, false],
      [1, 0, 'eth0', LINKTYPE_ETHERNET, true],
    ]);
  });

  it('reads SPBs (no timestamp, caplen bounded by snaplen) and OPBs', () => {
    const spb = writePcapng([{ data: raw('udp 10.0.0.1:1 > 10.0.0.2:2 len 10') }], { interfaces: [{ linktype: 101, snaplen: 30 }], packetBlock: 'spb' });
    const [f] = all(readPcapng(spb));
    expect(f!.data.length).toBe(30);
    expect(f!.origLen).toBe(38);
    expect([f!.tsSec, f!.tsNsec]).toEqual([0, 0]);
    const opb = writePcapng(frames.slice(0, 2), { interfaces: ifaces, packetBlock: 'opb', bigEndian: true });
    const got = all(readPcapng(opb));
    expect(got.map((g) => [g.ifId, g.tsNsec, g.comment])).toEqual([[0, 5_000, 'first'], [1, 123_456_789, '']]);
  });

  it('skips unknown blocks and applies if_tsoffset', () => {
    const base = writePcapng([frames[0]!], { interfaces: [ifaces[0]!] });
    // SHB | IDB | EPB: put a custom block (0x40000BAD) and an ISB (5) before the EPB.
    const shbLen = new DataView(base.buffer).getUint32(4, true);
    const idbLen = new DataView(base.buffer).getUint32(shbLen + 4, true);
    const mk = (type: number, body: number[]): Uint8Array => {
      const len = 12 + body.length;
      const b = new Uint8Array(len);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, type, true);
      dv.setUint32(4, len, true);
      b.set(body, 8);
      dv.setUint32(len - 4, len, true);
      return b;
    };
    // an IDB with if_tsoffset = 100 s (option 14, 8 bytes) replacing the original IDB
    const idb = mk(1, [101, 0, 0, 0, 0, 0, 4, 0, 14, 0, 8, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const extra = [mk(0x40000bad, [1, 2, 3, 4, 5, 6, 7, 8]), mk(5, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])];
    const parts = [base.subarray(0, shbLen), idb, ...extra, base.subarray(shbLen + idbLen)];
    const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    const got = all(readPcapng(buf));
    expect(got.length).toBe(1);
    expect(got[0]!.tsSec).toBe(1_700_000_100);
    expect(got[0]!.ifName).toBe('');
  });

  it('locates damaged blocks', () => {
    const buf = writePcapng(frames.slice(0, 1), { interfaces: [ifaces[0]!] });
    const dv = new DataView(buf.buffer);
    const shbLen = dv.getUint32(4, true);
    const idbLen = dv.getUint32(shbLen + 4, true);
    const epb = shbLen + idbLen;
    const epbLen = dv.getUint32(epb + 4, true);
    expectCaptureError(() => all(readPcapng(buf.subarray(0, buf.length - 3), 'c.pcapng')), `c.pcapng:@${epb}: truncated Enhanced Packet Block (block length ${epbLen}, ${epbLen - 3} bytes left)`);
    expectCaptureError(() => all(readPcapng(buf.subarray(0, epb + 5), 'c.pcapng')), `c.pcapng:@${epb}: truncated block header (5 of 12 bytes)`);
    const m = buf.slice();
    new DataView(m.buffer).setUint32(epb + epbLen - 4, 4, true);
    expectCaptureError(() => all(readPcapng(m, 'c.pcapng')), `c.pcapng:@${epb}: Enhanced Packet Block length mismatch (${epbLen} at the start, 4 at the end)`);
    const noIdb = new Uint8Array(buf.length - idbLen);
    noIdb.set(buf.subarray(0, shbLen));
    noIdb.set(buf.subarray(epb), shbLen);
    expectCaptureError(() => all(readPcapng(noIdb, 'c.pcapng')), `c.pcapng:@${shbLen}: Enhanced Packet Block for interface 0, but section 0 defines 0`);
    const badLt = writePcapng([], { interfaces: [{ linktype: 147 }] });
    expectCaptureError(() => all(readPcapng(badLt, 'u.pcapng')), /^u\.pcapng:@\d+: unsupported link type 147 \(LINKTYPE_USER0\)/);
    const bom = buf.slice();
    bom[8] = 0;
    expectCaptureError(() => all(readPcapng(bom, 'c.pcapng')), 'c.pcapng:@0: bad byte-order magic 0x003c2b1a in Section Header Block');
    const cap = buf.slice();
    new DataView(cap.buffer).setUint32(epb + 8 + 12, 5000, true);
    expectCaptureError(() => all(readPcapng(cap, 'c.pcapng')), new RegExp(`^c\\.pcapng:@${epb}: Enhanced Packet Block captured length 5000 exceeds the block`));
  });

  it('round-trips random frames through both writers (property)', () => {
    const frameArb = fc.record({
      data: fc.uint8Array({ maxLength: 80 }),
      tsSec: fc.integer({ min: 0, max: 0xffffffff }),
      tsNsec: fc.integer({ min: 0, max: 999_999 }).map((u) => u * 1000),
      ifId: fc.nat(2),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 6 }), fc.boolean(), fc.constantFrom(6, 9, 0x80 | 30), (fs, be, tsresol) => {
        const ng = all(readPcapng(writePcapng(fs, { interfaces: [0, 1, 2].map((i) => ({ linktype: 101, name: `if${i}`, tsresol })), bigEndian: be })));
        expect(ng.map((f) => [hex(f.data), f.tsSec, f.tsNsec, f.ifId, f.ifName])).toEqual(fs.map((f) => [hex(f.data), f.tsSec, f.tsNsec, f.ifId, `if${f.ifId}`]));
        const pc = all(readPcap(writePcap(fs, { linktype: 228, bigEndian: be })));
        expect(pc.map((f) => [hex(f.data), f.tsSec, f.tsNsec])).toEqual(fs.map((f) => [hex(f.data), f.tsSec, f.tsNsec]));
      }),
    );
  });
});

describe('Linux cooked captures and the VM packet', () => {
  const ip4 = raw('tcp 10.0.0.2:40000 > 10.0.0.1:22 syn');
  const ip6 = raw('udp [2001:db8::1]:53 > [2001:db8::2]:40000');

  it('reads SLL: pkttype, protocol, ARPHRD', () => {
    const buf = writePcap([{ data: sllFrame(ip4, { pkttype: 4, hatype: 772 }) }, { data: sllFrame(ip6, { pkttype: 1 }) }], { linktype: LINKTYPE_LINUX_SLL });
    const got = all(readCapture(buf));
    expect(got.map((f) => [f.pkttype, f.protocol, f.hatype, f.sllIfindex])).toEqual([[4, 0x0800, 772, -1], [1, 0x86dd, 1, -1]]);
    const v = networkView(got[0]!);
    expect(v.linktype).toBe(LINKTYPE_IPV4);
    expect(hex(v.data)).toBe(hex(ip4));
    expect(v.pkttype).toBe(4);
    expect(networkView(got[1]!).linktype).toBe(LINKTYPE_IPV6);
  });

  it('loads SLL2 frames into a Packet as raw IP with the capture pkttype', () => {
    const buf = writePcap([{ data: sll2Frame(ip6, { pkttype: 0, ifindex: 3 }) }, { data: sll2Frame(ip4, { pkttype: 3 }) }], { linktype: LINKTYPE_LINUX_SLL2 });
    const [a, b] = all(readCapture(buf));
    expect(a!.sllIfindex).toBe(3);
    const pkt = new Packet(2048);
    expect(loadFrame(pkt, a!)).toBe(true);
    expect(pkt.meta[M_NFPROTO]).toBe(NFPROTO_IPV6);
    expect(pkt.meta[M_L4PROTO]).toBe(17);
    expect(pkt.meta[M_NHOFF]).toBe(0);
    expect(pkt.meta[M_THOFF]).toBe(40);
    expect(pkt.meta[M_PKTTYPE]).toBe(0);
    loadFrame(pkt, b!);
    expect(pkt.meta[M_NFPROTO]).toBe(NFPROTO_IPV4);
    expect(pkt.meta[M_L4PROTO]).toBe(6);
    expect(pkt.meta[M_PKTTYPE]).toBe(3);
    expect(networkView(b!).ifindex).toBe(1);
  });

  it('leaves a non-IP cooked frame undecoded with its protocol', () => {
    const arp = sll2Frame(new Uint8Array(28).fill(1), { protocol: 0x0806 });
    const [f] = all(readCapture(writePcap([{ data: arp }], { linktype: LINKTYPE_LINUX_SLL2 })));
    expect(networkView(f!).linktype).toBe(-1);
    const pkt = new Packet(2048);
    loadFrame(pkt, f!);
    expect(pkt.meta[M_PROTOCOL]).toBe(0x0806);
    expect(pkt.meta[M_NFPROTO]).toBe(NFPROTO_UNSPEC);
    expect(pkt.meta[M_FLAGS]! & F_L4PROTO).toBe(0);
  });

  it('rejects a cooked frame shorter than its header', () => {
    const buf = writePcap([{ data: new Uint8Array(12) }], { linktype: LINKTYPE_LINUX_SLL2 });
    expectCaptureError(() => all(readCapture(buf, 's.pcap')), 's.pcap:@24: LINUX_SLL2 frame of 12 bytes is shorter than its 20-byte header');
  });

  it('passes Ethernet and raw frames through', () => {
    const eth = encodeSpec(parseSpec('tcp 10.0.0.2:1 > 10.0.0.1:2 vlan 5')).data;
    const [f] = all(readCapture(writePcap([{ data: eth }], { linktype: 1 })));
    const pkt = new Packet(2048);
    loadFrame(pkt, f!);
    expect(pkt.meta[M_NHOFF]).toBe(18);
    expect(pkt.meta[M_L4PROTO]).toBe(6);
    expect(networkView({ ...f!, linktype: LINKTYPE_IPV6 }).linktype).toBe(LINKTYPE_IPV6);
  });

  it('reports unreadable files as io errors', () => {
    const e = expectCaptureError(() => readCaptureFile('/nonexistent/nfvm.pcap'), '/nonexistent/nfvm.pcap:@0: no such file');
    expect(e.kind).toBe('io');
  });
});

describe('garbage and truncation (fuzz)', () => {
  const valid = [
    writePcap(FRAMES, { linktype: LINKTYPE_RAW }),
    writePcap([{ data: sll2Frame(raw('udp 10.0.0.1:1 > 10.0.0.2:2')) }], { linktype: LINKTYPE_LINUX_SLL2, bigEndian: true, nanosecond: true }),
    writePcapng([{ data: raw('udp 10.0.0.1:1 > 10.0.0.2:2'), comment: 'c', flags: 2 }, { data: raw('tcp 10.0.0.1:1 > 10.0.0.2:2'), ifId: 1 }], {
      interfaces: [{ linktype: 101, name: 'a', tsresol: 9 }, { linktype: 228, name: 'b' }],
    }),
    writePcapng([{ data: raw('udp 10.0.0.1:1 > 10.0.0.2:2') }], { interfaces: [{ linktype: 101 }], packetBlock: 'spb', bigEndian: true }),
  ];

  /** Reads everything; returns 'ok' or the error, which must be a CaptureError. */
  function consume(buf: Uint8Array): string {
    try {
      let n = 0;
      for (const f of readCapture(buf, 'fuzz')) {
        n++;
        loadFrame(new Packet(70000), f);
        if (n > 100000) throw new Error('too many frames');
      }
      return 'ok';
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e;
      expect(e.message).toMatch(/^fuzz:@\d+: /);
      expect(e.offset).toBeLessThanOrEqual(buf.length);
      return e.message;
    }
  }

  it('every truncation of a valid file is either whole records or a located error', () => {
    for (const v of valid) {
      for (let n = 0; n < v.length; n++) consume(v.subarray(0, n));
      expect(consume(v)).toBe('ok');
    }
  });

  it('random mutations throw only CaptureError, quickly', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (v, edits) => {
          const b = v.slice();
          for (const [at, val] of edits) b[at % b.length] = val;
          const t0 = performance.now();
          consume(b);
          expect(performance.now() - t0).toBeLessThan(500);
        },
      ),
      { numRuns: runs(2000) },
    );
  });

  it('random bytes after a valid header throw only CaptureError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...valid.map((v) => v.subarray(0, 24))), fc.uint8Array({ maxLength: 300 }), (head, tail) => {
        const b = new Uint8Array(head.length + tail.length);
        b.set(head);
        b.set(tail, head.length);
        consume(b);
      }),
      { numRuns: runs(1000) },
    );
  });
});
