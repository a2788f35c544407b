/**
 * What every stage of the packet path shares: the per-packet context (what
 * the skb carries besides its bytes and the metadata record: the TRACE
 * steps, the OUTPUT re-route, the NAT rewrites), the NF_HOOK call the
 * stages make, and what a family (IPv4, IPv6) supplies where the kernel's
 * code differs between ip_* and ip6_* (InetFamily).
 *
 * The stages, in the order a packet meets them:
 *   receive.ts    eth_type_trans, ip_rcv / ipv6_rcv, PRE_ROUTING, ip(6)_rcv_finish
 *   the input route of the family (ipv4-route.ts, ipv6-route.ts)
 *   local-in.ts   ip_local_deliver / ip6_input: LOCAL_IN
 *   forward.ts    ip_forward / ip6_forward: FORWARD
 *   local-out.ts  __ip_local_out / __ip6_local_out: LOCAL_OUT with mangle's re-route
 *   output.ts     ip_output / ip6_output: POST_ROUTING, loopback_xmit
 */
import type { Link, Node } from '../snapshot/node.js';
import { formatAddr } from '../route/addr.js';
import type { FibResult } from '../route/types.js';
import type { XfrmCheck } from '../route/xfrm.js';
import { devWords, type DevWords, type Packet } from '../../vm/packet.js';
import type { AnswerResult, DropReason, Fate, PathStep } from './fate.js';

export const EINVAL = 22;
export const EXDEV = 18;
export const EHOSTUNREACH = 113;
export const ENETUNREACH = 101;

/** The per-packet context: one per packet, from receive()/send() to its fate (looped-back packets keep theirs). */
/**
 * struct ip_options of a received IPv4 packet as __ip_options_compile()
 * filled it (offsets from the IP header, 0: absent): what the node's
 * answers echo (ip_options_echo).
 */
export interface IpOpts {
  optlen: number;
  srr: number;
  rr: number;
  ts: number;
  cipso: number;
  rrNeedaddr: boolean;
  tsNeedaddr: boolean;
  tsNeedtime: boolean;
  /** opt->is_changed: the node wrote into the options (the header checksum is stale until ip_forward_options). */
  changed: boolean;
}

export interface PathCtx {
  steps: PathStep[];
  /** Set when nobody reads the steps (replay): they are not formatted at all. */
  quiet: boolean;
  /**
   * Set while a locally generated packet is in LOCAL_OUT: mangle OUTPUT
   * calls it after its chain (ipt_mangle_out), the NAT core after a
   * destination NAT (nf_nat_ipv4_local_fn); returns the new output device
   * or a negative errno. `why` names the caller for the note.
   */
  reroute: ((pkt: Packet, why: string) => Link | number) | undefined;
  /** What ctx.reroute works on (local-out.ts), made once per context and reused. */
  localOut: unknown;
  /**
   * Set when the packet's route leads to an xfrm queue or blackhole (an
   * IPsec policy whose state does not exist, hooks/route/xfrm.ts): the
   * packet runs the hook it is at and is then discarded by dst_output,
   * before POSTROUTING; the text says why.
   */
  xfrmHold: string | undefined;
  /**
   * What a packet spec's `ct` clause says about the packet's connection
   * (hooks/ct-node.ts applies it when the packet meets conntrack);
   * undefined for captured frames and specs without one.
   */
  ctSpec: CtSpec | undefined;
  /** Conntrack has classified the packet (its state is worth a note at the next hooks). */
  ctSeen: boolean;
  /** The NAT rewrites the packet went through, in words (`DNAT to 10.244.1.5:8080`), for its fate; filled only when !quiet. */
  nat: string[];
  /**
   * skb_dst_drop() at PRE_ROUTING: DNAT changed the destination of a packet
   * that kept its route (looped back), so the input route is made again.
   */
  dstDropped: boolean;
  /** The gateway of the output route (undefined: on link), for MASQUERADE's source selection (rt_nexthop). */
  gateway: string | undefined;
  /** skb_dst(): the route the packet took, once routed (what the node's answers read of it). */
  dst: Dst | undefined;
  /** The received IPv4 packet's options once ip_rcv_options() compiled them (undefined: none). */
  ipOpts: IpOpts | undefined;
  /** The node's own stack (hooks/answer): undefined when nothing answers (a bare path). */
  stack: Stack | undefined;
  /** The packets the node's stack sends in answer to this one, in order (sent after its fate). */
  answers: Answer[];
  /** 0 for a received or sent packet, 1 for an answer to it, 2 for an answer to an answer, ... */
  depth: number;
  /**
   * The family (NFPROTO_*) whose ICMP socket is sending this packet (an
   * answer icmp_send, icmp_reply, icmp6_send or icmpv6_echo_reply made), 0
   * otherwise: they hold icmp_xmit_lock / icmpv6_xmit_lock through its
   * way out, so an ICMP error asked for there (REJECT in OUTPUT) fails the
   * lock's spin_trylock and is not sent.
   */
  icmpLocked: number;
  /**
   * The copies TEE sent while the packet was in a hook (hooks/dup.ts), in
   * order, with the context each went out with (its own answers wait there).
   */
  clones: { result: AnswerResult; ctx: PathCtx }[];
  /**
   * The fate of a packet a bridge hook entry took over (br_netfilter's
   * functions return NF_STOLEN after carrying the packet on themselves):
   * set by the entry just before it returns NF_STOLEN (hooks/bridge/).
   */
  brStolen: Fate | undefined;
  /** ip_sabotage_in stole the packet at PREROUTING to hand it to ip_rcv_finish (it passed PREROUTING in the bridge). */
  brSabotage: boolean;
  /**
   * The context a node reuses packet after packet (resetPathCtx): what the
   * path returns is valid until the next packet, so it may return objects
   * it reuses (a routing drop's fate) instead of making new ones.
   */
  transient: boolean;
}

