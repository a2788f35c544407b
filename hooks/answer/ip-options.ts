/**
 * The IPv4 options of a received packet, after its input route and before
 * INPUT or FORWARD (ip_rcv_finish_core → ip_rcv_options).
 *
 * Mirrors Linux 6.18, net/ipv4/ip_options.c __ip_options_compile() with an
 * skb and net/ipv4/ip_input.c ip_rcv_options():
 *   - the walk: END fills the rest with END, NOOP is one byte, every other
 *     option needs a length of at least 2 within the header;
 *   - LSRR/SSRR: length 3 or more, a pointer of 4 or more, only one;
 *     RR: only one, length and pointer as LSRR's; while there is room (the
 *     pointer within the option) the node's address for this packet
 *     (fib_compute_spec_dst) goes into the next slot and the pointer moves on;
 *   - TIMESTAMP: only one, length 4 or more, pointer 5 or more; with room:
 *     flag 0 writes the time, flag 1 the address and the time, flag 3 the
 *     time when the slot's address is the node's (not a unicast address
 *     elsewhere); without room the overflow count goes up, and at 15 it is
 *     an error; the time is the capture's, milliseconds since midnight UT;
 *   - router alert: length 4 or more; CIPSO: only one, and the node has no
 *     CIPSO DOI configured (cipso_v4_validate: a length under 8 at byte 1,
 *     else the DOI at byte 2); security, stream id and unknown options pass;
 *   - an error drops the packet with ICMP parameter problem pointing at the
 *     byte (ip_options_compile → icmp_send);
 *   - a source route is dropped unless accept_source_route is set on both
 *     all and the input device (IN_DEV_SOURCE_ROUTE).
 * After FORWARD, ip_forward_options() writes the output route's source into
 * the slots the node filled and sets the header checksum (ipForwardOptions).
 * Not modelled: a source route the node accepts (ip_options_rcv_srr, the
 * route to the option's next hop: nfvm goes on with the packet's own
 * route and says so), router alert sockets (ip_call_ra_chain).
 */
