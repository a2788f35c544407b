/**
 * addrtype match: net/netfilter/xt_addrtype.c addrtype_mt_v1(), match_type(),
 * match_type6() and match_lookup_rt6() (kernel 6.18), with the address
 * classification of net/ipv4/fib_frontend.c __inet_dev_addr_type() and
 * net/ipv6/addrconf_core.c __ipv6_addr_type().
 *
 * The node is described by EngineOptions.localAddrs / broadcastAddrs (host
 * addresses) instead of a routing table:
 *  - IPv4: 0.0.0.0 and 255.255.255.255 are BROADCAST (ipv4_is_zeronet() is
 *    `addr == 0` since 5.x), 224/4 MULTICAST; then the local table: a listed
 *    local address is LOCAL, and so is all of 127/8 when a 127/8 address is
 *    listed (the `local 127.0.0.0/8 dev lo` route lo's 127.0.0.1/8 creates);
 *    a listed broadcast address is BROADCAST; anything else UNICAST.
 *  - IPv6: MULTICAST / UNICAST / UNSPEC from the address itself; LOCAL when
 *    listed (the RTF_LOCAL route of a local address).
 * Not modelled (refused): --limit-iface-in/out (the route's device) and the
 * IPv6 ANYCAST / UNREACHABLE types (they need the routes).
 */
import type { AddrtypeData } from '../../../ext/match/addrtype.js';
import { NotModelled, type MatchFn, type XtActionParam } from '../../../ext/xt.js';

const RTN_UNICAST = 1;
const RTN_LOCAL = 2;
const RTN_BROADCAST = 3;
const RTN_MULTICAST = 5;

/** XT_ADDRTYPE_* = 1 << RTN_* */
const T_UNSPEC = 1 << 0;
const T_UNICAST = 1 << RTN_UNICAST;
const T_LOCAL = 1 << RTN_LOCAL;
const T_ANYCAST = 1 << 4;
const T_MULTICAST = 1 << RTN_MULTICAST;
const T_UNREACHABLE = 1 << 7;

function listed(list: readonly Uint8Array[], d: Uint8Array, at: number, len: number): boolean {
  outer: for (const a of list) {
    if (a.length !== len) continue;
    for (let i = 0; i < len; i++) if (a[i] !== d[at + i]) continue outer;
    return true;
  }
  return false;
}

/** inet_dev_addr_type(net, NULL, addr) over the modelled local table. */
export function inetAddrType(par: XtActionParam, at: number): number {
  const d = par.d;
  const env = par.env;
  const all0 = d[at] === 0 && d[at + 1] === 0 && d[at + 2] === 0 && d[at + 3] === 0;
  const all1 = d[at] === 255 && d[at + 1] === 255 && d[at + 2] === 255 && d[at + 3] === 255;
  if (all0 || all1) return RTN_BROADCAST;
  if ((d[at]! & 0xf0) === 0xe0) return RTN_MULTICAST;
  if (listed(env.localAddrs, d, at, 4)) return RTN_LOCAL;
  if (d[at] === 127 && env.localAddrs.some((a) => a.length === 4 && a[0] === 127)) return RTN_LOCAL;
  if (listed(env.broadcastAddrs, d, at, 4)) return RTN_BROADCAST;
  return RTN_UNICAST;
}

const IPV6_ADDR_ANY = 0;
const IPV6_ADDR_UNICAST = 0x1;
const IPV6_ADDR_MULTICAST = 0x2;

/** __ipv6_addr_type(), reduced to the UNICAST / MULTICAST / ANY distinctions addrtype uses. */
export function ipv6AddrType(d: Uint8Array, at: number): number {
  const top3 = d[at]! & 0xe0;
  if (top3 !== 0x00 && top3 !== 0xe0) return IPV6_ADDR_UNICAST;
  if (d[at] === 0xff) return IPV6_ADDR_MULTICAST;
  let zero8 = true;
  for (let i = 0; i < 8; i++) if (d[at + i] !== 0) zero8 = false;
  if (zero8) {
    const w2 = ((d[at + 8]! << 24) | (d[at + 9]! << 16) | (d[at + 10]! << 8) | d[at + 11]!) >>> 0;
    const w3 = ((d[at + 12]! << 24) | (d[at + 13]! << 16) | (d[at + 14]! << 8) | d[at + 15]!) >>> 0;
    if (w2 === 0) return w3 === 0 ? IPV6_ADDR_ANY : IPV6_ADDR_UNICAST; // loopback / v4-compatible
    if (w2 === 0xffff) return 0x1000; // IPV6_ADDR_MAPPED: neither unicast nor multicast
  }
  return IPV6_ADDR_UNICAST;
}

function matchType6(par: XtActionParam, at: number, mask: number): boolean {
  const t = ipv6AddrType(par.d, at);
  if (mask & T_MULTICAST && !(t & IPV6_ADDR_MULTICAST)) return false;
  if (mask & T_UNICAST && !(t & IPV6_ADDR_UNICAST)) return false;
  if (mask & T_UNSPEC && t !== IPV6_ADDR_ANY) return false;
  if (mask & T_LOCAL) return listed(par.env.localAddrs, par.d, at, 16);
  return true;
}

export function addrtype(info: AddrtypeData, family: 'ip' | 'ip6'): MatchFn {
  if (info.limitIn || info.limitOut) throw new NotModelled('match addrtype --limit-iface-in/--limit-iface-out');
  if (family === 'ip6' && (info.source | info.dest) & (T_ANYCAST | T_UNREACHABLE)) {
    throw new NotModelled('match addrtype (IPv6 ANYCAST/UNREACHABLE)');
  }
  if (family === 'ip6') {
    return (par) => {
      if (info.source && matchType6(par, par.nh + 8, info.source) === info.invSource) return false;
      if (info.dest && matchType6(par, par.nh + 24, info.dest) === info.invDest) return false;
      return true;
    };
  }
  return (par) => {
    if (info.source && ((info.source & (1 << inetAddrType(par, par.nh + 12))) !== 0) === info.invSource) return false;
    if (info.dest && ((info.dest & (1 << inetAddrType(par, par.nh + 16))) !== 0) === info.invDest) return false;
    return true;
  };
}