/** A packet spec's `ct` clause: the state, the direction, the conntrack's mark (-1: not given). */
export interface CtSpec {
  readonly state: 'new' | 'established' | 'related' | 'invalid' | 'untracked';
  readonly reply: boolean;
  readonly mark: number;
}

export function newPathCtx(quiet: boolean, ctSpec?: CtSpec, stack?: Stack, depth = 0): PathCtx {
  return {
    steps: [], quiet, reroute: undefined, localOut: undefined, xfrmHold: undefined, ctSpec, ctSeen: false, nat: [], dstDropped: false, gateway: undefined, dst: undefined, ipOpts: undefined, stack, answers: [], depth, icmpLocked: 0, clones: [],
    brStolen: undefined, brSabotage: false, transient: false,
  };
}

/**
 * `ctx` made new for the next packet, as newPathCtx() makes one, keeping its
 * arrays (emptied): a replay's one context, packet after packet, so that a
 * frame allocates no context.
 */
export function resetPathCtx(ctx: PathCtx, quiet: boolean, ctSpec: CtSpec | undefined, stack: Stack | undefined, depth = 0): PathCtx {
  if (ctx.steps.length) ctx.steps.length = 0;
  ctx.quiet = quiet;
  ctx.reroute = undefined;
  ctx.xfrmHold = undefined;
  ctx.ctSpec = ctSpec;
  ctx.ctSeen = false;
  if (ctx.nat.length) ctx.nat.length = 0;
  ctx.dstDropped = false;
  ctx.gateway = undefined;
  ctx.dst = undefined;
  ctx.ipOpts = undefined;
  ctx.stack = stack;
  if (ctx.answers.length) ctx.answers.length = 0;
  ctx.depth = depth;
  ctx.icmpLocked = 0;
  if (ctx.clones.length) ctx.clones.length = 0;
  ctx.brStolen = undefined;
  ctx.brSabotage = false;
  ctx.transient = true;
  return ctx;
}

const LOCAL_DST: Record<Cast, Dst> = {
  unicast: Object.freeze({ input: true, local: true, cast: 'unicast', dev: 'lo' }),
  broadcast: Object.freeze({ input: true, local: true, cast: 'broadcast', dev: 'lo' }),
  multicast: Object.freeze({ input: true, local: true, cast: 'multicast', dev: 'lo' }),
};
const forwardDsts = new Map<string, Dst>();

