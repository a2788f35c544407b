/**
 * The IPv6 packet path of a Linux host: a frame in on a device, or a packet
 * sent by a local program, through the ip6tables hooks (NFPROTO_IPV6) and
 * the routing decisions to its fate.
 *
 * Mirrors Linux 6.18:
 *   net/ethernet/eth.c     eth_type_trans(): pkt_type from the destination MAC (33:33:.. → multicast)
 *   net/ipv6/ip6_input.c   ip6_rcv_core(): PACKET_OTHERHOST dropped, no inet6_dev or disable_ipv6 →
 *                          drop, header length and version, interface-local multicast (ff01::/16 and
 *                          scope 1) from a non-loopback device, multicast scope 0, loopback source or
 *                          destination on a non-loopback device, multicast source,
 *                          drop_unicast_in_l2_multicast, payload_len against the data (trim);
 *                          PRE_ROUTING; ip6_rcv_finish(): the input route unless the skb kept its
 *                          dst (loopback); ip6_input(): LOCAL_IN; ip6_mc_input(): deliver only
 *                          to a group the device joined (ipv6_chk_mcast_addr)
 *   net/ipv6/route.c       ip6_route_input(): flowi6 {iif, daddr, saddr, flowlabel, mark, proto},
 *                          RT6_LOOKUP_F_IFACE for multicast, link-local and loopback destinations
 *                          (rt6_need_strict: only routes through the input device, backtracking
 *                          to shorter prefixes), ip6_rt_init_dst(): local and anycast routes →
 *                          ip6_input, a multicast prefix → ip6_mc_input, reject routes →
 *                          ip6_pkt_discard/prohibit/dst_discard, anything else → ip6_forward
 *   net/ipv6/ip6_output.c  ip6_forward(): net.ipv6.conf.all.forwarding (or the input device's
 *                          force_forwarding) else drop, PACKET_HOST only, hop limit <= 1 → ICMPv6
 *                          time exceeded before FORWARD, out the input device → redirect (no source
 *                          check), else unspecified/multicast/loopback/link-local sources dropped,
 *                          larger than the egress MTU (at least 1280) → packet too big, hop limit
 *                          decremented before FORWARD; ip6_output(): disable_ipv6 on the egress
 *                          device → drop, POST_ROUTING (in = the input device)
 *   net/ipv6/output_core.c __ip6_local_out(): LOCAL_OUT, then dst_output
 *   net/ipv6/netfilter/ip6table_mangle.c ip6t_mangle_out(): re-route when saddr, daddr, mark,
 *                          hop limit or the first word (flow label, traffic class) changed
 *   net/ipv6/addrconf.c, mcast.c  the groups a device joins: ff02::1 and ff01::1 on every device,
 *                          ff02::2 when the device forwards (multicast devices; see joinedGroups),
 *                          the solicited-node group ff02::1:ffXX:XXXX of each address (not on
 *                          loopback/NOARP devices); checked with `ip -6 maddr` on 6.18
 *
 * Unlike IPv4, fragments are not reassembled before LOCAL_IN: without
 * conntrack each fragment passes INPUT and is held after it (ipv6_frag_rcv);
 * with conntrack nf_defrag_ipv6 takes it at PRE_ROUTING -400 (see
 * defrag6Takes for the fragments it lets through).
 *
 * Not modelled (documented gaps): hop-by-hop option processing
 * (ipv6_parse_hopopts: the header passes as it is; jumbograms), router
 * alert, extension headers after INPUT, proxy_ndp, multicast routing and
 * the looped-back copy of locally sent multicast, xfrm, neighbour
 * discovery (a forwarded packet counts as sent once it passed POSTROUTING),
 * the redirect sent when a packet leaves by the device it came in on, NAT.
 */
