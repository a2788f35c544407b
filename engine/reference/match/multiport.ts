/**
 * multiport match: net/netfilter/xt_multiport.c multiport_mt(), ports_match_v1() (kernel 6.18).
 */
import type { MultiportData } from '../../../ext/match/multiport.js';
import { be16, headerPointer, type MatchFn } from '../../../ext/xt.js';

function portsMatch(info: MultiportData, src: number, dst: number): boolean {
  // The first listed port or range that contains the port decides.
  for (const { lo, hi } of info.ports) {
    const inSrc = src >= lo && src <= hi;
    const inDst = dst >= lo && dst <= hi;
    if (info.flags === 'source' ? inSrc : info.flags === 'destination' ? inDst : inSrc || inDst) return !info.invert;
  }
  return info.invert;
}

export function multiport(info: MultiportData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const pp = headerPointer(par, par.thoff, 4);
    if (pp < 0) {
      par.hotdrop = true;
      return false;
    }
    return portsMatch(info, be16(par.d, pp), be16(par.d, pp + 2));
  };
}
