/**
 * mark match: net/netfilter/xt_mark.c mark_mt() (kernel 6.18).
 */
import type { MarkData } from '../../../ext/match/mark.js';
import { M_MARK } from '../../../vm/layout.js';
import type { MatchFn } from '../../../ext/xt.js';

export function mark(info: MarkData): MatchFn {
  const mask = info.mask >>> 0;
  const value = info.mark >>> 0;
  return (par) => (((par.meta[M_MARK]! & mask) >>> 0) === value) !== info.invert;
}
