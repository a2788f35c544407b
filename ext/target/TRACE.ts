/**
 * TRACE target: iptables `extensions/libxt_TRACE.c` (no options); kernel
 * `net/netfilter/xt_TRACE.c`: `.table = "raw"`, sets `skb->nf_trace` and
 * continues (XT_CONTINUE). iptables-save prints plain `-j TRACE`.
 */
import type { TargetModule } from '../types.js';
import { NFT_META_NFTRACE, NFT_REG32_01, F_NFTRACE, M_FLAGS } from '../../vm/layout.js';
import { emitImmediate, emitMetaSet } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

/** TRACE carries no data. */
type TraceData = Record<string, never>;

export const TRACE: TargetModule<TraceData> = {
  kind: 'target',
  name: 'TRACE',
  options: [],
  tables: ['raw'],
  init: () => ({}),
  parse() {},
  save: () => '',
  lower: lowerTrace,
  reference: traceTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/** TRACE as iptables-nft lowers it: `meta set nftrace` with 1 from a 32-bit register. */
function lowerTrace(c: LowerCtx): void {
  emitImmediate(c.b, NFT_REG32_01, [1, 0, 0, 0]);
  emitMetaSet(c.b, NFT_META_NFTRACE, NFT_REG32_01);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * TRACE target: net/netfilter/xt_TRACE.c trace_tg() (kernel 6.18):
 * skb->nf_trace = 1 (F_NFTRACE in the metadata); continue.
 */
function traceTg(): TargetFn {
  return (par) => {
    par.meta[M_FLAGS] = par.meta[M_FLAGS]! | F_NFTRACE;
    if (par.env.recording) par.env.actions.push({ kind: 'TRACE', chain: par.chain, rule: par.rule });
    return XT_CONTINUE;
  };
}
