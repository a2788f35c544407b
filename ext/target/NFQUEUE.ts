/**
 * NFQUEUE target: iptables `extensions/libxt_NFQUEUE.c` (revision 3, the
 * one iptables picks on current kernels); kernel `net/netfilter/xt_NFQUEUE.c`
 * (`struct xt_NFQ_info_v3`).
 *
 *  - `--queue-num N` (u16) and `--queue-balance A:B` (XTTYPE_UINT16RC with
 *    max 65534, so `:` means 0:65534) are mutually exclusive; the range is
 *    stored as first queue + count and needs A < B;
 *  - `--queue-bypass` sets NFQ_FLAG_BYPASS, `--queue-cpu-fanout` sets
 *    NFQ_FLAG_CPU_FANOUT and requires `--queue-balance`.
 *
 * Saved as ` --queue-balance A:B` when more than one queue, else
 * ` --queue-num N`, then the flags. Kernel checkentry: a non-zero queue
 * count, the last queue at most 65535, only known flags.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt, strtoulPrefix } from '../numbers.js';
import { emitQueue } from '../../vm/expr/index.js';
import { nfqueueHash, NFQUEUE_JHASH_INITVAL } from '../../vm/expr/queue.js';
import type { LowerCtx } from '../lower.js';
import { M_CPU } from '../../vm/layout.js';
import { NF_QUEUE, NF_VERDICT_QBITS, NF_VERDICT_FLAG_QUEUE_BYPASS } from '../../core/netfilter.js';
import type { TargetFn } from '../xt.js';

interface NfqueueData {
  /** First queue number. */
  queuenum: number;
  /** Number of queues balanced over (u16; 1 for a single queue). */
  queuesTotal: number;
  /** NFQ_FLAG_BYPASS 0x01, NFQ_FLAG_CPU_FANOUT 0x02. */
  flags: number;
}

const NFQ_FLAG_BYPASS = 0x01;
const NFQ_FLAG_CPU_FANOUT = 0x02;
const NFQ_FLAG_MASK = 0x03;

/** The `--queue-balance` entry's `.max`. */
const BALANCE_MAX = 0xffff - 1;

/** xtopt_parse_mint for a two-component u16 range separated by `:`. */
function parseBalance(arg: string): number[] {
  const vals: number[] = [];
  let p = 0;
  for (;;) {
    if (vals.length === 2) fail(`NFQUEUE: Too many components for option "--queue-balance" (max: 2)`);
    const rest = arg.slice(p);
    let value: number;
    let used: number;
    if (rest === '' || rest[0] === ':') {
      value = vals.length === 1 ? BALANCE_MAX : 0;
      used = 0;
    } else {
      const r = strtoulPrefix(rest, 0n, BigInt(BALANCE_MAX));
      if (!r) fail(`NFQUEUE: bad value for option "--queue-balance" near "${rest}", or out of range (0-${BALANCE_MAX}).`);
      if (r.rest !== '' && r.rest[0] !== ':') {
        fail(`NFQUEUE: Argument to "--queue-balance" has unexpected characters near "${r.rest}"`);
      }
      value = Number(r.value);
      used = rest.length - r.rest.length;
    }
    vals.push(value);
    p += used;
    if (p >= arg.length) break;
    p++; // the separator
  }
  return vals;
}

