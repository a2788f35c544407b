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
import { M_PKTTYPE, PACKET_OTHERHOST } from '../../vm/layout.js';
import { NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { setDevice, type Packet } from '../../vm/packet.js';
import { arphrd, dropped, inputDst, PKT_TYPES, type InetFamily, type PathCtx } from './ctx.js';
import { ethTypeTrans } from './eth.js';
import type { Fate } from './fate.js';
import { localDeliver } from './local-in.js';
import { forward } from './forward.js';

/**
 * A frame received on `dev` (pkt decoded, with its link header if it has
 * one): the whole receive path. `fromBridge`: a bridge passed the frame up
 * to its own device (br_pass_frame_up → netif_receive_skb): pkt_type is
 * the one the bridge port gave it, no eth_type_trans again.
 */
export function receive(af: InetFamily, pkt: Packet, dev: Link, ctx: PathCtx, fromBridge = false): Fate {
  const m = pkt.meta;
  setDevice(pkt, 'in', dev.ifindex, dev.name, arphrd(dev), dev.group);
  setDevice(pkt, 'out', 0);
  if (!fromBridge) ethTypeTrans(pkt, dev);
  if (!dev.up) return dropped('device', `${dev.name} is down`);
  if (m[M_PKTTYPE] === PACKET_OTHERHOST) {
    return dropped('other-host', 'the destination MAC is not the device\'s (PACKET_OTHERHOST, dropped before PREROUTING)');
  }
  const bad = af.rcvCore(pkt, dev);
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
    // dst.input = ip_error / ip6_pkt_discard: the stack may answer.
    if (rt.errno) ctx.stack?.routeError(af.pf, pkt, dev, rt.errno, ctx);
    return rt.fate;
  }
  ctx.dst = rt.kind === 'local' ? inputDst(true, rt.cast, 'lo') : inputDst(false, 'unicast', rt.dev);
  if (rt.kind === 'local') return localDeliver(af, pkt, dev, rt.cast, ctx);
  return forward(af, pkt, dev, rt, ctx);
}
