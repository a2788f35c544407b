/**
 * MARK target: net/netfilter/xt_mark.c mark_tg() (revision 2, kernel 6.18):
 * skb->mark = (skb->mark & ~mask) ^ mark; continue.
 */
import type { MarkTargetData } from '../../../ext/target/MARK.js';
import { M_MARK } from '../../../vm/layout.js';
import { XT_CONTINUE, type TargetFn } from '../../../ext/xt.js';

export function MARK(info: MarkTargetData): TargetFn {
  return (par) => {
    par.meta[M_MARK] = (par.meta[M_MARK]! & ~info.mask) ^ info.mark;
    return XT_CONTINUE;
  };
}
