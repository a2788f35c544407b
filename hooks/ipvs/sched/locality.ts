/**
 * What the locality-based schedulers share (Linux 6.18
 * net/netfilter/ipvs/ip_vs_lblc.c, ip_vs_lblcr.c): the table keyed by the
 * packet's destination address, its hash, the overload test and the
 * periodic expiry timer.
 *
 * The timer (ip_vs_lblc_check_expire / ip_vs_lblcr_check_expire) runs
 * every CHECK_EXPIRE_TIME (60 s) from the service's creation. Its counter
 * starts at 1 (init_svc) and goes up by one at each tick; the tick that
 * finds it at a multiple of COUNT_FOR_FULL_EXPIRATION runs a full check,
 * which deletes each entry unused for the expiration (sysctl
 * lblc_expiration / lblcr_expiration, 24 hours), and sets it back to 1:
 * full checks at ticks 30, 60, 90, ... Between two packets the table does
 * not change, so the timer is caught up lazily at the next schedule():
 * only the last full check before `now` can delete anything. A tick that
 * finds the table past max_size (16 entries per bucket, 16384 destination
 * addresses) trims it instead of counting, which is not modelled (nor,
 * then, the later full checks it delays). The service's creation is taken
 * to be the first packet's time (the snapshot does not say when ipvsadm
 * added it).
 */
import type { IpvsDest } from '../dest.js';
import { addrFold, hash32 } from './sched.js';

/** CONFIG_IP_VS_LBLC_TAB_BITS / CONFIG_IP_VS_LBLCR_TAB_BITS default 10. */
export const LOCALITY_TAB_BITS = 10;
/** CHECK_EXPIRE_TIME (seconds) and COUNT_FOR_FULL_EXPIRATION. */
const CHECK_EXPIRE_TIME = 60;
const COUNT_FOR_FULL_EXPIRATION = 30;
/** DEFAULT_EXPIRATION: sysctl lblc_expiration / lblcr_expiration (seconds). */
export const DEFAULT_EXPIRATION = 24 * 60 * 60;

/** ip_vs_lblc_hashkey() / ip_vs_lblcr_hashkey(): hash_32(ntohl(addr_fold), TAB_BITS). */
export function localityHashkey(addr: Uint8Array): number {
  return hash32(addrFold(addr), LOCALITY_TAB_BITS);
}

/**
 * is_overloaded() of lblc and lblcr: the dest has more active connections
 * than its weight while another dest of the service has fewer than half
 * its own.
 */
export function localityOverloaded(dest: IpvsDest, dests: readonly IpvsDest[]): boolean {
  if (dest.activeconns > dest.weight) {
    for (const d of dests) if (d.activeconns * 2 < d.weight) return true;
  }
  return false;
}

/** The periodic full check of a locality table, caught up at `now` (jiffies). */
export class ExpiryTimer {
  private start: number | undefined;
  /** Index j of the last full check run (tick 30 (j + 1)), -1 for none. */
  private done = -1;

  constructor(private readonly hz: number) {}

  /** Calls `check(at)` for the last full check due at or before `now` not yet run. */
  catchUp(now: number, check: (at: number) => void): void {
    if (this.start === undefined) {
      this.start = now;
      return;
    }
    const tick = CHECK_EXPIRE_TIME * this.hz;
    const ticks = Math.floor(((now - this.start) | 0) / tick);
    if (ticks < COUNT_FOR_FULL_EXPIRATION) return;
    const j = Math.floor(ticks / COUNT_FOR_FULL_EXPIRATION) - 1;
    if (j <= this.done) return;
    this.done = j;
    check((this.start + (j + 1) * COUNT_FOR_FULL_EXPIRATION * tick) | 0);
  }
}

/** time_before(a, b) on jiffies. */
export const timeBefore = (a: number, b: number) => ((a - b) | 0) < 0;

/** An entry of a locality table: its destination address and last use (jiffies). */
export interface LocalityEntry {
  readonly addr: Uint8Array;
  lastuse: number;
}

/**
 * The table of ip_vs_lblc_table / ip_vs_lblcr_table: entries hashed by
 * destination address (hlist_add_head_rcu: newest first in a bucket).
 */
export class LocalityTable<E extends LocalityEntry> {
  readonly buckets = new Map<number, E[]>();
  private readonly timer: ExpiryTimer;

  constructor(readonly hz: number, readonly expiration: number) {
    this.timer = new ExpiryTimer(hz);
  }

  /** ip_vs_lblc_get() / ip_vs_lblcr_get(). */
  get(addr: Uint8Array): E | undefined {
    return this.buckets.get(localityHashkey(addr))?.find((e) => sameAddr(e.addr, addr));
  }

  /** Hashes `en` in at the head of its bucket, replacing `old` when given. */
  add(en: E, old?: E): void {
    const k = localityHashkey(en.addr);
    this.buckets.set(k, [en, ...(this.buckets.get(k) ?? []).filter((e) => e !== old)]);
  }

  /** The timer caught up at `now`: ip_vs_lblc_full_check() / ip_vs_lblcr_full_check() drop the entries unused for the expiration. */
  expire(now: number): void {
    this.timer.catchUp(now, (at) => {
      const exp = this.expiration * this.hz;
      for (const [k, list] of this.buckets) {
        const keep = list.filter((e) => timeBefore(at, (e.lastuse + exp) | 0));
        if (keep.length) this.buckets.set(k, keep);
        else this.buckets.delete(k);
      }
    });
  }
}

export function sameAddr(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
