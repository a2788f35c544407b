/**
 * Local delivery, shared by IPv4 and IPv6 (Linux 6.18): ip_local_deliver()
 * (net/ipv4/ip_input.c) and ip6_input() (net/ipv6/ip6_input.c) run
 * NF_HOOK(LOCAL_IN) and hand the packet to its protocol. Where a fragment
 * waits differs: IPv4 reassembles before LOCAL_IN, IPv6 after it (the
 * family's deliverBefore / deliverAfter). Then the transport protocol
 * (tcp_v4_rcv, udp_rcv, icmp_rcv, ...: the node's stack, hooks/answer)
 * takes it: a listening socket, or an answer.
 */
import type { Link } from '../snapshot/node.js';
import { NF_INET_LOCAL_IN } from '../../core/netfilter.js';
import { M_NHOFF } from '../../vm/layout.js';
import { XFRM_POLICY_IN } from '../route/xfrm.js';
import { u32 } from './ipv4.js';
import type { Packet } from '../../vm/packet.js';
import { dropped, type Cast, type InetFamily, type PathCtx } from './ctx.js';
import type { Fate } from './fate.js';

export function localDeliver(af: InetFamily, pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx): Fate {
  const before = af.deliverBefore(pkt, ctx);
  if (before) return before;
  const r = af.nf.hook(NF_INET_LOCAL_IN, pkt, dev, undefined, ctx);
  if (r !== 1) return r;
  const after = af.deliverAfter(pkt, dev, ctx);
  if (after) return after;
  const xfrm = af.xfrm;
  if (xfrm !== undefined) {
    // the protocol's xfrm4_policy_check / xfrm6_policy_check(XFRM_POLICY_IN) (tcp_v4_rcv, udp, icmp_rcv,
    // ip_protocol_deliver_rcu; tcp_v6_rcv, __udp6_lib_rcv, icmpv6_rcv, ip6_protocol_deliver_rcu) before it
    // answers or queues. IPv4: flowi_oif the local route's device, IPSKB_NOPOLICY from the input device;
    // IPv6: the local route's device is lo (ip6_rt_get_dev_rcu; a multicast route's is the input device),
    // DST_NOPOLICY from the device holding the address
    const v4 = xfrm.family === 4;
    const why = v4 ? xfrm.checkPacket(pkt, XFRM_POLICY_IN, localRouteDev(af, pkt), af.node.sysctl.disablePolicy(dev.name))
      : xfrm.checkPacket(pkt, XFRM_POLICY_IN, cast === 'multicast' ? dev.name : 'lo', localRouteNoPolicy6(af, pkt));
    if (why !== undefined) return dropped('xfrm-policy', `${why} (after INPUT: the protocol's xfrm${xfrm.family}_policy_check; no socket, no answer)`);
  }
  const l4 = ctx.stack?.transportRcv(af.pf, pkt, dev, cast, ctx);
  if (l4?.note && !ctx.quiet) ctx.steps.push({ kind: 'check', text: l4.note });
  return af.delivered(pkt, dev.name, cast, l4?.socket, l4?.note ?? '', ctx);
}

/**
 * DST_NOPOLICY of an IPv6 packet's local input route (addrconf_f6i_alloc:
 * net.ipv6.conf.all.disable_policy or that of the device holding the
 * address; never an anycast route's, nor a multicast route's).
 */
function localRouteNoPolicy6(af: InetFamily, pkt: Packet): boolean {
  const d = pkt.data;
  const o = pkt.meta[M_NHOFF]! + 24;
  const sys = af.node.sysctl;
  for (const a of af.node.addresses) {
    const w = a.local.w;
    if (a.family === 6 && w[0] === u32(d, o) && w[1] === u32(d, o + 4) && w[2] === u32(d, o + 8) && w[3] === u32(d, o + 12)) return sys.disablePolicy(a.dev, 6);
  }
  return false;
}

/** skb_dst(skb)->dev of a local input route: the device holding the destination address (lo for none). */
function localRouteDev(af: InetFamily, pkt: Packet): string {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const daddr = u32(d, nh + 16);
  for (const a of af.node.addresses) if (a.family === 4 && a.local.w[0] === daddr) return a.dev;
  return 'lo';
}
