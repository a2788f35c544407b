/**
 * ecn match: net/netfilter/xt_ecn.c ecn_mt4() / ecn_mt6(), match_tcp() (kernel 6.18).
 * match_tcp() does not look at the fragment offset: on a non-first fragment
 * it reads whatever lies at the transport offset.
 */
import type { EcnData } from '../../../ext/match/ecn.js';
import { headerPointer, type MatchFn, type XtActionParam } from '../../../ext/xt.js';
import { getDsfield } from './dsfield.js';

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

export function ecn(info: EcnData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    if (info.ip && ((getDsfield(par, family) & ECN_IP_MASK) === info.ect) === info.invIp) return false;
    if ((info.ece || info.cwr) && !matchTcp(par, info)) return false;
    return true;
  };
}