/** skb_dst() of a received packet's input route: the same (frozen) object for every packet of one route kind and device. */
export function inputDst(local: boolean, cast: Cast, dev: string): Dst {
  if (local) return LOCAL_DST[cast];
  let d = forwardDsts.get(dev);
  if (!d) {
    d = Object.freeze({ input: true, local: false, cast: 'unicast', dev });
    // Device names are few; a bound all the same (names come from the snapshot).
    if (forwardDsts.size < 4096) forwardDsts.set(dev, d);
  }
  return d;
}

const outputDsts = new Map<string, (Dst | undefined)[]>();

/** skb_dst() of a locally generated packet's output route: one (frozen) object per route kind and device. */
export function outputDst(local: boolean, cast: Cast, dev: string): Dst {
  let byKind = outputDsts.get(dev);
  if (!byKind) {
    byKind = [undefined, undefined, undefined, undefined, undefined, undefined];
    // Device names are few; a bound all the same (names come from the snapshot).
    if (outputDsts.size < 4096) outputDsts.set(dev, byKind);
  }
  const k = (local ? 3 : 0) + (cast === 'unicast' ? 0 : cast === 'broadcast' ? 1 : 2);
  return (byKind[k] ??= Object.freeze({ input: false, local, cast, dev }));
}

/**
 * skb_dst() of a routed packet as rt_flags and dst.dev say it: an input
 * route (received) or an output route (locally generated); RTCF_LOCAL
 * (delivered here), RTCF_BROADCAST / RTCF_MULTICAST.
 */
export interface Dst {
  readonly input: boolean;
  readonly local: boolean;
  readonly cast: Cast;
  /** dst.dev: lo for a local route, the egress device otherwise. */
  readonly dev: string;
}

/**
 * A packet the node's own stack sends in answer to another (an ICMP error
 * or echo reply, a TCP reset, what REJECT sends): built as the kernel
 * builds it, handed to ip_local_out / ip6_local_out, so it crosses OUTPUT
 * and POSTROUTING as any locally generated packet.
 */
export interface Answer {
  /** What it is: icmp-echo-reply, tcp-reset, icmp-port-unreachable, icmp6-time-exceeded, ... */
  readonly kind: string;
  /** Which kernel function sent it and why. */
  readonly why: string;
  /** NFPROTO_IPV4 / NFPROTO_IPV6. */
  readonly pf: number;
  /** The IP packet as ip_local_out() takes it. */
  readonly packet: Uint8Array;
  /** skb->mark (IP4_REPLY_MARK / IP6_REPLY_MARK, or the socket's). */
  readonly mark: number;
  /** The device the answer's route is bound to (flowi oif), '' for none. */
  readonly oif: string;
  /**
   * nf_ct_attach(): the answer takes the original packet's conntrack entry
   * (RELATED, reply direction) instead of being looked up; the kernel does
   * this for ICMP errors (icmp_glue_bits, icmpv6_getfrag) and the resets
   * REJECT sends (nf_send_reset). Otherwise conntrack looks the answer up
   * as any packet (an echo reply, the stack's own reset: the reply
   * direction of the original's connection; a UDP port unreachable, whose
   * packet let go of its conntrack first: nf_reset_ct).
   */
  readonly attach: boolean;
  /**
   * How its output route is looked up, which decides the IPsec policy
   * check it meets: 'icmp' for icmp_send's icmp_route_lookup and
   * icmp6_send's icmpv6_route_lookup; 'me-harder' for REJECT's resets
   * (ip_route_me_harder, nf_send_reset6's xfrm_lookup) and
   * icmpv6_echo_reply's xfrm_lookup; 'flow' for the rest
   * (ip_route_output_flow, ip6_dst_lookup_flow).
   */
  readonly route: XfrmRouting;
  /**
   * The route lookup's flow has no source address, the route picks it
   * (icmp_send about a packet not addressed to the node: saddr 0;
   * icmp6_send's likewise when the route has a preferred source, else it
   * takes the input device's, icmpv6_rt_has_prefsrc): policy rules with a
   * `from` selector do not match it. Otherwise the flow's source is the
   * packet's.
   */
  readonly anySource?: boolean;
  /**
   * The bridge port the answer is dev_queue_xmit()ed on, past ip_local_out
   * and every hook (REJECT's reset for a bridged packet: nf_send_reset,
   * nf_send_reset6 with nf_bridge_get_physindev()); undefined: ip_local_out.
   */
  readonly xmit?: string;
  /** nf_ct_set_closing() on the original's conntrack before the answer goes (REJECT's resets). */
  readonly closing?: boolean;
  /** Sent through the family's ICMP socket, under its xmit lock (PathCtx.icmpLocked). */
  readonly icmpSocket?: boolean;
  /**
   * skb->sk: true for REJECT's resets (nf_send_reset, nf_send_reset6: a
   * fresh skb with no socket) and the IPv6 stack's reset for a closed port
   * (ip6_xmit does not attach net->ipv6.tcp_sk); every other answer leaves
   * through one of the stack's control sockets (ipv4_icmp_sk, ipv6_icmp_sk,
   * ipv4_tcp_sk: per-CPU sockets inet_ctl_sock_create() made at boot in
   * init_net, so in the root cgroup with class id 0), a socket without a file.
   */
  readonly noSocket?: boolean;
  /**
   * Header fields the kernel fills in its own way, where nfvm's bytes are
   * not what a capture on the node shows: `ip.id` (a packet without DF: a
   * keyed hash, random per boot), `ip6.flowlabel` (the automatic flow
   * label, a hash too), `tcp.check` (CHECKSUM_PARTIAL: the device completes
   * it, a capture on the node sees the pseudo-header sum).
   */
  readonly kernelFields: readonly string[];
  /** The original packet's conntrack when the answer was made (M_CT_ID, M_CT_DIR): what nf_ct_attach() gives an attached answer. */
  readonly origCtId: number;
  readonly origCtDir: number;
  /**
   * Its status then (M_CT_STATUS). The kernel sends an answer as it is made;
   * nfvm once the packet's fate is known, and an ICMP redirect is made in
   * ip_forward() before the packet goes on through FORWARD and POSTROUTING
   * (which confirm its conntrack and bind its source NAT): the attached
   * answer goes out with the conntrack as it was.
   */
  readonly origCtStatus: number;
}

