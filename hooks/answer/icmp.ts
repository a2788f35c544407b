/**
 * The node's ICMP messages (IPv4): errors about packets it drops or
 * refuses, and echo replies.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/icmp.c   __icmp_send(): nothing for a link-layer broadcast or multicast frame
 *                     (pkt_type not PACKET_HOST), a broadcast or multicast route, a fragment
 *                     other than the first, an ICMP error (or a type past NR_ICMP_TYPES);
 *                     the global limit (not for a packet that came in on lo); the source: the
 *                     packet's destination when it was for this host, else what the route back
 *                     gives (icmp_errors_use_inbound_ifaddr: the input device's address); TOS
 *                     RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL; the route back (broadcast or
 *                     multicast: nothing); the per-destination limit; as much of the packet as
 *                     fits in 576 bytes; the source 192.0.0.8 (INADDR_DUMMY) when none is found
 *                     icmp_echo() / icmp_reply(): an echo reply with the request's identifier,
 *                     sequence, code, data and TOS, from fib_compute_spec_dst()
 *                     icmp_push_reply() → ip_append_data() on the ICMP socket (IP_PMTUDISC_DONT:
 *                     no DF, an IP ID of the kernel's choosing), TTL ip_default_ttl
 *   net/ipv4/route.c  ip_error(): for a device that forwards, ENETUNREACH → net unreachable,
 *                     EHOSTUNREACH → host unreachable, EACCES → packet filtered (blackhole:
 *                     nothing), after its own per-sender limit
 * Not modelled: IP options (ip_options_echo: an answer carries none),
 * timestamp and address-mask replies, redirects, fragmenting an answer
 * larger than the MTU (the hooks see it whole, as they do in the kernel).
 */
import { M_CT_DIR, M_CT_STATUS, M_CT_ID, M_LEN, M_MARK, M_NHOFF, M_PKTTYPE, PACKET_HOST } from '../../vm/layout.js';
import { NFPROTO_IPV4 } from '../../core/netfilter.js';
import type { Packet } from '../../vm/packet.js';
import type { Link } from '../snapshot/node.js';
import { formatIPv4 } from '../route/addr.js';
import { EACCES, EHOSTUNREACH, ENETUNREACH } from '../route/types.js';
import type { PathCtx } from '../path/ctx.js';
import { u32 } from '../path/ipv4.js';
import { INADDR_DUMMY, type AnswerEnv, type AnswerRoute4 } from './env.js';
import { ipOptionsEcho } from './ip-options.js';
import { HZ, inetPeerXrlimAllow, ipErrorAllow, ipRtRedirectAllow } from './ratelimit.js';
import {
  ICMP_DEST_UNREACH, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_REDIR_HOST, ICMP_REDIRECT, ICMP_TIMESTAMPREPLY, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, putIpv4,
  putTransportChecksum,
} from './wire.js';

const NR_ICMP_TYPES = 18;
/** icmp_pointers[type].error */
const ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
/** RT_SCOPE_LINK */
const RT_SCOPE_LINK = 253;

const UNREACH_NAMES: Readonly<Record<number, string>> = {
  0: 'net-unreachable', 1: 'host-unreachable', 2: 'proto-unreachable', 3: 'port-unreachable', 4: 'frag-needed',
  9: 'net-prohibited', 10: 'host-prohibited', 13: 'admin-prohibited',
};

/** The answer's kind: icmp-port-unreachable, icmp-time-exceeded, icmp-echo-reply, ... */
export function icmpKind(type: number, code: number): string {
  if (type === ICMP_ECHOREPLY) return 'icmp-echo-reply';
  if (type === ICMP_REDIRECT) return ['icmp-network-redirect', 'icmp-host-redirect', 'icmp-tos-network-redirect', 'icmp-tos-host-redirect'][code] ?? `icmp-redirect-code-${code}`;
  if (type === ICMP_TIME_EXCEEDED) return code === 0 ? 'icmp-time-exceeded' : 'icmp-fragment-reassembly-time-exceeded';
  if (type === ICMP_DEST_UNREACH) return `icmp-${UNREACH_NAMES[code] ?? `unreachable-code-${code}`}`;
  return `icmp-type-${type}-code-${code}`;
}

export function icmpIsError(type: number): boolean {
  return ERROR_TYPES.has(type);
}

/** icmpv4_mask_allow(): true when the message is never limited. */
function maskAllow(env: AnswerEnv, type: number, code: number): boolean {
  if (type > NR_ICMP_TYPES) return true;
  if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) return true;
  return ((1 << type) & env.icmpRatemask) === 0;
}

