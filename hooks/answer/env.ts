/**
 * What every answer of the node's stack shares: the node (devices,
 * addresses, routes, sysctls), the rate-limit state, the virtual clock,
 * the random source, and the output route an answer is built for (its
 * source address, device, MTU, hop limit), as ip_route_output_key() /
 * ip6_route_output() and the source selection give them.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/route.c        ip_route_output_key_hash_rcu(): a local route goes out lo with
 *                           its prefsrc or the destination as source; otherwise the given
 *                           source, else fib_result_prefsrc(): the route's prefsrc, else
 *                           inet_select_addr(nexthop device, gateway, route scope)
 *   net/ipv4/fib_frontend.c fib_compute_spec_dst(): the address a reply to a received
 *                           packet comes from
 *   net/ipv6/addrconf.c     ipv6_dev_get_saddr() (hooks/nat/masquerade.ts)
 *   net/ipv6/route.c        ip6_dst_hoplimit(): the hop_limit of the route's device
 * Route metrics (hoplimit, mtu) are not in a snapshot: the TTL is
 * ip_default_ttl, the hop limit the device's, the MTU the device's.
 */
import type { Link, Node } from '../snapshot/node.js';
import { fibLookup } from '../route/index.js';
import { SCOPE_NAMES, RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RT_SCOPE_UNIVERSE, type FibResult } from '../route/types.js';
import { inetSelectAddr, ipv6DevGetSaddr, type InIfaddr, type Inet6Ifaddr } from '../nat/masquerade.js';
import type { Xorshift32 } from '../../vm/random.js';
import type { Answer, Cast, PathCtx } from '../path/ctx.js';
import { isLinkLocal } from '../path/ipv6.js';
import { HZ, IcmpGlobal, InetPeers, msToJiffies, parseBitmap } from './ratelimit.js';

/** INADDR_DUMMY (192.0.0.8): the source of an ICMP error when the node has no address to give. */
export const INADDR_DUMMY = 0xc0000008;
/** The most answers to answers the node follows (an answer REJECTed in OUTPUT answered in turn, ...). */
export const MAX_ANSWER_DEPTH = 3;

/** An output route for an answer: where it leaves, from which address. */
export interface AnswerRoute4 {
  readonly dev: Link;
  readonly local: boolean;
  readonly cast: Cast;
  /** fl4.saddr after the lookup (0: none found). */
  readonly saddr: number;
  readonly mtu: number;
}

export interface AnswerRoute6 {
  readonly dev: Link;
  readonly local: boolean;
  readonly multicast: boolean;
  /** The prefix length of the route (rt6i_dst.plen). */
  readonly plen: number;
  /** RTF_GATEWAY: the route goes through a gateway. */
  readonly gateway: boolean;
  /** The selected source (four words), undefined when none. */
  readonly saddr: Uint32Array | undefined;
  /** The source is the route's prefsrc (rt6_get_prefsrc). */
  readonly prefsrc: boolean;
  /**
   * ipv6_anycast_destination(): the destination is the subnet-router
   * anycast address of its route (a prefix shorter than /127 without a
   * gateway whose prefix address it is).
   */
  readonly subnetAnycast: boolean;
  readonly mtu: number;
}

/** The state of the node's stack that answers carry from packet to packet. */
export interface AnswerState {
  peers4: ReturnType<InetPeers['save']>;
  peers6: ReturnType<InetPeers['save']>;
  credit: number;
  stamp: number;
  ipId: number;
}

export class AnswerEnv {
  /** The virtual clock, in jiffies. */
  now = 0;
  /** The same clock in nanoseconds (the wall-clock time ICMP timestamps read). */
  nowNs = 0;
  readonly peers4 = new InetPeers();
  readonly peers6 = new InetPeers();
  readonly global = new IcmpGlobal();
  /** IP ID of the next non-DF answer (the kernel's come from a keyed hash: random). */
  ipId = 1;

  // net.ipv4.* and net.ipv6.* read once (a snapshot's sysctls do not change).
  readonly echoIgnoreAll: boolean;
  readonly echoIgnoreBroadcasts: boolean;
  readonly icmpRatelimit: number;
  readonly icmpRatemask: number;
  readonly msgsPerSec: number;
  readonly msgsBurst: number;
  readonly errorsUseInboundIfaddr: boolean;
  readonly defaultTtl: number;
  readonly fwmarkReflect4: boolean;
  readonly fwmarkReflect6: boolean;
  readonly echo6IgnoreAll: boolean;
  readonly echo6IgnoreMulticast: boolean;
  readonly icmp6ErrorAnycastAsUnicast: boolean;
  readonly icmp6Ratelimit: number;
  readonly icmp6Ratemask: Set<number>;

  private readonly addrs4 = new Map<string, InIfaddr[]>();
  /** Every device's IPv4 addresses in device order, lo first (in_dev_select_addr's walk). */
  private readonly devOrder: Link[];
  private readonly cands6: Inet6Ifaddr[] = [];

