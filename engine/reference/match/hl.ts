/**
 * hl match: net/netfilter/xt_hl.c hl_mt6() (kernel 6.18): the IPv6 hop limit.
 */
import type { HlData } from '../../../ext/match/ttl.js';
import type { MatchFn } from '../../../ext/xt.js';
import { compareHl } from './ttl.js';

export function hl(info: HlData): MatchFn {
  return (par) => compareHl(info.mode, par.d[par.nh + 7]!, info.value);
}
