/**
 * Weighted failover (Linux 6.18 net/netfilter/ipvs/ip_vs_fo.c).
 *
 * ip_vs_fo_schedule(): the non-overloaded dest of the highest weight > 0;
 * ties keep the first in list order.
 */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';

export class FoScheduler implements Scheduler {
  readonly name = 'fo';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    let h: IpvsDest | null = null;
    for (const d of dests) {
      if (!d.overloaded && d.weight > 0 && (!h || d.weight > h.weight)) h = d;
    }
    return h;
  }
}
