/**
 * ICMP connection tracking: queries become connections, errors become
 * RELATED to the connection of the packet they quote.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_icmp.c:
 * nf_conntrack_icmp_packet (valid_new), nf_conntrack_icmpv4_error
 * (icmp_is_err, then nf_conntrack_inet_error through NfConntrack.inetError).
 */
import { M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import { NF_ACCEPT, NFPROTO_IPV4 } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import { nfChecksum } from './checksum.js';
import { checksumHook, type NfConntrack } from './core.js';
import { ICMP_ADDRESS, ICMP_ECHO, ICMP_INFO_REQUEST, ICMP_TIMESTAMP, IPPROTO_ICMP, NR_ICMP_TYPES, TUPLE_WORDS, T_PORTS } from './tuple.js';

/** icmp_is_err(): destination unreachable, source quench, redirect, time exceeded, parameter problem. */
export function icmpIsErr(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** nf_conntrack_icmp_packet(): only a query type may create a conntrack; refresh to nf_conntrack_icmp_timeout. */
export function nfConntrackIcmpPacket(ct: NfConntrack, e: number, pkt: Packet, ctinfo: number): number {
  const m = pkt.meta;
  if (m[M_NFPROTO] !== NFPROTO_IPV4) return -NF_ACCEPT;
  const type = (ct.tuples[2 * e * TUPLE_WORDS + T_PORTS]! >>> 8) & 0xff;
  if (type !== ICMP_ECHO && type !== ICMP_TIMESTAMP && type !== ICMP_INFO_REQUEST && type !== ICMP_ADDRESS) return -NF_ACCEPT;
  ct.nfCtRefreshAcct(e, ctinfo, m[M_END]! - m[M_NHOFF]!, ct.nfCtTimeoutLookup(e)?.[0] ?? ct.sysctl.icmpTimeout);
  return NF_ACCEPT;
}

/**
 * nf_conntrack_icmpv4_error(): NF_ACCEPT to track the packet normally (a
 * query), NF_ACCEPT with a RELATED conntrack set (an error of a known
 * connection), or -NF_ACCEPT (invalid: short, bad checksum, unknown type,
 * an error of no known connection).
 */
export function nfConntrackIcmpv4Error(ct: NfConntrack, pkt: Packet, dataoff: number, hook: number, zoneId: number, zoneDir: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  if (dataoff + 8 > end) return -NF_ACCEPT;
  if (checksumHook(ct, hook) && nfChecksum(d, NFPROTO_IPV4, m[M_NHOFF]!, dataoff, end, IPPROTO_ICMP)) return -NF_ACCEPT;
  const type = d[dataoff]!;
  if (type > NR_ICMP_TYPES) return -NF_ACCEPT;
  if (!icmpIsErr(type)) return NF_ACCEPT;
  return ct.inetError(pkt, dataoff + 8, zoneId, zoneDir);
}
