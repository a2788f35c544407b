/**
 * The node's ICMPv6 messages: errors about packets it drops or refuses,
 * and echo replies.
 *
 * Mirrors Linux 6.18:
 *   net/ipv6/icmp.c  icmp6_send(): the source is the packet's destination when that is one of
 *                    the node's addresses; nothing (but packet too big) for a multicast
 *                    destination or a link-layer broadcast/multicast frame; nothing for an
 *                    unspecified or multicast source, or about an ICMPv6 error (is_ineligible);
 *                    the global limit (not for a packet on lo), then the per-destination limit
 *                    (icmpv6_xrlim_allow: net.ipv6.icmp.ratelimit per destination, 100 ms by
 *                    default, the same whatever the route back's prefix length (6.18 no longer
 *                    shortens it for wider prefixes), lo exempt, the types of the ratemask
 *                    bitmap, never packet too big); a source chosen among the input device's addresses when the
 *                    route has no prefsrc; the route back bound to the input device for a
 *                    link-local peer; nothing to the subnet-router anycast address of the
 *                    route back (icmpv6_route_lookup, unless error_anycast_as_unicast); as
 *                    much of the packet as fits in 1280 bytes; traffic class 0, the device's
 *                    hop limit, an automatic flow label (the kernel's hash: not reproduced)
 *                    icmpv6_echo_reply(): echo_ignore_all / echo_ignore_multicast; the request's
 *                    identifier, sequence, code, data and traffic class, the route bound to the
 *                    input device, the source its destination when that was unicast
 *   net/ipv6/route.c ip6_pkt_discard() / ip6_pkt_prohibit(): no route or an unreachable route →
 *                    no route (code 0), prohibit → administratively prohibited (1), blackhole:
 *                    nothing
 * Neighbour advertisements: ndisc.ts. Not modelled: parameter problems,
 * MLD, anycast echo_ignore_anycast.
 */
import { F_L4PROTO, M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_MARK, M_NHOFF, M_PKTTYPE, M_THOFF, PACKET_HOST } from '../../vm/layout.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { Link } from '../snapshot/node.js';
import { NUD_VALID } from '../snapshot/bridge.js';
import { addrEqual, formatIPv6, parseIPv6 } from '../route/addr.js';
import { EACCES, EINVAL } from '../route/types.js';
import type { PathCtx } from '../path/ctx.js';
import { isLinkLocal, words } from '../path/ipv6.js';
import type { AnswerEnv, AnswerRoute6 } from './env.js';
import { origCt } from './icmp.js';
import { HZ, inetPeerXrlimAllow } from './ratelimit.js';
import {
  ICMPV6_ADM_PROHIBITED, ICMPV6_DEST_UNREACH, ICMPV6_ECHO_REPLY, ICMPV6_NOROUTE, ICMPV6_PARAMPROB, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED,
  ICMPV6_UNK_OPTION, IPPROTO_ICMPV6, putIpv6, putTransportChecksum,
} from './wire.js';

/** ICMPV6_INFOMSG_MASK */
const INFOMSG = 0x80;
/** IPV6_MIN_MTU - sizeof(ipv6hdr) - sizeof(icmp6hdr) */
const MAX_QUOTE = 1280 - 40 - 8;

const UNREACH6 = ['no-route', 'adm-prohibited', 'not-neighbour', 'addr-unreachable', 'port-unreachable', 'policy-fail', 'reject-route'];

export function icmp6Kind(type: number, code: number): string {
  if (type === ICMPV6_ECHO_REPLY) return 'icmp6-echo-reply';
  if (type === ICMPV6_DEST_UNREACH) return `icmp6-${UNREACH6[code] ?? `unreachable-code-${code}`}`;
  if (type === ICMPV6_PKT_TOOBIG) return 'icmp6-packet-too-big';
  if (type === ICMPV6_TIME_EXCEED) return code === 0 ? 'icmp6-time-exceeded' : 'icmp6-fragment-reassembly-time-exceeded';
  // ICMPV6_PARAMPROB: ICMPV6_HDR_FIELD, ICMPV6_UNK_NEXTHDR, ICMPV6_UNK_OPTION (the names ip6tables' icmp6 match prints)
  if (type === 4 && code <= 2) return ['icmp6-bad-header', 'icmp6-unknown-header-type', 'icmp6-unknown-option'][code]!;
  return `icmp6-type-${type}-code-${code}`;
}

/** icmpv6_mask_allow(): true when the type is never limited. */
function maskAllow(env: AnswerEnv, type: number): boolean {
  if (type === ICMPV6_PKT_TOOBIG) return true;
  return !env.icmp6Ratemask.has(type);
}

