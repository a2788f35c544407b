/**
 * addrtype match, revision 1: iptables `extensions/libxt_addrtype.c`,
 * kernel `net/netfilter/xt_addrtype.c` (`addrtype_mt_checkentry_v1`): the
 * routing type (RTN_LOCAL, RTN_UNICAST, ...) of the source and/or
 * destination address, optionally looked up only on the packet's input or
 * output interface.
 *
 * Kernel restrictions: --limit-iface-in and --limit-iface-out exclude each
 * other; --limit-iface-out is refused from PREROUTING/INPUT and
 * --limit-iface-in from OUTPUT/POSTROUTING; for IPv6 the BLACKHOLE,
 * BROADCAST and PROHIBIT..XRESOLVE types are refused.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../util.js';

/** rtn_names[]: bit i of a type mask is `1 << RTN_*` (linux/rtnetlink.h order). */
export const RTN_NAMES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'] as const;

export interface AddrtypeData {
  /** Bit mask of source address types (0: not tested). */
  source: number;
  /** Bit mask of destination address types (0: not tested). */
  dest: number;
  invSource: boolean;
  invDest: boolean;
  /** XT_ADDRTYPE_LIMIT_IFACE_IN / _OUT */
  limitIn: boolean;
  limitOut: boolean;
}

const TABLE: readonly XtOptEntry[] = [
  { name: 'src-type', id: 0 },
  { name: 'dst-type', id: 1 },
  { name: 'limit-iface-in', id: 2, excl: 1 << 3 },
  { name: 'limit-iface-out', id: 3, excl: 1 << 2 },
];

/** `parse_type()`: the first name the token is a (case-insensitive) prefix of. */
function parseType(tok: string): number | undefined {
  if (tok === '') return undefined;
  const t = tok.toUpperCase();
  const i = RTN_NAMES.findIndex((n) => n.startsWith(t));
  return i < 0 ? undefined : 1 << i;
}

/** `parse_types()`: a comma list. */
function parseTypes(arg: string): number {
  let mask = 0;
  let rest = arg;
  for (let comma = rest.indexOf(','); comma >= 0; comma = rest.indexOf(',')) {
    const m = parseType(rest.slice(0, comma));
    if (m === undefined) fail(`addrtype: bad type \`${rest}'`);
    mask |= m;
    rest = rest.slice(comma + 1);
  }
  const m = parseType(rest);
  if (m === undefined) fail(`addrtype: bad type "${rest}"`);
  return mask | m;
}

function typesToString(mask: number): string {
  return RTN_NAMES.filter((_, i) => mask & (1 << i)).join(',');
}

const BLACKHOLE = 1 << 6;
const PROHIBIT = 1 << 8;
const BROADCAST = 1 << 3;

export const addrtype: MatchModule<AddrtypeData> = {
  kind: 'match',
  name: 'addrtype',
  options: [
    { name: 'src-type', arg: 1, invert: true },
    { name: 'dst-type', arg: 1, invert: true },
    { name: 'limit-iface-in', arg: 0 },
    { name: 'limit-iface-out', arg: 0 },
  ],
  init: () => ({ source: 0, dest: 0, invSource: false, invDest: false, limitIn: false, limitOut: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'src-type':
        d.source |= parseTypes(arg!);
        if (invert) d.invSource = true;
        return;
      case 'dst-type':
        d.dest |= parseTypes(arg!);
        if (invert) d.invDest = true;
        return;
      case 'limit-iface-in':
        d.limitIn = true;
        return;
      case 'limit-iface-out':
        d.limitOut = true;
        return;
    }
  },
  final(_d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (!(xflags & 3)) fail('addrtype: you must specify --src-type or --dst-type', 'option');
    xtOptFcheck('addrtype', TABLE, xflags);
  },
  save(d) {
    let s = '';
    if (d.source) s += `${d.invSource ? ' !' : ''} --src-type ${typesToString(d.source)}`;
    if (d.dest) s += `${d.invDest ? ' !' : ''} --dst-type ${typesToString(d.dest)}`;
    if (d.limitIn) s += ' --limit-iface-in';
    if (d.limitOut) s += ' --limit-iface-out';
    return s;
  },
  check(d, ctx) {
    if (d.limitIn && d.limitOut) return 'xt_addrtype: both incoming and outgoing interface limitation cannot be selected';
    if (ctx.hookMask & ((1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN)) && d.limitOut) {
      return 'xt_addrtype: output interface limitation not valid in PREROUTING and INPUT';
    }
    if (ctx.hookMask & ((1 << Hook.POST_ROUTING) | (1 << Hook.LOCAL_OUT)) && d.limitIn) {
      return 'xt_addrtype: input interface limitation not valid in POSTROUTING and OUTPUT';
    }
    if (ctx.family === 'ip6') {
      const all = d.source | d.dest;
      if (all & BLACKHOLE) return 'xt_addrtype: ipv6 BLACKHOLE matching not supported';
      if (all >= PROHIBIT) return 'xt_addrtype: ipv6 PROHIBIT (THROW, NAT ..) matching not supported';
      if (all & BROADCAST) return 'xt_addrtype: ipv6 does not support BROADCAST matching';
    }
    return undefined;
  },
};
