/**
 * time match: iptables extensions/libxt_time.c, kernel net/netfilter/xt_time.c.
 *
 * Data mirrors `struct xt_time_info`: an absolute date window (seconds since
 * the epoch, u32; iptables converts the ISO 8601 text as UTC with mktime,
 * which normalises out-of-range fields: `2001-02-31` is March 3rd), a daily
 * window in seconds since midnight, bit masks of month days (bit 1..31) and
 * week days (bit 1 = Monday .. 7 = Sunday), and the flags
 * XT_TIME_LOCAL_TZ (`--kerneltz`, alias `--localtz`) and XT_TIME_CONTIGUOUS.
 *
 * iptables-save prints the daily window when it is not the whole day,
 * `--monthdays`, `--weekdays`, then the dates; it compares the default stop
 * date with LONG_MAX instead of INT_MAX, so every rule without
 * `--datestop` saves `--datestop 2038-01-19T03:14:07`.
 *
 * The kernel check accepts every value iptables can produce.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import type { XtState } from '../xtstate.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { cStrtoul } from '../numbers.js';

interface TimeData {
  /** Seconds since the epoch (u32); 0 = no start. */
  dateStart: number;
  /** Seconds since the epoch (u32); 2^31-1 = no stop. */
  dateStop: number;
  /** Seconds since midnight, 0..86399. */
  daytimeStart: number;
  daytimeStop: number;
  /** Bit i set = day i of the month (1..31); 0xfffffffe = all. */
  monthdays: number;
  /** Bit i set = weekday i (1 = Mon .. 7 = Sun); 0xfe = all. */
  weekdays: number;
  /** XT_TIME_LOCAL_TZ: use the kernel's timezone instead of UTC. */
  localTz: boolean;
  /** XT_TIME_CONTIGUOUS: the daily window spans midnight. */
  contiguous: boolean;
}

const XT_TIME_ALL_MONTHDAYS = 0xfffffffe;
const XT_TIME_ALL_WEEKDAYS = 0xfe;
const XT_TIME_MAX_DAYTIME = 24 * 60 * 60 - 1;
const INT_MAX = 0x7fffffff;
const WEEK_DAYS = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

const O_LOCAL_TZ = 7;
const O_UTC = 8;
const O_KERNEL_TZ = 9;
const TABLE: readonly XtOptEntry[] = [
  { name: 'datestart', id: 0 },
  { name: 'datestop', id: 1 },
  { name: 'timestart', id: 2 },
  { name: 'timestop', id: 3 },
  { name: 'contiguous', id: 4 },
  { name: 'weekdays', id: 6 },
  { name: 'monthdays', id: 5 },
  { name: 'localtz', id: O_LOCAL_TZ, excl: 1 << O_UTC },
  { name: 'utc', id: O_UTC, excl: (1 << O_LOCAL_TZ) | (1 << O_KERNEL_TZ) },
  { name: 'kerneltz', id: O_KERNEL_TZ, excl: 1 << O_UTC },
];

/** strtoul(s, &e, 10) into an unsigned int: the value and the rest. */
function ul(s: string, base = 10): { v: number; rest: string } {
  const r = cStrtoul(s, base);
  return { v: Number(r.value & 0xffffffffn), rest: s.slice(r.end) };
}

/** time_parse_date(): YYYY[-MM[-DD[Thh[:mm[:ss]]]]] as UTC. */
function parseDate(os: string): number {
  const bad = (): never => fail(`Invalid date "${os}" specified. Should be YYYY[-MM[-DD[Thh[:mm[:ss]]]]]`);
  const f = [0, 1, 1, 0, 0, 0]; // year month day hour minute second
  const seps = ['-', '-', 'T', ':', ':', ''];
  const max = [0, 12, 31, 23, 59, 59];
  let s = os;
  for (let k = 0; k < 6; k++) {
    const r = ul(s);
    f[k] = r.v;
    const e = r.rest[0];
    if ((e !== seps[k] || k === 5) && e !== undefined) return bad();
    if (k === 0 ? r.v < 1970 || r.v > 2038 : r.v > max[k]!) return bad();
    if (e === undefined) break;
    s = r.rest.slice(1);
  }
  const t = Date.UTC(f[0]!, f[1]! - 1, f[2]!, f[3]!, f[4]!, f[5]!) / 1000;
  if (t < 0) fail('mktime returned an error');
  return t >>> 0;
}

