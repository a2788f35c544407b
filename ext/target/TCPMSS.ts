/**
 * TCPMSS target: iptables `extensions/libxt_TCPMSS.c`, kernel
 * `net/netfilter/xt_TCPMSS.c` (`.proto` = IPPROTO_TCP,
 * `tcpmss_tg4_check`/`tcpmss_tg6_check`): rewrite the MSS option of TCP SYN
 * packets to a value or to the path MTU minus the headers.
 *
 * Kernel restrictions: `-p tcp`; --clamp-mss-to-pmtu only from FORWARD,
 * OUTPUT and POSTROUTING; and the rule must have a `tcp` match whose
 * `--tcp-flags` comparison includes SYN, not inverted (`--syn` does).
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import type { TcpData } from '../match/tcpudp.js';
import { parseUintOpt } from '../numbers.js';
import { XT_CONTINUE, be16, be32, type TargetFn, type XtActionParam } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { csumReplace2, inetProtoCsumReplace4 } from '../dsfield.js';
import { ipv6SkipExthdrFrom } from '../ipv6hdr.js';
import { M_END, M_LEN, M_OIF } from '../../vm/layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import type { Family } from '../../core/ast.js';

/** XT_TCPMSS_CLAMP_PMTU */
const TCPMSS_CLAMP_PMTU = 0xffff;

export interface TcpmssData {
  /** The MSS to set, or TCPMSS_CLAMP_PMTU for --clamp-mss-to-pmtu. */
  mss: number;
}

const CLAMP_HOOKS = (1 << Hook.FORWARD) | (1 << Hook.LOCAL_OUT) | (1 << Hook.POST_ROUTING);

export const TCPMSS: TargetModule<TcpmssData> = {
  kind: 'target',
  name: 'TCPMSS',
  proto: 6,
  options: [
    { name: 'set-mss', arg: 1 },
    { name: 'clamp-mss-to-pmtu', arg: 0 },
  ],
  init: () => ({ mss: 0 }),
  parse(d, opt, arg, _invert, ctx) {
    // the largest MSS: 65535 minus the IP header (20, or 40 for IPv6)
    if (opt === 'set-mss') d.mss = parseUintOpt(arg!, 0, 0xffff - (ctx.family === 'ip' ? 20 : 40), 'TCPMSS', opt);
    else d.mss = TCPMSS_CLAMP_PMTU;
  },
  final(_d, seen) {
    if (seen.size === 0) fail('TCPMSS target: At least one parameter is required', 'option');
  },
  save: (d) => (d.mss === TCPMSS_CLAMP_PMTU ? ' --clamp-mss-to-pmtu' : ` --set-mss ${d.mss}`),
  check(d, ctx) {
    if (d.mss === TCPMSS_CLAMP_PMTU && ctx.hookMask & ~CLAMP_HOOKS) {
      return 'xt_TCPMSS: path-MTU clamping only supported in FORWARD, OUTPUT and POSTROUTING hooks';
    }
    const syn = ctx.rule.matches.some((m) => {
      if (m.unknown || m.name !== 'tcp') return false;
      const t = m.data as TcpData;
      return (t.flgCmp & 0x02) !== 0 && !t.invFlags;
    });
    if (!syn) return 'xt_TCPMSS: Only works on TCP SYN packets (the rule needs --syn or --tcp-flags with SYN set)';
    return undefined;
  },
  ...compatTargetFaces(tcpmssTg),
};


// --- reference semantics (xt_TCPMSS.c tcpmss_tg4 / tcpmss_tg6, kernel 6.18) -------------
/** optlen() of xt_TCPMSS.c / xt_TCPOPTSTRIP.c: EOL, NOP and a zero length byte step one byte. */
export function tcpOptlen(d: Uint8Array, at: number): number {
  return d[at]! <= 1 || d[at + 1] === 0 ? 1 : d[at + 1]!;
}

const skipOut = { nexthdr: 0 };

/** ipv6_skip_exthdr() from the end of the IPv6 header: the upper-layer offset from the network header, or -1. */
export function ipv6SkipExthdr(par: XtActionParam): number {
  skipOut.nexthdr = par.d[par.nh + 6]!;
  return ipv6SkipExthdrFrom(par, 40, skipOut);
}

/**
 * tcpmss_mangle_packet() with --set-mss: an MSS option above the value is
 * lowered (never raised); a SYN without the option and without data gets
 * one (at most 536 for IPv4, 1220 for IPv6), growing the packet by 4 bytes
 * (skb_put at the end of the L3 data) with the TCP and IP lengths and
 * checksums updated. Returns the growth, or -1 to drop.
 */