/** icmpv6_xrlim_allow() over the route back. */
function xrlimAllow(env: AnswerEnv, rt: AnswerRoute6, daddr: Uint32Array, apply: boolean): boolean {
  if (!apply) return true;
  let rc = true;
  if (!rt.dev.loopback) rc = inetPeerXrlimAllow(env.peers6.get(formatIPv6(daddr), env.now), env.icmp6Ratelimit, env.now);
  if (rc) env.global.consume(env.rng);
  return rc;
}

/** The transport of an IPv6 packet past its extension headers (ipv6_skip_exthdr): its protocol and offset, -1 when not reached. */
function transport(pkt: Packet): { proto: number; th: number } {
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_L4PROTO) === 0) return { proto: -1, th: -1 };
  return { proto: m[M_L4PROTO]!, th: m[M_THOFF]! };
}

/**
 * icmp6_send(skb, type, code, info): `pkt` as it stands, `dev` skb->dev,
 * `inDev` the device it came in on (IP6CB(skb)->iif). icmpv6_getfrag()
 * gives an error skb's conntrack (nf_ct_attach); `ctReset`: skb has let go
 * of it first (nf_reset_ct: __udp6_lib_rcv for a port with no socket), so
 * the error is tracked as any packet.
 */
export function icmp6Send(env: AnswerEnv, pkt: Packet, type: number, code: number, info: number, dev: Link | undefined, inDev: Link | undefined, ctx: PathCtx, ctReset = false): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const len = m[M_LEN]!;
  const kind = icmp6Kind(type, code);
  const skip = (why: string) => env.note(ctx, `icmp6_send: no ${kind}: ${why}`);
  if (len < 40 || !dev) return;
  const osaddr = words(d, nh + 8);
  const odaddr = words(d, nh + 24);
  let saddr: Uint32Array | undefined = env.isLocal6(odaddr) ? odaddr : undefined;
  if (odaddr[0]! >>> 24 === 0xff || m[M_PKTTYPE] !== PACKET_HOST) {
    // opt_unrec(): an unknown option whose action asks for the error even to a multicast destination
    const unrec = type === ICMPV6_PARAMPROB && code === ICMPV6_UNK_OPTION && nh + info < nh + len && (d[nh + info]! & 0xc0) === 0x80;
    if (type !== ICMPV6_PKT_TOOBIG && !unrec) return skip('a multicast destination or link-layer broadcast/multicast frame');
    saddr = undefined;
  }
  if ((osaddr[0]! | osaddr[1]! | osaddr[2]! | osaddr[3]!) === 0 || osaddr[0]! >>> 24 === 0xff) return skip('an unspecified or multicast source');
  // __ipv6_addr_needs_scope_id(): a link-local source is answered through the device.
  const linkLocal = osaddr[0]! >>> 22 === 0x3fa;
  const oif = linkLocal ? dev.name : '';
  // is_ineligible(): never about an ICMPv6 error.
  const t = transport(pkt);
  // A fragment other than the first stops ipv6_skip_exthdr at its fragment header: eligible.
  if (t.proto === IPPROTO_ICMPV6 && m[M_FRAGOFF] === 0) {
    if (t.th >= nh + len || !(d[t.th]! & INFOMSG)) return skip('no ICMPv6 error about an ICMPv6 error');
  }
  let apply = false;
  if (!dev.loopback && !maskAllow(env, type)) {
    if (!env.global.allow(env.now, env.msgsPerSec, env.msgsBurst)) return ctx.quiet ? undefined : skip('over icmp_msgs_per_sec (icmp_global_allow)');
    apply = true;
  }
  if (ctx.icmpLocked === NFPROTO_IPV6) return skip('icmpv6_xmit_lock: the ICMPv6 socket is sending the packet it is about (spin_trylock fails)');
  const mark = env.fwmarkReflect6 ? m[M_MARK]! : 0;
  const out = env.route6(osaddr, saddr, mark, IPPROTO_ICMPV6, oif, inDev);
  if (!out) return skip(`no route back to ${formatIPv6(osaddr)}`);
  if (!xrlimAllow(env, out, osaddr, apply)) return ctx.quiet ? undefined : skip(`rate limited (icmp ratelimit to ${formatIPv6(osaddr)})`);
  // icmpv6_route_lookup(): no error to an anycast destination, unless error_anycast_as_unicast
  if (out.subnetAnycast && !env.icmp6ErrorAnycastAsUnicast) return skip(`${formatIPv6(osaddr)} is the subnet-router anycast address of its route (/${out.plen})`);
  if (!out.saddr) return skip('no source address');
  const dataLen = Math.min(len, MAX_QUOTE);
  const b = new Uint8Array(48 + dataLen);
  putIpv6(b, { tclass: 0, flowlabel: 0, nexthdr: IPPROTO_ICMPV6, hoplimit: env.hoplimit6(out.dev), saddr: bytes6(out.saddr), daddr: d.slice(nh + 8, nh + 24) }, 8 + dataLen);
  b[40] = type;
  b[41] = code;
  b[44] = (info >>> 24) & 0xff;
  b[45] = (info >>> 16) & 0xff;
  b[46] = (info >>> 8) & 0xff;
  b[47] = info & 0xff;
  b.set(d.subarray(nh, nh + dataLen), 48);
  putTransportChecksum(b, true, 40, IPPROTO_ICMPV6, 2);
  env.send(ctx, {
    kind, pf: NFPROTO_IPV6, packet: b, mark, oif, attach: !ctReset, route: 'icmp', anySource: saddr === undefined && (out.prefsrc || !inDev), icmpSocket: true, kernelFields: ['ip6.flowlabel'], ...origCt(pkt, ctx),
    why: `icmp6_send: ${kind} to ${formatIPv6(osaddr)} (quoting ${dataLen} of ${len} bytes)`,
  });
}

