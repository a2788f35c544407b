/**
 * length match: iptables `extensions/libxt_length.c`, kernel
 * `net/netfilter/xt_length.c` (no checkentry): the packet's layer-3 length
 * (IPv4 total length, IPv6 payload length plus the header) in an inclusive
 * range.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintRangeOpt } from '../numbers.js';
import {
  NFT_BYTEORDER_HTON, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_LEN, NFT_RANGE_EQ, NFT_RANGE_NEQ,
} from '../../vm/layout.js';
import { emitByteorder, emitCmp, emitMetaGet, emitRange } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { be, type LowerCtx } from '../lower.js';
import { be16, type MatchFn } from '../xt.js';

interface LengthData {
  min: number;
  max: number;
  invert: boolean;
}

export const length: MatchModule<LengthData> = {
  kind: 'match',
  name: 'length',
  pure: true,
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
  lower: lowerLength,
  reference: lengthMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * length (xt_length): `meta load len`, byteorder hton, range over the
 * big-endian u32 (the L3 length: tot_len / payload_len + 40).
 */
function lowerLength(c: LowerCtx, m: MatchNode): void {
  const d = m.data as LengthData;
  c.withReg(4, (r) => {
    emitMetaGet(c.b, r, NFT_META_LEN);
    emitByteorder(c.b, NFT_BYTEORDER_HTON, r, r, 4, 4);
    if (d.min === d.max) emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, be(d.min, 4));
    else emitRange(c.b, d.invert ? NFT_RANGE_NEQ : NFT_RANGE_EQ, r, be(d.min, 4), be(d.max, 4));
  });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * length match: net/netfilter/xt_length.c length_mt() / length_mt6() (kernel 6.18).
 * IPv4: the IP total length; IPv6: payload length + 40, as a u16.
 */
function lengthMt(info: LengthData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    const len = family === 'ip' ? be16(par.d, par.nh + 2) : (be16(par.d, par.nh + 4) + 40) & 0xffff;
    return (len >= info.min && len <= info.max) !== info.invert;
  };
}
