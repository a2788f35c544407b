/**
 * statistic match: iptables extensions/libxt_statistic.c, kernel
 * net/netfilter/xt_statistic.c.
 *
 * Data mirrors `struct xt_statistic_info`. Random mode matches with
 * probability `probability / 2^31` (iptables stores lround(2^31 * p) and
 * saves it back with 11 decimals, so `0.1` saves as `0.10000000009`); nth
 * mode matches every `every`-th packet starting at counter `packet`. The
 * kernel keeps `every - 1`, and the probability and `every - 1` share one
 * u32 (a union), which iptables' "0 <= p <= n-1" check reads whatever mode
 * was chosen. The inversion is one flag for the whole match, saved after
 * the mode (`--mode nth ! --every 5 --packet 2`); iptables-save always
 * prints `--packet` in nth mode.
 *
 * The kernel check accepts every value iptables can produce.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheckAlso, xtOptFlags, type XtOptEntryAlso } from '../xtopt.js';
import { cIsSpace, parseUintOpt } from '../numbers.js';
import { NFT_CMP_EQ, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_NEQ, NFT_NG_INCREMENTAL } from '../../vm/layout.js';
import { emitCmp, emitNumgen, emitRandomCmp } from '../../vm/expr/index.js';
import type { MatchNode } from '../../core/ast.js';
import { be, le32, type LowerCtx } from '../lower.js';
import type { MatchFn } from '../xt.js';
import type { Choices } from '../../vm/random.js';

interface StatisticData {
  /** XT_STATISTIC_MODE_RANDOM (0, also when --mode is missing) or _NTH (1). */
  mode: 'random' | 'nth';
  /** XT_STATISTIC_INVERT */
  invert: boolean;
  /** Random mode: match probability scaled by 2^31 (u32). */
  probability: number;
  /** Nth mode: n of `--every n` (the kernel stores n - 1). */
  every: number;
  /** Nth mode: initial counter value. */
  packet: number;
  /** The u32 the union holds: the last of probability / every - 1 written. */
  unionWord: number;
}

const O_MODE = 0;
const O_PROBABILITY = 1;
const O_EVERY = 2;
const O_PACKET = 3;
const F = (id: number) => 1 << id;

const TABLE: readonly XtOptEntryAlso[] = [
  { name: 'mode', id: O_MODE, mand: true },
  { name: 'probability', id: O_PROBABILITY, excl: F(O_EVERY) | F(O_PACKET) },
  { name: 'every', id: O_EVERY, excl: F(O_PROBABILITY), also: F(O_PACKET) },
  { name: 'packet', id: O_PACKET, excl: F(O_PROBABILITY), also: F(O_EVERY) },
];

/**
 * glibc strtod() over the whole text (XTTYPE_DOUBLE): decimal and hex
 * floats, inf/infinity/nan; undefined when something is left over.
 */
function cStrtodWhole(s: string): number | undefined {
  let i = 0;
  while (cIsSpace(s[i])) i++;
  const t = s.slice(i);
  let m: RegExpExecArray | null;
  if (/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(t)) return Number(t);
  if ((m = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?$/.exec(t))) {
    const int = m[2] ?? '';
    const frac = m[3] ?? '';
    if (int === '' && frac === '') return undefined;
    let v = 0;
    for (const c of int + frac) v = v * 16 + parseInt(c, 16);
    v *= 2 ** (Number(m[4] ?? '0') - 4 * frac.length);
    return m[1] === '-' ? -v : v;
  }
  if ((m = /^([+-]?)(inf|infinity)$/i.exec(t))) return m[1] === '-' ? -Infinity : Infinity;
  if (/^[+-]?nan(\([0-9a-zA-Z_]*\))?$/i.test(t)) return NaN;
  return undefined;
}

/** `%.11f` of p / 2^31, exactly, with glibc's round-half-to-even. */
function formatProbability(p: number): string {
  const scaled = BigInt(p) * 10n ** 11n;
  const den = 1n << 31n;
  let q = scaled / den;
  const r = scaled % den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) q += 1n;
  const str = q.toString().padStart(12, '0');
  return `${str.slice(0, -11)}.${str.slice(-11)}`;
}

