/**
 * struct nf_conntrack_tuple as Int32 words, and getting one from a packet.
 *
 * Mirrors (Linux 6.18):
 *   include/net/netfilter/nf_conntrack_tuple.h  the tuple (src: u3, u.all, l3num; dst: u3, u.all, protonum, dir)
 *   net/netfilter/nf_conntrack_core.c           nf_ct_get_tuple, ipv4_get_l4proto, ipv6_get_l4proto,
 *                                               nf_ct_get_tuplepr, nf_ct_invert_tuple
 *   net/netfilter/nf_conntrack_proto_icmp.c     icmp_pkt_to_tuple, nf_conntrack_invert_icmp_tuple
 *   net/netfilter/nf_conntrack_proto_icmpv6.c   icmpv6_pkt_to_tuple, nf_conntrack_invert_icmpv6_tuple
 *   net/netfilter/nf_conntrack_proto_gre.c      gre_pkt_to_tuple (no PPTP keymap: the source key is 0)
 *   net/ipv6/exthdrs_core.c                     ipv6_skip_exthdr
 *
 * Layout (TUPLE_WORDS words at some offset of an Int32Array):
 *   T_SRC..+3  source address, host-order words; IPv4 uses word 0, the rest 0 (union nf_inet_addr)
 *   T_DST..+3  destination address
 *   T_PORTS    src.u.all << 16 | dst.u.all: ports (TCP/UDP/UDP-Lite/SCTP), GRE keys,
 *              ICMP id << 16 | type << 8 | code (src.u.icmp.id, dst.u.icmp.type/code)
 *   T_PROTO    l3num << 8 | protonum
 * The direction (dst.dir) is not stored: it is the tuplehash slot the words sit in.
 * Everything here reads packet bytes at absolute frame offsets and allocates nothing.
 */
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';

export const T_SRC = 0;
export const T_DST = 4;
export const T_PORTS = 8;
export const T_PROTO = 9;
export const TUPLE_WORDS = 10;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;

// ICMP types (include/uapi/linux/icmp.h)
export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIMESTAMP = 13;
export const ICMP_TIMESTAMPREPLY = 14;
export const ICMP_INFO_REQUEST = 15;
export const ICMP_INFO_REPLY = 16;
export const ICMP_ADDRESS = 17;
export const ICMP_ADDRESSREPLY = 18;
export const NR_ICMP_TYPES = 18;
// ICMPv6 types (include/uapi/linux/icmpv6.h)
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_NI_QUERY = 139;
export const ICMPV6_NI_REPLY = 140;
export const NDISC_REDIRECT = 137;


/** What the last l4proto lookup found besides the offset (skb_header_pointer results kept in module state: no allocation). */
export const l4 = { protonum: 0, fragOff: 0 };

/**
 * ipv6_skip_exthdr(): from `start` with next header `nexthdr`, skips the
 * extension headers; returns the offset of the upper-layer header (or -1),
 * leaves the protocol in l4.protonum and the fragment offset field in l4.fragOff.
 */
export function ipv6SkipExthdr(d: Uint8Array, start: number, nexthdr: number, end: number): number {
  let nh = nexthdr;
  let at = start;
  l4.fragOff = 0;
  // ipv6_ext_hdr(): HOP 0, ROUTING 43, FRAGMENT 44, AUTH 51, NONE 59, DEST 60
  while (nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 59 || nh === 60) {
    if (nh === 59) return -1;
    if (at + 2 > end) return -1;
    let hdrlen: number;
    if (nh === 44) {
      if (at + 4 > end) return -1;
      l4.fragOff = (d[at + 2]! << 8) | d[at + 3]!;
      if (l4.fragOff & ~0x7) break;
      hdrlen = 8;
    } else if (nh === 51) hdrlen = (d[at + 1]! + 2) << 2; // ipv6_authlen
    else hdrlen = (d[at + 1]! + 1) << 3;
    nh = d[at]!;
    at += hdrlen;
  }
  l4.protonum = nh;
  return at;
}

/**
 * get_l4proto(): the transport offset of the packet whose network header is
 * at `nh` and whose data ends at `end` (skb->len), or -1; the protocol in
 * l4.protonum. IPv4 non-first fragments and IPv6 fragments give -1.
 */
export function getL4proto(d: Uint8Array, nh: number, end: number, pf: number): number {
  l4.protonum = 0;
  if (pf === NFPROTO_IPV4) {
    if (nh + 20 > end) return -1;
    if (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff) return -1; // IP_OFFSET
    const dataoff = nh + ((d[nh]! & 0x0f) << 2);
    l4.protonum = d[nh + 9]!;
    if (dataoff > end) return -1;
    return dataoff;
  }
  if (pf === NFPROTO_IPV6) {
    if (nh + 40 > end) return -1;
    const protoff = ipv6SkipExthdr(d, nh + 40, d[nh + 6]!, end);
    if (protoff < 0 || l4.fragOff & ~0x7) return -1;
    return protoff;
  }
  return -1;
}

