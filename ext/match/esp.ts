/**
 * esp match: iptables `extensions/libxt_esp.c`, kernel
 * `net/netfilter/xt_esp.c` (`.proto = IPPROTO_ESP`, both families), and
 * the u32 range helpers the ah, ipcomp, frag and rt matches share.
 *
 * The SPI option is XTTYPE_UINT32RC: `spi`, `lo:hi`, `:hi`, `lo:`, `:`; a
 * single value stands for `spi:spi`. iptables 1.8.13 saves nothing for the
 * full range 0:4294967295 unless it is inverted.
 */
import type { MatchModule } from '../types.js';
import { parseUintOpt, parseUintRangeOpt } from '../numbers.js';
import { be32, l4Header, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

/** An inclusive u32 SPI range (`struct xt_esp.spis` and friends). */
export type SpiRange = [number, number];

export interface EspData {
  /** SPI range; [0, 0xffffffff] matches every SPI. */
  spis: SpiRange;
  /** XT_ESP_INV_SPI */
  invSpi: boolean;
}

/** XTTYPE_UINT32RC with the `nvals == 1` fix-up the extensions do. */
export function parseSpiRange(s: string, ext: string, opt: string): SpiRange {
  const v = parseUintRangeOpt(s, 0xffffffffn, ext, opt);
  const lo = Number(v[0]);
  return [lo, v.length === 1 ? lo : Number(v[1])];
}

/** The save form of a u32 range option (skipped for the full, not inverted range). */
export function saveSpiRange(opt: string, r: SpiRange, inv: boolean): string {
  if (r[0] === 0 && r[1] === 0xffffffff && !inv) return '';
  return `${inv ? ' !' : ''} --${opt} ${r[0] === r[1] ? r[0] : `${r[0]}:${r[1]}`}`;
}

export const esp: MatchModule<EspData> = {
  kind: 'match',
  name: 'esp',
  proto: 50,
  options: [{ name: 'espspi', arg: 1, invert: true }],
  init: () => ({ spis: [0, 0xffffffff], invSpi: false }),
  parse(d, _opt, arg, invert) {
    d.spis = parseSpiRange(arg!, 'esp', 'espspi');
    if (invert) d.invSpi = true;
  },
  save: (d) => saveSpiRange('espspi', d.spis, d.invSpi),
  ...compatMatchFaces(espMt),
};

/** XTTYPE_UINT32 (0-4294967295). */
export function parseUintOptU32(s: string, ext: string, opt: string): number {
  return parseUintOpt(s, 0, 0xffffffff, ext, opt);
}


// --- reference semantics (xt_esp.c esp_mt, kernel 6.18) ---------------------------------
/** spi_match(): the SPI in [min, max], XOR the inversion. */
export function spiMatch(r: SpiRange, spi: number, invert: boolean): boolean {
  return (spi >= r[0] && spi <= r[1]) !== invert;
}

/**
 * The SPI at `spiOff` of a `len`-byte header at the transport offset (esp:
 * 8 bytes, SPI first; ipv4 ah: 12 bytes, SPI at 4): never a later fragment;
 * a header cut short hotdrops.
 */
export function spiHeaderMt(info: EspData, len: number, spiOff: number): MatchFn {
  return (par) => {
    const h = l4Header(par, len);
    return h >= 0 && spiMatch(info.spis, be32(par.d, h + spiOff), info.invSpi);
  };
}

function espMt(info: EspData): MatchFn {
  return spiHeaderMt(info, 8, 0);
}
