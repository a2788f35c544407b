/**
 * TRACE target: net/netfilter/xt_TRACE.c trace_tg() (kernel 6.18):
 * skb->nf_trace = 1 (F_NFTRACE in the metadata); continue.
 */
import { F_NFTRACE, M_FLAGS } from '../../../vm/layout.js';
import { XT_CONTINUE, type TargetFn } from '../../../ext/xt.js';

export function TRACE(): TargetFn {
  return (par) => {
    par.meta[M_FLAGS] = par.meta[M_FLAGS]! | F_NFTRACE;
    if (par.env.recording) par.env.actions.push({ kind: 'TRACE', chain: par.chain, rule: par.rule });
    return XT_CONTINUE;
  };
}