/** What the packet path asks of the node's own stack (hooks/answer/stack.ts), per family (NFPROTO_*). */
export interface Stack {
  /**
   * The transport protocol of a packet delivered locally (tcp_v4_rcv,
   * udp_rcv, icmp_rcv and their IPv6 twins): the socket it reached
   * (ss's text) or undefined, and what became of it; may queue an answer.
   */
  transportRcv(pf: number, pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx): { socket: string | undefined; note: string };
  /**
   * ipv6_parse_hopopts() of a packet whose first extension header is
   * hop-by-hop (ip6_rcv_core, before PREROUTING): why it is dropped, or
   * undefined; may queue a parameter problem.
   */
  hopByHop(pkt: Packet, dev: Link, ctx: PathCtx): string | undefined;
  /**
   * ip_rcv_options() of an IPv4 packet with options, after its input route
   * (ctx.dst): why it is dropped, or undefined; may queue a parameter
   * problem, and writes the record route and timestamp slots.
   */
  ipOptions(pkt: Packet, dev: Link, ctx: PathCtx): string | undefined;
  /**
   * ip_forward_options() of a forwarded IPv4 packet past FORWARD: the output
   * route's source in the record route and timestamp slots the node filled,
   * and the header checksum once the options changed.
   */
  forwardOptions(pkt: Packet, out: Link, ctx: PathCtx): void;
  /** ip_rt_send_redirect(): a forwarded packet's ICMP host redirect naming `gw` (ip_forward, after the TTL decrement). */
  redirect(pkt: Packet, dev: Link, gw: number, ctx: PathCtx): void;
  /** ip6_forward()'s redirect: ndisc_send_redirect() naming `target` (before the hop limit is decremented). */
  redirect6(pkt: Packet, dev: Link, target: Uint32Array, ctx: PathCtx): void;
  /** icmp_send() / icmpv6_send() for a packet the path drops (TTL, MTU, not a neighbour). */
  icmpError(pf: number, pkt: Packet, type: number, code: number, info: number, dev: Link | undefined, ctx: PathCtx): void;
  /** ip_error() / ip6_pkt_discard(): a received packet whose input route is a reject route. */
  routeError(pf: number, pkt: Packet, dev: Link, errno: number, ctx: PathCtx): void;
  /** reject_tg() / reject_tg6() of family `pf`: what a REJECT rule at `hook` sends. */
  reject(pf: number, pkt: Packet, hook: number, reply: RejectReply, inDev: Link | undefined, ctx: PathCtx): void;
}

