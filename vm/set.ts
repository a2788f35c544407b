/**
 * Set objects for the lookup expression (net/netfilter/nft_set_hash.c,
 * nft_set_rbtree.c, reduced to what the VM needs): a hash set of fixed-length
 * keys with open addressing over an Int32Array, or an interval set of sorted,
 * merged [from, to] byte ranges compared as memcmp (network order keys).
 *
 * Elements are added at build time (allocation is fine there); lookup reads
 * the key straight from the register block and allocates nothing.
 */
import { NFT_SET_INTERVAL } from './layout.js';

const EMPTY = 0;

export class NftSet {
  readonly name: string;
  /** Key length in bytes (set->klen). */
  readonly keyLen: number;
  /** NFT_SET_* flags; NFT_SET_INTERVAL selects the interval representation. */
  readonly flags: number;
  /** Words per key (ceil(keyLen / 4)). */
  readonly keyWords: number;
  /** Mask of the valid bytes of the last key word (host order). */
  readonly lastMask: number;
  /** Hash representation: capacity (power of two), keys, occupancy. */
  private cap = 0;
  private keys: Int32Array = new Int32Array(0);
  private used: Uint8Array = new Uint8Array(0);
  private count = 0;
  /** Interval representation: n ranges, from/to byte strings back to back. */
  private ivFrom: Uint8Array = new Uint8Array(0);
  private ivTo: Uint8Array = new Uint8Array(0);
  private ivCount = 0;

  constructor(name: string, keyLen: number, flags = 0) {
    if (!(keyLen >= 1 && keyLen <= 64)) throw new RangeError(`set ${name}: key length ${keyLen} out of range 1..64`);
    this.name = name;
    this.keyLen = keyLen;
    this.flags = flags;
    this.keyWords = (keyLen + 3) >>> 2;
    const rem = keyLen & 3;
    this.lastMask = rem === 0 ? -1 : (1 << (rem * 8)) - 1;
    this.rehash(8);
  }

  get size(): number {
    return this.flags & NFT_SET_INTERVAL ? this.ivCount : this.count;
  }

  get interval(): boolean {
    return (this.flags & NFT_SET_INTERVAL) !== 0;
  }

  /** Adds one key (keyLen bytes, memory order). In an interval set: the range [key, key]. */
  add(key: ArrayLike<number>): this {
    if (key.length !== this.keyLen) throw new RangeError(`set ${this.name}: key of ${key.length} bytes, expected ${this.keyLen}`);
    if (this.interval) return this.addRange(key, key);
    const w = this.toWords(key);
    if (this.find(w, 0) >= 0) return this;
    if ((this.count + 1) * 2 > this.cap) this.rehash(this.cap * 2);
    this.insert(w, 0);
    return this;
  }

