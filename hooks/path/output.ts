/**
 * The end of the output path, shared by IPv4 and IPv6 (Linux 6.18):
 *   net/ipv4/ip_output.c  ip_output(): NF_HOOK_COND(POST_ROUTING) with in = the input device
 *                         (none for a local packet)
 *   net/ipv6/ip6_output.c ip6_output(): the egress device's disable_ipv6 first, then the same
 *   drivers/net/loopback.c loopback_xmit(): a packet routed to a local address comes back in on
 *                         lo with a zero Ethernet header, its route and its conntrack kept (no
 *                         input lookup): PRE_ROUTING, then local delivery; unless DNAT at
 *                         PRE_ROUTING changed the destination (nf_nat_ipv4_pre_routing's
 *                         skb_dst_drop): then the input route again
 */
import type { Link } from '../snapshot/node.js';
import { M_LEN, M_NHOFF } from '../../vm/layout.js';
import { NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { LINKTYPE_ETHERNET, decodePacket, setDevice, type Packet } from '../../vm/packet.js';
import { arphrd, type Cast, type InetFamily, type PathCtx } from './ctx.js';
import type { Fate } from './fate.js';
import { localDeliver } from './local-in.js';
import { forward } from './forward.js';

/** ip_output() / ip6_output(): 1 when the packet passed POSTROUTING. */
export function postRouting(af: InetFamily, pkt: Packet, inDev: Link | undefined, out: Link, ctx: PathCtx): 1 | Fate {
  const bad = af.outputCheck(out);
  if (bad) return bad;
  return af.nf.hook(NF_INET_POST_ROUTING, pkt, inDev, out, ctx);
}

/** loopback_xmit() and the receive side on lo: the packet as a new Ethernet frame, PRE_ROUTING, local delivery. */
export function loopbackXmit(af: InetFamily, pkt: Packet, lo: Link, cast: Cast, ctx: PathCtx): Fate {
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const ip = pkt.data.slice(nh, nh + m[M_LEN]!);
  const frame = new Uint8Array(14 + ip.length);
  frame[12] = af.ethertype >>> 8;
  frame[13] = af.ethertype & 0xff;
  frame.set(ip, 14);
  pkt.setFrame(frame);
  decodePacket(pkt, LINKTYPE_ETHERNET);
  setDevice(pkt, 'in', lo.ifindex, lo.name, arphrd(lo), lo.group);
  setDevice(pkt, 'out', 0);
  const pre = af.nf.hook(NF_INET_PRE_ROUTING, pkt, lo, undefined, ctx);
  if (pre !== 1) return pre;
  if (ctx.dstDropped) {
    // DNAT at PRE_ROUTING dropped the route the packet kept: ip_rcv_finish looks it up again.
    const rt = af.routeInput(pkt, lo, ctx);
    if (rt.kind === 'drop') return rt.fate;
    if (rt.kind === 'forward') return forward(af, pkt, lo, rt, ctx);
    return localDeliver(af, pkt, lo, rt.cast, ctx);
  }
  return localDeliver(af, pkt, lo, cast, ctx);
}
