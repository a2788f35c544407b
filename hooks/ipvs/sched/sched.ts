/**
 * The scheduler contract (struct ip_vs_scheduler, Linux 6.18
 * include/net/ip_vs.h): state per service, told about each destination
 * change (add_dest/del_dest/upd_dest), asked for a destination per new
 * connection (schedule). `dests` is the service's list in kernel order:
 * __ip_vs_update_dest() adds with list_add_rcu(), at the head, so the
 * newest real server comes first.
 */
import type { IpvsDest } from '../dest.js';

/** What schedule() reads of the packet (struct ip_vs_iphdr and the ports). */
export interface SchedPacket {
  readonly family: 4 | 6;
  readonly saddr: Uint8Array;
  readonly daddr: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly protocol: number;
  /** ip_vs_iph_inverse(): an ICMP error quoting a packet of the other direction. */
  readonly inverse?: boolean;
}

export interface Scheduler {
  readonly name: string;
  /** add_dest/del_dest/upd_dest: the list changed (already updated). */
  destChanged(dests: readonly IpvsDest[]): void;
  /** The chosen destination, or null (ip_vs_scheduler_err "no destination available"). */
  schedule(dests: readonly IpvsDest[], p: SchedPacket, now: number): IpvsDest | null;
}

/** gcd() of lib/math/gcd.c (non-negative ints). */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** The address word the hashing schedulers use: addr->ip, or the XOR of the four IPv6 words; host order. */
export function addrFold(a: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < a.length; i += 4) v ^= (a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!;
  return v >>> 0;
}

/** include/linux/hash.h GOLDEN_RATIO_32 and hash_32(). */
export const GOLDEN_RATIO_32 = 0x61c88647;
export function hash32(val: number, bits: number): number {
  return Math.imul(val >>> 0, GOLDEN_RATIO_32) >>> (32 - bits);
}