/** icmpv6_echo_reply() for an echo request delivered on `dev` (checksum checked by the caller). */
export function icmpv6EchoReply(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = nh + m[M_LEN]!;
  const odaddr = words(d, nh + 24);
  const osaddr = words(d, nh + 8);
  const multicast = odaddr[0]! >>> 24 === 0xff;
  if (multicast && env.echo6IgnoreMulticast) return env.note(ctx, 'icmpv6_echo_reply: no reply: echo_ignore_multicast = 1');
  const saddr = !multicast && ctx.dst?.local ? odaddr : undefined;
  const mark = env.fwmarkReflect6 ? m[M_MARK]! : 0;
  const out = env.route6(osaddr, saddr, mark, IPPROTO_ICMPV6, dev.name);
  if (!out || !out.saddr) return env.note(ctx, `icmpv6_echo_reply: no reply: no route back to ${formatIPv6(osaddr)}`);
  let apply = false;
  if (!dev.loopback && !maskAllow(env, ICMPV6_ECHO_REPLY)) {
    if (!env.global.allow(env.now, env.msgsPerSec, env.msgsBurst)) return ctx.quiet ? undefined : env.note(ctx, 'icmpv6_echo_reply: no reply: over icmp_msgs_per_sec');
    apply = true;
  }
  if (!xrlimAllow(env, out, osaddr, apply)) return ctx.quiet ? undefined : env.note(ctx, 'icmpv6_echo_reply: no reply: rate limited');
  const icmpLen = end - th;
  const tclass = ((d[nh]! & 0x0f) << 4) | (d[nh + 1]! >> 4);
  const b = new Uint8Array(40 + icmpLen);
  putIpv6(b, { tclass, flowlabel: 0, nexthdr: IPPROTO_ICMPV6, hoplimit: env.hoplimit6(out.dev), saddr: bytes6(out.saddr), daddr: d.slice(nh + 8, nh + 24) }, icmpLen);
  b.set(d.subarray(th, end), 40);
  b[40] = ICMPV6_ECHO_REPLY;
  putTransportChecksum(b, true, 40, IPPROTO_ICMPV6, 2);
  env.send(ctx, {
    kind: 'icmp6-echo-reply', pf: NFPROTO_IPV6, packet: b, mark, oif: dev.name, attach: false, route: 'me-harder', icmpSocket: true, kernelFields: ['ip6.flowlabel'], ...origCt(pkt, ctx),
    why: `icmpv6_echo_reply: echo reply to ${formatIPv6(osaddr)} (id ${(d[th + 4]! << 8) | d[th + 5]!}, seq ${(d[th + 6]! << 8) | d[th + 7]!})`,
  });
}

/** ip6_pkt_discard() / ip6_pkt_prohibit() of a received packet (errno EACCES: prohibit, EINVAL: blackhole). */
export function ip6PktDrop(env: AnswerEnv, pkt: Packet, dev: Link, errno: number, ctx: PathCtx): void {
  if (errno === EINVAL) return; // blackhole: dst_discard
  const code = errno === EACCES ? ICMPV6_ADM_PROHIBITED : ICMPV6_NOROUTE;
  ctx.dst = { input: true, local: false, cast: 'unicast', dev: dev.name };
  icmp6Send(env, pkt, ICMPV6_DEST_UNREACH, code, 0, dev, dev, ctx);
}

