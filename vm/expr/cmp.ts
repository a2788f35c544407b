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
import { OP_MASK, Op } from '../opcodes.js';
import { CMP_OP_NAMES, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { byteMask, bytesToWord, fmtData, fmtReg, fmtWord, poolOk, type EvalCtx } from './common.js';

export const CMP_SREG = 1;
export const CMP_OP = 2;
export const CMP_LEN = 3;
export const CMP_POOL = 4;
export const CMP_DATA = 1; // CMP_EQ32

/** Bit 15 of a packed CMP_EQ32 word: neq. */
export const CE_NEQ = 1 << 15;
export function packCmpEq32(slot: number, len: number, neq: boolean): number {
  return Op.CMP_EQ32 | (slot << 8) | ((len - 1) << 13) | (neq ? CE_NEQ : 0);
}
export function ceSlot(w: number): number {
  return (w >>> 8) & 31;
}
export function ceLen(w: number): number {
  return ((w >>> 13) & 3) + 1;
}
export function ceOp(w: number): number {
  return (w & CE_NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ;
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
  if ((w & OP_MASK) === Op.CMP_EQ32) {
    if (w >>> 16 !== 0) return 'cmp: unknown bits in a packed compare';
    const len = ceLen(w);
    const r = checkRegLoad(ceSlot(w), len);
    if (r) return `cmp: ${r}`;
    if ((code[pc + CMP_DATA]! & ~byteMask(len)) !== 0) return 'cmp: fast form data wider than the length';
    return null;
  }
  const op = code[pc + CMP_OP]!;
  const len = code[pc + CMP_LEN]!;
  if (op < NFT_CMP_EQ || op > NFT_CMP_GTE) return `cmp: unknown op ${op} (-EINVAL)`;
  if (len < 1 || len > 16) return `cmp: length ${len} out of range 1..16`;
  const r = checkRegLoad(code[pc + CMP_SREG]!, len);
  if (r) return `cmp: ${r}`;
  if (!poolOk(prog, code[pc + CMP_POOL]!, len)) return 'cmp: data outside the constant pool';
  return null;
}

/** The kernel's text of an eq/neq compare of ≤ 4 bytes (shared with the superinstructions). */
export function fmtCmp32(op: number, slot: number, len: number, data: number): string {
  return `${CMP_OP_NAMES[op]} reg ${fmtReg(slot)} ${fmtWord(data, len)}`;
}

export function disasmCmp(prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  if ((w & OP_MASK) === Op.CMP_EQ32) return fmtCmp32(ceOp(w), ceSlot(w), ceLen(w), code[pc + CMP_DATA]!);
  const len = code[pc + CMP_LEN]!;
  const head = `${CMP_OP_NAMES[code[pc + CMP_OP]!]} reg ${fmtReg(code[pc + CMP_SREG]!)} `;
  return head + fmtData(prog.pool8, code[pc + CMP_POOL]! * 4, len);
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
  if ((w0 & OP_MASK) === Op.CMP_EQ32) {
    cmpWord(ctx, ceOp(w0), ceSlot(w0), ceLen(w0), code[pc + CMP_DATA]!);
    return;
  }
  const sreg = code[pc + CMP_SREG]!;
  const len = code[pc + CMP_LEN]!;
  const r8 = ctx.regs.r8;
  let d = 0;
  const p8 = ctx.prog.pool8;
  const at = code[pc + CMP_POOL]! * 4;
  for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - p8[at + i]!;
  if (!cmpHolds(code[pc + CMP_OP]!, d)) ctx.code = NFT_BREAK;
}

/** nft_cmp_eval() with ≤ 4 bytes of data held as a host-order word: memcmp, byte by byte. */
export function cmpWord(ctx: EvalCtx, op: number, sreg: number, len: number, w: number): void {
  const r8 = ctx.regs.r8;
  let d = 0;
  for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - ((w >>> (8 * i)) & 0xff);
  if (!cmpHolds(op, d)) ctx.code = NFT_BREAK;
}
