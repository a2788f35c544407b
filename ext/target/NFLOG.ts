/**
 * NFLOG target: iptables `extensions/libxt_NFLOG.c`; kernel
 * `net/netfilter/xt_NFLOG.c` (`struct xt_nflog_info`).
 *
 *  - `--nflog-group` u16, `--nflog-threshold` u16 (XTTYPE_UINT16);
 *  - `--nflog-size` u32 sets `len` and the XT_NFLOG_F_COPY_LEN flag;
 *    `--nflog-range` u32 sets `len` only (it never worked; iptables warns);
 *    the two are mutually exclusive;
 *  - `--nflog-prefix` (min 1 character) is stored in `prefix[64]`, so it is
 *    cut to 63 bytes; newlines are refused.
 *
 * Saved in the order prefix, group, size/range, threshold, each only when
 * set (non-zero). Kernel checkentry: only known flags and a NUL-terminated
 * prefix (always true for what iptables builds); no table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { saveString } from '../save.js';
import { parseUintOpt } from '../numbers.js';
import { putString } from './LOG.js';
import { emitLog } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';

interface NflogData {
  /** Netlink multicast group (0..65535). */
  group: number;
  /** Bytes to copy to userspace (`--nflog-size`/`--nflog-range`). */
  len: number;
  /** Messages batched in the kernel before sending (0 = default). */
  threshold: number;
  /** XT_NFLOG_F_COPY_LEN (0x1) when `len` came from `--nflog-size`. */
  flags: number;
  /** Log prefix, at most 63 bytes ('' for none). */
  prefix: string;
}

const XT_NFLOG_F_COPY_LEN = 0x1;
/** sizeof(xt_nflog_info.prefix) */
const NFLOG_PREFIX_SIZE = 64;

export const NFLOG: TargetModule<NflogData> = {
  kind: 'target',
  name: 'NFLOG',
  options: [
    { name: 'nflog-group', arg: 1 },
    { name: 'nflog-prefix', arg: 1 },
    { name: 'nflog-range', arg: 1 },
    { name: 'nflog-size', arg: 1 },
    { name: 'nflog-threshold', arg: 1 },
  ],
  init: () => ({ group: 0, len: 0, threshold: 0, flags: 0, prefix: '' }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'nflog-group':
        d.group = parseUintOpt(arg!, 0, 0xffff, 'NFLOG', opt);
        return;
      case 'nflog-prefix':
        d.prefix = putString(arg!, 1, NFLOG_PREFIX_SIZE);
        if (arg!.includes('\n')) fail('Newlines not allowed in --log-prefix');
        return;
      case 'nflog-range':
      case 'nflog-size':
        d.len = parseUintOpt(arg!, 0, 0xffffffff, 'NFLOG', opt);
        return;
      case 'nflog-threshold':
        d.threshold = parseUintOpt(arg!, 0, 0xffff, 'NFLOG', opt);
        return;
    }
  },
  final(d, seen, ctx) {
    // NFLOG_check (x6_fcheck) runs before the generic exclusion check
    if (seen.has('nflog-range')) {
      ctx.warn('warn: --nflog-range has never worked and is no longer supported, please use --nflog-size instead');
    }
    if (seen.has('nflog-size')) d.flags |= XT_NFLOG_F_COPY_LEN;
    if (seen.has('nflog-range') && seen.has('nflog-size')) {
      fail('NFLOG: option "--nflog-range" cannot be used together with "--nflog-size".', 'option');
    }
  },
  save(d) {
    let s = '';
    if (d.prefix !== '') s += ' --nflog-prefix ' + saveString(d.prefix);
    if (d.group) s += ` --nflog-group ${d.group}`;
    if (d.flags & XT_NFLOG_F_COPY_LEN) s += ` --nflog-size ${d.len}`;
    else if (d.len) s += ` --nflog-range ${d.len}`;
    if (d.threshold) s += ` --nflog-threshold ${d.threshold}`;
    return s;
  },
  check(d) {
    if (d.flags & ~XT_NFLOG_F_COPY_LEN) return 'xt_NFLOG: unknown flags';
    return undefined;
  },
  lower: (c, t) => lowerNflog(c, t.data),
  reference: nflogTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/** NFLOG as iptables-nft lowers it: `log group`, with the snaplen only when --nflog-size was given. */
function lowerNflog(c: LowerCtx, d: NflogData): void {
  emitLog(c.b, { prefix: d.prefix || undefined, group: d.group, snaplen: d.flags & 1 ? d.len : 0, qthreshold: d.threshold });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * NFLOG target: net/netfilter/xt_NFLOG.c nflog_tg() (kernel 6.18): hands the
 * packet to nfnetlink_log and continues; recorded as an event.
 */
function nflogTg(info: NflogData): TargetFn {
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'NFLOG', chain: par.chain, rule: par.rule, group: info.group, prefix: info.prefix });
    return XT_CONTINUE;
  };
}
