/**
 * Checksums as conntrack and NAT compute them on packet bytes.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/utils.c          nf_ip_checksum, nf_ip6_checksum, nf_checksum (CHECKSUM_NONE path:
 *                                  the full sum over the transport, pseudo-header for TCP/UDP/ICMPv6)
 *   include/net/checksum.h         csum_replace4, csum_fold
 *   net/core/utils.c               inet_proto_csum_replace4/16/2 (the !CHECKSUM_PARTIAL branch)
 *   include/net/sctp/checksum.h    sctp_compute_cksum (CRC32c, stored little-endian)
 *
 * Packets in the model come from captures: there is no CHECKSUM_PARTIAL or
 * CHECKSUM_COMPLETE, so every verification is the software one and every
 * NAT update is the incremental RFC 1624 one the kernel applies then.
 */
import { crc32c, inetChecksum } from '../input/spec.js';
import { NFPROTO_IPV4 } from '../../core/netfilter.js';
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './tuple.js';

/** The (unfolded) sum of the big-endian 16-bit words of d[from, to): addresses for a pseudo-header. */
function foldedSum(d: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (d[i]! << 8) | d[i + 1]!;
  return s;
}

/** A 16-bit view of the last packet buffer summed (packet buffers are reused: made again only for another array). */
let view16: Uint16Array = new Uint16Array(0);
let viewOf: Uint8Array | undefined;
/** byteOffset of the viewed array (-1: odd, no 16-bit view). */
let viewAt = -1;

/**
 * csum_partial() + csum_fold() complemented, for verification on the hot
 * path: the ones'-complement sum of d[from, to) plus `initial`, read as
 * 16-bit words of the host (the sum of byte-swapped words is the byte-swapped
 * sum, RFC 1071 §2(B)), falling back to bytes at an odd offset.
 */
