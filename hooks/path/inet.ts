/**
 * The two families as the shared stages see them (ctx.ts InetFamily): one
 * node, the NF_HOOK of the family, and the functions where IPv4 and IPv6
 * differ (ipv4.ts / ipv4-route.ts, ipv6.ts / ipv6-route.ts).
 *
 *   const inet = new Inet(node, nf, IPV4);
 *   receive(inet, pkt, link, newPathCtx(false));   // receive.ts
 *   localOut(inet, pkt, '', ctx);                  // local-out.ts
 */
import type { Link, Node } from '../snapshot/node.js';
import { formatIPv4, formatIPv6 } from '../route/addr.js';
import { M_NHOFF } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { ETH_P_IP, ETH_P_IPV6, type Packet } from '../../vm/packet.js';
import { dropped, type Cast, type InetFamily, type InputRoute, type Netfilter, type OutputRoute, type PathCtx, type XfrmRouting } from './ctx.js';
import type { Fate } from './fate.js';
import { ipForwardPrepare, ipLocalDeliverDefrag, ipRcvCore, isFragment, u32 } from './ipv4.js';
import { FRAG_DROPPED, FRAG_HELD, IP_DEFRAG_LOCAL_DELIVER, type IpFrags } from './ip-frag.js';
import { Ipv4Route } from './ipv4-route.js';
import { XfrmCheck } from '../route/xfrm.js';
import { ip6ForwardPrepare, ip6InputDefrag, ip6LocalOutCheck, ip6OutputCheck, ip6RcvCore, isFragment6, words } from './ipv6.js';
import { ICMPV6_PARAMPROB } from '../answer/wire.js';
import { Ipv6Route } from './ipv6-route.js';

interface Routing {
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute;
  routeOutput(pkt: Packet, oif: string, how?: XfrmRouting, anySource?: boolean): OutputRoute;
}

/** What differs between the families (see InetFamily for each). */
export interface FamilyFns {
  readonly pf: number;
  readonly rcvName: string;
  readonly ethertype: number;
  routing(node: Node): Routing;
  rcvCore(node: Node, pkt: Packet, dev: Link, ctx: PathCtx): Fate | undefined;
  forwardPrepare(node: Node, pkt: Packet, dev: Link, rt: { dev: string; mtu: number }, ctx: PathCtx, xfrm?: XfrmCheck): Link | Fate;
  deliverBefore(pkt: Packet): Fate | undefined;
  deliverAfter(pkt: Packet): Fate | undefined;
  localOutCheck(pkt: Packet): Fate | undefined;
  outputCheck(node: Node, out: Link): Fate | undefined;
  daddr(pkt: Packet): string;
  /** The destination address into `w` (IPv4: w[0]), for daddrText() to format later. */
  daddrWords(pkt: Packet, w: Uint32Array): void;
  daddrText(w: Uint32Array): string;
}

const none = () => undefined;

export const IPV4: FamilyFns = {
  pf: NFPROTO_IPV4, rcvName: 'ip_rcv', ethertype: ETH_P_IP, routing: (node) => new Ipv4Route(node),
  rcvCore: (_node, pkt) => ipRcvCore(pkt), forwardPrepare: ipForwardPrepare,
  deliverBefore: ipLocalDeliverDefrag, deliverAfter: none, localOutCheck: ipRcvCore, outputCheck: none,
  daddr: (pkt) => formatIPv4(u32(pkt.data, pkt.meta[M_NHOFF]! + 16)),
  daddrWords: (pkt, w) => {
    w[0] = u32(pkt.data, pkt.meta[M_NHOFF]! + 16);
  },
  daddrText: (w) => formatIPv4(w[0]!),
};

export const IPV6: FamilyFns = {
  pf: NFPROTO_IPV6, rcvName: 'ipv6_rcv', ethertype: ETH_P_IPV6, routing: (node) => new Ipv6Route(node),
  rcvCore: ip6RcvCore, forwardPrepare: ip6ForwardPrepare, deliverBefore: none, deliverAfter: ip6InputDefrag,
  localOutCheck: ip6LocalOutCheck, outputCheck: ip6OutputCheck, daddr: (pkt) => formatIPv6(words(pkt.data, pkt.meta[M_NHOFF]! + 24)),
  daddrWords: (pkt, w) => {
    const d = pkt.data;
    const o = pkt.meta[M_NHOFF]! + 24;
    for (let i = 0; i < 4; i++) w[i] = u32(d, o + 4 * i);
  },
  daddrText: (w) => formatIPv6(w),
};