/** time_parse_minutes(): hh:mm[:ss] in seconds. */
function parseDaytime(os: string): number {
  const bad = (): never => fail(`invalid time "${os}" specified, should be hh:mm[:ss] format and within the boundaries`);
  const h = ul(os);
  if (h.rest[0] !== ':' || h.v > 23) return bad();
  const m = ul(h.rest.slice(1));
  if ((m.rest[0] !== ':' && m.rest !== '') || m.v > 59) return bad();
  let sec = 0;
  if (m.rest !== '') {
    const s = ul(m.rest.slice(1));
    if (s.rest !== '' || s.v > 59) return bad();
    sec = s.v;
  }
  return 3600 * h.v + 60 * m.v + sec;
}

/** my_strseg(): comma-separated fields, each cut to `keep` characters. */
function segments(arg: string, keep: number): string[] {
  const out: string[] = [];
  let rest: string | undefined = arg;
  while (rest !== undefined && rest !== '') {
    const c: number = rest.indexOf(',');
    const seg = c < 0 ? rest : rest.slice(0, c);
    rest = c < 0 ? undefined : rest.slice(c + 1);
    out.push(seg.slice(0, keep));
  }
  return out;
}

const bit = (i: number) => (1 << (i & 31)) >>> 0;

function parseMonthdays(arg: string): number {
  let ret = 0;
  for (const day of segments(arg, 2)) {
    const r = ul(day, 0);
    if ((r.rest[0] !== ',' && r.rest !== '') || r.v > 31) fail(`${day} is not a valid day for --monthdays`);
    ret = (ret | bit(r.v)) >>> 0;
  }
  return ret;
}

function parseWeekdays(arg: string): number {
  let ret = 0;
  for (const day of segments(arg, 3)) {
    const r = ul(day, 0);
    if (r.rest === '') {
      if (r.v === 0) fail('No, the week does NOT begin with Sunday.');
      ret = (ret | bit(r.v)) >>> 0;
      continue;
    }
    let valid = false;
    for (let i = 1; i < WEEK_DAYS.length; i++) {
      // strncmp(day, name, 2): the first two characters must be the name's
      if (day.slice(0, 2) === WEEK_DAYS[i]!.slice(0, 2)) {
        ret |= 1 << i;
        valid = true;
      }
    }
    if (!valid) fail(`${day} is not a valid day specifier`);
  }
  return ret & 0xff;
}

const p2 = (n: number) => String(n).padStart(2, '0');

function formatDate(t: number): string {
  const d = new Date(t * 1000);
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
}

const formatDaytime = (t: number) => `${p2(Math.floor(t / 3600))}:${p2(Math.floor(t / 60) % 60)}:${p2(t % 60)}`;

