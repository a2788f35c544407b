/**
 * Never queue (Linux 6.18 net/netfilter/ipvs/ip_vs_nq.c).
 *
 * ip_vs_nq_schedule(): skipping overloaded and weight-0 dests, the first
 * dest with no active connection is taken at once; otherwise sed's rule
 * (overhead activeconns + 1, strict `loh * w(dest) > doh * w(least)`).
 */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';
import { sedOverhead } from './sed.js';

export class NqScheduler implements Scheduler {
  readonly name = 'nq';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    let least: IpvsDest | null = null;
    let loh = 0;
    for (const d of dests) {
      if (d.overloaded || d.weight === 0) continue;
      const doh = sedOverhead(d);
      if (d.activeconns === 0) return d;
      if (!least || loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}