import { M_MARK, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import type { Link } from '../snapshot/node.js';
import type { IpOpts, PathCtx } from '../path/ctx.js';
import { ipSendCheck, u32 } from '../path/ipv4.js';
import { addrTypeCode } from '../route/index.js';
import { RTN_UNICAST } from '../route/types.js';
import type { AnswerEnv } from './env.js';
import { putU32 } from './wire.js';

const IPOPT_END = 0;
const IPOPT_NOOP = 1;
const IPOPT_RR = 7;
const IPOPT_TIMESTAMP = 68;
const IPOPT_LSRR = 131;
const IPOPT_CIPSO = 134;
const IPOPT_SSRR = 137;
const IPOPT_RA = 148;
const IPOPT_TS_TSONLY = 0;
const IPOPT_TS_TSANDADDR = 1;
const IPOPT_TS_PRESPEC = 3;

/**
 * ip_rcv_options(): why the packet is dropped (and the parameter problem's
 * info word when it is answered with one), or undefined when it goes on;
 * the compiled options are left in ctx.ipOpts for the answers to echo.
 */
export function ipRcvOptions(env: AnswerEnv, pkt: Packet, dev: Link, ctx: PathCtx): { why: string; paramProblem?: number } | undefined {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const optlen = (d[nh]! & 0x0f) * 4 - 20;
  if (optlen <= 0) return undefined;
  let spec = -1;
  const specDst = (): number => {
    if (spec < 0) {
      const rt = ctx.dst;
      spec = env.specDst4(u32(d, nh + 16), u32(d, nh + 12), d[nh + 1]!, pkt.meta[M_MARK]!, rt?.local === true, rt?.cast ?? 'unicast', dev) >>> 0;
    }
    return spec;
  };
  const o: IpOpts = { optlen, srr: 0, rr: 0, ts: 0, cipso: 0, rrNeedaddr: false, tsNeedaddr: false, tsNeedtime: false, changed: false };
  ctx.ipOpts = o;
  let strict = false;
  let pp = -1;
  let at = nh + 20;
  walk: for (let l = optlen; l > 0;) {
    const type = d[at]!;
    if (type === IPOPT_END) {
      for (at++, l--; l > 0; at++, l--) {
        if (d[at] !== IPOPT_END) o.changed = true;
        d[at] = IPOPT_END;
      }
      break;
    }
    if (type === IPOPT_NOOP) {
      l--;
      at++;
      continue;
    }
    if (l < 2) {
      pp = at;
      break;
    }
    const len = d[at + 1]!;
    if (len < 2 || len > l) {
      pp = at;
      break;
    }
    const ptr = d[at + 2]!;
    switch (type) {
      case IPOPT_SSRR:
      case IPOPT_LSRR:
        if (len < 3) pp = at + 1;
        else if (ptr < 4) pp = at + 2;
        else if (o.srr) pp = at;
        else {
          strict = type === IPOPT_SSRR;
          o.srr = at - nh;
        }
        break;
      case IPOPT_RR:
        if (o.rr) pp = at;
        else if (len < 3) pp = at + 1;
        else if (ptr < 4) pp = at + 2;
        else {
          if (ptr <= len) {
            if (ptr + 3 > len) {
              pp = at + 2;
              break;
            }
            putU32(d, at + ptr - 1, specDst());
            d[at + 2] = ptr + 4;
            o.rrNeedaddr = true;
            o.changed = true;
          }
          o.rr = at - nh;
        }
        break;
      case IPOPT_TIMESTAMP: {
        if (o.ts) pp = at;
        else if (len < 4) pp = at + 1;
        else if (ptr < 5) pp = at + 2;
        if (pp >= 0) break;
        if (ptr <= len) {
          if (ptr + 3 > len) {
            pp = at + 2;
            break;
          }
          let timeAt = -1;
          const flag = d[at + 3]! & 0x0f;
          if (flag === IPOPT_TS_TSONLY) {
            timeAt = at + ptr - 1;
            o.tsNeedtime = true;
            d[at + 2] = ptr + 4;
          } else if (flag === IPOPT_TS_TSANDADDR) {
            if (ptr + 7 > len) {
              pp = at + 2;
              break;
            }
            putU32(d, at + ptr - 1, specDst());
            timeAt = at + ptr + 3;
            o.tsNeedaddr = true;
            o.tsNeedtime = true;
            d[at + 2] = ptr + 8;
          } else if (flag === IPOPT_TS_PRESPEC) {
            if (ptr + 7 > len) {
              pp = at + 2;
              break;
            }
            // a slot for another host's address is left for it
            if (!isUnicastElsewhere(env, u32(d, at + ptr - 1))) {
              timeAt = at + ptr + 3;
              o.tsNeedtime = true;
              d[at + 2] = ptr + 8;
            }
          }
          if (timeAt >= 0) {
            putU32(d, timeAt, env.timestampMs());
            o.changed = true;
          }
        } else if ((d[at + 3]! & 0x0f) !== IPOPT_TS_PRESPEC) {
          const overflow = d[at + 3]! >> 4;
          if (overflow === 15) {
            pp = at + 3;
            break;
          }
          d[at + 3] = (d[at + 3]! & 0x0f) | ((overflow + 1) << 4);
          o.changed = true;
        }
        o.ts = at - nh;
        break;
      }
      case IPOPT_RA:
        if (len < 4) pp = at + 1;
        break;
      case IPOPT_CIPSO:
        // cipso_v4_validate() without a DOI configured
        if (o.cipso) pp = at;
        else {
          o.cipso = at - nh;
          pp = len < 8 ? at + 1 : at + 2;
        }
        break;
      default:
        break;
    }
    if (pp >= 0) break walk;
    l -= len;
    at += len;
  }
  if (pp >= 0) {
    // ip_options_compile() → icmp_send(ICMP_PARAMETERPROB) pointing at the byte; the header as changed so far
    return { why: `a bad IP option at byte ${pp - nh} of the header (ip_options_compile: ICMP parameter problem)`, paramProblem: ((pp - nh) << 24) >>> 0 };
  }
  if (o.srr) {
    const sys = env.node.sysctl;
    if (!(sys.allConf(4, 'accept_source_route') > 0 && sys.devConf(4, dev.name, 'accept_source_route') > 0)) {
      return { why: `a ${strict ? 'strict' : 'loose'} source route option and accept_source_route off (ip_rcv_options)` };
    }
    env.note(ctx, 'ip_rcv_options: a source route the node accepts: ip_options_rcv_srr (the route to the option\'s next hop) is not modelled, the packet keeps its own route');
  }
  return undefined;
}

/** inet_addr_type(net, addr) == RTN_UNICAST: not an address of the node (nor broadcast, multicast, ...). */
function isUnicastElsewhere(env: AnswerEnv, addr: number): boolean {
  return addrTypeCode(env.node, { family: 4, w: Uint32Array.of(addr) }) === RTN_UNICAST;
}

/** No options to echo. */
const NO_OPTIONS = new Uint8Array(0);

/**
 * __ip_options_echo(): the options of the node's answer to the received
 * packet (its record route and timestamp with the pointers moved past the
 * slots the answer's sender fills, its source route reversed, its CIPSO
 * option), padded to 4 bytes; null when the kernel gives up (-EINVAL: no
 * answer). Not modelled: the answer of a source-routed packet goes to the
 * route's first hop (the bytes are echoed, the answer keeps its route).
 */
export function ipOptionsEcho(env: AnswerEnv, pkt: Packet, ctx: PathCtx): Uint8Array | null {
  const o = ctx.ipOpts;
  if (o === undefined || o.optlen === 0) return NO_OPTIONS;
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const out: number[] = [];
  if (o.rr) {
    const len = d[nh + o.rr + 1]!;
    const soff = d[nh + o.rr + 2]!;
    const at = out.length;
    for (let i = 0; i < len; i++) out.push(d[nh + o.rr + i]!);
    if (o.rrNeedaddr && soff <= len) {
      if (soff + 3 > len) return null;
      out[at + 2] = soff + 4;
    }
  }
  if (o.ts) {
    const len = d[nh + o.ts + 1]!;
    let soff = d[nh + o.ts + 2]!;
    const at = out.length;
    for (let i = 0; i < len; i++) out.push(d[nh + o.ts + i]!);
    if (soff <= len) {
      if (o.tsNeedaddr) {
        if (soff + 3 > len) return null;
        soff += 4;
      }
      if (o.tsNeedtime) {
        if (soff + 3 > len) return null;
        if ((out[at + 3]! & 0x0f) !== IPOPT_TS_PRESPEC) soff += 4;
        else if (soff + 7 <= len && !isUnicastElsewhere(env, ((out[at + soff - 1]! << 24) | (out[at + soff]! << 16) | (out[at + soff + 1]! << 8) | out[at + soff + 2]!) >>> 0)) soff += 8;
      }
      out[at + 2] = soff & 0xff;
    }
  }
  if (o.srr) {
    const start = nh + o.srr;
    const len = d[start + 1]!;
    let soff = d[start + 2]!;
    let doff = 0;
    if (soff > len) soff = len + 1;
    soff -= 4;
    const slots: number[] = [];
    if (soff > 3) {
      for (soff -= 4, doff = 4; soff > 3; soff -= 4, doff += 4) for (let i = 0; i < 4; i++) slots.push(d[start + soff - 1 + i]!);
      // RFC 1812: a route whose last hop is the packet's source is cut short
      if (u32(d, nh + 12) === u32(d, start + soff + 3)) doff -= 4;
    }
    if (doff > 3) {
      // the last slot: the answer's destination, the packet's source (ip_options_build)
      out.push(d[start]!, doff + 3, 4, ...slots.slice(0, doff - 4), ...d.subarray(nh + 12, nh + 16));
      env.note(ctx, 'ip_options_echo: the answer echoes a reversed source route; nfvm sends it on its own route, not to the route\'s first hop');
    }
  }
  if (o.cipso) {
    const len = d[nh + o.cipso + 1]!;
    for (let i = 0; i < len; i++) out.push(d[nh + o.cipso + i]!);
  }
  while (out.length & 3) out.push(IPOPT_END);
  return Uint8Array.from(out);
}

/**
 * ip_forward_options(): the output route's source (ip_rt_get_source: the
 * preferred source of the route to the destination through `out`) over the
 * record route slot the node filled on receive, and the header checksum
 * (ip_send_check) when the options changed.
 */
export function ipForwardOptions(env: AnswerEnv, pkt: Packet, out: Link, ctx: PathCtx): void {
  const o = ctx.ipOpts;
  if (o === undefined || o.optlen === 0) return;
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  // the timestamp's address is written again only for a source route the node took (srr_is_hit), which nfvm does not model
  if (o.rrNeedaddr) {
    const src = env.route4(u32(d, nh + 16), 0, d[nh + 1]! & 0x1e, m[M_MARK]!, d[nh + 9]!, out.name)?.saddr ?? 0;
    putU32(d, nh + o.rr + d[nh + o.rr + 2]! - 5, src);
    o.changed = true;
  }
  if (!o.changed) return;
  o.changed = false;
  ipSendCheck(d, nh);
}
