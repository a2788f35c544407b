/**
 * bitwise (net/netfilter/nft_bitwise.c).
 *
 * Op.BITWISE record: [op, sreg, dreg, bop, len, mask, xor, shift]
 *   +1 sreg   source register slot
 *   +2 dreg   destination register slot
 *   +3 bop    NFT_BITWISE_MASK_XOR / LSHIFT / RSHIFT / AND / OR / XOR
 *   +4 len    bytes, 1..255 within the registers
 *   +5 mask   pool word offset of the mask (mask/xor), -1 for shifts; the
 *             second source register slot for AND/OR/XOR (sreg2, Linux 6.13+)
 *   +6 xor    pool word offset of the xor value (mask/xor), -1 otherwise
 *   +7 shift  shift amount 0..31 (shifts), 0 for mask/xor
 * Op.BITWISE32 record (nft_bitwise_fast_ops, mask/xor of exactly 4 bytes):
 *   [op, sreg, dreg, mask, xor]
 *
 * Word-wise over ceil(len/4) host-order u32 words. Shifts carry between
 * words; the kernel reads src after writing dst, which matters when sreg ==
 * dreg, and that order is kept.
 */
import { Op } from '../opcodes.js';
import { NFT_BITWISE_AND, NFT_BITWISE_LSHIFT, NFT_BITWISE_MASK_XOR, NFT_BITWISE_OR, NFT_BITWISE_RSHIFT, NFT_BITWISE_XOR, checkRegLoad, checkRegStore, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { bytesToWord, fmtData, fmtReg, fmtWord, poolOk, type EvalCtx } from './common.js';

/** Op.BITWISE record words. */
export const enum Bitwise {
  SREG = 1,
  DREG = 2,
  OP = 3,
  LEN = 4,
  MASK = 5,
  XOR = 6,
  SHIFT = 7,
  SIZE = 8,
}

/** Op.BITWISE32 record words. */
export const enum Bitwise32 {
  SREG = 1,
  DREG = 2,
  MASK = 3,
  XOR = 4,
  SIZE = 5,
}

/** Emits `reg dreg = ( reg sreg & mask ) ^ xor` (mask and xor in register byte order, same length). */
export function emitBitwise(b: Emitter, dreg: number, sreg: number, mask: ArrayLike<number>, xor: ArrayLike<number>): void {
  if (mask.length !== xor.length) throw new RangeError('bitwise: mask and xor lengths differ');
  const len = mask.length;
  if (len === 4) b.emit([Op.BITWISE32, regSlot(sreg), regSlot(dreg), bytesToWord(mask, 4), bytesToWord(xor, 4)]);
  else b.emit([Op.BITWISE, regSlot(sreg), regSlot(dreg), NFT_BITWISE_MASK_XOR, len, b.pool(mask), b.pool(xor), 0]);
}

/** Emits a shift of `len` bytes: `reg dreg = ( reg sreg << n )` (`bop` LSHIFT) or `>>` (RSHIFT). */
export function emitBitwiseShift(b: Emitter, bop: number, dreg: number, sreg: number, len: number, shift: number): void {
  b.emit([Op.BITWISE, regSlot(sreg), regSlot(dreg), bop, len, -1, -1, shift]);
}

/** Emits `reg dreg = ( reg sreg OP reg sreg2 )` over `len` bytes, OP (`bop`) NFT_BITWISE_AND / OR / XOR. */
export function emitBitwiseBool(b: Emitter, bop: number, dreg: number, sreg: number, sreg2: number, len: number): void {
  b.emit([Op.BITWISE, regSlot(sreg), regSlot(dreg), bop, len, regSlot(sreg2), -1, 0]);
}

export function validateBitwise(prog: Program, code: Int32Array, pc: number): string | null {
  const sreg = code[pc + Bitwise.SREG]!;
  const dreg = code[pc + Bitwise.DREG]!;
  if (code[pc] === Op.BITWISE32) {
    return checkRegLoad(sreg, 4) ?? checkRegStore(dreg, 4);
  }
  const bop = code[pc + Bitwise.OP]!;
  const len = code[pc + Bitwise.LEN]!;
  if (len < 1 || len > 255) return `bitwise: length ${len} out of range 1..255`;
  const r = checkRegLoad(sreg, len) ?? checkRegStore(dreg, len);
  if (r) return `bitwise: ${r}`;
  if (bop === NFT_BITWISE_MASK_XOR) {
    if (!poolOk(prog, code[pc + Bitwise.MASK]!, len) || !poolOk(prog, code[pc + Bitwise.XOR]!, len)) return 'bitwise: mask/xor outside the constant pool';
    if (code[pc + Bitwise.SHIFT] !== 0) return 'bitwise: shift amount on a mask/xor';
  } else if (bop === NFT_BITWISE_LSHIFT || bop === NFT_BITWISE_RSHIFT) {
    const sh = code[pc + Bitwise.SHIFT]!;
    if (sh < 0 || sh >= 32) return `bitwise: shift ${sh} out of range 0..31 (-EINVAL)`;
    if (code[pc + Bitwise.MASK] !== -1 || code[pc + Bitwise.XOR] !== -1) return 'bitwise: mask/xor on a shift (-EINVAL)';
  } else if (bop === NFT_BITWISE_AND || bop === NFT_BITWISE_OR || bop === NFT_BITWISE_XOR) {
    const r2 = checkRegLoad(code[pc + Bitwise.MASK]!, len);
    if (r2) return `bitwise: ${r2}`;
    if (code[pc + Bitwise.XOR] !== -1 || code[pc + Bitwise.SHIFT] !== 0) return 'bitwise: xor or shift on a boolean op (-EINVAL)';
  } else return `bitwise: unknown op ${bop} (-EOPNOTSUPP)`;
  return null;
}

export function disasmBitwise(prog: Program, code: Int32Array, pc: number): string {
  const head = `reg ${fmtReg(code[pc + Bitwise.DREG]!)} = ( reg ${fmtReg(code[pc + Bitwise.SREG]!)} `;
  if (code[pc] === Op.BITWISE32) return `${head}& ${fmtWord(code[pc + Bitwise32.MASK]!, 4)}) ^ ${fmtWord(code[pc + Bitwise32.XOR]!, 4)}`;
  const bop = code[pc + Bitwise.OP]!;
  const len = code[pc + Bitwise.LEN]!;
  if (bop === NFT_BITWISE_MASK_XOR) {
    return `${head}& ${fmtData(prog.pool8, code[pc + Bitwise.MASK]! * 4, len)}) ^ ${fmtData(prog.pool8, code[pc + Bitwise.XOR]! * 4, len)}`;
  }
  if (bop === NFT_BITWISE_AND || bop === NFT_BITWISE_OR || bop === NFT_BITWISE_XOR) {
    return `${head}${bop === NFT_BITWISE_AND ? '&' : bop === NFT_BITWISE_OR ? '|' : '^'} reg ${fmtReg(code[pc + Bitwise.MASK]!)} ) `;
  }
  return `${head}${bop === NFT_BITWISE_LSHIFT ? '<<' : '>>'} ${fmtWord(code[pc + Bitwise.SHIFT]!, 4)}) `;
}

/** nft_bitwise_eval() */
export function evalBitwise(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const r = ctx.regs.r32;
  const src = code[pc + Bitwise.SREG]!;
  const dst = code[pc + Bitwise.DREG]!;
  if (code[pc] === Op.BITWISE32) {
    r[dst] = (r[src]! & code[pc + Bitwise32.MASK]!) ^ code[pc + Bitwise32.XOR]!;
    return;
  }
  const words = (code[pc + Bitwise.LEN]! + 3) >>> 2;
  const bop = code[pc + Bitwise.OP]!;
  const pool = ctx.prog.pool;
  if (bop === NFT_BITWISE_MASK_XOR) {
    const m = code[pc + Bitwise.MASK]!;
    const x = code[pc + Bitwise.XOR]!;
    for (let i = 0; i < words; i++) r[dst + i] = (r[src + i]! & pool[m + i]!) ^ pool[x + i]!;
    return;
  }
  if (bop >= NFT_BITWISE_AND) {
    bitwiseBool(r, bop, dst, src, code[pc + Bitwise.MASK]!, words);
    return;
  }
  const sh = code[pc + Bitwise.SHIFT]!;
  let carry = 0;
  if (bop === NFT_BITWISE_LSHIFT) {
    for (let i = words; i > 0; i--) {
      r[dst + i - 1] = (r[src + i - 1]! << sh) | carry;
      carry = r[src + i - 1]! >>> (32 - sh);
    }
  } else {
    for (let i = 0; i < words; i++) {
      r[dst + i] = carry | (r[src + i]! >>> sh);
      carry = r[src + i]! << (32 - sh);
    }
  }
}

/** nft_bitwise_eval_and/or/xor: word-wise over two registers. */
export function bitwiseBool(r: Int32Array, bop: number, dst: number, src: number, src2: number, words: number): void {
  for (let i = 0; i < words; i++) {
    const a = r[src + i]!, b2 = r[src2 + i]!;
    r[dst + i] = bop === NFT_BITWISE_AND ? a & b2 : bop === NFT_BITWISE_OR ? a | b2 : a ^ b2;
  }
}
