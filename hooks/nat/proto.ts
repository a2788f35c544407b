/**
 * Rewriting packets for NAT, and the NAT hook functions.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_nat_proto.c:
 *   __udp_manip_pkt / udp_manip_pkt / udplite_manip_pkt, sctp_manip_pkt, tcp_manip_pkt,
 *   icmp_manip_pkt, icmpv6_manip_pkt, gre_manip_pkt, l4proto_manip_pkt,
 *   nf_nat_ipv4_manip_pkt, nf_nat_ipv6_manip_pkt, nf_nat_manip_pkt, nf_csum_update,
 *   nf_nat_icmp_reply_translation, nf_nat_icmpv6_reply_translation,
 *   nf_nat_ipv4_fn / nf_nat_ipv6_fn and the per-hook wrappers (pre_routing: the
 *   route is dropped when the destination changed; local_fn: ip_route_me_harder
 *   when the destination differs from the reply's source).
 *
 * Checksums are updated incrementally (csum_replace4, inet_proto_csum_replace*)
 * as the kernel does for packets without CHECKSUM_PARTIAL: the IPv4 header
 * checksum, the TCP/UDP/ICMPv6 pseudo-header part and the port or id; a UDP
 * checksum of zero (none) stays zero and a result of zero becomes 0xffff
 * (CSUM_MANGLED_0); SCTP's CRC32c is recomputed; ICMP errors get their
 * checksum recomputed after the quoted packet is rewritten. Not modelled:
 * xfrm re-lookups, socket early demux (nf_nat_ipv4_local_in's skb_orphan).
 */
