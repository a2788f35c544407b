/**
 * The kernel's u64 arithmetic (wrapping modulo 2^64) on pairs of u32
 * halves held in numbers, for state the packet path updates (hashlimit's
 * credits): no BigInt and no allocation per call. Each operation leaves
 * its result in `u64r` (hi, lo).
 */

const TWO32 = 4294967296;

/** The result of the last operation: the high and low 32 bits. */
export const u64r = { hi: 0, lo: 0 };

/** x (an integer 0 <= x < 2^53) as a pair. */
export function u64FromNumber(x: number): void {
  u64r.hi = Math.floor(x / TWO32) >>> 0;
  u64r.lo = x >>> 0;
}

/** a + b. */
export function u64Add(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  const carry = lo >= TWO32 ? 1 : 0;
  u64r.lo = lo - carry * TWO32;
  u64r.hi = (aHi + bHi + carry) >>> 0;
}

/** a - b. */
export function u64Sub(aHi: number, aLo: number, bHi: number, bLo: number): void {
  let lo = aLo - bLo;
  let borrow = 0;
  if (lo < 0) {
    lo += TWO32;
    borrow = 1;
  }
  u64r.lo = lo;
  u64r.hi = (aHi - bHi - borrow) >>> 0;
}

/** a << s (0 <= s < 64). */
export function u64Shl(hi: number, lo: number, s: number): void {
  if (s === 0) {
    u64r.hi = hi;
    u64r.lo = lo;
  } else if (s >= 32) {
    u64r.hi = s === 32 ? lo : (lo << (s - 32)) >>> 0;
    u64r.lo = 0;
  } else {
    u64r.hi = ((hi << s) | (lo >>> (32 - s))) >>> 0;
    u64r.lo = (lo << s) >>> 0;
  }
}

/** a * b (the low 64 bits of the product). */
export function u64Mul(aHi: number, aLo: number, bHi: number, bLo: number): void {
  // aLo * bLo in 16-bit limbs, exact in doubles; the cross terms only reach the high word
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const mid = a1 * b0 + a0 * b1;
  let lo = a0 * b0 + (mid % 65536) * 65536;
  const carry = lo >= TWO32 ? 1 : 0;
  lo -= carry * TWO32;
  u64r.lo = lo;
  u64r.hi = (a1 * b1 + Math.floor(mid / 65536) + carry + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** a > b. */
export function u64Gt(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi > bHi || (aHi === bHi && aLo > bLo);
}

/** a >= b. */
export function u64Ge(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  return aHi > bHi || (aHi === bHi && aLo >= bLo);
}

/** The pair in decimal (for the files that print it): division by 10^4 over 16-bit limbs, exact. */
export function u64Text(hi: number, lo: number): string {
  if (hi < 0x200000) return String(hi * TWO32 + lo);
  const limbs = [hi >>> 16, hi & 0xffff, lo >>> 16, lo & 0xffff];
  const groups: string[] = [];
  while (limbs[0] !== 0 || limbs[1] !== 0 || limbs[2] !== 0 || limbs[3] !== 0) {
    let rem = 0;
    for (let i = 0; i < 4; i++) {
      const cur = rem * 65536 + limbs[i]!;
      limbs[i] = Math.floor(cur / 10000);
      rem = cur - limbs[i]! * 10000;
    }
    groups.push(String(rem).padStart(4, '0'));
  }
  return groups.reverse().join('').replace(/^0+(?=\d)/, '');
}
