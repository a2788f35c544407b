/**
 * Neighbour discovery's answer: a neighbour solicitation the node receives
 * (past INPUT) for one of its addresses is answered by a neighbour
 * advertisement, which leaves through OUTPUT and POSTROUTING.
 *
 * Mirrors Linux 6.18, net/ipv6/ndisc.c:
 *   ndisc_rcv()      hop limit 255 and code 0, or dropped; a solicitation that came in
 *                    fragments is dropped under suppress_frag_ndisc (the default)
 *   ndisc_recv_ns()  at least the 24 bytes of struct nd_msg; a unicast target; a DAD probe
 *                    (unspecified source) only to a solicited-node group and without a source
 *                    link-layer address option; the options walked (ndisc_parse_options: a
 *                    zero or truncated length drops it, the first of a kind counts); a source
 *                    link-layer address option of the device's size (8 bytes on Ethernet); the
 *                    target one of the receiving device's addresses (ipv6_get_ifaddr, strict: a
 *                    tentative one is not answered) or its subnet-router anycast address when
 *                    it forwards (ipv6_chk_acast_addr); the R flag from the device's forwarding;
 *                    a DAD probe answered to ff02::1 (not solicited); otherwise the answer goes to
 *                    the source, solicited, with the override flag when the solicitation was
 *                    multicast for an address of the node, once the source has a neighbour entry:
 *                    a unicast solicitation or one with the option creates it, a multicast one
 *                    without it needs one already (the snapshot's ip-neigh.json)
 *   ndisc_send_na()  the target as source when it is the device's address (else the source
 *                    ipv6_dev_get_saddr picks), the target link-layer address option when the
 *                    solicitation was multicast or force_tllao is set, on a device with a
 *                    link-layer address
 *   ndisc_send_skb() hop limit 255, traffic class and flow label 0, the route bound to the
 *                    receiving device (icmp6_dst_alloc), NF_HOOK(LOCAL_OUT)
 *
 * Not modelled: the neighbour cache the solicitation updates (nfvm sends no
 * solicitations of its own), proxy NDP (its proxy entries are in no
 * snapshot: proxy_ndp is noted), the random delay of an answer for an
 * anycast target (proxy_delay: the answer is sent at once), DAD failure.
 */
import { F_FRAGMENTED, M_FLAGS, M_LEN, M_NHOFF, M_PKTTYPE, M_THOFF, PACKET_HOST } from '../../vm/layout.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { Link } from '../snapshot/node.js';
import { addrEqual, formatIPv6, maskAddr, parseIPv6 } from '../route/addr.js';
import type { PathCtx } from '../path/ctx.js';
import { words } from '../path/ipv6.js';
import type { AnswerEnv } from './env.js';
import { bytes6 } from './icmp6.js';
import { origCt } from './icmp.js';
import { IPPROTO_ICMPV6, putIpv6, putTransportChecksum } from './wire.js';

export const NDISC_NEIGHBOUR_SOLICITATION = 135;
const NDISC_NEIGHBOUR_ADVERTISEMENT = 136;
const ND_OPT_SOURCE_LL_ADDR = 1;
const ND_OPT_TARGET_LL_ADDR = 2;
/** sizeof(struct nd_msg): the ICMPv6 header and the target. */
const ND_MSG_LEN = 24;
const ALL_NODES = Uint32Array.of(0xff020000, 0, 0, 1);

/** ipv6_addr_is_solict_mult(): ff02::1:ff00:0/104. */
function isSolicitedNodeMulticast(a: Uint32Array): boolean {
  return a[0] === 0xff020000 && a[1] === 0 && a[2] === 1 && a[3]! >>> 24 === 0xff;
}

