/**
 * connmark match: libxt_connmark.c (revision 1), kernel xt_connmark.c:
 * `(ct->mark & mask) == mark`, optionally inverted. No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { hex, parseMarkMask } from '../util.js';

/** struct xt_connmark_mtinfo1. */
export interface ConnmarkData {
  mark: number;
  /** 0xffffffff when no `/mask` was given. */
  mask: number;
  invert: boolean;
}

export const connmark: MatchModule<ConnmarkData> = {
  kind: 'match',
  name: 'connmark',
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
};
