/**
 * The IPv4 packet path of a Linux host: a frame in on a device, or a packet
 * sent by a local program, through the netfilter hooks and the routing
 * decisions to its fate.
 *
 * Mirrors Linux 6.18:
 *   net/ethernet/eth.c      eth_type_trans(): pkt_type from the destination MAC
 *   net/ipv4/ip_input.c     ip_rcv_core() (OTHERHOST drop, header checks, trim to tot_len), PRE_ROUTING,
 *                           ip_rcv_finish_core() (input route unless the skb kept its dst: loopback),
 *                           ip_local_deliver() (fragments are reassembled before LOCAL_IN)
 *   net/ipv4/route.c        ip_route_input_rcu() (multicast: ip_check_mc_rcu, ip_route_input_mc,
 *                           ip_mc_validate_source), ip_route_input_slow() (martians, route_localnet,
 *                           brd_input, local_input, no_route, forwarding off, __mkroute_input),
 *                           ip_route_output_key_hash_rcu() (reduced: see routeOutput)
 *   net/ipv4/fib_frontend.c fib_validate_source() / __fib_validate_source() (rp_filter, accept_local,
 *                           src_valid_mark, the fast path without custom rules or local routes)
 *   net/ipv4/ip_forward.c   ip_forward(): PACKET_HOST only, TTL <= 1 → time exceeded before FORWARD,
 *                           DF larger than the MTU → fragmentation needed, TTL decremented before FORWARD
 *   net/ipv4/ip_output.c    __ip_local_out() (LOCAL_OUT), ip_output() (POST_ROUTING with in = skb->dev)
 *   net/ipv4/netfilter/iptable_mangle.c ipt_mangle_out(): re-route when mark, saddr, daddr or TOS changed
 *   drivers/net/loopback.c  a locally addressed packet comes back in on lo with its route kept
 *
 * Not modelled (documented gaps): IP options processing (ip_rcv_options),
 * early demux, multicast routing and groups other than 224.0.0.1, the
 * looped-back copy of locally sent broadcasts, xfrm, neighbour resolution
 * (a forwarded packet counts as sent once it passed POSTROUTING), NAT (no
 * address is rewritten; see hooks/node.ts), reassembly of fragments.
 */
import type { Node, Link, Address } from '../snapshot/node.js';
import { fibLookup } from '../route/index.js';
import { formatIPv4, type IpAddr } from '../route/addr.js';
import { RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, RT_SCOPE_HOST, RT_TABLE_LOCAL, type FibResult } from '../route/types.js';
import {
  F_MAC_HEADER, M_FLAGS, M_LEN, M_MACOFF, M_MARK, M_NHOFF, M_PKTTYPE, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST,
  PACKET_OTHERHOST,
} from '../../vm/layout.js';
import {
  NFPROTO_IPV4, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING,
} from '../../core/netfilter.js';
import { LINKTYPE_ETHERNET, decodePacket, setDevice, type Packet } from '../../vm/packet.js';
import type { DropReason, Fate, PathStep } from './fate.js';
import { parseMac } from '../../core/addr.js';

export const EINVAL = 22;
export const EXDEV = 18;
export const EHOSTUNREACH = 113;
export const ENETUNREACH = 101;

const IPPROTO_IGMP = 2;
const INADDR_BROADCAST = 0xffffffff;
const IGMP_ALL_HOSTS = 0xe0000001;

/** ARPHRD_* of a link type, for `meta iiftype`. */
export function arphrd(l: Link): number {
  return l.loopback || l.linkType === 'loopback' ? 772 : l.linkType === 'none' ? 65534 : 1;
}

/** The per-packet context the hooks see (TRACE steps, the OUTPUT re-route). */
export interface PathCtx {
  steps: PathStep[];
  /** Set when nobody reads the steps (replay): they are not formatted at all. */
  quiet?: boolean;
  /**
   * Set while a locally generated packet is in LOCAL_OUT: mangle OUTPUT
   * calls it after its chain (ipt_mangle_out); returns the new output
   * device or a negative errno.
   */
  reroute: ((pkt: Packet) => Link | number) | undefined;
}

