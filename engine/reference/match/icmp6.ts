/**
 * icmp6 match: net/ipv6/netfilter/ip6_tables.c icmp6_match(), icmp6_type_code_match()
 * (kernel 6.18). Unlike IPv4 there is no "any" type 0xff.
 */
import type { IcmpData } from '../../../ext/match/icmp.js';
import { headerPointer, type MatchFn } from '../../../ext/xt.js';

/** sizeof(struct icmp6hdr) */
const ICMP6HDR_LEN = 8;

export function icmp6(info: IcmpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const ic = headerPointer(par, par.thoff, ICMP6HDR_LEN);
    if (ic < 0) {
      par.hotdrop = true;
      return false;
    }
    const type = par.d[ic]!;
    const code = par.d[ic + 1]!;
    return (type === info.type && code >= info.codeMin && code <= info.codeMax) !== info.invert;
  };
}
