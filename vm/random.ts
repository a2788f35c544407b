/**
 * The seeded pseudo-random source the packet engines draw from
 * (`statistic --mode random`, `meta random`, `numgen random`) and the
 * node's own random choices: xorshift32, the same steps as prandomU32() on
 * VmEnv.rng (vm/program.ts). A node makes one source and hands its state
 * to every engine (VmEnv shares the Int32Array), so all tables of both
 * engines draw one sequence, as the kernel's tables draw from one
 * per-CPU generator.
 * The seed is scrambled first (xorshiftState): small seeds would otherwise
 * start with small values, and `--seed 1` ... `--seed 24` would all take the
 * first branch of a `statistic --mode random --probability 0.5`.
 *
 * The forced-choice hook: with a Chooser set, a draw that feeds a decision
 * returns the value the chooser picks among the decision's outcomes (see
 * Choices) instead of the next number, which is how every outcome of a
 * packet's random decisions is enumerated (hooks/branches.ts).
 */

/**
 * The outcomes of the decision one draw feeds: [value0, p0, value1, p1, ...],
 * a raw 32-bit draw that produces each outcome and that outcome's
 * probability (the probabilities sum to 1). `statistic --mode random
 * --probability p` gives [0, p, 0x7fffffff, 1 - p].
 */
export type Choices = readonly number[];

/**
 * What a forced draw returns. `choices` is undefined for a draw that feeds
 * no decision the node can enumerate (a port picked from a range, a token
 * bucket's random cost): the chooser then takes `seeded()`, the generator's
 * own next value.
 */
export interface Chooser {
  draw(choices: Choices | undefined, seeded: () => number): number;
}

export class Xorshift32 {
  /** The generator state (one word, never 0), shared with the VMs' VmEnv.rng. */
  readonly state: Int32Array;
  /** The forced-choice hook: null in normal runs. */
  chooser: Chooser | null = null;

  constructor(seed = 1) {
    this.state = Int32Array.of(xorshiftState(seed));
  }

  /** The next value as a signed 32-bit integer (mask with 0x7fffffff as xt_statistic does). */
  next(): number {
    let x = this.state[0]!;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state[0] = x;
    return x;
  }

  /** A draw that feeds the decision `choices` (undefined: none known): forced when a chooser is set. */
  draw(choices?: Choices): number {
    return this.chooser === null ? this.next() : this.chooser.draw(choices, () => this.next());
  }

  /** get_random_u32_below(n) for small n: reciprocal_scale() of one draw (never branched). */
  below(n: number): number {
    const r = (this.chooser === null ? this.next() : this.chooser.draw(undefined, () => this.next())) >>> 0;
    return Math.floor((r * n) / 0x100000000);
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