/** icmpv4_global_allow(): whether to go on, and whether the per-destination limit applies. */
function globalAllow(env: AnswerEnv, type: number, code: number): { ok: boolean; apply: boolean } {
  if (maskAllow(env, type, code)) return { ok: true, apply: false };
  if (env.global.allow(env.now, env.msgsPerSec, env.msgsBurst)) return { ok: true, apply: true };
  return { ok: false, apply: false };
}

/** icmpv4_xrlim_allow(): the per-destination bucket (lo exempt); a message let through consumes global credit. */
function xrlimAllow(env: AnswerEnv, rt: AnswerRoute4, daddr: number, apply: boolean): boolean {
  if (!apply) return true;
  let rc = true;
  if (env.icmpRatelimit !== 0 && !rt.dev.loopback) rc = inetPeerXrlimAllow(env.peers4.get(daddr, env.now), env.icmpRatelimit, env.now);
  if (rc) env.global.consume(env.rng);
  return rc;
}

/** IP4_REPLY_MARK(): the packet's mark when fwmark_reflect is set, else 0. */
export function replyMark4(env: AnswerEnv, pkt: Packet): number {
  return env.fwmarkReflect4 ? pkt.meta[M_MARK]! : 0;
}

/**
 * __icmp_send(skb_in, type, code, info): `pkt` is skb_in as it stands, `dev`
 * skb_in->dev (undefined for a packet generated here), ctx.dst its route.
 * icmp_glue_bits() gives an error skb_in's conntrack (nf_ct_attach);
 * `ctReset`: skb_in has let go of it first (nf_reset_ct: __udp4_lib_rcv
 * for a port with no socket), so the error is tracked as any packet.
 */
export function icmpSend(env: AnswerEnv, pkt: Packet, type: number, code: number, info: number, dev: Link | undefined, ctx: PathCtx, ctReset = false): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const len = m[M_LEN]!;
  const kind = icmpKind(type, code);
  const skip = (why: string) => env.note(ctx, `icmp_send: no ${kind}: ${why}`);
  if (len < 20) return;
  const rt = ctx.dst;
  if (!rt) return skip('the packet has no route');
  if (m[M_PKTTYPE] !== PACKET_HOST) return skip('a link-layer broadcast or multicast frame');
  if (rt.cast !== 'unicast') return skip(`the packet went to a ${rt.cast} address`);
  const fragOff = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff;
  if (fragOff) return skip('not the first fragment');
  const ihl = (d[nh]! & 0x0f) * 4;
  if (icmpIsError(type) && d[nh + 9] === IPPROTO_ICMP) {
    if (ihl >= len) return skip('the ICMP header cannot be read');
    const inner = d[nh + ihl]!;
    if (inner > NR_ICMP_TYPES || icmpIsError(inner)) return skip('no ICMP error about an ICMP error');
  }
  let apply = false;
  if (!(dev && dev.loopback)) {
    const g = globalAllow(env, type, code);
    if (!g.ok) return ctx.quiet ? undefined : skip(`over icmp_msgs_per_sec (icmp_global_allow, burst ${env.msgsBurst})`);
    apply = g.apply;
  }
  if (ctx.icmpLocked === NFPROTO_IPV4) return skip('icmp_xmit_lock: the ICMP socket is sending the packet it is about (spin_trylock fails)');
  const osaddr = u32(d, nh + 12);
  const odaddr = u32(d, nh + 16);
  let saddr = odaddr;
  if (!rt.local) {
    saddr = 0;
    if (rt.input && env.errorsUseInboundIfaddr && dev) saddr = env.selectAddr4(dev.name, osaddr, RT_SCOPE_LINK);
  }
  const tos = icmpIsError(type) ? (d[nh + 1]! & 0x1e) | 0xc0 : d[nh + 1]!;
  const mark = replyMark4(env, pkt);
  const out = env.route4(osaddr, saddr, tos, mark, IPPROTO_ICMP, '');
  if (!out) return skip(`no route back to ${formatIPv4(osaddr)}`);
  if (out.cast !== 'unicast') return skip(`the route back to ${formatIPv4(osaddr)} is ${out.cast}`);
  if (!xrlimAllow(env, out, osaddr, apply)) return ctx.quiet ? undefined : skip(`rate limited (icmp_ratelimit: one per ${(env.icmpRatelimit * 1000) / HZ} ms to ${formatIPv4(osaddr)}, burst 6)`);
  const opts = ipOptionsEcho(env, pkt, ctx);
  if (opts === null) return skip('the options cannot be echoed (__ip_options_echo)');
  const hl = 20 + opts.length;
  const room = Math.min(out.mtu, 576) - hl - 8;
  if (room <= 20) return skip(`MTU ${out.mtu} of ${out.dev.name} leaves no room`);
  const dataLen = Math.min(len, room);
  const b = new Uint8Array(hl + 8 + dataLen);
  putIpv4(b, { tos, id: env.nextId(), fragOff: 0, ttl: env.defaultTtl, protocol: IPPROTO_ICMP, saddr: out.saddr || INADDR_DUMMY, daddr: osaddr }, 8 + dataLen, opts);
  b[hl] = type;
  b[hl + 1] = code;
  b[hl + 4] = (info >>> 24) & 0xff;
  b[hl + 5] = (info >>> 16) & 0xff;
  b[hl + 6] = (info >>> 8) & 0xff;
  b[hl + 7] = info & 0xff;
  b.set(d.subarray(nh, nh + dataLen), hl + 8);
  putTransportChecksum(b, false, hl, IPPROTO_ICMP, 2);
  env.send(ctx, {
    kind, pf: NFPROTO_IPV4, packet: b, mark, oif: '', attach: !ctReset, route: 'icmp', anySource: saddr === 0, icmpSocket: true, kernelFields: ['ip.id'], ...origCt(pkt, ctx),
    why: `icmp_send: ${kind} to ${formatIPv4(osaddr)} (quoting ${dataLen} of ${len} bytes)`,
  });
}

