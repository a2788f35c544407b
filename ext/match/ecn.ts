/**
 * ecn match: iptables `extensions/libxt_ecn.c`, kernel
 * `net/netfilter/xt_ecn.c` (`ecn_mt_check4/6`): the TCP CWR/ECE flags and
 * the IP ECN codepoint. Matching the TCP bits needs `-p tcp` (not
 * inverted), which the kernel checks at load time.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../util.js';

export interface EcnData {
  /** XT_ECN_OP_MATCH_CWR / _ECE / _IP: which tests are on. */
  cwr: boolean;
  ece: boolean;
  ip: boolean;
  invCwr: boolean;
  invEce: boolean;
  invIp: boolean;
  /** ECN codepoint 0..3 (with `ip`). */
  ect: number;
}

export const ecn: MatchModule<EcnData> = {
  kind: 'match',
  name: 'ecn',
  options: [
    { name: 'ecn-tcp-cwr', arg: 0, invert: true },
    { name: 'ecn-tcp-ece', arg: 0, invert: true },
    { name: 'ecn-ip-ect', arg: 1, invert: true },
  ],
  init: () => ({ cwr: false, ece: false, ip: false, invCwr: false, invEce: false, invIp: false, ect: 0 }),
  parse(d, opt, arg, invert) {
    if (opt === 'ecn-tcp-cwr') {
      d.cwr = true;
      if (invert) d.invCwr = true;
    } else if (opt === 'ecn-tcp-ece') {
      d.ece = true;
      if (invert) d.invEce = true;
    } else {
      d.ect = parseUintOpt(arg!, 0, 3, 'ecn', opt);
      d.ip = true;
      if (invert) d.invIp = true;
    }
  },
  final(_d, seen) {
    if (seen.size === 0) fail('ECN match: some option required', 'option');
  },
  save(d) {
    let s = '';
    if (d.ece) s += `${d.invEce ? ' !' : ''} --ecn-tcp-ece`;
    if (d.cwr) s += `${d.invCwr ? ' !' : ''} --ecn-tcp-cwr`;
    if (d.ip) s += `${d.invIp ? ' !' : ''} --ecn-ip-ect ${d.ect}`;
    return s;
  },
  check(d, ctx) {
    if ((d.ece || d.cwr) && (ctx.rule.proto !== 6 || ctx.rule.invProto)) return 'xt_ecn: cannot match TCP bits for non-tcp packets (the rule needs -p tcp)';
    return undefined;
  },
};
