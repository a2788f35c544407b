/**
 * counter (net/netfilter/nft_counter.c): packets += 1, bytes += skb->len (the
 * L3 length at the hook). Never changes the verdict; it counts only when the
 * expressions before it in the rule let the packet through.
 *
 * Record: one packed word [op | index << 8]; index: counter pair in
 * Program.counters (packets at 2i, bytes at 2i+1), < 2^24.
 */
import { Op } from '../opcodes.js';
import { M_LEN } from '../layout.js';
import type { Emitter } from '../emit.js';
import { VmError, type Program } from '../program.js';
import type { EvalCtx } from './common.js';

/** Op.COUNTER: one packed word, the counter index from bit INDEX_SHIFT. */
export const enum Counter {
  INDEX_SHIFT = 8,
  SIZE = 1,
}

/** The counter index of a packed COUNTER word. */
function counterIndex(w: number): number {
  return w >>> Counter.INDEX_SHIFT;
}

export function emitCounter(b: Emitter): void {
  const i = b.counter();
  if (i >= 1 << (32 - Counter.INDEX_SHIFT)) throw new VmError(`counter: index ${i} out of range`);
  b.emit([Op.COUNTER | (i << Counter.INDEX_SHIFT)]);
}

export function validateCounter(prog: Program, code: Int32Array, pc: number): string | null {
  const i = counterIndex(code[pc]!);
  return 2 * i + 1 < prog.counters.length ? null : `counter: index ${i} out of range`;
}

export function disasmCounter(prog: Program, code: Int32Array, pc: number): string {
  const i = counterIndex(code[pc]!);
  return `pkts ${prog.counters[2 * i]} bytes ${prog.counters[2 * i + 1]} `;
}

/** nft_counter_eval() */
export function evalCounter(ctx: EvalCtx, pc: number): void {
  const i = counterIndex(ctx.prog.code[pc]!);
  ctx.prog.counters[2 * i] += 1;
  ctx.prog.counters[2 * i + 1] += ctx.pkt.meta[M_LEN]!;
}
