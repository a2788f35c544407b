/**
 * IPv4 routing on the packet path: the input route of a received packet and
 * the output route of a locally generated one.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/route.c        ip_route_input_rcu() (multicast: ip_check_mc_rcu, ip_route_input_mc,
 *                           ip_mc_validate_source), ip_route_input_slow() (martians, route_localnet,
 *                           brd_input, local_input, no_route, forwarding off, __mkroute_input),
 *                           ip_route_output_key_hash_rcu() (reduced: see routeOutput)
 *   net/ipv4/fib_frontend.c fib_validate_source() / __fib_validate_source() (rp_filter, accept_local,
 *                           src_valid_mark, the fast path without custom rules or local routes)
 *
 * Not modelled (documented gaps): multicast routing and groups other than
 * 224.0.0.1, the looped-back copy of locally sent broadcasts.
 */
import type { Node, Link, Address } from '../snapshot/node.js';
import { fibEpoch, fibLookup } from '../route/index.js';
import { newXfrmFlow, xfrmFlow4, xfrmFlow4At, type XfrmPolicies } from '../route/xfrm.js';
import { formatIPv4, keptAddrText, maskWord, type IpAddr } from '../route/addr.js';
import {
  RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, RT_TABLE_LOCAL, type FibResult,
} from '../route/types.js';
import { M_END, M_LEN, M_MARK, M_NHOFF, M_RTCLASSID } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import {
  dropped, EHOSTUNREACH, EINVAL, EXDEV, LOCAL_ROUTE, routeText, tableName, type Cast, type InputRoute, type OutputRoute, type XfrmRouting, type PathCtx,
} from './ctx.js';
import { isFragment, u32 } from './ipv4.js';
import type { DropReason, Fate } from './fate.js';
import { icmpXfrmRoute, xfrmRoute } from './xfrm-out.js';
import { InputRouteCache, rulesSelectPorts } from './route-cache.js';
import { fibMultipathHash4, hasMultipath, MultipathConf } from '../route/multipath.js';

const IPPROTO_IGMP = 2;
const INADDR_BROADCAST = 0xffffffff;
const IGMP_ALL_HOSTS = 0xe0000001;

const isMulticast = (a: number) => a >>> 28 === 0xe;
const isLocalMulticast = (a: number) => (a & 0xffffff00) >>> 0 === 0xe0000000;
const isLoopback = (a: number) => a >>> 24 === 127;
/** ipv4_is_zeronet() since 5.3: only 0.0.0.0. */
const isZero = (a: number) => a === 0;

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

/** The kernel's knobs of one device, as the input path reads them (IN_DEV_* macros). */
interface DevKnobs {
  forward: boolean;
  bforward: boolean;
  rpFilter: number;
  acceptLocal: boolean;
  routeLocalnet: boolean;
  srcValidMark: boolean;
  txRedirects: boolean;
  sharedMedia: boolean;
}

/** Per-device sysctl values, read once per device (the sysctls of a snapshot do not change). */
class DevConf {
  private readonly cache = new Map<string, DevKnobs>();
  /** The device asked for last (the snapshot's Link, compared as an object) and its knobs: frames come in on few devices. */
  private lastLink: Link | undefined;
  private lastKnobs: DevKnobs | undefined;
  constructor(readonly node: Node) {}
  knobs(link: Link): DevKnobs {
    if (link === this.lastLink) return this.lastKnobs!;
    const k = this.cache.get(link.name) ?? this.read(link.name);
    this.lastLink = link;
    this.lastKnobs = k;
    return k;
  }

  /**
   * The knobs of a device not asked for before. Apart from knobs(): a
   * function whose closure captures its variables allocates their context
   * on every call, the fast path's too.
   */
  private read(dev: string): DevKnobs {
    const sc = this.node.sysctl;
    const or = (name: string) => sc.allConf(4, name) > 0 || sc.devConf(4, dev, name) > 0;
    const k: DevKnobs = {
      forward: sc.forwarding(dev),
      bforward: sc.allConf(4, 'bc_forwarding') > 0 && sc.devConf(4, dev, 'bc_forwarding') > 0,
      rpFilter: sc.rpFilter(dev),
      acceptLocal: or('accept_local'),
      routeLocalnet: or('route_localnet'),
      srcValidMark: or('src_valid_mark'),
      txRedirects: or('send_redirects'),
      sharedMedia: or('shared_media'),
    };
    this.cache.set(dev, k);
    return k;
  }
}

