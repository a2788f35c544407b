/**
 * Round-robin (Linux 6.18 net/netfilter/ipvs/ip_vs_rr.c).
 *
 * ip_vs_rr_schedule() keeps the last chosen dest (sched_data, the list head
 * at first) and walks on from it, wrapping once, to the first dest that is
 * not IP_VS_DEST_F_OVERLOAD with weight > 0; the last chosen one is checked
 * last. ip_vs_rr_del_dest() moves sched_data back when that dest is removed.
 */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';

export class RrScheduler implements Scheduler {
  readonly name = 'rr';
  /** sched_data: the last chosen dest, null for the list head. */
  private last: IpvsDest | null = null;

  destChanged(dests: readonly IpvsDest[]): void {
    if (this.last && !dests.includes(this.last)) this.last = null;
  }

  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    const n = dests.length;
    const start = this.last ? dests.indexOf(this.last) + 1 : 0;
    for (let k = 0; k < n; k++) {
      const d = dests[(start + k) % n]!;
      if (!d.overloaded && d.weight > 0) {
        this.last = d;
        return d;
      }
    }
    return null;
  }
}
