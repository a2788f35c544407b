/**
 * byteorder (net/netfilter/nft_byteorder.c): swap each `size`-byte element
 * (little-endian host: hton and ntoh both swap).
 *
 * Record: [op, sreg, dreg, bop, len, size]
 *   +1 sreg  source register slot
 *   +2 dreg  destination register slot
 *   +3 bop   NFT_BYTEORDER_NTOH / HTON
 *   +4 len   total bytes, 1..255 within the registers; len/size elements are swapped
 *   +5 size  element size, 2 or 4 (size 8 is refused: the kernel's u64 walk is not modelled)
 */
import { Op } from '../opcodes.js';
import { NFT_BYTEORDER_HTON, NFT_BYTEORDER_NTOH, checkRegLoad, checkRegStore, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';

/** Op.BYTEORDER record words. */
export const enum Byteorder {
  SREG = 1,
  DREG = 2,
  OP = 3,
  LEN = 4,
  /** The element size (2 or 4). */
  ELEM_SIZE = 5,
  SIZE = 6,
}

export function emitByteorder(b: Emitter, bop: number, dreg: number, sreg: number, len: number, size: number): void {
  b.emit([Op.BYTEORDER, regSlot(sreg), regSlot(dreg), bop, len, size]);
}

export function validateByteorder(_prog: Program, code: Int32Array, pc: number): string | null {
  const bop = code[pc + Byteorder.OP]!;
  const len = code[pc + Byteorder.LEN]!;
  const size = code[pc + Byteorder.ELEM_SIZE]!;
  if (bop !== NFT_BYTEORDER_NTOH && bop !== NFT_BYTEORDER_HTON) return `byteorder: unknown op ${bop} (-EOPNOTSUPP)`;
  if (size !== 2 && size !== 4) return `byteorder: element size ${size} not 2 or 4 (-EINVAL)`;
  if (len < 1 || len > 255) return `byteorder: length ${len} out of range 1..255`;
  const r = checkRegLoad(code[pc + Byteorder.SREG]!, len) ?? checkRegStore(code[pc + Byteorder.DREG]!, len);
  return r ? `byteorder: ${r}` : null;
}

export function disasmByteorder(_prog: Program, code: Int32Array, pc: number): string {
  const name = code[pc + Byteorder.OP] === NFT_BYTEORDER_HTON ? 'hton' : 'ntoh';
  return `reg ${fmtReg(code[pc + Byteorder.DREG]!)} = ${name}(reg ${fmtReg(code[pc + Byteorder.SREG]!)}, ${code[pc + Byteorder.ELEM_SIZE]}, ${code[pc + Byteorder.LEN]}) `;
}

/** nft_byteorder_eval() */
export function evalByteorder(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const r8 = ctx.regs.r8;
  const s = code[pc + Byteorder.SREG]! * 4;
  const d = code[pc + Byteorder.DREG]! * 4;
  const size = code[pc + Byteorder.ELEM_SIZE]!;
  const n = (code[pc + Byteorder.LEN]! / size) | 0;
  for (let i = 0; i < n; i++) {
    const a = i * size;
    if (size === 2) {
      const b0 = r8[s + a]!;
      const b1 = r8[s + a + 1]!;
      r8[d + a] = b1;
      r8[d + a + 1] = b0;
    } else {
      const b0 = r8[s + a]!;
      const b1 = r8[s + a + 1]!;
      const b2 = r8[s + a + 2]!;
      const b3 = r8[s + a + 3]!;
      r8[d + a] = b3;
      r8[d + a + 1] = b2;
      r8[d + a + 2] = b1;
      r8[d + a + 3] = b0;
    }
  }
}