/** What runs the netfilter hooks for the path (hooks/node.ts). */
export interface Netfilter {
  /**
   * nf_hook() for (NFPROTO_IPV4, hook) with the given devices: 1 when every
   * entry accepted (the path goes on), otherwise the fate the verdict gives.
   */
  hook(hook: number, pkt: Packet, inDev: Link | undefined, outDev: Link | undefined, ctx: PathCtx): 1 | Fate;
  /** Whether conntrack (and so nf_defrag_ipv4 at PRE_ROUTING/LOCAL_OUT) is registered. */
  readonly conntrack: boolean;
}

const isMulticast = (a: number) => a >>> 28 === 0xe;
const isLocalMulticast = (a: number) => (a & 0xffffff00) >>> 0 === 0xe0000000;
const isLoopback = (a: number) => a >>> 24 === 127;
/** ipv4_is_zeronet() since 5.3: only 0.0.0.0. */
const isZero = (a: number) => a === 0;

function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

const macCache = new Map<string, Uint8Array>();
/** A link's MAC address as bytes, parsed once (empty when it is not an Ethernet address). */
function macBytes(mac: string): Uint8Array {
  let b = macCache.get(mac);
  if (!b) macCache.set(mac, (b = parseMac(mac) ?? new Uint8Array(0)));
  return b;
}

/**
 * An IPv4 address as the FIB takes it, in one of four reused slots (no text
 * round trip, no allocation on the packet path): each is filled right before
 * the fibLookup() that reads it, and FIB results keep no reference to it.
 */
const V4_SLOTS: IpAddr[] = [0, 1, 2, 3].map(() => ({ family: 4 as const, w: new Uint32Array(1) }));
function v4(a: number, slot: number): IpAddr {
  const x = V4_SLOTS[slot]!;
  x.w[0] = a;
  return x;
}

function dropped(reason: DropReason, detail: string): Fate {
  return { kind: 'dropped', reason, detail, by: undefined };
}

/** The kernel's knobs of one device, as the input path reads them (IN_DEV_* macros). */
interface DevKnobs {
  forward: boolean;
  bforward: boolean;
  rpFilter: number;
  acceptLocal: boolean;
  routeLocalnet: boolean;
  srcValidMark: boolean;
  txRedirects: boolean;
}

/** Per-device sysctl values, read once per device (the sysctls of a snapshot do not change). */
class DevConf {
  private readonly cache = new Map<string, DevKnobs>();
  constructor(readonly node: Node) {}
  private knobs(dev: string): DevKnobs {
    let k = this.cache.get(dev);
    if (!k) {
      const sc = this.node.sysctl;
      const or = (name: string) => sc.allConf(4, name) > 0 || sc.devConf(4, dev, name) > 0;
      k = {
        forward: sc.forwarding(dev),
        bforward: sc.allConf(4, 'bc_forwarding') > 0 && sc.devConf(4, dev, 'bc_forwarding') > 0,
        rpFilter: sc.rpFilter(dev),
        acceptLocal: or('accept_local'),
        routeLocalnet: or('route_localnet'),
        srcValidMark: or('src_valid_mark'),
        txRedirects: or('send_redirects'),
      };
      this.cache.set(dev, k);
    }
    return k;
  }
  forward(dev: string): boolean {
    return this.knobs(dev).forward;
  }
  bforward(dev: string): boolean {
    return this.knobs(dev).bforward;
  }
  rpFilter(dev: string): number {
    return this.knobs(dev).rpFilter;
  }
  acceptLocal(dev: string): boolean {
    return this.knobs(dev).acceptLocal;
  }
  routeLocalnet(dev: string): boolean {
    return this.knobs(dev).routeLocalnet;
  }
  srcValidMark(dev: string): boolean {
    return this.knobs(dev).srcValidMark;
  }
  txRedirects(dev: string): boolean {
    return this.knobs(dev).txRedirects;
  }
}

/** The result of the input route (skb_dst after ip_route_input_noref). */
export type InputRoute =
  | { kind: 'local'; cast: 'unicast' | 'broadcast' | 'multicast' }
  | { kind: 'forward'; dev: string; gateway: string | undefined; mtu: number }
  | { kind: 'drop'; fate: Fate };

/** A packet path over one node. */
export class Ipv4Path {
  private readonly conf: DevConf;
  private readonly ifaddrs: Set<number>;
  private readonly customRules: boolean;
  private readonly customLocalRoutes: boolean;

