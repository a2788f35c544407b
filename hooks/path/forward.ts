/**
 * Forwarding, shared by IPv4 and IPv6 (Linux 6.18): ip_forward() /
 * ip6_forward() make their checks and decrement the TTL / hop limit (the
 * family's forwardPrepare), NF_HOOK(FORWARD), then ip_forward_finish() /
 * ip6_forward_finish() → dst_output: ip_output() / ip6_output() with
 * POST_ROUTING (output.ts). Neighbour resolution is not modelled: a packet
 * that passed POSTROUTING counts as forwarded.
 */
import type { Link } from '../snapshot/node.js';
import { NF_INET_FORWARD } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import { dropped, type InetFamily, type PathCtx } from './ctx.js';
import type { Fate } from './fate.js';
import { postRouting } from './output.js';

export function forward(af: InetFamily, pkt: Packet, dev: Link, rt: { dev: string; gateway: string | undefined; mtu: number }, ctx: PathCtx): Fate {
  const out = af.forwardPrepare(pkt, dev, rt, ctx);
  if (!('ifindex' in out)) return out;
  const fwd = af.nf.hook(NF_INET_FORWARD, pkt, dev, out, ctx);
  if (fwd !== 1) return fwd;
  // ip_forward_finish → dst_output of an xfrm queue route (forwardPrepare): held, no POSTROUTING
  if (ctx.xfrmHold !== undefined) return dropped('xfrm-policy', ctx.xfrmHold);
  ctx.gateway = rt.gateway;
  // ip_forward_finish(): the IPv4 options the node wrote into get the output route's source and a checksum
  if (ctx.ipOpts !== undefined) ctx.stack?.forwardOptions(pkt, out, ctx);
  const post = postRouting(af, pkt, dev, out, ctx);
  if (post !== 1) return post;
  return af.forwarded(pkt, out.name, rt.gateway, ctx);
}
