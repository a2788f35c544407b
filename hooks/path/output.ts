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
import { M_LEN, M_NHOFF, SK_NONE } from '../../vm/layout.js';
import { NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { LINKTYPE_ETHERNET, decodePacket, setDevice, setSocket, type Packet } from '../../vm/packet.js';
import { arphrd, type Cast, type InetFamily, type PathCtx } from './ctx.js';
import type { Fate } from './fate.js';
import { localDeliver } from './local-in.js';
import { forward } from './forward.js';
import { inetChecksum } from '../input/spec.js';

/** ip_output() / ip6_output(): 1 when the packet passed POSTROUTING. */
export function postRouting(af: InetFamily, pkt: Packet, inDev: Link | undefined, out: Link, ctx: PathCtx): 1 | Fate {
  const bad = af.outputCheck(out);
  if (bad) return bad;
  return af.nf.hook(NF_INET_POST_ROUTING, pkt, inDev, out, ctx);
}

/**
 * The frames an IPv4 packet larger than the egress MTU goes out as, after
 * POSTROUTING (ip_finish_output → ip_fragment → ip_do_fragment(), the slow
 * path): fragments of (mtu - header) rounded down to 8 bytes of data, the
 * header copied with MF on all but the last and the offset, the ID kept.
 * A packet that fits (or an IPv6 one: IPv6 never fragments a forwarded
 * packet, and its answers fit 1280) goes out whole. IP options are copied
 * into every fragment (not modelled: ip_options_fragment()).
 */
export function ipFragmentWire(ip: Uint8Array, mtu: number): Uint8Array[] {
  if (ip.length <= mtu || ip[0]! >> 4 !== 4) return [ip];
  const hlen = (ip[0]! & 0x0f) * 4;
  const frag = (ip[6]! << 8) | ip[7]!;
  if (frag & 0x4000) return [ip];
  const step = (mtu - hlen) & ~7;
  if (step <= 0) return [ip];
  const out: Uint8Array[] = [];
  const base = frag & 0x1fff;
  for (let off = hlen; off < ip.length; off += step) {
    const len = Math.min(step, ip.length - off);
    const last = off + len >= ip.length;
    const f = new Uint8Array(hlen + len);
    f.set(ip.subarray(0, hlen));
    f.set(ip.subarray(off, off + len), hlen);
    const fo = (base + ((off - hlen) >> 3)) | (last ? frag & 0x2000 : 0x2000);
    f[2] = (hlen + len) >>> 8;
    f[3] = (hlen + len) & 0xff;
    f[6] = fo >>> 8;
    f[7] = fo & 0xff;
    f[10] = 0;
    f[11] = 0;
    const c = inetChecksum(f, 0, hlen);
    f[10] = c >>> 8;
    f[11] = c & 0xff;
    out.push(f);
  }
  return out;
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
  // loopback_xmit(): skb_orphan()
  setSocket(pkt, SK_NONE);
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