/**
 * ip_rt_send_redirect(): a packet forwarded back out of the device it came
 * in on, from a source on that link (IPSKB_DOREDIRECT, path/ipv4-route.ts),
 * as ip_forward() holds it after the TTL decrement: an ICMP host redirect to
 * its source naming `gw` (rt_nexthop()), within the limit on the source's
 * peer (ratelimit.ts ipRtRedirectAllow); icmp_send() does the rest (a
 * redirect is outside icmp_ratemask: no other limit).
 */
export function ipRtSendRedirect(env: AnswerEnv, pkt: Packet, gw: number, dev: Link, ctx: PathCtx): void {
  const saddr = u32(pkt.data, pkt.meta[M_NHOFF]! + 12);
  if (!ipRtRedirectAllow(env.peers4.get(saddr, env.now), env.now)) {
    // the common case of a busy sender (redirect_number reached): no text for a replay's packets
    if (!ctx.quiet) env.note(ctx, `ip_rt_send_redirect: no redirect to ${formatIPv4(saddr)} (redirect_load / redirect_number on its peer)`);
    return;
  }
  icmpSend(env, pkt, ICMP_REDIRECT, ICMP_REDIR_HOST, gw >>> 0, dev, ctx);
}

/**
 * icmp_rcv() of an echo request delivered to this host (checksum and
 * broadcast checks made by the caller) → icmp_echo() → icmp_reply(): the
 * request's ICMP message back as type 0.
 */
export function icmpEcho(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx): void {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const th = nh + (d[nh]! & 0x0f) * 4;
  const b = d.slice(th, nh + pkt.meta[M_LEN]!);
  b[0] = ICMP_ECHOREPLY;
  icmpReply(env, pkt, dev, ctx, b, 'icmp-echo-reply', 'echo reply', 'icmp_echo', ['ip.id']);
}

/**
 * icmp_timestamp() → icmp_reply(): a timestamp request with at least the
 * 4 bytes of its originate timestamp after the ICMP header is answered with
 * a timestamp reply of 20 bytes: the request's header as type 14, code 0
 * (id and sequence kept), the originate timestamp copied, the receive and
 * transmit timestamps the time of day in milliseconds since midnight UT
 * (inet_current_timestamp; here the packet's clock: the kernel reads its
 * own, so they are kernel fields).
 */
export function icmpTimestamp(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx): void {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const th = nh + (d[nh]! & 0x0f) * 4;
  if (nh + pkt.meta[M_LEN]! - th - 8 < 4) return env.note(ctx, 'icmp_timestamp: no reply: the request is shorter than its originate timestamp');
  const b = new Uint8Array(20);
  b.set(d.subarray(th, th + 12));
  b[0] = ICMP_TIMESTAMPREPLY;
  b[1] = 0;
  const ms = env.timestampMs();
  for (const at of [12, 16]) {
    b[at] = ms >>> 24;
    b[at + 1] = (ms >>> 16) & 0xff;
    b[at + 2] = (ms >>> 8) & 0xff;
    b[at + 3] = ms & 0xff;
  }
  icmpReply(env, pkt, dev, ctx, b, 'icmp-timestamp-reply', 'timestamp reply', 'icmp_timestamp', ['ip.id', 'icmp.timestamps']);
}

