/**
 * Weighted least-connection (Linux 6.18 net/netfilter/ipvs/ip_vs_wlc.c).
 *
 * ip_vs_wlc_schedule(): start at the first dest neither overloaded nor of
 * weight <= 0, then a later non-overloaded dest wins when
 * loh * dest->weight > doh * least->weight (64-bit products, strict:
 * ties keep the earlier dest; a weight-0 dest never wins this test).
 * overhead = activeconns * 256 + inactconns (ip_vs_dest_conn_overhead).
 */
import { connOverhead, type IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';
import { weightedLeast } from './weighted.js';

export class WlcScheduler implements Scheduler {
  readonly name = 'wlc';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    return weightedLeast(dests, connOverhead);
  }
}
