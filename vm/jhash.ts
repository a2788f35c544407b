/**
 * The kernel's Jenkins hash (include/linux/jhash.h, Linux 6.18) in int32
 * arithmetic: jhash2 over u32 words and the jhash_1word/2words/3words
 * shortcuts (__jhash_nwords) that xt_HMARK, xt_cluster, xt_NFQUEUE and the NAT core
 * hash tuples with. Words are the host-order u32 values the kernel adds.
 */

/**
 * (__force u32) of a __be32 on a little-endian host: the kernel hashes the
 * address bytes as the CPU reads them, the host-order word byte-swapped.
 */
export function forceU32(w: number): number {
  return ((w & 0xff) << 24) | ((w >>> 8 & 0xff) << 16) | ((w >>> 16 & 0xff) << 8) | (w >>> 24);
}

/** JHASH_INITVAL: the arbitrary initial parameter. */
const JHASH_INITVAL = 0xdeadbeef;

function rol32(w: number, s: number): number {
  return (w << s) | (w >>> (32 - s));
}

/** __jhash_final(a, b, c): the final mixing, returns c as a u32. */
function jhashFinal(a: number, b: number, c: number): number {
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/** jhash2(k, length, initval) over `length` u32 words. */
export function jhash2(k: ArrayLike<number>, length: number, initval: number): number {
  let a = (JHASH_INITVAL + (length << 2) + initval) | 0;
  let b = a;
  let c = a;
  let i = 0;
  let n = length;
  while (n > 3) {
    a = (a + k[i]!) | 0;
    b = (b + k[i + 1]!) | 0;
    c = (c + k[i + 2]!) | 0;
    // __jhash_mix
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    n -= 3;
    i += 3;
  }
  if (n === 0) return c >>> 0;
  if (n === 3) c = (c + k[i + 2]!) | 0;
  if (n >= 2) b = (b + k[i + 1]!) | 0;
  a = (a + k[i]!) | 0;
  return jhashFinal(a, b, c);
}

/** __jhash_nwords(a, b, c, initval). */
function jhashNwords(a: number, b: number, c: number, initval: number): number {
  return jhashFinal((a + initval) | 0, (b + initval) | 0, (c + initval) | 0);
}

/** jhash_3words(a, b, c, initval). */
export function jhash3words(a: number, b: number, c: number, initval: number): number {
  return jhashNwords(a, b, c, (initval + JHASH_INITVAL + (3 << 2)) | 0);
}

/** jhash_2words(a, b, initval). */
export function jhash2words(a: number, b: number, initval: number): number {
  return jhashNwords(a, b, 0, (initval + JHASH_INITVAL + (2 << 2)) | 0);
}

/** jhash_1word(a, initval). */
export function jhash1word(a: number, initval: number): number {
  return jhashNwords(a, 0, 0, (initval + JHASH_INITVAL + (1 << 2)) | 0);
}

/**
 * jhash_3words(a, b, c, initval) & mask, for a hash table's bucket: the
 * result is a small integer (a full u32 result returned from a call is a
 * boxed number, on the packet path an allocation per lookup).
 */
export function jhash3wordsMasked(a: number, b: number, c: number, initval: number, mask: number): number {
  return jhash3words(a, b, c, initval) & mask;
}
