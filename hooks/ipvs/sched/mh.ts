/**
 * Maglev hashing (Linux 6.18 net/netfilter/ipvs/ip_vs_mh.c).
 *
 * A lookup table of IP_VS_MH_TAB_SIZE = 4093 slots (primes[CONFIG_IP_VS_MH_TAB_INDEX
 * 12 - 8]). ip_vs_mh_permutate() gives each dest, in list order, an offset
 * hsiphash(addr, port; hash1) % 4093, a skip hsiphash(...; hash2) % 4092 + 1
 * and `turns` = (last_weight / gcd) >> rshift (or 1 for a nonzero weight
 * that shifts to 0), gcd over the positive last weights and rshift =
 * fls(max / gcd) - IP_VS_MH_TAB_BITS (6) when positive.
 * ip_vs_mh_populate() walks the list over and over: each dest of turns >= 1
 * takes its next free slot of offset + k * skip, `turns` times in a row,
 * until all slots are taken. ip_vs_mh_get() hashes the source address
 * (and the source port with mh-port, IP_VS_SVC_F_SCHED2) with hash1: the
 * slot's dest unless it is missing, of weight <= 0 or overloaded; with
 * mh-fallback (IP_VS_SVC_F_SCHED1) ip_vs_mh_get_fallback() then tries the
 * slots of hashkey(offset = ihash, ihash + 1, ...).
 *
 * The table follows last_weight (a dest set to weight 0 keeps its slots
 * and is refused at lookup), so quiescing a server moves no other client.
 *
 * hsiphash() on a 64-bit kernel is SipHash-1-3 over the 4-byte value
 * (lib/siphash.c: HSIPROUND = SIPROUND, keys of two unsigned longs), the
 * result cut to 32 bits; the keys are fixed (generate_hash_secret).
 */
import type { IpvsDest } from '../dest.js';
import { IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2 } from '../save.js';
import { addrFold, gcd, type SchedPacket, type Scheduler } from './sched.js';
import { hashPort } from './sh.js';

export const IP_VS_MH_TAB_SIZE = 4093;
const IP_VS_MH_TAB_BITS = 6;
/** generate_hash_secret(): both words of each key. */
const HASH1 = 2654435761;
const HASH2 = 2654446892;

/** SipHash constants (include/linux/siphash.h SIPHASH_CONST_0..3) as 32-bit halves. */
const C0H = 0x736f6d65, C0L = 0x70736575, C1H = 0x646f7261, C1L = 0x6e646f6d;
const C2H = 0x6c796765, C2L = 0x6e657261, C3H = 0x74656462, C3L = 0x79746573;

/** v0..v3 as (hi, lo) pairs. */
const v = new Uint32Array(8);