export const time: MatchModule<TimeData> = {
  kind: 'match',
  name: 'time',
  options: [
    { name: 'datestart', arg: 1 },
    { name: 'datestop', arg: 1 },
    { name: 'timestart', arg: 1 },
    { name: 'timestop', arg: 1 },
    { name: 'contiguous', arg: 0 },
    { name: 'weekdays', arg: 1, invert: true },
    { name: 'monthdays', arg: 1, invert: true },
    { name: 'localtz', arg: 0 },
    { name: 'utc', arg: 0 },
    { name: 'kerneltz', arg: 0 },
  ],
  init: () => ({
    dateStart: 0,
    dateStop: INT_MAX,
    daytimeStart: 0,
    daytimeStop: XT_TIME_MAX_DAYTIME,
    monthdays: XT_TIME_ALL_MONTHDAYS,
    weekdays: XT_TIME_ALL_WEEKDAYS,
    localTz: false,
    contiguous: false,
  }),
  parse(d, opt, arg, invert, ctx) {
    const a = arg ?? '';
    switch (opt) {
      case 'datestart':
        d.dateStart = parseDate(a);
        return;
      case 'datestop':
        d.dateStop = parseDate(a);
        return;
      case 'timestart':
        d.daytimeStart = parseDaytime(a);
        return;
      case 'timestop':
        d.daytimeStop = parseDaytime(a);
        return;
      case 'contiguous':
        d.contiguous = true;
        return;
      case 'localtz':
        ctx.warn('WARNING: --localtz is being replaced by --kerneltz, since "local" is ambiguous. Note the kernel timezone has caveats - see manpage for details.');
        d.localTz = true;
        return;
      case 'kerneltz':
        d.localTz = true;
        return;
      case 'utc':
        return;
      case 'monthdays':
        d.monthdays = parseMonthdays(a);
        if (invert) d.monthdays = (d.monthdays ^ XT_TIME_ALL_MONTHDAYS) >>> 0;
        return;
      case 'weekdays':
        d.weekdays = parseWeekdays(a);
        if (invert) d.weekdays ^= XT_TIME_ALL_WEEKDAYS;
        return;
    }
  },
  final(d, seen) {
    if (seen.has('contiguous') && d.daytimeStart < d.daytimeStop) {
      fail('time: --contiguous only makes sense when stoptime is smaller than starttime', 'option');
    }
    xtOptFcheck('time', TABLE, xtOptFlags(TABLE, seen));
  },
  save(d) {
    let s = '';
    if (d.daytimeStart !== 0 || d.daytimeStop !== XT_TIME_MAX_DAYTIME) {
      s += ` --timestart ${formatDaytime(d.daytimeStart)} --timestop ${formatDaytime(d.daytimeStop)}`;
    }
    if (d.monthdays !== XT_TIME_ALL_MONTHDAYS) {
      const days: number[] = [];
      for (let i = 1; i <= 31; i++) if (d.monthdays & bit(i)) days.push(i);
      s += ` --monthdays ${days.join(',')}`;
    }
    if (d.weekdays !== XT_TIME_ALL_WEEKDAYS) {
      const days: string[] = [];
      for (let i = 1; i <= 7; i++) if (d.weekdays & (1 << i)) days.push(WEEK_DAYS[i]!);
      s += ` --weekdays ${days.join(',')}`;
    }
    // time_print_date() skips 0 and LONG_MAX only
    if (d.dateStart !== 0) s += ` --datestart ${formatDate(d.dateStart)}`;
    if (d.dateStop !== 0) s += ` --datestop ${formatDate(d.dateStop)}`;
    if (d.localTz) s += ' --kerneltz';
    if (d.contiguous) s += ' --contiguous';
    return s;
  },
  lower: (c, m) => lowerCompatMatch(c, m, () => timeMt(m.data as TimeData, c.xtEnv().xt)),
  reference: (d, _family, backend, e) => asNftCompat(timeMt(d, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * time_mt() (net/netfilter/xt_time.c, kernel 6.18). The kernel reads the
 * wall clock when the rule runs (ktime_get_real_seconds); nfvm reads the
 * packet's time on the node's clock (the capture timestamp, or `trace
 * --time`), whole seconds since the epoch. `--kerneltz` subtracts the
 * kernel's sys_tz offset, which nothing sets on a fresh system: 0 minutes
 * west, as nfvm assumes.
 */
const SECONDS_PER_DAY = 86400;
const SYS_TZ_MINUTESWEST = 0;

function timeMt(info: TimeData, xt: XtState): MatchFn {
  return () => {
    let stamp = Math.floor(xt.nowNs / 1e9);
    if (info.localTz) stamp -= 60 * SYS_TZ_MINUTESWEST;
    if (stamp < info.dateStart || stamp > info.dateStop) return false;
    // localtime_1(): seconds into the day
    const packetTime = ((stamp % SECONDS_PER_DAY) + SECONDS_PER_DAY) % SECONDS_PER_DAY;
    if (info.daytimeStart < info.daytimeStop) {
      if (packetTime < info.daytimeStart || packetTime > info.daytimeStop) return false;
    } else {
      if (packetTime < info.daytimeStart && packetTime > info.daytimeStop) return false;
      // --contiguous: the early hours belong to the day the window started on
      if (info.contiguous && packetTime <= info.daytimeStop) stamp -= SECONDS_PER_DAY;
    }
    // localtime_2(): days since the epoch, 1970-01-01 a Thursday (4); Monday 1 .. Sunday 7
    const dse = Math.floor(stamp / SECONDS_PER_DAY);
    const weekday = ((((4 + dse - 1) % 7) + 7) % 7) + 1;
    if (!(info.weekdays & (1 << weekday))) return false;
    if (info.monthdays >>> 0 !== XT_TIME_ALL_MONTHDAYS) {
      // localtime_3(): the day of the month
      const monthday = new Date(dse * SECONDS_PER_DAY * 1000).getUTCDate();
      if (!((info.monthdays >>> 0) & (2 ** monthday))) return false;
    }
    return true;
  };
}

