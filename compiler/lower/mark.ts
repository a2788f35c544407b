/**
 * mark (xt_mark: `(skb->mark & mask) == mark XOR invert`) as iptables-nft's
 * add_nft_mark: `meta load mark`, a bitwise only when the mask is not all
 * ones, cmp eq/neq of the host-order value. connmark (xt_connmark) is the
 * same test on `ct load mark`, which BREAKs without a conntrack (the x_tables
 * match is false then, inverted or not).
 */
import { NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_MARK } from '../../vm/layout.js';
import { NFT_CT_MARK, emitBitwise, emitCmp, emitCtGet, emitMetaGet } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { MarkData } from '../../ext/match/mark.js';
import type { ConnmarkData } from '../../ext/match/connmark.js';
import { le32, type LowerCtx } from './ctx.js';

function markTest(c: LowerCtx, load: (r: number) => void, d: { mark: number; mask: number; invert: boolean }): void {
  c.withReg(4, (r) => {
    load(r);
    if (d.mask >>> 0 !== 0xffffffff) emitBitwise(c.b, r, r, le32(d.mask), [0, 0, 0, 0]);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(d.mark));
  });
}

export function lowerMark(c: LowerCtx, m: MatchNode): void {
  markTest(c, (r) => emitMetaGet(c.b, r, NFT_META_MARK), m.data as MarkData);
}

export function lowerConnmark(c: LowerCtx, m: MatchNode): void {
  markTest(c, (r) => emitCtGet(c.b, r, NFT_CT_MARK), m.data as ConnmarkData);
}