  /** Adds the inclusive range [from, to] to an interval set (merged with overlapping ranges). */
  addRange(from: ArrayLike<number>, to: ArrayLike<number>): this {
    if (!this.interval) throw new TypeError(`set ${this.name}: not an interval set`);
    const n = this.keyLen;
    if (from.length !== n || to.length !== n) throw new RangeError(`set ${this.name}: range bounds must be ${n} bytes`);
    if (cmpBytes(from, 0, to, 0, n) > 0) throw new RangeError(`set ${this.name}: range start after end`);
    const ranges: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < this.ivCount; i++) ranges.push([this.ivFrom.slice(i * n, i * n + n), this.ivTo.slice(i * n, i * n + n)]);
    ranges.push([Uint8Array.from(from), Uint8Array.from(to)]);
    ranges.sort((a, b) => cmpBytes(a[0], 0, b[0], 0, n));
    const merged: [Uint8Array, Uint8Array][] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && cmpBytes(r[0], 0, last[1], 0, n) <= 0) {
        if (cmpBytes(r[1], 0, last[1], 0, n) > 0) last[1] = r[1];
      } else merged.push([r[0], r[1]]);
    }
    this.ivCount = merged.length;
    this.ivFrom = new Uint8Array(merged.length * n);
    this.ivTo = new Uint8Array(merged.length * n);
    merged.forEach(([f, t], i) => {
      this.ivFrom.set(f, i * n);
      this.ivTo.set(t, i * n);
    });
    return this;
  }

  /** The elements, for printing: keys (hash) or [from, to] pairs (interval). */
  elements(): Uint8Array[][] {
    const out: Uint8Array[][] = [];
    const n = this.keyLen;
    if (this.interval) {
      for (let i = 0; i < this.ivCount; i++) out.push([this.ivFrom.slice(i * n, i * n + n), this.ivTo.slice(i * n, i * n + n)]);
    } else {
      for (let i = 0; i < this.cap; i++) {
        if (this.used[i] === EMPTY) continue;
        const b = new Uint8Array(this.keyWords * 4);
        new Int32Array(b.buffer).set(this.keys.subarray(i * this.keyWords, (i + 1) * this.keyWords));
        out.push([b.slice(0, n)]);
      }
    }
    return out;
  }

  /**
   * Is the key at register slot `slot` in the set? Reads keyLen bytes;
   * allocation-free.
   */
  lookup(r8: Uint8Array, r32: Int32Array, slot: number): boolean {
    if (this.flags & NFT_SET_INTERVAL) {
      const n = this.keyLen;
      const at = slot << 2;
      let lo = 0;
      let hi = this.ivCount - 1;
      let cand = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (cmpBytes(this.ivFrom, mid * n, r8, at, n) <= 0) {
          cand = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return cand >= 0 && cmpBytes(r8, at, this.ivTo, cand * n, n) <= 0;
    }
    return this.find(r32, slot) >= 0;
  }

  private toWords(key: ArrayLike<number>): Int32Array {
    const b = new Uint8Array(this.keyWords * 4);
    for (let i = 0; i < this.keyLen; i++) b[i] = key[i]! & 0xff;
    return new Int32Array(b.buffer);
  }

  private hash(w: Int32Array, at: number): number {
    const kw = this.keyWords;
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < kw; i++) {
      const v = i === kw - 1 ? w[at + i]! & this.lastMask : w[at + i]!;
      h = Math.imul(h ^ v, 0x01000193);
      h ^= h >>> 15;
    }
    return h;
  }

  private find(w: Int32Array, at: number): number {
    const kw = this.keyWords;
    const mask = this.cap - 1;
    let i = this.hash(w, at) & mask;
    for (;;) {
      if (this.used[i] === EMPTY) return -1;
      let eq = true;
      const base = i * kw;
      for (let j = 0; j < kw; j++) {
        const v = j === kw - 1 ? w[at + j]! & this.lastMask : w[at + j]!;
        if (this.keys[base + j] !== v) {
          eq = false;
          break;
        }
      }
      if (eq) return i;
      i = (i + 1) & mask;
    }
  }

  private insert(w: Int32Array, at: number): void {
    const kw = this.keyWords;
    const mask = this.cap - 1;
    let i = this.hash(w, at) & mask;
    while (this.used[i] !== EMPTY) i = (i + 1) & mask;
    this.used[i] = 1;
    for (let j = 0; j < kw; j++) this.keys[i * kw + j] = j === kw - 1 ? w[at + j]! & this.lastMask : w[at + j]!;
    this.count++;
  }

  private rehash(cap: number): void {
    const oldKeys = this.keys;
    const oldUsed = this.used;
    const oldCap = this.cap;
    this.cap = cap;
    this.keys = new Int32Array(cap * this.keyWords);
    this.used = new Uint8Array(cap);
    this.count = 0;
    for (let i = 0; i < oldCap; i++) if (oldUsed[i] !== EMPTY) this.insert(oldKeys, i * this.keyWords);
  }
}

/** memcmp over n bytes. */
export function cmpBytes(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  for (let i = 0; i < n; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    if (d !== 0) return d;
  }
  return 0;
}