export const statistic: MatchModule<StatisticData> = {
  kind: 'match',
  name: 'statistic',
  options: [
    { name: 'mode', arg: 1 },
    { name: 'probability', arg: 1, invert: true },
    { name: 'every', arg: 1, invert: true },
    { name: 'packet', arg: 1 },
  ],
  init: () => ({ mode: 'random', invert: false, probability: 0, every: 0, packet: 0, unionWord: 0 }),
  parse(d, opt, arg, invert) {
    if (invert) d.invert = true;
    const a = arg!;
    switch (opt) {
      case 'mode':
        if (a === 'random') d.mode = 'random';
        else if (a === 'nth') d.mode = 'nth';
        else fail(`Bad mode "${a}"`);
        return;
      case 'probability': {
        const v = cStrtodWhole(a);
        if (v === undefined || v < 0 || v > 1) fail(`statistic: bad value for option "--probability", or out of range (0-1).`);
        // lround(NaN) is LONG_MIN on x86-64: 0 once cut to u32
        d.probability = Number.isNaN(v) ? 0 : Math.round(0x80000000 * v) >>> 0;
        d.unionWord = d.probability;
        return;
      }
      case 'every':
        d.every = parseUintOpt(a, 1, 0xffffffff, 'statistic', opt);
        d.unionWord = (d.every - 1) >>> 0;
        return;
      case 'packet':
        d.packet = parseUintOpt(a, 0, 0xffffffff, 'statistic', opt);
        return;
    }
  },
  final(d, seen) {
    const xf = xtOptFlags(TABLE, seen);
    if (d.mode === 'random' && !(xf & F(O_PROBABILITY))) fail('--probability must be specified when using random mode', 'option');
    if (d.mode === 'nth' && !(xf & (F(O_EVERY) | F(O_PACKET)))) fail('--every and --packet must be specified when using nth mode', 'option');
    if (d.packet > d.unionWord) fail('the --packet p must be 0 <= p <= n-1');
    xtOptFcheckAlso('statistic', TABLE, xf);
  },
  save(d) {
    const inv = d.invert ? ' !' : '';
    if (d.mode === 'random') return ` --mode random${inv} --probability ${formatProbability(d.probability)}`;
    return ` --mode nth${inv} --every ${d.every} --packet ${d.packet}`;
  },
  lower: lowerStatistic,
  reference: statisticMt,
  random: statisticChoices,
};

/**
 * The two outcomes of random mode's draw: a draw of 0 is below every
 * non-zero probability word, 0x7fffffff below none short of 2^31; `p /
 * 2^31` of the draws (masked with 0x7fffffff) fall below the word. Which
 * outcome matches is the rule's own business (the inversion flips it).
 */
function statisticChoices(d: StatisticData): Choices | undefined {
  if (d.mode !== 'random') return undefined;
  const p = (d.unionWord >>> 0) / 0x80000000;
  return [0, p, 0x7fffffff, 1 - p];
}

// --- lowering (the VM engine) ------------------------------------------------
/**
 * statistic (xt_statistic).
 *  - nth: the rule's counter starts at (n-1) - p (libxt_statistic stores
 *    u.nth.count = every - packet, every already n-1) and steps modulo n;
 *    the packet matches when the new value is 0 (XOR invert): the k-th
 *    packet matches when k ≡ p+1 (mod n). An incrementing numgen (nft
 *    `numgen inc mod n`, first value 0) gives k-1 mod n, so the match is
 *    `numgen == p mod n`. n is the union word + 1, as the kernel reads it.
 *  - random: one draw per evaluation, `(draw & 0x7fffffff) < probability`
 *    XOR invert, as nft `meta random`: load, mask, hton, cmp lt (gte when
 *    inverted). The draw is the VM's seeded generator (same sequence as
 *    vm/random.ts for the same seed).
 */
function lowerStatistic(c: LowerCtx, m: MatchNode): void {
  const d = m.data as StatisticData;
  c.withReg(4, (r) => {
    if (d.mode === 'nth') {
      const n = Math.min(0xffffffff, (d.unionWord >>> 0) + 1);
      emitNumgen(c.b, r, NFT_NG_INCREMENTAL, n);
      emitCmp(c.b, d.invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(d.packet % n));
      return;
    }
    // meta load random, bitwise & 0x7fffffff, byteorder hton, cmp: one record (vm/expr/fused.ts)
    emitRandomCmp(c.b, r, d.invert ? NFT_CMP_GTE : NFT_CMP_LT, be(d.probability >>> 0, 4));
  });
}

// --- reference semantics (--engine reference) --------------------------------
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
function statisticMt(info: StatisticData): MatchFn {
  // u.random.probability and u.nth.every share one word of the union.
  const word = info.unionWord >>> 0;
  if (info.mode === 'random') {
    const choices = statisticChoices(info);
    return (par) => (((par.env.rng.draw(choices) & 0x7fffffff) >>> 0) < word) !== info.invert;
  }
  let count = (word - info.packet) >>> 0;
  return () => {
    count = count === word ? 0 : (count + 1) >>> 0;
    return (count === 0) !== info.invert;
  };
}
