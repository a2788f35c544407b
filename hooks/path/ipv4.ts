/**
 * What is IPv4's own on the packet path (the shared stages are receive.ts,
 * local-in.ts, forward.ts, local-out.ts, output.ts; the routing is
 * ipv4-route.ts).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/ip_input.c   ip_rcv_core(): header length, version, ihl, checksum, tot_len against
 *                         the data (decodePacket() has already trimmed M_LEN to tot_len);
 *                         ip_local_deliver(): fragments are reassembled before LOCAL_IN
 *   net/ipv4/ip_forward.c ip_forward(): PACKET_HOST only, TTL <= 1 → time exceeded before FORWARD,
 *                         DF larger than the MTU → fragmentation needed, TTL decremented (with the
 *                         incremental checksum update of ip_decrease_ttl) before FORWARD
 *
 *                       the IPsec policy checks of a node without states (hooks/route/xfrm.ts):
 *                       xfrm4_policy_check(FWD) before the TTL check, xfrm4_route_forward after it
 *
 * The options (ip_rcv_options) are checked after the input route, in
 * receive.ts through the stack (answer/ip-options.ts).
 *
 * Fragments are reassembled by ip-frag.ts (ip_local_deliver, nf_defrag).
 *
 * Not modelled (documented gaps): early demux, IPsec transforms.
 */
import { inetChecksum } from '../input/spec.js';
import type { Link, Node } from '../snapshot/node.js';
import { F_IGNORE_DF, F_MAC_HEADER, M_FLAGS, M_FRAG_MAX_SIZE, M_LEN, M_NHOFF, M_PKTTYPE, M_SK, PACKET_HOST, SK_ASSIGNED } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { NFPROTO_IPV4 } from '../../core/netfilter.js';
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_TIME_EXCEEDED } from '../answer/wire.js';
import { dropped, PKT_TYPES, type PathCtx } from './ctx.js';
import { XFRM_POLICY_FWD, XFRM_POLICY_OUT, type XfrmCheck } from '../route/xfrm.js';
import type { Fate } from './fate.js';

export function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

/** ip_send_check(): the IPv4 header checksum at `nh` computed again over the header. */
export function ipSendCheck(d: Uint8Array, nh: number): void {
  d[nh + 10] = d[nh + 11] = 0;
  const c = inetChecksum(d, nh, nh + (d[nh]! & 0x0f) * 4);
  d[nh + 10] = c >>> 8;
  d[nh + 11] = c & 0xff;
}

/** MF set or a non-zero offset (ip_is_fragment). */
export function isFragment(pkt: Packet): boolean {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  return (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x3fff) !== 0;
}

/**
 * ip_rcv_core()'s header checks (length, version, ihl, checksum, tot_len
 * against the data); undefined when the packet goes on. Its
 * PACKET_OTHERHOST drop comes first, in receive.ts.
 */
export function ipRcvCore(pkt: Packet): Fate | undefined {
  const m = pkt.meta;
  const d = pkt.data;
  if (m[M_NHOFF]! === 0 && m[M_FLAGS]! & F_MAC_HEADER) return dropped('bad-header', 'frame shorter than an Ethernet header');
  const nh = m[M_NHOFF]!;
  const avail = pkt.len - nh;
  if (avail < 20) return dropped('bad-header', `truncated IPv4 header (${Math.max(0, avail)} bytes)`);
  const ihl = d[nh]! & 0x0f;
  if (d[nh]! >> 4 !== 4) return dropped('not-ip', `IP version ${d[nh]! >> 4} in an IPv4 frame`);
  if (ihl < 5) return dropped('bad-header', `IPv4 header length ${ihl * 4} < 20`);
  if (avail < ihl * 4) return dropped('bad-header', `truncated IPv4 header (${avail} of ${ihl * 4} bytes)`);
  // ip_fast_csum() over the header, checksum included, is 0 when it is right
  if (inetChecksum(d, nh, nh + ihl * 4) !== 0) return dropped('bad-header', 'bad IPv4 header checksum');
  const tot = (d[nh + 2]! << 8) | d[nh + 3]!;
  if (avail < tot) return dropped('bad-header', `truncated packet (${avail} bytes, tot_len ${tot})`);
  if (tot < ihl * 4) return dropped('bad-header', `tot_len ${tot} shorter than the header`);
  return undefined;
}

/** ip_local_deliver(): a fragment waits for reassembly before LOCAL_IN (ip_defrag). */
export function ipLocalDeliverDefrag(pkt: Packet): Fate | undefined {
  return isFragment(pkt) ? dropped('reassembly', 'a fragment for this host, held by ip_defrag for reassembly before INPUT') : undefined;
}

/**
 * xfrm_route_forward() (xfrm4_route_forward / xfrm6_route_forward): with an
 * out policy or the default out policy blocking, xfrm_lookup(XFRM_LOOKUP_QUEUE)
 * on the forward route: a block drops the packet; a required template
 * without state drops it with net.core.xfrm_larval_drop, else the packet is
 * held in the policy's queue after FORWARD (ctx.xfrmHold). Undefined: it
 * goes on.
 */
