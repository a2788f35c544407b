/**
 * tos match: net/netfilter/xt_dscp.c tos_mt() (kernel 6.18).
 */
import type { TosMatchData } from '../../../ext/match/tos.js';
import type { MatchFn } from '../../../ext/xt.js';
import { getDsfield } from './dsfield.js';

export function tos(info: TosMatchData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => ((getDsfield(par, family) & info.mask) === info.value) !== info.invert;
}
