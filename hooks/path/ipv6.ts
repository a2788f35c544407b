/**
 * What is IPv6's own on the packet path (the shared stages are receive.ts,
 * local-in.ts, forward.ts, local-out.ts, output.ts; the routing is
 * ipv6-route.ts).
 *
 * Mirrors Linux 6.18:
 *   net/ipv6/ip6_input.c   ip6_rcv_core() after its PACKET_OTHERHOST drop: no inet6_dev or
 *                          disable_ipv6 → drop, header length and version, interface-local
 *                          multicast (ff01::/16 and scope 1) from a non-loopback device, multicast
 *                          scope 0, loopback source or destination on a non-loopback device,
 *                          multicast source, drop_unicast_in_l2_multicast, payload_len against the
 *                          data (trim); ip6_input(): LOCAL_IN, then the protocol handlers
 *   net/ipv6/ip6_output.c  ip6_forward(): net.ipv6.conf.all.forwarding (or the input device's
 *                          force_forwarding) else drop, PACKET_HOST only, hop limit <= 1 → ICMPv6
 *                          time exceeded before FORWARD, out the input device → a redirect
 *                          (ndisc_send_redirect, answer/icmp6.ts; the packet still forwarded),
 *                          else unspecified/multicast/loopback/link-local sources dropped,
 *                          larger than the egress MTU (at least 1280) → packet too big, hop limit
 *                          decremented before FORWARD; ip6_output(): disable_ipv6 on the egress
 *                          device → drop
 *
 *                        the IPsec policy checks of a node without states (hooks/route/xfrm.ts):
 *                        xfrm6_policy_check(FWD) after the socket check, before the hop limit
 *                        check; xfrm6_route_forward after it
 *
 * Unlike IPv4, fragments are not reassembled before LOCAL_IN: without
 * conntrack each fragment passes INPUT and is held after it (ipv6_frag_rcv);
 * with conntrack nf_defrag_ipv6 takes it at PRE_ROUTING -400
 * (hooks/defrag.ts).
 *
 * Not modelled (documented gaps): the jumbogram, CALIPSO and IOAM
 * hop-by-hop options (ipv6_parse_hopopts passes them as they are; the
 * other options are answer/stack.ts's), router alert delivery, segment routing (seg6_enabled, rpl_seg_enabled) and Mobile IPv6
 * headers after INPUT (the other routing headers and the destination
 * options are answer/stack.ts's), proxy_ndp, IPsec transforms, MLD and
 * neighbour discovery of the node itself.
 */
import type { Link, Node } from '../snapshot/node.js';
import { formatIPv6 } from '../route/addr.js';
import {
  F_IGNORE_DF, M_FLAGS, M_FRAG_MAX_SIZE, M_LEN, M_NHOFF, M_PKTTYPE, M_SK, PACKET_BROADCAST, PACKET_HOST, PACKET_LOOPBACK, PACKET_MULTICAST, SK_ASSIGNED,
} from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import { ICMPV6_DEST_UNREACH, ICMPV6_NOT_NEIGHBOUR, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED } from '../answer/wire.js';
import { dropped, PKT_TYPES, type PathCtx } from './ctx.js';
import type { Fate } from './fate.js';
import { xfrmRouteForward } from './ipv4.js';
import { XFRM_POLICY_FWD, type XfrmCheck } from '../route/xfrm.js';

/** IPV6_MIN_MTU. */
const IPV6_MIN_MTU = 1280;

export const NEXTHDR_HOP = 0;
export const NEXTHDR_ROUTING = 43;
export const NEXTHDR_FRAGMENT = 44;
export const NEXTHDR_AUTH = 51;
export const NEXTHDR_NONE = 59;
export const NEXTHDR_DEST = 60;

/** The 16 address bytes at `o` as four words. */
export function words(d: Uint8Array, o: number): Uint32Array {
  return wordsInto(d, o, new Uint32Array(4));
}

/** The IPv6 address at `o` into `w` (host-order words), which it returns: a caller's reused array. */
export function wordsInto(d: Uint8Array, o: number, w: Uint32Array): Uint32Array {
  for (let i = 0; i < 4; i++) w[i] = ((d[o + 4 * i]! << 24) | (d[o + 4 * i + 1]! << 16) | (d[o + 4 * i + 2]! << 8) | d[o + 4 * i + 3]!) >>> 0;
  return w;
}

export const isMulticast = (w: Uint32Array) => w[0]! >>> 24 === 0xff;
/** IPV6_ADDR_MC_SCOPE(): the low nibble of the second byte. */
const mcScope = (w: Uint32Array) => (w[0]! >>> 16) & 0x0f;
const isAny = (w: Uint32Array) => (w[0]! | w[1]! | w[2]! | w[3]!) === 0;
export const isLoopback = (w: Uint32Array) => (w[0]! | w[1]! | w[2]!) === 0 && w[3] === 1;
/** fe80::/10 (IPV6_ADDR_LINKLOCAL). */
export const isLinkLocal = (w: ArrayLike<number>) => w[0]! >>> 22 === 0x3fa;