function add(a: number, b: number): void {
  const lo = v[a + 1]! + v[b + 1]!;
  v[a] = (v[a]! + v[b]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v[a + 1] = lo >>> 0;
}

function rol(a: number, n: number): void {
  const hi = v[a]!, lo = v[a + 1]!;
  if (n === 32) {
    v[a] = lo;
    v[a + 1] = hi;
  } else if (n < 32) {
    v[a] = ((hi << n) | (lo >>> (32 - n))) >>> 0;
    v[a + 1] = ((lo << n) | (hi >>> (32 - n))) >>> 0;
  } else {
    const m = n - 32;
    v[a] = ((lo << m) | (hi >>> (32 - m))) >>> 0;
    v[a + 1] = ((hi << m) | (lo >>> (32 - m))) >>> 0;
  }
}

function xor(a: number, b: number): void {
  v[a] = (v[a]! ^ v[b]!) >>> 0;
  v[a + 1] = (v[a + 1]! ^ v[b + 1]!) >>> 0;
}

/** SIPROUND (SIPHASH_PERMUTATION) over v0 = 0, v1 = 2, v2 = 4, v3 = 6. */
function sipround(): void {
  add(0, 2); rol(2, 13); xor(2, 0); rol(0, 32);
  add(4, 6); rol(6, 16); xor(6, 4);
  add(0, 6); rol(6, 21); xor(6, 0);
  add(4, 2); rol(2, 17); xor(2, 4); rol(4, 32);
}

/**
 * hsiphash(&val, 4, key) with key = {k, k} (64-bit build): PREAMBLE(4),
 * b = 4 << 56 | val (le32 of the value), then HPOSTAMBLE.
 */
export function hsiphash32(val: number, k: number): number {
  v[0] = C0H; v[1] = (C0L ^ k) >>> 0;
  v[2] = C1H; v[3] = (C1L ^ k) >>> 0;
  v[4] = C2H; v[5] = (C2L ^ k) >>> 0;
  v[6] = C3H; v[7] = (C3L ^ k) >>> 0;
  const bh = 0x04000000, bl = val >>> 0;
  v[6] = (v[6]! ^ bh) >>> 0; v[7] = (v[7]! ^ bl) >>> 0;
  sipround();
  v[0] = (v[0]! ^ bh) >>> 0; v[1] = (v[1]! ^ bl) >>> 0;
  v[5] = (v[5]! ^ 0xff) >>> 0;
  sipround();
  sipround();
  sipround();
  return (v[1]! ^ v[3]! ^ v[5]! ^ v[7]!) >>> 0;
}

/** ip_vs_mh_hashkey(): hsiphash of offset + port + addr_fold (32-bit sum). */
export function mhHashkey(addr: Uint8Array, port: number, key: number, offset: number): number {
  return hsiphash32((offset + port + addrFold(addr)) >>> 0, key);
}

const unavailable = (d: IpvsDest) => d.weight <= 0 || d.overloaded;

/** fls(): the 1-based index of the highest set bit, 0 for 0. */
const fls = (x: number) => (x === 0 ? 0 : 32 - Math.clz32(x));

export class MhScheduler implements Scheduler {
  readonly name = 'mh';
  readonly lookup: (IpvsDest | null)[] = new Array<IpvsDest | null>(IP_VS_MH_TAB_SIZE).fill(null);

  constructor(private readonly svcFlags: number, dests: readonly IpvsDest[] = []) {
    this.destChanged(dests);
  }

  /** ip_vs_mh_dest_changed(): gcd and rshift of the last weights, then ip_vs_mh_reassign(). */
  destChanged(dests: readonly IpvsDest[]): void {
    let g = 0;
    let max = 0;
    for (const d of dests) {
      const w = d.lastWeight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    if (g < 1) {
      // ip_vs_mh_reset()
      this.lookup.fill(null);
      return;
    }
    const shift = fls(Math.floor(max / g)) - IP_VS_MH_TAB_BITS;
    const rshift = shift >= 0 ? shift : 0;
    // ip_vs_mh_permutate()
    const n = dests.length;
    const skip = new Int32Array(n);
    const perm = new Int32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      perm[i] = mhHashkey(d.addr, d.port, HASH1, 0) % IP_VS_MH_TAB_SIZE;
      skip[i] = (mhHashkey(d.addr, d.port, HASH2, 0) % (IP_VS_MH_TAB_SIZE - 1)) + 1;
      const lw = d.lastWeight;
      turns[i] = (Math.floor(lw / g) >> rshift) || (lw !== 0 ? 1 : 0);
    }
    // ip_vs_mh_populate(): the table keeps the slots it does not reach (none: every slot is filled).
    const taken = new Uint8Array(IP_VS_MH_TAB_SIZE);
    let filled = 0;
    let dtCount = 0;
    for (;;) {
      for (let i = 0; i < n; ) {
        if (turns[i]! < 1) {
          i++;
          continue;
        }
        let c = perm[i]!;
        while (taken[c]) {
          perm[i] = perm[i]! + skip[i]!;
          if (perm[i]! >= IP_VS_MH_TAB_SIZE) perm[i] = perm[i]! - IP_VS_MH_TAB_SIZE;
          c = perm[i]!;
        }
        taken[c] = 1;
        this.lookup[c] = dests[i]!;
        if (++filled === IP_VS_MH_TAB_SIZE) return;
        if (++dtCount >= turns[i]!) {
          dtCount = 0;
          i++;
        }
      }
    }
  }

  schedule(_dests: readonly IpvsDest[], p: SchedPacket): IpvsDest | null {
    const addr = p.inverse ? p.daddr : p.saddr;
    const port = this.svcFlags & IP_VS_SVC_F_SCHED2 ? hashPort(p) : 0;
    const ihash = mhHashkey(addr, port, HASH1, 0) % IP_VS_MH_TAB_SIZE;
    const d = this.lookup[ihash] ?? null;
    if (!(this.svcFlags & IP_VS_SVC_F_SCHED1)) return !d || unavailable(d) ? null : d;
    if (!d) return null;
    if (!unavailable(d)) return d;
    for (let offset = 0; offset < IP_VS_MH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % IP_VS_MH_TAB_SIZE;
      const e = this.lookup[mhHashkey(addr, port, HASH1, roffset) % IP_VS_MH_TAB_SIZE] ?? null;
      if (!e) break;
      if (!unavailable(e)) return e;
    }
    return null;
  }
}