import type { Link, Node } from '../snapshot/node.js';
import { fibLookup } from '../route/index.js';
import { formatIPv6, maskAddr } from '../route/addr.js';
import { RTN_ANYCAST, RTN_LOCAL, type FibResult, type FlowKey } from '../route/types.js';
import {
  F_L4PROTO, F_MAC_HEADER, M_FLAGS, M_L4PROTO, M_LEN, M_MACOFF, M_MARK, M_NHOFF, M_PKTTYPE, M_THOFF, PACKET_BROADCAST,
  PACKET_HOST, PACKET_LOOPBACK, PACKET_MULTICAST, PACKET_OTHERHOST,
} from '../../vm/layout.js';
import {
  NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING,
} from '../../core/netfilter.js';
import { LINKTYPE_ETHERNET, decodePacket, setDevice, type Packet } from '../../vm/packet.js';
import { arphrd, EHOSTUNREACH, EINVAL, type Netfilter, type PathCtx } from './ipv4.js';
import type { DropReason, Fate } from './fate.js';
import { parseMac } from '../../core/addr.js';

/** IPV6_MIN_MTU. */
const IPV6_MIN_MTU = 1280;
const NEXTHDR_HOP = 0;
const NEXTHDR_ROUTING = 43;
const NEXTHDR_FRAGMENT = 44;
const NEXTHDR_AUTH = 51;
const NEXTHDR_DEST = 60;

function dropped(reason: DropReason, detail: string): Fate {
  return { kind: 'dropped', reason, detail, by: undefined };
}

/** The 16 address bytes at `o` as four words. */
function words(d: Uint8Array, o: number): Uint32Array {
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((d[o + 4 * i]! << 24) | (d[o + 4 * i + 1]! << 16) | (d[o + 4 * i + 2]! << 8) | d[o + 4 * i + 3]!) >>> 0;
  return w;
}

const isMulticast = (w: Uint32Array) => w[0]! >>> 24 === 0xff;
/** IPV6_ADDR_MC_SCOPE(): the low nibble of the second byte. */
const mcScope = (w: Uint32Array) => (w[0]! >>> 16) & 0x0f;
const isAny = (w: Uint32Array) => (w[0]! | w[1]! | w[2]! | w[3]!) === 0;
const isLoopback = (w: Uint32Array) => (w[0]! | w[1]! | w[2]!) === 0 && w[3] === 1;
/** fe80::/10 (IPV6_ADDR_LINKLOCAL). */
const isLinkLocal = (w: Uint32Array) => w[0]! >>> 22 === 0x3fa;
/** rt6_need_strict(): multicast, link-local or loopback destinations are looked up through the device only. */
const needStrict = (w: Uint32Array) => isMulticast(w) || isLinkLocal(w) || isLoopback(w);

/** Whether the packet carries a fragment header that makes it a fragment (offset or MF set). */
export function isFragment6(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  if (nh + 40 > end) return false;
  let next = d[nh + 6]!;
  let off = nh + 40;
  for (let n = 0; n < 16; n++) {
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 8 > end) return false;
      return (((d[off + 2]! << 8) | d[off + 3]!) & 0xfff9) !== 0;
    }
    if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST && next !== NEXTHDR_AUTH) return false;
    if (off + 2 > end) return false;
    const len = next === NEXTHDR_AUTH ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  return false;
}

/**
 * nf_defrag_ipv6 (ipv6_defrag → nf_ct_frag6_gather → nf_ct_frag6_queue):
 * whether the fragment is taken (queued for reassembly, or dropped as
 * malformed: both end the packet here) or goes on unchanged. A packet
 * without a fragment header, with payload_len 0, or an atomic fragment
 * (offset 0, no MF; reassembly of it is not modelled) goes on; so does a
 * first fragment without its whole upper-layer header (thdrTruncated) and
 * a non-final fragment whose end is not a multiple of 8 (nf_ct_frag6_queue
 * says -EPROTO, which nf_ct_frag6_gather turns into 0): unreassembled.
 * Checked against 6.18 in test/kernel/replay6-kernel.test.ts.
 */
export function defrag6Takes(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  if (nh + 40 > end) return false;
  const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
  if (plen === 0) return false;
  let next = d[nh + 6]!;
  let off = nh + 40;
  for (let n = 0; n < 16; n++) {
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 8 > end) return true; // pskb_may_pull fails: -ENOMEM, dropped
      const fo = (d[off + 2]! << 8) | d[off + 3]!;
      if ((fo & 0xfff9) === 0) return false;
      const offset = fo & 0xfff8;
      if (offset === 0 && thdrTruncated(d, d[off]!, off + 8, end)) return false;
      const last = offset + (plen - (off + 8 - (nh + 40)));
      if ((fo & 1) !== 0 && (last & 7) !== 0) return false;
      return true;
    }
    if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST) return false;
    if (off + 2 > end) return false;
    const len = (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  return false;
}

