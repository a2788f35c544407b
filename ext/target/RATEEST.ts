/**
 * RATEEST target: iptables `extensions/libxt_RATEEST.c`, kernel
 * `net/netfilter/xt_RATEEST.c` (`struct xt_rateest_target_info`): feed
 * packets to a named rate estimator (read by the `rateest` match).
 *
 *  - `--rateest-name NAME` (mandatory; char[16]: cut to 15 bytes);
 *  - `--rateest-interval TIME`, `--rateest-ewmalog TIME`: a number with an
 *    optional unit s/sec/secs (the default), ms/msec/msecs or us/usec/usecs.
 *
 * The final check converts them as tc does: the interval to the smallest
 * 2^i quarter-seconds (i = 0..5, stored as i - 2) at least as long, and the
 * averaging time to the ewma log w for which interval / -ln(1 - 2^-w) first
 * exceeds it, minus one (1..30). Saved from the stored values:
 * ` --rateest-name N --rateest-interval T --rateest-ewmalog T` with times
 * printed as `%.1fs`, `%.1fms` or `%uus`. Kernel: interval in -2..3.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { lowerCompatTarget } from '../compat.js';
import { NotModelled, XT_CONTINUE, type TargetFn } from '../xt.js';
import { NfvmError } from '../../core/errors.js';
import type { XtState } from '../xtstate.js';
import { rateestGet } from '../rateest.js';

const TIME_UNITS_PER_SEC = 1000000;
const IFNAMSIZ = 16;

interface RateestTgData {
  /** Estimator name (at most 15 bytes). */
  name: string;
  /** Interval as 2^(interval+2) quarter seconds: -2 (250 ms) .. 3 (8 s). */
  interval: number;
  /** Averaging constant: the estimator averages over interval * 2^ewmaLog. */
  ewmaLog: number;
  /** The parsed --rateest-interval in microseconds (input to the final check). */
  intervalUs: number;
  /** The parsed --rateest-ewmalog in microseconds. */
  ewmaUs: number;
}

/** strtod's longest decimal prefix (as far as time values need). */
export function strtodPrefix(s: string): { value: number; rest: string } | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(s);
  if (!m) return undefined;
  return { value: parseFloat(m[1]!), rest: s.slice(m[0].length) };
}

/** RATEEST_get_time: microseconds, or undefined. */
function getTime(s: string): number | undefined {
  const r = strtodPrefix(s);
  if (!r) return undefined;
  let t = r.value;
  if (r.rest !== '') {
    const u = r.rest.toLowerCase();
    if (u === 's' || u === 'sec' || u === 'secs') t *= TIME_UNITS_PER_SEC;
    else if (u === 'ms' || u === 'msec' || u === 'msecs') t *= TIME_UNITS_PER_SEC / 1000;
    else if (u === 'us' || u === 'usec' || u === 'usecs') t *= TIME_UNITS_PER_SEC / 1000000;
    else return undefined;
  }
  // conversion to unsigned int
  return Number(BigInt.asUintN(32, BigInt(Math.trunc(Number.isFinite(t) ? t : 0))));
}

function printTime(us: number): string {
  if (us >= TIME_UNITS_PER_SEC) return `${(us / TIME_UNITS_PER_SEC).toFixed(1)}s`;
  if (us >= TIME_UNITS_PER_SEC / 1000) return `${(us / (TIME_UNITS_PER_SEC / 1000)).toFixed(1)}ms`;
  return `${us}us`;
}

export const RATEEST: TargetModule<RateestTgData> = {
  kind: 'target',
  name: 'RATEEST',
  options: [
    { name: 'rateest-name', arg: 1 },
    { name: 'rateest-interval', arg: 1 },
    { name: 'rateest-ewmalog', arg: 1 },
  ],
  init: () => ({ name: '', interval: 0, ewmaLog: 0, intervalUs: 0, ewmaUs: 0 }),
  parse(d, opt, arg) {
    if (opt === 'rateest-name') {
      d.name = Buffer.from(arg!, 'utf8').subarray(0, IFNAMSIZ - 1).toString('utf8');
      return;
    }
    const t = getTime(arg!);
    if (opt === 'rateest-interval') {
      if (t === undefined) fail(`RATEEST: bad interval value "${arg}"`);
      d.intervalUs = t;
    } else {
      if (t === undefined) fail(`RATEEST: bad ewmalog value "${arg}"`);
      d.ewmaUs = t;
    }
  },
  final(d, seen) {
    if (!seen.has('rateest-name')) fail('RATEEST: option "--rateest-name" must be specified', 'option');
    let i = 0;
    for (; i <= 5; i++) if (d.intervalUs <= 2 ** i * (TIME_UNITS_PER_SEC / 4)) break;
    if (i > 5) fail('RATEEST: interval value is too large', 'option');
    d.interval = i - 2;
    let e = 1;
    for (; e < 32; e++) {
      const w = 1.0 - 1.0 / 2 ** e;
      if (d.intervalUs / -Math.log(w) > d.ewmaUs) break;
    }
    e--;
    if (e === 0 || e >= 31) fail('RATEEST: ewmalog value is out of range', 'option');
    d.ewmaLog = e;
  },
  save(d) {
    const interval = (TIME_UNITS_PER_SEC * 2 ** (d.interval + 2)) / 4;
    const ewma = Number(BigInt.asUintN(32, BigInt(interval) * (1n << BigInt(d.ewmaLog))));
    return ` --rateest-name ${d.name} --rateest-interval ${printTime(interval)} --rateest-ewmalog ${printTime(ewma)}`;
  },
  check(d) {
    if (d.interval < -2 || d.interval > 3) return 'xt_RATEEST: invalid estimator interval';
    return undefined;
  },
  lower: (c, t) => {
    let fn: TargetFn;
    try {
      fn = rateestTg(t.data, c.xtEnv().xt);
    } catch (e) {
      if (e instanceof NotModelled) throw new NfvmError('check', e.message, c.file, t.pos, t.name);
      throw e;
    }
    lowerCompatTarget(c, t, () => fn);
  },
  reference: (d, _family, e) => rateestTg(d, e.xt!),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * xt_rateest_tg() (net/netfilter/xt_RATEEST.c, kernel 6.18): counts the
 * packet (skb->len, the IP length at the hook) into the rule's estimator
 * (ext/rateest.ts: made or shared by name at checkentry), XT_CONTINUE.
 */
function rateestTg(info: RateestTgData, xt: XtState): TargetFn {
  const est = rateestGet(xt, info.name, info.interval, info.ewmaLog);
  return (par) => {
    const x = par.env.xt;
    est.advance(x.jiffies(), x.loadJiffies());
    est.bytes += par.end - par.nh;
    est.packets++;
    return XT_CONTINUE;
  };
}

