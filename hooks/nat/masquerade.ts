/**
 * MASQUERADE: source NAT to an address of the outgoing interface.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_nat_masquerade.c  nf_nat_masquerade_ipv4, nf_nat_masquerade_ipv6
 *   net/ipv4/devinet.c                 inet_select_addr, in_dev_select_addr
 *   net/ipv6/addrconf.c                ipv6_dev_get_saddr / __ipv6_dev_get_saddr (RFC 6724 rules)
 *   net/ipv6/addrlabel.c               the default address label table
 *
 * The caller passes the candidate addresses (the model's devices): the
 * outgoing device's in ifa_list order, the other devices in device order
 * (loopback first) for inet_select_addr's fallback, and the route's next
 * hop (rt_nexthop: the gateway, or the destination when on link).
 * The chosen interface is remembered (nf_conn_nat.masq_index): a later
 * packet of the connection leaving elsewhere kills it (nf_nat_oif_changed).
 */
import { IP_CT_DIR_ORIGINAL, NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { M_CT_ID, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { T_SRC, TUPLE_WORDS } from '../conntrack/tuple.js';
import { NF_NAT_MANIP_SRC, type NfNat, type NfNatRange2 } from './core.js';

/** RT_SCOPE_* (include/uapi/linux/rtnetlink.h) */
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;

/** An IPv4 address of a device (struct in_ifaddr). */
export interface InIfaddr {
  /** ifa_local, host order (0x0a000001 for 10.0.0.1). */
  readonly local: number;
  readonly prefixlen: number;
  /** ifa_scope (default RT_SCOPE_UNIVERSE). */
  readonly scope?: number;
  /** IFA_F_SECONDARY */
  readonly secondary?: boolean;
}

function inetIfaMatch(dst: number, ifa: InIfaddr): boolean {
  if (ifa.prefixlen === 0) return true;
  const mask = ifa.prefixlen >= 32 ? 0xffffffff : (0xffffffff << (32 - ifa.prefixlen)) >>> 0;
  return ((dst ^ ifa.local) & mask) >>> 0 === 0;
}

/**
 * inet_select_addr(dev, dst, scope): the first primary address of `dev`
 * within the scope whose subnet holds `dst`, else its first primary within
 * the scope, else (in_dev_select_addr) the first primary address within the
 * scope, not link scope, of the other devices. 0 when there is none.
 * `routeLocalnet`: IN_DEV_ROUTE_LOCALNET of the device (host-scope addresses count as link scope).
 */
export function inetSelectAddr(dev: readonly InIfaddr[], dst: number, scope: number, others: readonly (readonly InIfaddr[])[] = [], routeLocalnet = false): number {
  const localnetScope = routeLocalnet ? RT_SCOPE_LINK : RT_SCOPE_HOST;
  let addr = 0;
  for (const ifa of dev) {
    if (ifa.secondary) continue;
    if (Math.min(ifa.scope ?? RT_SCOPE_UNIVERSE, localnetScope) > scope) continue;
    if (!dst || inetIfaMatch(dst, ifa)) {
      addr = ifa.local;
      break;
    }
    if (!addr) addr = ifa.local;
  }
  if (addr) return addr >>> 0;
  for (const d of others) {
    for (const ifa of d) {
      const s = ifa.scope ?? RT_SCOPE_UNIVERSE;
      if (!ifa.secondary && s !== RT_SCOPE_LINK && s <= scope) return ifa.local >>> 0;
    }
  }
  return 0;
}


/**
 * nf_nat_masquerade_ipv4() at POST_ROUTING for the packet's (NEW or
 * RELATED) conntrack: nothing for a 0.0.0.0 source; NF_DROP when the
 * device has no address; else SNAT to the selected address with the rule's
 * port range and flags.
 */
export function nfNatMasqueradeIpv4(nat: NfNat, pkt: Packet, range: NfNatRange2, outIfindex: number, out: readonly InIfaddr[], nexthop: number, others: readonly (readonly InIfaddr[])[] = []): number {
  const ct = nat.ct;
  const e = pkt.meta[M_CT_ID]!;
  if (e < 0) return NF_ACCEPT;
  // A 0.0.0.0 source: a local packet probably not meant to be masqueraded.
  if (ct.tuples[(2 * e + IP_CT_DIR_ORIGINAL) * TUPLE_WORDS + T_SRC] === 0) return NF_ACCEPT;
  const newsrc = inetSelectAddr(out, nexthop, RT_SCOPE_UNIVERSE, others);
  if (!newsrc) return NF_DROP; // "%s ate my IP address"
  masqv4[0] = newsrc;
  return masqSetup(nat, pkt, e, range, outIfindex, masqv4);
}

const masqv4 = [0, 0, 0, 0];

/** The SNAT binding to the chosen address; the interface remembered (nf_conn_nat.masq_index). */
function masqSetup(nat: NfNat, pkt: Packet, e: number, range: NfNatRange2, outIfindex: number, addr: ArrayLike<number>): number {
  nat.ct.masqIndex[e] = outIfindex;
  return nat.setupToAddress(pkt, e, range, addr, NF_NAT_MANIP_SRC);
}

/** An IPv6 address of a device (struct inet6_ifaddr), for source selection. */
export interface Inet6Ifaddr {
  /** Four host-order words. */
  readonly addr: ArrayLike<number>;
  readonly prefixlen: number;
  readonly ifindex: number;
  readonly tentative?: boolean;
  readonly optimistic?: boolean;
  readonly deprecated?: boolean;
  /** IFA_F_TEMPORARY (privacy address) */
  readonly temporary?: boolean;
}

/** __ipv6_addr_src_scope(): 1 interface-local, 2 link, 5 site, 14 global (multicast: its scope field). */
export function ipv6AddrSrcScope(a: ArrayLike<number>): number {
  const w0 = a[0]! >>> 0;
  if (w0 >>> 24 === 0xff) return (w0 >>> 16) & 0x0f;
  if (w0 >>> 22 === 0x3fa) return 2; // fe80::/10
  if (w0 >>> 22 === 0x3fb) return 5; // fec0::/10
  if (w0 === 0 && a[1] === 0 && a[2] === 0 && a[3] === 1) return 2; // loopback: link-local scope
  if (w0 === 0 && a[1] === 0 && a[2] === 0 && a[3] === 0) return 0;
  return 14;
}

/** The default policy table of addrlabel.c: (prefix words, length, label), longest prefix first. */
const LABELS: ReadonlyArray<readonly [number, number, number]> = [
  // [first word, prefix length, label]; ::1/128 and the /96 entries are checked by hand below
  [0x20010010, 28, 7], [0x20010000, 32, 6], [0x20020000, 16, 2], [0x3ffe0000, 16, 12], [0xfec00000, 10, 11], [0xfc000000, 7, 5],
];

/** ip6addrlbl_get(): the label of an address. */
function addrLabel(a: ArrayLike<number>): number {
  const w0 = a[0]! >>> 0;
  if (w0 === 0 && a[1] === 0) {
    if (a[2] === 0 && a[3] === 1) return 0; // ::1/128
    if (a[2] === 0xffff) return 4; // ::ffff:0:0/96
    if (a[2] === 0) return 3; // ::/96
  }
  for (const [p, len, label] of LABELS) {
    const mask = (0xffffffff << (32 - len)) >>> 0;
    if (((w0 ^ p) & mask) >>> 0 === 0) return label;
  }
  return 1; // ::/0
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < 4; i++) {
    const x = ((a[i]! ^ b[i]!) >>> 0);
    if (x) return i * 32 + Math.clz32(x);
  }
  return 128;
}

/**
 * ipv6_dev_get_saddr(): RFC 6724 source address selection among the
 * candidates (tentative ones excluded unless optimistic), by rules 1 (same
 * address), 2 (appropriate scope), 3 (avoid deprecated), 5 (the outgoing
 * interface), 6 (matching label), 7 (prefer public over temporary, the
 * kernel default) and 8 (longest matching prefix); the first candidate
 * wins ties. undefined when there is none.
 */
export function ipv6DevGetSaddr(cands: readonly Inet6Ifaddr[], dst: ArrayLike<number>, outIfindex: number): Inet6Ifaddr | undefined {
  const dstScope = ipv6AddrSrcScope(dst);
  const dstLabel = addrLabel(dst);
  let best: Inet6Ifaddr | undefined;
  const better = (a: Inet6Ifaddr, b: Inet6Ifaddr): boolean => {
    const same = (x: Inet6Ifaddr) => x.addr[0] === dst[0] && x.addr[1] === dst[1] && x.addr[2] === dst[2] && x.addr[3] === dst[3];
    if (same(a) !== same(b)) return same(a);
    const sa = ipv6AddrSrcScope(a.addr), sb = ipv6AddrSrcScope(b.addr);
    if (sa !== sb) return sa < sb ? sa >= dstScope : sb < dstScope;
    if (!!a.deprecated !== !!b.deprecated) return !a.deprecated;
    const oa = a.ifindex === outIfindex, ob = b.ifindex === outIfindex;
    if (oa !== ob) return oa;
    const la = addrLabel(a.addr) === dstLabel, lb = addrLabel(b.addr) === dstLabel;
    if (la !== lb) return la;
    if (!!a.temporary !== !!b.temporary) return !a.temporary;
    return Math.min(commonPrefix(a.addr, dst), a.prefixlen) > Math.min(commonPrefix(b.addr, dst), b.prefixlen);
  };
  for (const c of cands) {
    if (c.tentative && !c.optimistic) continue;
    if (ipv6AddrSrcScope(c.addr) === 0 || c.addr[0]! >>> 24 === 0xff) continue; // unspecified, multicast
    if (!best || better(c, best)) best = c;
  }
  return best;
}

/** nf_nat_masquerade_ipv6(): SNAT to the source address selected for the packet's destination. */
export function nfNatMasqueradeIpv6(nat: NfNat, pkt: Packet, range: NfNatRange2, outIfindex: number, cands: readonly Inet6Ifaddr[]): number {
  const e = pkt.meta[M_CT_ID]!;
  if (e < 0) return NF_ACCEPT;
  const d = pkt.data;
  const at = pkt.meta[M_NHOFF]! + 24;
  const dst = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) dst[i] = (d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!;
  const src = ipv6DevGetSaddr(cands, dst, outIfindex);
  if (!src) return NF_DROP;
  return masqSetup(nat, pkt, e, range, outIfindex, src.addr);
}
