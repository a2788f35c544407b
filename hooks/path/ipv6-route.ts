/**
 * IPv6 routing on the packet path: the input route of a received packet,
 * the groups a device has joined, and the output route of a locally
 * generated packet.
 *
 * Mirrors Linux 6.18:
 *   net/ipv6/route.c       ip6_route_input(): flowi6 {iif, daddr, saddr, flowlabel, mark, proto},
 *                          RT6_LOOKUP_F_IFACE for multicast, link-local and loopback destinations
 *                          (rt6_need_strict: only routes through the input device, backtracking
 *                          to shorter prefixes), ip6_rt_init_dst(): local and anycast routes →
 *                          ip6_input, a multicast prefix → ip6_mc_input, reject routes →
 *                          ip6_pkt_discard/prohibit/dst_discard, anything else → ip6_forward;
 *                          ip6_route_output_flags() (reduced: see routeOutput)
 *   net/ipv6/ip6_input.c   ip6_mc_input(): deliver only to a group the device joined
 *                          (ipv6_chk_mcast_addr)
 *   net/ipv6/addrconf.c, mcast.c  the groups a device joins: ff02::1 and ff01::1 on every device,
 *                          ff02::2 when the device forwards (multicast devices; see joinedGroups),
 *                          the solicited-node group ff02::1:ffXX:XXXX of each address (not on
 *                          loopback/NOARP devices); checked with `ip -6 maddr` on 6.18
 *
 * Not modelled (documented gaps): multicast routing and the looped-back
 * copy of locally sent multicast.
 */
import type { Link, Node } from '../snapshot/node.js';
import { fibEpoch, fibLookup } from '../route/index.js';
import { formatIPv6, keptAddrText, maskAddr } from '../route/addr.js';
import { RTN_ANYCAST, RTN_LOCAL, type FlowKey } from '../route/types.js';
import { F_L4PROTO, M_END, M_FLAGS, M_L4PROTO, M_LEN, M_MARK, M_NHOFF, M_THOFF } from '../../vm/layout.js';
import { newXfrmFlow, xfrmFlow6, xfrmFlow6At } from '../route/xfrm.js';
import { icmpXfrmRoute, xfrmRoute } from './xfrm-out.js';
import type { Packet } from '../../vm/packet.js';
import { dropped, LOCAL_ROUTE, routeText, tableName, type InputRoute, type OutputRoute, type PathCtx, type XfrmRouting } from './ctx.js';
import { isFragment6, isLinkLocal, isLoopback, isMulticast, wordsInto } from './ipv6.js';
import { InputRouteCache, rulesSelectPorts } from './route-cache.js';
import { hasMultipath, MultipathConf, rt6MultipathHash } from '../route/multipath.js';
import type { FibResult } from '../route/types.js';

/** rt6_need_strict(): multicast, link-local or loopback destinations are looked up through the device only. */
const needStrict = (w: Uint32Array) => isMulticast(w) || isLinkLocal(w) || isLoopback(w);

/** The groups a device has joined (ipv6_chk_mcast_addr), as formatted addresses. */
export function joinedGroups(node: Node, dev: Link): Set<string> {
  const g = new Set(['ff02::1', 'ff01::1']);
  const sys = node.sysctl;
  const multicast = dev.flags.includes('MULTICAST');
  const noarp = dev.loopback || dev.flags.includes('NOARP');
  // ipv6_add_dev() joins ff02::2 when the device is created forwarding; dev_forward_change() joins
  // ff02::2, ff01::2 and ff05::2 when forwarding is switched on later. Which happened is not in a
  // snapshot: the device's forwarding flag gives ff02::2 only (ff01::/16 never arrives from outside).
  if (multicast && sys.devConf(6, dev.name, 'forwarding') > 0) g.add('ff02::2');
  if (!noarp) {
    const fwd = sys.devConf(6, dev.name, 'forwarding') > 0;
    // addrconf_addr_solict_mult(): ff02::1:ff00:0/104 | the low 24 bits.
    const solicit = (low: number) => formatIPv6(Uint32Array.of(0xff020000, 0, 1, (0xff000000 | (low & 0xffffff)) >>> 0));
    for (const a of node.addresses) {
      if (a.family !== 6 || a.dev !== dev.name) continue;
      g.add(solicit(a.local.w[3]!));
      // A forwarding device joins the subnet-router anycast address of each prefix
      // (addrconf_join_anycast → __ipv6_dev_ac_inc), and with it its solicited-node group.
      if (fwd) {
        const p = maskAddr(a.local, a.prefixlen);
        if ((p.w[0]! | p.w[1]! | p.w[2]! | p.w[3]!) !== 0) g.add(solicit(p.w[3]!));
      }
    }
  }
  return g;
}

