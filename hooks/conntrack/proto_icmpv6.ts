/**
 * ICMPv6 connection tracking.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_icmpv6.c:
 * nf_conntrack_icmpv6_packet (valid_new for unconfirmed conntracks),
 * nf_conntrack_icmpv6_error (noct_valid_new: MLD and neighbour discovery are
 * untracked; errors are RELATED through nf_conntrack_inet_error),
 * nf_conntrack_icmpv6_redirect.
 */
import { M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NF_ACCEPT, NFPROTO_IPV6 } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import { nfChecksum } from './checksum.js';
import { checksumHook, setNoCt, type NfConntrack } from './core.js';
import { ICMPV6_ECHO_REQUEST, ICMPV6_NI_QUERY, IPPROTO_ICMPV6, NDISC_REDIRECT, TUPLE_WORDS, T_PORTS } from './tuple.js';

/** noct_valid_new: MLD query/report/reduction, router and neighbour solicitation/advertisement, MLDv2 report, MRD advertisement/solicitation. */
function noctValidNew(type: number): boolean {
  return (type >= 130 && type <= 136) || type === 143 || type === 151 || type === 152;
}

/** nf_conntrack_icmpv6_packet() */
export function nfConntrackIcmpv6Packet(ct: NfConntrack, e: number, pkt: Packet, ctinfo: number): number {
  const m = pkt.meta;
  if (m[M_NFPROTO] !== NFPROTO_IPV6) return -NF_ACCEPT;
  if (!ct.isConfirmed(e)) {
    const type = (ct.tuples[2 * e * TUPLE_WORDS + T_PORTS]! >>> 8) & 0xff;
    if (type !== ICMPV6_ECHO_REQUEST && type !== ICMPV6_NI_QUERY) return -NF_ACCEPT;
  }
  ct.nfCtRefreshAcct(e, ctinfo, m[M_END]! - m[M_NHOFF]!, ct.nfCtTimeoutLookup(e)?.[0] ?? ct.sysctl.icmpv6Timeout);
  return NF_ACCEPT;
}

/** nf_conntrack_icmpv6_redirect(): a redirect quoting a packet of a known connection is RELATED. */
function nfConntrackIcmpv6Redirect(ct: NfConntrack, pkt: Packet, dataoff: number, zoneId: number, zoneDir: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  // struct rd_msg: icmp6hdr, target, destination (40 bytes)
  if (dataoff + 40 > end) return -NF_ACCEPT;
  if (d[dataoff + 1] !== 0) return NF_ACCEPT;
  // Hop limit 255 and a link-local source (fe80::/10).
  if (d[nh + 7] !== 255 || d[nh + 8] !== 0xfe || (d[nh + 9]! & 0xc0) !== 0x80) return -NF_ACCEPT;
  const opt = dataoff + 40;
  if (opt + 2 > end || d[opt + 1] === 0) return -NF_ACCEPT; // redirect without options
  if (d[opt] !== 4) return NF_ACCEPT; // ND_OPT_REDIRECT_HDR
  return ct.inetError(pkt, opt + 8, zoneId, zoneDir);
}

/** nf_conntrack_icmpv6_error(): as nfConntrackIcmpv4Error, plus the untracked neighbour discovery and MLD types. */
export function nfConntrackIcmpv6Error(ct: NfConntrack, pkt: Packet, dataoff: number, hook: number, zoneId: number, zoneDir: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  if (dataoff + 8 > end) return -NF_ACCEPT;
  if (checksumHook(ct, hook) && nfChecksum(d, NFPROTO_IPV6, m[M_NHOFF]!, dataoff, end, IPPROTO_ICMPV6)) return -NF_ACCEPT;
  const type = d[dataoff]!;
  if (noctValidNew(type)) {
    setNoCt(m, true);
    return NF_ACCEPT;
  }
  if (type === NDISC_REDIRECT) return nfConntrackIcmpv6Redirect(ct, pkt, dataoff, zoneId, zoneDir);
  if (type >= 128) return NF_ACCEPT; // not an error message
  return ct.inetError(pkt, dataoff + 8, zoneId, zoneDir);
}