/**
 * ipv6frag_thdr_truncated() for a first fragment (RFC 8200 4.5): whether the
 * headers after the fragment header stop before a whole upper-layer header
 * (TCP 20, UDP 8, ICMPv6 8 bytes, anything else 1). nf_ct_frag6_gather
 * returns 0 for such a fragment ("Drop incomplete fragment"), so
 * nf_defrag_ipv6 accepts it as it is.
 */
function thdrTruncated(d: Uint8Array, next: number, off: number, end: number): boolean {
  // ipv6_skip_exthdr(): an unreadable extension header or NEXTHDR_NONE → -1 → not truncated.
  for (let n = 0; n < 16 && (next === NEXTHDR_HOP || next === NEXTHDR_ROUTING || next === NEXTHDR_DEST || next === NEXTHDR_AUTH ||
    next === NEXTHDR_FRAGMENT || next === 59); n++) {
    if (next === 59) return false;
    if (off + 2 > end) return false;
    let len: number;
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 4 > end) return false;
      if ((((d[off + 2]! << 8) | d[off + 3]!) & 0xfff8) !== 0) return false;
      len = 8;
    } else len = next === NEXTHDR_AUTH ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  const need = next === 6 ? 20 : next === 17 || next === 58 ? 8 : 1;
  return off + need > end;
}

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

/** The result of the input route (skb_dst after ip6_route_input). */
export type InputRoute6 =
  | { kind: 'local'; cast: 'unicast' | 'multicast' }
  | { kind: 'forward'; dev: string; gateway: string | undefined }
  | { kind: 'drop'; fate: Fate };

export class Ipv6Path {
  constructor(
    readonly node: Node,
    readonly nf: Netfilter,
  ) {}

  /** idev->cnf.disable_ipv6 of a device (the snapshot's per-device value; `all` when only that is given). */
  disabled(dev: string): boolean {
    const s = this.node.sysctl;
    if (!s.has(`net.ipv6.conf.${dev}.disable_ipv6`) && s.has('net.ipv6.conf.all.disable_ipv6')) return s.allConf(6, 'disable_ipv6') > 0;
    return s.devConf(6, dev, 'disable_ipv6') > 0;
  }