/**
 * icmp_reply(): the ICMP message `icmp` (its checksum filled here) back to
 * the request's source: the global credit and the per-peer limit for its
 * type, the source address the request's destination gives (spec_dst), the
 * route back, the request's TOS.
 */
function icmpReply(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx, icmp: Uint8Array, kind: string, what: string, fn: string, kernelFields: string[]): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const th = nh + (d[nh]! & 0x0f) * 4;
  const rt = ctx.dst;
  if (!rt) return;
  const g = globalAllow(env, icmp[0]!, d[th + 1]!);
  if (!g.ok) return ctx.quiet ? undefined : env.note(ctx, `icmp_reply: no ${what}: over icmp_msgs_per_sec`);
  const osaddr = u32(d, nh + 12);
  const tos = d[nh + 1]!;
  const mark = replyMark4(env, pkt);
  const saddr = env.specDst4(u32(d, nh + 16), osaddr, tos, m[M_MARK]!, rt.local, rt.cast, dev);
  const out = env.route4(osaddr, saddr, tos & 0x1e, mark, IPPROTO_ICMP, '');
  if (!out) return env.note(ctx, `icmp_reply: no ${what}: no route back to ${formatIPv4(osaddr)}`);
  if (!xrlimAllow(env, out, osaddr, g.apply)) return ctx.quiet ? undefined : env.note(ctx, `icmp_reply: no ${what}: rate limited`);
  const opts = ipOptionsEcho(env, pkt, ctx);
  if (opts === null) return env.note(ctx, `icmp_reply: no ${what}: the options cannot be echoed (ip_options_echo)`);
  const hl = 20 + opts.length;
  const b = new Uint8Array(hl + icmp.length);
  putIpv4(b, { tos, id: env.nextId(), fragOff: 0, ttl: env.defaultTtl, protocol: IPPROTO_ICMP, saddr: out.saddr || saddr, daddr: osaddr }, icmp.length, opts);
  b.set(icmp, hl);
  putTransportChecksum(b, false, hl, IPPROTO_ICMP, 2);
  env.send(ctx, {
    kind, pf: NFPROTO_IPV4, packet: b, mark, oif: '', attach: false, route: 'flow', icmpSocket: true, kernelFields, ...origCt(pkt, ctx),
    why: `${fn}: ${what} to ${formatIPv4(osaddr)} (id ${(d[th + 4]! << 8) | d[th + 5]!}, seq ${(d[th + 6]! << 8) | d[th + 7]!})`,
  });
}

/**
 * ip_error(): a received packet whose input route is a reject route
 * (errno = dst.error); answered only by a device that forwards.
 */
export function ipError(env: AnswerEnv, pkt: Packet, dev: Link, errno: number, ctx: PathCtx): void {
  if (!env.node.sysctl.forwarding(dev.name)) return;
  const code = errno === EHOSTUNREACH ? 1 : errno === ENETUNREACH ? 0 : errno === EACCES ? 13 : -1;
  if (code < 0) return;
  const d = pkt.data;
  const osaddr = u32(d, pkt.meta[M_NHOFF]! + 12);
  if (!ipErrorAllow(env.peers4.get(osaddr, env.now), env.now)) return ctx.quiet ? undefined : env.note(ctx, `ip_error: no ${icmpKind(ICMP_DEST_UNREACH, code)}: rate limited (ip_rt_error_cost)`);
  // The error route: not local, not broadcast (dst.dev is lo).
  ctx.dst = { input: true, local: false, cast: 'unicast', dev: 'lo' };
  icmpSend(env, pkt, ICMP_DEST_UNREACH, code, 0, dev, ctx);
}

/** The original packet's conntrack, for the answer's (Answer.origCtId, origCtDir, origCtStatus). */
export function origCt(pkt: Packet, _ctx: PathCtx): { origCtId: number; origCtDir: number; origCtStatus: number } {
  const m = pkt.meta;
  return { origCtId: m[M_CT_ID]!, origCtDir: m[M_CT_DIR]!, origCtStatus: m[M_CT_STATUS]! };
}
