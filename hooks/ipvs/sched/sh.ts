/**
 * Source hashing (Linux 6.18 net/netfilter/ipvs/ip_vs_sh.c).
 *
 * A 256-bucket table (IP_VS_SH_TAB_BITS 8). ip_vs_sh_reassign() fills the
 * buckets in list order, each dest taking `weight` consecutive buckets
 * (`++d_count >= weight` moves on, so a weight-0 dest still takes one) and
 * wrapping over the list until all 256 are set. ip_vs_sh_hashkey():
 * (offset + hash_32(ntohs(port) + ntohl(addr_fold), 8)) & 255, addr_fold the
 * IPv4 address or the XOR of the four IPv6 words. The source address is
 * hashed (the destination for ip_vs_iph_inverse); the source port only with
 * sh-port (IP_VS_SVC_F_SCHED2). A bucket whose dest has weight <= 0 or is
 * overloaded gives no dest, unless sh-fallback (IP_VS_SVC_F_SCHED1):
 * ip_vs_sh_get_fallback() then probes offsets ihash, ihash+1, ... (mod 256).
 */
import type { IpvsDest } from '../dest.js';
import { IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../save.js';
import { addrFold, hash32, type SchedPacket, type Scheduler } from './sched.js';

export const IP_VS_SH_TAB_BITS = 8;
export const IP_VS_SH_TAB_SIZE = 1 << IP_VS_SH_TAB_BITS;
const IP_VS_SH_TAB_MASK = IP_VS_SH_TAB_SIZE - 1;

export function shHashkey(addr: Uint8Array, port: number, offset: number): number {
  return (offset + hash32((port + addrFold(addr)) >>> 0, IP_VS_SH_TAB_BITS)) & IP_VS_SH_TAB_MASK;
}

const unavailable = (d: IpvsDest) => d.weight <= 0 || d.overloaded;

/** ip_vs_sh_get_port / ip_vs_mh_get_port: the source port (destination when inverse) of TCP/UDP/SCTP, else 0. */
export function hashPort(p: SchedPacket): number {
  if (p.protocol !== IPPROTO_TCP && p.protocol !== IPPROTO_UDP && p.protocol !== IPPROTO_SCTP) return 0;
  return p.inverse ? p.dport : p.sport;
}

export class ShScheduler implements Scheduler {
  readonly name = 'sh';
  readonly buckets: (IpvsDest | null)[] = new Array<IpvsDest | null>(IP_VS_SH_TAB_SIZE).fill(null);

  constructor(private readonly svcFlags: number, dests: readonly IpvsDest[] = []) {
    this.destChanged(dests);
  }

  /** ip_vs_sh_reassign(). */
  destChanged(dests: readonly IpvsDest[]): void {
    let p = 0;
    let dCount = 0;
    for (let i = 0; i < IP_VS_SH_TAB_SIZE; i++) {
      if (dests.length === 0) {
        this.buckets[i] = null;
        continue;
      }
      if (p === dests.length) p = 0;
      const d = dests[p]!;
      this.buckets[i] = d;
      if (++dCount >= d.weight) {
        p++;
        dCount = 0;
      }
    }
  }

  schedule(_dests: readonly IpvsDest[], pkt: SchedPacket): IpvsDest | null {
    const addr = pkt.inverse ? pkt.daddr : pkt.saddr;
    const port = this.svcFlags & IP_VS_SVC_F_SCHED2 ? hashPort(pkt) : 0;
    const ihash = shHashkey(addr, port, 0);
    const d = this.buckets[ihash] ?? null;
    if (!(this.svcFlags & IP_VS_SVC_F_SCHED1)) return !d || unavailable(d) ? null : d;
    if (!d) return null;
    if (!unavailable(d)) return d;
    for (let offset = 0; offset < IP_VS_SH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % IP_VS_SH_TAB_SIZE;
      const e = this.buckets[shHashkey(addr, port, roffset)] ?? null;
      if (!e) break;
      if (!unavailable(e)) return e;
    }
    return null;
  }
}
