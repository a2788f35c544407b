/**
 * numgen (net/netfilter/nft_numgen.c): an incrementing or random number
 * modulo `modulus`, plus `offset`, into a register.
 *
 * Record: [op, dreg, type, modulus, offset, state]
 *   +1 dreg     destination register slot (4 bytes)
 *   +2 type     NFT_NG_INCREMENTAL / NFT_NG_RANDOM
 *   +3 modulus  u32 > 0
 *   +4 offset   u32; offset + modulus - 1 must not overflow
 *   +5 state    index into Program.state: the incremental counter, preset to modulus - 1
 */
import { Op } from '../opcodes.js';
import { NFT_NG_INCREMENTAL, NFT_NG_RANDOM, checkRegStore, regSlot } from '../layout.js';
import { prandomU32, type Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';

/** Op.NUMGEN record words. */
export const enum Numgen {
  DREG = 1,
  TYPE = 2,
  MODULUS = 3,
  OFFSET = 4,
  STATE = 5,
  SIZE = 6,
}

export function emitNumgen(b: Emitter, dreg: number, type: number, modulus: number, offset = 0): void {
  b.emit([Op.NUMGEN, regSlot(dreg), type, modulus | 0, offset | 0, b.state(1)]);
}

export function validateNumgen(prog: Program, code: Int32Array, pc: number): string | null {
  const type = code[pc + Numgen.TYPE]!;
  const mod = code[pc + Numgen.MODULUS]! >>> 0;
  const off = code[pc + Numgen.OFFSET]! >>> 0;
  const st = code[pc + Numgen.STATE]!;
  if (type !== NFT_NG_INCREMENTAL && type !== NFT_NG_RANDOM) return `numgen: unknown type ${type} (-EOPNOTSUPP)`;
  if (mod === 0) return 'numgen: modulus 0 (-ERANGE)';
  if (off + mod - 1 > 0xffffffff) return 'numgen: offset + modulus overflows (-EOVERFLOW)';
  if (st < 0 || st >= prog.state.length) return `numgen: state ${st} out of range`;
  const r = checkRegStore(code[pc + Numgen.DREG]!, 4);
  return r ? `numgen: ${r}` : null;
}

export function disasmNumgen(_prog: Program, code: Int32Array, pc: number): string {
  const off = code[pc + Numgen.OFFSET]! >>> 0;
  const type = code[pc + Numgen.TYPE] === NFT_NG_RANDOM ? 'random' : 'inc';
  return `reg ${fmtReg(code[pc + Numgen.DREG]!)} = ${type} mod ${code[pc + Numgen.MODULUS]! >>> 0} ${off ? `offset ${off} ` : ''}`;
}

/** The initial counter of an incremental numgen (nft_ng_inc_init presets modulus - 1). */
export function initNumgen(prog: Program, pc: number): void {
  const code = prog.code;
  prog.state[code[pc + Numgen.STATE]!] = (code[pc + Numgen.MODULUS]! >>> 0) - 1;
}

/** reciprocal_scale(r, m) = (u64)r * m >> 32, exactly, without BigInt. */
export function reciprocalScale(r: number, m: number): number {
  const ru = r >>> 0;
  const mu = m >>> 0;
  const hi = (ru >>> 16) * mu;
  const lo = (ru & 0xffff) * mu;
  return Math.floor((hi + Math.floor(lo / 65536)) / 65536);
}

/** nft_ng_inc_eval() / nft_ng_random_eval() */
export function evalNumgen(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const mod = code[pc + Numgen.MODULUS]! >>> 0;
  const off = code[pc + Numgen.OFFSET]!;
  let v: number;
  if (code[pc + Numgen.TYPE] === NFT_NG_INCREMENTAL) {
    const st = code[pc + Numgen.STATE]!;
    const old = ctx.prog.state[st]!;
    v = old + 1 < mod ? old + 1 : 0;
    ctx.prog.state[st] = v;
  } else v = reciprocalScale(ctx.env.drawAt === null ? prandomU32(ctx.env) : ctx.env.drawAt(ctx.rule), mod);
  ctx.regs.r32[code[pc + Numgen.DREG]!] = (v + off) | 0;
}
