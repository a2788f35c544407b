/**
 * ecn match: iptables `extensions/libxt_ecn.c`, kernel
 * `net/netfilter/xt_ecn.c` (`ecn_mt_check4/6`): the TCP CWR/ECE flags and
 * the IP ECN codepoint. Matching the TCP bits needs `-p tcp` (not
 * inverted), which the kernel checks at load time.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import { headerPointer, type MatchFn, type XtActionParam } from '../xt.js';
import { getDsfield } from '../dsfield.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';

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
  lower: lowerEcn,
  reference: (d, family, backend) => asNftCompat(ecnMt(d, family), backend),
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * ecn as iptables-nft loads it: `[ match name ecn rev 0 ]` (nft_compat runs
 * xt_ecn), whose --ecn-tcp-cwr/ece need a whole TCP header (match_tcp), which
 * a payload load of the flags byte would not.
 */
function lowerEcn(c: LowerCtx, m: MatchNode): void {
  lowerCompatMatch(c, m, () => ecnMt(m.data as EcnData, c.family));
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * ecn match: net/netfilter/xt_ecn.c ecn_mt4() / ecn_mt6(), match_tcp() (kernel 6.18).
 * match_tcp() does not look at the fragment offset: on a non-first fragment
 * it reads whatever lies at the transport offset.
 */
/** XT_ECN_IP_MASK: the ECN bits of the DS field. */
const ECN_IP_MASK = 0x03;
const TH_ECE = 0x40;
const TH_CWR = 0x80;

function matchTcp(par: XtActionParam, info: EcnData): boolean {
  const th = headerPointer(par, par.thoff, 20);
  if (th < 0) return false;
  const flags = par.d[th + 13]!;
  if (info.ece && ((flags & TH_ECE) !== 0) === info.invEce) return false;
  if (info.cwr && ((flags & TH_CWR) !== 0) === info.invCwr) return false;
  return true;
}

function ecnMt(info: EcnData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    if (info.ip && ((getDsfield(par, family) & ECN_IP_MASK) === info.ect) === info.invIp) return false;
    if ((info.ece || info.cwr) && !matchTcp(par, info)) return false;
    return true;
  };
}
