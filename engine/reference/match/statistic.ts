/**
 * statistic match: net/netfilter/xt_statistic.c statistic_mt() (kernel 6.18).
 *  - random: (get_random_u32() & 0x7fffffff) < probability, one draw from
 *    the engine's seeded generator (vm/random.ts) per evaluation;
 *  - nth: a counter per rule, started by checkentry at u.nth.count
 *    (= every - packet as userspace stores it) and stepped per evaluation:
 *    next = cur == every ? 0 : cur + 1; the packet matches when next is 0.
 * Either result is XORed with XT_STATISTIC_INVERT. The nth counter is rule
 * state: zeroing the counters does not reset it (as in the kernel).
 */
import type { StatisticData } from '../../../ext/match/statistic.js';
import type { MatchFn } from '../../../ext/xt.js';

export function statistic(info: StatisticData): MatchFn {
  // u.random.probability and u.nth.every share one word of the union.
  const word = info.unionWord >>> 0;
  if (info.mode === 'random') {
    return (par) => (((par.env.rng.next() & 0x7fffffff) >>> 0) < word) !== info.invert;
  }
  let count = (word - info.packet) >>> 0;
  return () => {
    count = count === word ? 0 : (count + 1) >>> 0;
    return (count === 0) !== info.invert;
  };
}
