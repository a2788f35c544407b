/**
 * The TCP resets the node sends: the stack's, for a segment no socket
 * takes, and REJECT --reject-with tcp-reset's.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/tcp_ipv4.c  tcp_v4_send_reset(): never for a RST, never without a socket unless the
 *                        segment's route is RTN_LOCAL; seq = the segment's ack_seq when it has
 *                        ACK, else ack_seq = seq + SYN + FIN + data length with ACK set; window
 *                        0, no options; ip_send_unicast_reply() on the per-CPU TCP control socket
 *                        (IP_PMTUDISC_DO: DF and IP ID 0), TOS the segment's without ECN, TTL
 *                        ip_default_ttl, mark IP4_REPLY_MARK
 *   net/ipv6/tcp_ipv6.c  tcp_v6_send_reset(): the same rules, unicast destinations only, traffic
 *                        class the segment's without ECN, the device's hop limit, the route bound
 *                        to the input device for link-local peers; an automatic flow label (the
 *                        kernel's hash: not reproduced)
 *   net/ipv4/netfilter/nf_reject_ipv4.c  nf_send_reset(): not for a fragment other than the first,
 *                        a non-TCP packet, a RST, a bad checksum, a broadcast or multicast route;
 *                        TOS 0, IP ID 0, DF, TTL the route's; ip_route_me_harder(); nf_ct_attach();
 *                        the checksum left to the device (CHECKSUM_PARTIAL)
 *   net/ipv6/netfilter/nf_reject_ipv6.c  nf_send_reset6(): unicast source and destination only;
 *                        traffic class and flow label 0, the route's hop limit; nf_ct_attach()
 */
import { BRNF_PRESENT, F_L4PROTO, M_BRNF, M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_MARK, M_NHOFF, M_PHYSINNAME, M_PKTTYPE, M_THOFF, PACKET_HOST } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_LOCAL_OUT } from '../../core/netfilter.js';
import { nameAt, type Packet } from '../../vm/packet.js';
import type { ListenSocket } from '../snapshot/ss.js';
import { formatIPv4, formatIPv6 } from '../route/addr.js';
import { hostPort } from '../../core/addr.js';
import type { PathCtx } from '../path/ctx.js';
import { u32 } from '../path/ipv4.js';
import { words } from '../path/ipv6.js';
import { nfChecksum } from '../conntrack/checksum.js';
import type { AnswerEnv } from './env.js';
import { origCt, replyMark4 } from './icmp.js';
import { ipOptionsEcho } from './ip-options.js';
import { IPPROTO_TCP, IP_DF, putIpv4, putIpv6, putTcpRst, putTransportChecksum } from './wire.js';

const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;
const TH_ACK = 0x10;

/** The reset's seq, ack_seq and ACK flag for the segment at `th` carrying `segLen` bytes of TCP. */
function rstNumbers(d: Uint8Array, th: number, segLen: number): { seq: number; ackSeq: number; ack: boolean } {
  const flags = d[th + 13]!;
  if (flags & TH_ACK) return { seq: u32(d, th + 8), ackSeq: 0, ack: false };
  const doff = (d[th + 12]! >> 4) * 4;
  const ackSeq = (u32(d, th + 4) + (flags & TH_SYN ? 1 : 0) + (flags & TH_FIN ? 1 : 0) + segLen - doff) >>> 0;
  return { seq: 0, ackSeq, ack: true };
}

function ports(d: Uint8Array, th: number): { sport: number; dport: number } {
  return { sport: (d[th]! << 8) | d[th + 1]!, dport: (d[th + 2]! << 8) | d[th + 3]! };
}

function describe(n: { seq: number; ackSeq: number; ack: boolean }): string {
  return n.ack ? `seq 0 ack ${n.ackSeq}` : `seq ${n.seq}`;
}

