/**
 * cmp (net/netfilter/nft_cmp.c): memcmp of a register against constant data.
 *
 * Op.CMP record: [op, sreg, cmpop, len, pool]
 *   +1 sreg   source register slot (priv->sreg)
 *   +2 cmpop  NFT_CMP_EQ..GTE (priv->op)
 *   +3 len    bytes compared, 1..16 (priv->len)
 *   +4 pool   word offset of the data in the constant pool
 * Op.CMP_EQ32 record (nft_cmp_fast_ops, eq/neq of ≤ 4 bytes): [packed word, data]
 *   packed word: bits 0-7 op, 8-12 sreg slot, 13-14 len - 1, 15 neq
 *   data: the bytes as a host-order word, zero above len
 *   match iff ((reg << sh) == (data << sh)) XOR neq, sh = 8 * (4 - len)
 *
 * Ordered ops compare bytes, so they are numeric only on big-endian data.
 */
import { Op, Rec } from '../opcodes.js';
import { CMP_OP_NAMES, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { byteMask, bytesToWord, fmtData, fmtReg, fmtWord, poolOk, type EvalCtx } from './common.js';

/** Op.CMP record words. */
export const enum Cmp {
  SREG = 1,
  OP = 2,
  LEN = 3,
  POOL = 4,
  SIZE = 5,
}

/** Op.CMP_EQ32: the packed word's fields, and the data word. */
export const enum CmpEq32 {
  SLOT_SHIFT = 8,
  SLOT_MASK = 31,
  /** len - 1 */
  LEN_SHIFT = 13,
  LEN_MASK = 3,
  /** Bit 15: neq. */
  NEQ = 0x8000,
  /** The word uses bits below this one. */
  BITS = 16,
  DATA = 1,
  SIZE = 2,
}

function packCmpEq32(slot: number, len: number, neq: boolean): number {
  return Op.CMP_EQ32 | (slot << CmpEq32.SLOT_SHIFT) | ((len - 1) << CmpEq32.LEN_SHIFT) | (neq ? CmpEq32.NEQ : 0);
}
export function ceSlot(w: number): number {
  return (w >>> CmpEq32.SLOT_SHIFT) & CmpEq32.SLOT_MASK;
}
export function ceLen(w: number): number {
  return ((w >>> CmpEq32.LEN_SHIFT) & CmpEq32.LEN_MASK) + 1;
}
export function ceOp(w: number): number {
  return (w & CmpEq32.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ;
}

/** Emits `cmp <op> reg sreg <data>`; `data` is the bytes in register (memory) order. */
export function emitCmp(b: Emitter, op: number, sreg: number, data: ArrayLike<number>): void {
  const slot = regSlot(sreg);
  const len = data.length;
  if ((op === NFT_CMP_EQ || op === NFT_CMP_NEQ) && len >= 1 && len <= 4 && slot >= 0) {
    b.emit([packCmpEq32(slot, len, op === NFT_CMP_NEQ), bytesToWord(data, len)]);
  } else {
    b.emit([Op.CMP, slot, op, len, b.pool(data)]);
  }
}

export function validateCmp(prog: Program, code: Int32Array, pc: number): string | null {
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) === Op.CMP_EQ32) {
    if (w >>> CmpEq32.BITS !== 0) return 'cmp: unknown bits in a packed compare';
    const len = ceLen(w);
    const r = checkRegLoad(ceSlot(w), len);
    if (r) return `cmp: ${r}`;
    if ((code[pc + CmpEq32.DATA]! & ~byteMask(len)) !== 0) return 'cmp: fast form data wider than the length';
    return null;
  }
  const op = code[pc + Cmp.OP]!;
  const len = code[pc + Cmp.LEN]!;
  if (op < NFT_CMP_EQ || op > NFT_CMP_GTE) return `cmp: unknown op ${op} (-EINVAL)`;
  if (len < 1 || len > 16) return `cmp: length ${len} out of range 1..16`;
  const r = checkRegLoad(code[pc + Cmp.SREG]!, len);
  if (r) return `cmp: ${r}`;
  if (!poolOk(prog, code[pc + Cmp.POOL]!, len)) return 'cmp: data outside the constant pool';
  return null;
}

/** The kernel's text of an eq/neq compare of ≤ 4 bytes (shared with the superinstructions). */
export function fmtCmp32(op: number, slot: number, len: number, data: number): string {
  return `${CMP_OP_NAMES[op]} reg ${fmtReg(slot)} ${fmtWord(data, len)}`;
}

export function disasmCmp(prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) === Op.CMP_EQ32) return fmtCmp32(ceOp(w), ceSlot(w), ceLen(w), code[pc + CmpEq32.DATA]!);
  const len = code[pc + Cmp.LEN]!;
  const head = `${CMP_OP_NAMES[code[pc + Cmp.OP]!]} reg ${fmtReg(code[pc + Cmp.SREG]!)} `;
  return head + fmtData(prog.pool8, code[pc + Cmp.POOL]! * 4, len);
}

/** Compares `len` register bytes at slot with data; returns whether the op holds. */
export function cmpHolds(op: number, d: number): boolean {
  switch (op) {
    case NFT_CMP_EQ: return d === 0;
    case NFT_CMP_NEQ: return d !== 0;
    case NFT_CMP_LT: return d < 0;
    case NFT_CMP_LTE: return d <= 0;
    case NFT_CMP_GT: return d > 0;
    default: return d >= 0;
  }
}

/** nft_cmp_eval(): always the generic memcmp, whatever the record form. */
export function evalCmp(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const w0 = code[pc]!;
  if ((w0 & Rec.OP_MASK) === Op.CMP_EQ32) {
    cmpWord(ctx, ceOp(w0), ceSlot(w0), ceLen(w0), code[pc + CmpEq32.DATA]!);
    return;
  }
  const sreg = code[pc + Cmp.SREG]!;
  const len = code[pc + Cmp.LEN]!;
  const r8 = ctx.regs.r8;
  let d = 0;
  const p8 = ctx.prog.pool8;
  const at = code[pc + Cmp.POOL]! * 4;
  for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - p8[at + i]!;
  if (!cmpHolds(code[pc + Cmp.OP]!, d)) ctx.code = NFT_BREAK;
}

/** nft_cmp_eval() with ≤ 4 bytes of data held as a host-order word: memcmp, byte by byte. */
export function cmpWord(ctx: EvalCtx, op: number, sreg: number, len: number, w: number): void {
  const r8 = ctx.regs.r8;
  let d = 0;
  for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - ((w >>> (8 * i)) & 0xff);
  if (!cmpHolds(op, d)) ctx.code = NFT_BREAK;
}
