/**
 * The two-stage loop wlc and sed share (Linux 6.18 ip_vs_wlc.c
 * ip_vs_wlc_schedule, ip_vs_sed.c ip_vs_sed_schedule): the first available
 * dest, then strict `loh * w(dest) > doh * w(least)` replacement.
 * Products stay below 2^53 (overhead < 2^40, weight < 2^16).
 */
import type { IpvsDest } from '../dest.js';

export function weightedLeast(dests: readonly IpvsDest[], overhead: (d: IpvsDest) => number): IpvsDest | null {
  let i = 0;
  let least: IpvsDest | null = null;
  for (; i < dests.length; i++) {
    const d = dests[i]!;
    if (!d.overloaded && d.weight > 0) {
      least = d;
      break;
    }
  }
  if (!least) return null;
  let loh = overhead(least);
  for (i++; i < dests.length; i++) {
    const d = dests[i]!;
    if (d.overloaded) continue;
    const doh = overhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}
