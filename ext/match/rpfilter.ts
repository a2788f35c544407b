/**
 * rpfilter match: libxt_rpfilter.c, kernel ipt_rpfilter.c / ip6t_rpfilter.c:
 * reverse-path lookup of the source address. Kernel `.hooks` = PREROUTING;
 * checkentry accepts only the raw and mangle tables.
 */
import type { MatchModule } from '../types.js';

/** XT_RPFILTER_* flags. */
interface RpfilterData {
  /** XT_RPFILTER_LOOSE: any interface may reach the source. */
  loose: boolean;
  /** XT_RPFILTER_VALID_MARK: use the packet mark in the lookup. */
  validmark: boolean;
  /** XT_RPFILTER_ACCEPT_LOCAL: accept local source addresses. */
  acceptLocal: boolean;
  /** XT_RPFILTER_INVERT: match packets that fail the check. */
  invert: boolean;
}

export const rpfilter: MatchModule<RpfilterData> = {
  kind: 'match',
  name: 'rpfilter',
  options: [
    { name: 'loose', arg: 0 },
    { name: 'validmark', arg: 0 },
    { name: 'accept-local', arg: 0 },
    { name: 'invert', arg: 0 },
  ],
  hooks: 1 << 0,
  init: () => ({ loose: false, validmark: false, acceptLocal: false, invert: false }),
  parse(d, opt) {
    if (opt === 'loose') d.loose = true;
    else if (opt === 'validmark') d.validmark = true;
    else if (opt === 'accept-local') d.acceptLocal = true;
    else d.invert = true;
  },
  save: (d) => (d.loose ? ' --loose' : '') + (d.validmark ? ' --validmark' : '') + (d.acceptLocal ? ' --accept-local' : '') + (d.invert ? ' --invert' : ''),
  check(_d, ctx) {
    if (ctx.table !== 'raw' && ctx.table !== 'mangle') {
      return `${ctx.family === 'ip' ? 'ipt' : 'ip6t'}_rpfilter: only valid in 'raw' or 'mangle' table, not '${ctx.table}'`;
    }
    return undefined;
  },
  lower: 'needs a reverse-path FIB lookup in the node\'s routes (rpfilter_lookup_reverse): the table engines do not see the node\'s FIB',
  reference: 'needs a reverse-path FIB lookup in the node\'s routes (rpfilter_lookup_reverse): the table engines do not see the node\'s FIB',
};

