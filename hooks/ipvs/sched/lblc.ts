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
import { DEFAULT_EXPIRATION, ExpiryTimer, localityHashkey, localityOverloaded, timeBefore } from './locality.js';

interface LblcEntry {
  readonly addr: Uint8Array;
  dest: IpvsDest;
  lastuse: number;
}

export class LblcScheduler implements Scheduler {
  readonly name = 'lblc';
  /** The table's buckets by ip_vs_lblc_hashkey (entries per bucket newest first: hlist_add_head_rcu). */
  readonly buckets = new Map<number, LblcEntry[]>();
  private readonly timer: ExpiryTimer;

  constructor(readonly hz = 250, readonly expiration = DEFAULT_EXPIRATION) {
    this.timer = new ExpiryTimer(hz);
  }

  /** ip_vs_lblc_flush() runs only when the service goes; a removed dest's entries stay until they expire. */
  destChanged(): void {}

  private get(addr: Uint8Array): LblcEntry | undefined {
    return this.buckets.get(localityHashkey(addr))?.find((e) => sameAddr(e.addr, addr));
  }

  /** ip_vs_lblc_full_check(): entries unused for the expiration go. */
  private fullCheck(at: number): void {
    const exp = this.expiration * this.hz;
    for (const [k, list] of this.buckets) {
      const keep = list.filter((e) => timeBefore(at, (e.lastuse + exp) | 0));
      if (keep.length) this.buckets.set(k, keep);
      else this.buckets.delete(k);
    }
  }

  schedule(dests: readonly IpvsDest[], p: SchedPacket, now: number): IpvsDest | null {
    this.timer.catchUp(now, (at) => this.fullCheck(at));
    const en = this.get(p.daddr);
    if (en) {
      en.lastuse = now;
      const d = en.dest;
      if (d.flags & IP_VS_DEST_F_AVAILABLE && d.weight > 0 && !localityOverloaded(d, dests)) return d;
    }
    const dest = weightedLeast(dests, connOverhead);
    if (!dest) return null;
    // ip_vs_lblc_new(): the same dest keeps the entry; another replaces it.
    if (en && en.dest === dest) return dest;
    const k = localityHashkey(p.daddr);
    const list = (this.buckets.get(k) ?? []).filter((e) => e !== en);
    list.unshift({ addr: p.daddr.slice(), dest, lastuse: now });
    this.buckets.set(k, list);
    return dest;
  }
}

export function sameAddr(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