/** tcp_v4_send_reset(sk, skb): `listener` is sk (a listening socket that got an ACK), or undefined. */
export function tcpV4SendReset(env: AnswerEnv, pkt: Packet, listener: ListenSocket | undefined, why: string, ctx: PathCtx): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  if (d[th + 13]! & TH_RST) return;
  const rt = ctx.dst;
  if (!listener && !(rt && rt.local && rt.cast === 'unicast')) return env.note(ctx, `tcp_v4_send_reset: no reset: the segment went to a ${rt?.cast ?? 'non-local'} address`);
  const segLen = nh + m[M_LEN]! - th;
  const n = rstNumbers(d, th, segLen);
  const { sport, dport } = ports(d, th);
  const osaddr = u32(d, nh + 12);
  const odaddr = u32(d, nh + 16);
  const tos = d[nh + 1]! & ~3 & 0xff;
  const mark = replyMark4(env, pkt);
  const out = env.route4(osaddr, odaddr, tos & 0x1e, mark, IPPROTO_TCP, listener?.dev ?? '');
  if (!out) return env.note(ctx, `tcp_v4_send_reset: no reset: no route back to ${formatIPv4(osaddr)}`);
  // ip_send_unicast_reply(): the segment's options echoed (none sent when they cannot be)
  const opts = ipOptionsEcho(env, pkt, ctx);
  if (opts === null) return env.note(ctx, 'tcp_v4_send_reset: no reset: the options cannot be echoed (__ip_options_echo)');
  const hl = 20 + opts.length;
  const b = new Uint8Array(hl + 20);
  putIpv4(b, { tos, id: 0, fragOff: IP_DF, ttl: env.defaultTtl, protocol: IPPROTO_TCP, saddr: odaddr, daddr: osaddr }, 20, opts);
  putTcpRst(b, hl, dport, sport, n.seq, n.ackSeq, n.ack);
  putTransportChecksum(b, false, hl, IPPROTO_TCP, 16);
  env.send(ctx, {
    kind: 'tcp-reset', pf: NFPROTO_IPV4, packet: b, mark, oif: listener?.dev ?? '', attach: false, route: 'flow', kernelFields: [], ...origCt(pkt, ctx),
    why: `tcp_v4_send_reset: RST ${hostPort(formatIPv4(odaddr), dport)} > ${hostPort(formatIPv4(osaddr), sport)} ${describe(n)} (${why})`,
  });
}

/** tcp_v6_send_reset(sk, skb). */
export function tcpV6SendReset(env: AnswerEnv, pkt: Packet, dev: string, listener: ListenSocket | undefined, why: string, ctx: PathCtx): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  if (d[th + 13]! & TH_RST) return;
  const rt = ctx.dst;
  if (!listener && !(rt && rt.local && rt.cast === 'unicast')) return env.note(ctx, 'tcp_v6_send_reset: no reset: not a unicast destination');
  const segLen = nh + m[M_LEN]! - th;
  const n = rstNumbers(d, th, segLen);
  const { sport, dport } = ports(d, th);
  const osaddr = words(d, nh + 8);
  const odaddr = words(d, nh + 24);
  const tclass = (((d[nh]! & 0x0f) << 4) | (d[nh + 1]! >> 4)) & ~3 & 0xff;
  const mark = env.fwmarkReflect6 ? m[M_MARK]! : 0;
  // rt6_need_strict(): a link-local, multicast or loopback peer is reached through the input device.
  const strict = osaddr[0]! >>> 22 === 0x3fa || osaddr[0]! >>> 24 === 0xff || (osaddr[0]! | osaddr[1]! | osaddr[2]!) === 0 && osaddr[3] === 1;
  const oif = listener?.dev || (strict ? dev : '');
  const out = env.route6(osaddr, odaddr, mark, IPPROTO_TCP, oif);
  if (!out) return env.note(ctx, `tcp_v6_send_reset: no reset: no route back to ${formatIPv6(osaddr)}`);
  const b = new Uint8Array(60);
  putIpv6(b, { tclass, flowlabel: 0, nexthdr: IPPROTO_TCP, hoplimit: env.hoplimit6(out.dev), saddr: d.slice(nh + 24, nh + 40), daddr: d.slice(nh + 8, nh + 24) }, 20);
  putTcpRst(b, 40, dport, sport, n.seq, n.ackSeq, n.ack);
  putTransportChecksum(b, true, 40, IPPROTO_TCP, 16);
  env.send(ctx, {
    // ip6_xmit(net->ipv6.tcp_sk, ...) leaves skb->sk NULL: the reset for a closed port carries no socket
    // (IPv4's ip_send_unicast_reply sends from ipv4_tcp_sk, which it carries).
    // tcp_v6_send_response(): CHECKSUM_PARTIAL, the device completes the checksum
    kind: 'tcp-reset', pf: NFPROTO_IPV6, packet: b, mark, oif, attach: false, route: 'flow', kernelFields: ['ip6.flowlabel', 'tcp.check'], ...origCt(pkt, ctx), noSocket: !listener,
    why: `tcp_v6_send_reset: RST ${hostPort(formatIPv6(odaddr), dport)} > ${hostPort(formatIPv6(osaddr), sport)} ${describe(n)} (${why})`,
  });
}

