/**
 * The one source of choices the generators draw from: a small interface,
 * so that the same generator runs on nfvm's seeded xorshift32 (the CLI:
 * `nfvm fuzz --seed S`) and on fast-check (fuzz/arbitraries.ts: fc.gen(),
 * which records the choices and shrinks them).
 */
import { Xorshift32 } from '../vm/random.js';

export interface Rand {
  /** An integer in [min, max] (both included; max - min < 2^32). */
  int(min: number, max: number): number;
}

/** The seeded source of the CLI. */
export function seededRand(seed: number): Rand {
  const g = new Xorshift32(seed);
  return {
    int(min, max) {
      const span = max - min + 1;
      return min + Math.floor(((g.next() >>> 0) / 0x100000000) * span);
    },
  };
}

export function pick<T>(r: Rand, xs: readonly T[]): T {
  return xs[r.int(0, xs.length - 1)]!;
}

/** True with probability p (in steps of 1/1024). */
export function chance(r: Rand, p: number): boolean {
  return r.int(0, 1023) < p * 1024;
}
