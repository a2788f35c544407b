/**
 * mh match (IPv6 Mobility Header): iptables `extensions/libip6t_mh.c`,
 * kernel `net/ipv6/netfilter/ip6t_mh.c` (IPv6 only, `.proto =
 * IPPROTO_MH`: the rule needs `-p mh` (135), not inverted).
 *
 * `[!] --mh-type type[:type]`: a type name (case-insensitive, a unique-ish
 * prefix: the first name the text starts, unless another name equals it)
 * or a number 0-255; an empty bound is 0 or 255. Saved numerically.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { l4Header, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';

interface MhData {
  /** Inclusive type range; [0, 255] matches every type. */
  types: [number, number];
  invert: boolean;
}

/** mh_names[] (names and their aliases, in table order). */
const MH_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['binding-refresh-request', 0], ['brr', 0],
  ['home-test-init', 1], ['hoti', 1],
  ['careof-test-init', 2], ['coti', 2],
  ['home-test', 3], ['hot', 3],
  ['careof-test', 4], ['cot', 4],
  ['binding-update', 5], ['bu', 5],
  ['binding-acknowledgement', 6], ['ba', 6],
  ['binding-error', 7], ['be', 7],
];

function nameToType(s: string): number {
  const low = s.toLowerCase();
  let match = -1;
  MH_NAMES.forEach(([n], i) => {
    if (n.startsWith(low) && (match < 0 || n.length === low.length)) match = i;
  });
  if (match >= 0) return MH_NAMES[match]![1];
  const v = strtoulWhole(s, 0n, 255n);
  if (v === undefined) fail(`Invalid MH type \`${s}'`);
  return Number(v);
}

function parseTypes(s: string): [number, number] {
  const c = s.indexOf(':');
  if (c < 0) {
    const t = nameToType(s);
    return [t, t];
  }
  const a = s.slice(0, c);
  const b = s.slice(c + 1);
  const lo = a ? nameToType(a) : 0;
  const hi = b ? nameToType(b) : 0xff;
  if (lo > hi) fail('Invalid MH type range (min > max)');
  return [lo, hi];
}

export const mh: MatchModule<MhData> = {
  kind: 'match',
  name: 'mh',
  family: 'ip6',
  proto: 135,
  options: [{ name: 'mh-type', arg: 1, invert: true }],
  init: () => ({ types: [0, 0xff], invert: false }),
  parse(d, _opt, arg, invert) {
    d.types = parseTypes(arg!);
    if (invert) d.invert = true;
  },
  save(d) {
    const [lo, hi] = d.types;
    if (lo === 0 && hi === 0xff && !d.invert) return '';
    return `${d.invert ? ' !' : ''} --mh-type ${lo === hi ? lo : `${lo}:${hi}`}`;
  },
  ...compatMatchFaces(mhMt6),
};


// --- reference semantics (ip6t_mh.c mh_mt6, kernel 6.18) --------------------------------
const IPPROTO_NONE = 59;

/** mh_mt6(): never a later fragment; the 6-byte header at the transport offset, whose payload protocol must be IPPROTO_NONE (else hotdrop); the type in range. */
function mhMt6(info: MhData): MatchFn {
  return (par) => {
    const h = l4Header(par, 6);
    if (h < 0) return false;
    if (par.d[h] !== IPPROTO_NONE) {
      par.hotdrop = true;
      return false;
    }
    const t = par.d[h + 2]!;
    return (t >= info.types[0] && t <= info.types[1]) !== info.invert;
  };
}
