/**
 * REDIRECT: destination NAT to the node itself.
 *
 * Mirrors (Linux 6.18) net/netfilter/nf_nat_redirect.c: nf_nat_redirect
 * (the rule's flags and port range, MAP_IPS to one address),
 * nf_nat_redirect_ipv4 (LOCAL_OUT: 127.0.0.1; else the first address of the
 * input device's ifa_list, NF_DROP when it has none),
 * nf_nat_redirect_ipv6 (LOCAL_OUT: ::1; else the first address of the input
 * device that nf_nat_redirect_ipv6_usable accepts: not v4-mapped, not
 * tentative unless optimistic, and of the destination's scope class when the
 * destination is not global).
 * The caller passes the input device's addresses in the kernel's list order.
 */
import { M_CT_ID, M_NHOFF } from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP, NF_INET_LOCAL_OUT } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import { NF_NAT_MANIP_DST, type NfNat, type NfNatRange2 } from './core.js';

const INADDR_LOOPBACK = 0x7f000001;
/** nf_nat_redirect(): DNAT to `newdst` (host-order words, IPv4 in word 0) with the rule's ports and flags. */
function nfNatRedirect(nat: NfNat, pkt: Packet, range: NfNatRange2, newdst: ArrayLike<number>): number {
  const e = pkt.meta[M_CT_ID]!;
  if (e < 0) return NF_ACCEPT;
  return nat.setupToAddress(pkt, e, range, newdst, NF_NAT_MANIP_DST);
}

const v4dst = [0, 0, 0, 0];

/** nf_nat_redirect_ipv4(): `inAddrs` is the input device's ifa_list (ifa_local, host order). */
export function nfNatRedirectIpv4(nat: NfNat, pkt: Packet, range: NfNatRange2, hook: number, inAddrs: readonly number[]): number {
  let newdst: number;
  if (hook === NF_INET_LOCAL_OUT) newdst = INADDR_LOOPBACK;
  else {
    newdst = inAddrs.length ? inAddrs[0]! : 0;
    if (!newdst) return NF_DROP;
  }
  v4dst[0] = newdst;
  return nfNatRedirect(nat, pkt, range, v4dst);
}

/** An IPv6 address of the input device (struct inet6_ifaddr) as REDIRECT looks at it. */
export interface RedirectIfaddr6 {
  readonly addr: ArrayLike<number>;
  readonly tentative?: boolean;
  readonly optimistic?: boolean;
}

/** The IPV6_ADDR_SCOPE_MASK bits of __ipv6_addr_type(): loopback 0x10, link-local 0x20, site-local 0x40, v4-compatible 0x80; 0 for global. */
function ipv6AddrScopeBits(a: ArrayLike<number>): number {
  const w0 = a[0]! >>> 0;
  if (w0 >>> 24 === 0xff) {
    switch ((w0 >>> 16) & 0x0f) {
      case 1: return 0x10;
      case 2: return 0x20;
      case 5: return 0x40;
      default: return 0;
    }
  }
  if (w0 >>> 22 === 0x3fa) return 0x20;
  if (w0 >>> 22 === 0x3fb) return 0x40;
  if (w0 === 0 && a[1] === 0 && a[2] === 0) {
    if (a[3] === 1) return 0x10;
    if (a[3] !== 0) return 0x80;
  }
  return 0;
}

function mapped(a: ArrayLike<number>): boolean {
  return a[0] === 0 && a[1] === 0 && a[2] === 0xffff;
}

/** nf_nat_redirect_ipv6() */
export function nfNatRedirectIpv6(nat: NfNat, pkt: Packet, range: NfNatRange2, hook: number, inAddrs: readonly RedirectIfaddr6[]): number {
  if (hook === NF_INET_LOCAL_OUT) return nfNatRedirect(nat, pkt, range, [0, 0, 0, 1]);
  const d = pkt.data;
  const at = pkt.meta[M_NHOFF]! + 24;
  const dst = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) dst[i] = (d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!;
  const scope = ipv6AddrScopeBits(dst);
  for (const ifa of inAddrs) {
    if (mapped(ifa.addr)) continue;
    if (ifa.tentative && !ifa.optimistic) continue;
    if (scope && !(scope & ipv6AddrScopeBits(ifa.addr))) continue;
    return nfNatRedirect(nat, pkt, range, ifa.addr);
  }
  return NF_DROP;
}