import { IPS_DST_NAT, IPS_NAT_DONE_MASK, IPS_NAT_MASK, IPS_SRC_NAT, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_IS_REPLY, IP_CT_RELATED, IP_CT_RELATED_REPLY, NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { M_CT_ID, M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { csumReplace16, csumReplace2, csumReplace4, nfChecksum, recomputeIcmpChecksum, sctpComputeCksum, sctpStoreCksum } from '../conntrack/checksum.js';
import { ctinfoOf } from '../conntrack/core.js';
import {
  ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMP_REDIRECT, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
  IPPROTO_UDP, IPPROTO_UDPLITE, NDISC_REDIRECT, T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS, ipv6SkipExthdr, l4, nfCtInvertTuple, word,
} from '../conntrack/tuple.js';
import { NatDrop, type NfNat } from './core.js';

// enum nf_nat_manip_type
export const NF_NAT_MANIP_SRC = 0;
export const NF_NAT_MANIP_DST = 1;

/** HOOK2MANIP(): source NAT on POST_ROUTING and LOCAL_IN, destination NAT on PRE_ROUTING and LOCAL_OUT. */
export function hook2manip(hook: number): number {
  return hook === NF_INET_POST_ROUTING || hook === NF_INET_LOCAL_IN ? NF_NAT_MANIP_SRC : NF_NAT_MANIP_DST;
}

/** Scratch slot for the target tuple of a manip (in NfNat.t; the setup slots are idle when packets are rewritten). */
const TARGET = 0;

function putWord(d: Uint8Array, at: number, w: number): void {
  d[at] = w >>> 24;
  d[at + 1] = (w >>> 16) & 0xff;
  d[at + 2] = (w >>> 8) & 0xff;
  d[at + 3] = w & 0xff;
}

/** nf_csum_update(): the pseudo-header part of a transport checksum at `check` for the address the manip changes. */
function nfCsumUpdate(d: Uint8Array, pf: number, iphdroff: number, check: number, t: Int32Array, to: number, maniptype: number): void {
  const src = maniptype === NF_NAT_MANIP_SRC;
  if (pf === NFPROTO_IPV4) csumReplace4(d, check, word(d, iphdroff + (src ? 12 : 16)), t[to + (src ? T_SRC : T_DST)]!);
  else csumReplace16(d, check, d, iphdroff + (src ? 8 : 24), t, to + (src ? T_SRC : T_DST));
}

/** The echo id of an ICMP/ICMPv6 header at `hdroff`, with its checksum (inet_proto_csum_replace2). */
function setIcmpId(d: Uint8Array, hdroff: number, id: number): void {
  csumReplace2(d, hdroff + 2, (d[hdroff + 4]! << 8) | d[hdroff + 5]!, id);
  d[hdroff + 4] = id >>> 8;
  d[hdroff + 5] = id & 0xff;
}

/**
 * l4proto_manip_pkt(): the transport part of a manip (by the target's
 * protocol). `end` is the end of the packet data (skb->len); false when the
 * header needed is not there (skb_ensure_writable failing: NF_DROP).
 */
function l4protoManipPkt(d: Uint8Array, end: number, pf: number, iphdroff: number, hdroff: number, t: Int32Array, to: number, maniptype: number): boolean {
  const src = maniptype === NF_NAT_MANIP_SRC;
  const ports = t[to + T_PORTS]!;
  switch (t[to + T_PROTO]! & 0xff) {
    case IPPROTO_TCP: {
      // An inner header in an ICMP error may have only the 8 bytes conntrack guarantees: no checksum then.
      const hdrsize = end >= hdroff + 20 ? 20 : 8;
      if (hdroff + hdrsize > end) return false;
      const at = hdroff + (src ? 0 : 2);
      const oldport = (d[at]! << 8) | d[at + 1]!;
      const newport = src ? ports >>> 16 : ports & 0xffff;
      d[at] = newport >>> 8;
      d[at + 1] = newport & 0xff;
      if (hdrsize < 20) return true;
      nfCsumUpdate(d, pf, iphdroff, hdroff + 16, t, to, maniptype);
      csumReplace2(d, hdroff + 16, oldport, newport);
      return true;
    }
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE: {
      if (hdroff + 8 > end) return false;
      const at = hdroff + (src ? 0 : 2);
      const newport = src ? ports >>> 16 : ports & 0xffff;
      // UDP without a checksum (zero) keeps none; UDP-Lite always has one.
      if ((t[to + T_PROTO]! & 0xff) === IPPROTO_UDPLITE || d[hdroff + 6] !== 0 || d[hdroff + 7] !== 0) {
        nfCsumUpdate(d, pf, iphdroff, hdroff + 6, t, to, maniptype);
        csumReplace2(d, hdroff + 6, (d[at]! << 8) | d[at + 1]!, newport);
        if (d[hdroff + 6] === 0 && d[hdroff + 7] === 0) d[hdroff + 6] = d[hdroff + 7] = 0xff; // CSUM_MANGLED_0
      }
      d[at] = newport >>> 8;
      d[at + 1] = newport & 0xff;
      return true;
    }
    case IPPROTO_SCTP: {
      const hdrsize = end >= hdroff + 12 ? 12 : 8;
      if (hdroff + hdrsize > end) return false;
      const at = hdroff + (src ? 0 : 2);
      const newport = src ? ports >>> 16 : ports & 0xffff;
      d[at] = newport >>> 8;
      d[at + 1] = newport & 0xff;
      if (hdrsize < 12) return true;
      sctpStoreCksum(d, hdroff, sctpComputeCksum(d, hdroff, end));
      return true;
    }
    case IPPROTO_ICMP: {
      if (hdroff + 8 > end) return false;
      const type = d[hdroff]!;
      // Only the query types carry an id (echo, timestamp, info, address mask and their replies).
      if (!(type === 0 || type === 8 || (type >= 13 && type <= 18))) return true;
      setIcmpId(d, hdroff, ports >>> 16);
      return true;
    }
    case IPPROTO_ICMPV6: {
      if (hdroff + 8 > end) return false;
      nfCsumUpdate(d, pf, iphdroff, hdroff + 2, t, to, maniptype);
      const type = d[hdroff]!;
      if (type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) setIcmpId(d, hdroff, ports >>> 16);
      return true;
    }
    case IPPROTO_GRE: {
      if (hdroff + 8 > end) return false;
      if (maniptype !== NF_NAT_MANIP_DST) return true; // the source key is not in the packet
      const version = d[hdroff + 1]! & 0x07;
      if (version === 0) return true; // GREv0 is not NATed
      if (version !== 1) return false;
      d[hdroff + 6] = (ports >>> 8) & 0xff; // call_id = dst key
      d[hdroff + 7] = ports & 0xff;
      return true;
    }
    default:
      return true; // unknown protocol: no error, passed unmodified
  }
}

/** nf_nat_ipv4_manip_pkt(): transport part, then the address with the header checksum. */
function nfNatIpv4ManipPkt(d: Uint8Array, end: number, iphdroff: number, t: Int32Array, to: number, maniptype: number): boolean {
  if (iphdroff + 20 > end) return false;
  const hdroff = iphdroff + (d[iphdroff]! & 0x0f) * 4;
  if (!l4protoManipPkt(d, end, NFPROTO_IPV4, iphdroff, hdroff, t, to, maniptype)) return false;
  const at = iphdroff + (maniptype === NF_NAT_MANIP_SRC ? 12 : 16);
  const neu = t[to + (maniptype === NF_NAT_MANIP_SRC ? T_SRC : T_DST)]!;
  csumReplace4(d, iphdroff + 10, word(d, at), neu);
  putWord(d, at, neu);
  return true;
}

/** nf_nat_ipv6_manip_pkt(): transport part (not for non-first fragments), then the address (no header checksum). */
function nfNatIpv6ManipPkt(d: Uint8Array, end: number, iphdroff: number, t: Int32Array, to: number, maniptype: number): boolean {
  if (iphdroff + 40 > end) return false;
  const hdroff = ipv6SkipExthdr(d, iphdroff + 40, d[iphdroff + 6]!, end);
  if (hdroff >= 0 && (l4.fragOff & ~0x7) === 0 && !l4protoManipPkt(d, end, 10, iphdroff, hdroff, t, to, maniptype)) return false;
  const at = iphdroff + (maniptype === NF_NAT_MANIP_SRC ? 8 : 24);
  const w = to + (maniptype === NF_NAT_MANIP_SRC ? T_SRC : T_DST);
  for (let i = 0; i < 4; i++) putWord(d, at + 4 * i, t[w + i]!);
  return true;
}

function manipPkt(d: Uint8Array, end: number, pf: number, iphdroff: number, t: Int32Array, to: number, maniptype: number): boolean {
  return pf === NFPROTO_IPV4 ? nfNatIpv4ManipPkt(d, end, iphdroff, t, to, maniptype) : nfNatIpv6ManipPkt(d, end, iphdroff, t, to, maniptype);
}

/** nf_nat_manip_pkt(): the packet made to look like the inverse of the other direction's tuple. */
export function nfNatManipPkt(nat: NfNat, pkt: Packet, e: number, mtype: number, dir: number): number {
  const tu = nat.ct.tuples;
  nfCtInvertTuple(tu, (2 * e + (1 - dir)) * TUPLE_WORDS, nat.t, TARGET);
  const m = pkt.meta;
  if (manipPkt(pkt.data, m[M_END]!, m[M_NFPROTO]!, m[M_NHOFF]!, nat.t, TARGET, mtype)) return NF_ACCEPT;
  nat.dropped = NatDrop.MANIP;
  return NF_DROP;
}

/**
 * nf_nat_icmp_reply_translation() / nf_nat_icmpv6_reply_translation(): an
 * ICMP error RELATED to a NATed connection: the quoted packet is rewritten
 * as the opposite manip, the ICMP checksum recomputed, then the outer header
 * rewritten. 1 to accept, 0 to drop (short, bad checksum, a redirect of a
 * NATed connection).
 */
function nfNatIcmpReplyTranslation(nat: NfNat, pkt: Packet, e: number, ctinfo: number, hook: number, hdrlen: number): number {
  const ct = nat.ct;
  const m = pkt.meta;
  const d = pkt.data;
  const pf = m[M_NFPROTO]!;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  const v4 = pf === NFPROTO_IPV4;
  const dir = ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
  const manip = hook2manip(hook);
  nat.dropped = NatDrop.ICMP;
  if (hdrlen + 8 + (v4 ? 20 : 40) > end) return 0;
  if (nfChecksum(d, pf, nh, hdrlen, end, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) return 0;
  const st = ct.status[e]!;
  if (d[hdrlen] === (v4 ? ICMP_REDIRECT : NDISC_REDIRECT)) {
    nat.dropped = NatDrop.ICMP_REDIRECT;
    if ((st & IPS_NAT_DONE_MASK) !== IPS_NAT_DONE_MASK) return 0;
    if (st & IPS_NAT_MASK) return 0;
    nat.dropped = NatDrop.ICMP;
  }
  let statusbit = manip === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
  if (dir === IP_CT_DIR_REPLY) statusbit ^= IPS_NAT_MASK;
  if (!(st & statusbit)) return 1;
  // The quoted packet: the other direction's tuple itself, the opposite manip.
  const other = (2 * e + (1 - dir)) * TUPLE_WORDS;
  if (!manipPkt(d, end, pf, hdrlen + 8, ct.tuples, other, manip === NF_NAT_MANIP_SRC ? NF_NAT_MANIP_DST : NF_NAT_MANIP_SRC)) return 0;
  recomputeIcmpChecksum(d, pf, nh, hdrlen, end, hdrlen + 2);
  nat.dropped = NatDrop.MANIP;
  // The outer header: like the reply to an incoming packet.
  nfCtInvertTuple(ct.tuples, other, nat.t, TARGET);
  nat.t[TARGET + T_PROTO] = (nat.t[TARGET + T_PROTO]! & 0xff00) | (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  return manipPkt(d, end, pf, nh, nat.t, TARGET, manip) ? 1 : 0;
}

/**
 * The NAT core's hook function at one of its four hooks (nf_nat_ipv4_ops /
 * nf_nat_ipv6_ops: PRE_ROUTING and LOCAL_OUT at NF_IP_PRI_NAT_DST -100,
 * POST_ROUTING and LOCAL_IN at NF_IP_PRI_NAT_SRC 100): ICMP errors RELATED to
 * a connection are translated; everything else goes through nf_nat_inet_fn
 * with `lookup` running the nat table's chain of this hook. Sets
 * nat.rerouteNeeded as the wrappers decide: PRE_ROUTING when the destination
 * changed (skb_dst_drop: route again), LOCAL_OUT when the connection's
 * destination differs from its reply's source (ip_route_me_harder).
 */
export function nfNatFn(nat: NfNat, pkt: Packet, hook: number, outIfindex: number, lookup?: (pkt: Packet) => number): number {
  const m = pkt.meta;
  const d = pkt.data;
  nat.rerouteNeeded = false;
  nat.dropped = NatDrop.NONE;
  const e = m[M_CT_ID]!;
  if (e < 0) return NF_ACCEPT;
  const pf = m[M_NFPROTO]!;
  const nh = m[M_NHOFF]!;
  const daddrAt = nh + (pf === NFPROTO_IPV4 ? 16 : 24);
  const daddr0 = word(d, daddrAt), daddr3 = pf === NFPROTO_IPV4 ? 0 : word(d, daddrAt + 12);
  const daddr1 = pf === NFPROTO_IPV4 ? 0 : word(d, daddrAt + 4), daddr2 = pf === NFPROTO_IPV4 ? 0 : word(d, daddrAt + 8);
  const ctinfo = ctinfoOf(m);
  let ret: number;
  let icmp = -1;
  if (ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY) {
    if (pf === NFPROTO_IPV4) {
      if (d[nh + 9] === IPPROTO_ICMP) icmp = nh + (d[nh]! & 0x0f) * 4;
    } else {
      const hdrlen = ipv6SkipExthdr(d, nh + 40, d[nh + 6]!, m[M_END]!);
      if (hdrlen >= 0 && l4.protonum === IPPROTO_ICMPV6) icmp = hdrlen;
    }
  }
  if (icmp >= 0) ret = nfNatIcmpReplyTranslation(nat, pkt, e, ctinfo, hook, icmp) ? NF_ACCEPT : NF_DROP;
  else ret = nat.nfNatInetFn(pkt, hook, outIfindex, lookup);
  if (ret !== NF_ACCEPT) return ret;
  if (hook === NF_INET_PRE_ROUTING) {
    nat.rerouteNeeded = word(d, daddrAt) !== daddr0 || (pf !== NFPROTO_IPV4 && (word(d, daddrAt + 4) !== daddr1 || word(d, daddrAt + 8) !== daddr2 || word(d, daddrAt + 12) !== daddr3));
  } else if (hook === NF_INET_LOCAL_OUT) {
    const e2 = m[M_CT_ID]!;
    if (e2 >= 0) {
      const dir = ctinfoOf(m) >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
      const tu = nat.ct.tuples;
      const a = (2 * e2 + dir) * TUPLE_WORDS + T_DST, b = (2 * e2 + 1 - dir) * TUPLE_WORDS + T_SRC;
      nat.rerouteNeeded = tu[a] !== tu[b] || tu[a + 1] !== tu[b + 1] || tu[a + 2] !== tu[b + 2] || tu[a + 3] !== tu[b + 3];
    }
  }
  return ret;
}
