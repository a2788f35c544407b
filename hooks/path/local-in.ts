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
import type { Packet } from '../../vm/packet.js';
import type { Cast, InetFamily, PathCtx } from './ctx.js';
import type { Fate } from './fate.js';

export function localDeliver(af: InetFamily, pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx): Fate {
  const before = af.deliverBefore(pkt);
  if (before) return before;
  const r = af.nf.hook(NF_INET_LOCAL_IN, pkt, dev, undefined, ctx);
  if (r !== 1) return r;
  const after = af.deliverAfter(pkt);
  if (after) return after;
  const l4 = ctx.stack?.transportRcv(af.pf, pkt, dev, cast, ctx);
  if (l4?.note && !ctx.quiet) ctx.steps.push({ kind: 'check', text: l4.note });
  return { kind: 'delivered', addr: af.daddr(pkt), dev: dev.name, cast, socket: l4?.socket, l4: l4?.note ?? '' };
}
