/**
 * Weighted round-robin (Linux 6.18 net/netfilter/ipvs/ip_vs_wrr.c).
 *
 * The mark holds cl (current dest or the list head), cw (current weight),
 * mw (max weight - (di - 1)) and di (gcd of the positive weights).
 * ip_vs_wrr_schedule() walks on from cl to the first non-overloaded dest
 * with weight >= cw; at the end of the list cw drops by di, and when it
 * reaches 0 or less it restarts at mw. ip_vs_wrr_dest_changed() (every
 * add/del/upd) resets cl to the head and keeps cw when it still fits:
 * so the first cw after a restore depends on the order the dests were added.
 */
import type { IpvsDest } from '../dest.js';
import { gcd, type Scheduler } from './sched.js';

export class WrrScheduler implements Scheduler {
  readonly name = 'wrr';
  /** cl as an index into the list, -1 for the head. */
  private cl = -1;
  cw = 0;
  mw = 0;
  di = 1;

  /** ip_vs_wrr_init_svc() over the dests present at creation. */
  constructor(dests: readonly IpvsDest[] = []) {
    this.di = gcdWeight(dests);
    this.mw = maxWeight(dests) - (this.di - 1);
    this.cw = this.mw;
  }

  destChanged(dests: readonly IpvsDest[]): void {
    this.cl = -1;
    this.di = gcdWeight(dests);
    this.mw = maxWeight(dests) - (this.di - 1);
    if (this.cw > this.mw || !this.cw) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  schedule(dests: readonly IpvsDest[]): IpvsDest | null {
    let pos = this.cl;
    if (this.mw === 0) return null; // err_noavail: cl stays
    const last = pos;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    for (;;) {
      // list_for_each_entry_continue_rcu: from the entry after pos to the end.
      for (pos = pos + 1; pos < dests.length; pos++) {
        const d = dests[pos]!;
        if (!d.overloaded && d.weight >= this.cw) {
          this.cl = pos;
          return d;
        }
        if (pos === stop) {
          this.cl = pos; // err_over
          return null;
        }
      }
      pos = -1; // the loop leaves dest at the head
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === -1) {
          this.cl = -1; // err_over
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
    }
  }
}

/** ip_vs_wrr_gcd_weight(): gcd of the positive weights, 1 when none. */
function gcdWeight(dests: readonly IpvsDest[]): number {
  let g = 0;
  for (const d of dests) if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
  return g || 1;
}

/** ip_vs_wrr_max_weight(). */
function maxWeight(dests: readonly IpvsDest[]): number {
  let w = 0;
  for (const d of dests) if (d.weight > w) w = d.weight;
  return w;
}