function mangle(par: XtActionParam, family: Family, tcphoff: number, newmss0: number, clamp: ((par: XtActionParam) => number) | null): number {
  if (par.fragoff !== 0) return 0;
  const d = par.d;
  const len = par.end - par.nh - tcphoff;
  if (len < 20) return -1;
  const th = par.nh + tcphoff;
  const tcpHdrlen = (d[th + 12]! >> 4) * 4;
  if (len < tcpHdrlen || tcpHdrlen < 20) return -1;
  let newmss = clamp ? clamp(par) : newmss0;
  if (newmss < 0) return -1;
  for (let i = 20; i <= tcpHdrlen - 4; i += tcpOptlen(d, th + i)) {
    if (d[th + i] === 2 && d[th + i + 1] === 4) {
      const oldmss = be16(d, th + i + 2);
      if (oldmss <= newmss) return 0;
      d[th + i + 2] = newmss >> 8;
      d[th + i + 3] = newmss & 0xff;
      inetProtoCsumReplace4(d, th + 16, oldmss, newmss);
      return 0;
    }
  }
  if (len > tcpHdrlen) return 0;
  if (tcpHdrlen >= 60) return 0;
  if (par.end + 4 > d.length) return -1;
  newmss = Math.min(newmss, family === 'ip' ? 536 : 1220);
  // nothing follows the TCP header (len == tcp_hdrlen): the option goes at the end
  const opt = th + 20;
  d.copyWithin(opt + 4, opt, opt + len - 20);
  inetProtoCsumReplace4(d, th + 16, len, len + 4);
  d[opt] = 2;
  d[opt + 1] = 4;
  d[opt + 2] = newmss >> 8;
  d[opt + 3] = newmss & 0xff;
  inetProtoCsumReplace4(d, th + 16, 0, be32(d, opt));
  const oldval = be16(d, th + 12);
  d[th + 12] = d[th + 12]! + (1 << 4);
  inetProtoCsumReplace4(d, th + 16, oldval, be16(d, th + 12));
  return 4;
}

/** The packet grew by `n` bytes at the end of its L3 data (skb_put): the frame ends there now (trailing padding was trimmed by ip_rcv). */
function grow(par: XtActionParam, n: number): void {
  const m = par.meta;
  m[M_LEN] = m[M_LEN]! + n;
  m[M_END] = m[M_END]! + n;
  par.end += n;
  par.pkt.len = par.end;
}

/**
 * --clamp-mss-to-pmtu: the smaller of dst_mtu(skb_dst(skb)) (the output
 * device's MTU: the hooks allowed, FORWARD, LOCAL_OUT and POST_ROUTING,
 * have chosen the route) and tcpmss_reverse_mtu() (the output route to the
 * source), less the IP and TCP headers (40; 60 for IPv6); -1 (drop: "unknown
 * or invalid path-MTU") when that leaves nothing, or without a node (no
 * routes to read).
 */
function clampMss(family: Family): (par: XtActionParam) => number {
  const v4 = family === 'ip';
  const minlen = v4 ? 40 : 60;
  return (par) => {
    const fib = par.env.fib;
    if (!fib) return -1;
    const inMtu = fib.reverseMtu(par.d, v4 ? 4 : 16, par.nh + (v4 ? 12 : 8));
    const minMtu = Math.min(fib.devMtu(par.meta[M_OIF]!), inMtu);
    return minMtu <= minlen ? -1 : minMtu - minlen;
  };
}

function tcpmssTg(info: TcpmssData, family: Family): TargetFn {
  const clamp = info.mss === TCPMSS_CLAMP_PMTU ? clampMss(family) : null;
  return (par) => {
    const d = par.d;
    const nh = par.nh;
    if (family === 'ip') {
      const ret = mangle(par, family, (d[nh]! & 0x0f) * 4, info.mss, clamp);
      if (ret < 0) return NF_DROP;
      if (ret > 0) {
        const old = be16(d, nh + 2);
        const nw = old + ret;
        csumReplace2(d, nh + 10, old, nw);
        d[nh + 2] = nw >> 8;
        d[nh + 3] = nw & 0xff;
        grow(par, ret);
      }
      return XT_CONTINUE;
    }
    const tcphoff = ipv6SkipExthdr(par);
    if (tcphoff < 0) return NF_DROP;
    const ret = mangle(par, family, tcphoff, info.mss, clamp);
    if (ret < 0) return NF_DROP;
    if (ret > 0) {
      const nw = be16(d, nh + 4) + ret;
      d[nh + 4] = nw >> 8;
      d[nh + 5] = nw & 0xff;
      grow(par, ret);
    }
    return XT_CONTINUE;
  };
}