function csumFast(d: Uint8Array, from: number, to: number, initial: number): number {
  if (viewOf !== d) {
    viewOf = d;
    viewAt = d.byteOffset & 1 ? -1 : d.byteOffset;
    view16 = viewAt < 0 ? new Uint16Array(0) : new Uint16Array(d.buffer, viewAt, d.byteLength >>> 1);
  }
  if (viewAt < 0 || from & 1) return inetChecksum(d, from, to, initial);
  const v = view16;
  let s = 0;
  let i = from >>> 1;
  const n = (to - from) >>> 1;
  const end = i + n;
  for (; i < end; i++) s += v[i]!;
  if ((to - from) & 1) s += d[to - 1]!; // the last odd byte is the high byte of a big-endian word: the low byte here
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  // Byte-swap back to network order and add the (network-order) initial sum.
  s = ((s & 0xff) << 8) | (s >>> 8);
  s += initial;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * nf_checksum(): 0 when the transport checksum of the packet (network header
 * at `nh`, transport at `dataoff`, data ending at `end`) is right, non-zero
 * otherwise. The pseudo-header length is skb->len - dataoff, as the kernel uses.
 */
export function nfChecksum(d: Uint8Array, pf: number, nh: number, dataoff: number, end: number, protocol: number): number {
  let initial = 0;
  const len = end - dataoff;
  if (pf === NFPROTO_IPV4) {
    // nf_ip_checksum: only TCP and UDP carry a pseudo-header.
    if (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) initial = foldedSum(d, nh + 12, nh + 20) + protocol + (len >>> 16) + (len & 0xffff);
  } else {
    // nf_ip6_checksum: every protocol gets csum_ipv6_magic.
    initial = foldedSum(d, nh + 8, nh + 40) + protocol + (len >>> 16) + (len & 0xffff);
  }
  return csumFast(d, dataoff, end, initial);
}

/** The checksum to store in a header whose field (at `field`) is zero while summing: ICMP (no pseudo-header) and ICMPv6. */
export function recomputeIcmpChecksum(d: Uint8Array, pf: number, nh: number, dataoff: number, end: number, field: number): void {
  d[field] = 0;
  d[field + 1] = 0;
  let c: number;
  if (pf === NFPROTO_IPV4) c = inetChecksum(d, dataoff, end);
  else {
    const len = end - dataoff;
    c = inetChecksum(d, dataoff, end, foldedSum(d, nh + 8, nh + 40) + IPPROTO_ICMPV6 + (len >>> 16) + (len & 0xffff));
  }
  d[field] = c >>> 8;
  d[field + 1] = c & 0xff;
}

/** csum_fold(csum_add(csum_sub(~csum_unfold(check), from), to)) on the 16-bit field at `at`: one 32-bit word replaced. */
export function csumReplace4(d: Uint8Array, at: number, from: number, to: number): void {
  let s = ~((d[at]! << 8) | d[at + 1]!) & 0xffff;
  s += (~from >>> 16) & 0xffff;
  s += ~from & 0xffff;
  s += to >>> 16 & 0xffff;
  s += to & 0xffff;
  store(d, at, s);
}

/** inet_proto_csum_replace2(): one 16-bit word replaced. */
export function csumReplace2(d: Uint8Array, at: number, from: number, to: number): void {
  let s = ~((d[at]! << 8) | d[at + 1]!) & 0xffff;
  s += ~from & 0xffff;
  s += to & 0xffff;
  store(d, at, s);
}

/**
 * inet_proto_csum_replace16(): the four 32-bit words at `fromAt` in `fromBytes`
 * replaced by the four host-order words `to[toOff..]`.
 */
export function csumReplace16(d: Uint8Array, at: number, fromBytes: Uint8Array, fromAt: number, to: Int32Array, toOff: number): void {
  let s = ~((d[at]! << 8) | d[at + 1]!) & 0xffff;
  for (let i = 0; i < 16; i += 2) s += ~((fromBytes[fromAt + i]! << 8) | fromBytes[fromAt + i + 1]!) & 0xffff;
  for (let i = 0; i < 4; i++) {
    const w = to[toOff + i]!;
    s += (w >>> 16) & 0xffff;
    s += w & 0xffff;
  }
  store(d, at, s);
}

/** csum_fold(): fold the 32-bit sum, complement, store big-endian. */
function store(d: Uint8Array, at: number, sum: number): void {
  let s = sum;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  d[at] = c >>> 8;
  d[at + 1] = c & 0xff;
}

/** sctp_compute_cksum(): the CRC32c of the SCTP packet with its checksum field taken as zero, as stored on the wire (little-endian). */
export function sctpComputeCksum(d: Uint8Array, dataoff: number, end: number): number {
  const saved0 = d[dataoff + 8]!, saved1 = d[dataoff + 9]!, saved2 = d[dataoff + 10]!, saved3 = d[dataoff + 11]!;
  d[dataoff + 8] = d[dataoff + 9] = d[dataoff + 10] = d[dataoff + 11] = 0;
  const crc = crc32c(d, dataoff, end);
  d[dataoff + 8] = saved0;
  d[dataoff + 9] = saved1;
  d[dataoff + 10] = saved2;
  d[dataoff + 11] = saved3;
  return crc;
}

/** The SCTP checksum field read as sctp_compute_cksum() returns it. */
export function sctpStoredCksum(d: Uint8Array, dataoff: number): number {
  return (d[dataoff + 8]! | (d[dataoff + 9]! << 8) | (d[dataoff + 10]! << 16) | (d[dataoff + 11]! << 24)) >>> 0;
}

/** Stores a CRC32c in the SCTP checksum field (little-endian, as the kernel's __le32). */
export function sctpStoreCksum(d: Uint8Array, dataoff: number, crc: number): void {
  d[dataoff + 8] = crc & 0xff;
  d[dataoff + 9] = (crc >>> 8) & 0xff;
  d[dataoff + 10] = (crc >>> 16) & 0xff;
  d[dataoff + 11] = crc >>> 24;
}

/** The TCP checksum computed whole (nf_nat_csum_recalc's software path): the field at th + 16 zeroed, the sum nfChecksum() gives then stored. */
export function recomputeTcpChecksum(d: Uint8Array, pf: number, nh: number, th: number, end: number): void {
  d[th + 16] = 0;
  d[th + 17] = 0;
  const c = nfChecksum(d, pf, nh, th, end, IPPROTO_TCP);
  d[th + 16] = c >>> 8;
  d[th + 17] = c & 0xff;
}