  /** A frame received on `dev` (pkt decoded, with its link header if it has one). */
  receive(pkt: Packet, dev: Link, ctx: PathCtx): Fate {
    const m = pkt.meta;
    setDevice(pkt, 'in', dev.ifindex, dev.name, arphrd(dev), dev.group);
    setDevice(pkt, 'out', 0);
    // eth_type_trans()
    if ((m[M_FLAGS]! & F_MAC_HEADER) !== 0 && dev.mac !== '') {
      const mac = m[M_MACOFF]!;
      const d = pkt.data;
      const own = parseMac(dev.mac) ?? new Uint8Array(0);
      let same = own.length === 6;
      for (let i = 0; same && i < 6; i++) if (d[mac + i] !== own[i]) same = false;
      if (!same) {
        let bcast = true;
        for (let i = 0; i < 6; i++) if (d[mac + i] !== 0xff) bcast = false;
        m[M_PKTTYPE] = bcast ? PACKET_BROADCAST : (d[mac]! & 1) !== 0 ? PACKET_MULTICAST : PACKET_OTHERHOST;
      } else m[M_PKTTYPE] = PACKET_HOST;
    }
    if (!dev.up) return dropped('device', `${dev.name} is down`);
    const bad = this.rcvCore(pkt, dev);
    if (bad) return bad;
    if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `ipv6_rcv: ${dev.name} accepts the packet (pkt_type ${PKT_TYPES[m[M_PKTTYPE]!] ?? m[M_PKTTYPE]})` });
    const pre = this.nf.hook(NF_INET_PRE_ROUTING, pkt, dev, undefined, ctx);
    if (pre !== 1) return pre;
    const rt = this.routeInput(pkt, dev, ctx);
    if (rt.kind === 'drop') return rt.fate;
    if (rt.kind === 'local') return this.input(pkt, dev, rt.cast, ctx);
    return this.forward(pkt, dev, rt, ctx);
  }

  /** ip6_rcv_core(): undefined when the packet goes on to PRE_ROUTING. */
  rcvCore(pkt: Packet, dev: Link): Fate | undefined {
    const m = pkt.meta;
    const d = pkt.data;
    if (m[M_PKTTYPE] === PACKET_OTHERHOST) {
      return dropped('other-host', 'the destination MAC is not the device\'s (PACKET_OTHERHOST, dropped before PREROUTING)');
    }
    if (this.disabled(dev.name)) return dropped('ipv6-disabled', `IPv6 is disabled on ${dev.name} (net.ipv6.conf.${dev.name}.disable_ipv6 = 1)`);
    const nh = m[M_NHOFF]!;
    const avail = pkt.len - nh;
    if (avail < 40) return dropped('bad-header', `truncated IPv6 header (${Math.max(0, avail)} bytes)`);
    if (d[nh]! >> 4 !== 6) return dropped('bad-header', `IP version ${d[nh]! >> 4} in an IPv6 frame`);
    const saddr = words(d, nh + 8);
    const daddr = words(d, nh + 24);
    const loopDev = dev.loopback || m[M_PKTTYPE] === PACKET_LOOPBACK;
    if ((isLoopback(saddr) || isLoopback(daddr)) && !dev.loopback) {
      return dropped(isLoopback(saddr) ? 'martian-source' : 'martian-destination', `the loopback address ::1 from outside (${dev.name})`);
    }
    if (!loopDev && isMulticast(daddr) && mcScope(daddr) === 1) {
      return dropped('martian-destination', `interface-local multicast ${formatIPv6(daddr)} from another node (RFC 4291 errata 3480)`);
    }
    if (!isMulticast(daddr) && (m[M_PKTTYPE] === PACKET_BROADCAST || m[M_PKTTYPE] === PACKET_MULTICAST) && this.orConf(dev.name, 'drop_unicast_in_l2_multicast')) {
      return dropped('bad-header', 'unicast in a link-layer multicast frame (drop_unicast_in_l2_multicast)');
    }
    if (isMulticast(daddr) && mcScope(daddr) === 0) return dropped('martian-destination', `multicast ${formatIPv6(daddr)} with the reserved scope 0`);
    if (isMulticast(saddr)) return dropped('martian-source', `multicast source ${formatIPv6(saddr)}`);
    const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
    if (plen || d[nh + 6] !== NEXTHDR_HOP) {
      if (plen + 40 > avail) return dropped('bad-header', `truncated packet (${avail} bytes, payload_len ${plen} + 40)`);
    }
    return undefined;
  }

  private orConf(dev: string, name: string): boolean {
    return this.node.sysctl.allConf(6, name) > 0 || this.node.sysctl.devConf(6, dev, name) > 0;
  }

  private flow(pkt: Packet, iif: string, oif: string): FlowKey {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const l4 = (m[M_FLAGS]! & F_L4PROTO) !== 0 ? m[M_L4PROTO]! : d[nh + 6]!;
    const th = m[M_THOFF]!;
    const ports = (m[M_FLAGS]! & F_L4PROTO) !== 0 && (l4 === 6 || l4 === 17 || l4 === 132) && th > nh && !isFragment6(pkt) && th + 4 <= nh + m[M_LEN]!;
    return {
      daddr: { family: 6, w: words(d, nh + 24) }, saddr: { family: 6, w: words(d, nh + 8) }, iif, oif, mark: m[M_MARK]! >>> 0,
      tos: ((d[nh]! & 0x0f) << 4) | (d[nh + 1]! >> 4), proto: l4,
      sport: ports ? (d[th]! << 8) | d[th + 1]! : 0, dport: ports ? (d[th + 2]! << 8) | d[th + 3]! : 0,
    };
  }

  /** ip6_route_input() + ip6_rt_init_dst(): what dst.input the packet gets. */
  routeInput(pkt: Packet, dev: Link, ctx: PathCtx): InputRoute6 {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const daddr = words(d, nh + 24);
    const dst = formatIPv6(daddr);
    const strict = needStrict(daddr);
    const res = fibLookup(this.node, this.flow(pkt, dev.name, strict ? dev.name : ''));
    if (!res.ok) {
      const what = res.error === 'noroute' ? 'no route' : `${res.error} route`;
      return { kind: 'drop', fate: dropped('no-route', `${what} to ${dst}${strict ? ` through ${dev.name}` : ''} (ip6_pkt_discard, ICMPv6 destination unreachable)`) };
    }
    if (res.rtnType === RTN_LOCAL || res.rtnType === RTN_ANYCAST) {
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${dst} is ${res.rtnType === RTN_LOCAL ? 'local' : 'anycast'} (table ${tableName(res.table)}): INPUT` });
      return { kind: 'local', cast: 'unicast' };
    }
    if (isMulticast(res.route.dst.w as Uint32Array)) {
      // ip6_mc_input()
      if (!joinedGroups(this.node, dev).has(dst)) {
        return { kind: 'drop', fate: dropped('multicast', `multicast ${dst}: no group joined on ${dev.name} (multicast routing is not modelled)`) };
      }
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: multicast ${dst} joined on ${dev.name}: local delivery` });
      return { kind: 'local', cast: 'multicast' };
    }
    const gw = res.gateway && res.gateway.family === 6 ? formatIPv6(res.gateway.w) : undefined;
    if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `input route: ${dst} via ${res.type} route ${routeText(res)} (table ${tableName(res.table)}): ip6_forward out ${res.dev}` });
    return { kind: 'forward', dev: res.dev, gateway: gw };
  }

  /** ip6_input(): LOCAL_IN, then the protocol handlers (fragments wait for reassembly there). */
  private input(pkt: Packet, dev: Link, cast: 'unicast' | 'multicast', ctx: PathCtx): Fate {
    const r = this.nf.hook(NF_INET_LOCAL_IN, pkt, dev, undefined, ctx);
    if (r !== 1) return r;
    if (isFragment6(pkt)) return dropped('reassembly', 'a fragment for this host: passed INPUT, then held by ipv6_frag_rcv for reassembly (not modelled)');
    const nh = pkt.meta[M_NHOFF]!;
    return { kind: 'delivered', addr: formatIPv6(words(pkt.data, nh + 24)), dev: dev.name, cast };
  }

  /** ip6_forward() + ip6_forward_finish() + ip6_output(). */
  private forward(pkt: Packet, dev: Link, rt: { dev: string; gateway: string | undefined }, ctx: PathCtx): Fate {
    const m = pkt.meta;
    const d = pkt.data;
    const nh = m[M_NHOFF]!;
    const sys = this.node.sysctl;
    if (sys.allConf(6, 'forwarding') <= 0 && sys.devConf(6, dev.name, 'force_forwarding') <= 0) {
      return dropped('ip-forward-off', `${formatIPv6(words(d, nh + 24))} is not local and the node does not forward IPv6 (net.ipv6.conf.all.forwarding = 0)`);
    }
    if (m[M_PKTTYPE] !== PACKET_HOST) return dropped('not-host', `a link-layer ${PKT_TYPES[m[M_PKTTYPE]!]} frame is not forwarded (ip6_forward)`);
    if (d[nh + 7]! <= 1) return dropped('ttl', `hop limit ${d[nh + 7]} exceeded in transit (ICMPv6 time exceeded sent, FORWARD not reached)`);
    const out = this.node.links.get(rt.dev);
    if (!out) return dropped('device', `route names device ${rt.dev}, which the snapshot does not have`);
    if (out.name !== dev.name) {
      const saddr = words(d, nh + 8);
      if (isAny(saddr) || isMulticast(saddr) || isLoopback(saddr)) return dropped('martian-source', `source ${formatIPv6(saddr)} is not forwarded (ip6_forward)`);
      if (isLinkLocal(saddr)) return dropped('martian-source', `link-local source ${formatIPv6(saddr)} is not forwarded to another link (ICMPv6 not a neighbour sent)`);
    } else if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `ip6_forward: out the device it came in on (${dev.name}): a redirect is sent, the packet still forwarded` });
    const mtu = Math.max(IPV6_MIN_MTU, out.mtu);
    const len = m[M_LEN]!;
    if (len > mtu) return dropped('mtu', `${len} bytes exceed the MTU ${mtu} of ${out.name} (ICMPv6 packet too big sent)`);
    d[nh + 7] = d[nh + 7]! - 1;
    const fwd = this.nf.hook(NF_INET_FORWARD, pkt, dev, out, ctx);
    if (fwd !== 1) return fwd;
    if (this.disabled(out.name)) return dropped('ipv6-disabled', `IPv6 is disabled on ${out.name} (ip6_output)`);
    const post = this.nf.hook(NF_INET_POST_ROUTING, pkt, dev, out, ctx);
    if (post !== 1) return post;
    return { kind: 'forwarded', dev: out.name, via: rt.gateway, dst: formatIPv6(words(d, nh + 24)) };
  }

  /**
   * A packet sent by a local program (raw IPv6 at pkt's network header):
   * output route, LOCAL_OUT (with mangle's re-route), POST_ROUTING, then out
   * of a device or back in through lo.
   */
  send(pkt: Packet, oif: string, ctx: PathCtx): Fate {
    const m = pkt.meta;
    setDevice(pkt, 'in', 0);
    const nh = m[M_NHOFF]!;
    const avail = pkt.len - nh;
    if (avail < 40 || pkt.data[nh]! >> 4 !== 6) return dropped('bad-header', 'not an IPv6 header');
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
    if (this.disabled(out.name)) return dropped('ipv6-disabled', `IPv6 is disabled on ${out.name} (ip6_output)`);
    const post = this.nf.hook(NF_INET_POST_ROUTING, pkt, undefined, out, ctx);
    if (post !== 1) return post;
    const dst = formatIPv6(words(pkt.data, nh + 24));
    if (route.local) {
      // loopback_xmit(): back in on lo; the dst is kept (ip6_rcv_finish makes no lookup) and ip6_input runs.
      const loLink = out;
      const ip = pkt.data.slice(nh, nh + m[M_LEN]!);
      const frame = new Uint8Array(14 + ip.length);
      frame[12] = 0x86;
      frame[13] = 0xdd;
      frame.set(ip, 14);
      pkt.setFrame(frame);
      decodePacket(pkt, LINKTYPE_ETHERNET);
      setDevice(pkt, 'in', loLink.ifindex, loLink.name, arphrd(loLink), loLink.group);
      setDevice(pkt, 'out', 0);
      const pre = this.nf.hook(NF_INET_PRE_ROUTING, pkt, loLink, undefined, ctx);
      if (pre !== 1) return pre;
      return this.input(pkt, loLink, 'unicast', ctx);
    }
    return { kind: 'sent', dev: route.dev, via: route.gateway, dst, cast: route.cast };
  }

  /**
   * ip6_route_output_flags(), reduced: iif lo, the packet's mark, the device
   * restriction for strict destinations when an oif is given (or for any
   * oif with an unspecified source); a local or anycast route → lo.
   */
  routeOutput(pkt: Packet, oif: string): { dev: string; gateway: string | undefined; local: boolean; cast: 'unicast' | 'multicast'; text: string } | { fate: Fate } {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const daddr = words(d, nh + 24);
    const dst = formatIPv6(daddr);
    const res = fibLookup(this.node, this.flow(pkt, '', oif));
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

const PKT_TYPES = ['host', 'broadcast', 'multicast', 'otherhost', 'outgoing', 'loopback'];

function tableName(id: number): string {
  return id === 255 ? 'local' : id === 254 ? 'main' : id === 253 ? 'default' : String(id);
}

function routeText(res: FibResult & { ok: true }): string {
  const r = res.route;
  const dst = r.plen === 0 ? 'default' : `${formatIPv6(r.dst.w)}/${r.plen}`;
  const gw = res.gateway && res.gateway.family === 6 ? ` via ${formatIPv6(res.gateway.w)}` : '';
  return `${dst}${gw} dev ${res.dev}`;
}

/** What ip6t_mangle_out() compares: mark, saddr, daddr, hop limit, the first header word. */
export function routeKeys6(pkt: Packet): number[] {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const w = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  const out = [pkt.meta[M_MARK]!, d[nh + 7]!, w(nh)];
  for (let i = 8; i < 40; i += 4) out.push(w(nh + i));
  return out;
}
