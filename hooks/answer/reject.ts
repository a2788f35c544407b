/**
 * What a REJECT rule sends: ipt_REJECT / ip6t_REJECT's reject_tg() asks
 * nf_reject_ipv4 / nf_reject_ipv6 for an ICMP unreachable or a TCP reset
 * (the reset's rules: tcp.ts).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/nf_reject_ipv4.c  nf_send_unreach(): nothing for a fragment other than the
 *                                        first; the transport checksum verified (not for UDP
 *                                        without one, GRE, AH, ESP, SCTP, UDP-Lite, DCCP, nor at
 *                                        LOCAL_OUT where the packet is CHECKSUM_PARTIAL), then
 *                                        icmp_send() with its own rules (icmp.ts: never about an
 *                                        ICMP error, a broadcast, ...; rate limited)
 *   net/ipv6/netfilter/nf_reject_ipv6.c  nf_send_unreach6(): reject6_csum_ok() (not for a
 *                                        fragment other than the first), skb->dev = lo at
 *                                        LOCAL_OUT, then icmpv6_send() (icmp6.ts)
 */
import { F_L4PROTO, M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_NHOFF, M_THOFF } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NF_INET_LOCAL_OUT } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { Link } from '../snapshot/node.js';
import type { PathCtx } from '../path/ctx.js';
import { nfChecksum } from '../conntrack/checksum.js';
import { IPPROTO_GRE, IPPROTO_SCTP, IPPROTO_UDPLITE } from '../conntrack/tuple.js';
import type { AnswerEnv } from './env.js';
import { icmpSend } from './icmp.js';
import { icmp6Send } from './icmp6.js';
import { ICMP_DEST_UNREACH, ICMPV6_DEST_UNREACH, IPPROTO_TCP, IPPROTO_UDP } from './wire.js';

const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_DCCP = 33;

/** nf_reject_verify_csum(): whether the protocol's checksum covers the whole payload and is checked. */
function verifyCsum(d: Uint8Array, th: number, proto: number): boolean {
  if (proto === IPPROTO_UDP) return ((d[th + 6]! << 8) | d[th + 7]!) !== 0;
  return !(proto === IPPROTO_GRE || proto === IPPROTO_AH || proto === IPPROTO_ESP || proto === IPPROTO_SCTP || proto === IPPROTO_UDPLITE || proto === IPPROTO_DCCP);
}

/** Whether the transport checksum lets nf_send_unreach / nf_send_unreach6 answer. */
function csumOk(pkt: Packet, pf: number, hook: number): boolean {
  if (hook === NF_INET_LOCAL_OUT) return true;
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_L4PROTO) === 0) return pf === NFPROTO_IPV4;
  const nh = m[M_NHOFF]!;
  const th = m[M_THOFF]!;
  const end = nh + m[M_LEN]!;
  const proto = m[M_L4PROTO]!;
  if (th >= end && pf === NFPROTO_IPV6) return false;
  if (!verifyCsum(pkt.data, th, proto)) return true;
  if (proto === IPPROTO_UDP && th + 8 > end) return true;
  if (proto === IPPROTO_TCP && th + 20 > end) return false;
  return nfChecksum(pkt.data, pf, nh, th, end, proto) === 0;
}

/** nf_send_unreach(skb, code, hook). */
export function nfSendUnreach4(env: AnswerEnv, pkt: Packet, code: number, hook: number, dev: Link | undefined, ctx: PathCtx): void {
  if (pkt.meta[M_FRAGOFF] !== 0) return env.note(ctx, 'nf_send_unreach: no ICMP for a fragment other than the first');
  if (!csumOk(pkt, NFPROTO_IPV4, hook)) return env.note(ctx, 'nf_send_unreach: no ICMP: bad transport checksum');
  icmpSend(env, pkt, ICMP_DEST_UNREACH, code, 0, dev, ctx);
}

/** nf_send_unreach6(net, skb, code, hook). */
export function nfSendUnreach6(env: AnswerEnv, pkt: Packet, code: number, hook: number, dev: Link | undefined, ctx: PathCtx): void {
  if (pkt.meta[M_FRAGOFF] !== 0) return env.note(ctx, 'nf_send_unreach6: no ICMPv6 for a fragment other than the first');
  if (!csumOk(pkt, NFPROTO_IPV6, hook)) return env.note(ctx, 'nf_send_unreach6: no ICMPv6: bad transport checksum');
  const skbDev = hook === NF_INET_LOCAL_OUT && !dev ? env.loopback() : dev;
  icmp6Send(env, pkt, ICMPV6_DEST_UNREACH, code, 0, skbDev, dev, ctx);
}