/** NDISC_REDIRECT, ND_OPT_TARGET_LL_ADDR, ND_OPT_REDIRECT_HDR, IPV6_MIN_MTU. */
const NDISC_REDIRECT = 137;
const ND_OPT_TARGET_LL_ADDR = 2;
const ND_OPT_REDIRECT_HDR = 4;
const IPV6_MIN_MTU = 1280;

/**
 * ip6_forward() for a packet going back out of the device it came in on
 * (before the hop limit is decremented): the limit on its destination's peer
 * (inet_peer_xrlim_allow, 1 s), then ndisc_send_redirect(): the device's
 * link-local address as source, a target that is the destination itself or
 * a link-local gateway, a source reached without a gateway, the limit on the
 * source's peer; the target's link-layer address when the neighbour table
 * (ip-neigh.json) has it valid; the packet quoted up to the minimum MTU.
 * Sent with hop limit 255 through OUTPUT and POSTROUTING out of the device.
 */
export function ndiscSendRedirect(env: AnswerEnv, pkt: Packet, target: Uint32Array, dev: Link, ctx: PathCtx): void {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const len = pkt.meta[M_LEN]!;
  const osaddr = words(d, nh + 8);
  const odaddr = words(d, nh + 24);
  const skip = (why: string) => env.note(ctx, `ndisc_send_redirect: no redirect: ${why}`);
  if (!inetPeerXrlimAllow(env.peers6.get(formatIPv6(odaddr), env.now), HZ, env.now)) return skip(`rate limited on the destination ${formatIPv6(odaddr)} (ip6_forward)`);
  const ll = env.lladdr6(dev);
  if (!ll) return skip(`no link-local address on ${dev.name}`);
  if (!addrEqual(target, odaddr) && !isLinkLocal(target)) return skip('the target is not link-local unicast');
  const out = env.route6(osaddr, ll, 0, IPPROTO_ICMPV6, dev.name);
  if (!out) return skip(`no route back to ${formatIPv6(osaddr)}`);
  if (out.gateway) return skip(`${formatIPv6(osaddr)} is not a neighbour`);
  if (!inetPeerXrlimAllow(env.peers6.get(formatIPv6(osaddr), env.now), HZ, env.now)) return skip(`rate limited on the source ${formatIPv6(osaddr)}`);
  const t = formatIPv6(target);
  const n = env.node.bridge.neigh.find((e) => e.dev === dev.name && e.state.some((s) => NUD_VALID.has(s)) && addrEqual(parseIPv6(e.dst) ?? [], target));
  // dev->addr_len: a device with a link-layer address
  const ha = n && dev.mac !== '' ? n.mac : undefined;
  let optlen = ha ? 8 : 0;
  const rdLen = Math.min(IPV6_MIN_MTU - 40 - 40 - optlen, len + 8) & ~7;
  optlen += rdLen;
  const b = new Uint8Array(40 + 40 + optlen);
  putIpv6(b, { tclass: 0, flowlabel: 0, nexthdr: IPPROTO_ICMPV6, hoplimit: 255, saddr: bytes6(ll), daddr: d.slice(nh + 8, nh + 24) }, 40 + optlen);
  b[40] = NDISC_REDIRECT;
  b.set(bytes6(target), 48);
  b.set(d.subarray(nh + 24, nh + 40), 64);
  let at = 80;
  if (ha) {
    b[at] = ND_OPT_TARGET_LL_ADDR;
    b[at + 1] = 1;
    b.set(ha.subarray(0, 6), at + 2);
    at += 8;
  }
  if (rdLen) {
    b[at] = ND_OPT_REDIRECT_HDR;
    b[at + 1] = rdLen >> 3;
    b.set(d.subarray(nh, nh + Math.min(rdLen - 8, len)), at + 8);
  }
  putTransportChecksum(b, true, 40, IPPROTO_ICMPV6, 2);
  env.send(ctx, {
    kind: 'icmp6-redirect', pf: NFPROTO_IPV6, packet: b, mark: 0, oif: dev.name, attach: false, route: 'flow', kernelFields: [], ...origCt(pkt, ctx),
    why: `ndisc_send_redirect: to ${formatIPv6(osaddr)}, target ${t}${ha ? ' with its link-layer address' : ''} (quoting ${Math.min(rdLen - 8, len)} of ${len} bytes)`,
  });
}

/** Four address words as the 16 bytes of an IPv6 header field. */
export function bytes6(w: ArrayLike<number>): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    b[4 * i] = w[i]! >>> 24;
    b[4 * i + 1] = (w[i]! >>> 16) & 0xff;
    b[4 * i + 2] = (w[i]! >>> 8) & 0xff;
    b[4 * i + 3] = w[i]! & 0xff;
  }
  return b;
}
