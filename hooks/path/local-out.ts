/**
 * A packet sent by a local program, shared by IPv4 and IPv6 (Linux 6.18):
 * the output route (the family's routeOutput), __ip_local_out() /
 * __ip6_local_out() with NF_HOOK(LOCAL_OUT), where mangle OUTPUT re-routes a
 * packet whose routing keys it changed (ipt_mangle_out / ip6t_mangle_out
 * call ctx.reroute: ip_route_me_harder / ip6_route_me_harder; so does
 * nf_nat_ipv4_local_fn for a destination-NATed connection), then
 * dst_output: POST_ROUTING and out of the device, or back in through lo
 * (output.ts).
 */
import { NF_INET_LOCAL_OUT } from '../../core/netfilter.js';
import { arphrd, dropped, EHOSTUNREACH, EINVAL, outputDst, type InetFamily, type OutputRoute, type PathCtx, type XfrmRouting } from './ctx.js';
import type { Link } from '../snapshot/node.js';
import { setDevice, type Packet } from '../../vm/packet.js';
import type { Fate } from './fate.js';
import { loopbackXmit, postRouting } from './output.js';

export function localOut(af: InetFamily, pkt: Packet, oif: string, ctx: PathCtx, how: XfrmRouting = 'flow', anySource = false): Fate {
  setDevice(pkt, 'in', 0);
  const bad = af.localOutCheck(pkt);
  if (bad) return bad;
  const first = af.routeOutput(pkt, oif, how, anySource);
  if ('fate' in first) return first.fate;
  if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: first.text });
  return localOutRouted(af, pkt, first, oif, ctx);
}

/**
 * NF_HOOK(LOCAL_OUT, NULL, skb_dst(skb)->dev, dst_output) of a packet whose
 * output route is made: __ip_local_out()'s hook and what follows it. IPVS's
 * transmitters (ip_vs_send_or_cont, ip_vs_nat_send_or_cont) enter here with
 * the route to the real server they looked up themselves.
 */
export function localOutRouted(af: InetFamily, pkt: Packet, first: Exclude<OutputRoute, { fate: Fate }>, oif: string, ctx: PathCtx): Fate {
  setDevice(pkt, 'in', 0);
  ctx.dst = outputDst(first.local, first.cast, first.dev);
  const out = af.node.links.get(first.dev);
  if (!out) return dropped('device', `route names device ${first.dev}, which the snapshot does not have`);
  let st = ctx.localOut as LocalOutReroute | undefined;
  if (st === undefined) ctx.localOut = st = new LocalOutReroute(ctx);
  st.af = af;
  st.oif = oif;
  st.route = first;
  st.out = out;
  ctx.reroute = st.reroute;
  const lo = af.nf.hook(NF_INET_LOCAL_OUT, pkt, undefined, out, ctx);
  ctx.reroute = undefined;
  if (lo !== 1) return lo;
  const route = st.route;
  // dst_output of an xfrm blackhole or queue route: no POSTROUTING
  if (route.xfrmHold !== undefined) return dropped('xfrm-policy', route.xfrmHold);
  ctx.gateway = route.gateway;
  const post = postRouting(af, pkt, undefined, st.out, ctx);
  if (post !== 1) return post;
  if (route.local) return loopbackXmit(af, pkt, st.out, route.cast, ctx);
  return af.sent(pkt, route.dev, route.gateway, route.cast, ctx);
}

/**
 * A locally generated packet in LOCAL_OUT: its route and egress device,
 * which ctx.reroute (ip_route_me_harder after mangle OUTPUT or a NAT)
 * replaces. One per context, its function made once: no closure per packet.
 */
class LocalOutReroute {
  declare af: InetFamily;
  oif = '';
  declare route: Exclude<OutputRoute, { fate: Fate }>;
  declare out: Link;
  readonly reroute: (p: Packet, why: string) => Link | number;
  constructor(ctx: PathCtx) {
    this.reroute = (p, why) => {
      const r = this.af.routeOutput(p, this.oif, 'me-harder');
      if ('fate' in r) return -EHOSTUNREACH;
      const l = this.af.node.links.get(r.dev);
      if (!l) return -EINVAL;
      this.route = r;
      this.out = l;
      ctx.dst = outputDst(r.local, r.cast, r.dev);
      if (!ctx.quiet) ctx.steps.push({ kind: 'route', text: `re-route after ${why}: ${r.text}` });
      setDevice(p, 'out', l.ifindex, l.name, arphrd(l), l.group);
      return l;
    };
  }
}
