/**
 * recent match: iptables extensions/libxt_recent.c (revision 1, both
 * families; libip6t_recent.t tests the IPv6 side), kernel
 * net/netfilter/xt_recent.c.
 *
 * Data mirrors `struct xt_recent_mtinfo_v1`: the command (`--set`,
 * `--rcheck`, `--update` or `--remove`, exactly one) and its modifiers in
 * `checkSet` (XT_RECENT_* bits), the list name (/proc/net/xt_recent/NAME,
 * default DEFAULT, cut to 199 bytes), which address is recorded (`--rsource`
 * default, `--rdest`), and the mask applied to it (an address, all ones by
 * default; it need not be a prefix). iptables-save always prints the name,
 * the mask and the side.
 *
 * Kernel checks (recent_mt_check): `--set`/`--remove` take no `--seconds`,
 * `--hitcount`, `--reap` or `--rttl`; `--reap` needs `--seconds`;
 * `--hitcount` below 65536; the name must be usable as a /proc file name.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheckAlso, xtOptFlags, type XtOptEntryAlso } from '../xtopt.js';
import { parseUintOpt } from '../numbers.js';
import { formatIPv4, formatIPv6, inetAton, parseIPv6 } from '../../core/addr.js';

/** XT_RECENT_* check_set bits. */
const RECENT_CHECK = 1;
const RECENT_SET = 2;
const RECENT_UPDATE = 4;
const RECENT_REMOVE = 8;
const RECENT_TTL = 16;
const RECENT_REAP = 32;

interface RecentData {
  /** XT_RECENT_* bits: the command and the TTL/reap modifiers. */
  checkSet: number;
  /** `!` before the command. */
  invert: boolean;
  /** `--seconds` (0 = not given). */
  seconds: number;
  /** `--hitcount` (0 = not given). */
  hitCount: number;
  /** List name. */
  name: string;
  /** XT_RECENT_SOURCE or XT_RECENT_DEST. */
  side: 'source' | 'dest';
  /** Address mask, 4 or 16 bytes. */
  mask: Uint8Array;
}

const XT_RECENT_NAME_LEN = 200;
const XT_RECENT_MAX_NSTAMPS = 65536;

const F = (id: number) => 1 << id;
const F_ANY_OP = F(0) | F(1) | F(2) | F(3);
const TABLE: readonly XtOptEntryAlso[] = [
  { name: 'set', id: 0, excl: F_ANY_OP },
  { name: 'rcheck', id: 1, excl: F_ANY_OP },
  { name: 'update', id: 2, excl: F_ANY_OP },
  { name: 'remove', id: 3, excl: F_ANY_OP },
  { name: 'seconds', id: 4 },
  { name: 'reap', id: 5, also: F(4) },
  { name: 'hitcount', id: 6 },
  { name: 'rttl', id: 7, excl: F(0) | F(3) },
  { name: 'name', id: 8 },
  { name: 'rsource', id: 9 },
  { name: 'rdest', id: 10 },
  { name: 'mask', id: 11 },
];

const OPS: ReadonlyArray<readonly [string, number]> = [
  ['set', RECENT_SET],
  ['rcheck', RECENT_CHECK],
  ['update', RECENT_UPDATE],
  ['remove', RECENT_REMOVE],
];

