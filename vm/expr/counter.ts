/**
 * counter (net/netfilter/nft_counter.c): packets += 1, bytes += skb->len (the
 * L3 length at the hook). Never changes the verdict; it counts only when the
 * expressions before it in the rule let the packet through.
 *
 * Record: [op, index]   +1 index  counter pair in Program.counters (packets at 2i, bytes at 2i+1)
 */
import { Op } from '../opcodes.js';
import { M_LEN } from '../layout.js';
import type { Program } from '../program.js';
import type { ProgramBuilder } from '../builder.js';
import type { EvalCtx } from './common.js';

export const COUNTER_INDEX = 1;

export function emitCounter(b: ProgramBuilder): void {
  b.emit([Op.COUNTER, b.counter()]);
}

export function validateCounter(prog: Program, code: Int32Array, pc: number): string | null {
  const i = code[pc + COUNTER_INDEX]!;
  return i >= 0 && 2 * i + 1 < prog.counters.length ? null : `counter: index ${i} out of range`;
}

export function disasmCounter(prog: Program, code: Int32Array, pc: number): string {
  const i = code[pc + COUNTER_INDEX]!;
  return `pkts ${prog.counters[2 * i]} bytes ${prog.counters[2 * i + 1]} `;
}

/** nft_counter_eval() */
export function evalCounter(ctx: EvalCtx, pc: number): void {
  const i = ctx.prog.code[pc + COUNTER_INDEX]!;
  ctx.prog.counters[2 * i] += 1;
  ctx.prog.counters[2 * i + 1] += ctx.pkt.meta[M_LEN]!;
}
