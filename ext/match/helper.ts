/**
 * helper match: libxt_helper.c, kernel xt_helper.c: the connection's (or its
 * master's) conntrack helper name equals `--helper` (any helper for "").
 * No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { saveString } from '../save.js';

/** struct xt_helper_info. */
interface HelperData {
  /** Helper name (at most 29 bytes, as `char name[30]` keeps it). */
  name: string;
  invert: boolean;
}

export const helper: MatchModule<HelperData> = {
  kind: 'match',
  name: 'helper',
  options: [{ name: 'helper', arg: 1, invert: true }],
  init: () => ({ name: '', invert: false }),
  parse(d, _opt, arg, invert) {
    // XTOPT_PUT into char name[30]: longer names are cut
    d.name = Buffer.from(arg!, 'utf8').subarray(0, 29).toString('latin1');
    d.invert = invert;
  },
  final(_d, seen) {
    if (!seen.has('helper')) fail('helper: option "--helper" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --helper ${saveString(d.name)}`,
  lower: 'needs the conntrack helper of the packet\'s connection (nfct_help)',
  reference: 'needs the conntrack helper of the packet\'s connection (nfct_help)',
};

