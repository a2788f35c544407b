/**
 * hashlimit match: iptables extensions/libxt_hashlimit.c (revision 3, the
 * one iptables picks on current kernels), kernel net/netfilter/xt_hashlimit.c.
 *
 * Data mirrors `struct xt_hashlimit_mtinfo3`: the table name and
 * `struct hashlimit_cfg3`. In packet mode `avg` is the period between
 * packets in 1/1000000 s (`--hashlimit-upto 3/min` → 1e6*60/3); in byte
 * mode (`--hashlimit-upto 10mb/s`, mode bit XT_HASHLIMIT_BYTES) it is the
 * kernel's cost value UINT32_MAX / (bytes/16 + 1) and `burst` counts
 * rate-sized chunks. `--hashlimit-above` is `--hashlimit-upto` with the
 * XT_HASHLIMIT_INVERT bit, `!` flips it back.
 *
 * With `--hashlimit-rate-match` iptables divides `avg` by the unit's seconds
 * and keeps the unit in `interval`, which is why `40/hour` saves as
 * `40/sec ... --hashlimit-rate-interval 3600`. iptables-save omits the burst
 * in byte mode when none was given, the expiry when it equals the printed
 * unit (1000 ms per second of the unit; 15 s / 60 s in byte mode) and the
 * masks when they are full.
 *
 * Kernel checks (hashlimit_mt_check_common, xt_check_proc_name): the name
 * must be usable as a /proc file name, gc interval and expiry non-zero,
 * masks within the address size, the rate non-zero and below U32_MAX with
 * rate-match, byte costs representable, and `avg * burst` must not overflow
 * the 64-bit credit arithmetic (so `1/day` needs `--hashlimit-burst 1`).
 * Sizes above 1048576 are capped (the kernel rewrites the rule).
 */
import { fail } from '../../core/errors.js';
import type { Family } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { rateUnit } from './limit.js';
import { xtOptFcheck, xtOptFlags, xtOptUse, type XtOptEntry } from '../xtopt.js';
import { cAtoi, cStrtoll, parseUintOpt, strtoulPrefix, strtoulWhole } from '../numbers.js';
import { formatIPv4, formatIPv6Full, inetAton, maskToCidr, parseIPv6 } from '../../core/addr.js';
import { M_LEN } from '../../vm/layout.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import type { XtProcFile, XtSaveable, XtState } from '../xtstate.js';
import { u64Add, u64FromNumber, u64Ge, u64Gt, u64Mul, u64r, u64Shl, u64Sub, u64Text } from '../u64.js';

/** XT_HASHLIMIT_* mode bits. */
const HASH_DIP = 0x01;
const HASH_DPT = 0x02;
const HASH_SIP = 0x04;
const HASH_SPT = 0x08;
const HL_INVERT = 0x10;
const HL_BYTES = 0x20;
const HL_RATE_MATCH = 0x40;

interface HashlimitData {
  /** Table name (the /proc/net/ipt_hashlimit file), at most 254 bytes. */
  name: string;
  /** XT_HASHLIMIT_HASH_* | INVERT | BYTES | RATE_MATCH bits. */
  mode: number;
  /** u64: packet period in 1e-6 s, or the byte-mode cost. */
  avg: bigint;
  /** u64: packets (packet mode) or rate-sized chunks (byte mode; 0 = none given). */
  burst: bigint;
  /** Hash buckets (0 = kernel default). */
  size: number;
  /** Maximum entries (0 = kernel default). */
  max: number;
  /** Garbage collection interval in ms. */
  gcInterval: number;
  /** Idle entry expiry in ms. */
  expire: number;
  /** Prefix lengths applied to the hashed addresses (255 for a non-contiguous mask). */
  srcmask: number;
  dstmask: number;
  /** Rate-match interval in seconds (0 = unset). */
  interval: number;
  /** iptables' udata->mult: seconds of the rate unit (15 in byte mode). */
  mult: number;
  /** Option ids given (xflags), for the final checks. */
  xflags: number;
}

const O_UPTO = 0;
const O_ABOVE = 1;
const O_MODE = 3;
const O_SRCMASK = 4;
const O_DSTMASK = 5;
const O_NAME = 6;
const O_BURST = 7;
const O_HTABLE_SIZE = 8;
const O_HTABLE_MAX = 9;
const O_HTABLE_GCINT = 10;
const O_HTABLE_EXPIRE = 11;
const O_RATEMATCH = 12;
const O_INTERVAL = 13;
const F = (id: number) => 1 << id;