  constructor(
    readonly node: Node,
    readonly rng: Xorshift32,
  ) {
    const s = node.sysctl;
    const n = (k: string, dflt: number) => {
      const v = s.num(k);
      return Number.isNaN(v) ? dflt : v;
    };
    this.echoIgnoreAll = n('net.ipv4.icmp_echo_ignore_all', 0) !== 0;
    this.echoIgnoreBroadcasts = n('net.ipv4.icmp_echo_ignore_broadcasts', 1) !== 0;
    this.icmpRatelimit = msToJiffies(n('net.ipv4.icmp_ratelimit', 1000));
    this.icmpRatemask = n('net.ipv4.icmp_ratemask', 0x1818);
    this.msgsPerSec = n('net.ipv4.icmp_msgs_per_sec', 1000);
    this.msgsBurst = n('net.ipv4.icmp_msgs_burst', 50);
    this.errorsUseInboundIfaddr = n('net.ipv4.icmp_errors_use_inbound_ifaddr', 0) !== 0;
    this.defaultTtl = n('net.ipv4.ip_default_ttl', 64);
    this.fwmarkReflect4 = n('net.ipv4.fwmark_reflect', 0) !== 0;
    this.fwmarkReflect6 = n('net.ipv6.fwmark_reflect', 0) !== 0;
    this.echo6IgnoreAll = n('net.ipv6.icmp.echo_ignore_all', 0) !== 0;
    this.echo6IgnoreMulticast = n('net.ipv6.icmp.echo_ignore_multicast', 0) !== 0;
    this.icmp6ErrorAnycastAsUnicast = n('net.ipv6.icmp.error_anycast_as_unicast', 0) !== 0;
    this.icmp6Ratelimit = msToJiffies(n('net.ipv6.icmp.ratelimit', 100));
    this.icmp6Ratemask = parseBitmap(s.get('net.ipv6.icmp.ratemask') ?? '0-1,3-127') ?? parseBitmap('0-1,3-127')!;
    this.devOrder = [...node.links.values()].sort((a, b) => a.ifindex - b.ifindex);
    for (const a of node.addresses) {
      if (a.family === 4) {
        let l = this.addrs4.get(a.dev);
        if (!l) this.addrs4.set(a.dev, (l = []));
        l.push({ local: a.local.w[0]!, prefixlen: a.prefixlen, scope: SCOPE_NAMES.get(a.scope) ?? (Number(a.scope) || RT_SCOPE_UNIVERSE), secondary: a.secondary });
      } else {
        this.cands6.push({ addr: a.local.w, prefixlen: a.prefixlen, ifindex: a.ifindex, tentative: a.tentative });
      }
    }
  }

  save(): AnswerState {
    return { peers4: this.peers4.save(), peers6: this.peers6.save(), credit: this.global.credit, stamp: this.global.stamp, ipId: this.ipId };
  }

  restore(st: AnswerState): void {
    this.peers4.restore(st.peers4);
    this.peers6.restore(st.peers6);
    this.global.credit = st.credit;
    this.global.stamp = st.stamp;
    this.ipId = st.ipId;
  }

  /** inet_current_timestamp(): milliseconds since midnight UT on the packets' clock (the kernel reads its own: a kernel field). */
  timestampMs(): number {
    return Math.floor(this.nowNs / 1e6) % 86_400_000;
  }

  /** Sets the clock (nanoseconds of the capture's time line). */
  setNow(nowNs: number): void {
    this.nowNs = nowNs;
    this.now = Math.floor(nowNs / (1e9 / HZ));
  }

