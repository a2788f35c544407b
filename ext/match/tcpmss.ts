/**
 * tcpmss match: iptables `extensions/libxt_tcpmss.c`, kernel
 * `net/netfilter/xt_tcpmss.c` (`.proto = IPPROTO_TCP`, both families).
 *
 * `--mss value[:value]` (XTTYPE_UINT16RC, mandatory, invertible) matches
 * the MSS option of SYN packets.
 */
import type { MatchModule } from '../types.js';
import { xtOptFcheck, type XtOptEntry } from '../xtopt.js';
import { parseUintRangeOpt } from '../numbers.js';
import { be16, byteOr0, headerPointer, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

export interface TcpmssData {
  /** Inclusive MSS range (`mss_min`, `mss_max`). */
  mssMin: number;
  mssMax: number;
  invert: boolean;
}

const TABLE: readonly XtOptEntry[] = [{ name: 'mss', id: 0, mand: true }];

export const tcpmss: MatchModule<TcpmssData> = {
  kind: 'match',
  name: 'tcpmss',
  proto: 6,
  options: [{ name: 'mss', arg: 1, invert: true }],
  init: () => ({ mssMin: 0, mssMax: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    const v = parseUintRangeOpt(arg!, 0xffffn, 'tcpmss', 'mss');
    d.mssMin = Number(v[0]);
    d.mssMax = v.length === 1 ? d.mssMin : Number(v[1]);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    xtOptFcheck('tcpmss', TABLE, seen.has('mss') ? 1 : 0);
  },
  save: (d) => `${d.invert ? ' !' : ''} --mss ${d.mssMin === d.mssMax ? d.mssMin : `${d.mssMin}:${d.mssMax}`}`,
  ...compatMatchFaces(tcpmssMt),
};


// --- reference semantics (xt_tcpmss.c tcpmss_mt, kernel 6.18) ---------------------------
/**
 * tcpmss_mt(): the first MSS option (kind 2, length 4) of the TCP header
 * in range, XOR the inversion; no MSS option gives the inversion. A header
 * or options cut short, or a data offset below 5, hotdrop. The fragment
 * offset is not looked at.
 */
function tcpmssMt(info: TcpmssData): MatchFn {
  return (par) => {
    const th = headerPointer(par, par.thoff, 20);
    const doff = th < 0 ? 0 : par.d[th + 12]! >> 4;
    if (th < 0 || doff < 5) {
      par.hotdrop = true;
      return false;
    }
    const optlen = doff * 4 - 20;
    if (!optlen) return info.invert;
    const op = headerPointer(par, par.thoff + 20, optlen);
    if (op < 0) {
      par.hotdrop = true;
      return false;
    }
    const d = par.d;
    for (let i = 0; i < optlen; ) {
      if (d[op + i] === 2 && optlen - i >= 4 && d[op + i + 1] === 4) {
        const mss = be16(d, op + i + 2);
        return (mss >= info.mssMin && mss <= info.mssMax) !== info.invert;
      }
      if (d[op + i]! < 2) i++;
      else i += byteOr0(par, op + i + 1) || 1;
    }
    return info.invert;
  };
}
