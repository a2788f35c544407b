/**
 * The connection of a decoded frame as a number, the same for both of its
 * directions: what a NIC's receive-side scaling computes to spread
 * connections over queues (a symmetric Toeplitz key makes it so), here to
 * spread a capture's frames over replay workers so that every frame of a
 * connection, and every ICMP error about it, meets the same conntrack
 * partition in capture order.
 *
 * Hashed: the addresses and protocol, with the ports for TCP, UDP, UDP-Lite,
 * SCTP and DCCP, the identifier for ICMP and ICMPv6 echo; an ICMP or ICMPv6
 * error hashes as the packet it quotes (the connection conntrack relates it
 * to). Frames that are not IP hash to 0 (no state follows them).
 * SHARD_UNKNOWN: a frame whose connection cannot be told from its bytes
 * alone: an IP fragment (the first carries ports, the others do not, and
 * nf_defrag joins them), an ICMP error quoting something unreadable.
 */
import { M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { ipv6ExtHdr, type Packet } from '../../vm/packet.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, SLL2_HDR_LEN, SLL_HDR_LEN } from './frame.js';

export const SHARD_UNKNOWN = -1;

/**
 * The worker (of `n`, below 65,536) of connection hash `h`: h mod n. A hash
 * is an unsigned 32-bit number, mostly above the small integers V8 keeps
 * unboxed, where `%` is a floating-point remainder; split in 16-bit halves
 * the remainder is taken on small integers (the same value).
 */
export function shardOf(h: number, n: number): number {
  return ((h >>> 16) * (65536 % n) + (h & 0xffff)) % n;
}

const NEXTHDR_FRAGMENT = 44;

function mix(h: number, v: number): number {
  let x = Math.imul(v, 0xcc9e2d51);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, 0x1b873593);
  const y = h ^ x;
  return (Math.imul((y << 13) | (y >>> 19), 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function u32(d: Uint8Array, at: number): number {
  return (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!;
}

function u16(d: Uint8Array, at: number): number {
  return (d[at]! << 8) | d[at + 1]!;
}

/** Whether protocol `p` has 16-bit source and destination ports first in its header. */
function ported(p: number): boolean {
  return p === 6 || p === 17 || p === 136 || p === 132 || p === 33;
}

/**
 * The symmetric hash of one endpoint pair: (address words, port) of each
 * side combined by sum and xor, so that swapping the sides changes nothing.
 */
function pairHash(d: Uint8Array, sa: number, da: number, words: number, proto: number, sport: number, dport: number): number {
  let a = mix(0x5bd1e995, sport);
  let b = mix(0x5bd1e995, dport);
  for (let i = 0; i < words; i++) {
    a = mix(a, u32(d, sa + 4 * i));
    b = mix(b, u32(d, da + 4 * i));
  }
  return fmix(mix(mix(proto, (a + b) | 0), a ^ b));
}

/** The hash of the IPv4 packet at `nh` (ending at `end`), looking into an ICMP error's quote when `quote`. */
function hash4(d: Uint8Array, nh: number, end: number, quote: boolean): number {
  if (end - nh < 20) return SHARD_UNKNOWN;
  const ihl = (d[nh]! & 0x0f) * 4;
  if (ihl < 20 || end - nh < ihl) return SHARD_UNKNOWN;
  if (u16(d, nh + 6) & 0x3fff) return SHARD_UNKNOWN;
  const proto = d[nh + 9]!;
  const th = nh + ihl;
  if (ported(proto)) {
    // A quoted packet carries at least the first 8 bytes of its transport header (RFC 792).
    if (end - th < 4) return SHARD_UNKNOWN;
    return pairHash(d, nh + 12, nh + 16, 1, proto, u16(d, th), u16(d, th + 2));
  }
  if (proto === 1) {
    if (end - th < 8) return SHARD_UNKNOWN;
    const type = d[th]!;
    if (type === 0 || type === 8 || type === 13 || type === 14 || type === 15 || type === 16) {
      const id = u16(d, th + 4);
      return pairHash(d, nh + 12, nh + 16, 1, proto, id, id);
    }
    if (!quote && (type === 3 || type === 4 || type === 5 || type === 11 || type === 12)) return hash4(d, th + 8, end, true);
  }
  return pairHash(d, nh + 12, nh + 16, 1, proto, 0, 0);
}

/** The hash of the IPv6 packet at `nh`, as hash4(). */
function hash6(d: Uint8Array, nh: number, end: number, quote: boolean): number {
  if (end - nh < 40) return SHARD_UNKNOWN;
  let next = d[nh + 6]!;
  let th = nh + 40;
  while (ipv6ExtHdr(next)) {
    if (next === NEXTHDR_FRAGMENT || end - th < 8) return SHARD_UNKNOWN;
    const len = next === 51 ? (d[th + 1]! + 2) * 4 : (d[th + 1]! + 1) * 8;
    next = d[th]!;
    th += len;
  }
  if (th > end) return SHARD_UNKNOWN;
  if (ported(next)) {
    if (end - th < 4) return SHARD_UNKNOWN;
    return pairHash(d, nh + 8, nh + 24, 4, next, u16(d, th), u16(d, th + 2));
  }
  if (next === 58) {
    if (end - th < 8) return SHARD_UNKNOWN;
    const type = d[th]!;
    if (type === 128 || type === 129) {
      const id = u16(d, th + 4);
      return pairHash(d, nh + 8, nh + 24, 4, next, id, id);
    }
    if (!quote && type >= 1 && type <= 4) return hash6(d, th + 8, end, true);
  }
  return pairHash(d, nh + 8, nh + 24, 4, next, 0, 0);
}

/** The connection hash of the decoded packet `pkt`: 0 when not IP, SHARD_UNKNOWN when it cannot be told. */
export function connectionHash(pkt: Packet): number {
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  const pf = m[M_NFPROTO];
  if (pf === NFPROTO_IPV4) return hash4(pkt.data, nh, end, false);
  if (pf === NFPROTO_IPV6) return hash6(pkt.data, nh, end, false);
  return 0;
}

/** The end of the IPv4 packet at `nh` as decodePacket() finds it: its total length when the header is sound, else what the frame has. */
function end4(d: Uint8Array, nh: number, end: number): number {
  if (end - nh < 20 || d[nh]! >> 4 !== 4 || (d[nh]! & 0x0f) < 5) return end;
  const tot = u16(d, nh + 2);
  return tot <= end - nh && tot >= (d[nh]! & 0x0f) * 4 ? nh + tot : end;
}

/** The end of the IPv6 packet at `nh`, as end4(). */
function end6(d: Uint8Array, nh: number, end: number): number {
  if (end - nh < 40 || d[nh]! >> 4 !== 6) return end;
  const len = u16(d, nh + 4) + 40;
  return len <= end - nh ? nh + len : end;
}

/**
 * connectionHash() of a captured frame straight from its bytes
 * (bytes[at, at + caplen) of link type `linktype`; `protocol`: the SLL
 * protocol), without decoding it into a packet: what the reader of a
 * sharded replay computes for every frame. The same value as
 * connectionHash() after loadFrame().
 */
export function frameConnectionHash(d: Uint8Array, at: number, caplen: number, linktype: number, protocol: number): number {
  const end = at + caplen;
  let nh = at;
  let proto: number;
  if (linktype === LINKTYPE_ETHERNET) {
    if (caplen < 14) return 0;
    nh = at + 14;
    proto = u16(d, at + 12);
    // 802.1Q / 802.1ad tags, up to two, as decodePacket() reads them.
    for (let tags = 0; tags < 2 && (proto === 0x8100 || proto === 0x88a8) && nh + 4 <= end; tags++) {
      proto = u16(d, nh + 2);
      nh += 4;
    }
  } else if (linktype === LINKTYPE_LINUX_SLL || linktype === LINKTYPE_LINUX_SLL2) {
    nh = at + (linktype === LINKTYPE_LINUX_SLL ? SLL_HDR_LEN : SLL2_HDR_LEN);
    if (nh > end) return 0;
    proto = protocol;
  } else if (linktype === LINKTYPE_IPV4) proto = 0x0800;
  else if (linktype === LINKTYPE_IPV6) proto = 0x86dd;
  else if (linktype === LINKTYPE_RAW && caplen > 0) proto = d[at]! >> 4 === 4 ? 0x0800 : d[at]! >> 4 === 6 ? 0x86dd : 0;
  else return 0;
  if (proto === 0x0800) return hash4(d, nh, end4(d, nh, end), false);
  if (proto === 0x86dd) return hash6(d, nh, end6(d, nh, end), false);
  return 0;
}
