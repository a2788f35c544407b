/**
 * What the IPv6 header matches share (net/ipv6/exthdrs_core.c
 * ipv6_find_hdr with a target, include/net/ipv6.h; Linux 6.18): the walk to
 * a given extension header, the header length macros and the address test.
 */
import { NEXTHDR_AUTH, NEXTHDR_FRAGMENT, NEXTHDR_NONE, NEXTHDR_ROUTING, ipv6ExtHdr } from '../vm/packet.js';
import { headerPointer, type XtActionParam } from './xt.js';

export const ENOENT = -2;
export const EBADMSG = -74;

/** The result of ipv6FindHdrTarget (reused: the walk allocates nothing). */
export interface FindOut {
  /** *offset: the header's offset from the network header. */
  offset: number;
  /** *fragoff: the fragment offset field (bytes) of a fragment header passed. */
  fragoff: number;
}

/**
 * ipv6_find_hdr(skb, &offset, target, &fragoff, NULL) with target >= 0:
 * the header `target` (an extension header or the upper-layer protocol),
 * or ENOENT when the chain ends first (or a later fragment hides the rest),
 * EBADMSG when a header cannot be read. Offsets are from the network header.
 */
export function ipv6FindHdrTarget(par: XtActionParam, target: number, out: FindOut): number {
  const d = par.d;
  const nh = par.nh;
  const end = par.end;
  let start = 40;
  let nexthdr = d[nh + 6]!;
  out.fragoff = 0;
  let found = false;
  do {
    found = nexthdr === target;
    if (!ipv6ExtHdr(nexthdr) || nexthdr === NEXTHDR_NONE) {
      if (found) break;
      return ENOENT;
    }
    if (nh + start + 2 > end) return EBADMSG;
    if (nexthdr === NEXTHDR_ROUTING && nh + start + 4 > end) return EBADMSG;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      if (nh + start + 4 > end) return EBADMSG;
      const fo = ((d[nh + start + 2]! << 8) | d[nh + start + 3]!) & ~0x7;
      if (fo) {
        if (!found) return ENOENT;
        out.fragoff = fo;
        break;
      }
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) hdrlen = ipv6Authlen(d[nh + start + 1]!);
    else hdrlen = ipv6Optlen(d[nh + start + 1]!);
    if (!found) {
      nexthdr = d[nh + start]!;
      start += hdrlen;
    }
  } while (!found);
  out.offset = start;
  return nexthdr;
}

/** ipv6_optlen(): (hdrlen + 1) << 3. */
export function ipv6Optlen(hdrlen: number): number {
  return (hdrlen + 1) << 3;
}

/** ipv6_authlen(): (hdrlen + 2) << 2. */
export function ipv6Authlen(hdrlen: number): number {
  return (hdrlen + 2) << 2;
}

/** ipv6_masked_addr_cmp(): true when the 16 bytes at `at` differ from `addr` under `mask`. */
export function maskedAddrDiffers(d: Uint8Array, at: number, mask: Uint8Array, addr: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (((d[at + i]! ^ addr[i]!) & mask[i]!) !== 0) return true;
  return false;
}

/**
 * How the ip6t_* header matches reach their header: ipv6_find_hdr(target),
 * then skb_header_pointer of `len` bytes at it. The absolute offset, or -1:
 * absent (ENOENT), or a walk error or a header cut short, which hotdrop.
 * `out.offset` holds the header's offset from the network header.
 */
export function findExtHeader(par: XtActionParam, target: number, len: number, out: FindOut): number {
  const err = ipv6FindHdrTarget(par, target, out);
  if (err < 0) {
    if (err !== ENOENT) par.hotdrop = true;
    return -1;
  }
  const h = headerPointer(par, out.offset, len);
  if (h < 0) par.hotdrop = true;
  return h;
}

/**
 * ipv6_skip_exthdr() (net/ipv6/exthdrs_core.c) from offset `start` (from
 * the network header) with next header `out.nexthdr`: skips extension
 * headers (AH by its length), stops at a non-first fragment's fragment
 * header; leaves the protocol reached in `out.nexthdr` and returns the
 * offset of its header, or -1 (NEXTHDR_NONE, a header past the end).
 */
export function ipv6SkipExthdrFrom(par: XtActionParam, start: number, out: { nexthdr: number }): number {
  const d = par.d;
  let nexthdr = out.nexthdr;
  while (ipv6ExtHdr(nexthdr)) {
    if (nexthdr === NEXTHDR_NONE) return -1;
    const hp = headerPointer(par, start, 2);
    if (hp < 0) return -1;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      const fp = headerPointer(par, start + 2, 2);
      if (fp < 0) return -1;
      if (((d[fp]! << 8) | d[fp + 1]!) & ~0x7) break;
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) hdrlen = ipv6Authlen(d[hp + 1]!);
    else hdrlen = ipv6Optlen(d[hp + 1]!);
    nexthdr = d[hp]!;
    start += hdrlen;
  }
  out.nexthdr = nexthdr;
  return start;
}