export const NFQUEUE: TargetModule<NfqueueData> = {
  kind: 'target',
  name: 'NFQUEUE',
  options: [
    { name: 'queue-num', arg: 1 },
    { name: 'queue-balance', arg: 1 },
    { name: 'queue-bypass', arg: 0 },
    { name: 'queue-cpu-fanout', arg: 0 },
  ],
  init: () => ({ queuenum: 0, queuesTotal: 1, flags: 0 }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'queue-num':
        d.queuenum = parseUintOpt(arg!, 0, 0xffff, 'NFQUEUE', opt);
        return;
      case 'queue-balance': {
        const r = parseBalance(arg!);
        if (r.length !== 2) fail(`Bad range "${arg}"`);
        if (r[0]! >= r[1]!) fail(`${r[0]} should be less than ${r[1]}`);
        d.queuenum = r[0]!;
        d.queuesTotal = (r[1]! - r[0]! + 1) & 0xffff;
        return;
      }
      case 'queue-bypass':
        d.flags |= NFQ_FLAG_BYPASS;
        return;
      case 'queue-cpu-fanout':
        d.flags |= NFQ_FLAG_CPU_FANOUT;
        return;
    }
  },
  final(_d, seen) {
    if (seen.has('queue-num') && seen.has('queue-balance')) {
      fail('NFQUEUE: option "--queue-num" cannot be used together with "--queue-balance".', 'option');
    }
    if (seen.has('queue-cpu-fanout') && !seen.has('queue-balance')) {
      fail('NFQUEUE: option "--queue-cpu-fanout" also requires "--queue-balance".', 'option');
    }
  },
  save(d) {
    let s = d.queuesTotal > 1 ? ` --queue-balance ${d.queuenum}:${d.queuenum + d.queuesTotal - 1}` : ` --queue-num ${d.queuenum}`;
    if (d.flags & NFQ_FLAG_BYPASS) s += ' --queue-bypass';
    if (d.flags & NFQ_FLAG_CPU_FANOUT) s += ' --queue-cpu-fanout';
    return s;
  },
  check(d) {
    if (d.queuesTotal === 0) return 'xt_NFQUEUE: number of total queues is 0';
    const maxid = d.queuesTotal - 1 + d.queuenum;
    if (maxid > 0xffff) return `xt_NFQUEUE: number of queues (${d.queuesTotal}) out of range (got ${maxid})`;
    if (d.flags & ~NFQ_FLAG_MASK) return 'xt_NFQUEUE: unknown flags';
    return undefined;
  },
  lower: (c, t) => lowerNfqueue(c, t.data),
  reference: nfqueueTg,
};

// --- lowering (the VM engine) ------------------------------------------------
/** NFQUEUE (and QUEUE) → `queue` with the number, the fanout total and the bypass/fanout flags. */
function lowerNfqueue(c: LowerCtx, d: NfqueueData): void {
  emitQueue(c.b, d.queuenum, Math.max(1, d.queuesTotal), d.flags & 0x3);
}

// --- reference semantics (--engine reference) --------------------------------
/*
 * NFQUEUE target: net/netfilter/xt_NFQUEUE.c nfqueue_tg_v3() (kernel 6.18;
 * the older revisions are special cases of it): NF_QUEUE with the queue
 * number in the high 16 bits, NF_VERDICT_FLAG_QUEUE_BYPASS with
 * --queue-bypass. --queue-balance spreads by nfqueue_hash() (the flow's
 * addresses under jhash_initval, vm/expr/queue.ts says which key the model
 * uses); with --queue-cpu-fanout the queue is queuenum + cpu % total (the
 * cpu from M_CPU).
 */
/** NF_QUEUE_NR(x), as an unsigned verdict. */
function nfQueueNr(queue: number): number {
  return (((queue << NF_VERDICT_QBITS) & 0xffff0000) | NF_QUEUE) >>> 0;
}

function nfqueueTg(info: NfqueueData): TargetFn {
  const fanout = (info.flags & NFQ_FLAG_CPU_FANOUT) !== 0;
  const bypass = info.flags & NFQ_FLAG_BYPASS ? NF_VERDICT_FLAG_QUEUE_BYPASS : 0;
  return (par) => {
    let queue = info.queuenum;
    if (info.queuesTotal > 1) {
      queue = fanout ? info.queuenum + (par.meta[M_CPU]! % info.queuesTotal) : nfqueueHash(par.pkt, info.queuenum, info.queuesTotal, NFQUEUE_JHASH_INITVAL);
    }
    return (nfQueueNr(queue) | bypass) >>> 0;
  };
}
