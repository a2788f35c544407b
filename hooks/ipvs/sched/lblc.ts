/**
 * Locality-based least-connection (Linux 6.18 net/netfilter/ipvs/ip_vs_lblc.c).
 *
 * ip_vs_lblc_schedule(): the entry of the packet's destination address
 * (ip_vs_lblc_get) keeps the dest it was given while that dest is
 * available, of weight > 0 and not overloaded (is_overloaded: more active
 * connections than its weight while another dest has fewer than half its
 * own); its lastuse is refreshed. Otherwise __ip_vs_lblc_schedule() picks
 * by weighted least-connection (as wlc: the first dest neither overloaded
 * nor of weight <= 0, then strict loh * w(dest) > doh * w(least)) and
 * ip_vs_lblc_new() makes that the entry's dest (a different dest replaces
 * the entry).
 */
import { IP_VS_DEST_F_AVAILABLE, connOverhead, type IpvsDest } from '../dest.js';
import type { SchedPacket, Scheduler } from './sched.js';
import { weightedLeast } from './weighted.js';
import { DEFAULT_EXPIRATION, LocalityTable, localityOverloaded, type LocalityEntry } from './locality.js';

interface LblcEntry extends LocalityEntry {
  dest: IpvsDest;
}

export class LblcScheduler implements Scheduler {
  readonly name = 'lblc';
  readonly table: LocalityTable<LblcEntry>;

  constructor(hz = 250, expiration = DEFAULT_EXPIRATION) {
    this.table = new LocalityTable(hz, expiration);
  }

  /** ip_vs_lblc_flush() runs only when the service goes; a removed dest's entries stay until they expire. */
  destChanged(): void {}

  schedule(dests: readonly IpvsDest[], p: SchedPacket, now: number): IpvsDest | null {
    this.table.expire(now);
    const en = this.table.get(p.daddr);
    if (en) {
      en.lastuse = now;
      const d = en.dest;
      if (d.flags & IP_VS_DEST_F_AVAILABLE && d.weight > 0 && !localityOverloaded(d, dests)) return d;
    }
    const dest = weightedLeast(dests, connOverhead);
    if (!dest) return null;
    // ip_vs_lblc_new(): the same dest keeps the entry; another replaces it.
    if (en && en.dest === dest) return dest;
    this.table.add({ addr: p.daddr.slice(), dest, lastuse: now }, en);
    return dest;
  }
}
