/**
 * What an expression encoder (vm/expr/*.ts emitX) writes through: the
 * current rule's record stream and the program's side tables. The builder
 * implements it, so the dependency runs one way (builder.ts -> expr/, never
 * expr/ -> builder.ts).
 */
import type { XtExpr } from './expr/compat.js';

export interface Emitter {
  /** Appends one record to the current rule; returns its word position inside the rule. */
  emit(words: readonly number[]): number;
  /** Overwrites the word at rule position `at` (a record emitted before in this rule). */
  patch(at: number, value: number): void;
  /**
   * Records that the word at rule position `at` is the index of chain `name`
   * (patched when the program is laid out). With `shift`, the word is a
   * packed one and the chain index + 1 is ORed into its bits from `shift` up.
   */
  fixupChain(at: number, name: string, shift?: number): void;
  /** Adds data (bytes in register order) to the constant pool; returns its word offset. */
  pool(bytes: ArrayLike<number>): number;
  /**
   * Adds whole words to the constant pool and keeps `words` itself (the caller
   * gives it up): a classifier's tables, megabytes, are not copied into a
   * growing buffer. Returns their word offset.
   */
  poolKeep(words: Int32Array): number;
  /** Allocates a counter pair; returns its index. */
  counter(): number;
  /** Allocates `n` doubles of expression state; returns the first index. */
  state(n: number): number;
  /** Interns a string (chain names, set names, log prefixes); returns its index. */
  str(s: string): number;
  /** The index of the set named `name` (added before). */
  setIndex(name: string): number;
  /** Adds an x_tables extension the program calls (nft_compat); returns its index. */
  xt(x: XtExpr): number;
}
