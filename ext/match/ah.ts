/**
 * ah match (IPsec Authentication Header):
 *  - IPv4: iptables `extensions/libipt_ah.c`, kernel
 *    `net/ipv4/netfilter/ipt_ah.c` (`.proto = IPPROTO_AH`): `--ahspi` only;
 *  - IPv6: iptables `extensions/libip6t_ah.c`, kernel
 *    `net/ipv6/netfilter/ip6t_ah.c` (no `.proto`: the header is found in
 *    the extension header chain), with `--ahlen` and `--ahres`.
 *
 * `--ahspi` is XTTYPE_UINT32RC (see esp.ts); the full range
 * 0:4294967295 is saved only when inverted.
 */
import type { MatchModule } from '../types.js';
import { parseSpiRange, parseUintOptU32, saveSpiRange, spiHeaderMt, spiMatch, type EspData } from './esp.js';
import { be32, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { findExtHeader, ipv6Authlen, type FindOut } from '../ipv6hdr.js';
import { NEXTHDR_AUTH } from '../../vm/packet.js';

/** ip6t_ah */
interface Ah6Data extends EspData {
  /** `--ahlen`: header length to match (0 when not given). */
  hdrlen: number;
  /** IP6T_AH_INV_LEN */
  invLen: boolean;
  /** `--ahres`: the reserved field must be 0. */
  hdrres: boolean;
}

/** IPv4 ah (ipt_ah): only the SPI. */
export const ah: MatchModule<EspData> = {
  kind: 'match',
  name: 'ah',
  family: 'ip',
  proto: 51,
  options: [{ name: 'ahspi', arg: 1, invert: true }],
  init: () => ({ spis: [0, 0xffffffff], invSpi: false }),
  parse(d, _opt, arg, invert) {
    d.spis = parseSpiRange(arg!, 'ah', 'ahspi');
    if (invert) d.invSpi = true;
  },
  save: (d) => saveSpiRange('ahspi', d.spis, d.invSpi),
  ...compatMatchFaces((d: EspData) => spiHeaderMt(d, 12, 4)),
};

/** IPv6 ah (ip6t_ah): SPI, header length and reserved field. */
export const ah6: MatchModule<Ah6Data> = {
  kind: 'match',
  name: 'ah',
  family: 'ip6',
  options: [
    { name: 'ahspi', arg: 1, invert: true },
    { name: 'ahlen', arg: 1, invert: true },
    { name: 'ahres', arg: 0 },
  ],
  init: () => ({ spis: [0, 0xffffffff], invSpi: false, hdrlen: 0, invLen: false, hdrres: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'ahspi':
        d.spis = parseSpiRange(arg!, 'ah', 'ahspi');
        if (invert) d.invSpi = true;
        return;
      case 'ahlen':
        d.hdrlen = parseUintOptU32(arg!, 'ah', 'ahlen');
        if (invert) d.invLen = true;
        return;
      case 'ahres':
        d.hdrres = true;
        return;
    }
  },
  save(d) {
    let s = saveSpiRange('ahspi', d.spis, d.invSpi);
    if (d.hdrlen !== 0 || d.invLen) s += `${d.invLen ? ' !' : ''} --ahlen ${d.hdrlen}`;
    if (d.hdrres) s += ' --ahres';
    return s;
  },
  ...compatMatchFaces(ahMt6),
};


// --- reference semantics (ip6t_ah.c ah_mt6, kernel 6.18) --------------------------------
const findOut: FindOut = { offset: 0, fragoff: 0 };

/** ah_mt6(): the AH header found by ipv6_find_hdr; SPI, length ((hdrlen + 2) << 2) and reserved field. */
function ahMt6(info: Ah6Data): MatchFn {
  return (par) => {
    const h = findExtHeader(par, NEXTHDR_AUTH, 12, findOut);
    if (h < 0) return false;
    const d = par.d;
    const hdrlen = ipv6Authlen(d[h + 1]!);
    return spiMatch(info.spis, be32(d, h + 4), info.invSpi)
      && (!info.hdrlen || (info.hdrlen === hdrlen) !== info.invLen)
      && !(info.hdrres && (d[h + 2]! | d[h + 3]!) !== 0);
  };
}
