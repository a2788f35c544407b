/**
 * quota match: iptables extensions/libxt_quota.c, kernel net/netfilter/xt_quota.c.
 *
 * Data mirrors `struct xt_quota_info`: the byte quota (u64) and the
 * XT_QUOTA_INVERT flag (`! --quota N` matches once N bytes have passed).
 * Upstream iptables has no `--remain` (an Android-only patch). The kernel
 * accepts every value.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';

interface QuotaData {
  /** Bytes allowed (u64). */
  quota: bigint;
  invert: boolean;
}

export const quota: MatchModule<QuotaData> = {
  kind: 'match',
  name: 'quota',
  options: [{ name: 'quota', arg: 1, invert: true }],
  init: () => ({ quota: 0n, invert: false }),
  parse(d, opt, arg, invert) {
    const v = strtoulWhole(arg!, 0n, 0xffffffffffffffffn);
    if (v === undefined) fail(`quota: bad value for option "--${opt}", or out of range (0-18446744073709551615).`);
    d.quota = v;
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('quota')) fail('quota: option "--quota" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --quota ${d.quota}`,
  lower: 'needs the byte quota left, shared by every packet of the rule',
  reference: 'needs the byte quota left, shared by every packet of the rule',
};

