/**
 * limit match: iptables extensions/libxt_limit.c, kernel net/netfilter/xt_limit.c.
 *
 * Data mirrors `struct xt_rateinfo`: `avg` is the period between two
 * packets in units of 1/XT_LIMIT_SCALE seconds (`--limit 3/hour` →
 * 10000*3600/3), `burst` the bucket depth. iptables-save prints the rate
 * back by picking the coarsest unit whose integer rate loses nothing
 * (print_rate), so `--limit 60/min` saves as `1/sec`.
 *
 * The kernel (limit_mt_check) refuses a zero burst and an `avg * burst`
 * that overflows its 32-bit credit arithmetic (user2credits with
 * HZ * CREDITS_PER_JIFFY = 32000, true for HZ 250 and 1000): `--limit 1/day`
 * needs `--limit-burst 1`.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { cAtoi, parseUintOpt } from '../numbers.js';
import { emitLimit } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';

interface LimitData {
  /** Period between packets, in 1/10000 s (u32). */
  avg: number;
  /** Bucket size in packets (0..10000; default 5). */
  burst: number;
}

const XT_LIMIT_SCALE = 10000;
const XT_LIMIT_BURST = 5;

/** The time unit after `/` (any prefix of second, minute, hour, day; case-insensitive), in seconds. */
export function rateUnit(rate: string): number | undefined {
  const slash = rate.indexOf('/');
  if (slash < 0) return 1;
  const u = rate.slice(slash + 1).toLowerCase();
  if (u.length === 0) return undefined;
  for (const [name, mult] of [['second', 1], ['minute', 60], ['hour', 3600], ['day', 86400]] as const) {
    if (name.startsWith(u)) return mult;
  }
  return undefined;
}

/** libxt_limit parse_rate(): the period, or undefined for "bad rate". */
export function parseRate(rate: string): number | undefined {
  const mult = rateUnit(rate);
  if (mult === undefined) return undefined;
  const r = cAtoi(rate) >>> 0;
  if (r === 0) return undefined;
  const val = Math.floor(((XT_LIMIT_SCALE * mult) >>> 0) / r);
  if (val === 0) fail(`Rate too fast "${rate}"`);
  return val;
}

const RATES: ReadonlyArray<readonly [string, number]> = [
  ['day', XT_LIMIT_SCALE * 24 * 60 * 60],
  ['hour', XT_LIMIT_SCALE * 60 * 60],
  ['min', XT_LIMIT_SCALE * 60],
  ['sec', XT_LIMIT_SCALE],
];

/** libxt_limit print_rate(). */
export function formatLimitRate(period: number): string {
  if (period === 0) return 'inf';
  let i = 1;
  for (; i < RATES.length; i++) {
    const m = RATES[i]![1];
    if (period > m || Math.floor(m / period) < m % period) break;
  }
  const [name, mult] = RATES[i - 1]!;
  return `${Math.floor(mult / period)}/${name}`;
}

/** xt_limit user2credits(): u32 arithmetic, HZ * CREDITS_PER_JIFFY = 32000. */
function user2credits(user: number): number {
  const HZ_CPJ = 32000;
  if (user > Math.floor(0xffffffff / HZ_CPJ)) return Number((BigInt(Math.floor(user / XT_LIMIT_SCALE)) * BigInt(HZ_CPJ)) & 0xffffffffn);
  return Math.floor((user * HZ_CPJ) / XT_LIMIT_SCALE) >>> 0;
}

export const limit: MatchModule<LimitData> = {
  kind: 'match',
  name: 'limit',
  options: [
    { name: 'limit', arg: 1 },
    { name: 'limit-burst', arg: 1 },
  ],
  init: () => ({ avg: parseRate('3/hour')!, burst: XT_LIMIT_BURST }),
  parse(d, opt, arg) {
    if (opt === 'limit') {
      const v = parseRate(arg!);
      if (v === undefined) fail(`bad rate "${arg}"'`);
      d.avg = v;
    } else {
      d.burst = parseUintOpt(arg!, 0, 10000, 'limit', opt);
    }
  },
  save: (d) => ` --limit ${formatLimitRate(d.avg)}${d.burst !== XT_LIMIT_BURST ? ` --limit-burst ${d.burst}` : ''}`,
  check(d) {
    const prod = Math.imul(d.avg, d.burst) >>> 0;
    if (d.burst === 0 || user2credits(prod) < user2credits(d.avg)) {
      return `xt_limit: Overflow, try lower: ${d.avg}/${d.burst} (ERANGE)`;
    }
    return undefined;
  },
  lower: lowerLimit,
  reference: 'needs a token bucket per rule and a jiffies clock (xt_limit credit); the VM lowers it to nft limit',
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * limit (xt_limit) as iptables-nft's add_nft_limit: the average interval
 * (1/10000 s units) becomes rate/unit by walking day → hour → minute →
 * second and stopping before the unit where the rate would be too coarse;
 * the burst is kept; type packets.
 */
const MULT = [XT_LIMIT_SCALE * 24 * 60 * 60, XT_LIMIT_SCALE * 60 * 60, XT_LIMIT_SCALE * 60, XT_LIMIT_SCALE];

function limitRate(avg: number): { rate: number; unit: number } {
  let i = 1;
  for (; i < MULT.length; i++) if (avg > MULT[i]! || Math.floor(MULT[i]! / avg) < MULT[i]! % avg) break;
  return { rate: Math.floor(MULT[i - 1]! / avg), unit: MULT[i - 1]! / XT_LIMIT_SCALE };
}

function lowerLimit(c: LowerCtx, m: MatchNode): void {
  const d = m.data as LimitData;
  const { rate, unit } = limitRate(d.avg);
  emitLimit(c.b, rate, unit, d.burst);
}