/** The IPv6 routing decisions of one node. */
export class Ipv6Route {
  private readonly xfrmFlow = newXfrmFlow(6);
  /**
   * The flow of the lookup being made, reused (no objects on the packet
   * path): filled right before the fibLookup() that reads it, and FIB
   * results keep no reference to it.
   */
  private readonly key = {
    daddr: { family: 6 as const, w: new Uint32Array(4) }, saddr: { family: 6 as const, w: new Uint32Array(4) },
    iif: '', oif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0,
  } satisfies FlowKey;
  private readonly fwdRoute: { kind: 'forward'; dev: string; gateway: string | undefined; mtu: number; gateway6: Uint32Array | undefined } = { kind: 'forward', dev: '', gateway: undefined, mtu: 0, gateway6: undefined };
  /** The input routes of untraced packets, kept by their inputs (route-cache.ts), made at the first. */
  private memo: InputRouteCache | undefined;
  /** A policy rule selects on the protocol or ports: the memo keys on them. */
  private readonly memoPorts: boolean;
  /** A route has several nexthops: a forwarded packet's is chosen by its hash (route/multipath.ts), and no input route is kept. */
  private readonly multipath: boolean;
  private readonly mp: MultipathConf;
  constructor(readonly node: Node) {
    this.memoPorts = rulesSelectPorts(node.fib6.rules);
    this.multipath = hasMultipath(node.fib6);
    this.mp = new MultipathConf(node.sysctl, 6);
  }

  private flow(pkt: Packet, iif: string, oif: string): typeof this.key {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const l4 = (m[M_FLAGS]! & F_L4PROTO) !== 0 ? m[M_L4PROTO]! : d[nh + 6]!;
    const th = m[M_THOFF]!;
    const ports = (m[M_FLAGS]! & F_L4PROTO) !== 0 && (l4 === 6 || l4 === 17 || l4 === 132) && th > nh && !isFragment6(pkt) && th + 4 <= nh + m[M_LEN]!;
    const k = this.key;
    wordsInto(d, nh + 24, k.daddr.w);
    wordsInto(d, nh + 8, k.saddr.w);
    k.iif = iif;
    k.oif = oif;
    k.mark = m[M_MARK]! >>> 0;
    k.tos = ((d[nh]! & 0x0f) << 4) | (d[nh + 1]! >> 4);
    k.proto = l4;
    k.sport = ports ? (d[th]! << 8) | d[th + 1]! : 0;
    k.dport = ports ? (d[th + 2]! << 8) | d[th + 3]! : 0;
    return k;
  }

