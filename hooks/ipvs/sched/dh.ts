/**
 * Destination hashing (Linux 6.18 net/netfilter/ipvs/ip_vs_dh.c).
 *
 * A 256-bucket table (IP_VS_DH_TAB_BITS 8). ip_vs_dh_reassign() gives each
 * bucket the next dest in list order, one bucket per dest, wrapping (weights
 * play no part in the table). ip_vs_dh_hashkey():
 * (ntohl(addr_fold) * 2654435761) & 255 over the packet's destination
 * address. The bucket's dest is refused when not IP_VS_DEST_F_AVAILABLE,
 * of weight <= 0 or overloaded: dh has no fallback.
 */
import { IP_VS_DEST_F_AVAILABLE, type IpvsDest } from '../dest.js';
import { addrFold, type SchedPacket, type Scheduler } from './sched.js';

export const IP_VS_DH_TAB_BITS = 8;
export const IP_VS_DH_TAB_SIZE = 1 << IP_VS_DH_TAB_BITS;

/** The low 8 bits of the 64-bit product equal those of the 32-bit one. */
export function dhHashkey(addr: Uint8Array): number {
  return Math.imul(addrFold(addr), 2654435761 | 0) & (IP_VS_DH_TAB_SIZE - 1);
}

export class DhScheduler implements Scheduler {
  readonly name = 'dh';
  readonly buckets: (IpvsDest | null)[] = new Array<IpvsDest | null>(IP_VS_DH_TAB_SIZE).fill(null);

  constructor(dests: readonly IpvsDest[] = []) {
    this.destChanged(dests);
  }

  destChanged(dests: readonly IpvsDest[]): void {
    let p = 0;
    for (let i = 0; i < IP_VS_DH_TAB_SIZE; i++) {
      if (dests.length === 0) {
        this.buckets[i] = null;
        continue;
      }
      if (p === dests.length) p = 0;
      this.buckets[i] = dests[p++]!;
    }
  }

  schedule(_dests: readonly IpvsDest[], pkt: SchedPacket): IpvsDest | null {
    const d = this.buckets[dhHashkey(pkt.daddr)] ?? null;
    if (!d || !(d.flags & IP_VS_DEST_F_AVAILABLE) || d.weight <= 0 || d.overloaded) return null;
    return d;
  }
}
