/**
 * Routing decisions over a node: policy-routed lookup and address types.
 *
 * addrType mirrors __inet_dev_addr_type() of net/ipv4/fib_frontend.c (Linux
 * 6.18), which is what `-m addrtype` and the input path use:
 *   0.0.0.0/8 and 255.255.255.255 → BROADCAST; 224.0.0.0/4 → MULTICAST;
 *   otherwise a lookup in the LOCAL table alone (no rules): a route found
 *   gives its type, but with a device restriction only when the route's
 *   (first) nexthop uses that device; nothing found (or a reject route) →
 *   UNICAST. For IPv6, xt_addrtype classifies by ipv6_addr_type() and
 *   ipv6_chk_addr(); here: ff00::/8 → MULTICAST, :: → UNSPEC, a local route
 *   in the local table → LOCAL, anything else → UNICAST.
 */
import { parseAddr, type IpAddr } from './addr.js';
import { Fib, toAddr, type LinkView } from './fib.js';
import {
  RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_NAMES, RTN_UNICAST, RTN_UNSPEC, RT_TABLE_LOCAL, type FibResult, type FlowKey,
} from './types.js';

export interface RoutingNode extends LinkView {
  readonly fib4: Fib;
  readonly fib6: Fib;
}

/**
 * The policy-routed FIB lookup (fib_lookup / fib6_rule_lookup) for a flow.
 * Throws RangeError for an unparsable or mixed-family address (a programming
 * error, not bad input).
 */
export function fibLookup(node: RoutingNode, flow: FlowKey): FibResult {
  const daddr = toAddr(flow.daddr);
  if (!daddr) throw new RangeError(`fibLookup: bad daddr ${String(flow.daddr)}`);
  const saddr = toAddr(flow.saddr);
  if (flow.saddr !== undefined && (!saddr || saddr.family !== daddr.family)) throw new RangeError(`fibLookup: bad saddr ${String(flow.saddr)}`);
  return (daddr.family === 4 ? node.fib4 : node.fib6).lookup(node, daddr, saddr, flow);
}

/** RTN_* of an address, as inet_dev_addr_type(net, dev, addr) (dev '' = inet_addr_type). */
export function addrTypeCode(node: RoutingNode, addr: string | IpAddr, dev = ''): number {
  const a = typeof addr === 'string' ? parseAddr(addr) : addr;
  if (!a) throw new RangeError(`addrType: bad address ${String(addr)}`);
  if (a.family === 6) {
    const w0 = a.w[0]!;
    if (w0 >>> 24 === 0xff) return RTN_MULTICAST;
    if (a.w.every((x) => x === 0)) return RTN_UNSPEC;
    const r = node.fib6.tableLookup(RT_TABLE_LOCAL, a);
    if (r && r.type === RTN_LOCAL && r.plen === 128 && (dev === '' || r.nexthops[0]?.dev === dev)) return RTN_LOCAL;
    return RTN_UNICAST;
  }
  const v = a.w[0]!;
  if ((v & 0xff000000) === 0 || v === 0xffffffff) return RTN_BROADCAST;
  if ((v & 0xf0000000) >>> 0 === 0xe0000000) return RTN_MULTICAST;
  if (!node.fib4.tables.has(RT_TABLE_LOCAL)) return RTN_BROADCAST;
  const r = node.fib4.tableLookup(RT_TABLE_LOCAL, a);
  if (!r) return RTN_UNICAST;
  if (dev === '' || r.nexthops[0]?.dev === dev) return r.type;
  return RTN_UNICAST;
}

/** iproute2 name of addrTypeCode ('local', 'broadcast', 'unicast', 'multicast', ...). */
export function addrType(node: RoutingNode, addr: string | IpAddr, dev = ''): string {
  const t = addrTypeCode(node, addr, dev);
  return RTN_NAMES[t] ?? String(t);
}

/** Whether the address is one of the node's own (type local in the local table). */
export function isLocalAddress(node: RoutingNode, addr: string | IpAddr): boolean {
  return addrTypeCode(node, addr) === RTN_LOCAL;
}

export { Fib, defaultRules, defaultRule, type LinkView } from './fib.js';
export { FibTable, fibEpoch } from './table.js';
export * from './types.js';
export * from './addr.js';
export { deriveRoutes4, deriveRoutes6, type DeriveAddr, type DeriveLink } from './derive.js';