export const recent: MatchModule<RecentData> = {
  kind: 'match',
  name: 'recent',
  options: [
    { name: 'set', arg: 0, invert: true },
    { name: 'rcheck', arg: 0, invert: true },
    { name: 'update', arg: 0, invert: true },
    { name: 'remove', arg: 0, invert: true },
    { name: 'seconds', arg: 1 },
    { name: 'reap', arg: 0 },
    { name: 'hitcount', arg: 1 },
    { name: 'rttl', arg: 0 },
    { name: 'name', arg: 1 },
    { name: 'rsource', arg: 0 },
    { name: 'rdest', arg: 0 },
    { name: 'mask', arg: 1 },
  ],
  init: (ctx) => ({
    checkSet: 0,
    invert: false,
    seconds: 0,
    hitCount: 0,
    name: 'DEFAULT',
    side: 'source',
    mask: new Uint8Array(ctx.family === 'ip' ? 4 : 16).fill(0xff),
  }),
  parse(d, opt, arg, invert, ctx) {
    const op = OPS.find(([n]) => n === opt);
    if (op) {
      d.checkSet |= op[1];
      if (invert) d.invert = true;
      return;
    }
    const a = arg ?? '';
    switch (opt) {
      case 'seconds':
        d.seconds = parseUintOpt(a, 1, 0xffffffff, 'recent', opt);
        return;
      case 'hitcount':
        d.hitCount = parseUintOpt(a, 0, 0xffffffff, 'recent', opt);
        return;
      case 'reap':
        d.checkSet |= RECENT_REAP;
        return;
      case 'rttl':
        d.checkSet |= RECENT_TTL;
        return;
      case 'name': {
        const b = Buffer.from(a, 'utf8');
        d.name = b.length >= XT_RECENT_NAME_LEN ? b.subarray(0, XT_RECENT_NAME_LEN - 1).toString('utf8') : a;
        return;
      }
      case 'rsource':
        d.side = 'source';
        return;
      case 'rdest':
        d.side = 'dest';
        return;
      case 'mask': {
        // XTTYPE_HOST: getaddrinfo() of a numeric address (nfvm resolves no names but localhost)
        let m: Uint8Array | undefined;
        if (ctx.family === 'ip') m = a === 'localhost' ? Uint8Array.of(127, 0, 0, 1) : inetAton(a);
        else m = a === 'localhost' || a === 'ip6-localhost' ? parseIPv6('::1') : parseIPv6(a);
        if (!m) fail('getaddrinfo: Name or service not known');
        d.mask = m;
        return;
      }
    }
  },
  final(_d, seen) {
    const xf = xtOptFlags(TABLE, seen);
    if (!(xf & F_ANY_OP)) fail("recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'", 'option');
    xtOptFcheckAlso('recent', TABLE, xf);
  },
  save(d, ctx) {
    let s = d.invert ? ' !' : '';
    if (d.checkSet & RECENT_SET) s += ' --set';
    if (d.checkSet & RECENT_CHECK) s += ' --rcheck';
    if (d.checkSet & RECENT_UPDATE) s += ' --update';
    if (d.checkSet & RECENT_REMOVE) s += ' --remove';
    if (d.seconds) s += ` --seconds ${d.seconds}`;
    if (d.checkSet & RECENT_REAP) s += ' --reap';
    if (d.hitCount) s += ` --hitcount ${d.hitCount}`;
    if (d.checkSet & RECENT_TTL) s += ' --rttl';
    s += ` --name ${d.name}`;
    s += ` --mask ${ctx.family === 'ip' ? formatIPv4(d.mask) : formatIPv6(d.mask)}`;
    s += d.side === 'source' ? ' --rsource' : ' --rdest';
    return s;
  },
  check(d) {
    if (d.checkSet & (RECENT_SET | RECENT_REMOVE) && (d.seconds || d.hitCount || d.checkSet & (RECENT_TTL | RECENT_REAP))) {
      return 'xt_recent: --set and --remove take no --seconds, --hitcount, --reap or --rttl (EINVAL)';
    }
    if (d.checkSet & RECENT_REAP && !d.seconds) return 'xt_recent: --reap needs --seconds (EINVAL)';
    if (d.hitCount >= XT_RECENT_MAX_NSTAMPS) return `xt_recent: hitcount (${d.hitCount}) is larger than allowed maximum (${XT_RECENT_MAX_NSTAMPS - 1}) (EINVAL)`;
    const n = d.name;
    if (n === '' || n === '.' || n === '..' || n.includes('/')) return `xt_recent: invalid list name "${n}" (EINVAL)`;
    return undefined;
  },
  lower: 'needs the recent lists: addresses and their timestamps per list name',
  reference: 'needs the recent lists: addresses and their timestamps per list name',
};