  /** A `# ` note on the packet's trace (nothing when nobody reads it). */
  note(ctx: PathCtx, text: string): void {
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text });
  }

  /** Queues an answer, to be sent once the packet's own fate is known. */
  send(ctx: PathCtx, a: Answer): void {
    ctx.answers.push(a);
  }

  /** The addresses of a device, for inet_select_addr. */
  addrs(dev: string): readonly InIfaddr[] {
    return this.addrs4.get(dev) ?? [];
  }

  /** inet_select_addr(dev, dst, scope). */
  selectAddr4(dev: string, dst: number, scope: number): number {
    return inetSelectAddr(this.addrs(dev), dst, scope, this.devOrder.filter((l) => l.name !== dev).map((l) => this.addrs(l.name)));
  }

  /** fib_result_prefsrc(): the route's prefsrc, else inet_select_addr over its nexthop. */
  prefsrc4(res: FibResult & { ok: true }): number {
    if (res.prefsrc && res.prefsrc.family === 4) return res.prefsrc.w[0]!;
    const gw = res.gateway && res.gateway.family === 4 ? res.gateway.w[0]! : 0;
    return this.selectAddr4(res.dev, gw, res.route.scope);
  }

  /** ip_route_output_key() for an answer to `daddr` (saddr 0: the route chooses); undefined when there is no route. */
  route4(daddr: number, saddr: number, tos: number, mark: number, proto: number, oif: string): AnswerRoute4 | undefined {
    const lo = this.loopback();
    if (daddr === 0) return lo ? { dev: lo, local: true, cast: 'unicast', saddr: saddr || 0x7f000001, mtu: lo.mtu } : undefined;
    const res = fibLookup(this.node, { daddr: { family: 4, w: Uint32Array.of(daddr) }, saddr: saddr ? { family: 4, w: Uint32Array.of(saddr) } : undefined, oif, mark, tos, proto });
    if (!res.ok) return undefined;
    if (res.rtnType === RTN_LOCAL) {
      if (!lo) return undefined;
      const src = saddr || (res.prefsrc && res.prefsrc.family === 4 ? res.prefsrc.w[0]! : daddr);
      return { dev: lo, local: true, cast: 'unicast', saddr: src, mtu: lo.mtu };
    }
    const dev = this.node.links.get(res.dev);
    if (!dev) return undefined;
    const cast: Cast = daddr === 0xffffffff || res.rtnType === RTN_BROADCAST ? 'broadcast' : daddr >>> 28 === 0xe || res.rtnType === RTN_MULTICAST ? 'multicast' : 'unicast';
    return { dev, local: false, cast, saddr: saddr || this.prefsrc4(res), mtu: dev.mtu };
  }

  /**
   * fib_compute_spec_dst(): the source of a reply to a packet received
   * with route `local`/`cast` on `dev`: its destination when it was
   * unicast to this host, else the preferred source towards its sender.
   */
  specDst4(daddr: number, saddr: number, tos: number, mark: number, local: boolean, cast: Cast, dev: Link): number {
    if (local && cast === 'unicast') return daddr;
    if (saddr !== 0) {
      const vmark = this.node.sysctl.srcValidMark(dev.name) ? mark : 0;
      const res = fibLookup(this.node, { daddr: { family: 4, w: Uint32Array.of(saddr) }, iif: 'lo', tos: tos & 0x1e, mark: vmark });
      if (res.ok) return this.prefsrc4(res);
      return this.selectAddr4(dev.name, saddr, RT_SCOPE_UNIVERSE);
    }
    return this.selectAddr4(dev.name, saddr, 253 /* RT_SCOPE_LINK */);
  }

  /** ip6_route_output() for an answer to `daddr`; the source is selected on `srcDev` (default: the route's device). */
  route6(daddr: Uint32Array, saddr: Uint32Array | undefined, mark: number, proto: number, oif: string, srcDev?: Link): AnswerRoute6 | undefined {
    const res = fibLookup(this.node, { daddr: { family: 6, w: daddr }, saddr: saddr ? { family: 6, w: saddr } : undefined, oif, mark, proto });
    if (!res.ok) return undefined;
    const local = res.rtnType === RTN_LOCAL || res.rtnType === RTN_ANYCAST;
    const dev = local ? this.loopback() : this.node.links.get(res.dev);
    if (!dev) return undefined;
    let src = saddr;
    const prefsrc = res.prefsrc !== undefined && res.prefsrc.family === 6;
    if (!src) {
      if (prefsrc) src = res.prefsrc!.w as Uint32Array;
      else {
        const pick = ipv6DevGetSaddr(this.cands6, daddr, (srcDev ?? (local ? undefined : dev))?.ifindex ?? 0);
        src = pick ? Uint32Array.from(pick.addr) : undefined;
      }
    }
    const rd = res.route.dst.w;
    const subnetAnycast = !local && res.gateway === undefined && res.route.plen < 127 && rd[0] === daddr[0] && rd[1] === daddr[1] && rd[2] === daddr[2] && rd[3] === daddr[3];
    return { dev, local, multicast: daddr[0]! >>> 24 === 0xff, plen: res.route.plen, gateway: res.gateway !== undefined, saddr: src, prefsrc, subnetAnycast, mtu: dev.mtu };
  }

  /** ip6_dst_hoplimit(): the hop_limit of the route's device. */
  hoplimit6(dev: Link): number {
    const v = this.node.sysctl.devConf(6, dev.name, 'hop_limit');
    return v > 0 ? v : 64;
  }

  /** ipv6_get_lladdr(dev, IFA_F_TENTATIVE): the device's first link-local address that is not tentative. */
  lladdr6(dev: Link): Uint32Array | undefined {
    for (const c of this.cands6) if (c.ifindex === dev.ifindex && !c.tentative && isLinkLocal(c.addr)) return Uint32Array.from(c.addr);
    return undefined;
  }

  /** Whether an address (four words) is one of the node's IPv6 addresses (ipv6_chk_addr). */
  isLocal6(a: ArrayLike<number>): boolean {
    return this.cands6.some((c) => c.addr[0] === a[0] && c.addr[1] === a[1] && c.addr[2] === a[2] && c.addr[3] === a[3]);
  }

  loopback(): Link | undefined {
    for (const l of this.devOrder) if (l.loopback) return l;
    return undefined;
  }

  /** The next IP ID of an answer without DF. */
  nextId(): number {
    const id = this.ipId;
    this.ipId = (this.ipId + 1) & 0xffff;
    return id;
  }

}
