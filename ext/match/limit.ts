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
 *
 * Run time: iptables-legacy runs xt_limit (u32 credits earned per jiffy of
 * the node's clock, ext/xtstate.ts), iptables-nft loads nft_limit instead
 * (nanosecond tokens), so the two backends meter differently at the edges.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { cAtoi, parseUintOpt } from '../numbers.js';
import { emitLimit } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from '../lower.js';
import { lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import type { EngineOptions } from '../types.js';
import type { XtState } from '../xtstate.js';
import type { Family } from '../../core/ast.js';
import type { Backend } from '../../core/netfilter.js';
import { NFT_LIMIT_PKT_BURST_DEFAULT } from '../../vm/layout.js';

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

/**
 * xt_limit CREDITS_PER_JIFFY: POW2_BELOW32(0xFFFFFFFF / (HZ*60*60*24)), the
 * largest power of two keeping a day of credits in 32 bits (128 at HZ 250,
 * 32 at HZ 1000).
 */
function creditsPerJiffy(hz: number): number {
  const max = Math.floor(0xffffffff / (hz * 86400));
  let p = 1;
  while (p * 2 <= max) p *= 2;
  return p;
}

/** xt_limit user2credits(): u32 arithmetic. */
function user2credits(user: number, hz = 250): number {
  const hzCpj = hz * creditsPerJiffy(hz);
  if (user > Math.floor(0xffffffff / hzCpj)) return Math.imul(Math.floor(user / XT_LIMIT_SCALE), hzCpj) >>> 0;
  return Math.floor((user * hzCpj) / XT_LIMIT_SCALE) >>> 0;
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
  check(d, ctx) {
    // iptables-nft lowers limit to nft_limit (add_nft_limit), whose init has no such check
    if (ctx.backend === 'nft') return undefined;
    const prod = Math.imul(d.avg, d.burst) >>> 0;
    if (d.burst === 0 || user2credits(prod) < user2credits(d.avg)) {
      return `xt_limit: Overflow, try lower: ${d.avg}/${d.burst} (ERANGE)`;
    }
    return undefined;
  },
  lower: lowerLimit,
  reference: limitReference,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * limit (xt_limit) as iptables-nft's add_nft_limit: the average interval
 * (1/10000 s units) becomes rate/unit by walking day → hour → minute →
 * second and stopping before the unit where the rate would be too coarse;
 * the burst is kept; type packets.
 */
const MULT = [XT_LIMIT_SCALE * 24 * 60 * 60, XT_LIMIT_SCALE * 60 * 60, XT_LIMIT_SCALE * 60, XT_LIMIT_SCALE];

export function limitRate(avg: number): { rate: number; unit: number } {
  let i = 1;
  for (; i < MULT.length; i++) if (avg > MULT[i]! || Math.floor(MULT[i]! / avg) < MULT[i]! % avg) break;
  return { rate: Math.floor(MULT[i - 1]! / avg), unit: MULT[i - 1]! / XT_LIMIT_SCALE };
}

function lowerLimit(c: LowerCtx, m: MatchNode): void {
  const d = m.data as LimitData;
  if (c.legacy) {
    // iptables-legacy loads xt_limit itself: its jiffies credits, through the compat match.
    lowerCompatMatch(c, m, () => xtLimitMt(d, c.xtEnv().xt));
    return;
  }
  const { rate, unit } = limitRate(d.avg);
  emitLimit(c.b, rate, unit, d.burst);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * The legacy backend runs xt_limit (net/netfilter/xt_limit.c, kernel 6.18);
 * the nft backend runs what iptables-nft loads instead, nft_limit
 * (net/netfilter/nft_limit.c) with the rate and unit of add_nft_limit.
 */
function limitReference(d: LimitData, _family: Family, backend: Backend, e: EngineOptions): MatchFn {
  return limitBucket(d, backend, e.xt!);
}

/**
 * The bucket of one limit rule as the backend runs it: xt_limit's (whose
 * arithmetic ebtables' ebt_limit.c repeats) or nft_limit's with the rate
 * and unit of add_nft_limit (which ebtables-nft emits for its limit too).
 */
export function limitBucket(d: LimitData, backend: Backend, xt: XtState): () => boolean {
  if (backend === 'legacy') return xtLimitMt(d, xt);
  const { rate, unit } = limitRate(d.avg);
  return nftLimitPkts(rate, unit, d.burst, xt);
}

/**
 * limit_mt_check() and limit_mt(): one credit bucket per rule (struct
 * xt_limit_priv), u32 credits, CREDITS_PER_JIFFY credits earned per jiffy
 * since `prev` (the load time at first), capped at credit_cap = the full
 * bucket user2credits(avg * burst); a packet costs user2credits(avg). The
 * fast path returns false without touching `prev` when the credit is short
 * and no jiffy has passed.
 */
function xtLimitMt(r: LimitData, xt: XtState): () => boolean {
  const cpj = creditsPerJiffy(xt.hz);
  const creditCap = user2credits(Math.imul(r.avg, r.burst) >>> 0, xt.hz);
  const cost = user2credits(r.avg, xt.hz);
  const priv = xt.ruleState({ prev: -1, credit: creditCap });
  return () => {
    const now = xt.jiffies();
    if (priv.prev < 0) priv.prev = xt.loadJiffies();
    if (priv.credit < cost && priv.prev === now) return false;
    const increase = Math.imul((now - priv.prev) >>> 0, cpj) >>> 0;
    priv.prev = now;
    let next = (priv.credit + increase) >>> 0;
    if (next > creditCap) next = creditCap;
    if (next >= cost) {
      priv.credit = (next - cost) >>> 0;
      return true;
    }
    priv.credit = next;
    return false;
  };
}

/**
 * nft_limit_init() / nft_limit_pkts_eval() (type packets): tokens in
 * nanoseconds, tokens_max = nsecs / rate * burst (full at load), a packet
 * costs nsecs / rate; tokens grow by the nanoseconds since the last packet
 * up to tokens_max. Under the limit the expression goes on.
 */
function nftLimitPkts(rate: number, unit: number, burst: number, xt: XtState): () => boolean {
  const nsecs = unit * 1e9;
  const cost = Math.floor(nsecs / rate);
  const tokensMax = cost * (burst === 0 ? NFT_LIMIT_PKT_BURST_DEFAULT : burst);
  const priv = xt.ruleState({ tokens: tokensMax, last: -1 });
  return () => {
    const now = xt.nowNs;
    if (priv.last < 0) priv.last = xt.loadNs ?? now;
    let t = priv.tokens + (now - priv.last);
    if (t > tokensMax) t = tokensMax;
    priv.last = now;
    const delta = t - cost;
    if (delta >= 0) {
      priv.tokens = delta;
      return true;
    }
    priv.tokens = t;
    return false;
  };
}