/**
 * The detail of a routing drop, made from its parts (an address, two
 * strings, a number) only when something reads it: a replay counts the
 * drop by its reason and never formats the text.
 */
type DropText = (addr: number, s: string, t: string, n: number) => string;

const MULTICAST: DropText = (a, dev) => `multicast ${formatIPv4(a)}: no group joined on ${dev} (multicast routing is not modelled)`;
const MARTIAN_SRC: DropText = (a, why) => `martian source ${formatIPv4(a)} (${why})`;
const MARTIAN_DST: DropText = (a, why) => `martian destination ${formatIPv4(a)} (${why})`;
const MARTIAN_SRC_LOCALNET: DropText = (a, dev) => `martian source ${formatIPv4(a)} (127.0.0.0/8 from outside, route_localnet off on ${dev})`;
const MARTIAN_DST_LOCALNET: DropText = (a, dev) => `martian destination ${formatIPv4(a)} (127.0.0.0/8 from outside, route_localnet off on ${dev})`;
const MARTIAN_DST_TYPE: DropText = (a, type) => `martian destination ${formatIPv4(a)} (route type ${type})`;
const NO_ROUTE: DropText = (a, error, _t, errno) => `${error === 'noroute' ? 'no route' : `${error} route`} to ${formatIPv4(a)} (ip_error, errno ${errno})`;
const FORWARD_OFF: DropText = (a, dev) => `${formatIPv4(a)} is not local and ${dev} does not forward (net.ipv4.conf.${dev}.forwarding = 0)`;
const RP_FILTER: DropText = (a, dev, _t, rp) => `reverse path filter (rp_filter ${rp}) refuses source ${formatIPv4(a)} on ${dev}`;

/**
 * A routing drop's fate whose detail is formatted when read (an own
 * enumerable accessor, so it prints and compares as the plain fate does);
 * its parts are private fields.
 */
