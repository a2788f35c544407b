/**
 * mark match: libxt_mark.c (revision 1), kernel xt_mark.c:
 * `(skb->mark & mask) == mark`, optionally inverted.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { hex, parseMarkMask } from '../util.js';

export interface MarkData {
  mark: number;
  mask: number;
  invert: boolean;
}

export const mark: MatchModule<MarkData> = {
  kind: 'match',
  name: 'mark',
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
};
