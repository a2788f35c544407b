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
  lower: 'needs the SPI of the ESP header (xt_esp)',
  reference: 'needs the SPI of the ESP header (xt_esp)',
};

/** XTTYPE_UINT32 (0-4294967295). */
export function parseUintOptU32(s: string, ext: string, opt: string): number {
  return parseUintOpt(s, 0, 0xffffffff, ext, opt);
}