/** hashlimit_mt_opts (revision 3), in table order. */
const TABLE: readonly XtOptEntry[] = [
  { name: 'hashlimit-upto', id: O_UPTO, excl: F(O_ABOVE) },
  { name: 'hashlimit-above', id: O_ABOVE, excl: F(O_UPTO) },
  { name: 'hashlimit', id: O_UPTO, excl: F(O_ABOVE) },
  { name: 'hashlimit-srcmask', id: O_SRCMASK },
  { name: 'hashlimit-dstmask', id: O_DSTMASK },
  { name: 'hashlimit-burst', id: O_BURST },
  { name: 'hashlimit-htable-size', id: O_HTABLE_SIZE },
  { name: 'hashlimit-htable-max', id: O_HTABLE_MAX },
  { name: 'hashlimit-htable-gcinterval', id: O_HTABLE_GCINT },
  { name: 'hashlimit-htable-expire', id: O_HTABLE_EXPIRE },
  { name: 'hashlimit-mode', id: O_MODE },
  { name: 'hashlimit-name', id: O_NAME, mand: true },
  { name: 'hashlimit-rate-match', id: O_RATEMATCH },
  { name: 'hashlimit-rate-interval', id: O_INTERVAL },
];

const SCALE = 1000000n; // XT_HASHLIMIT_SCALE_v2
const BURST_MAX = 1000000n;
const BYTE_SHIFT = 4n;
const BYTE_EXPIRE = 15;
const BYTE_EXPIRE_BURST = 60;
const GCINTERVAL = 1000;
const U32 = 0xffffffffn;
const U64 = 0xffffffffffffffffn;
const NAME_MAX = 255;

function costToBytes(cost: bigint): bigint {
  const r = cost ? U32 / cost : U32;
  return ((r - 1n) << BYTE_SHIFT) & U64;
}

function bytesToCost(bytes: bigint): bigint {
  const r = (bytes >> BYTE_SHIFT) & U32;
  const d = (r + 1n) & U32;
  return d === 0n ? 0n : U32 / d;
}

function factor(c: string | undefined): bigint {
  return c === 'm' ? 1048576n : c === 'k' ? 1024n : 1n;
}

/** parse_bytes(): `N[k|m]b/s`, or undefined when the text is not a byte rate. */
function parseBytes(rate: string): bigint | undefined {
  const at = rate.indexOf('b/s');
  if (at <= 0) return undefined;
  const r = BigInt.asUintN(64, cStrtoll(rate).value);
  if (r === 0n) return undefined;
  const bytes = (r * factor(rate[at - 1])) & U64;
  const cost = bytesToCost(bytes);
  if (cost === 0n) fail(`Rate too high "${rate}"`);
  return cost;
}

/** parse_rate() (revision 2+): the period and the unit's seconds. */
function parseRate(rate: string): { avg: bigint; mult: number } | undefined {
  const mult = rateUnit(rate);
  if (mult === undefined) return undefined;
  const r = BigInt.asUintN(64, cStrtoll(rate).value);
  if (r === 0n) return undefined;
  const avg = (SCALE * BigInt(mult)) / r;
  if (avg === 0n) fail(`Rate too fast "${rate}"`);
  return { avg, mult };
}

/** parse_burst(): a count with an optional k/m factor (byte mode). */
function parseBurst(s: string): bigint {
  const bad = (): never => fail(`bad value for option "--hashlimit-burst", or out of range (1-${BURST_MAX}).`);
  const p = strtoulPrefix(s, 1n, 0n);
  if (!p) return bad();
  if (p.rest === '' && p.value > BURST_MAX) return bad();
  return (p.value * factor(p.rest[0])) & U64;
}

/** XTTYPE_PLEN: a prefix length or a dotted/colon mask (255 when not contiguous). */
function parsePlen(s: string, family: Family, opt: string): number {
  const full = family === 'ip' ? 32 : 128;
  const n = strtoulWhole(s, 0n, BigInt(full));
  if (n !== undefined) return Number(n);
  const m = family === 'ip' ? inetAton(s) : parseIPv6(s);
  if (m) {
    const c = maskToCidr(m);
    return c < 0 ? 255 : c;
  }
  return fail(`hashlimit: bad value for option "--${opt}", neither a valid network mask nor valid CIDR (0-${full}).`);
}

function parseMode(arg: string): number | undefined {
  let mode = 0;
  for (const tok of arg.split(/[,|]/)) {
    if (tok === '') continue;
    if (tok === 'dstip') mode |= HASH_DIP;
    else if (tok === 'srcip') mode |= HASH_SIP;
    else if (tok === 'srcport') mode |= HASH_SPT;
    else if (tok === 'dstport') mode |= HASH_DPT;
    else return undefined;
  }
  return mode;
}

const badValue = (opt: string, arg: string): never => fail(`hashlimit: Bad value for "--${opt}" option: "${arg}"`);

const RATES: ReadonlyArray<readonly [string, bigint]> = [
  ['day', SCALE * 86400n],
  ['hour', SCALE * 3600n],
  ['min', SCALE * 60n],
  ['sec', SCALE],
];

