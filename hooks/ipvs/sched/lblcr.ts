/**
 * Locality-based least-connection with replication (Linux 6.18
 * net/netfilter/ipvs/ip_vs_lblcr.c).
 *
 * Each destination address has a set of dests (ip_vs_dest_set, newest
 * first: list_add_rcu). ip_vs_lblcr_schedule(): with an entry, its lastuse
 * is refreshed and ip_vs_dest_set_min() picks the set's weighted least
 * loaded dest (the first not overloaded, available and of weight > 0,
 * then strict loh * w(dest) > doh * w(least) among the available ones);
 * a set of more than one dest unchanged for the expiration
 * (lblcr_expiration, 24 h) loses ip_vs_dest_set_max(), its weighted most
 * loaded dest (strict moh * w(dest) < doh * w(most), weight > 0). The
 * picked dest serves unless it is missing or overloaded (is_overloaded);
 * then __ip_vs_lblcr_schedule() (weighted least-connection over the
 * service, as wlc) picks one and it joins the set. Without an entry, the
 * scheduled dest makes a new one.
 */
import { IP_VS_DEST_F_AVAILABLE, connOverhead, type IpvsDest } from '../dest.js';
import type { SchedPacket, Scheduler } from './sched.js';
import { weightedLeast } from './weighted.js';
import { DEFAULT_EXPIRATION, LocalityTable, localityOverloaded, type LocalityEntry } from './locality.js';

interface DestSet {
  /** Newest first. */
  list: IpvsDest[];
  lastmod: number;
}

interface LblcrEntry extends LocalityEntry {
  readonly set: DestSet;
}

/** ip_vs_dest_set_insert(): at the head, unless (check) already there. */
function setInsert(set: DestSet, dest: IpvsDest, check: boolean, now: number): void {
  if (check && set.list.includes(dest)) return;
  set.list.unshift(dest);
  set.lastmod = now;
}

/** ip_vs_dest_set_min(). */
export function destSetMin(set: readonly IpvsDest[]): IpvsDest | null {
  let i = 0;
  let least: IpvsDest | null = null;
  for (; i < set.length; i++) {
    const d = set[i]!;
    if (d.overloaded) continue;
    if (d.weight > 0 && d.flags & IP_VS_DEST_F_AVAILABLE) {
      least = d;
      break;
    }
  }
  if (!least) return null;
  let loh = connOverhead(least);
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    if (d.overloaded) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight && d.flags & IP_VS_DEST_F_AVAILABLE) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_dest_set_max(). */
export function destSetMax(set: readonly IpvsDest[]): IpvsDest | null {
  let i = 0;
  let most: IpvsDest | null = null;
  for (; i < set.length; i++) {
    if (set[i]!.weight > 0) {
      most = set[i]!;
      break;
    }
  }
  if (!most) return null;
  let moh = connOverhead(most);
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    const doh = connOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export class LblcrScheduler implements Scheduler {
  readonly name = 'lblcr';
  readonly table: LocalityTable<LblcrEntry>;

  constructor(hz = 250, readonly expiration = DEFAULT_EXPIRATION) {
    this.table = new LocalityTable(hz, expiration);
  }

  destChanged(): void {}

  /** The set of a destination address (for tests and listings), newest first. */
  setOf(addr: Uint8Array): readonly IpvsDest[] | undefined {
    return this.table.get(addr)?.set.list;
  }

  schedule(dests: readonly IpvsDest[], p: SchedPacket, now: number): IpvsDest | null {
    this.table.expire(now);
    const en = this.table.get(p.daddr);
    if (en) {
      en.lastuse = now;
      const set = en.set;
      let dest = destSetMin(set.list);
      // More than one destination and the set unchanged for the expiration: the most loaded one goes.
      if (set.list.length > 1 && ((now - ((set.lastmod + this.expiration * this.table.hz) | 0)) | 0) > 0) {
        const m = destSetMax(set.list);
        if (m) {
          set.list.splice(set.list.indexOf(m), 1);
          set.lastmod = now;
        }
      }
      if (dest && !localityOverloaded(dest, dests)) return dest;
      dest = weightedLeast(dests, connOverhead);
      if (!dest) return null;
      setInsert(set, dest, true, now);
      return dest;
    }
    const dest = weightedLeast(dests, connOverhead);
    if (!dest) return null;
    const e: LblcrEntry = { addr: p.daddr.slice(), set: { list: [], lastmod: now }, lastuse: now };
    setInsert(e.set, dest, false, now);
    this.table.add(e);
    return dest;
  }
}
