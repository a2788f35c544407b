/**
 * connmark match: libxt_connmark.c (revision 1), kernel xt_connmark.c:
 * `(ct->mark & mask) == mark`, optionally inverted. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { hex } from '../save.js';
import { parseMarkMask } from '../numbers.js';
import { NFT_CT_MARK, emitCtGet } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import { M_CT_DIR, M_CT_MARK } from '../../vm/layout.js';
import type { MatchFn } from '../xt.js';
import { markTest } from './mark.js';

/** struct xt_connmark_mtinfo1. */
interface ConnmarkData {
  mark: number;
  /** 0xffffffff when no `/mask` was given. */
  mask: number;
  invert: boolean;
}

export const connmark: MatchModule<ConnmarkData> = {
  kind: 'match',
  name: 'connmark',
  pure: true,
  options: [{ name: 'mark', arg: 1, invert: true }],
  init: () => ({ mark: 0, mask: 0xffffffff, invert: false }),
  parse(d, opt, arg, invert) {
    const [v, m] = parseMarkMask(arg!, 'connmark', opt);
    d.mark = v;
    d.mask = m;
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('mark')) fail('connmark: option "--mark" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --mark ${hex(d.mark)}${d.mask >>> 0 !== 0xffffffff ? '/' + hex(d.mask) : ''}`,
  lower: lowerConnmark,
  reference: connmarkMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** connmark (xt_connmark): the mark test (ext/match/mark.ts) on `ct load mark`, which BREAKs without a conntrack. */
function lowerConnmark(c: LowerCtx, m: MatchNode): void {
  markTest(c, (r) => emitCtGet(c.b, r, NFT_CT_MARK), m.data as ConnmarkData);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * connmark match: net/netfilter/xt_connmark.c connmark_mt() (kernel 6.18).
 * No conntrack entry (M_CT_DIR < 0): no match, even inverted.
 */
function connmarkMt(info: ConnmarkData): MatchFn {
  const mask = info.mask >>> 0;
  const value = info.mark >>> 0;
  return (par) => {
    if (par.meta[M_CT_DIR]! < 0) return false;
    return (((par.meta[M_CT_MARK]! & mask) >>> 0) === value) !== info.invert;
  };
}
