/**
 * connmark match: net/netfilter/xt_connmark.c connmark_mt() (kernel 6.18).
 * No conntrack entry (M_CT_DIR < 0): no match, even inverted.
 */
import type { ConnmarkData } from '../../../ext/match/connmark.js';
import { M_CT_DIR, M_CT_MARK } from '../../../vm/layout.js';
import type { MatchFn } from '../../../ext/xt.js';

export function connmark(info: ConnmarkData): MatchFn {
  const mask = info.mask >>> 0;
  const value = info.mark >>> 0;
  return (par) => {
    if (par.meta[M_CT_DIR]! < 0) return false;
    return (((par.meta[M_CT_MARK]! & mask) >>> 0) === value) !== info.invert;
  };
}