/** ndisc_rcv() of a neighbour solicitation that passed INPUT on `dev` (its checksum checked by icmpv6_rcv). */
export function ndiscRecvNs(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx, answers: boolean): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = nh + m[M_LEN]!;
  const drop = (why: string) => env.note(ctx, `ndisc_recv_ns: no advertisement: ${why}`);
  // ndisc_suppress_frag_ndisc(): a reassembled solicitation, or one in an atomic fragment
  if (m[M_FLAGS]! & F_FRAGMENTED && env.node.sysctl.devConf(6, dev.name, 'suppress_frag_ndisc') > 0) return drop('it came in fragments (suppress_frag_ndisc)');
  if (d[nh + 7] !== 255) return drop(`hop limit ${d[nh + 7]} (not 255)`);
  if (d[th + 1] !== 0) return drop(`ICMPv6 code ${d[th + 1]} (not 0)`);
  if (end - th < ND_MSG_LEN) return drop(`${end - th} bytes, shorter than a solicitation`);
  const saddr = words(d, nh + 8);
  const daddr = words(d, nh + 24);
  const target = words(d, th + 8);
  if (target[0]! >>> 24 === 0xff) return drop('a multicast target');
  const dad = (saddr[0]! | saddr[1]! | saddr[2]! | saddr[3]!) === 0;
  if (dad && !isSolicitedNodeMulticast(daddr)) return drop('a DAD probe not sent to a solicited-node group');
  // ndisc_parse_options(): each option's length in 8-byte units, not zero, within the message
  let sllao = -1;
  for (let at = th + ND_MSG_LEN; at < end; ) {
    if (end - at < 2) return drop('a truncated option');
    const l = d[at + 1]! << 3;
    if (l === 0 || end - at < l) return drop(l === 0 ? 'an option of length 0' : 'a truncated option');
    if (d[at] === ND_OPT_SOURCE_LL_ADDR && sllao < 0) sllao = at;
    at += l;
  }
  const addrLen = macBytes(dev).length;
  const hasLl = addrLen > 0;
  let lladdr = false;
  if (sllao >= 0) {
    // ndisc_opt_addr_data(): the option's size must be ndisc_opt_addr_space(dev) (8 bytes for a 6-byte address)
    if (d[sllao + 1]! << 3 !== optSpace(addrLen)) return drop('a source link-layer address option of the wrong length');
    if (dad) return drop('a DAD probe with a source link-layer address option');
    lladdr = true;
  }
  const inc = daddr[0]! >>> 24 === 0xff;
  const own = env.node.addresses.find((a) => a.family === 6 && a.dev === dev.name && addrEqual(a.local.w, target));
  const forwarding = env.node.sysctl.devConf(6, dev.name, 'forwarding') > 0;
  if (own) {
    if (own.tentative) return drop(`the target ${formatIPv6(target)} is tentative (DAD not done)`);
  } else {
    // ipv6_chk_acast_addr(): a forwarding device's subnet-router anycast addresses
    const anycast = forwarding && env.node.addresses.some((a) => {
      if (a.family !== 6 || a.dev !== dev.name || a.prefixlen >= 127) return false;
      const p = maskAddr(a.local, a.prefixlen);
      return (p.w[0]! | p.w[1]! | p.w[2]! | p.w[3]!) !== 0 && addrEqual(p.w, target);
    });
    if (!anycast) {
      const proxy = forwarding && (env.node.sysctl.allConf(6, 'proxy_ndp') > 0 || env.node.sysctl.devConf(6, dev.name, 'proxy_ndp') > 0);
      return drop(`${formatIPv6(target)} is not an address of ${dev.name}${proxy ? ' (proxy_ndp is on: its proxy entries are in no snapshot)' : ''}`);
    }
    if (m[M_PKTTYPE] !== PACKET_HOST && inc) env.note(ctx, 'ndisc_recv_ns: an anycast target: the kernel answers after a random delay up to proxy_delay; nfvm answers at once');
  }
  if (!answers) return;
  if (dad) return ndiscSendNa(env, pkt, dev, ALL_NODES, target, forwarding, false, own !== undefined, true, ctx);
  // __neigh_lookup(..., creat = !inc || lladdr || !dev->addr_len)
  if (inc && !lladdr && hasLl) {
    const known = env.node.bridge.neigh.some((e) => e.dev === dev.name && addrEqual(parseIPv6(e.dst) ?? [], saddr));
    if (!known) return drop(`a multicast solicitation without a source link-layer address from ${formatIPv6(saddr)}, which has no neighbour entry`);
  }
  ndiscSendNa(env, pkt, dev, saddr, target, forwarding, true, own !== undefined && inc, inc, ctx);
}

/** ndisc_send_na() and ndisc_send_skb(). */
function ndiscSendNa(env: AnswerEnv, ns: Packet, dev: Link, daddr: Uint32Array, target: Uint32Array, router: boolean, solicited: boolean, override: boolean, incOpt: boolean, ctx: PathCtx): void {
  const own = env.node.addresses.some((a) => a.family === 6 && a.dev === dev.name && addrEqual(a.local.w, target));
  let src: Uint32Array | undefined = target;
  if (own) incOpt ||= env.node.sysctl.devConf(6, dev.name, 'force_tllao') > 0;
  else {
    src = env.route6(daddr, undefined, 0, IPPROTO_ICMPV6, dev.name)?.saddr;
    if (!src) return env.note(ctx, `ndisc_send_na: no advertisement: no source address for ${formatIPv6(daddr)}`);
  }
  const mac = macBytes(dev);
  if (mac.length === 0) incOpt = false;
  const icmpLen = ND_MSG_LEN + (incOpt ? optSpace(mac.length) : 0);
  const b = new Uint8Array(40 + icmpLen);
  putIpv6(b, { tclass: 0, flowlabel: 0, nexthdr: IPPROTO_ICMPV6, hoplimit: 255, saddr: bytes6(src), daddr: bytes6(daddr) }, icmpLen);
  b[40] = NDISC_NEIGHBOUR_ADVERTISEMENT;
  b[44] = (router ? 0x80 : 0) | (solicited ? 0x40 : 0) | (override ? 0x20 : 0);
  b.set(bytes6(target), 48);
  if (incOpt) {
    b[64] = ND_OPT_TARGET_LL_ADDR;
    b[65] = optSpace(mac.length) >> 3;
    b.set(mac, 66);
  }
  putTransportChecksum(b, true, 40, IPPROTO_ICMPV6, 2);
  const flags = `${router ? 'R' : ''}${solicited ? 'S' : ''}${override ? 'O' : ''}`;
  env.send(ctx, {
    kind: 'icmp6-neighbour-advertisement', pf: NFPROTO_IPV6, packet: b, mark: 0, oif: dev.name, attach: false, route: 'flow', kernelFields: [], ...origCt(ns, ctx),
    why: `ndisc_send_na: neighbour advertisement for ${formatIPv6(target)} to ${formatIPv6(daddr)}${flags ? ` (flags ${flags})` : ''}${incOpt ? ' with its link-layer address' : ''}`,
  });
}

/** The device's link-layer address as bytes (dev->dev_addr, dev->addr_len of them); none when it has none. */
function macBytes(dev: Link): number[] {
  if (dev.mac === '') return [];
  const b = dev.mac.split(':').map((x) => parseInt(x, 16));
  return b.every((x) => x >= 0 && x <= 255) ? b : [];
}

/** ndisc_opt_addr_space(): an option carrying `addrLen` bytes, padded to 8 (NDISC_OPT_SPACE). */
function optSpace(addrLen: number): number {
  return (addrLen + 2 + 7) & ~7;
}