/** print_rate(): the rate text and the "quantum" (the unit in ms). */
function printRate(period: bigint): [string, number] {
  if (period === 0n) return ['inf', 0];
  let i = 1;
  for (; i < RATES.length; i++) {
    const m = RATES[i]![1];
    if (period > m || m / period < m % period) break;
  }
  const [name, mult] = RATES[i - 1]!;
  return [`${mult / period}/${name}`, Number(((mult / SCALE) * 1000n) & U32)];
}

const UNITS: ReadonlyArray<readonly [string, bigint]> = [
  ['m', 1048576n],
  ['k', 1024n],
  ['', 1n],
];

/** print_bytes(): the byte rate, the burst in bytes and the quantum. */
function printBytes(avg: bigint, burst: bigint): [string, number] {
  let r = costToBytes(avg);
  let i = 0;
  for (; i < UNITS.length - 1; i++) {
    const t = UNITS[i]![1];
    // units[].thresh is a u32: ~(thresh - 1) also clears the upper 32 bits of r
    if (r >= t && bytesToCost(r & (~(t - 1n) & U32)) === avg) break;
  }
  let s = ` ${r / UNITS[i]![1]}${UNITS[i]![0]}b/s`;
  if (burst === 0n) return [s, BYTE_EXPIRE * 1000];
  r = (r * burst) & U64;
  for (i = 0; i < UNITS.length - 1; i++) if (r >= UNITS[i]![1]) break;
  s += ` --hashlimit-burst ${r / UNITS[i]![1]}${UNITS[i]![0]}b`;
  return [s, BYTE_EXPIRE_BURST * 1000];
}

/** xt_hashlimit user2credits() for revision 3 with HZ * CREDITS_PER_JIFFY = 250 * 2^39. */
function user2credits(user: bigint): bigint {
  return (user * (137438953472000n / SCALE)) & U64;
}

/** user2credits_byte(): u32 argument, HZ * CREDITS_PER_JIFFY_BYTES = 4194304000. */
function user2creditsByte(user: bigint): bigint {
  return (((user & U32) * 4194304000n) >> 32n) & U32;
}

const HASHLIMIT_MAX_SIZE = 1048576;