/**
 * A forwarded or sent packet's fate with its destination formatted when
 * read: the same one packet after packet for a reused context
 * (PathCtx.transient), so that a replayed frame formats no address nobody
 * reads.
 */
class LazyRoutedFate<K extends 'forwarded' | 'sent'> {
  declare readonly kind: K;
  declare dev: string;
  declare via: string | undefined;
  declare readonly dst: string;
  declare nat?: string[];
  readonly #w = new Uint32Array(4);
  constructor(kind: K, fns: FamilyFns) {
    // in the order forward() and localOutRouted() give their fields
    Object.defineProperty(this, 'kind', { value: kind, enumerable: true });
    this.dev = '';
    this.via = undefined;
    Object.defineProperty(this, 'dst', { get: () => fns.daddrText(this.#w), enumerable: true });
  }
  set(fns: FamilyFns, pkt: Packet, dev: string, via: string | undefined): this {
    this.dev = dev;
    this.via = via;
    fns.daddrWords(pkt, this.#w);
    // the last packet's NAT rewrites (Node.finish)
    if (this.nat !== undefined) this.nat = undefined;
    return this;
  }
}

/** ... with the route's cast, last, as a sent fate has it. */
class LazySentFate extends LazyRoutedFate<'sent'> {
  declare cast: Cast;
  constructor(fns: FamilyFns) {
    super('sent', fns);
    this.cast = 'unicast';
  }
}

/** A locally delivered packet's fate with its destination formatted when read (as LazyRoutedFate's), reused for a transient context. */
class LazyDeliveredFate {
  declare readonly kind: 'delivered';
  declare readonly addr: string;
  declare dev: string;
  declare cast: Cast;
  declare socket: string | undefined;
  declare l4: string;
  declare nat?: string[];
  readonly #w = new Uint32Array(4);
  constructor(fns: FamilyFns) {
    // in the order localDeliver() gives its fields
    Object.defineProperty(this, 'kind', { value: 'delivered', enumerable: true });
    Object.defineProperty(this, 'addr', { get: () => fns.daddrText(this.#w), enumerable: true });
    this.dev = '';
    this.cast = 'unicast';
    this.socket = undefined;
    this.l4 = '';
  }
  set(fns: FamilyFns, pkt: Packet, dev: string, cast: Cast, socket: string | undefined, l4: string): this {
    fns.daddrWords(pkt, this.#w);
    this.dev = dev;
    this.cast = cast;
    this.socket = socket;
    this.l4 = l4;
    // the last packet's NAT rewrites (Node.finish)
    if (this.nat !== undefined) this.nat = undefined;
    return this;
  }
}

/** A family over one node. */
export class Inet implements InetFamily {
  readonly pf: number;
  readonly rcvName: string;
  readonly ethertype: number;
  private readonly routing: Routing;
  readonly xfrm: XfrmCheck | undefined;
  /** The node's IPv4 reassembly queues (ip_local_deliver's); undefined: fragments are held for good. */
  frags: IpFrags | undefined;

  constructor(
    readonly node: Node,
    readonly nf: Netfilter,
    readonly fns: FamilyFns,
  ) {
    this.pf = fns.pf;
    this.rcvName = fns.rcvName;
    this.ethertype = fns.ethertype;
    this.routing = fns.routing(node);
    this.xfrm = node.xfrm !== undefined ? new XfrmCheck(node.xfrm, fns.pf === NFPROTO_IPV4 ? 4 : 6) : undefined;
    this.fwdFate = new LazyRoutedFate('forwarded', fns);
    this.sentFate = new LazySentFate(fns);
    this.deliveredFate = new LazyDeliveredFate(fns);
  }

  rcvCore(pkt: Packet, dev: Link, ctx: PathCtx): Fate | undefined {
    return this.fns.rcvCore(this.node, pkt, dev, ctx);
  }
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute {
    return this.routing.routeInput(pkt, dev, ctx);
  }
  forwardPrepare(pkt: Packet, dev: Link, rt: { dev: string; mtu: number }, ctx: PathCtx): Link | Fate {
    return this.fns.forwardPrepare(this.node, pkt, dev, rt, ctx, this.xfrm);
  }
  deliverBefore(pkt: Packet, ctx?: PathCtx): Fate | undefined {
    // ip_local_deliver(): ip_defrag(IP_DEFRAG_LOCAL_DELIVER) when the node reassembles
    if (this.frags !== undefined && this.pf === NFPROTO_IPV4 && isFragment(pkt)) {
      const r = this.frags.defrag(pkt, IP_DEFRAG_LOCAL_DELIVER, ctx?.ipOpts);
      if (r === FRAG_HELD) return dropped('reassembly', 'a fragment for this host, held by ip_defrag until its datagram is whole (INPUT not reached yet)');
      if (r === FRAG_DROPPED) return dropped('reassembly', `ip_defrag dropped the fragment: ${this.frags.why}`);
      // the datagram carries its first fragment's options (IPCB)
      if (ctx) ctx.ipOpts = this.frags.lastOpts;
      return undefined;
    }
    return this.fns.deliverBefore(pkt);
  }
  deliverAfter(pkt: Packet, dev?: Link, ctx?: PathCtx): Fate | undefined {
    // ipv6_frag_rcv(): a fragment that passed INPUT is reassembled before the upper layer
    if (this.frags !== undefined && this.pf === NFPROTO_IPV6 && dev !== undefined && isFragment6(pkt)) {
      const r = this.frags.defrag6(pkt, 'local', dev.ifindex);
      if (r === FRAG_HELD) return dropped('reassembly', 'a fragment for this host: passed INPUT, held by ipv6_frag_rcv until its datagram is whole');
      if (r === FRAG_DROPPED) {
        const pp = this.frags.paramProblem;
        if (pp && ctx) ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_PARAMPROB, pp.code, pp.pointer, dev, ctx);
        return dropped('reassembly', `ipv6_frag_rcv dropped the fragment: ${this.frags.why}${pp ? ' (ICMPv6 parameter problem)' : ''}`);
      }
      return undefined;
    }
    return this.fns.deliverAfter(pkt);
  }
  localOutCheck(pkt: Packet): Fate | undefined {
    return this.fns.localOutCheck(pkt);
  }
  routeOutput(pkt: Packet, oif: string, how: XfrmRouting = 'flow', anySource = false): OutputRoute {
    return this.routing.routeOutput(pkt, oif, how, anySource);
  }
  outputCheck(out: Link): Fate | undefined {
    return this.fns.outputCheck(this.node, out);
  }
  daddr(pkt: Packet): string {
    return this.fns.daddr(pkt);
  }
  private readonly fwdFate: LazyRoutedFate<'forwarded'>;
  forwarded(pkt: Packet, dev: string, via: string | undefined, ctx: PathCtx): Fate {
    if (!ctx.transient) return { kind: 'forwarded', dev, via, dst: this.fns.daddr(pkt) };
    return this.fwdFate.set(this.fns, pkt, dev, via);
  }
  private readonly deliveredFate: LazyDeliveredFate;
  delivered(pkt: Packet, dev: string, cast: Cast, socket: string | undefined, l4: string, ctx: PathCtx): Fate {
    if (!ctx.transient) return { kind: 'delivered', addr: this.fns.daddr(pkt), dev, cast, socket, l4 };
    return this.deliveredFate.set(this.fns, pkt, dev, cast, socket, l4);
  }
  private readonly sentFate: LazySentFate;
  sent(pkt: Packet, dev: string, via: string | undefined, cast: Cast, ctx: PathCtx): Fate {
    if (!ctx.transient) return { kind: 'sent', dev, via, dst: this.fns.daddr(pkt), cast };
    const f = this.sentFate.set(this.fns, pkt, dev, via);
    f.cast = cast;
    return f;
  }
}