  constructor(
    readonly node: Node,
    readonly nf: Netfilter,
  ) {
    this.conf = new DevConf(node);
    this.ifaddrs = new Set(node.addresses.filter((a: Address) => a.family === 4).map((a) => a.local.w[0]!));
    // fib4_has_custom_rules(): any rule besides the three fib_default_rules_init() creates.
    this.customRules = node.fib4.rules.some((r) => {
      const dflt = r.src === undefined && r.dst === undefined && r.iif === '' && r.oif === '' && r.markMask === 0 && !r.invert &&
        ((r.pref === 0 && r.table === 255) || (r.pref === 32766 && r.table === 254) || (r.pref === 32767 && r.table === 253));
      return !dflt;
    }) || node.fib4.rules.length !== 3;
    // fib_has_custom_local_routes: a local route added through rtnetlink (not the kernel's own).
    const lt = node.fib4.tables.get(RT_TABLE_LOCAL);
    this.customLocalRoutes = lt ? lt.routes().some((r) => r.type === RTN_LOCAL && r.protocol !== 'kernel') : false;
  }

  link(name: string): Link | undefined {
    return this.node.links.get(name);
  }

  /**
   * A frame received on `dev` (pkt already decoded, with its link header if
   * it has one). Runs the whole receive path.
   */
  receive(pkt: Packet, dev: Link, ctx: PathCtx): Fate {
    const m = pkt.meta;
    setDevice(pkt, 'in', dev.ifindex, dev.name, arphrd(dev), dev.group);
    setDevice(pkt, 'out', 0);
    // eth_type_trans()
    if ((m[M_FLAGS]! & F_MAC_HEADER) !== 0 && dev.mac !== '') {
      const mac = m[M_MACOFF]!;
      const d = pkt.data;
      const own = macBytes(dev.mac);
      let same = own.length === 6;
      for (let i = 0; same && i < 6; i++) if (d[mac + i] !== own[i]) same = false;
      if (!same) {
        const bcast = d[mac] === 0xff && d[mac + 1] === 0xff && d[mac + 2] === 0xff && d[mac + 3] === 0xff && d[mac + 4] === 0xff && d[mac + 5] === 0xff;
        m[M_PKTTYPE] = bcast ? PACKET_BROADCAST : (d[mac]! & 1) !== 0 ? PACKET_MULTICAST : PACKET_OTHERHOST;
      } else m[M_PKTTYPE] = PACKET_HOST;
    }
    if (!dev.up) return dropped('device', `${dev.name} is down`);
    const bad = ipRcvCore(pkt);
    if (bad) return bad;
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `ip_rcv: ${dev.name} accepts the packet (pkt_type ${PKT_TYPES[m[M_PKTTYPE]!] ?? m[M_PKTTYPE]})` });
    if (this.nf.conntrack && isFragment(pkt)) {
      // nf_defrag_ipv4 at PRE_ROUTING -400 queues the fragment before any table sees it.
      return dropped('reassembly', 'a fragment, held by nf_defrag_ipv4 for reassembly before PREROUTING');
    }
    const pre = this.nf.hook(NF_INET_PRE_ROUTING, pkt, dev, undefined, ctx);
    if (pre !== 1) return pre;
    // ip_rcv_finish_core(): the input route.
    const rt = this.routeInput(pkt, dev, ctx);
    if (rt.kind === 'drop') return rt.fate;
    if (rt.kind === 'local') return this.localDeliver(pkt, dev, rt.cast, ctx);
    return this.forward(pkt, dev, rt, ctx);
  }

  /** ip_route_input_rcu() + ip_route_input_slow(). */
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const saddr = u32(d, nh + 12);
    const daddr = u32(d, nh + 16);
    const tos = d[nh + 1]!;
    const name = dev.name;
    const martianSrc = (why: string): InputRoute => ({ kind: 'drop', fate: dropped('martian-source', `martian source ${formatIPv4(saddr)} (${why})`) });
    const martianDst = (why: string): InputRoute => ({ kind: 'drop', fate: dropped('martian-destination', `martian destination ${formatIPv4(daddr)} (${why})`) });
    const validate = (dst: number, oif: string): InputRoute | undefined => {
      const r = this.validateSource(pkt, saddr, dst, tos, oif, dev);
      if (r === -EXDEV) return { kind: 'drop', fate: dropped('rp-filter', `reverse path filter (rp_filter ${this.conf.rpFilter(name)}) refuses source ${formatIPv4(saddr)} on ${name}`) };
      if (r < 0) return martianSrc(this.ifaddrs.has(saddr) ? 'one of the node\'s addresses' : 'no valid reverse route');
      return undefined;
    };

    if (isMulticast(daddr)) {
      // ip_check_mc_rcu(): every up IFF_MULTICAST device has joined 224.0.0.1 (ip_mc_up).
      const our = daddr === IGMP_ALL_HOSTS && dev.flags.includes('MULTICAST');
      if (!our) return { kind: 'drop', fate: dropped('multicast', `multicast ${formatIPv4(daddr)}: no group joined on ${name} (multicast routing is not modelled)`) };
      // ip_mc_validate_source()
      if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return martianSrc('multicast or limited broadcast');
      if (isLoopback(saddr) && !this.conf.routeLocalnet(name)) return martianSrc('loopback, route_localnet off');
      if (isZero(saddr)) {
        if (!isLocalMulticast(daddr) && d[nh + 9] !== IPPROTO_IGMP) return martianSrc('zero source');
      } else {
        const v = validate(0, '');
        if (v) return v;
      }
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: multicast ${formatIPv4(daddr)} joined on ${name}: local delivery` });
      return { kind: 'local', cast: 'multicast' };
    }

    if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return martianSrc('multicast or limited broadcast');
    let brd = daddr === INADDR_BROADCAST || (saddr === 0 && daddr === 0);
    let res: FibResult | undefined;
    if (!brd) {
      if (isZero(saddr)) return martianSrc('zero source');
      if (isZero(daddr)) return martianDst('zero destination');
      if (isLoopback(daddr)) {
        if (!this.conf.routeLocalnet(name)) return martianDst(`127.0.0.0/8 from outside, route_localnet off on ${name}`);
      } else if (isLoopback(saddr)) {
        if (!this.conf.routeLocalnet(name)) return martianSrc(`127.0.0.0/8 from outside, route_localnet off on ${name}`);
      }
      res = fibLookup(this.node, this.flow(pkt, daddr, saddr, tos, name));
      if (!res.ok) {
        // no_route: an RTN_UNREACHABLE input route whose dst.input is ip_error.
        const err = this.conf.forward(name) ? res.errno : EHOSTUNREACH;
        const what = res.error === 'noroute' ? 'no route' : `${res.error} route`;
        return { kind: 'drop', fate: dropped('no-route', `${what} to ${formatIPv4(daddr)} (ip_error, errno ${err})`) };
      }
      if (res.rtnType === RTN_BROADCAST) {
        if (this.conf.bforward(name)) return this.mkrouteInput(pkt, dev, res, saddr, daddr, tos, ctx);
        brd = true;
      } else if (res.rtnType === RTN_LOCAL) {
        const v = validate(daddr, '');
        if (v) return v;
        if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} is local (table ${tableName(res.table)}): INPUT` });
        return { kind: 'local', cast: 'unicast' };
      } else {
        if (!this.conf.forward(name)) return { kind: 'drop', fate: dropped('ip-forward-off', `${formatIPv4(daddr)} is not local and ${name} does not forward (net.ipv4.conf.${name}.forwarding = 0)`) };
        if (res.rtnType !== RTN_UNICAST) return martianDst(`route type ${res.type}`);
        return this.mkrouteInput(pkt, dev, res, saddr, daddr, tos, ctx);
      }
    }
    // brd_input
    if (!isZero(saddr)) {
      const v = validate(0, '');
      if (v) return v;
    }
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} is a broadcast address: local delivery` });
    return { kind: 'local', cast: 'broadcast' };
  }

  private flow(pkt: Packet, daddr: number, saddr: number, tos: number, iif: string) {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const proto = d[nh + 9]!;
    const th = nh + (d[nh]! & 0x0f) * 4;
    const ports = (proto === 6 || proto === 17 || proto === 132) && !isFragment(pkt) && th + 4 <= nh + m[M_LEN]!;
    return {
      daddr: v4(daddr, 0), saddr: v4(saddr, 1), iif, mark: m[M_MARK]! >>> 0, tos, proto,
      sport: ports ? (d[th]! << 8) | d[th + 1]! : 0, dport: ports ? (d[th + 2]! << 8) | d[th + 3]! : 0,
    };
  }

  /** __mkroute_input(): validate the source against the egress, then forward. */
  private mkrouteInput(pkt: Packet, dev: Link, res: FibResult & { ok: true }, saddr: number, daddr: number, tos: number, ctx: PathCtx): InputRoute {
    const r = this.validateSource(pkt, saddr, daddr, tos, res.dev, dev);
    if (r === -EXDEV) return { kind: 'drop', fate: dropped('rp-filter', `reverse path filter (rp_filter ${this.conf.rpFilter(dev.name)}) refuses source ${formatIPv4(saddr)} on ${dev.name}`) };
    if (r < 0) return { kind: 'drop', fate: dropped('martian-source', `martian source ${formatIPv4(saddr)} (${this.ifaddrs.has(saddr) ? 'one of the node\'s addresses' : 'no valid reverse route'})`) };
    const gw = res.gateway && res.gateway.family === 4 ? (ctx.quiet ? '' : formatIPv4(res.gateway.w[0]!)) : undefined;
    const out = this.node.links.get(res.dev);
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): FORWARD out ${res.dev}` });
    return { kind: 'forward', dev: res.dev, gateway: gw, mtu: out?.mtu ?? 1500 };
  }

  /**
   * fib_validate_source(): 0 or 1 when the source is acceptable, -EINVAL
   * (martian) or -EXDEV (rp_filter) otherwise. `oif` is the egress device
   * name for a forwarded packet, '' for local input.
   */
  validateSource(pkt: Packet, src: number, dst: number, tos: number, oif: string, dev: Link): number {
    const name = dev.name;
    const rpf = this.conf.rpFilter(name);
    if (rpf === 0 && (name !== oif || !this.conf.txRedirects(name))) {
      if (this.conf.acceptLocal(name)) return 0;
      if (!this.customLocalRoutes && !this.customRules) return this.ifaddrs.has(src) ? -EINVAL : 0;
    }
    // __fib_validate_source()
    const mark = this.conf.srcValidMark(name) ? pkt.meta[M_MARK]! >>> 0 : 0;
    const res = fibLookup(this.node, { daddr: v4(src, 2), saddr: v4(dst, 3), iif: oif || 'lo', mark, tos });
    const noAddr = !this.node.addresses.some((a) => a.family === 4 && a.dev === name);
    if (!res.ok) return rpf ? -EXDEV : 0;
    if (res.rtnType !== RTN_UNICAST && (res.rtnType !== RTN_LOCAL || !this.conf.acceptLocal(name))) return -EINVAL;
    const devMatch = res.route.nexthops.some((n) => n.dev === name) || (res.rtnType === RTN_LOCAL && dev.loopback);
    if (devMatch) return res.route.scope >= RT_SCOPE_HOST ? 1 : 0;
    if (noAddr) return rpf ? -EXDEV : 0;
    if (rpf === 1) return -EXDEV;
    const loose = fibLookup(this.node, { daddr: v4(src, 2), saddr: v4(dst, 3), iif: oif || 'lo', oif: name, mark, tos });
    return loose.ok && loose.rtnType === RTN_UNICAST && loose.route.scope >= RT_SCOPE_HOST ? 1 : 0;
  }

  /** ip_local_deliver(): fragments wait for reassembly, then LOCAL_IN. */
  private localDeliver(pkt: Packet, dev: Link, cast: 'unicast' | 'broadcast' | 'multicast', ctx: PathCtx): Fate {
    if (isFragment(pkt)) return dropped('reassembly', 'a fragment for this host, held by ip_defrag for reassembly before INPUT');
    const r = this.nf.hook(NF_INET_LOCAL_IN, pkt, dev, undefined, ctx);
    if (r !== 1) return r;
    const nh = pkt.meta[M_NHOFF]!;
    return { kind: 'delivered', addr: formatIPv4(u32(pkt.data, nh + 16)), dev: dev.name, cast };
  }

  /** ip_forward() + ip_forward_finish() + ip_output(). */
  private forward(pkt: Packet, dev: Link, rt: { dev: string; gateway: string | undefined; mtu: number }, ctx: PathCtx): Fate {
    const m = pkt.meta;
    const d = pkt.data;
    const nh = m[M_NHOFF]!;
    if (m[M_PKTTYPE] !== PACKET_HOST) return dropped('not-host', `a link-layer ${PKT_TYPES[m[M_PKTTYPE]!]} frame is not forwarded (ip_forward)`);
    if (d[nh + 8]! <= 1) return dropped('ttl', `TTL ${d[nh + 8]} exceeded in transit (ICMP time exceeded sent, FORWARD not reached)`);
    const len = m[M_LEN]!;
    if (len > rt.mtu && (d[nh + 6]! & 0x40) !== 0) return dropped('mtu', `${len} bytes with DF exceed the MTU ${rt.mtu} of ${rt.dev} (ICMP fragmentation needed sent)`);
    // ip_decrease_ttl(): TTL - 1 and the checksum adjusted incrementally.
    d[nh + 8] = d[nh + 8]! - 1;
    let check = ((d[nh + 10]! << 8) | d[nh + 11]!) + 0x0100;
    check = (check + (check >= 0xffff ? 1 : 0)) & 0xffff;
    d[nh + 10] = check >>> 8;
    d[nh + 11] = check & 0xff;
    const out = this.node.links.get(rt.dev);
    if (!out) return dropped('device', `route names device ${rt.dev}, which the snapshot does not have`);
    const fwd = this.nf.hook(NF_INET_FORWARD, pkt, dev, out, ctx);
    if (fwd !== 1) return fwd;
    const post = this.nf.hook(NF_INET_POST_ROUTING, pkt, dev, out, ctx);
    if (post !== 1) return post;
    return { kind: 'forwarded', dev: rt.dev, via: rt.gateway, dst: ctx.quiet ? '' : formatIPv4(u32(d, nh + 16)) };
  }

  /**
   * A packet sent by a local program (raw IPv4 at pkt's network header):
   * output route, LOCAL_OUT (with mangle's re-route), POST_ROUTING, then out
   * of a device or back in through lo.
   */
  send(pkt: Packet, oif: string, ctx: PathCtx): Fate {
    const m = pkt.meta;
    setDevice(pkt, 'in', 0);
    const bad = ipRcvCore(pkt, false);
    if (bad) return bad;
    const first = this.routeOutput(pkt, oif);
    if ('fate' in first) return first.fate;
    let route = first;
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: route.text });
    let out = this.node.links.get(route.dev);
    if (!out) return dropped('device', `route names device ${route.dev}, which the snapshot does not have`);
    ctx.reroute = (p: Packet) => {
      const r = this.routeOutput(p, oif);
      if ('fate' in r) return -EHOSTUNREACH;
      const l = this.node.links.get(r.dev);
      if (!l) return -EINVAL;
      route = r;
      out = l;
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `re-route after mangle OUTPUT: ${r.text}` });
      setDevice(p, 'out', l.ifindex, l.name, arphrd(l), l.group);
      return l;
    };
    const lo = this.nf.hook(NF_INET_LOCAL_OUT, pkt, undefined, out, ctx);
    ctx.reroute = undefined;
    if (lo !== 1) return lo;
    const post = this.nf.hook(NF_INET_POST_ROUTING, pkt, undefined, out, ctx);
    if (post !== 1) return post;
    const nh = m[M_NHOFF]!;
    const dst = formatIPv4(u32(pkt.data, nh + 16));
    if (route.local) {
      // loopback_xmit(): back in on lo with a zero Ethernet header; the route is kept (no input lookup).
      const loLink = out;
      const ip = pkt.data.slice(nh, nh + m[M_LEN]!);
      const frame = new Uint8Array(14 + ip.length);
      frame[12] = 0x08;
      frame.set(ip, 14);
      pkt.setFrame(frame);
      decodePacket(pkt, LINKTYPE_ETHERNET);
      setDevice(pkt, 'in', loLink.ifindex, loLink.name, arphrd(loLink), loLink.group);
      setDevice(pkt, 'out', 0);
      const pre = this.nf.hook(NF_INET_PRE_ROUTING, pkt, loLink, undefined, ctx);
      if (pre !== 1) return pre;
      return this.localDeliver(pkt, loLink, route.cast, ctx);
    }
    return { kind: 'sent', dev: route.dev, via: route.gateway, dst, cast: route.cast };
  }

  /**
   * ip_route_output_key_hash_rcu(), reduced: daddr 0 → lo; the policy
   * lookup with iif lo and the packet's mark; a local route → lo; limited
   * broadcast and multicast go out of the device the lookup gives.
   */
  routeOutput(pkt: Packet, oif: string): { dev: string; gateway: string | undefined; local: boolean; cast: 'unicast' | 'broadcast' | 'multicast'; text: string } | { fate: Fate } {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const saddr = u32(d, nh + 12);
    const daddr = u32(d, nh + 16);
    if (daddr === 0) return { dev: 'lo', gateway: undefined, local: true, cast: 'unicast', text: 'output route: 0.0.0.0 → lo' };
    const flow = { ...this.flow(pkt, daddr, saddr, d[nh + 1]!, ''), oif };
    const res = fibLookup(this.node, flow);
    if (!res.ok) return { fate: dropped('no-route', `no output route to ${formatIPv4(daddr)} (${res.error}; the sender gets errno ${res.errno})`) };
    if (res.rtnType === RTN_LOCAL) return { dev: 'lo', gateway: undefined, local: true, cast: 'unicast', text: `output route: ${formatIPv4(daddr)} is local: out lo and back in` };
    const cast = daddr === INADDR_BROADCAST || res.rtnType === RTN_BROADCAST ? 'broadcast' : isMulticast(daddr) ? 'multicast' : 'unicast';
    const gw = res.gateway && res.gateway.family === 4 ? formatIPv4(res.gateway.w[0]!) : undefined;
    return { dev: res.dev, gateway: gw, local: false, cast, text: `output route: ${formatIPv4(daddr)} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): out ${res.dev}` };
  }
}

