/**
 * rateest match: iptables `extensions/libxt_rateest.c`, kernel
 * `net/netfilter/xt_rateest.c` (`struct xt_rateest_match_info`): compare the
 * rate of a RATEEST estimator with a value (absolute mode) or with another
 * estimator (relative mode, `--rateest2`), optionally as differences
 * (`--rateest-delta`).
 *
 * An old-style (getopt) parser: `--rateest-bps1/-pps1/-bps2/-pps2` (and the
 * absolute-mode aliases `--rateest-bps`/`--rateest-pps` for the second value)
 * take the next word as an optional rate when it does not start with `-` or
 * `!`; `--rateest` is an alias of `--rateest1`. Only `--rateest-lt/-gt/-eq`
 * can be inverted. Rates are bits per second with tc's suffixes (a bare
 * number is bytes/s) stored in bytes/s; packet rates are u32.
 *
 * Saved as ` [--rateest-delta] --rateest NAME` (absolute) or
 * ` --rateest1 NAME`, then for bps and for pps:
 * `[ --rateest-X1 V1] [!] --rateest-MODE --rateest-X[2] [V2]` (with delta
 * the numbered forms; V2 is left out in relative mode without delta), then
 * ` --rateest2 NAME` in relative mode. Rates print as `%.0fbit`, `Kbit`
 * from 1 Mbit/s, `Mbit` from 1 Gbit/s.
 *
 * Kernel checkentry: exactly one of absolute/relative, bps or pps, a mode;
 * the estimators must exist (RATEEST rules); nfvm only refuses an empty
 * name, since estimators are created by rules of any table and family.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';
import { strtodPrefix } from '../target/RATEEST.js';
import { NfvmError } from '../../core/errors.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { NotModelled, type MatchFn } from '../xt.js';
import type { XtState } from '../xtstate.js';
import { rateestLookup } from '../rateest.js';

const XT_RATEEST_MATCH_INVERT = 1 << 0;
const XT_RATEEST_MATCH_ABS = 1 << 1;
const XT_RATEEST_MATCH_REL = 1 << 2;
const XT_RATEEST_MATCH_DELTA = 1 << 3;
const XT_RATEEST_MATCH_BPS = 1 << 4;
const XT_RATEEST_MATCH_PPS = 1 << 5;

const XT_RATEEST_MATCH_NONE = 0;
const XT_RATEEST_MATCH_EQ = 1;
const XT_RATEEST_MATCH_LT = 2;
const XT_RATEEST_MATCH_GT = 3;

interface RateestData {
  /** First estimator name (at most 15 bytes). */
  name1: string;
  /** Second estimator name (relative mode). */
  name2: string;
  /** XT_RATEEST_MATCH_* flag bits. */
  flags: number;
  /** XT_RATEEST_MATCH_EQ/LT/GT. */
  mode: number;
  /** Rates in bytes per second. */
  bps1: number;
  pps1: number;
  bps2: number;
  pps2: number;
  /** The parser's option bits (1 << option id) for its "twice" checks. */
  seen: number;
}

const enum O {
  RATEEST1,
  RATEEST2,
  BPS1,
  PPS1,
  BPS2,
  PPS2,
  DELTA,
  LT,
  GT,
  EQ,
}

const OPTION_IDS: ReadonlyMap<string, O> = new Map([
  ['rateest1', O.RATEEST1],
  ['rateest', O.RATEEST1],
  ['rateest2', O.RATEEST2],
  ['rateest-bps1', O.BPS1],
  ['rateest-pps1', O.PPS1],
  ['rateest-bps2', O.BPS2],
  ['rateest-pps2', O.PPS2],
  ['rateest-bps', O.BPS2],
  ['rateest-pps', O.PPS2],
  ['rateest-delta', O.DELTA],
  ['rateest-lt', O.LT],
  ['rateest-gt', O.GT],
  ['rateest-eq', O.EQ],
]);

/** iproute's rate suffixes: bits per second per unit. */
const SUFFIXES: ReadonlyArray<readonly [string, number]> = [
  ['bit', 1], ['Kibit', 1024], ['kbit', 1000], ['mibit', 1024 * 1024], ['mbit', 1000000],
  ['gibit', 1024 * 1024 * 1024], ['gbit', 1000000000], ['tibit', 1024 ** 4], ['tbit', 1000000000000],
  ['Bps', 8], ['KiBps', 8 * 1024], ['KBps', 8000], ['MiBps', 8 * 1024 * 1024], ['MBps', 8000000],
  ['GiBps', 8 * 1024 ** 3], ['GBps', 8000000000], ['TiBps', 8 * 1024 ** 4], ['TBps', 8000000000000],
];

const toU32 = (v: number) => Number(BigInt.asUintN(32, BigInt(Math.trunc(Number.isFinite(v) ? v : 0))));

