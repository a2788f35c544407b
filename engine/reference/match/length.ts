/**
 * length match: net/netfilter/xt_length.c length_mt() / length_mt6() (kernel 6.18).
 * IPv4: the IP total length; IPv6: payload length + 40, as a u16.
 */
import type { LengthData } from '../../../ext/match/length.js';
import { be16, type MatchFn } from '../../../ext/xt.js';

export function length(info: LengthData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    const len = family === 'ip' ? be16(par.d, par.nh + 2) : (be16(par.d, par.nh + 4) + 40) & 0xffff;
    return (len >= info.min && len <= info.max) !== info.invert;
  };
}
