/**
 * tos match, revision 1: iptables `extensions/libxt_tos.c`, kernel
 * `net/netfilter/xt_dscp.c` (`tos_mt`, no checkentry): `(tos & mask) ==
 * value` on the IPv4 TOS byte or the IPv6 traffic class. A symbolic name
 * (Minimize-Delay, ...) implies the mask 0x3f, a number the mask 0xff.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseTosMask } from '../numbers.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';
import { getDsfield, dsTest } from '../dsfield.js';

interface TosMatchData {
  value: number;
  mask: number;
  invert: boolean;
}

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0');

export const tos: MatchModule<TosMatchData> = {
  kind: 'match',
  name: 'tos',
  options: [{ name: 'tos', arg: 1, invert: true }],
  init: () => ({ value: 0, mask: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    const r = parseTosMask(arg!, 0x3f);
    d.value = r.value;
    d.mask = r.mask;
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('tos')) fail('tos: option "--tos" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --tos ${hex2(d.value)}/${hex2(d.mask)}`,
  lower: lowerTos,
  reference: tosMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** tos (xt_tos): the DS field under the mask, a bitwise and a cmp (ext/dsfield.ts). */
function lowerTos(c: LowerCtx, m: MatchNode): void {
  const d = m.data as TosMatchData;
  dsTest(c, d.mask, d.value, d.invert);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * tos match: net/netfilter/xt_dscp.c tos_mt() (kernel 6.18).
 */
function tosMt(info: TosMatchData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => ((getDsfield(par, family) & info.mask) === info.value) !== info.invert;
}