class LazyDropFate {
  declare readonly kind: 'dropped';
  declare reason: DropReason;
  declare readonly detail: string;
  declare by: undefined;
  declare nat?: string[];
  #text: DropText = MARTIAN_SRC;
  #a = 0;
  #s = '';
  #t = '';
  #n = 0;
  constructor() {
    // in the order dropped() gives its fields
    Object.defineProperty(this, 'kind', { value: 'dropped', enumerable: true });
    this.reason = 'martian-source';
    Object.defineProperty(this, 'detail', { get: () => this.#text(this.#a, this.#s, this.#t, this.#n), enumerable: true });
    this.by = undefined;
  }
  set(reason: DropReason, text: DropText, a: number, s: string, t: string, n: number): this {
    this.reason = reason;
    this.#text = text;
    this.#a = a;
    this.#s = s;
    this.#t = t;
    this.#n = n;
    // a reused fate may have been given a packet's NAT rewrites (Node.finish)
    if (this.nat !== undefined) this.nat = undefined;
    return this;
  }
}

/** A routing drop: formatted now when the path is traced, else a fate formatted when read, the same one packet after packet for a reused context. */
class RouteDrops {
  private readonly fate = new LazyDropFate();
  private readonly route: { kind: 'drop'; fate: Fate; errno?: number } = { kind: 'drop', fate: this.fate, errno: undefined };
  drop(ctx: PathCtx, reason: DropReason, text: DropText, a: number, s = '', t = '', n = 0, errno?: number): InputRoute {
    if (!ctx.quiet) return errno === undefined ? { kind: 'drop', fate: dropped(reason, text(a, s, t, n)) } : { kind: 'drop', fate: dropped(reason, text(a, s, t, n)), errno };
    if (!ctx.transient) return errno === undefined ? { kind: 'drop', fate: new LazyDropFate().set(reason, text, a, s, t, n) } : { kind: 'drop', fate: new LazyDropFate().set(reason, text, a, s, t, n), errno };
    this.fate.set(reason, text, a, s, t, n);
    this.route.errno = errno;
    return this.route;
  }
}

/** The nexthop a lookup chose (FIB_RES_NH(res)). */
function usedNexthop(res: FibResult & { ok: true }): object | undefined {
  for (const nh of res.route.nexthops) if (nh.dev === res.dev && nh.gateway === res.gateway) return nh;
  return undefined;
}

/** nh_tclassid of the nexthop a lookup chose. */
function nhTclassid(res: FibResult & { ok: true }): number {
  const nh = usedNexthop(res) as { realm?: number } | undefined;
  return nh?.realm ?? 0;
}

/** set_class_tag(): fill the halves of the route's tclassid that are still 0 from `tag`. */
function setClassTag(tclassid: number, tag: number): number {
  let t = tclassid;
  if (!(t & 0xffff)) t |= tag & 0xffff;
  if (!(t & 0xffff0000)) t |= tag & 0xffff0000;
  return t | 0;
}

/** rt_set_nexthop()'s dst.tclassid: the nexthop's realms, then the rule's (res->tclassid), then the input tag. */
function rtSetNexthopTclassid(res: FibResult & { ok: true }, itag: number): number {
  return setClassTag(setClassTag(nhTclassid(res), res.rule?.realms ?? 0), itag);
}

/** fib_combine_itag(): the reverse route's realm as the source realm, else the rule's, with the rule's source realm below. */
function combineItag(res: FibResult & { ok: true }): number {
  let itag = (nhTclassid(res) << 16) >>> 0;
  const rtag = res.rule?.realms ?? 0;
  if (itag === 0) itag = (rtag << 16) >>> 0;
  return (itag | (rtag >>> 16)) | 0;
}

/** The ports of a flow key (sport << 16 | dport): TCP, UDP and SCTP, not of a fragment, 0 otherwise. */
function flowPorts(pkt: Packet, proto: number): number {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = nh + (d[nh]! & 0x0f) * 4;
  if (!((proto === 6 || proto === 17 || proto === 132) && !isFragment(pkt) && th + 4 <= nh + m[M_LEN]!)) return 0;
  return ((d[th]! << 24) | (d[th + 1]! << 16) | (d[th + 2]! << 8) | d[th + 3]!) | 0;
}

/** The IPv4 routing decisions of one node. */
export class Ipv4Route {
  private readonly conf: DevConf;
  private readonly ifaddrs: Set<number>;
  /** The devices that have an IPv4 address (in_dev->ifa_list not empty). */
  private readonly addrDevs: Set<string>;
  /** The flow keys of the input route's and fib_validate_source()'s lookups, filled again for each packet (fibLookup keeps neither). */
  private readonly inFlow = { daddr: v4(0, 0), saddr: v4(0, 1), iif: '', oif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 };
  private readonly outFlow = { daddr: v4(0, 0), saddr: v4(0, 1), iif: '', oif: '', mark: 0, tos: 0, proto: 0, sport: 0, dport: 0 };
  private readonly outRoutes = new WeakMap<FibResult, OutputRoute>();
  private readonly xfrmFlow = newXfrmFlow();
  private readonly srcFlow = { daddr: v4(0, 2), saddr: v4(0, 3), iif: '', oif: '', mark: 0, tos: 0 };
  private readonly customRules: boolean;
  private readonly customLocalRoutes: boolean;
  /** fib_num_tclassid_users() > 0: a nexthop or a rule carries realms. */
  private readonly tclassidUsers: boolean;
  /**
   * The cached routes' tclassid per nexthop (nhc_rth_input, and
   * nhc_pcpu_rth_output of CPU 0): a route made with itag 0 is cached on
   * its nexthop and later packets through that nexthop take it as it is,
   * realms of the policy rule that first made it included. Empty at the
   * start: a snapshot does not hold the kernel's route cache.
   */
  private readonly rthInput = new Map<object, number>();
  private readonly rthOutput = new Map<object, number>();
  /** The itag the last validateSource() gave (fib_combine_itag() of the reverse route; 0 when the check was skipped). */
  private itag = 0;
  private readonly drops = new RouteDrops();
  private readonly fwdRoute: { kind: 'forward'; dev: string; gateway: string | undefined; mtu: number; redirect: number } = { kind: 'forward', dev: '', gateway: undefined, mtu: 0, redirect: -1 };
  /** The input routes of untraced packets, kept by their inputs (route-cache.ts), made at the first; none when realms make the route depend on earlier packets (memoOk). */
  private memo: InputRouteCache | undefined;
  private readonly memoOk: boolean;
  /** A policy rule selects on the protocol or ports: the memo keys on them. */
  private readonly memoPorts: boolean;
  /** A route has several nexthops: a forwarded packet's is chosen by its hash (route/multipath.ts). */
  private readonly multipath: boolean;
  private readonly mp: MultipathConf;

  constructor(readonly node: Node) {
    this.conf = new DevConf(node);
    this.ifaddrs = new Set(node.addresses.filter((a: Address) => a.family === 4).map((a) => a.local.w[0]!));
    this.addrDevs = new Set(node.addresses.filter((a: Address) => a.family === 4).map((a) => a.dev));
    this.customRules = !node.fib4.localMainMerged;
    // fib_has_custom_local_routes: a local route added through rtnetlink (not the kernel's own), to any table (inet_rtm_newroute).
    this.customLocalRoutes = [...node.fib4.tables.values()].some((t) => t.routes().some((r) => r.type === RTN_LOCAL && r.protocol !== 'kernel'));
    this.tclassidUsers = node.fib4.rules.some((r) => (r.realms ?? 0) !== 0) ||
      [...node.fib4.tables.values()].some((t) => t.routes().some((r) => r.nexthops.some((n) => (n.realm ?? 0) !== 0)));
    this.multipath = hasMultipath(node.fib4);
    // the chosen nexthop depends on the packet's hash: no memo of input routes
    this.memoOk = !this.tclassidUsers && !this.multipath;
    this.memoPorts = rulesSelectPorts(node.fib4.rules);
    this.mp = new MultipathConf(node.sysctl, 4);
  }

  /** The tclassid of the route rt_set_nexthop() makes, or of the one cached on the nexthop (do_cache: a fib_info and itag 0). */
  private cachedTclassid(cache: Map<object, number>, res: FibResult & { ok: true }, itag: number): number {
    if (itag !== 0) return rtSetNexthopTclassid(res, itag);
    const nh = usedNexthop(res);
    if (!nh) return rtSetNexthopTclassid(res, 0);
    let t = cache.get(nh);
    if (t === undefined) {
      t = rtSetNexthopTclassid(res, 0);
      cache.set(nh, t);
    }
    return t;
  }

  /** ip_route_input_rcu() + ip_route_input_slow(). */
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const saddr = u32(d, nh + 12);
    const daddr = u32(d, nh + 16);
    const tos = d[nh + 1]!;
    const name = dev.name;
    const memo = ctx.quiet && this.memoOk ? (this.memo ??= new InputRouteCache(fibEpoch, 1)) : undefined;
    if (memo !== undefined) {
      // the flow's protocol and ports reach the answer only through policy rules that select on them
      const proto = this.memoPorts ? d[nh + 9]! : 0;
      memo.key[0] = saddr;
      memo.key[1] = daddr;
      memo.setRest(tos, dev.ifindex, pkt.meta[M_MARK]!, proto, this.memoPorts ? flowPorts(pkt, proto) : 0);
      const hit = memo.find();
      if (hit >= 0) return this.remembered(memo, hit, pkt, ctx);
    }
    const conf = this.conf.knobs(dev);

    if (isMulticast(daddr)) {
      // ip_check_mc_rcu(): every up IFF_MULTICAST device has joined 224.0.0.1 (ip_mc_up).
      const our = daddr === IGMP_ALL_HOSTS && dev.flags.includes('MULTICAST');
      if (!our) return this.drops.drop(ctx, 'multicast', MULTICAST, daddr, name);
      // ip_mc_validate_source()
      if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, 'multicast or limited broadcast');
      if (isLoopback(saddr) && !conf.routeLocalnet) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, 'loopback, route_localnet off');
      if (isZero(saddr)) {
        if (!isLocalMulticast(daddr) && d[nh + 9] !== IPPROTO_IGMP) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, 'zero source');
        this.itag = 0;
      } else {
        const v = this.validate(pkt, saddr, 0, tos, '', dev, ctx);
        if (v) return v;
      }
      // ip_route_input_mc(): rth->dst.tclassid = itag
      pkt.meta[M_RTCLASSID] = this.itag;
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: multicast ${formatIPv4(daddr)} joined on ${name}: local delivery` });
      return LOCAL_ROUTE.multicast;
    }

    if (isMulticast(saddr) || saddr === INADDR_BROADCAST) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, 'multicast or limited broadcast');
    let brd = daddr === INADDR_BROADCAST || (saddr === 0 && daddr === 0);
    let res: FibResult | undefined;
    if (!brd) {
      if (isZero(saddr)) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, 'zero source');
      if (isZero(daddr)) return this.drops.drop(ctx, 'martian-destination', MARTIAN_DST, daddr, 'zero destination');
      if (isLoopback(daddr)) {
        if (!conf.routeLocalnet) return this.drops.drop(ctx, 'martian-destination', MARTIAN_DST_LOCALNET, daddr, name);
      } else if (isLoopback(saddr)) {
        if (!conf.routeLocalnet) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC_LOCALNET, saddr, name);
      }
      res = fibLookup(this.node, this.fillFlow(this.inFlow, pkt, daddr, saddr, tos, name));
      if (!res.ok) {
        // no_route: an RTN_UNREACHABLE input route whose dst.input is ip_error.
        const err = conf.forward ? res.errno : EHOSTUNREACH;
        return this.drops.drop(ctx, 'no-route', NO_ROUTE, daddr, res.error, '', err, err);
      }
      if (res.rtnType === RTN_BROADCAST) {
        if (conf.bforward) return this.mkrouteInput(pkt, dev, res, saddr, daddr, tos, ctx);
        brd = true;
      } else if (res.rtnType === RTN_LOCAL) {
        const v = this.validate(pkt, saddr, daddr, tos, '', dev, ctx);
        if (v) return v;
        // local_input: rth->dst.tclassid = itag
        pkt.meta[M_RTCLASSID] = this.itag;
        if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} is local (table ${tableName(res.table)}): INPUT` });
        const i = memo === undefined ? -1 : memo.keep();
        if (i >= 0) {
          memo!.local[i] = 1;
          memo!.tclassid[i] = this.itag;
        }
        return LOCAL_ROUTE.unicast;
      } else {
        if (!conf.forward) return this.drops.drop(ctx, 'ip-forward-off', FORWARD_OFF, daddr, name);
        if (res.rtnType !== RTN_UNICAST) return this.drops.drop(ctx, 'martian-destination', MARTIAN_DST_TYPE, daddr, res.type);
        // ip_mkroute_input(): a multipath route's nexthop by the packet's hash (fib_select_multipath)
        const via = this.multipath && res.route.nexthops.length > 1 ? this.selectMultipath(pkt, res, ctx) : res;
        const r = this.mkrouteInput(pkt, dev, via, saddr, daddr, tos, ctx);
        const i = memo === undefined || r.kind !== 'forward' ? -1 : memo.keep();
        if (i >= 0 && r.kind === 'forward') {
          memo!.local[i] = 0;
          memo!.tclassid[i] = pkt.meta[M_RTCLASSID]!;
          memo!.dev[i] = r.dev;
          memo!.gateway[i] = r.gateway;
          memo!.mtu[i] = r.mtu;
          memo!.redirect[i] = r.redirect ?? -1;
        }
        return r;
      }
    }
    // brd_input
    this.itag = 0;
    if (!isZero(saddr)) {
      const v = this.validate(pkt, saddr, 0, tos, '', dev, ctx);
      if (v) return v;
    }
    pkt.meta[M_RTCLASSID] = this.itag;
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} is a broadcast address: local delivery` });
    return LOCAL_ROUTE.broadcast;
  }


  /** fib_multipath_hash(net, NULL, skb) and fib_select_multipath(): the nexthop of `res`'s route the packet takes. */
  private selectMultipath(pkt: Packet, res: FibResult & { ok: true }, ctx: PathCtx): FibResult & { ok: true } {
    const m = pkt.meta;
    const hash = fibMultipathHash4(pkt.data, m[M_NHOFF]!, m[M_LEN]!, this.mp.policy, this.mp.fields, this.mp.seed);
    const k = this.mp.select(res, hash);
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: this.mp.note(hash, k, res.route.nexthops.length) });
    return this.node.fib4.nexthopResult(res, k);
  }

  /** The answer `memo` keeps in slot i, as routeInput() gave it. */
  private remembered(memo: InputRouteCache, i: number, pkt: Packet, ctx: PathCtx): InputRoute {
    pkt.meta[M_RTCLASSID] = memo.tclassid[i]!;
    if (memo.local[i] === 1) return LOCAL_ROUTE.unicast;
    if (!ctx.transient) return { kind: 'forward', dev: memo.dev[i]!, gateway: memo.gateway[i], mtu: memo.mtu[i]!, redirect: memo.redirect[i]! };
    const f = this.fwdRoute;
    f.dev = memo.dev[i]!;
    f.gateway = memo.gateway[i];
    f.mtu = memo.mtu[i]!;
    f.redirect = memo.redirect[i]!;
    return f;
  }

  /** fib_validate_source() as a drop: rp_filter (-EXDEV) or a martian source (-EINVAL); undefined when acceptable. */
  private validate(pkt: Packet, saddr: number, daddr: number, tos: number, oif: string, dev: Link, ctx: PathCtx): InputRoute | undefined {
    return this.validateDrop(this.validateSource(pkt, saddr, daddr, tos, oif, dev), saddr, dev, ctx);
  }

  /** The drop of fib_validate_source()'s result `r` (undefined when it is not negative). */
  private validateDrop(r: number, saddr: number, dev: Link, ctx: PathCtx): InputRoute | undefined {
    if (r === -EXDEV) return this.drops.drop(ctx, 'rp-filter', RP_FILTER, saddr, dev.name, '', this.conf.knobs(dev).rpFilter);
    if (r < 0) return this.drops.drop(ctx, 'martian-source', MARTIAN_SRC, saddr, this.ifaddrs.has(saddr) ? 'one of the node\'s addresses' : 'no valid reverse route');
    return undefined;
  }

  /** The flow key of the packet's lookup (flowi4: addresses, iif, mark, TOS, protocol and ports) into `f`. */
  private fillFlow<F extends { daddr: IpAddr; saddr: IpAddr; iif: string; mark: number; tos: number; proto: number; sport: number; dport: number }>(
    f: F, pkt: Packet, daddr: number, saddr: number, tos: number, iif: string,
  ): F {
    const proto = pkt.data[pkt.meta[M_NHOFF]! + 9]!;
    const ports = flowPorts(pkt, proto);
    f.daddr = v4(daddr, 0);
    f.saddr = v4(saddr, 1);
    f.iif = iif;
    f.mark = pkt.meta[M_MARK]! >>> 0;
    f.tos = tos;
    f.proto = proto;
    f.sport = ports >>> 16;
    f.dport = ports & 0xffff;
    return f;
  }

  /** __mkroute_input(): validate the source against the egress, then forward. */
  private mkrouteInput(pkt: Packet, dev: Link, res: FibResult & { ok: true }, saddr: number, daddr: number, tos: number, ctx: PathCtx): InputRoute {
    const err = this.validateSource(pkt, saddr, daddr, tos, res.dev, dev);
    const v = this.validateDrop(err, saddr, dev, ctx);
    if (v) return v;
    // IPSKB_DOREDIRECT: back out of the device it came in on, from a source on that link (err > 0), with
    // send_redirects; the redirect names rt_nexthop(rt, daddr): the gateway, or the destination itself
    let redirect = -1;
    if (err > 0 && res.dev === dev.name) {
      const conf = this.conf.knobs(dev);
      const gw = res.gateway && res.gateway.family === 4 ? res.gateway.w[0]! : 0;
      if (conf.txRedirects && (conf.sharedMedia || this.inetAddrOnlink(dev.name, saddr, gw))) redirect = gw || daddr;
    }
    const gw = res.gateway && res.gateway.family === 4 ? keptAddrText(res.gateway) : undefined;
    const out = this.node.links.get(res.dev);
    pkt.meta[M_RTCLASSID] = this.cachedTclassid(this.rthInput, res, this.itag);
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${formatIPv4(daddr)} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): FORWARD out ${res.dev}` });
    const mtu = out?.mtu ?? 1500;
    if (!ctx.transient) return { kind: 'forward', dev: res.dev, gateway: gw, mtu, redirect };
    // a reused context: the path reads the route before the next packet and keeps nothing of it
    const f = this.fwdRoute;
    f.dev = res.dev;
    f.gateway = gw;
    f.mtu = mtu;
    f.redirect = redirect;
    return f;
  }

  /** inet_addr_onlink(in_dev, a, b): an address of `dev` whose prefix holds `a` and `b` (b 0: any). */
  private inetAddrOnlink(dev: string, a: number, b: number): boolean {
    for (const x of this.node.addresses) {
      if (x.family === 4 && x.dev === dev && ((a ^ x.local.w[0]!) & maskWord(x.prefixlen, 0)) === 0 && (b === 0 || ((b ^ x.local.w[0]!) & maskWord(x.prefixlen, 0)) === 0)) return true;
    }
    return false;
  }

  /**
   * fib_validate_source(): 0 or 1 when the source is acceptable, -EINVAL
   * (martian) or -EXDEV (rp_filter) otherwise. `oif` is the egress device
   * name for a forwarded packet, '' for local input.
   */
  validateSource(pkt: Packet, src: number, dst: number, tos: number, oif: string, dev: Link): number {
    const name = dev.name;
    const conf = this.conf.knobs(dev);
    const rpf = conf.rpFilter;
    this.itag = 0;
    if (rpf === 0 && !this.tclassidUsers && (name !== oif || !conf.txRedirects)) {
      if (conf.acceptLocal) return 0;
      if (!this.customLocalRoutes && !this.customRules) return this.ifaddrs.has(src) ? -EINVAL : 0;
    }
    // __fib_validate_source()
    const mark = conf.srcValidMark ? pkt.meta[M_MARK]! >>> 0 : 0;
    const f = this.srcFlow;
    f.daddr = v4(src, 2);
    f.saddr = v4(dst, 3);
    f.iif = oif || 'lo';
    f.oif = '';
    f.mark = mark;
    f.tos = tos;
    const res = fibLookup(this.node, f);
    const noAddr = !this.addrDevs.has(name);
    if (!res.ok) return rpf ? -EXDEV : 0;
    if (res.rtnType !== RTN_UNICAST && (res.rtnType !== RTN_LOCAL || !conf.acceptLocal)) return -EINVAL;
    this.itag = combineItag(res);
    let devMatch = res.rtnType === RTN_LOCAL && dev.loopback;
    const nhs = res.route.nexthops;
    for (let i = 0; !devMatch && i < nhs.length; i++) devMatch = nhs[i]!.dev === name;
    // FIB_RES_NHC(res)->nhc_scope >= RT_SCOPE_HOST: a nexthop without a gateway (fib_check_nh_nongw)
    if (devMatch) return res.gateway === undefined ? 1 : 0;
    if (noAddr) {
      // last_resort
      if (rpf) return -EXDEV;
      this.itag = 0;
      return 0;
    }
    if (rpf === 1) return -EXDEV;
    f.daddr = v4(src, 2);
    f.saddr = v4(dst, 3);
    f.oif = name;
    const loose = fibLookup(this.node, f);
    return loose.ok && loose.rtnType === RTN_UNICAST && loose.gateway === undefined ? 1 : 0;
  }

  /**
   * ip_route_output_key_hash_rcu(), reduced: daddr 0 → lo; the policy
   * lookup with iif lo and the packet's mark; a local route → lo; limited
   * broadcast and multicast go out of the device the lookup gives.
   */
  routeOutput(pkt: Packet, oif: string, how: XfrmRouting = 'flow', anySource = false): OutputRoute {
    const r = this.routeOutputFib(pkt, oif, anySource);
    const xfrm = this.node.xfrm;
    if (xfrm === undefined || 'fate' in r) return r;
    return this.xfrmOutput(xfrm, pkt, r, how);
  }

  /**
   * The IPsec policies on an output route (net/xfrm/xfrm_policy.c, a node
   * without states): ip_route_output_flow → xfrm_lookup_route (a packet
   * with a protocol): a block policy fails the lookup (EPERM, no packet), a
   * required template without state gives a blackhole (or, without larval
   * drop, the policy's queue): the packet runs LOCAL_OUT and goes no
   * further. ip_route_me_harder's xfrm_lookup: either is an error, no
   * packet. icmp_route_lookup: see xfrm-out.ts icmpXfrmRoute.
   */
  private xfrmOutput(xfrm: XfrmPolicies, pkt: Packet, r: Exclude<OutputRoute, { fate: Fate }>, how: XfrmRouting): OutputRoute {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    // ip_route_output_flow looks the policies up only for a flow with a protocol
    if (how === 'flow' && d[nh + 9] === 0) return r;
    const loopback = this.node.links.get(r.dev)?.loopback === true;
    // DST_NOXFRM (the device's disable_xfrm): no policy lookup, the default out policy still applies (xfrm_lookup_with_ifid: nopol)
    const noXfrm = this.node.sysctl.disableXfrm(r.dev);
    const out = xfrm.lookupOut(noXfrm ? undefined : xfrmFlow4(pkt, r.dev, false, this.xfrmFlow), loopback);
    if (how !== 'icmp') return xfrmRoute(this.node, r, out, how, 'ip_route_me_harder');
    // icmp_route_lookup: a first route to a local address is kept; the second lookup's flow is the quoted packet reversed
    const local = out.verdict === 'pass' && this.node.fib4.tableLookup(RT_TABLE_LOCAL, v4(u32(d, nh + 16), 2))?.type === RTN_LOCAL;
    const inner = nh + (d[nh]! & 0x0f) * 4 + 8;
    const end = pkt.meta[M_END]!;
    const rev = local || inner + 20 > end ? undefined
      : xfrm.lookupOut(noXfrm ? undefined : xfrmFlow4At(d, inner, end, pkt.meta[M_MARK]! >>> 0, r.dev, true, this.xfrmFlow), loopback);
    return icmpXfrmRoute(r, out.verdict, local, rev, 'icmp_route_lookup');
  }

  /** ip_route_output_key_hash_rcu() itself: the FIB's route, before the IPsec policies; the flow's source is 0 with `anySource`. */
  private routeOutputFib(pkt: Packet, oif: string, anySource: boolean): OutputRoute {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const saddr = anySource ? 0 : u32(d, nh + 12);
    const daddr = u32(d, nh + 16);
    if (daddr === 0) return OUT_ZERO;
    const flow = this.fillFlow(this.outFlow, pkt, daddr, saddr, d[nh + 1]!, '');
    flow.oif = oif;
    const res = fibLookup(this.node, flow);
    if (!res.ok) return { fate: dropped('no-route', `no output route to ${formatIPv4(daddr)} (${res.error}; the sender gets errno ${res.errno})`) };
    // __mkroute_output() → rt_set_nexthop(..., itag 0); a broadcast route has no fib_info there
    pkt.meta[M_RTCLASSID] = res.rtnType === RTN_BROADCAST || daddr === INADDR_BROADCAST ? setClassTag(0, res.rule?.realms ?? 0) : this.cachedTclassid(this.rthOutput, res, 0);
    // A FIB result the table keeps answers for one destination only (hooks/route/table.ts): its route is made once.
    let r = this.outRoutes.get(res);
    if (r === undefined) {
      r = res.rtnType === RTN_LOCAL ? new OutputRouteOf(daddr, res, 'lo', undefined, true, 'unicast')
        : new OutputRouteOf(daddr, res, res.dev, res.gateway && res.gateway.family === 4 ? formatIPv4(res.gateway.w[0]!) : undefined, false,
          daddr === INADDR_BROADCAST || res.rtnType === RTN_BROADCAST ? 'broadcast' : isMulticast(daddr) ? 'multicast' : 'unicast');
      this.outRoutes.set(res, r);
    }
    return r;
  }
}

/** The output route of 0.0.0.0. */
const OUT_ZERO: OutputRoute = Object.freeze({ dev: 'lo', gateway: undefined, local: true, cast: 'unicast', text: 'output route: 0.0.0.0 → lo' });

/** An IPv4 output route; its text is made when read (a trace), not for every packet. */
class OutputRouteOf {
  constructor(
    private readonly daddr: number, private readonly res: FibResult & { ok: true },
    readonly dev: string, readonly gateway: string | undefined, readonly local: boolean, readonly cast: Cast,
  ) {}

  get text(): string {
    const a = formatIPv4(this.daddr);
    const res = this.res;
    return this.local ? `output route: ${a} is local: out lo and back in`
      : `output route: ${a} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): out ${res.dev}`;
  }
}
