/**
 * DSCP target: iptables `extensions/libxt_DSCP.c`, kernel
 * `net/netfilter/xt_DSCP.c` (`dscp_tg_check` refuses a value above 0x3f,
 * `.table` = mangle): set the DSCP field to a value or DiffServ class.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import { DSCP_MAX, classToDscp, hex02 } from '../match/dscp.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { getDsfield, ipv4ChangeDsfield, ipv6ChangeDsfield } from '../dsfield.js';
import { NF_DROP } from '../../core/netfilter.js';
import type { Family } from '../../core/ast.js';

interface DscpTargetData {
  /** The DSCP value 0..63. */
  dscp: number;
}

const TABLE: readonly XtOptEntry[] = [
  { name: 'set-dscp', id: 0, excl: 2 },
  { name: 'set-dscp-class', id: 1, excl: 1 },
];

export const DSCP: TargetModule<DscpTargetData> = {
  kind: 'target',
  name: 'DSCP',
  tables: ['mangle'],
  options: TABLE.map((o) => ({ name: o.name, arg: 1 as const })),
  init: () => ({ dscp: 0 }),
  parse(d, opt, arg) {
    d.dscp = opt === 'set-dscp' ? parseUintOpt(arg!, 0, DSCP_MAX, 'DSCP', opt) : classToDscp(arg!);
  },
  final(_d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (!xflags) fail('DSCP target: Parameter --set-dscp is required', 'option');
    xtOptFcheck('DSCP', TABLE, xflags);
  },
  save: (d) => ` --set-dscp ${hex02(d.dscp)}`,
  check: (d) => (d.dscp > DSCP_MAX ? `xt_DSCP: dscp ${hex02(d.dscp)} out of range` : undefined),
  ...compatTargetFaces(dscpTg),
};


// --- reference semantics (xt_DSCP.c dscp_tg / dscp_tg6, kernel 6.18) --------------------
/** dscp_tg(): the upper six bits of the DS field become the DSCP, the ECN bits stay (XT_DSCP_ECN_MASK). */
function dscpTg(info: DscpTargetData, family: Family): TargetFn {
  return (par) => {
    if (getDsfield(par, family) >> 2 !== info.dscp) {
      if (par.end - par.nh < (family === 'ip' ? 20 : 40)) return NF_DROP;
      if (family === 'ip') ipv4ChangeDsfield(par.d, par.nh, 0x03, info.dscp << 2);
      else ipv6ChangeDsfield(par.d, par.nh, 0x03, info.dscp << 2);
    }
    return XT_CONTINUE;
  };
}
