/**
 * The seeded pseudo-random generator both packet engines draw from
 * (`statistic --mode random`, `meta random`): xorshift32, the same steps as
 * prandomU32() on VmEnv.rng (vm/program.ts), so a VM whose VmEnv was created
 * with the same seed yields the same sequence. The seed is scrambled first
 * (xorshiftState): small seeds would otherwise start with small values, and
 * `--seed 1` ... `--seed 24` would all take the first branch of a
 * `statistic --mode random --probability 0.5`.
 */
export class Xorshift32 {
  private s: number;

  constructor(seed = 1) {
    this.s = xorshiftState(seed);
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

/** The generator's first state for a seed: murmur3's fmix32 of it (never 0: xorshift never leaves 0). */
export function xorshiftState(seed: number): number {
  let h = seed | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0 || 1;
}
