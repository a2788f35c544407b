/**
 * frag match: iptables `extensions/libip6t_frag.c`, kernel
 * `net/ipv6/netfilter/ip6t_frag.c` (IPv6 only; the kernel checks only the
 * inversion flags).
 *
 * Options: `--fragid id[:id]` (XTTYPE_UINT32RC), `--fraglen` (u32, not
 * evaluated by the kernel), `--fragres`, `--fragfirst`, and one of
 * `--fragmore` / `--fraglast`.
 */
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseSpiRange, parseUintOptU32, saveSpiRange, type SpiRange } from './esp.js';
import { be16, be32, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { findExtHeader, type FindOut } from '../ipv6hdr.js';
import { NEXTHDR_FRAGMENT } from '../../vm/packet.js';
import { spiMatch } from './esp.js';

interface FragData {
  /** Fragment identification range; [0, 0xffffffff] when not given. */
  ids: SpiRange;
  invIds: boolean;
  /** `--fraglen` value, when given. */
  hdrlen: number | undefined;
  invLen: boolean;
  /** IP6T_FRAG_RES: reserved fields must be zero. */
  res: boolean;
  /** IP6T_FRAG_FST: first fragment (offset 0). */
  first: boolean;
  /** IP6T_FRAG_MF: more fragments follow. */
  more: boolean;
  /** IP6T_FRAG_NMF: last fragment. */
  last: boolean;
}

const O_MORE = 4;
const O_LAST = 5;
const TABLE: readonly XtOptEntry[] = [
  { name: 'fragid', id: 0 },
  { name: 'fraglen', id: 1 },
  { name: 'fragres', id: 2 },
  { name: 'fragfirst', id: 3 },
  { name: 'fragmore', id: O_MORE, excl: 1 << O_LAST },
  { name: 'fraglast', id: O_LAST, excl: 1 << O_MORE },
];

export const frag: MatchModule<FragData> = {
  kind: 'match',
  name: 'frag',
  family: 'ip6',
  options: [
    { name: 'fragid', arg: 1, invert: true },
    { name: 'fraglen', arg: 1, invert: true },
    { name: 'fragres', arg: 0 },
    { name: 'fragfirst', arg: 0 },
    { name: 'fragmore', arg: 0 },
    { name: 'fraglast', arg: 0 },
  ],
  init: () => ({ ids: [0, 0xffffffff], invIds: false, hdrlen: undefined, invLen: false, res: false, first: false, more: false, last: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'fragid':
        d.ids = parseSpiRange(arg!, 'frag', 'fragid');
        if (invert) d.invIds = true;
        return;
      case 'fraglen':
        d.hdrlen = parseUintOptU32(arg!, 'frag', 'fraglen');
        if (invert) d.invLen = true;
        return;
      case 'fragres':
        d.res = true;
        return;
      case 'fragfirst':
        d.first = true;
        return;
      case 'fragmore':
        d.more = true;
        return;
      case 'fraglast':
        d.last = true;
        return;
    }
  },
  final(_d, seen) {
    xtOptFcheck('frag', TABLE, xtOptFlags(TABLE, seen));
  },
  save(d) {
    let s = saveSpiRange('fragid', d.ids, d.invIds);
    if (d.hdrlen !== undefined) s += `${d.invLen ? ' !' : ''} --fraglen ${d.hdrlen}`;
    if (d.res) s += ' --fragres';
    if (d.first) s += ' --fragfirst';
    if (d.more) s += ' --fragmore';
    if (d.last) s += ' --fraglast';
    return s;
  },
  ...compatMatchFaces(fragMt6),
};


// --- reference semantics (ip6t_frag.c frag_mt6, kernel 6.18) ----------------------------
const findOut: FindOut = { offset: 0, fragoff: 0 };
const IP6_MF = 0x0001;

/**
 * frag_mt6(): the fragment header found by ipv6_find_hdr: identification,
 * reserved bits, first / more / last. `--fraglen` is parsed and saved but the
 * kernel does not test it.
 */
function fragMt6(info: FragData): MatchFn {
  return (par) => {
    const h = findExtHeader(par, NEXTHDR_FRAGMENT, 8, findOut);
    if (h < 0) return false;
    const d = par.d;
    const fo = be16(d, h + 2);
    return spiMatch(info.ids, be32(d, h + 4), info.invIds)
      && !(info.res && (d[h + 1]! !== 0 || (fo & 0x6) !== 0))
      && !(info.first && (fo & ~0x7) !== 0)
      && !(info.more && (fo & IP6_MF) === 0)
      && !(info.last && (fo & IP6_MF) !== 0);
  };
}
