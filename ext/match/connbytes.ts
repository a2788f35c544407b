/**
 * connbytes match: libxt_connbytes.c, kernel xt_connbytes.c: compare the
 * connection's packet/byte/average-packet-size counter of one or both
 * directions with a range. `!` is stored by swapping from and to: the
 * kernel matches `from <= x <= to` when to >= from, else `x < to || x > from`.
 * No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import { M_CT_ID } from '../../vm/layout.js';
import { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY } from '../../core/netfilter.js';

const U64_MAX = 0xffffffffffffffffn;

/** struct xt_connbytes_info, decoded. */
interface ConnbytesData {
  /** Counter range (u64); from > to encodes the inverted range. */
  from: bigint;
  to: bigint;
  mode: 'packets' | 'bytes' | 'avgpkt';
  dir: 'original' | 'reply' | 'both';
}

/** XTTYPE_UINT64RC as xtopt_parse_mint parses it. */
function parseU64Range(arg: string): bigint[] {
  const vals: bigint[] = [];
  let pos = 0;
  for (;;) {
    if (vals.length === 2) fail('connbytes: Too many components for option "--connbytes" (max: 2)');
    let end = pos;
    let v: bigint;
    if (pos >= arg.length || arg[pos] === ':') {
      v = vals.length === 1 ? U64_MAX : 0n;
    } else {
      const neg = /^\s*-/.test(arg.slice(pos));
      const r = strtoumax(arg, 0, pos);
      if (neg || r.end === pos || r.overflow) {
        fail(`connbytes: bad value for option "--connbytes" near "${arg.slice(pos)}", or out of range (0-18446744073709551615).`);
      }
      end = r.end;
      if (end < arg.length && arg[end] !== ':') fail(`connbytes: Argument to "--connbytes" has unexpected characters near "${arg.slice(end)}".`);
      v = r.value;
    }
    vals.push(v);
    if (end >= arg.length) break;
    pos = end + 1;
  }
  return vals;
}

export const connbytes: MatchModule<ConnbytesData> = {
  kind: 'match',
  name: 'connbytes',
  options: [
    { name: 'connbytes', arg: 1, invert: true },
    { name: 'connbytes-dir', arg: 1 },
    { name: 'connbytes-mode', arg: 1 },
  ],
  init: () => ({ from: 0n, to: U64_MAX, mode: 'packets', dir: 'original' }),
  parse(d, opt, arg, invert) {
    const a = arg!;
    switch (opt) {
      case 'connbytes': {
        const v = parseU64Range(a);
        d.from = v[0]!;
        d.to = v.length === 2 ? v[1]! : U64_MAX;
        // iptables 1.8.13 refuses a reversed range (`!` is the way to invert)
        if (d.from > d.to) fail(`connbytes: invalid range for option "--connbytes": ${d.from} is greater than ${d.to}`);
        if (invert) [d.from, d.to] = [d.to, d.from];
        return;
      }
      case 'connbytes-dir':
        if (a !== 'original' && a !== 'reply' && a !== 'both') fail(`Unknown --connbytes-dir \`${a}'`);
        d.dir = a;
        return;
      case 'connbytes-mode':
        if (a !== 'packets' && a !== 'bytes' && a !== 'avgpkt') fail(`Unknown --connbytes-mode \`${a}'`);
        d.mode = a;
        return;
    }
  },
  final(_d, seen) {
    for (const o of ['connbytes', 'connbytes-dir', 'connbytes-mode']) {
      if (!seen.has(o)) fail(`connbytes: option "--${o}" must be specified`, 'option');
    }
  },
  save(d) {
    let s = '';
    let from = d.from;
    let to = d.to;
    if (from > to) {
      s += ' !';
      [from, to] = [to, from];
    }
    s += ` --connbytes ${from}`;
    if (to !== 0n && to < U64_MAX) s += `:${to}`;
    return s + ` --connbytes-mode ${d.mode} --connbytes-dir ${d.dir}`;
  },
  lower: (c, m) => lowerCompatMatch(c, m, () => connbytesMt(m.data as ConnbytesData)),
  reference: (d, _family, backend) => asNftCompat(connbytesMt(d), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * connbytes_mt() (net/netfilter/xt_connbytes.c, kernel 6.18): the
 * conntrack's accounting counters (nf_conn_acct, kept by the node's
 * conntrack: loading a connbytes rule turns nf_conntrack_acct on, as
 * connbytes_mt_check does) of one direction or both, or the average packet
 * size (bytes / packets, 0 before any packet), against [from, to], or
 * outside (to, from) when inverted. No conntrack (untracked, a template,
 * none) or no accounting: no match.
 */
function connbytesMt(info: ConnbytesData): MatchFn {
  const from = Number(info.from);
  const to = Number(info.to);
  const dirs = info.dir === 'original' ? [IP_CT_DIR_ORIGINAL] : info.dir === 'reply' ? [IP_CT_DIR_REPLY] : [IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY];
  return (par) => {
    const id = par.meta[M_CT_ID]!;
    const t = par.env.ct;
    if (id < 0 || !t) return false;
    let pkts = 0;
    let bytes = 0;
    for (const dir of dirs) {
      const p = t.acctCounter(id, dir, false);
      if (p < 0) return false;
      pkts += p;
      bytes += t.acctCounter(id, dir, true);
    }
    const what = info.mode === 'packets' ? pkts : info.mode === 'bytes' ? bytes : pkts !== 0 ? Math.floor(bytes / pkts) : 0;
    // counters stay below 2^53; the bounds compare as u64 values would above it
    if (info.to >= info.from) return what <= to && what >= from;
    return what < to || what > from;
  };
}