/** What a REJECT rule asks for (its --reject-with): a TCP reset, or an ICMP / ICMPv6 unreachable code. */
export interface RejectReply {
  /** The --reject-with name. */
  readonly with: string;
  readonly tcpReset: boolean;
  readonly code: number;
}

/** NF_HOOK() as the stages call it (hooks/nf-hook.ts runs the registry). */
export interface Netfilter {
  /**
   * nf_hook() for (family, hook) with the given devices: 1 when every
   * entry accepted (the path goes on), otherwise the fate the verdict gives.
   */
  hook(hook: number, pkt: Packet, inDev: Link | undefined, outDev: Link | undefined, ctx: PathCtx): 1 | Fate;
}

export type Cast = 'unicast' | 'broadcast' | 'multicast';

/**
 * Which route lookup a locally generated packet gets (see
 * InetFamily.routeOutput): 'flow' xfrm_lookup_route (a state missing: a
 * blackhole or queue route), 'me-harder' xfrm_lookup without
 * XFRM_LOOKUP_QUEUE (any failure: no packet), 'icmp' the ICMP error's lookups.
 */
export type XfrmRouting = 'flow' | 'me-harder' | 'icmp';

/** The result of the input route (skb_dst after ip_route_input_noref / ip6_route_input). */
export type InputRoute =
  | { kind: 'local'; cast: Cast }
  /** redirect: IPv4's IPSKB_DOREDIRECT target (-1: none); gateway6: an IPv6 route's rt6i_gateway (the redirect's target) */
  | { kind: 'forward'; dev: string; gateway: string | undefined; mtu: number; redirect?: number; gateway6?: Uint32Array }
  /** errno: dst.error of a reject route (ip_error / ip6_pkt_discard answer it); 0 when nothing answers. */
  | { kind: 'drop'; fate: Fate; errno?: number };

/** The local input routes, one frozen object per cast: a received packet's route makes none. */
export const LOCAL_ROUTE: Readonly<Record<Cast, InputRoute & { kind: 'local' }>> = {
  unicast: Object.freeze({ kind: 'local', cast: 'unicast' }),
  broadcast: Object.freeze({ kind: 'local', cast: 'broadcast' }),
  multicast: Object.freeze({ kind: 'local', cast: 'multicast' }),
};

/** The result of the output route of a locally generated packet. */
export type OutputRoute =
  | { dev: string; gateway: string | undefined; local: boolean; cast: Cast; text: string; xfrmHold?: string }
  | { fate: Fate };

/**
 * What a family supplies to the shared stages: the kernel functions that
 * differ between IPv4 and IPv6 (header checks, routing, ip_forward's and
 * ip6_forward's checks, where fragments wait).
 */
