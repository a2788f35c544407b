/**
 * decodePacket(): what nft_pktinfo holds for Ethernet (with 802.1Q), raw
 * IPv4 and raw IPv6 frames, and that garbage never throws.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  F_L4PROTO, F_MAC_HEADER, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW, M_END, M_FLAGS, M_FRAGOFF,
  M_L4PROTO, M_LEN, M_NFPROTO, M_NHOFF, M_PKTTYPE, M_PROTOCOL, M_THOFF, PACKET_BROADCAST, PACKET_HOST,
  PACKET_MULTICAST, Packet, copyFrame, decodePacket,
} from '../../vm/index.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC } from '../../core/netfilter.js';
import { eth, ext, frame, ipv4, ipv6, packet, raw, tcp, udp, vlan } from './helpers/pkt.js';
import { runs } from '../helpers/runs.js';

const fields = (p: Packet) => ({
  nfproto: p.meta[M_NFPROTO],
  protocol: p.meta[M_PROTOCOL],
  nh: p.meta[M_NHOFF],
  th: p.meta[M_THOFF],
  l4: p.meta[M_FLAGS]! & F_L4PROTO ? p.meta[M_L4PROTO] : -1,
  frag: p.meta[M_FRAGOFF],
  len: p.meta[M_LEN],
  mac: (p.meta[M_FLAGS]! & F_MAC_HEADER) !== 0,
});

describe('decodePacket', () => {
  it('Ethernet + IPv4 + TCP', () => {
    expect(fields(packet([eth(), ipv4({ options: [1, 1, 1, 1] }), tcp()]))).toEqual({ nfproto: NFPROTO_IPV4, protocol: 0x0800, nh: 14, th: 38, l4: 6, frag: 0, len: 44, mac: true });
  });

  it('802.1Q and QinQ tags move the network header', () => {
    expect(fields(packet([eth(), vlan(), ipv4(), udp()])).nh).toBe(18);
    expect(fields(packet([eth(), vlan({ tpid: 0x88a8 }), vlan(), ipv6(), udp()]))).toMatchObject({ nh: 22, th: 62, l4: 17, nfproto: NFPROTO_IPV6 });
  });

  it('trims the L3 length to the IPv4 total length (Ethernet padding)', () => {
    const p = packet([eth(), ipv4(), udp(), raw([0, 0, 0, 0])]);
    const short = new Packet(128).setFrame([...frame(eth(), ipv4(), udp()), 0, 0, 0, 0, 0, 0]);
    decodePacket(short, LINKTYPE_ETHERNET);
    expect(short.meta[M_LEN]).toBe(28);
    expect(short.meta[M_END]).toBe(42);
    expect(p.meta[M_LEN]).toBe(32);
  });

  it('IPv4 fragment offset is the raw 13-bit field; IPv6 is in bytes', () => {
    expect(fields(packet([ipv4({ fragoff: 185 }), tcp()])).frag).toBe(185);
    expect(fields(packet([ipv6(), ext('frag', { offset: 185 }), tcp()]))).toMatchObject({ frag: 185 * 8, l4: 6, th: 0 });
    expect(fields(packet([ipv6(), ext('frag', { offset: 0, mf: true }), tcp()]))).toMatchObject({ frag: 0, l4: 6, th: 48 });
  });

  it('IPv6: a non-first fragment followed by another extension header has no L4 info (-ENOENT)', () => {
    expect(fields(packet([ipv6(), ext('frag', { offset: 3 }), ext('dst'), tcp()])).l4).toBe(-1);
  });

  it('IPv6: no next header (59) is a protocol', () => {
    expect(fields(packet([ipv6(), ext('hbh')])).l4).toBe(59);
  });

  it('bad versions and short headers leave L4 info unset', () => {
    expect(fields(packet([ipv4({ version: 5 }), tcp()])).l4).toBe(-1);
    const p = new Packet(64).setFrame([0x45, 0, 0, 20]);
    decodePacket(p, LINKTYPE_IPV4);
    expect(fields(p)).toMatchObject({ l4: -1, len: 4, nfproto: NFPROTO_IPV4 });
    const q = new Packet(64).setFrame([0x60]);
    decodePacket(q, LINKTYPE_IPV6);
    expect(fields(q).l4).toBe(-1);
    const e = new Packet(64).setFrame([1, 2, 3]);
    decodePacket(e, LINKTYPE_ETHERNET);
    expect(fields(e)).toMatchObject({ mac: false, nfproto: NFPROTO_UNSPEC, len: 0 });
  });

  it('pkttype from the destination MAC', () => {
    expect(packet([eth({ dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] }), ipv4(), udp()]).meta[M_PKTTYPE]).toBe(PACKET_BROADCAST);
    expect(packet([eth({ dst: [0x01, 0, 0x5e, 0, 0, 1] }), ipv4(), udp()]).meta[M_PKTTYPE]).toBe(PACKET_MULTICAST);
    expect(packet([eth(), ipv4(), udp()]).meta[M_PKTTYPE]).toBe(PACKET_HOST);
  });

  it('never throws on garbage, and keeps offsets inside the frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6), (bytes, lt) => {
        const p = new Packet(256).setFrame(bytes);
        decodePacket(p, lt);
        const m = p.meta;
        expect(m[M_END]).toBeLessThanOrEqual(bytes.length);
        expect(m[M_NHOFF]! + m[M_LEN]!).toBe(m[M_END]);
        if (m[M_FLAGS]! & F_L4PROTO) expect(m[M_THOFF]).toBeGreaterThanOrEqual(m[M_NHOFF]!);
      }),
      { numRuns: runs(2000) },
    );
  });
});

describe('copyFrame', () => {
  it('copies every byte of a frame at any offset and length, word-aligned or not, from any view of a buffer', () => {
    const buf = new ArrayBuffer(4096 + 8);
    const all = new Uint8Array(buf);
    for (let i = 0; i < all.length; i++) all[i] = (i * 131 + 7) & 0xff;
    const pkt = new Packet();
    for (const viewAt of [0, 1, 2, 3, 4]) {
      const view = new Uint8Array(buf, viewAt, 4096);
      for (const at of [0, 1, 2, 3, 4, 5, 60, 61, 1000, 4096 - 300]) {
        for (const len of [0, 1, 2, 3, 4, 5, 63, 64, 118, 255, 256, 257, 300]) {
          if (at + len > view.length) continue;
          pkt.data.fill(0xee);
          copyFrame(pkt, view, at, len);
          expect(Array.from(pkt.data.subarray(0, len))).toEqual(Array.from(view.subarray(at, at + len)));
        }
      }
    }
  });

  it('a frame ending at the end of its buffer is copied without reading past it', () => {
    const view = new Uint8Array(10).map((_, i) => i + 1);
    const pkt = new Packet();
    copyFrame(pkt, view, 4, 6);
    expect(Array.from(pkt.data.subarray(0, 6))).toEqual([5, 6, 7, 8, 9, 10]);
    copyFrame(pkt, view, 0, 9);
    expect(Array.from(pkt.data.subarray(0, 9))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('copies frames of arrays of their own, one after another and one twice, small and large, between frames of a window', () => {
    const pkt = new Packet();
    const window = new Uint8Array(2048).map((_, i) => (i * 7) & 0xff);
    const own = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 13 + seed) & 0xff);
    const frames: [Uint8Array, number, number][] = [];
    const a = own(60, 1);
    const big = own(1500, 9);
    for (const f of [a, own(60, 2), a, a, big, big, own(9, 3)]) frames.push([f, 0, f.length]);
    frames.splice(3, 0, [window, 4, 100], [window, 104, 61], [window, 165, 300]);
    for (const [bytes, at, len] of frames) {
      pkt.data.fill(0xee);
      copyFrame(pkt, bytes, at, len);
      expect(Array.from(pkt.data.subarray(0, len))).toEqual(Array.from(bytes.subarray(at, at + len)));
    }
  });
});
