/**
 * CONNMARK target: net/netfilter/xt_connmark.c connmark_tg_shift() (kernel 6.18;
 * revision 1 is revision 2 with a zero shift). Without a conntrack entry
 * (M_CT_DIR < 0) it does nothing. Shifts are u32 shifts; a count of 32
 * behaves as on x86 (the count is taken mod 32), like JavaScript's.
 */
import type { ConnmarkTargetData } from '../../../ext/target/CONNMARK.js';
import { M_CT_DIR, M_CT_MARK, M_MARK } from '../../../vm/layout.js';
import { XT_CONTINUE, type TargetFn } from '../../../ext/xt.js';

export function CONNMARK(info: ConnmarkTargetData): TargetFn {
  const shift = (v: number): number => (info.shiftDir === 'right' ? v >>> info.shiftBits : v << info.shiftBits);
  return (par) => {
    const m = par.meta;
    if (m[M_CT_DIR]! < 0) return XT_CONTINUE;
    switch (info.mode) {
      case 'set':
        m[M_CT_MARK] = shift((m[M_CT_MARK]! & ~info.ctmask) ^ info.ctmark);
        break;
      case 'save':
        m[M_CT_MARK] = (m[M_CT_MARK]! & ~info.ctmask) ^ shift(m[M_MARK]! & info.nfmask);
        break;
      case 'restore':
        m[M_MARK] = (m[M_MARK]! & ~info.nfmask) ^ shift(m[M_CT_MARK]! & info.ctmask);
        break;
    }
    return XT_CONTINUE;
  };
}