export interface InetFamily {
  /** NFPROTO_IPV4 / NFPROTO_IPV6. */
  readonly pf: number;
  readonly node: Node;
  readonly nf: Netfilter;
  /** 'ip_rcv' / 'ipv6_rcv', for the notes. */
  readonly rcvName: string;
  /** The ethertype of a looped-back frame (loopback_xmit keeps skb->protocol). */
  readonly ethertype: number;
  /** ip_rcv_core / ip6_rcv_core after the PACKET_OTHERHOST drop: undefined when the packet goes on. */
  rcvCore(pkt: Packet, dev: Link, ctx: PathCtx): Fate | undefined;
  /** The input route (ip_route_input_noref / ip6_route_input). */
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute;
  /**
   * ip_forward / ip6_forward up to NF_HOOK(FORWARD): their checks and the
   * TTL / hop limit decrement; the egress device, or the fate.
   */
  forwardPrepare(pkt: Packet, dev: Link, rt: { dev: string; mtu: number }, ctx: PathCtx): Link | Fate;
  /** What ends a local delivery before LOCAL_IN (IPv4: ip_local_deliver waits for reassembly). */
  deliverBefore(pkt: Packet, ctx?: PathCtx): Fate | undefined;
  /** ... and after it (IPv6: ipv6_frag_rcv holds a fragment once it passed INPUT). */
  deliverAfter(pkt: Packet, dev?: Link, ctx?: PathCtx): Fate | undefined;
  /** The IPsec policy checks of the node for the family (a node without states), undefined without policies. */
  readonly xfrm: XfrmCheck | undefined;
  /** The checks a locally sent packet's header gets before its output route. */
  localOutCheck(pkt: Packet): Fate | undefined;
  /**
   * The output route of a locally generated packet (oif '' for none).
   * `how` says which kernel function routes it, for the IPsec policies:
   * ip_route_output_flow / ip6_dst_lookup_flow (a socket's packet, the
   * stack's resets, IPv4's echo replies), ip_route_me_harder /
   * ip6_route_me_harder (a re-route in OUTPUT; REJECT's resets; IPv6's echo
   * replies: xfrm_lookup) or icmp_route_lookup / icmpv6_route_lookup (ICMP
   * errors). `anySource`: the lookup's flow has no source address
   * (Answer.anySource).
   */
  routeOutput(pkt: Packet, oif: string, how?: XfrmRouting, anySource?: boolean): OutputRoute;
  /** ip6_output(): the egress device must have IPv6; undefined when the packet goes on. */
  outputCheck(out: Link): Fate | undefined;
  /** The destination address, formatted. */
  daddr(pkt: Packet): string;
  /** ip_forward_finish()'s fate: forwarded out of `dev` to the packet's destination (valid until the next packet when ctx.transient). */
  forwarded(pkt: Packet, dev: string, via: string | undefined, ctx: PathCtx): Fate;
  /** A packet's fate once the transport took it (valid until the next packet when ctx.transient). */
  delivered(pkt: Packet, dev: string, cast: Cast, socket: string | undefined, l4: string, ctx: PathCtx): Fate;
  /** A locally generated packet's fate after dst_output: sent out of `dev` (valid until the next packet when ctx.transient). */
  sent(pkt: Packet, dev: string, via: string | undefined, cast: Cast, ctx: PathCtx): Fate;
}

export function dropped(reason: DropReason, detail: string): Fate {
  return { kind: 'dropped', reason, detail, by: undefined };
}

/** ARPHRD_* of a link type, for `meta iiftype`. */
export function arphrd(l: Link): number {
  return l.loopback || l.linkType === 'loopback' ? 772 : l.linkType === 'none' ? 65534 : 1;
}

const LINK_DEVS = new WeakMap<Link, DevWords>();
const NO_DEV = devWords(0);

/** The device record setDeviceWords() writes for link `l` (none for undefined), made once per link. */
export function linkDev(l: Link | undefined): DevWords {
  if (!l) return NO_DEV;
  if (l === lastLink) return lastDev;
  let d = LINK_DEVS.get(l);
  if (!d) {
    d = devWords(l.ifindex, l.name, arphrd(l), l.group);
    LINK_DEVS.set(l, d);
  }
  lastLink = l;
  lastDev = d;
  return d;
}
/** The last link linkDev() was asked for and its record (a frame's devices are the last frame's, mostly). */
let lastLink: Link | undefined;
let lastDev = NO_DEV;

/** PACKET_* names, by value. */
export const PKT_TYPES = ['host', 'broadcast', 'multicast', 'otherhost', 'outgoing', 'loopback'];

export { tableName } from '../route/types.js';

/** A FIB result's route as `ip route` prints it: `10.0.0.0/24 via 10.1.0.2 dev eth1`. */
export function routeText(res: FibResult & { ok: true }): string {
  const r = res.route;
  const dst = r.plen === 0 ? 'default' : `${formatAddr(r.dst)}/${r.plen}`;
  const gw = res.gateway && res.gateway.family === r.dst.family ? ` via ${formatAddr(res.gateway)}` : '';
  return `${dst}${gw} dev ${res.dev}`;
}
