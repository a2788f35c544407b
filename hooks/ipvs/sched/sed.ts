/**
 * Shortest expected delay (Linux 6.18 net/netfilter/ipvs/ip_vs_sed.c).
 *
 * ip_vs_sed_dest_overhead() = activeconns + 1 (inactive connections do not
 * count); the selection loop is wlc's (weighted.ts).
 */
import type { IpvsDest } from '../dest.js';
import type { Scheduler } from './sched.js';
import { weightedLeast } from './weighted.js';

export function sedOverhead(d: IpvsDest): number {
  return d.activeconns + 1;
}

export class SedScheduler implements Scheduler {
  readonly name = 'sed';
  destChanged(): void {}
  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    return weightedLeast(dests, sedOverhead);
  }
}
