/**
 * Overflow-connection (Linux 6.18 net/netfilter/ipvs/ip_vs_ovf.c).
 *
 * ip_vs_ovf_schedule(): the highest weight among dests that are not
 * overloaded, have weight != 0 and no more active connections than their
 * weight; ties keep the first in list order.
 */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';

export class OvfScheduler implements Scheduler {
  readonly name = 'ovf';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    let h: IpvsDest | null = null;
    let hw = 0;
    for (const d of dests) {
      const w = d.weight;
      if (d.overloaded || d.activeconns > w || w === 0) continue;
      if (!h || w > hw) {
        h = d;
        hw = w;
      }
    }
    return h;
  }
}
