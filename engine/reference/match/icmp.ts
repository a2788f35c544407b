/**
 * icmp match: net/ipv4/netfilter/ip_tables.c icmp_match(), icmp_type_code_match() (kernel 6.18).
 */
import type { IcmpData } from '../../../ext/match/icmp.js';
import { headerPointer, type MatchFn } from '../../../ext/xt.js';

/** sizeof(struct icmphdr): the whole 8-byte header must be readable. */
const ICMPHDR_LEN = 8;

export function icmp(info: IcmpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const ic = headerPointer(par, par.thoff, ICMPHDR_LEN);
    if (ic < 0) {
      par.hotdrop = true;
      return false;
    }
    const type = par.d[ic]!;
    const code = par.d[ic + 1]!;
    const hit = info.type === 0xff || (type === info.type && code >= info.codeMin && code <= info.codeMax);
    return hit !== info.invert;
  };
}
