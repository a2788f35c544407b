/**
 * limit match: iptables `extensions/libebt_limit.c`, kernel
 * `net/bridge/netfilter/ebt_limit.c`: a token bucket (rate and burst as
 * libxt_limit takes and prints them).
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { formatLimitRate, limitBucket, limitRate, parseRate } from '../../match/limit.js';
import { emitLimit } from '../../../vm/expr/limit.js';
import { wholeNumber } from '../values.js';

interface EbtLimitData {
  /** Period in units of 1/10000 s (EBT_LIMIT_SCALE). */
  avg: number;
  burst: number;
}

/** EBT_LIMIT_AVG "3/hour" and EBT_LIMIT_BURST 5. */
const DEFAULT_AVG = 10000 * 3600 / 3;

export const limit: EbtModule<EbtLimitData> = {
  kind: 'match',
  name: 'limit',
  options: [
    { name: 'limit', arg: 1 },
    { name: 'limit-burst', arg: 1 },
  ],
  init: () => ({ avg: DEFAULT_AVG, burst: 5 }),
  parse(d, opt, arg) {
    if (opt === 'limit') {
      const v = parseRate(arg!);
      if (v === undefined) fail(`bad rate \`${arg}'`);
      d.avg = v;
    } else {
      const v = wholeNumber(arg!, 10);
      if (v === undefined || v > 10000) fail(`bad --limit-burst \`${arg}'`);
      d.burst = v;
    }
  },
  save: (d) => ` --limit ${formatLimitRate(d.avg)} --limit-burst ${d.burst}`,
  // add_nft_limit(): `limit rate R/unit burst B type packets`
  lower: {
    rev: 0,
    native: (b, d) => {
      const { rate, unit } = limitRate(d.avg);
      emitLimit(b, rate, unit, d.burst);
    },
  },
  // ebt_limit_mt() (net/bridge/netfilter/ebt_limit.c), or nft_limit under ebtables-nft
  reference: { mt: (d, env) => limitBucket(d, env.backend, env.xt) },
};
