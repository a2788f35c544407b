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

function addrAt(d: Uint8Array, at: number, alen: number): IpAddr {
  const w = new Uint32Array(alen / 4);
  for (let i = 0; i < w.length; i++) w[i] = ((d[at + 4 * i]! << 24) | (d[at + 4 * i + 1]! << 16) | (d[at + 4 * i + 2]! << 8) | d[at + 4 * i + 3]!) >>> 0;
  return { family: alen === 4 ? 4 : 6, w };
}

export class NodeXtFib implements XtFib {
  constructor(private readonly node: Node) {}

  rpLookup(d: Uint8Array, alen: number, dAt: number, sAt: number, mark: number, tos: number, proto: number, ifindex: number): number {
    const res = fibLookup(this.node, {
      daddr: addrAt(d, dAt, alen), saddr: sAt < 0 ? undefined : addrAt(d, sAt, alen), iif: 'lo', mark: mark >>> 0, tos, proto,
    });
    if (!res.ok) return -1;
    const dev = this.node.linksByIndex.get(ifindex)?.name;
    // fib_info_nh_uses_dev(): any nexthop of the route (IPv6: the route's device, its first nexthop's here)
    const nhs = alen === 4 ? res.route.nexthops : res.route.nexthops.slice(0, 1);
    const uses = dev !== undefined && nhs.some((nh) => nh.dev === dev);
    return (res.rtnType << 1) | (uses ? 1 : 0);
  }

  devMtu(ifindex: number): number {
    return this.node.linksByIndex.get(ifindex)?.mtu ?? 0;
  }

  reverseMtu(d: Uint8Array, alen: number, at: number): number {
    const res = fibLookup(this.node, { daddr: addrAt(d, at, alen) });
    if (!res.ok) return 0xffffffff;
    // a local route's device is lo (what ip_route_output_key gives for the node's own addresses)
    const dev = res.rtnType === RTN_LOCAL ? 'lo' : res.dev;
    return this.node.links.get(dev)?.mtu ?? (dev === 'lo' ? 65536 : 0xffffffff);
  }
}