export const hashlimit: MatchModule<HashlimitData> = {
  kind: 'match',
  name: 'hashlimit',
  options: [
    { name: 'hashlimit-upto', arg: 1, invert: true },
    { name: 'hashlimit-above', arg: 1, invert: true },
    { name: 'hashlimit', arg: 1, invert: true },
    { name: 'hashlimit-srcmask', arg: 1 },
    { name: 'hashlimit-dstmask', arg: 1 },
    { name: 'hashlimit-burst', arg: 1 },
    { name: 'hashlimit-htable-size', arg: 1 },
    { name: 'hashlimit-htable-max', arg: 1 },
    { name: 'hashlimit-htable-gcinterval', arg: 1 },
    { name: 'hashlimit-htable-expire', arg: 1 },
    { name: 'hashlimit-mode', arg: 1 },
    { name: 'hashlimit-name', arg: 1 },
    { name: 'hashlimit-rate-match', arg: 0 },
    { name: 'hashlimit-rate-interval', arg: 1 },
  ],
  init: (ctx) => {
    const full = ctx.family === 'ip' ? 32 : 128;
    return { name: '', mode: 0, avg: 0n, burst: 5n, size: 0, max: 0, gcInterval: GCINTERVAL, expire: 0, srcmask: full, dstmask: full, interval: 0, mult: 0, xflags: 0 };
  },
  parse(d, opt, arg, invert, ctx) {
    d.xflags = xtOptUse('hashlimit', TABLE, d.xflags, opt);
    const a = arg!;
    switch (opt) {
      case 'hashlimit-upto':
      case 'hashlimit':
      case 'hashlimit-above': {
        const above = opt === 'hashlimit-above';
        if (above !== invert) d.mode |= HL_INVERT;
        const cost = parseBytes(a);
        if (cost !== undefined) {
          d.avg = cost;
          d.mult = BYTE_EXPIRE;
          d.mode |= HL_BYTES;
        } else {
          const r = parseRate(a);
          if (!r) return badValue(above ? 'hashlimit-above' : 'hashlimit-upto', a);
          d.avg = r.avg;
          d.mult = r.mult;
        }
        return;
      }
      case 'hashlimit-burst':
        d.burst = parseBurst(a);
        return;
      case 'hashlimit-mode': {
        const m = parseMode(a);
        if (m === undefined) return badValue(opt, a);
        d.mode |= m;
        return;
      }
      case 'hashlimit-srcmask':
        d.srcmask = parsePlen(a, ctx.family, opt);
        return;
      case 'hashlimit-dstmask':
        d.dstmask = parsePlen(a, ctx.family, opt);
        return;
      case 'hashlimit-name': {
        if (a.length < 1) fail('Argument must have a minimum length of 1 characters');
        // XTOPT_PUT into char name[NAME_MAX]: longer names are cut to 254 bytes
        const b = Buffer.from(a, 'utf8');
        d.name = b.length >= NAME_MAX ? b.subarray(0, NAME_MAX - 1).toString('utf8') : a;
        return;
      }
      case 'hashlimit-htable-size':
        d.size = parseUintOpt(a, 0, 0xffffffff, 'hashlimit', opt);
        return;
      case 'hashlimit-htable-max':
        d.max = parseUintOpt(a, 0, 0xffffffff, 'hashlimit', opt);
        return;
      case 'hashlimit-htable-gcinterval':
        d.gcInterval = parseUintOpt(a, 0, 0xffffffff, 'hashlimit', opt);
        return;
      case 'hashlimit-htable-expire':
        d.expire = parseUintOpt(a, 0, 0xffffffff, 'hashlimit', opt);
        return;
      case 'hashlimit-rate-match':
        d.mode |= HL_RATE_MATCH;
        return;
      case 'hashlimit-rate-interval': {
        const r = cAtoi(a);
        if (r <= 0) return badValue(opt, a);
        d.interval = r;
        return;
      }
    }
  },
  final(d, seen) {
    const xf = xtOptFlags(TABLE, seen);
    if (!(xf & (F(O_UPTO) | F(O_ABOVE)))) fail('You have to specify --hashlimit', 'option');
    if (!(xf & F(O_HTABLE_EXPIRE))) d.expire = (d.mult * 1000) >>> 0;
    if (d.mode & HL_BYTES) {
      let burst = 0n;
      if (xf & F(O_BURST)) {
        const unit = costToBytes(d.avg);
        if (d.burst < unit) fail(`burst cannot be smaller than ${unit}b`);
        burst = ((d.burst & U32) / unit) & U32;
        if (d.burst % unit) burst = (burst + 1n) & U32;
        if (!(xf & F(O_HTABLE_EXPIRE))) d.expire = BYTE_EXPIRE_BURST * 1000;
      }
      d.burst = burst;
    } else if (d.burst > BURST_MAX) {
      fail(`bad value for option "--hashlimit-burst", or out of range (1-${BURST_MAX}).`);
    }
    if (xf & F(O_RATEMATCH)) {
      if (!(d.mode & HL_BYTES)) d.avg /= BigInt(d.mult);
      if (d.interval === 0) d.interval = d.mode & HL_BYTES ? 1 : d.mult;
    }
    xtOptFcheck('hashlimit', TABLE, xf);
  },
  save(d, ctx) {
    const dmask = ctx.family === 'ip' ? 32 : 128;
    let s = d.mode & HL_INVERT ? ' --hashlimit-above' : ' --hashlimit-upto';
    let quantum: number;
    if (d.mode & HL_BYTES) {
      const [t, q] = printBytes(d.avg, d.burst);
      s += t;
      quantum = q;
    } else {
      const [t, q] = printRate(d.avg);
      s += ` ${t} --hashlimit-burst ${d.burst}`;
      quantum = q;
    }
    if (d.mode & (HASH_SIP | HASH_SPT | HASH_DIP | HASH_DPT)) {
      const m: string[] = [];
      if (d.mode & HASH_SIP) m.push('srcip');
      if (d.mode & HASH_SPT) m.push('srcport');
      if (d.mode & HASH_DIP) m.push('dstip');
      if (d.mode & HASH_DPT) m.push('dstport');
      s += ` --hashlimit-mode ${m.join(',')}`;
    }
    s += ` --hashlimit-name ${d.name}`;
    if (d.size !== 0) s += ` --hashlimit-htable-size ${d.size}`;
    if (d.max !== 0) s += ` --hashlimit-htable-max ${d.max}`;
    if (d.gcInterval !== GCINTERVAL) s += ` --hashlimit-htable-gcinterval ${d.gcInterval}`;
    if (d.expire !== quantum) s += ` --hashlimit-htable-expire ${d.expire}`;
    if (d.srcmask !== dmask) s += ` --hashlimit-srcmask ${d.srcmask}`;
    if (d.dstmask !== dmask) s += ` --hashlimit-dstmask ${d.dstmask}`;
    if (d.mode & HL_RATE_MATCH) {
      s += ' --hashlimit-rate-match';
      if (d.interval !== 1) s += ` --hashlimit-rate-interval ${d.interval}`;
    }
    return s;
  },
  check(d, ctx) {
    const n = d.name;
    if (n === '' || n === '.' || n === '..' || n.includes('/')) return `xt_hashlimit: invalid table name "${n}" (EINVAL)`;
    if (d.gcInterval === 0 || d.expire === 0) return 'xt_hashlimit: gc interval and expire must be non-zero (EINVAL)';
    // the kernel caps the sizes in the stored rule (and prints a note)
    if (d.size > HASHLIMIT_MAX_SIZE) d.size = HASHLIMIT_MAX_SIZE;
    if (d.max > HASHLIMIT_MAX_SIZE) d.max = HASHLIMIT_MAX_SIZE;
    const full = ctx.family === 'ip' ? 32 : 128;
    if (d.srcmask > full || d.dstmask > full) return `xt_hashlimit: mask longer than ${full} bits (EINVAL)`;
    if (d.mode & HL_RATE_MATCH) {
      if (d.avg === 0n || d.avg > U32) return 'xt_hashlimit: invalid rate (ERANGE)';
      if (d.interval === 0) return 'xt_hashlimit: invalid interval (EINVAL)';
    } else if (d.mode & HL_BYTES) {
      if (user2creditsByte(d.avg) === 0n) return `xt_hashlimit: overflow, rate too high: ${d.avg} (EINVAL)`;
    } else if (d.burst === 0n || user2credits((d.avg * d.burst) & U64) < user2credits(d.avg)) {
      return `xt_hashlimit: overflow, try lower: ${d.avg}/${d.burst} (ERANGE)`;
    }
    return undefined;
  },
  lower: (c, m) => lowerCompatMatch(c, m, () => hashlimitMt(m.data as HashlimitData, c.family, c.xtEnv().xt), 3),
  reference: (d, family, backend, e) => asNftCompat(hashlimitMt(d, family, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * xt_hashlimit revision 3 (net/netfilter/xt_hashlimit.c, kernel 6.18): one
 * token bucket per hashed flow (struct dsthash_ent) in a table per name and
 * family (hashlimit_net), created by the first rule naming it with that
 * rule's configuration and shared by the later ones (a later rule's own
 * cfg still decides INVERT, BYTES and RATE_MATCH of its match, as
 * hashlimit_mt_common reads `cfg->mode` while the entries follow the
 * table's). Credits are u64, kept exact as u32 halves (ext/u64.ts); jiffies come from the
 * node's clock at its HZ (ext/xtstate.ts).
 *
 * Entries expire `expire` ms after their last packet; htable_gc frees the
 * expired ones every gc_interval ms from the table's creation (the
 * ruleset load), and until then an expired entry is found and refilled
 * like a live one. A table with `max` entries drops (hotdrop) a packet
 * that needs a new one. Without --hashlimit-htable-size the kernel sizes
 * the table from the machine's memory: 8192 buckets above 1 GiB of RAM,
 * which nfvm assumes (so at most 65536 entries).
 */
/**
 * The rateinfo of struct dsthash_ent: the kernel's u64 fields as u32
 * halves (ext/u64.ts), so that a packet costs no BigInt. Credit mode:
 * credit, credit_cap, cost; rate-match mode: current_rate, rate, burst
 * (rburst), interval and prev_window.
 */
export interface Rateinfo {
  prev: number;
  creditHi: number;
  creditLo: number;
  capHi: number;
  capLo: number;
  costHi: number;
  costLo: number;
  interval: number;
  prevWindow: number;
  curHi: number;
  curLo: number;
  rateHi: number;
  rateLo: number;
  rburstHi: number;
  rburstLo: number;
}

interface DsthashEnt extends Rateinfo {
  /** dsthash_dst: src, dst (16 bytes each, IPv4 in the first 4) and ports, as the key. */
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  expires: number;
}

/**
 * What rateinfo_init() gives every entry of a table (a function of the
 * table's cfg and HZ alone), worked out once with the kernel's u64
 * arithmetic when the table is made, and the credits per jiffy as shifts
 * (CREDITS_PER_JIFFY and CREDITS_PER_JIFFY_BYTES are powers of two).
 */
export interface RateinfoInit {
  readonly mode: number;
  readonly hz: number;
  /** log2(CREDITS_PER_JIFFY), log2(CREDITS_PER_JIFFY_BYTES). */
  readonly cpjShift: number;
  readonly cpjBytesShift: number;
  /** CREDITS_PER_JIFFY_BYTES * HZ (below 2^32). */
  readonly fullBytes: number;
  /** The initial rateinfo (prev and the halves). */
  readonly init: Readonly<Omit<Rateinfo, 'prev'>>;
}

/** struct xt_hashlimit_htable. */
class HashlimitTable implements XtProcFile, XtSaveable {
  readonly procPath: string;
  ents = new Map<string, DsthashEnt>();
  nextGc: number;
  readonly size: number;
  readonly max: number;
  readonly ratematch: boolean;
  readonly ri: RateinfoInit;
  constructor(
    readonly cfg: HashlimitData,
    readonly family: Family,
    private readonly xt: XtState,
  ) {
    this.procPath = `/proc/net/${family === 'ip' ? 'ipt' : 'ip6t'}_hashlimit/${cfg.name}`;
    this.size = cfg.size || 8192;
    this.max = cfg.max === 0 ? 8 * this.size : Math.max(cfg.max, this.size);
    this.ratematch = (cfg.mode & HL_RATE_MATCH) !== 0;
    this.nextGc = -1;
    this.ri = rateinfoInitOf(cfg, xt.hz);
  }

  save(): () => void {
    const copy = [...this.ents].map(([k, e]) => [k, { ...e }] as const);
    const gc = this.nextGc;
    return () => {
      this.ents = new Map(copy.map(([k, e]) => [k, { ...e }]));
      this.nextGc = gc;
    };
  }

  /** htable_gc() runs due by now (every gc_interval from the load), freeing expired entries. */
  gc(now: number): void {
    const period = msecsToJiffies(this.cfg.gcInterval, this.xt.hz);
    if (this.nextGc < 0) this.nextGc = this.xt.loadJiffies() + period;
    while (now >= this.nextGc) {
      for (const [k, e] of this.ents) if (this.nextGc >= e.expires) this.ents.delete(k);
      this.nextGc += Math.max(1, period);
    }
  }

  /**
   * dl_seq_real_show() of every entry: rateinfo_recalc() at the clock's time
   * (as reading the file does), then `expires-in-seconds src:sport->dst:dport
   * credit credit_cap cost`. The kernel walks its buckets, ordered by a
   * random seed; nfvm lists the entries in the order they were created.
   */
  procLines(xt: XtState): string[] {
    const now = xt.jiffies();
    this.gc(now);
    const out: string[] = [];
    const fmt = this.family === 'ip' ? (a: Uint8Array) => formatIPv4(a) : (a: Uint8Array) => formatIPv6Full(a);
    for (const e of this.ents.values()) {
      rateinfoRecalc(e, now, this.cfg.mode, this.ri);
      const secs = Math.trunc((e.expires - now) / xt.hz);
      // in rate-match mode the union's first words are interval and prev_window, then current_rate and rate
      const abc = this.ratematch
        ? [u64Text(e.prevWindow, e.interval), u64Text(e.curHi, e.curLo), u64Text(e.rateHi, e.rateLo)]
        : [u64Text(e.creditHi, e.creditLo), u64Text(e.capHi, e.capLo), u64Text(e.costHi, e.costLo)];
      out.push(`${secs} ${fmt(e.src)}:${e.sport}->${fmt(e.dst)}:${e.dport} ${abc.join(' ')}`);
    }
    return out;
  }
}

/** msecs_to_jiffies(): rounded up. */
function msecsToJiffies(ms: number, hz: number): number {
  return Math.ceil((ms * hz) / 1000);
}

/** POW2_BELOW64(U64_MAX / (HZ*60*60*24)) and POW2_BELOW32(U32_MAX / HZ), as powers of two. */
function log2Below(x: bigint): number {
  let s = 0;
  while (1n << BigInt(s + 1) <= x) s++;
  return s;
}

/** user2credits() of revision 3 at `hz`. */
function user2creditsHz(user: bigint, hz: number): bigint {
  const hzCpj = BigInt(hz) << BigInt(log2Below(U64 / BigInt(hz * 86400)));
  if (SCALE >= hzCpj) return (user / (SCALE / hzCpj)) & U64;
  return (user * (hzCpj / SCALE)) & U64;
}

const hi32 = (v: bigint) => Number((v >> 32n) & U32);
const lo32 = (v: bigint) => Number(v & U32);

/**
 * rateinfo_init() for a table's cfg at `hz`, with the kernel's u64
 * arithmetic (BigInt: once per table, never per packet).
 */
export function rateinfoInitOf(cfg: { mode: number; avg: bigint; burst: bigint; interval: number }, hz: number): RateinfoInit {
  const cpjShift = log2Below(U64 / BigInt(hz * 86400));
  const cpjBytesShift = log2Below(U32 / BigInt(hz));
  const cpjBytes = 1n << BigInt(cpjBytesShift);
  let credit = 0n;
  let cap = 0n;
  let cost = 0n;
  let rate = 0n;
  let rburst = 0n;
  let interval = 0;
  if (cfg.mode & HL_RATE_MATCH) {
    if (cfg.mode & HL_BYTES) {
      const u = cfg.avg & U32;
      const r = u ? U32 / u : U32;
      rate = ((r - 1n) << BYTE_SHIFT) & U64;
      rburst = cfg.burst ? (cfg.burst * rate) & U64 : rate;
    } else {
      rate = cfg.avg ? SCALE / cfg.avg : 0n;
      rburst = (cfg.burst + rate) & U64;
    }
    interval = cfg.interval;
  } else if (cfg.mode & HL_BYTES) {
    credit = cpjBytes * BigInt(hz);
    cost = (((cfg.avg & U32) * BigInt(hz) * cpjBytes) >> 32n) & U32;
    cap = cfg.burst;
  } else {
    credit = user2creditsHz((cfg.avg * cfg.burst) & U64, hz);
    cost = user2creditsHz(cfg.avg, hz);
    cap = credit;
  }
  return {
    mode: cfg.mode, hz, cpjShift, cpjBytesShift, fullBytes: Number(cpjBytes * BigInt(hz)),
    init: {
      creditHi: hi32(credit), creditLo: lo32(credit), capHi: hi32(cap), capLo: lo32(cap), costHi: hi32(cost), costLo: lo32(cost),
      interval, prevWindow: 0, curHi: 0, curLo: 0, rateHi: hi32(rate), rateLo: lo32(rate), rburstHi: hi32(rburst), rburstLo: lo32(rburst),
    },
  };
}

/** rateinfo_init(): the table's initial rateinfo into `e`. */
export function rateinfoInit(e: Rateinfo, ri: RateinfoInit, now: number): void {
  Object.assign(e, ri.init);
  e.prev = now;
}

/** rateinfo_recalc() (revision 3): the credits of the jiffies since `prev`, or a new rate-match window. */
export function rateinfoRecalc(e: Rateinfo, now: number, mode: number, ri: RateinfoInit): void {
  const delta = now - e.prev;
  if (delta === 0) return;
  if (mode & HL_RATE_MATCH) {
    // u64 interval = dh->rateinfo.interval * HZ: a u32 product
    const interval = (e.interval * ri.hz) % 4294967296;
    if (delta < interval) return;
    e.prev = now;
    u64Mul(e.curHi, e.curLo, 0, interval);
    const ch = u64r.hi;
    const cl = u64r.lo;
    u64FromNumber(delta);
    u64Mul(u64r.hi, u64r.lo, e.rateHi, e.rateLo);
    e.prevWindow = u64Gt(ch, cl, u64r.hi, u64r.lo) ? 1 : 0;
    e.curHi = 0;
    e.curLo = 0;
    return;
  }
  e.prev = now;
  // credit += delta * CREDITS_PER_JIFFY(_BYTES)
  u64FromNumber(delta);
  u64Shl(u64r.hi, u64r.lo, mode & HL_BYTES ? ri.cpjBytesShift : ri.cpjShift);
  const oldHi = e.creditHi;
  const oldLo = e.creditLo;
  u64Add(oldHi, oldLo, u64r.hi, u64r.lo);
  e.creditHi = u64r.hi;
  e.creditLo = u64r.lo;
  let capHi: number;
  let capLo: number;
  if (mode & HL_BYTES) {
    capHi = 0;
    capLo = ri.fullBytes;
    // the addition overflowed: full credit
    if (u64Ge(oldHi, oldLo, e.creditHi, e.creditLo)) {
      e.creditHi = 0;
      e.creditLo = capLo;
      return;
    }
  } else {
    capHi = e.capHi;
    capLo = e.capLo;
  }
  if (u64Gt(e.creditHi, e.creditLo, capHi, capLo)) {
    e.creditHi = capHi;
    e.creditLo = capLo;
  }
}

/**
 * The spending part of hashlimit_mt_common() for a packet of `len` bytes
 * under the rule's `mode`: true when the flow is within its rate (before
 * --hashlimit-above's inversion).
 */
export function rateinfoSpend(e: Rateinfo, mode: number, len: number, ri: RateinfoInit): boolean {
  if (mode & HL_RATE_MATCH) {
    u64Add(e.curHi, e.curLo, 0, mode & HL_BYTES ? len : 1);
    e.curHi = u64r.hi;
    e.curLo = u64r.lo;
    return !e.prevWindow && !u64Gt(e.curHi, e.curLo, e.rburstHi, e.rburstLo);
  }
  let costHi = e.costHi;
  let costLo = e.costLo;
  if (mode & HL_BYTES) {
    // hashlimit_byte_cost(): chunks * cost (below 2^45), at most a second's credit
    let tmp = ((len >>> 4) + 1) * (e.costHi * 4294967296 + e.costLo);
    if (tmp > ri.fullBytes) tmp = ri.fullBytes;
    if (u64Gt(0, tmp, e.creditHi, e.creditLo) && (e.capHi !== 0 || e.capLo !== 0)) {
      u64Sub(e.capHi, e.capLo, 0, 1);
      e.capHi = u64r.hi;
      e.capLo = u64r.lo;
      e.creditHi = 0;
      e.creditLo = ri.fullBytes;
    }
    costHi = 0;
    costLo = tmp;
  }
  if (u64Ge(e.creditHi, e.creditLo, costHi, costLo)) {
    u64Sub(e.creditHi, e.creditLo, costHi, costLo);
    e.creditHi = u64r.hi;
    e.creditLo = u64r.lo;
    return true;
  }
  return false;
}

/** maskl() over 16 bytes: keep the first `bits` bits (hashlimit_ipv6_mask for IPv6). */
function maskInto(out: Uint8Array, d: Uint8Array, at: number, alen: number, bits: number): void {
  out.fill(0);
  for (let i = 0; i < alen; i++) {
    const keep = bits - 8 * i;
    out[i] = keep >= 8 ? d[at + i]! : keep <= 0 ? 0 : d[at + i]! & (0xff << (8 - keep));
  }
}

/** proto_ports_offset(). */
function protoPortsOffset(proto: number): number {
  if (proto === 6 || proto === 17 || proto === 33 || proto === 50 || proto === 132 || proto === 136) return 0;
  return proto === 51 ? 4 : -1;
}

/** ipv6_skip_exthdr() from the fixed header: [offset of the upper layer or -1, its protocol, the fragment offset word]. */
function ipv6SkipExthdr(d: Uint8Array, nh: number, end: number): [number, number, number] {
  let next = d[nh + 6]!;
  let start = 40;
  let frag = 0;
  while (next === 0 || next === 43 || next === 44 || next === 51 || next === 59 || next === 60) {
    if (next === 59 || nh + start + 2 > end) return [-1, next, frag];
    let len: number;
    if (next === 44) {
      if (nh + start + 4 > end) return [-1, next, frag];
      frag = (d[nh + start + 2]! << 8) | d[nh + start + 3]!;
      if (frag & ~0x7) {
        next = d[nh + start]!;
        break;
      }
      len = 8;
    } else if (next === 51) len = (d[nh + start + 1]! + 2) << 2;
    else len = (d[nh + start + 1]! + 1) << 3;
    next = d[nh + start]!;
    start += len;
  }
  return [start, next, frag];
}

const keyBuf = { src: new Uint8Array(16), dst: new Uint8Array(16) };

function hashlimitMt(info: HashlimitData, family: Family, xt: XtState): MatchFn {
  const key = `hashlimit${family === 'ip' ? 4 : 6}:${info.name}`;
  const hinfo = xt.get(key, () => new HashlimitTable({ ...info }, family, xt));
  const cfgMode = info.mode;
  const v4 = family === 'ip';
  const alen = v4 ? 4 : 16;
  return (par) => {
    const now = xt.jiffies();
    hinfo.gc(now);
    const tcfg = hinfo.cfg;
    const d = par.d;
    const nh = par.nh;
    // hashlimit_init_dst(): the flow's key, masked, ports when the mode hashes them
    const { src, dst } = keyBuf;
    if (tcfg.mode & HASH_DIP) maskInto(dst, d, nh + (v4 ? 16 : 24), alen, tcfg.dstmask);
    else dst.fill(0);
    if (tcfg.mode & HASH_SIP) maskInto(src, d, nh + (v4 ? 12 : 8), alen, tcfg.srcmask);
    else src.fill(0);
    let sport = 0;
    let dport = 0;
    if (tcfg.mode & (HASH_DPT | HASH_SPT)) {
      let protoff: number;
      let proto: number;
      if (v4) {
        if (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x1fff) {
          par.hotdrop = true;
          return false;
        }
        proto = d[nh + 9]!;
        protoff = par.thoff;
      } else {
        const [off, p, frag] = ipv6SkipExthdr(d, nh, par.end);
        if (off < 0 || frag & 0xfff8) {
          par.hotdrop = true;
          return false;
        }
        proto = p;
        protoff = off;
      }
      const poff = protoPortsOffset(proto);
      if (poff >= 0) {
        const at = nh + protoff + poff;
        if (at + 4 > par.end) {
          par.hotdrop = true;
          return false;
        }
        if (tcfg.mode & HASH_SPT) sport = (d[at]! << 8) | d[at + 1]!;
        if (tcfg.mode & HASH_DPT) dport = (d[at + 2]! << 8) | d[at + 3]!;
      }
    }
    let k = '';
    for (let i = 0; i < alen; i++) k += String.fromCharCode(src[i]!, dst[i]!);
    k += String.fromCharCode(sport, dport);
    const expireJ = msecsToJiffies(tcfg.expire, xt.hz);
    let dh = hinfo.ents.get(k);
    if (!dh) {
      if (hinfo.ents.size >= hinfo.max) {
        par.hotdrop = true;
        return false;
      }
      dh = {
        src: src.slice(0, alen), dst: dst.slice(0, alen), sport, dport, expires: now + expireJ, prev: now,
        creditHi: 0, creditLo: 0, capHi: 0, capLo: 0, costHi: 0, costLo: 0, interval: 0, prevWindow: 0, curHi: 0, curLo: 0, rateHi: 0, rateLo: 0, rburstHi: 0, rburstLo: 0,
      };
      hinfo.ents.set(k, dh);
      rateinfoInit(dh, hinfo.ri, now);
    } else {
      dh.expires = now + expireJ;
      rateinfoRecalc(dh, now, tcfg.mode, hinfo.ri);
    }
    const within = rateinfoSpend(dh, cfgMode, par.meta[M_LEN]!, hinfo.ri);
    return within !== ((cfgMode & HL_INVERT) !== 0);
  };
}
