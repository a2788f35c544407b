/**
 * The node's FIB as the x_tables matches reach it (ext/xt.ts XtFib): the
 * reverse-path lookup of ipt_rpfilter.c / ip6t_rpfilter.c (Linux 6.18)
 * over the snapshot's routes and policy rules (hooks/route).
 */
import type { XtFib } from '../ext/xt.js';
import { fibLookup } from './route/index.js';
import { RTN_LOCAL } from './route/types.js';
import type { IpAddr } from './route/addr.js';
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

export class NodeXtFib implements XtFib {
  constructor(private readonly node: Node) {}

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
