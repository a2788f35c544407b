/**
 * ttl match: net/netfilter/xt_hl.c ttl_mt() (kernel 6.18).
 */
import type { TtlData } from '../../../ext/match/ttl.js';
import type { MatchFn } from '../../../ext/xt.js';

export function compareHl(mode: TtlData['mode'], v: number, ref: number): boolean {
  switch (mode) {
    case 'eq': return v === ref;
    case 'ne': return v !== ref;
    case 'lt': return v < ref;
    case 'gt': return v > ref;
  }
}

export function ttl(info: TtlData): MatchFn {
  return (par) => compareHl(info.mode, par.d[par.nh + 8]!, info.value);
}
