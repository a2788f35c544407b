/**
 * The bytes of the packets the node's own stack sends: IPv4 and IPv6
 * headers, ICMP, ICMPv6 and TCP with their checksums, as the kernel's
 * ip_append_data / ip_push_pending_frames (__ip_make_skb), ip6_append_data,
 * ip_send_unicast_reply and nf_reject_iphdr_put / nf_reject_ip6hdr_put
 * leave them once ip_local_out() takes them (tot_len set, ip_send_check()
 * done, transport checksum complete).
 */
import { inetChecksum, pseudoHeaderSum } from '../input/spec.js';
import { IPPROTO_ICMP, IPPROTO_UDP } from '../conntrack/tuple.js';

export { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../conntrack/tuple.js';
/** IP_DF in frag_off. */
export const IP_DF = 0x4000;

// ICMP types and codes (include/uapi/linux/icmp.h, icmpv6.h).
export const ICMP_ECHOREPLY = 0;
export const ICMP_TIMESTAMPREPLY = 14;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_REDIRECT = 5;
export const ICMP_REDIR_HOST = 1;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PKT_TOOBIG = 2;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_NOROUTE = 0;
export const ICMPV6_ADM_PROHIBITED = 1;
export const ICMPV6_NOT_NEIGHBOUR = 2;
export const ICMPV6_PORT_UNREACH = 4;
export const ICMPV6_PARAMPROB = 4;
export const ICMPV6_UNK_NEXTHDR = 1;
export const ICMPV6_HDR_FIELD = 0;
export const ICMPV6_UNK_OPTION = 2;

export interface Ipv4Fields {
  tos: number;
  id: number;
  /** frag_off with the flags (IP_DF). */
  fragOff: number;
  ttl: number;
  protocol: number;
  /** Host-order words. */
  saddr: number;
  daddr: number;
}

/** A 20-byte IPv4 header (no options) for `payload` bytes, checksummed, at b[0..20). */
export function putIpv4(b: Uint8Array, f: Ipv4Fields, payload: number, opts?: Uint8Array): void {
  const hl = 20 + (opts?.length ?? 0);
  const tot = hl + payload;
  b[0] = 0x40 | (hl >> 2);
  b[1] = f.tos & 0xff;
  b[2] = tot >>> 8;
  b[3] = tot & 0xff;
  b[4] = (f.id >>> 8) & 0xff;
  b[5] = f.id & 0xff;
  b[6] = (f.fragOff >>> 8) & 0xff;
  b[7] = f.fragOff & 0xff;
  b[8] = f.ttl & 0xff;
  b[9] = f.protocol;
  b[10] = 0;
  b[11] = 0;
  putU32(b, 12, f.saddr);
  putU32(b, 16, f.daddr);
  if (opts) b.set(opts, 20);
  const c = inetChecksum(b, 0, hl);
  b[10] = c >>> 8;
  b[11] = c & 0xff;
}

export interface Ipv6Fields {
  /** Traffic class. */
  tclass: number;
  flowlabel: number;
  nexthdr: number;
  hoplimit: number;
  /** 16 bytes each. */
  saddr: Uint8Array;
  daddr: Uint8Array;
}

/** A 40-byte IPv6 header for `payload` bytes, at b[0..40). */
export function putIpv6(b: Uint8Array, f: Ipv6Fields, payload: number): void {
  const w0 = (0x60000000 | ((f.tclass & 0xff) << 20) | (f.flowlabel & 0xfffff)) >>> 0;
  putU32(b, 0, w0);
  b[4] = payload >>> 8;
  b[5] = payload & 0xff;
  b[6] = f.nexthdr;
  b[7] = f.hoplimit & 0xff;
  b.set(f.saddr, 8);
  b.set(f.daddr, 24);
}

export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * Stores the transport checksum of the packet `b` (network header at 0,
 * transport at `th`, ending at b.length) at `th + field`: with the
 * pseudo-header for TCP, UDP and everything over IPv6, without it for ICMP.
 */
export function putTransportChecksum(b: Uint8Array, v6: boolean, th: number, protocol: number, field: number): void {
  b[th + field] = 0;
  b[th + field + 1] = 0;
  const len = b.length - th;
  let initial = 0;
  if (v6) initial = pseudoHeaderSum(b.subarray(8, 24), b.subarray(24, 40), protocol, len);
  else if (protocol !== IPPROTO_ICMP) initial = pseudoHeaderSum(b.subarray(12, 16), b.subarray(16, 20), protocol, len);
  let c = inetChecksum(b, th, b.length, initial);
  // A UDP checksum of 0 is sent as 0xffff (RFC 768); TCP and ICMP keep 0.
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff;
  b[th + field] = c >>> 8;
  b[th + field + 1] = c & 0xff;
}

/** struct tcphdr of an RST: the ports, seq, ack_seq and the flags (RST, +ACK), window 0, doff 5. */
export function putTcpRst(b: Uint8Array, th: number, sport: number, dport: number, seq: number, ackSeq: number, ack: boolean): void {
  b[th] = sport >>> 8;
  b[th + 1] = sport & 0xff;
  b[th + 2] = dport >>> 8;
  b[th + 3] = dport & 0xff;
  putU32(b, th + 4, seq >>> 0);
  putU32(b, th + 8, ackSeq >>> 0);
  b[th + 12] = 5 << 4;
  b[th + 13] = 0x04 | (ack ? 0x10 : 0);
  b.fill(0, th + 14, th + 20);
}