export function xfrmRouteForward(node: Node, xfrm: XfrmCheck, pkt: Packet, dev: string, ctx: PathCtx, fn: string): Fate | undefined {
  if (xfrm.db.count[XFRM_POLICY_OUT] === 0 && !xfrm.db.defaultBlock[XFRM_POLICY_OUT]) return undefined;
  const out = xfrm.lookupOutPacket(pkt, dev, node.links.get(dev)?.loopback === true);
  const what = out.policy ? `out policy "${out.policy.text}"` : 'the default out policy';
  if (out.verdict === 'eperm') return dropped('xfrm-policy', `${what} blocks it (${fn}, FORWARD not reached)`);
  if (out.verdict === 'nostate') {
    if (node.sysctl.xfrmLarvalDrop()) return dropped('xfrm-policy', `${what} requires an IPsec state that does not exist (${fn} with xfrm_larval_drop, FORWARD not reached)`);
    ctx.xfrmHold = `${what} requires an IPsec state that does not exist: held in the policy's queue after FORWARD (xfrm_larval_drop = 0), never sent`;
  }
  return undefined;
}

/** opt->srr: the header carries a loose or strict source route option (IPOPT_LSRR, IPOPT_SSRR; ip_options_compile). */
function sourceRouted(d: Uint8Array, nh: number): boolean {
  const end = nh + (d[nh]! & 0x0f) * 4;
  for (let at = nh + 20; at < end; ) {
    const t = d[at]!;
    if (t === 0) break; // IPOPT_END
    if (t === 1) { // IPOPT_NOOP
      at++;
      continue;
    }
    if (t === 0x83 || t === 0x89) return true;
    const len = at + 1 < end ? d[at + 1]! : 0;
    if (len < 2) break;
    at += len;
  }
  return false;
}

/** ip_decrease_ttl(): the IPv4 header at `nh` one TTL less, its checksum adjusted incrementally. */
export function ipDecreaseTtl(d: Uint8Array, nh: number): void {
  d[nh + 8] = d[nh + 8]! - 1;
  let check = ((d[nh + 10]! << 8) | d[nh + 11]!) + 0x0100;
  check = (check + (check >= 0xffff ? 1 : 0)) & 0xffff;
  d[nh + 10] = check >>> 8;
  d[nh + 11] = check & 0xff;
}

/** ip_forward() up to NF_HOOK(FORWARD): the egress device, or the fate. */
export function ipForwardPrepare(node: Node, pkt: Packet, dev: Link, rt: { dev: string; mtu: number; redirect?: number }, ctx: PathCtx, xfrm?: XfrmCheck): Link | Fate {
  const m = pkt.meta;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  if (m[M_PKTTYPE] !== PACKET_HOST) return dropped('not-host', `a link-layer ${PKT_TYPES[m[M_PKTTYPE]!]} frame is not forwarded (ip_forward)`);
  if (m[M_SK] === SK_ASSIGNED) return dropped('has-socket', 'TPROXY gave the packet a local socket: it is not forwarded (ip_forward: skb->sk)');
  if (xfrm !== undefined) {
    // xfrm4_policy_check(NULL, XFRM_POLICY_FWD, skb): before the TTL is looked at; IPSKB_NOPOLICY from the input device
    const why = xfrm.checkPacket(pkt, XFRM_POLICY_FWD, rt.dev, node.sysctl.disablePolicy(dev.name));
    if (why !== undefined) return dropped('xfrm-policy', `${why} (ip_forward: xfrm4_policy_check, FORWARD not reached)`);
  }
  if (d[nh + 8]! <= 1) {
    ctx.stack?.icmpError(NFPROTO_IPV4, pkt, ICMP_TIME_EXCEEDED, 0, 0, dev, ctx);
    return dropped('ttl', `TTL ${d[nh + 8]} exceeded in transit (ICMP time exceeded sent, FORWARD not reached)`);
  }
  if (xfrm !== undefined && !node.sysctl.disableXfrm(rt.dev)) {
    const held = xfrmRouteForward(node, xfrm, pkt, rt.dev, ctx, 'xfrm4_route_forward');
    if (held !== undefined) return held;
  }
  const len = m[M_LEN]!;
  // ip_exceeds_mtu(): DF set, and for a datagram nf_defrag reassembled (ignore_df) its largest fragment too big
  if (len > rt.mtu && (d[nh + 6]! & 0x40) !== 0 && ((m[M_FLAGS]! & F_IGNORE_DF) === 0 || m[M_FRAG_MAX_SIZE]! > rt.mtu)) {
    ctx.stack?.icmpError(NFPROTO_IPV4, pkt, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, rt.mtu, dev, ctx);
    return dropped('mtu', `${len} bytes with DF exceed the MTU ${rt.mtu} of ${rt.dev} (ICMP fragmentation needed sent)`);
  }
  ipDecreaseTtl(d, nh);
  // IPSKB_DOREDIRECT && !opt->srr && !skb_sec_path(skb): an ICMP host redirect, whatever FORWARD does with the packet
  if (rt.redirect !== undefined && rt.redirect !== -1 && !sourceRouted(d, nh)) ctx.stack?.redirect(pkt, dev, rt.redirect, ctx);
  const out = node.links.get(rt.dev);
  if (!out) return dropped('device', `route names device ${rt.dev}, which the snapshot does not have`);
  return out;
}