  /** ip6_route_input() + ip6_rt_init_dst(): what dst.input the packet gets. */
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute {
    const key = this.flow(pkt, dev.name, '');
    const memo = ctx.quiet && !this.multipath ? (this.memo ??= new InputRouteCache(fibEpoch, 4)) : undefined;
    if (memo !== undefined) {
      const mk = memo.key;
      for (let i = 0; i < 4; i++) {
        mk[i] = key.saddr.w[i]!;
        mk[4 + i] = key.daddr.w[i]!;
      }
      // the flow's protocol and ports reach the answer only through policy rules that select on them
      memo.setRest(key.tos, dev.ifindex, key.mark, this.memoPorts ? key.proto : 0, this.memoPorts ? (key.sport << 16) | key.dport : 0);
      const hit = memo.find();
      if (hit >= 0) return this.remembered(memo, hit, ctx);
    }
    // the key's words, read before the next lookup refills them; the address as text only where it is printed
    const daddr = key.daddr.w;
    const strict = needStrict(daddr);
    if (strict) key.oif = dev.name;
    const found = fibLookup(this.node, key);
    const dst = !found.ok || !ctx.quiet || isMulticast(found.route.dst.w as Uint32Array) ? formatIPv6(daddr) : '';
    // fib6_select_path(): a multipath route's nexthop by the packet's hash
    const res = found.ok && this.multipath && found.route.nexthops.length > 1 && found.rtnType !== RTN_LOCAL && found.rtnType !== RTN_ANYCAST && !strict
      ? this.selectMultipath(pkt, found, ctx) : found;
    if (!res.ok) {
      const what = res.error === 'noroute' ? 'no route' : `${res.error} route`;
      return { kind: 'drop', fate: dropped('no-route', `${what} to ${dst}${strict ? ` through ${dev.name}` : ''} (ip6_pkt_discard, ICMPv6 destination unreachable)`), errno: res.errno };
    }
    if (res.rtnType === RTN_LOCAL || res.rtnType === RTN_ANYCAST) {
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${dst} is ${res.rtnType === RTN_LOCAL ? 'local' : 'anycast'} (table ${tableName(res.table)}): INPUT` });
      const i = memo === undefined ? -1 : memo.keep();
      if (i >= 0) memo!.local[i] = 1;
      return LOCAL_ROUTE.unicast;
    }
    if (isMulticast(res.route.dst.w as Uint32Array)) {
      // ip6_mc_input()
      if (!joinedGroups(this.node, dev).has(dst)) {
        return { kind: 'drop', fate: dropped('multicast', `multicast ${dst}: no group joined on ${dev.name} (multicast routing is not modelled)`) };
      }
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: multicast ${dst} joined on ${dev.name}: local delivery` });
      return LOCAL_ROUTE.multicast;
    }
    const gw = res.gateway && res.gateway.family === 6 ? keptAddrText(res.gateway) : undefined;
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${dst} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): ip6_forward out ${res.dev}` });
    const mtu = this.node.links.get(res.dev)?.mtu ?? 1500;
    const gateway6 = res.gateway && res.gateway.family === 6 ? (res.gateway.w as Uint32Array) : undefined;
    const i = memo === undefined ? -1 : memo.keep();
    if (i >= 0) {
      memo!.local[i] = 0;
      memo!.dev[i] = res.dev;
      memo!.gateway[i] = gw;
      memo!.gateway6[i] = gateway6;
      memo!.mtu[i] = mtu;
    }
    if (!ctx.transient) return { kind: 'forward', dev: res.dev, gateway: gw, mtu, gateway6 };
    // a reused context: the path reads the route before the next packet and keeps nothing of it (as IPv4's)
    const f = this.fwdRoute;
    f.dev = res.dev;
    f.gateway = gw;
    f.mtu = mtu;
    f.gateway6 = gateway6;
    return f;
  }

  /** rt6_multipath_hash() and fib6_select_path(): the nexthop of `res`'s route the packet takes. */
  private selectMultipath(pkt: Packet, res: FibResult & { ok: true }, ctx: PathCtx): FibResult & { ok: true } {
    const m = pkt.meta;
    const l4 = (m[M_FLAGS]! & F_L4PROTO) !== 0 ? m[M_L4PROTO]! : -1;
    const hash = rt6MultipathHash(pkt.data, m[M_NHOFF]!, m[M_LEN]!, l4, l4 < 0 ? -1 : m[M_THOFF]!, isFragment6(pkt), this.mp.policy, this.mp.fields, this.mp.seed);
    const k = this.mp.select(res, hash);
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: this.mp.note(hash, k, res.route.nexthops.length) });
    return this.node.fib6.nexthopResult(res, k);
  }

  /** The answer `memo` keeps in slot i, as routeInput() gave it. */
  private remembered(memo: InputRouteCache, i: number, ctx: PathCtx): InputRoute {
    if (memo.local[i] === 1) return LOCAL_ROUTE.unicast;
    if (!ctx.transient) return { kind: 'forward', dev: memo.dev[i]!, gateway: memo.gateway[i], mtu: memo.mtu[i]!, gateway6: memo.gateway6[i] };
    const f = this.fwdRoute;
    f.dev = memo.dev[i]!;
    f.gateway = memo.gateway[i];
    f.mtu = memo.mtu[i]!;
    f.gateway6 = memo.gateway6[i];
    return f;
  }

  /**
   * The output route and the IPsec policies on it (a node without states,
   * xfrm-out.ts): ip6_dst_lookup_flow → xfrm_lookup_route ('flow': the
   * node's datagrams, the stack's TCP resets); xfrm_lookup without
   * XFRM_LOOKUP_QUEUE ('me-harder': ip6_route_me_harder, nf_send_reset6,
   * icmpv6_echo_reply); icmpv6_route_lookup ('icmp'). The flow's oif is the
   * caller's flowi6_oif (ip6_route_output does not set it, unlike IPv4);
   * there is no DST_NOXFRM in IPv6.
   */
  routeOutput(pkt: Packet, oif: string, how: XfrmRouting = 'flow', anySource = false): OutputRoute {
    const r = this.routeOutputFib(pkt, oif, anySource);
    const xfrm = this.node.xfrm;
    if (xfrm === undefined || 'fate' in r) return r;
    const loopback = this.node.links.get(r.dev)?.loopback === true;
    const out = xfrm.lookupOut(xfrmFlow6(pkt, oif, false, this.xfrmFlow), loopback);
    if (how !== 'icmp') return xfrmRoute(this.node, r, out, how, 'xfrm_lookup');
    // icmpv6_route_lookup: xfrm_decode_session_reverse of the packet the error quotes (past the fixed IPv6 and ICMPv6 headers)
    const d = pkt.data;
    const inner = pkt.meta[M_NHOFF]! + 48;
    const end = pkt.meta[M_END]!;
    const rev = inner + 40 > end ? undefined : xfrm.lookupOut(xfrmFlow6At(d, inner, end, pkt.meta[M_MARK]! >>> 0, oif, true, this.xfrmFlow), loopback);
    return icmpXfrmRoute(r, out.verdict, false, rev, 'icmpv6_route_lookup');
  }

  /**
   * ip6_route_output_flags(), reduced: iif lo, the packet's mark, the device
   * restriction for strict destinations when an oif is given (or for any
   * oif with an unspecified source); a local or anycast route → lo. The
   * flow's source is :: with `anySource`.
   */
  private routeOutputFib(pkt: Packet, oif: string, anySource: boolean): OutputRoute {
    const key = this.flow(pkt, '', oif);
    if (anySource) key.saddr.w.fill(0);
    const daddr = key.daddr.w;
    const dst = formatIPv6(daddr);
    const res = fibLookup(this.node, key);
    if (!res.ok) return { fate: dropped('no-route', `no output route to ${dst} (${res.error}; the sender gets errno ${res.errno})`) };
    if (res.rtnType === RTN_LOCAL || res.rtnType === RTN_ANYCAST) {
      return { dev: 'lo', gateway: undefined, local: true, cast: 'unicast', text: `output route: ${dst} is local: out lo and back in` };
    }
    const gw = res.gateway && res.gateway.family === 6 ? formatIPv6(res.gateway.w) : undefined;
    return {
      dev: res.dev, gateway: gw, local: false, cast: isMulticast(daddr) ? 'multicast' : 'unicast',
      text: `output route: ${dst} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): out ${res.dev}`,
    };
  }
}
