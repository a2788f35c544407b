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
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import { M_LEN } from '../../vm/layout.js';
import type { XtState } from '../xtstate.js';

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
  lower: (c, m) => lowerCompatMatch(c, m, () => quotaMt(m.data as QuotaData, c.xtEnv().xt)),
  reference: (d, _family, backend, e) => asNftCompat(quotaMt(d, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * quota_mt_check() / quota_mt() (net/netfilter/xt_quota.c, kernel 6.18):
 * the rule's own counter (struct xt_quota_priv) starts at the quota; a
 * packet of skb->len bytes that fits is taken off it and matches; the first
 * one that does not fit empties it, so no later packet matches, however
 * small. Inverted: the other way round. The left-over is rule state: a
 * counter reset does not refill it (iptables-save still prints the quota
 * given). Above 2^53 bytes the left-over is kept inexactly, which no
 * replay's packets can notice.
 */
function quotaMt(q: QuotaData, xt: XtState): MatchFn {
  const priv = xt.ruleState({ quota: Number(q.quota) });
  return (par) => {
    const len = par.meta[M_LEN]!;
    if (priv.quota >= len) {
      priv.quota -= len;
      return !q.invert;
    }
    priv.quota = 0;
    return q.invert;
  };
}