/** The big-endian 32-bit word at d[at], as an int32 (what the tuple words hold). */
export function word(d: Uint8Array, at: number): number {
  return (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!;
}

/** before() and after() of include/net/tcp.h: sequence numbers compared modulo 2^32. */
export const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;

/**
 * nf_ct_get_tuple(): fills t[o..o+TUPLE_WORDS) from the packet; false when a
 * header the protocol needs is cut short (skb_header_pointer failing).
 */
export function nfCtGetTuple(d: Uint8Array, nh: number, dataoff: number, end: number, l3num: number, protonum: number, t: Int32Array, o: number): boolean {
  if (l3num === NFPROTO_IPV4) {
    t[o + T_SRC] = word(d, nh + 12);
    t[o + T_SRC + 1] = 0;
    t[o + T_SRC + 2] = 0;
    t[o + T_SRC + 3] = 0;
    t[o + T_DST] = word(d, nh + 16);
    t[o + T_DST + 1] = 0;
    t[o + T_DST + 2] = 0;
    t[o + T_DST + 3] = 0;
  } else {
    for (let i = 0; i < 4; i++) {
      t[o + T_SRC + i] = word(d, nh + 8 + 4 * i);
      t[o + T_DST + i] = word(d, nh + 24 + 4 * i);
    }
  }
  t[o + T_PROTO] = (l3num << 8) | protonum;
  t[o + T_PORTS] = 0;
  switch (protonum) {
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      // icmp_pkt_to_tuple: type, code, echo id (struct icmphdr: 8 bytes)
      if (dataoff + 8 > end) return false;
      t[o + T_PORTS] = (((d[dataoff + 4]! << 8) | d[dataoff + 5]!) << 16) | (d[dataoff]! << 8) | d[dataoff + 1]!;
      return true;
    case IPPROTO_GRE: {
      // gre_pkt_to_tuple: only PPTP (version 1, protocol PPP) has keys.
      if (dataoff + 4 > end || (d[dataoff + 1]! & 0x07) !== 1) return true;
      if (dataoff + 8 > end) return true;
      if (((d[dataoff + 2]! << 8) | d[dataoff + 3]!) !== 0x880b) return false; // GRE_PROTO_PPP
      t[o + T_PORTS] = (d[dataoff + 6]! << 8) | d[dataoff + 7]!; // dst key = call id, src key from the (empty) keymap
      return true;
    }
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
    case IPPROTO_SCTP:
      if (dataoff + 4 > end) return false;
      t[o + T_PORTS] = word(d, dataoff);
      return true;
    default:
      return true;
  }
}

/** invmap of nf_conntrack_invert_icmp_tuple (type + 1; 0 = no inverse). */
const ICMP_INVMAP = new Uint8Array(NR_ICMP_TYPES + 1);
ICMP_INVMAP[ICMP_ECHO] = ICMP_ECHOREPLY + 1;
ICMP_INVMAP[ICMP_ECHOREPLY] = ICMP_ECHO + 1;
ICMP_INVMAP[ICMP_TIMESTAMP] = ICMP_TIMESTAMPREPLY + 1;
ICMP_INVMAP[ICMP_TIMESTAMPREPLY] = ICMP_TIMESTAMP + 1;
ICMP_INVMAP[ICMP_INFO_REQUEST] = ICMP_INFO_REPLY + 1;
ICMP_INVMAP[ICMP_INFO_REPLY] = ICMP_INFO_REQUEST + 1;
ICMP_INVMAP[ICMP_ADDRESS] = ICMP_ADDRESSREPLY + 1;
ICMP_INVMAP[ICMP_ADDRESSREPLY] = ICMP_ADDRESS + 1;

/** The inverse ICMP/ICMPv6 type (the request of a reply and back), or -1 when the type has none. */
function icmpInverse(protonum: number, type: number): number {
  if (protonum === IPPROTO_ICMP) return type < ICMP_INVMAP.length && ICMP_INVMAP[type] ? ICMP_INVMAP[type]! - 1 : -1;
  switch (type) {
    case ICMPV6_ECHO_REQUEST: return ICMPV6_ECHO_REPLY;
    case ICMPV6_ECHO_REPLY: return ICMPV6_ECHO_REQUEST;
    case ICMPV6_NI_QUERY: return ICMPV6_NI_REPLY;
    case ICMPV6_NI_REPLY: return ICMPV6_NI_QUERY;
    default: return -1;
  }
}

/** nf_ct_invert_tuple(): r[ro..] = inverse of t[to..]; false for an ICMP type without an inverse. `r` may not overlap `t`. */
export function nfCtInvertTuple(t: Int32Array, to: number, r: Int32Array, ro: number): boolean {
  const proto = t[to + T_PROTO]!;
  const protonum = proto & 0xff;
  const ports = t[to + T_PORTS]!;
  if (protonum === IPPROTO_ICMP || protonum === IPPROTO_ICMPV6) {
    const inv = icmpInverse(protonum, (ports >>> 8) & 0xff);
    if (inv < 0) return false;
    r[ro + T_PORTS] = (ports & 0xffff0000) | (inv << 8) | (ports & 0xff);
  } else r[ro + T_PORTS] = (ports >>> 16) | (ports << 16);
  for (let i = 0; i < 4; i++) {
    r[ro + T_SRC + i] = t[to + T_DST + i]!;
    r[ro + T_DST + i] = t[to + T_SRC + i]!;
  }
  r[ro + T_PROTO] = proto;
  return true;
}

/** nf_ct_tuple_equal() */
export function tupleEqual(a: Int32Array, ao: number, b: Int32Array, bo: number): boolean {
  for (let i = 0; i < TUPLE_WORDS; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Protocols whose tuple has ports (nf_ct_port_tuple_to_nlattr). */
export function hasPorts(protonum: number): boolean {
  return protonum === IPPROTO_TCP || protonum === IPPROTO_UDP || protonum === IPPROTO_UDPLITE || protonum === IPPROTO_SCTP;
}

export const l3numOf = (t: Int32Array, o: number): number => t[o + T_PROTO]! >>> 8;
export const protonumOf = (t: Int32Array, o: number): number => t[o + T_PROTO]! & 0xff;
export { NFPROTO_IPV4, NFPROTO_IPV6 };
