/**
 * The receive stage, shared by IPv4 and IPv6: a frame in on a device, up to
 * its input route and on to local delivery or forwarding.
 *
 * Mirrors Linux 6.18:
 *   net/ethernet/eth.c    eth_type_trans() (eth.ts)
 *   net/ipv4/ip_input.c   ip_rcv() / ip_rcv_core(): PACKET_OTHERHOST dropped first, then the header
 *                         checks; NF_HOOK(PRE_ROUTING); ip_rcv_finish(): the input route unless the
 *                         skb kept its dst (a looped-back packet: output.ts), then dst_input()
 *   net/ipv6/ip6_input.c  ipv6_rcv() / ip6_rcv_core(), ip6_rcv_finish(): the same steps
 * A reject route's dst.input (ip_error, ip6_pkt_discard) is the stack's to answer (hooks/answer).
 * The header checks and the input route are the family's (ipv4.ts, ipv6.ts).
 */
import type { Link } from '../snapshot/node.js';
import { F_MAC_HEADER, M_FLAGS, M_MACOFF, M_NHOFF, M_PKTTYPE, PACKET_OTHERHOST } from '../../vm/layout.js';
import { NF_INET_PRE_ROUTING, NFPROTO_IPV4 } from '../../core/netfilter.js';
import { ETH_P_8021AD, ETH_P_8021Q, setDeviceWords, type Packet } from '../../vm/packet.js';
import type { Node } from '../snapshot/node.js';
import { dropped, inputDst, linkDev, PKT_TYPES, type InetFamily, type PathCtx } from './ctx.js';
import { ethTypeTrans } from './eth.js';
import type { Fate } from './fate.js';
import { localDeliver } from './local-in.js';
import { forward } from './forward.js';

/**
 * A frame received on `dev` (pkt decoded, with its link header if it has
 * one): the whole receive path. `fromBridge`: a bridge passed the frame up
 * to its own device (br_pass_frame_up → netif_receive_skb): pkt_type is
 * the one the bridge port gave it, no eth_type_trans again. `vid`: the VLAN
 * id of the tag the frame still carries (skb->vlan_tci; 0 for none), when
 * the bridge decided it; read from the frame's outer tag otherwise.
 * __netif_receive_skb_core()'s check_vlan_id: a tag with a non-zero id that
 * no VLAN device on the device takes makes the frame PACKET_OTHERHOST (a
 * priority tag, id 0, is just removed). A device with VLAN devices on it
 * hands tagged frames to them (vlan_do_receive): not modelled, the frame
 * stays on the device.
 */
export function receive(af: InetFamily, pkt: Packet, dev: Link, ctx: PathCtx, fromBridge = false, vid?: number): Fate {
  const m = pkt.meta;
  setDeviceWords(pkt, true, linkDev(dev));
  setDeviceWords(pkt, false, linkDev(undefined));
  if (!fromBridge) ethTypeTrans(pkt, dev);
  if (!dev.up) return dropped('device', `${dev.name} is down`);
  const tag = vid ?? wireVid(pkt);
  if (tag > 0 && !hasVlanUpper(af.node, dev.name)) {
    return dropped('other-host', `VLAN ${tag} tag and no VLAN device on ${dev.name} (PACKET_OTHERHOST, __netif_receive_skb_core): dropped before PREROUTING`);
  }
  if (m[M_PKTTYPE] === PACKET_OTHERHOST) {
    return dropped('other-host', 'the destination MAC is not the device\'s (PACKET_OTHERHOST, dropped before PREROUTING)');
  }
  const bad = af.rcvCore(pkt, dev, ctx);
  if (bad) return bad;
  if (!ctx.quiet) ctx.steps.push({ kind: 'check', text: `${af.rcvName}: ${dev.name} accepts the packet (pkt_type ${PKT_TYPES[m[M_PKTTYPE]!] ?? m[M_PKTTYPE]})` });
  const pre = af.nf.hook(NF_INET_PRE_ROUTING, pkt, dev, undefined, ctx);
  if (pre !== 1) {
    // ip_sabotage_in (br_netfilter) stole it to call ip_rcv_finish itself: the rest of PREROUTING is skipped.
    if (!ctx.brSabotage) return pre;
    ctx.brSabotage = false;
  }
  const rt = af.routeInput(pkt, dev, ctx);
  if (rt.kind === 'drop') {
    if (rt.errno) {
      // an error route is a route: ip_rcv_finish_core() checks the IPv4 options before dst_input (ip_error)
      if (af.pf === NFPROTO_IPV4 && ctx.stack && (pkt.data[pkt.meta[M_NHOFF]!]! & 0x0f) > 5) {
        ctx.dst = inputDst(false, 'unicast', 'lo');
        const why = ctx.stack.ipOptions(pkt, dev, ctx);
        if (why !== undefined) return dropped('bad-header', why);
      }
      // dst.input = ip_error / ip6_pkt_discard: the stack may answer.
      ctx.stack?.routeError(af.pf, pkt, dev, rt.errno, ctx);
    }
    return rt.fate;
  }
  ctx.dst = rt.kind === 'local' ? inputDst(true, rt.cast, 'lo') : inputDst(false, 'unicast', rt.dev);
  // ip_rcv_finish_core(): the IPv4 options once the route is known
  if (af.pf === NFPROTO_IPV4 && ctx.stack && (pkt.data[pkt.meta[M_NHOFF]!]! & 0x0f) > 5) {
    const why = ctx.stack.ipOptions(pkt, dev, ctx);
    if (why !== undefined) return dropped('bad-header', why);
  }
  if (rt.kind === 'local') return localDeliver(af, pkt, dev, rt.cast, ctx);
  return forward(af, pkt, dev, rt, ctx);
}

/** The VLAN id of the frame's outer 802.1Q/802.1ad tag (skb_vlan_untag() on receive); 0 without one. */
function wireVid(pkt: Packet): number {
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_MAC_HEADER) === 0) return 0;
  const d = pkt.data;
  const at = m[M_MACOFF]! + 12;
  if (at + 4 > pkt.len) return 0;
  const type = (d[at]! << 8) | d[at + 1]!;
  return type === ETH_P_8021Q || type === ETH_P_8021AD ? ((d[at + 2]! << 8) | d[at + 3]!) & 0xfff : 0;
}

/** Whether a VLAN device sits on `dev` (a link of kind vlan whose lower device it is). */
function hasVlanUpper(node: Node, dev: string): boolean {
  for (const l of node.links.values()) if (l.kind === 'vlan' && l.peer === dev) return true;
  return false;
}
