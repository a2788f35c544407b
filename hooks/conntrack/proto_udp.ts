/**
 * UDP and UDP-Lite connection tracking.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_conntrack_proto_udp.c: udp_error,
 * nf_conntrack_udp_packet (a conntrack that sees traffic both ways more than
 * two seconds after it started is a stream: the REPLIED timeout and
 * ASSURED), udplite_error, nf_conntrack_udplite_packet.
 *
 * Proto words: [P_UDP_STREAM_TS] = jiffies + 2 * HZ at the first packet.
 */
import { IPS_ASSURED, IPS_CONFIRMED, IPS_NAT_CLASH, IPS_SEEN_REPLY, NF_ACCEPT, NFPROTO_IPV4 } from '../../core/netfilter.js';
import { M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { inetChecksum } from '../input/spec.js';
import { nfChecksum } from './checksum.js';
import { PROTO_WORDS, checksumHook, type NfConntrack } from './core.js';
import { IPPROTO_UDP } from './tuple.js';

export const P_UDP_STREAM_TS = 1;
const UDP_CT_UNREPLIED = 0;
const UDP_CT_REPLIED = 1;

/** udp_error(): short or malformed header, or a bad checksum (PRE_ROUTING, nf_conntrack_checksum; a zero checksum is none). */
function udpError(ct: NfConntrack, pkt: Packet, dataoff: number, hook: number): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  if (dataoff + 8 > end) return true;
  const len = (d[dataoff + 4]! << 8) | d[dataoff + 5]!;
  if (len > end - dataoff || len < 8) return true;
  if (d[dataoff + 6] === 0 && d[dataoff + 7] === 0) return false;
  return checksumHook(ct, hook) && nfChecksum(d, m[M_NFPROTO]!, m[M_NHOFF]!, dataoff, end, IPPROTO_UDP) !== 0;
}

/** nf_conntrack_udp_packet() */
export function nfConntrackUdpPacket(ct: NfConntrack, e: number, pkt: Packet, dataoff: number, ctinfo: number, hook: number): number {
  if (udpError(ct, pkt, dataoff, hook)) return -NF_ACCEPT;
  const timeouts = ct.nfCtTimeoutLookup(e) ?? ct.sysctl.udpTimeouts;
  const status = ct.status[e]!;
  const ps = e * PROTO_WORDS + P_UDP_STREAM_TS;
  if (!(status & IPS_CONFIRMED)) ct.proto[ps] = (2 * ct.sysctl.hz + ct.jiffies) | 0;
  const len = pkt.meta[M_END]! - pkt.meta[M_NHOFF]!;
  if (status & IPS_SEEN_REPLY) {
    let extra = timeouts[UDP_CT_UNREPLIED]!;
    let stream = false;
    // Still active after two seconds? Extend the timeout.
    if (((ct.proto[ps]! - ct.jiffies) | 0) < 0) {
      extra = timeouts[UDP_CT_REPLIED]!;
      stream = (status & IPS_ASSURED) === 0;
    }
    ct.nfCtRefreshAcct(e, ctinfo, len, extra);
    // Never ASSURED for IPS_NAT_CLASH: they time out soon.
    if (status & IPS_NAT_CLASH) return NF_ACCEPT;
    if (stream) ct.status[e]! |= IPS_ASSURED;
  } else {
    ct.nfCtRefreshAcct(e, ctinfo, len, timeouts[UDP_CT_UNREPLIED]!);
  }
  return NF_ACCEPT;
}

/**
 * udplite_error(): checksum coverage, mandatory checksum, and the partial
 * checksum (nf_checksum_partial is called with IPPROTO_UDP: the pseudo-header
 * carries protocol 17 and the full length skb->len - dataoff).
 */
function udpliteError(ct: NfConntrack, pkt: Packet, dataoff: number, hook: number): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const end = m[M_END]!;
  if (dataoff + 8 > end) return true;
  const udplen = end - dataoff;
  let cscov = (d[dataoff + 4]! << 8) | d[dataoff + 5]!;
  if (cscov === 0) cscov = udplen;
  else if (cscov < 8 || cscov > udplen) return true;
  if (d[dataoff + 6] === 0 && d[dataoff + 7] === 0) return true; // UDP-Lite mandates checksums
  if (!checksumHook(ct, hook)) return false;
  const nh = m[M_NHOFF]!;
  const pf = m[M_NFPROTO]!;
  const a = pf === NFPROTO_IPV4 ? nh + 12 : nh + 8;
  const b = pf === NFPROTO_IPV4 ? nh + 20 : nh + 40;
  const pseudo = (~inetChecksum(d, a, b) & 0xffff) + IPPROTO_UDP + (udplen >>> 16) + (udplen & 0xffff);
  return inetChecksum(d, dataoff, dataoff + cscov, pseudo) !== 0;
}

/** nf_conntrack_udplite_packet(): no two-second rule; a reply makes it assured. */
export function nfConntrackUdplitePacket(ct: NfConntrack, e: number, pkt: Packet, dataoff: number, ctinfo: number, hook: number): number {
  if (udpliteError(ct, pkt, dataoff, hook)) return -NF_ACCEPT;
  const timeouts = ct.nfCtTimeoutLookup(e) ?? ct.sysctl.udpTimeouts;
  const len = pkt.meta[M_END]! - pkt.meta[M_NHOFF]!;
  const status = ct.status[e]!;
  if (status & IPS_SEEN_REPLY) {
    ct.nfCtRefreshAcct(e, ctinfo, len, timeouts[UDP_CT_REPLIED]!);
    if (status & IPS_NAT_CLASH) return NF_ACCEPT;
    ct.status[e]! |= IPS_ASSURED;
  } else {
    ct.nfCtRefreshAcct(e, ctinfo, len, timeouts[UDP_CT_UNREPLIED]!);
  }
  return NF_ACCEPT;
}
