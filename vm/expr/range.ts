/**
 * range (net/netfilter/nft_range.c): from ≤ reg ≤ to, both as memcmp.
 *
 * Record: [op, sreg, rop, len, from, to]
 *   +1 sreg  source register slot
 *   +2 rop   NFT_RANGE_EQ (inside) / NFT_RANGE_NEQ (outside)
 *   +3 len   bytes, 1..16
 *   +4 from  pool word offset of the lower bound
 *   +5 to    pool word offset of the upper bound
 */
import { Op } from '../opcodes.js';
import { NFT_BREAK, NFT_RANGE_EQ, NFT_RANGE_NEQ, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtData, fmtReg, poolOk, type EvalCtx } from './common.js';

/** Op.RANGE record words. */
export const enum Range {
  SREG = 1,
  OP = 2,
  LEN = 3,
  FROM = 4,
  TO = 5,
  SIZE = 6,
}

/** Emits `range eq|neq reg sreg from to` (bounds in register byte order, same length). */
export function emitRange(b: Emitter, rop: number, sreg: number, from: ArrayLike<number>, to: ArrayLike<number>): void {
  if (from.length !== to.length) throw new RangeError('range: bounds of different lengths');
  b.emit([Op.RANGE, regSlot(sreg), rop, from.length, b.pool(from), b.pool(to)]);
}

export function validateRange(prog: Program, code: Int32Array, pc: number): string | null {
  const rop = code[pc + Range.OP]!;
  const len = code[pc + Range.LEN]!;
  if (rop !== NFT_RANGE_EQ && rop !== NFT_RANGE_NEQ) return `range: unknown op ${rop} (-EOPNOTSUPP)`;
  if (len < 1 || len > 16) return `range: length ${len} out of range 1..16`;
  const r = checkRegLoad(code[pc + Range.SREG]!, len);
  if (r) return `range: ${r}`;
  if (!poolOk(prog, code[pc + Range.FROM]!, len) || !poolOk(prog, code[pc + Range.TO]!, len)) return 'range: bounds outside the constant pool';
  return null;
}

export function disasmRange(prog: Program, code: Int32Array, pc: number): string {
  const len = code[pc + Range.LEN]!;
  return `${code[pc + Range.OP] === NFT_RANGE_EQ ? 'eq' : 'neq'} reg ${fmtReg(code[pc + Range.SREG]!)} ${fmtData(prog.pool8, code[pc + Range.FROM]! * 4, len)}${fmtData(prog.pool8, code[pc + Range.TO]! * 4, len)}`;
}

/** nft_range_eval() */
export function evalRange(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const p8 = ctx.prog.pool8;
  const r8 = ctx.regs.r8;
  const s = code[pc + Range.SREG]! * 4;
  const len = code[pc + Range.LEN]!;
  const f = code[pc + Range.FROM]! * 4;
  const t = code[pc + Range.TO]! * 4;
  let d1 = 0;
  let d2 = 0;
  for (let i = 0; i < len && d1 === 0; i++) d1 = r8[s + i]! - p8[f + i]!;
  for (let i = 0; i < len && d2 === 0; i++) d2 = r8[s + i]! - p8[t + i]!;
  const inside = d1 >= 0 && d2 <= 0;
  if (inside !== (code[pc + Range.OP] === NFT_RANGE_EQ)) ctx.code = NFT_BREAK;
}
