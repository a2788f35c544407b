/**
 * Least-connection (Linux 6.18 net/netfilter/ipvs/ip_vs_lc.c).
 *
 * ip_vs_lc_schedule(): the first dest (list order) with the smallest
 * ip_vs_dest_conn_overhead() among those neither overloaded nor of weight 0;
 * a later dest replaces it only when strictly smaller.
 */
import { connOverhead, type IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';

export class LcScheduler implements Scheduler {
  readonly name = 'lc';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    let least: IpvsDest | null = null;
    let loh = 0;
    for (const d of dests) {
      if (d.overloaded || d.weight === 0) continue;
      const doh = connOverhead(d);
      if (!least || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}
