/**
 * ipcomp match (IP Payload Compression): iptables
 * `extensions/libxt_ipcomp.c`, kernel `net/netfilter/xt_ipcomp.c`
 * (`.proto = IPPROTO_COMP`, both families).
 *
 * `--ipcompspi` is XTTYPE_UINT32RC (see esp.ts) and `--compres` sets the
 * reserved-field flag, which the kernel ignores.
 */
import type { MatchModule } from '../types.js';
import { parseSpiRange, saveSpiRange, spiMatch, type EspData } from './esp.js';
import { be16, l4Header, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

interface IpcompData extends EspData {
  /** `--compres` (hdrres); the kernel ignores it. */
  hdrres: boolean;
}

/**
 * ipcomp: libxt_ipcomp.c has no init(), so without `--ipcompspi` the range
 * stays 0:0 and is saved as `--ipcompspi 0`.
 */
export const ipcomp: MatchModule<IpcompData> = {
  kind: 'match',
  name: 'ipcomp',
  proto: 108,
  options: [
    { name: 'ipcompspi', arg: 1, invert: true },
    { name: 'compres', arg: 0 },
  ],
  init: () => ({ spis: [0, 0], invSpi: false, hdrres: false }),
  parse(d, opt, arg, invert) {
    if (opt === 'compres') {
      d.hdrres = true;
      return;
    }
    d.spis = parseSpiRange(arg!, 'ipcomp', 'ipcompspi');
    if (invert) d.invSpi = true;
  },
  save(d) {
    let s = saveSpiRange('ipcompspi', d.spis, d.invSpi);
    if (d.hdrres) s += ' --compres';
    return s;
  },
  ...compatMatchFaces(compMt),
};


// --- reference semantics (xt_ipcomp.c comp_mt, kernel 6.18) -----------------------------
/** comp_mt(): the 16-bit CPI of the 4-byte header at the transport offset (`--compres` is not tested). */
function compMt(info: IpcompData): MatchFn {
  return (par) => {
    const h = l4Header(par, 4);
    return h >= 0 && spiMatch(info.spis, be16(par.d, h + 2), info.invSpi);
  };
}
