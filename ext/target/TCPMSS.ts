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
  lower: 'needs packet rewriting: the MSS option, from the route MTU with --clamp-mss-to-pmtu',
  reference: 'needs packet rewriting: the MSS option, from the route MTU with --clamp-mss-to-pmtu',
};