/**
 * The offset of the fragment header the extension headers at `nh` lead to
 * (hop-by-hop, routing, destination options and AH before it, at most 16),
 * or -1; `prev`, when given, gets the offset of the next-header byte that
 * names it (find_prev_fhdr's prevhoff). The fragment header itself may lie
 * past `end`.
 */
export function fragHdr6(d: Uint8Array, nh: number, end: number, prev?: Int32Array): number {
  if (nh + 40 > end) return -1;
  let next = d[nh + 6]!;
  let at = nh + 6;
  let off = nh + 40;
  for (let n = 0; n < 16; n++) {
    if (next === NEXTHDR_FRAGMENT) {
      if (prev) prev[0] = at;
      return off;
    }
    if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST && next !== NEXTHDR_AUTH) return -1;
    if (off + 2 > end) return -1;
    const len = next === NEXTHDR_AUTH ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    at = off;
    next = d[off]!;
    off += len;
  }
  return -1;
}

/** Whether the packet carries a fragment header that makes it a fragment (offset or MF set). */
export function isFragment6(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  const off = fragHdr6(d, nh, end);
  return off >= 0 && off + 8 <= end && (((d[off + 2]! << 8) | d[off + 3]!) & 0xfff9) !== 0;
}

function orConf(node: Node, dev: string, name: string): boolean {
  return node.sysctl.allConf(6, name) > 0 || node.sysctl.devConf(6, dev, name) > 0;
}

const RCV_SADDR = new Uint32Array(4);
const RCV_DADDR = new Uint32Array(4);

/** ip6_rcv_core() after the PACKET_OTHERHOST drop: undefined when the packet goes on to PRE_ROUTING. */
export function ip6RcvCore(node: Node, pkt: Packet, dev: Link, ctx: PathCtx): Fate | undefined {
  const m = pkt.meta;
  const d = pkt.data;
  if (node.sysctl.ipv6Disabled(dev.name)) return dropped('ipv6-disabled', `IPv6 is disabled on ${dev.name} (net.ipv6.conf.${dev.name}.disable_ipv6 = 1)`);
  const nh = m[M_NHOFF]!;
  const avail = pkt.len - nh;
  if (avail < 40) return dropped('bad-header', `truncated IPv6 header (${Math.max(0, avail)} bytes)`);
  if (d[nh]! >> 4 !== 6) return dropped('bad-header', `IP version ${d[nh]! >> 4} in an IPv6 frame`);
  // the addresses in reused words: read only here, before the hop-by-hop options (which may answer) run
  const saddr = wordsInto(d, nh + 8, RCV_SADDR);
  const daddr = wordsInto(d, nh + 24, RCV_DADDR);
  const loopDev = dev.loopback || m[M_PKTTYPE] === PACKET_LOOPBACK;
  if ((isLoopback(saddr) || isLoopback(daddr)) && !dev.loopback) {
    return dropped(isLoopback(saddr) ? 'martian-source' : 'martian-destination', `the loopback address ::1 from outside (${dev.name})`);
  }
  if (!loopDev && isMulticast(daddr) && mcScope(daddr) === 1) {
    return dropped('martian-destination', `interface-local multicast ${formatIPv6(daddr)} from another node (RFC 4291 errata 3480)`);
  }
  if (!isMulticast(daddr) && (m[M_PKTTYPE] === PACKET_BROADCAST || m[M_PKTTYPE] === PACKET_MULTICAST) && orConf(node, dev.name, 'drop_unicast_in_l2_multicast')) {
    return dropped('bad-header', 'unicast in a link-layer multicast frame (drop_unicast_in_l2_multicast)');
  }
  if (isMulticast(daddr) && mcScope(daddr) === 0) return dropped('martian-destination', `multicast ${formatIPv6(daddr)} with the reserved scope 0`);
  if (isMulticast(saddr)) return dropped('martian-source', `multicast source ${formatIPv6(saddr)}`);
  const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
  if (plen || d[nh + 6] !== NEXTHDR_HOP) {
    if (plen + 40 > avail) return dropped('bad-header', `truncated packet (${avail} bytes, payload_len ${plen} + 40)`);
  }
  if (d[nh + 6] === NEXTHDR_HOP && ctx.stack) {
    const why = ctx.stack.hopByHop(pkt, dev, ctx);
    if (why !== undefined) return dropped('bad-header', `${why} (ip6_rcv_core, before PREROUTING)`);
  }
  return undefined;
}

/** ip6_input() → ipv6_frag_rcv(): a fragment passed INPUT and is held for reassembly. */
export function ip6InputDefrag(pkt: Packet): Fate | undefined {
  return isFragment6(pkt) ? dropped('reassembly', 'a fragment for this host: passed INPUT, then held by ipv6_frag_rcv (the node model has no reassembly queues)') : undefined;
}

