/**
 * length match: iptables `extensions/libxt_length.c`, kernel
 * `net/netfilter/xt_length.c` (no checkentry): the packet's layer-3 length
 * (IPv4 total length, IPv6 payload length plus the header) in an inclusive
 * range.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintRangeOpt } from '../util.js';

export interface LengthData {
  min: number;
  max: number;
  invert: boolean;
}

export const length: MatchModule<LengthData> = {
  kind: 'match',
  name: 'length',
  options: [{ name: 'length', arg: 1, invert: true }],
  init: () => ({ min: 0, max: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    // XTTYPE_UINT16RC
    const v = parseUintRangeOpt(arg!, 0xffffn, 'length', 'length');
    d.min = Number(v[0]);
    d.max = Number(v[v.length >= 2 ? 1 : 0]);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('length')) fail('length: option "--length" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --length ${d.min === d.max ? d.min : `${d.min}:${d.max}`}`,
};
