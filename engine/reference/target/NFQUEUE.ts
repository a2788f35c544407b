/**
 * NFQUEUE target: net/netfilter/xt_NFQUEUE.c nfqueue_tg_v3() (kernel 6.18;
 * the older revisions are special cases of it): NF_QUEUE with the queue
 * number in the high 16 bits, NF_VERDICT_FLAG_QUEUE_BYPASS with
 * --queue-bypass. --queue-balance without --queue-cpu-fanout spreads by a
 * jhash of the addresses with a boot-time random seed: refused as not
 * modelled; with --queue-cpu-fanout the queue is queuenum + cpu % total
 * (the cpu from M_CPU).
 */
import type { NfqueueData } from '../../../ext/target/NFQUEUE.js';
import { NFQ_FLAG_BYPASS, NFQ_FLAG_CPU_FANOUT } from '../../../ext/target/NFQUEUE.js';
import { M_CPU } from '../../../vm/layout.js';
import { NF_QUEUE, NF_VERDICT_QBITS, NF_VERDICT_FLAG_QUEUE_BYPASS } from '../../../core/netfilter.js';
import { NotModelled, type TargetFn } from '../../../ext/xt.js';


/** NF_QUEUE_NR(x), as an unsigned verdict. */
export function nfQueueNr(queue: number): number {
  return (((queue << NF_VERDICT_QBITS) & 0xffff0000) | NF_QUEUE) >>> 0;
}

export function NFQUEUE(info: NfqueueData): TargetFn {
  const fanout = (info.flags & NFQ_FLAG_CPU_FANOUT) !== 0;
  if (info.queuesTotal > 1 && !fanout) throw new NotModelled('target NFQUEUE --queue-balance (hash spreading)');
  const bypass = info.flags & NFQ_FLAG_BYPASS ? NF_VERDICT_FLAG_QUEUE_BYPASS : 0;
  return (par) => {
    let queue = info.queuenum;
    if (info.queuesTotal > 1) queue = info.queuenum + (par.meta[M_CPU]! % info.queuesTotal);
    return (nfQueueNr(queue) | bypass) >>> 0;
  };
}
