/**
 * The seeded pseudo-random generator both packet engines draw from
 * (`statistic --mode random`, `meta random`): xorshift32, the same steps as
 * prandomU32() on VmEnv.rng (vm/program.ts), so a VM whose VmEnv was created
 * with the same seed yields the same sequence. A seed of 0 becomes 1
 * (xorshift never leaves 0).
 */
export class Xorshift32 {
  private s: number;

  constructor(seed = 1) {
    this.s = seed | 0 || 1;
  }

  /** The next value as a signed 32-bit integer (mask with 0x7fffffff as xt_statistic does). */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x | 0;
    return this.s;
  }
}