/** The TCP header of a packet for nf_reject (first fragment, TCP, not RST, good checksum), or -1. */
function rejectTcpHeader(pkt: Packet, pf: number, hook: number): number {
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_L4PROTO) === 0 || m[M_FRAGOFF] !== 0 || m[M_L4PROTO] !== IPPROTO_TCP) return -1;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = nh + m[M_LEN]!;
  if (th + 20 > end) return -1;
  if (pkt.data[th + 13]! & TH_RST) return -1;
  // A packet made here is CHECKSUM_PARTIAL at LOCAL_OUT: nothing to verify.
  if (hook !== NF_INET_LOCAL_OUT && nfChecksum(pkt.data, pf, nh, th, end, IPPROTO_TCP) !== 0) return -1;
  return th;
}

/**
 * nf_bridge_get_physindev(): the bridge port a packet that came through
 * br_netfilter entered by. REJECT's reset for such a packet (bridged, or
 * to the node itself through the bridge) is not ip_local_out()'d: it gets
 * an Ethernet header from the original's MACs, swapped, and is
 * dev_queue_xmit()ed on that port, past OUTPUT, POSTROUTING and the bridge.
 */
function bridgeInPort(pkt: Packet): string | undefined {
  return pkt.meta[M_BRNF]! & BRNF_PRESENT ? nameAt(pkt, M_PHYSINNAME) : undefined;
}

/** nf_send_reset() (ipt_REJECT --reject-with tcp-reset). */
export function nfSendReset4(env: AnswerEnv, pkt: Packet, hook: number, ctx: PathCtx): void {
  const th = rejectTcpHeader(pkt, NFPROTO_IPV4, hook);
  if (th < 0) return env.note(ctx, 'nf_send_reset: no reset (not the first fragment of a TCP segment, a RST, or a bad checksum)');
  const rt = ctx.dst;
  if (!rt || rt.cast !== 'unicast') return env.note(ctx, 'nf_send_reset: no reset: a broadcast or multicast route');
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const n = rstNumbers(d, th, nh + m[M_LEN]! - th);
  const { sport, dport } = ports(d, th);
  const osaddr = u32(d, nh + 12);
  const odaddr = u32(d, nh + 16);
  const mark = replyMark4(env, pkt);
  // ip_route_me_harder(): the reset leaves from the original destination, local or not (FLOWI_FLAG_ANYSRC).
  const out = env.route4(osaddr, odaddr, 0, mark, IPPROTO_TCP, '');
  if (!out) return env.note(ctx, `nf_send_reset: no reset: no route back to ${formatIPv4(osaddr)}`);
  if (40 > out.mtu) return;
  const b = new Uint8Array(40);
  putIpv4(b, { tos: 0, id: 0, fragOff: IP_DF, ttl: env.defaultTtl, protocol: IPPROTO_TCP, saddr: odaddr, daddr: osaddr }, 20);
  putTcpRst(b, 20, dport, sport, n.seq, n.ackSeq, n.ack);
  putTransportChecksum(b, false, 20, IPPROTO_TCP, 16);
  env.send(ctx, {
    kind: 'tcp-reset', pf: NFPROTO_IPV4, packet: b, mark, oif: '', attach: true, route: 'me-harder', kernelFields: ['tcp.check'], ...origCt(pkt, ctx), closing: true, noSocket: true, xmit: bridgeInPort(pkt),
    why: `nf_send_reset: RST ${hostPort(formatIPv4(odaddr), dport)} > ${hostPort(formatIPv4(osaddr), sport)} ${describe(n)}`,
  });
}