/** A locally sent packet must at least be an IPv6 header. */
export function ip6LocalOutCheck(pkt: Packet): Fate | undefined {
  const nh = pkt.meta[M_NHOFF]!;
  return pkt.len - nh < 40 || pkt.data[nh]! >> 4 !== 6 ? dropped('bad-header', 'not an IPv6 header') : undefined;
}

/** ip6_output(): the egress device must not have IPv6 disabled. */
export function ip6OutputCheck(node: Node, out: Link): Fate | undefined {
  return node.sysctl.ipv6Disabled(out.name) ? dropped('ipv6-disabled', `IPv6 is disabled on ${out.name} (ip6_output)`) : undefined;
}

/** The forwarded packet's source, read into reused words (ip6ForwardPrepare keeps no reference). */
const FWD_SADDR = new Uint32Array(4);

/** ip6_forward() up to NF_HOOK(FORWARD): the egress device, or the fate. */
export function ip6ForwardPrepare(node: Node, pkt: Packet, dev: Link, rt: { dev: string; gateway6?: Uint32Array }, ctx: PathCtx, xfrm?: XfrmCheck): Link | Fate {
  const m = pkt.meta;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  const sys = node.sysctl;
  if (sys.allConf(6, 'forwarding') <= 0 && sys.devConf(6, dev.name, 'force_forwarding') <= 0) {
    return dropped('ip-forward-off', `${formatIPv6(words(d, nh + 24))} is not local and the node does not forward IPv6 (net.ipv6.conf.all.forwarding = 0)`);
  }
  if (m[M_PKTTYPE] !== PACKET_HOST) return dropped('not-host', `a link-layer ${PKT_TYPES[m[M_PKTTYPE]!]} frame is not forwarded (ip6_forward)`);
  if (m[M_SK] === SK_ASSIGNED) return dropped('has-socket', 'TPROXY gave the packet a local socket: it is not forwarded (ip6_forward: skb->sk)');
  // xfrm6_policy_check(NULL, XFRM_POLICY_FWD, skb) unless net.ipv6.conf.all or the input device's disable_policy
  // (forward routes carry no DST_NOPOLICY); before the hop limit is looked at
  if (xfrm !== undefined && !sys.disablePolicy(dev.name, 6)) {
    const why = xfrm.checkPacket(pkt, XFRM_POLICY_FWD, rt.dev, false);
    if (why !== undefined) return dropped('xfrm-policy', `${why} (ip6_forward: xfrm6_policy_check, FORWARD not reached)`);
  }
  if (d[nh + 7]! <= 1) {
    ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_TIME_EXCEED, 0, 0, dev, ctx);
    return dropped('ttl', `hop limit ${d[nh + 7]} exceeded in transit (ICMPv6 time exceeded sent, FORWARD not reached)`);
  }
  // xfrm6_route_forward() after the hop limit check (IPv6 routes have no DST_NOXFRM)
  if (xfrm !== undefined) {
    const held = xfrmRouteForward(node, xfrm, pkt, rt.dev, ctx, 'xfrm6_route_forward');
    if (held !== undefined) return held;
  }
  const out = node.links.get(rt.dev);
  if (!out) return dropped('device', `route names device ${rt.dev}, which the snapshot does not have`);
  if (out.name !== dev.name) {
    const saddr = wordsInto(d, nh + 8, FWD_SADDR);
    if (isAny(saddr) || isMulticast(saddr) || isLoopback(saddr)) return dropped('martian-source', `source ${formatIPv6(saddr)} is not forwarded (ip6_forward)`);
    if (isLinkLocal(saddr)) {
      ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_DEST_UNREACH, ICMPV6_NOT_NEIGHBOUR, 0, dev, ctx);
      return dropped('martian-source', `link-local source ${formatIPv6(saddr)} is not forwarded to another link (ICMPv6 not a neighbour sent)`);
    }
  } else if (ctx.stack) {
    // out the device it came in on: a redirect naming the gateway (RTF_GATEWAY) or the destination; the packet is still forwarded
    ctx.stack.redirect6(pkt, dev, rt.gateway6 ?? words(d, nh + 24), ctx);
  }
  const mtu = Math.max(IPV6_MIN_MTU, out.mtu);
  const len = m[M_LEN]!;
  // ip6_pkt_too_big(): a datagram nf_defrag reassembled (ignore_df) is too big only when its largest fragment was
  if (len > mtu && ((m[M_FLAGS]! & F_IGNORE_DF) === 0 || m[M_FRAG_MAX_SIZE]! > mtu)) {
    ctx.stack?.icmpError(NFPROTO_IPV6, pkt, ICMPV6_PKT_TOOBIG, 0, mtu, dev, ctx);
    return dropped('mtu', `${len} bytes exceed the MTU ${mtu} of ${out.name} (ICMPv6 packet too big sent)`);
  }
  d[nh + 7] = d[nh + 7]! - 1;
  return out;
}
