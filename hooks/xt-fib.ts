/**
 * The node's FIB as the x_tables matches reach it (ext/xt.ts XtFib): the
 * reverse-path lookup of ipt_rpfilter.c / ip6t_rpfilter.c (Linux 6.18)
 * over the snapshot's routes and policy rules (hooks/route).
 */
import type { XtFib } from '../ext/xt.js';
import { fibLookup } from './route/index.js';
import { FIB_PROPS_ERROR, RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_UNICAST, RT_TABLE_LOCAL, RT_TABLE_MAIN, type Route } from './route/types.js';
import { addrEqual, type IpAddr } from './route/addr.js';
import type { Node } from './snapshot/node.js';

/**
 * The address scratch the lookups read, one per family and role, filled
 * right before the fibLookup() that reads it (FIB results keep no reference
 * to it): no allocation per rpfilter or TCPMSS packet.
 */
const SLOTS = {
  4: [0, 1].map(() => ({ family: 4 as const, w: new Uint32Array(1) })),
  6: [0, 1].map(() => ({ family: 6 as const, w: new Uint32Array(4) })),
};

/** The `alen`-byte address at d[at] in scratch slot `slot` (0: destination, 1: source). */
function addrAt(d: Uint8Array, at: number, alen: number, slot: number): IpAddr {
  const a = SLOTS[alen === 4 ? 4 : 6][slot]!;
  const w = a.w;
  for (let i = 0; i < w.length; i++) w[i] = ((d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!) >>> 0;
  return a;
}

/** XT_ADDRTYPE_* = 1 << RTN_* */
const XT_ADDRTYPE_LOCAL = 1 << RTN_LOCAL;
const XT_ADDRTYPE_ANYCAST = 1 << RTN_ANYCAST;
const XT_ADDRTYPE_UNREACHABLE = 1 << 7;

/**
 * An IPv4 local-table route the program's address sets stand for
 * (hooks/node.ts addrLists, EngineOptions.localAddrs / broadcastAddrs): a
 * local or broadcast host route, or lo's local 127.0.0.0/8.
 */
export function inHostSets(r: Route): boolean {
  return (r.plen === 32 && (r.type === RTN_LOCAL || r.type === RTN_BROADCAST)) || (r.type === RTN_LOCAL && r.plen === 8 && r.dst.w[0]! >>> 24 === 127);
}

export class NodeXtFib implements XtFib {
  readonly localRanges: boolean;
  readonly localRanges6: boolean;

  constructor(private readonly node: Node) {
    // The program's sets answer inet_addr_type unless the local table has routes they do not hold, or,
    // the local and main tables one trie, a main route would answer first or otherwise: one inside
    // 127/8 narrower than it, or one of a type that is neither unicast nor a reject.
    const fib = node.fib4;
    const mainAnswers = (r: Route) => (r.plen > 8 && r.dst.w[0]! >>> 24 === 127) || (r.type !== RTN_UNICAST && (FIB_PROPS_ERROR[r.type] ?? 0) === 0);
    this.localRanges = (fib.tables.get(RT_TABLE_LOCAL)?.routes() ?? []).some((r) => !inHostSets(r)) ||
      (fib.localMainMerged && (fib.tables.get(RT_TABLE_MAIN)?.routes() ?? []).some(mainAnswers));
    // IPv6 asks its routes (nf_ip6_route, any table) for RTF_LOCAL; the sets hold the /128 ones
    this.localRanges6 = [...node.fib6.tables.values()].some((t) => t.routes().some((r) => r.type === RTN_LOCAL && r.plen < 128));
  }

  /**
   * __inet_dev_addr_type(net, dev, addr, RT_TABLE_LOCAL) (net/ipv4/fib_frontend.c):
   * 0.0.0.0 and 255.255.255.255 BROADCAST (ipv4_is_zeronet() is `addr == 0`),
   * 224/4 MULTICAST; else the local table's route (no local table:
   * BROADCAST), its type counted only when fib_info_nhc(res.fi, 0)'s device
   * is `dev`, else UNICAST; nothing found (or a reject route) UNICAST.
   * No VRF is modelled: l3mdev_fib_table(dev) is 0, the table the local one.
   */
  inetDevAddrType(addr: number, ifindex: number): number {
    if (addr === 0 || addr === 0xffffffff) return RTN_BROADCAST;
    if ((addr & 0xf0000000) >>> 0 === 0xe0000000) return RTN_MULTICAST;
    const fib = this.node.fib4;
    if (!fib.tables.has(RT_TABLE_LOCAL)) return RTN_BROADCAST;
    const r = fib.tableLookup(RT_TABLE_LOCAL, fib.scratch(addr));
    if (!r) return RTN_UNICAST;
    if (ifindex === 0) return r.type;
    const dev = this.node.linksByIndex.get(ifindex)?.name;
    return dev !== undefined && r.nexthops[0]?.dev === dev ? r.type : RTN_UNICAST;
  }

  /**
   * match_lookup_rt6() (net/netfilter/xt_addrtype.c): with a device and
   * LOCAL asked, nf_ipv6_chk_addr(net, addr, dev, true) (a non-tentative
   * address of that device); then nf_ip6_route() (ip6_route_output: from
   * lo, flowi6_oif = dev, bound to it as RT6_LOOKUP_F_IFACE makes it): an
   * error, or a reject route, is UNREACHABLE alone; without a device the
   * route's RTF_LOCAL adds LOCAL; ipv6_anycast_destination() adds ANYCAST:
   * RTF_ANYCAST (the anycast routes addrconf makes, `proto kernel`; a route
   * added as `anycast` by hand has the type, not the flag) or a route of a
   * prefix shorter than 127 bits without a gateway whose prefix address is
   * the address (the subnet-router anycast address).
   */
  matchLookupRt6(d: Uint8Array, at: number, ifindex: number, mask: number): number {
    const addr = addrAt(d, at, 16, 0);
    const dev = ifindex === 0 ? '' : this.node.linksByIndex.get(ifindex)?.name ?? `#${ifindex}`;
    let ret = 0;
    if (dev !== '' && mask & XT_ADDRTYPE_LOCAL && this.chkAddr6(addr.w, dev)) ret = XT_ADDRTYPE_LOCAL;
    const res = fibLookup(this.node, { daddr: addr, iif: 'lo', oif: dev });
    if (!res.ok) return XT_ADDRTYPE_UNREACHABLE;
    const rt = res.route;
    if (dev === '' && rt.type === RTN_LOCAL) ret |= XT_ADDRTYPE_LOCAL;
    const rtfAnycast = rt.type === RTN_ANYCAST && rt.protocol === 'kernel';
    if (rtfAnycast || (rt.plen < 127 && res.gateway === undefined && addrEqual(rt.dst.w, addr.w))) ret |= XT_ADDRTYPE_ANYCAST;
    return ret;
  }

  /** ipv6_chk_addr_and_flags(net, addr, dev, false, ..., IFA_F_TENTATIVE): an address of `dev`, not tentative. */
  private chkAddr6(w: ArrayLike<number>, dev: string): boolean {
    for (const a of this.node.addresses) {
      if (a.family === 6 && a.dev === dev && !a.tentative && addrEqual(a.local.w, w)) return true;
    }
    return false;
  }

  /** The FIB lookup of rpfilter_lookup_reverse() (net/ipv4/netfilter/ipt_rpfilter.c) and rpfilter_lookup_reverse6() (net/ipv6/netfilter/ip6t_rpfilter.c). */
  rpLookup(d: Uint8Array, alen: number, dAt: number, sAt: number, mark: number, tos: number, proto: number, ifindex: number): number {
    const res = fibLookup(this.node, {
      daddr: addrAt(d, dAt, alen, 0), saddr: sAt < 0 ? undefined : addrAt(d, sAt, alen, 1), iif: 'lo', mark: mark >>> 0, tos, proto,
    });
    if (!res.ok) return -1;
    const dev = this.node.linksByIndex.get(ifindex)?.name;
    // fib_info_nh_uses_dev(): any nexthop of the route (IPv6: the route's device, its first nexthop's here)
    const nhs = res.route.nexthops;
    const uses = dev !== undefined && (alen === 4 ? nhs.some((nh) => nh.dev === dev) : nhs.length > 0 && nhs[0]!.dev === dev);
    return (res.rtnType << 1) | (uses ? 1 : 0);
  }

  devMtu(ifindex: number): number {
    return this.node.linksByIndex.get(ifindex)?.mtu ?? 0;
  }

  /** tcpmss_reverse_mtu() (net/netfilter/xt_TCPMSS.c): nf_route() to the packet's source, then dst_mtu(). */
  reverseMtu(d: Uint8Array, alen: number, at: number): number {
    const res = fibLookup(this.node, { daddr: addrAt(d, at, alen, 0) });
    if (!res.ok) return 0xffffffff;
    // a local route's device is lo (what ip_route_output_key gives for the node's own addresses)
    const dev = res.rtnType === RTN_LOCAL ? 'lo' : res.dev;
    return this.node.links.get(dev)?.mtu ?? (dev === 'lo' ? 65536 : 0xffffffff);
  }
}