/** nf_send_reset6() (ip6t_REJECT --reject-with tcp-reset). */
export function nfSendReset6(env: AnswerEnv, pkt: Packet, hook: number, ctx: PathCtx): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const osaddr = words(d, nh + 8);
  const odaddr = words(d, nh + 24);
  const unicast = (w: Uint32Array) => w[0]! >>> 24 !== 0xff && (w[0]! | w[1]! | w[2]! | w[3]!) !== 0;
  if (!unicast(osaddr) || !unicast(odaddr)) return env.note(ctx, 'nf_send_reset6: no reset: an address is not unicast');
  const th = rejectTcpHeader(pkt, NFPROTO_IPV6, hook);
  if (th < 0) return env.note(ctx, 'nf_send_reset6: no reset (not a TCP segment, a RST, or a bad checksum)');
  const n = rstNumbers(d, th, nh + m[M_LEN]! - th);
  const { sport, dport } = ports(d, th);
  const mark = env.fwmarkReflect6 ? m[M_MARK]! : 0;
  const out = env.route6(osaddr, odaddr, mark, IPPROTO_TCP, '');
  if (!out) return env.note(ctx, `nf_send_reset6: no reset: no route back to ${formatIPv6(osaddr)}`);
  const b = new Uint8Array(60);
  putIpv6(b, { tclass: 0, flowlabel: 0, nexthdr: IPPROTO_TCP, hoplimit: env.hoplimit6(out.dev), saddr: d.slice(nh + 24, nh + 40), daddr: d.slice(nh + 8, nh + 24) }, 20);
  putTcpRst(b, 40, dport, sport, n.seq, n.ackSeq, n.ack);
  putTransportChecksum(b, true, 40, IPPROTO_TCP, 16);
  env.send(ctx, {
    kind: 'tcp-reset', pf: NFPROTO_IPV6, packet: b, mark, oif: '', attach: true, route: 'me-harder', kernelFields: [], ...origCt(pkt, ctx), closing: true, noSocket: true, xmit: bridgeInPort(pkt),
    why: `nf_send_reset6: RST ${hostPort(formatIPv6(odaddr), dport)} > ${hostPort(formatIPv6(osaddr), sport)} ${describe(n)}`,
  });
}

/** Whether a TCP segment delivered locally is one tcp_v4_rcv/tcp_v6_rcv handles: PACKET_HOST, a whole header, a good checksum. */
export function tcpRcvOk(pkt: Packet, pf: number): string | undefined {
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = nh + m[M_LEN]!;
  if (m[M_PKTTYPE] !== PACKET_HOST) return 'a link-layer broadcast or multicast frame: discarded';
  if (th + 20 > end) return 'shorter than a TCP header: discarded';
  const doff = (pkt.data[th + 12]! >> 4) * 4;
  if (doff < 20 || th + doff > end) return `bad data offset ${doff}: discarded`;
  if (nfChecksum(pkt.data, pf, nh, th, end, IPPROTO_TCP) !== 0) return 'bad TCP checksum: discarded, no reset';
  return undefined;
}
