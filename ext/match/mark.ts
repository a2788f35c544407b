/**
 * mark match: libxt_mark.c (revision 1), kernel xt_mark.c:
 * `(skb->mark & mask) == mark`, optionally inverted.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { hex } from '../save.js';
import { parseMarkMask } from '../numbers.js';
import { NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_MARK, M_MARK } from '../../vm/layout.js';
import { emitBitwise, emitCmp, emitMetaGet } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { le32, type LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';

interface MarkData {
  mark: number;
  mask: number;
  invert: boolean;
}

export const mark: MatchModule<MarkData> = {
  kind: 'match',
  name: 'mark',
  pure: true,
  options: [{ name: 'mark', arg: 1, invert: true }],
  init: () => ({ mark: 0, mask: 0xffffffff, invert: false }),
  parse(d, opt, arg, invert) {
    const [v, m] = parseMarkMask(arg!, 'mark', opt);
    d.mark = v;
    d.mask = m;
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('mark')) fail('mark: option "--mark" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --mark ${hex(d.mark)}${d.mask >>> 0 !== 0xffffffff ? '/' + hex(d.mask) : ''}`,
  lower: lowerMark,
  reference: markMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * mark (xt_mark: `(skb->mark & mask) == mark XOR invert`) as iptables-nft's
 * add_nft_mark: `meta load mark`, a bitwise only when the mask is not all
 * ones, cmp eq/neq of the host-order value. connmark (xt_connmark) is the
 * same test on `ct load mark`, which BREAKs without a conntrack (the x_tables
 * match is false then, inverted or not).
 */
export function markTest(c: LowerCtx, load: (r: number) => void, d: { mark: number; mask: number; invert: boolean }): void {
  c.withReg(4, (r) => {
    load(r);
    if (d.mask >>> 0 !== 0xffffffff) emitBitwise(c.b, r, r, le32(d.mask), [0, 0, 0, 0]);
    emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(d.mark));
  });
}

function lowerMark(c: LowerCtx, m: MatchNode): void {
  markTest(c, (r) => emitMetaGet(c.b, r, NFT_META_MARK), m.data as MarkData);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * mark match: net/netfilter/xt_mark.c mark_mt() (kernel 6.18).
 */
function markMt(info: MarkData): MatchFn {
  const mask = info.mask >>> 0;
  const value = info.mark >>> 0;
  return (par) => (((par.meta[M_MARK]! & mask) >>> 0) === value) !== info.invert;
}