/** rateest_get_rate: bytes per second, or undefined. */
function getRate(s: string): number | undefined {
  const r = strtodPrefix(s);
  if (!r) return undefined;
  if (r.rest === '') return toU32(r.value / 8);
  const suf = SUFFIXES.find(([n]) => n.toLowerCase() === r.rest.toLowerCase());
  return suf ? toU32((r.value * suf[1]) / 8) : undefined;
}

/** printf("%.0f") of a double: round half to even. */
function fmt0(v: number): string {
  const f = Math.floor(v);
  const diff = v - f;
  const r = diff > 0.5 || (diff === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return String(r);
}

function printRate(rate: number): string {
  const tmp = rate * 8;
  if (tmp >= 1000.0 * 1000000.0) return ` ${fmt0(tmp / 1000000.0)}Mbit`;
  if (tmp >= 1000.0 * 1000.0) return ` ${fmt0(tmp / 1000.0)}Kbit`;
  return ` ${fmt0(tmp)}bit`;
}

const NAMES = ['rateest1', 'rateest2', 'rateest-bps1', 'rateest-pps1', 'rateest-bps2', 'rateest-pps2', 'rateest-delta'];

export const rateest: MatchModule<RateestData> = {
  kind: 'match',
  name: 'rateest',
  options: [...OPTION_IDS.keys()].map((name) => ({
    name,
    arg: name === 'rateest1' || name === 'rateest' || name === 'rateest2' ? (1 as const) : (0 as const),
    invert: true,
    multi: true,
    ...(/^rateest-[bp]ps[12]?$/.test(name) ? { optionalExtra: true } : {}),
  })),
  init: () => ({ name1: '', name2: '', flags: 0, mode: XT_RATEEST_MATCH_NONE, bps1: 0, pps1: 0, bps2: 0, pps2: 0, seen: 0 }),
  parse(d, opt, arg, invert, _ctx, extra) {
    const c = OPTION_IDS.get(opt)!;
    const once = (what: string) => {
      if (d.seen & (1 << c)) fail(`rateest: can't specify ${what} twice`, 'option');
      d.seen |= 1 << c;
    };
    const noInv = (what: string) => {
      if (invert) fail(`rateest: ${what} can't be inverted`, 'option');
    };
    const val = extra[0];
    switch (c) {
      case O.RATEEST1:
      case O.RATEEST2: {
        noInv('rateest');
        once(`--${NAMES[c]}`);
        const name = Buffer.from(arg!, 'utf8').subarray(0, 15).toString('utf8');
        if (c === O.RATEEST1) d.name1 = name;
        else {
          d.name2 = name;
          d.flags |= XT_RATEEST_MATCH_REL;
        }
        return;
      }
      case O.BPS1:
      case O.BPS2: {
        noInv('rateest-bps');
        once(`--${NAMES[c]}`);
        d.flags |= XT_RATEEST_MATCH_BPS;
        if (val === undefined) return;
        const r = getRate(val);
        if (r === undefined) fail(`rateest: could not parse rate \`${val}'`);
        if (c === O.BPS1) d.bps1 = r;
        else d.bps2 = r;
        return;
      }
      case O.PPS1:
      case O.PPS2: {
        noInv('rateest-pps');
        once(`--${NAMES[c]}`);
        d.flags |= XT_RATEEST_MATCH_PPS;
        if (val === undefined) return;
        const r = strtoulWhole(val, 0n, 0xffffffffn);
        if (r === undefined) fail(`rateest: could not parse pps \`${val}'`);
        if (c === O.PPS1) d.pps1 = Number(r);
        else d.pps2 = Number(r);
        return;
      }
      case O.DELTA:
        noInv('rateest-delta');
        once('--rateest-delta');
        d.flags |= XT_RATEEST_MATCH_DELTA;
        return;
      case O.LT:
      case O.GT:
      case O.EQ:
        once('lt/gt/eq');
        d.mode = c === O.LT ? XT_RATEEST_MATCH_LT : c === O.GT ? XT_RATEEST_MATCH_GT : XT_RATEEST_MATCH_EQ;
        if (invert) d.flags |= XT_RATEEST_MATCH_INVERT;
        return;
    }
  },
  final(d, seen) {
    if (seen.size === 0) fail('rateest match: you need to specify some flags', 'option');
    if (!(d.flags & XT_RATEEST_MATCH_REL)) d.flags |= XT_RATEEST_MATCH_ABS;
  },
  save(d) {
    const delta = (d.flags & XT_RATEEST_MATCH_DELTA) !== 0;
    const rel = (d.flags & XT_RATEEST_MATCH_REL) !== 0;
    const mode = () =>
      (d.flags & XT_RATEEST_MATCH_INVERT ? ' !' : '') +
      (d.mode === XT_RATEEST_MATCH_EQ ? ' --rateest-eq' : d.mode === XT_RATEEST_MATCH_LT ? ' --rateest-lt' : d.mode === XT_RATEEST_MATCH_GT ? ' --rateest-gt' : '');
    let s = delta ? ' --rateest-delta' : '';
    s += rel ? ` --rateest1 ${d.name1}` : ` --rateest ${d.name1}`;
    if (d.flags & XT_RATEEST_MATCH_BPS) {
      if (delta) s += ` --rateest-bps1${printRate(d.bps1)}`;
      s += mode();
      s += delta ? ' --rateest-bps2' : ' --rateest-bps';
      if (delta || !rel) s += printRate(d.bps2);
    }
    if (d.flags & XT_RATEEST_MATCH_PPS) {
      if (delta) s += ` --rateest-pps1 ${d.pps1}`;
      s += mode();
      s += delta ? ' --rateest-pps2' : ' --rateest-pps';
      if (delta || !rel) s += ` ${d.pps2}`;
    }
    if (rel) s += ` --rateest2 ${d.name2}`;
    return s;
  },
  check(d) {
    const am = d.flags & (XT_RATEEST_MATCH_ABS | XT_RATEEST_MATCH_REL);
    if (am !== XT_RATEEST_MATCH_ABS && am !== XT_RATEEST_MATCH_REL) return 'xt_rateest: exactly one of absolute or relative mode needed';
    if (!(d.flags & (XT_RATEEST_MATCH_BPS | XT_RATEEST_MATCH_PPS))) return 'xt_rateest: bps or pps needed';
    if (d.mode !== XT_RATEEST_MATCH_EQ && d.mode !== XT_RATEEST_MATCH_LT && d.mode !== XT_RATEEST_MATCH_GT) {
      return 'xt_rateest: a mode (--rateest-lt, --rateest-gt or --rateest-eq) is needed';
    }
    // no RATEEST rule can create an estimator with an empty name
    if (d.name1 === '' || (d.flags & XT_RATEEST_MATCH_REL && d.name2 === '')) return 'xt_rateest: no such estimator (No such file or directory)';
    return undefined;
  },
  lower: (c, m) => {
    try {
      const fn = rateestMt(m.data as RateestData, c.xtEnv().xt);
      lowerCompatMatch(c, m, () => fn);
    } catch (e) {
      if (e instanceof NotModelled) throw new NfvmError('check', e.message, c.file, m.pos, m.name);
      throw e;
    }
  },
  reference: (d, _family, backend, e) => asNftCompat(rateestMt(d, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * xt_rateest_mt() (net/netfilter/xt_rateest.c, kernel 6.18): the rates of
 * the first estimator (minus from the given value with --rateest-delta,
 * floored at 0) against the given values (absolute mode) or the second
 * estimator's (relative), in bytes/s and/or packets/s, as u32; inverted by
 * `!`. The estimators must exist when the rule loads (a RATEEST rule
 * loaded before it): xt_rateest_mt_checkentry refuses the rule otherwise.
 */
function rateestMt(info: RateestData, xt: XtState): MatchFn {
  const est1 = rateestLookup(xt, info.name1);
  const rel = (info.flags & XT_RATEEST_MATCH_REL) !== 0;
  const est2 = rel ? rateestLookup(xt, info.name2) : undefined;
  if (!est1 || (rel && !est2)) {
    throw new NotModelled('match rateest', `rateest: no estimator ${!est1 ? info.name1 : info.name2} (a RATEEST rule must make it first; the kernel refuses the rule: No such file or directory)`);
  }
  const delta = (info.flags & XT_RATEEST_MATCH_DELTA) !== 0;
  const bpsOn = (info.flags & XT_RATEEST_MATCH_BPS) !== 0;
  const ppsOn = (info.flags & XT_RATEEST_MATCH_PPS) !== 0;
  const invert = (info.flags & XT_RATEEST_MATCH_INVERT) !== 0;
  const u32 = (x: number) => Math.floor(x) % 4294967296;
  const given = (v: number, r: number) => (delta ? (u32(v) >= r ? u32(v) - r : 0) : r);
  return (par) => {
    const x = par.env.xt;
    const j = x.jiffies();
    const l = x.loadJiffies();
    est1.advance(j, l);
    const bps1 = given(info.bps1, est1.bps());
    const pps1 = given(info.pps1, est1.pps());
    let bps2: number;
    let pps2: number;
    if (!est2) {
      bps2 = u32(info.bps2);
      pps2 = u32(info.pps2);
    } else {
      est2.advance(j, l);
      bps2 = given(info.bps2, est2.bps());
      pps2 = given(info.pps2, est2.pps());
    }
    let ret = true;
    switch (info.mode) {
      case XT_RATEEST_MATCH_LT:
        if (bpsOn) ret &&= bps1 < bps2;
        if (ppsOn) ret &&= pps1 < pps2;
        break;
      case XT_RATEEST_MATCH_GT:
        if (bpsOn) ret &&= bps1 > bps2;
        if (ppsOn) ret &&= pps1 > pps2;
        break;
      case XT_RATEEST_MATCH_EQ:
        if (bpsOn) ret &&= bps1 === bps2;
        if (ppsOn) ret &&= pps1 === pps2;
        break;
    }
    return ret !== invert;
  };
}

