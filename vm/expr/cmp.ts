/**
 * cmp (net/netfilter/nft_cmp.c): memcmp of a register against constant data.
 *
 * Op.CMP record: [op, sreg, cmpop, len, pool]
 *   +1 sreg   source register slot (priv->sreg)
 *   +2 cmpop  NFT_CMP_EQ..GTE (priv->op)
 *   +3 len    bytes compared, 1..16 (priv->len)
 *   +4 pool   word offset of the data in the constant pool
 * Op.CMP_EQ32 record (nft_cmp_fast_ops, eq/neq of ≤ 4 bytes):
 *   [op, sreg, cmpop, len, data, mask]: match iff ((reg & mask) == data) XOR (op == neq)
 *
 * Ordered ops compare bytes, so they are numeric only on big-endian data.
 */
import { Op } from '../opcodes.js';
import { CMP_OP_NAMES, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_GT, NFT_CMP_GTE, NFT_CMP_LT, NFT_CMP_LTE, NFT_CMP_NEQ, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { ProgramBuilder } from '../builder.js';
import { byteMask, bytesToWord, fmtData, fmtReg, fmtWord, poolOk, type EvalCtx } from './common.js';

export const CMP_SREG = 1;
export const CMP_OP = 2;
export const CMP_LEN = 3;
export const CMP_POOL = 4;
export const CMP_DATA = 4; // CMP_EQ32
export const CMP_MASK = 5; // CMP_EQ32

/** Emits `cmp <op> reg sreg <data>`; `data` is the bytes in register (memory) order. */
export function emitCmp(b: ProgramBuilder, op: number, sreg: number, data: ArrayLike<number>): void {
  const slot = regSlot(sreg);
  const len = data.length;
  if ((op === NFT_CMP_EQ || op === NFT_CMP_NEQ) && len >= 1 && len <= 4) {
    b.emit([Op.CMP_EQ32, slot, op, len, bytesToWord(data, len), byteMask(len)]);
  } else {
    b.emit([Op.CMP, slot, op, len, b.pool(data)]);
  }
}

export function validateCmp(prog: Program, code: Int32Array, pc: number): string | null {
  const op = code[pc + CMP_OP]!;
  const len = code[pc + CMP_LEN]!;
  if (op < NFT_CMP_EQ || op > NFT_CMP_GTE) return `cmp: unknown op ${op} (-EINVAL)`;
  if (len < 1 || len > 16) return `cmp: length ${len} out of range 1..16`;
  const r = checkRegLoad(code[pc + CMP_SREG]!, len);
  if (r) return `cmp: ${r}`;
  if (code[pc] === Op.CMP_EQ32) {
    if (op !== NFT_CMP_EQ && op !== NFT_CMP_NEQ) return `cmp: fast form with op ${CMP_OP_NAMES[op]}`;
    if (len > 4) return `cmp: fast form of ${len} bytes`;
    if (code[pc + CMP_MASK] !== byteMask(len)) return 'cmp: fast form mask does not match the length';
    if ((code[pc + CMP_DATA]! & ~byteMask(len)) !== 0) return 'cmp: fast form data wider than the length';
  } else if (!poolOk(prog, code[pc + CMP_POOL]!, len)) return 'cmp: data outside the constant pool';
  return null;
}

export function disasmCmp(prog: Program, code: Int32Array, pc: number): string {
  const len = code[pc + CMP_LEN]!;
  const head = `${CMP_OP_NAMES[code[pc + CMP_OP]!]} reg ${fmtReg(code[pc + CMP_SREG]!)} `;
  if (code[pc] === Op.CMP_EQ32) return head + fmtWord(code[pc + CMP_DATA]!, len);
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
  const sreg = code[pc + CMP_SREG]!;
  const len = code[pc + CMP_LEN]!;
  const r8 = ctx.regs.r8;
  let d = 0;
  if (code[pc] === Op.CMP_EQ32) {
    const w = code[pc + CMP_DATA]!;
    for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - ((w >>> (8 * i)) & 0xff);
  } else {
    const p8 = ctx.prog.pool8;
    const at = code[pc + CMP_POOL]! * 4;
    for (let i = 0; i < len && d === 0; i++) d = r8[sreg * 4 + i]! - p8[at + i]!;
  }
  if (!cmpHolds(code[pc + CMP_OP]!, d)) ctx.code = NFT_BREAK;
}
