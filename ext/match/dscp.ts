/**
 * dscp match: iptables `extensions/libxt_dscp.c` (class names from
 * `dscp_helper.c`), kernel `net/netfilter/xt_dscp.c` (`dscp_mt_check`
 * refuses a value above 0x3f): the 6-bit DSCP field of the IPv4 TOS byte or
 * IPv6 traffic class. `--dscp` and `--dscp-class` exclude each other.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';
import { getDsfield, dsTest } from '../dsfield.js';

/** XT_DSCP_MAX */
export const DSCP_MAX = 0x3f;

interface DscpData {
  /** The DSCP value 0..63. */
  dscp: number;
  invert: boolean;
}

/** dscp_helper.c ds_classes[] */
const DS_CLASSES: ReadonlyArray<readonly [string, number]> = [
  ['CS0', 0x00], ['CS1', 0x08], ['CS2', 0x10], ['CS3', 0x18], ['CS4', 0x20], ['CS5', 0x28], ['CS6', 0x30], ['CS7', 0x38],
  ['BE', 0x00],
  ['AF11', 0x0a], ['AF12', 0x0c], ['AF13', 0x0e], ['AF21', 0x12], ['AF22', 0x14], ['AF23', 0x16],
  ['AF31', 0x1a], ['AF32', 0x1c], ['AF33', 0x1e], ['AF41', 0x22], ['AF42', 0x24], ['AF43', 0x26],
  ['EF', 0x2e],
];

/** `class_to_dscp()`: the first class whose name starts the text (case-insensitive). */
export function classToDscp(s: string): number {
  const lower = s.toLowerCase();
  for (const [name, v] of DS_CLASSES) if (lower.startsWith(name.toLowerCase())) return v;
  return fail(`Invalid DSCP value \`${s}'`);
}

export const hex02 = (v: number): string => '0x' + v.toString(16).padStart(2, '0');

const TABLE: readonly XtOptEntry[] = [
  { name: 'dscp', id: 0, excl: 2 },
  { name: 'dscp-class', id: 1, excl: 1 },
];

export const dscp: MatchModule<DscpData> = {
  kind: 'match',
  name: 'dscp',
  options: [
    { name: 'dscp', arg: 1, invert: true },
    { name: 'dscp-class', arg: 1, invert: true },
  ],
  init: () => ({ dscp: 0, invert: false }),
  parse(d, opt, arg, invert) {
    d.dscp = opt === 'dscp' ? parseUintOpt(arg!, 0, DSCP_MAX, 'dscp', opt) : classToDscp(arg!);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (!xflags) fail('DSCP match: Parameter --dscp is required', 'option');
    xtOptFcheck('dscp', TABLE, xflags);
  },
  save: (d) => `${d.invert ? ' !' : ''} --dscp ${hex02(d.dscp)}`,
  check: (d) => (d.dscp > DSCP_MAX ? `xt_dscp: dscp ${hex02(d.dscp)} out of range` : undefined),
  lower: lowerDscp,
  reference: dscpMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/** dscp (xt_dscp): the upper six bits of the DS field (ext/dsfield.ts). */
function lowerDscp(c: LowerCtx, m: MatchNode): void {
  const d = m.data as DscpData;
  dsTest(c, 0xfc, d.dscp << 2, d.invert);
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * dscp match: net/netfilter/xt_dscp.c dscp_mt() / dscp_mt6() (kernel 6.18).
 */
/** XT_DSCP_SHIFT */
const DSCP_SHIFT = 2;

function dscpMt(info: DscpData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => (getDsfield(par, family) >> DSCP_SHIFT === info.dscp) !== info.invert;
}
