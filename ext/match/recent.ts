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
import { formatIPv4, formatIPv6, formatIPv6Full, inetAton, parseIPv6 } from '../../core/addr.js';
import type { Family } from '../../core/ast.js';
import { NF_INET_FORWARD, NF_INET_POST_ROUTING } from '../../core/netfilter.js';
import { M_IIF } from '../../vm/layout.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import type { XtProcFile, XtSaveable, XtState } from '../xtstate.js';

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
  lower: (c, m) => lowerCompatMatch(c, m, () => recentMt(m.data as RecentData, c.family, c.xtEnv().xt), 1),
  reference: (d, family, backend, e) => asNftCompat(recentMt(d, family, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * xt_recent (net/netfilter/xt_recent.c, kernel 6.18) with its module
 * parameters at their defaults: ip_list_tot 100 addresses per list,
 * ip_pkt_list_tot 20 timestamps per address. A list (struct recent_table) is
 * per network namespace and per name, shared by IPv4 and IPv6 rules; the
 * first rule naming it sets its mask; a later rule needing more timestamps
 * (a larger --hitcount) flushes it and widens it, as recent_mt_check does.
 * Timestamps are jiffies of the node's clock (ext/xtstate.ts).
 */
const IP_LIST_TOT = 100;
const IP_PKT_LIST_TOT = 20;

interface RecentEntry {
  addr: Uint8Array;
  /** 'ip' or 'ip6' (the entry's family: a list holds both). */
  family: Family;
  ttl: number;
  /** Next timestamp slot + 1 (e->index). */
  index: number;
  nstamps: number;
  stamps: number[];
}

/** struct recent_table: the entries in LRU order (Map insertion order: the head is the oldest). */
class RecentTable implements XtProcFile, XtSaveable {
  readonly procPath: string;
  lru = new Map<string, RecentEntry>();
  constructor(
    readonly name: string,
    readonly mask: Uint8Array,
    public nstampsMaxMask: number,
  ) {
    this.procPath = `/proc/net/xt_recent/${name}`;
  }

  save(): () => void {
    const copy = [...this.lru].map(([k, e]) => [k, { ...e, stamps: e.stamps.slice() }] as const);
    const mask = this.nstampsMaxMask;
    return () => {
      this.lru = new Map(copy.map(([k, e]) => [k, { ...e, stamps: e.stamps.slice() }]));
      this.nstampsMaxMask = mask;
    };
  }

  /**
   * recent_seq_show() of every entry. The kernel walks its hash buckets,
   * whose order depends on a random seed (hash_rnd); nfvm lists the entries
   * in LRU order, least recently seen first.
   */
  procLines(): string[] {
    const out: string[] = [];
    for (const e of this.lru.values()) {
      const i = (e.index - 1) & this.nstampsMaxMask;
      const a = e.family === 'ip' ? formatIPv4(e.addr) : formatIPv6Full(e.addr);
      let line = `src=${a} ttl: ${e.ttl} last_seen: ${e.stamps[i]} oldest_pkt: ${e.index}`;
      for (let k = 0; k < e.nstamps; k++) line += `${k ? ',' : ''} ${e.stamps[k]}`;
      out.push(line);
    }
    return out;
  }
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function entryKey(family: Family, a: Uint8Array): string {
  let k = family === 'ip' ? '4' : '6';
  for (const b of a) k += String.fromCharCode(b);
  return k;
}

/** recent_mt_check(): joins or creates the list; recent_mt(): the match. */
function recentMt(info: RecentData, family: Family, xt: XtState): MatchFn {
  let nstampMask: number;
  if (info.hitCount < IP_PKT_LIST_TOT) nstampMask = roundupPow2(IP_PKT_LIST_TOT) - 1;
  else nstampMask = roundupPow2(info.hitCount) - 1;
  const key = `recent:${info.name}`;
  const known = xt.named.get(key) as RecentTable | undefined;
  if (known) {
    if (nstampMask > known.nstampsMaxMask) {
      known.lru.clear();
      known.nstampsMaxMask = nstampMask;
    }
  }
  // info->mask is a union nf_inet_addr that libxt_recent fills with ones before --mask sets its family's part
  const mask16 = new Uint8Array(16).fill(0xff);
  mask16.set(info.mask);
  const t = xt.get(key, () => new RecentTable(info.name, mask16, nstampMask));
  const alen = family === 'ip' ? 4 : 16;
  const saddr = family === 'ip' ? 12 : 8;
  const daddr = family === 'ip' ? 16 : 24;
  const addr = new Uint8Array(alen);
  return (par) => {
    const d = par.d;
    const nh = par.nh;
    const at = nh + (info.side === 'dest' ? daddr : saddr);
    // nf_inet_addr_mask() with the list's mask (16 bytes; an IPv4 list mask covers the first 4)
    for (let i = 0; i < alen; i++) addr[i] = d[at + i]! & t.mask[i]!;
    let ttl = d[nh + (family === 'ip' ? 8 : 7)]!;
    // use TTL as seen before forwarding: an output device and no local socket (forwarded packets)
    if ((par.hook === NF_INET_FORWARD || par.hook === NF_INET_POST_ROUTING) && par.meta[M_IIF] !== 0) ttl = (ttl + 1) & 0xff;
    const now = xt.jiffies();
    let ret = info.invert;
    const k = entryKey(family, addr);
    let e = t.lru.get(k);
    if (e && info.checkSet & RECENT_TTL && ttl !== e.ttl && e.ttl !== 0 && ttl !== 0) e = undefined;
    if (!e) {
      if (!(info.checkSet & RECENT_SET)) return ret;
      // recent_entry_init()
      if (t.lru.size >= IP_LIST_TOT) t.lru.delete(t.lru.keys().next().value!);
      const stamps = new Array<number>(t.nstampsMaxMask + 1).fill(0);
      stamps[0] = now;
      t.lru.set(k, { addr: Uint8Array.from(addr), family, ttl, index: 1, nstamps: 1, stamps });
      return !ret;
    }
    if (info.checkSet & RECENT_SET) ret = !ret;
    else if (info.checkSet & RECENT_REMOVE) {
      t.lru.delete(k);
      return !ret;
    } else if (info.checkSet & (RECENT_CHECK | RECENT_UPDATE)) {
      // unsigned long time = jiffies - info->seconds * HZ (a u32 product)
      const time = now - (Math.imul(info.seconds, xt.hz) >>> 0);
      let hits = 0;
      for (let i = 0; i < e.nstamps; i++) {
        if (info.seconds && time > e.stamps[i]!) continue;
        if (!info.hitCount || ++hits >= info.hitCount) {
          ret = !ret;
          break;
        }
      }
      if (info.checkSet & RECENT_REAP) {
        // recent_entry_reap(): the oldest entry goes when its newest stamp is older than `time`, unless about to be updated
        const [hk, head] = t.lru.entries().next().value!;
        if (!(head === e && info.checkSet & RECENT_UPDATE && ret) && time > head.stamps[head.index - 1]!) {
          t.lru.delete(hk);
          if (head === e) return ret;
        }
      }
    }
    if (info.checkSet & RECENT_SET || (info.checkSet & RECENT_UPDATE && ret)) {
      // recent_entry_update(): the next slot, and the entry moves to the LRU tail
      e.index &= t.nstampsMaxMask;
      e.stamps[e.index++] = now;
      if (e.index > e.nstamps) e.nstamps = e.index;
      t.lru.delete(k);
      t.lru.set(k, e);
      e.ttl = ttl;
    }
    return ret;
  };
}