const PKT_TYPES = ['host', 'broadcast', 'multicast', 'otherhost', 'outgoing', 'loopback'];

function tableName(id: number): string {
  return id === 255 ? 'local' : id === 254 ? 'main' : id === 253 ? 'default' : String(id);
}

function routeText(res: FibResult & { ok: true }): string {
  const r = res.route;
  const dst = r.plen === 0 ? 'default' : `${formatIPv4(r.dst.w[0]!)}/${r.plen}`;
  const gw = res.gateway && res.gateway.family === 4 ? ` via ${formatIPv4(res.gateway.w[0]!)}` : '';
  return `${dst}${gw} dev ${res.dev}`;
}

/** MF set or a non-zero offset (ip_is_fragment). */
export function isFragment(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  return (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x3fff) !== 0;
}

/**
 * ip_rcv_core(): PACKET_OTHERHOST, then the header checks (length, version,
 * ihl, checksum, tot_len against the data); undefined when the packet goes on.
 * decodePacket() has already trimmed M_LEN to tot_len when it fits.
 */
export function ipRcvCore(pkt: Packet, checkOtherhost = true): Fate | undefined {
  const m = pkt.meta;
  const d = pkt.data;
  if (checkOtherhost && m[M_PKTTYPE] === PACKET_OTHERHOST) {
    return dropped('other-host', 'the destination MAC is not the device\'s (PACKET_OTHERHOST, dropped before PREROUTING)');
  }
  if (m[M_NHOFF]! === 0 && m[M_FLAGS]! & F_MAC_HEADER) return dropped('bad-header', 'frame shorter than an Ethernet header');
  const nh = m[M_NHOFF]!;
  const avail = pkt.len - nh;
  if (avail < 20) return dropped('bad-header', `truncated IPv4 header (${Math.max(0, avail)} bytes)`);
  const ihl = d[nh]! & 0x0f;
  if (d[nh]! >> 4 !== 4) return dropped('not-ip', `IP version ${d[nh]! >> 4} in an IPv4 frame`);
  if (ihl < 5) return dropped('bad-header', `IPv4 header length ${ihl * 4} < 20`);
  if (avail < ihl * 4) return dropped('bad-header', `truncated IPv4 header (${avail} of ${ihl * 4} bytes)`);
  let sum = 0;
  for (let i = 0; i < ihl * 4; i += 2) sum += (d[nh + i]! << 8) | d[nh + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== 0xffff) return dropped('bad-header', 'bad IPv4 header checksum');
  const tot = (d[nh + 2]! << 8) | d[nh + 3]!;
  if (avail < tot) return dropped('bad-header', `truncated packet (${avail} bytes, tot_len ${tot})`);
  if (tot < ihl * 4) return dropped('bad-header', `tot_len ${tot} shorter than the header`);
  return undefined;
}

export { NFPROTO_IPV4 };
