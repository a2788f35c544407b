/**
 * The routes the kernel creates for interface addresses.
 *
 * IPv4 mirrors fib_add_ifaddr() / fib_magic() of net/ipv4/fib_frontend.c
 * (Linux 6.18); seen on 6.18 (10.5.0.1/24 + secondary 10.5.0.9/24,
 * 10.6.0.1/32, 10.7.0.1/31, lo): for each address, in order,
 *   - `local ADDR` in table local, scope host, prefsrc = the primary address
 *     of that subnet (secondaries use their primary's);
 *   - nothing more while the device is down;
 *   - `broadcast BRD` in table local when a broadcast address was given;
 *   - for a primary address outside 0.0.0.0/8 that is not a /32 of itself:
 *     the prefix route (table main, scope link; on loopback type local in
 *     table local, scope host) unless noprefixroute, and for prefixes shorter
 *     than /31 `broadcast PREFIX|~MASK` in table local. No network-address
 *     broadcast on 6.18.
 * IPv6 follows what addrconf leaves on 6.18: `local ADDR` (table local, metric
 * 0) once DAD is done (tentative addresses have none), the prefix route
 * (main, metric 256) below /128, and `multicast ff00::/8` (local, metric 256)
 * on every up, non-loopback device with IPv6 addresses.
 */
import { maskAddr, maskWord, parseIPv6, type IpAddr } from './addr.js';
import {
  RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_UNICAST, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_LOCAL,
  RT_TABLE_MAIN, type Route,
} from './types.js';

export interface DeriveLink {
  readonly name: string;
  readonly up: boolean;
  readonly loopback: boolean;
}

export interface DeriveAddr {
  readonly dev: string;
  readonly local: IpAddr;
  readonly prefixlen: number;
  readonly broadcast: IpAddr | undefined;
  readonly secondary: boolean;
  readonly noprefixroute: boolean;
  readonly tentative: boolean;
  /** ifa_rt_priority (`metric` of `ip addr add`). */
  readonly metric: number;
}

function route(p: Partial<Route> & Pick<Route, 'family' | 'table' | 'type' | 'dst' | 'plen' | 'scope'>, dev: string): Route {
  return {
    tos: 0, metric: 0, protocol: 'kernel', prefsrc: undefined, ...p,
    nexthops: [{ gateway: undefined, dev, weight: 1, flags: [] }],
  };
}

function host(a: IpAddr, v: number): IpAddr {
  return { family: 4, w: Uint32Array.of(v >>> 0) };
}

export function deriveRoutes4(links: ReadonlyMap<string, DeriveLink>, addrs: readonly DeriveAddr[]): Route[] {
  const out: Route[] = [];
  const primaries: DeriveAddr[] = [];
  for (const ifa of addrs) {
    if (ifa.local.family !== 4) continue;
    const dev = links.get(ifa.dev);
    if (!dev) continue;
    const addr = ifa.local.w[0]!;
    const mask = maskWord(ifa.prefixlen, 0);
    const prefix = (addr & mask) >>> 0;
    let prim: DeriveAddr = ifa;
    if (ifa.secondary) {
      const p = primaries.find((x) => x.dev === ifa.dev && x.prefixlen === ifa.prefixlen && ((x.local.w[0]! & mask) >>> 0) === prefix);
      if (!p) continue; // "fib_add_ifaddr: bug: prim == NULL"
      prim = p;
    } else primaries.push(ifa);
    const prefsrc = prim.local;
    out.push(route({ family: 4, table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: host(ifa.local, addr), plen: 32, scope: RT_SCOPE_HOST, prefsrc }, ifa.dev));
    if (!dev.up) continue;
    const brd = ifa.broadcast?.w[0];
    if (brd !== undefined && brd !== 0 && brd !== 0xffffffff) {
      out.push(route({ family: 4, table: RT_TABLE_LOCAL, type: RTN_BROADCAST, dst: host(ifa.local, brd), plen: 32, scope: RT_SCOPE_LINK, prefsrc }, ifa.dev));
    }
    if ((prefix & 0xff000000) !== 0 && !ifa.secondary && (prefix !== addr || ifa.prefixlen < 32)) {
      if (!ifa.noprefixroute) {
        const local = dev.loopback;
        out.push(route({
          family: 4, table: local ? RT_TABLE_LOCAL : RT_TABLE_MAIN, type: local ? RTN_LOCAL : RTN_UNICAST,
          dst: maskAddr(ifa.local, ifa.prefixlen), plen: ifa.prefixlen, scope: local ? RT_SCOPE_HOST : RT_SCOPE_LINK, prefsrc, metric: ifa.metric,
        }, ifa.dev));
      }
      // the network broadcast, unless it is the address's own broadcast added above: fib_magic() inserts with
      // NLM_F_APPEND, and fib_table_insert() refuses a perfect match (-EEXIST)
      if (ifa.prefixlen < 31 && (prefix | ~mask) >>> 0 !== (brd ?? -1) >>> 0) {
        out.push(route({ family: 4, table: RT_TABLE_LOCAL, type: RTN_BROADCAST, dst: host(ifa.local, prefix | ~mask), plen: 32, scope: RT_SCOPE_LINK, prefsrc }, ifa.dev));
      }
    }
  }
  return out;
}

const FF00 = parseIPv6('ff00::')!;

export function deriveRoutes6(links: ReadonlyMap<string, DeriveLink>, addrs: readonly DeriveAddr[]): Route[] {
  const out: Route[] = [];
  const mcastDone = new Set<string>();
  for (const ifa of addrs) {
    if (ifa.local.family !== 6) continue;
    const dev = links.get(ifa.dev);
    if (!dev || !dev.up) continue;
    if (!ifa.tentative) {
      out.push(route({ family: 6, table: RT_TABLE_LOCAL, type: RTN_LOCAL, dst: ifa.local, plen: 128, scope: RT_SCOPE_UNIVERSE }, ifa.dev));
    }
    if (ifa.prefixlen < 128 && !ifa.noprefixroute) {
      out.push(route({ family: 6, table: RT_TABLE_MAIN, type: RTN_UNICAST, dst: maskAddr(ifa.local, ifa.prefixlen), plen: ifa.prefixlen, scope: RT_SCOPE_UNIVERSE, metric: ifa.metric || 256 }, ifa.dev));
    }
    if (!dev.loopback && !mcastDone.has(ifa.dev)) {
      mcastDone.add(ifa.dev);
      out.push(route({ family: 6, table: RT_TABLE_LOCAL, type: RTN_MULTICAST, dst: { family: 6, w: FF00 }, plen: 8, scope: RT_SCOPE_UNIVERSE, metric: 256 }, ifa.dev));
    }
  }
  return out;
}
