/**
 * The forwarding database of a bridge (net/bridge/br_fdb.c, Linux 6.18):
 * per (VLAN, MAC) the port an address was last seen on.
 *
 *  - local entries (BR_FDB_LOCAL, `permanent` in `bridge fdb show`): the
 *    bridge's own address and its ports' addresses; a frame to one goes up
 *    to the bridge device (br_pass_frame_up);
 *  - static entries (BR_FDB_STATIC, `bridge fdb add ... static`): never age;
 *  - learned entries: br_fdb_update() on every frame received on a port with
 *    learning on (after the ingress VLAN filter), refreshed on each frame,
 *    moved when the address shows up on another port; they age out
 *    ageing_time after their last update (br_fdb_cleanup() deletes an entry
 *    once `updated + hold_time <= now`, waking at the earliest expiry; the
 *    lookup here applies the same bound, exact where the kernel's work runs
 *    up to 10 ms late).
 *
 * Time is the node's clock in nanoseconds (a capture's timestamps). Keys are
 * numbers (a MAC as a 48-bit integer), so a lookup allocates nothing.
 */
import type { Packet } from '../../vm/packet.js';

export interface FdbEntry {
  /** The port the address is on ('' for the bridge device itself). */
  port: string;
  local: boolean;
  static: boolean;
  /** fdb->updated, nanoseconds. */
  updated: number;
}

/** A MAC's high and low 24 bits: small integers (a 48-bit key is a boxed number on every lookup). */
function macHi(d: Uint8Array, at: number): number {
  return (d[at]! << 16) | (d[at + 1]! << 8) | d[at + 2]!;
}
function macLo(d: Uint8Array, at: number): number {
  return (d[at + 3]! << 16) | (d[at + 4]! << 8) | d[at + 5]!;
}
const TWO_24 = 0x1000000;

export class Fdb {
  /** vid → the MAC's high 24 bits → its low 24 bits → entry (the MAC's key, an integer below 2^48: high * 2^24 + low). */
  private readonly byVid = new Map<number, Map<number, Map<number, FdbEntry>>>();

  constructor(
    /** ageing_time in nanoseconds (0: a learned entry is gone at once, the bridge floods like a hub). */
    readonly ageingNs: number,
  ) {}

  /** The entries of `vid` whose MAC starts with `hi`, made when `make`. */
  private table(vid: number, hi: number, make: boolean): Map<number, FdbEntry> | undefined {
    let t = this.byVid.get(vid);
    if (!t) {
      if (!make) return undefined;
      this.byVid.set(vid, (t = new Map()));
    }
    let h = t.get(hi);
    if (!h && make) t.set(hi, (h = new Map()));
    return h;
  }

  private set(vid: number, key: number, e: FdbEntry): void {
    this.table(vid, Math.floor(key / TWO_24), true)!.set(key % TWO_24, e);
  }

  /** fdb_add_entry() of a snapshot's entry. */
  add(mac: Uint8Array, vid: number, e: FdbEntry): void {
    this.table(vid, macHi(mac, 0), true)!.set(macLo(mac, 0), e);
  }

  /** br_fdb_find_rcu(): the entry of the MAC at d[at..at+6) in `vid`, undefined when none (or a learned one that has aged out). */
  find(d: Uint8Array, at: number, vid: number, now: number): FdbEntry | undefined {
    const e = this.table(vid, macHi(d, at), false)?.get(macLo(d, at));
    if (!e) return undefined;
    // has_expired() / br_fdb_cleanup(): gone once updated + hold_time <= now (an ageing_time of 0 keeps nothing learned)
    if (!e.local && !e.static && now - e.updated >= this.ageingNs) return undefined;
    return e;
  }

  /**
   * br_fdb_update(): the source address of a frame received on `port`. A
   * local entry stays (the kernel warns "received packet on PORT with own
   * address as source address"); any other is refreshed and moved to the
   * port (static entries are not moved: fdb_add_entry made them for a port).
   */
  update(pkt: Packet, srcAt: number, port: string, vid: number, now: number): void {
    const d = pkt.data;
    const t = this.table(vid, macHi(d, srcAt), true)!;
    const k = macLo(d, srcAt);
    const e = t.get(k);
    if (e) {
      if (e.local || e.static) return;
      e.updated = now;
      e.port = port;
      return;
    }
    t.set(k, { port, local: false, static: false, updated: now });
  }

  /** Every entry, for tests and `--save`: [vid, mac key, entry]. */
  *entries(): IterableIterator<[number, number, FdbEntry]> {
    for (const [vid, t] of this.byVid) for (const [hi, h] of t) for (const [lo, e] of h) yield [vid, hi * TWO_24 + lo, e];
  }

  /** A copy of the table (NodeModel.checkpoint), by vid and the MAC's key (high * 2^24 + low). */
  save(): Map<number, Map<number, FdbEntry>> {
    const out = new Map<number, Map<number, FdbEntry>>();
    for (const [vid, k, e] of this.entries()) {
      let c = out.get(vid);
      if (!c) out.set(vid, (c = new Map()));
      c.set(k, { ...e });
    }
    return out;
  }

  restore(s: Map<number, Map<number, FdbEntry>>): void {
    this.byVid.clear();
    for (const [vid, t] of s) for (const [k, e] of t) this.set(vid, k, { ...e });
  }
}
