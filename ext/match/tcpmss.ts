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
  lower: 'needs the MSS option of a TCP SYN (tcpmss_mt)',
  reference: 'needs the MSS option of a TCP SYN (tcpmss_mt)',
};

