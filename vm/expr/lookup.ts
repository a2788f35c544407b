/**
 * lookup (net/netfilter/nft_lookup.c): is the key in sreg a member of a set?
 * Maps (dreg) are not modelled.
 *
 * Record: [op, sreg, set, flags]
 *   +1 sreg   source register slot; the set's key length is read from it
 *   +2 set    index into Program.sets
 *   +3 flags  NFT_LOOKUP_F_INV: match when the key is absent
 */
import { Op } from '../opcodes.js';
import { NFT_BREAK, NFT_LOOKUP_F_INV, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';

export const LOOKUP_SREG = 1;
export const LOOKUP_SET = 2;
export const LOOKUP_FLAGS = 3;

/** Emits `lookup reg sreg set NAME` against a set added with ProgramBuilder.addSet(). */
export function emitLookup(b: Emitter, sreg: number, setName: string, invert = false): void {
  b.emit([Op.LOOKUP, regSlot(sreg), b.setIndex(setName), invert ? NFT_LOOKUP_F_INV : 0]);
}

export function validateLookup(prog: Program, code: Int32Array, pc: number): string | null {
  const si = code[pc + LOOKUP_SET]!;
  const set = si >= 0 ? prog.sets[si] : undefined;
  if (!set) return `lookup: set ${si} does not exist (-ENOENT)`;
  const flags = code[pc + LOOKUP_FLAGS]!;
  if (flags & ~NFT_LOOKUP_F_INV) return `lookup: unknown flags 0x${(flags >>> 0).toString(16)} (-EINVAL)`;
  const r = checkRegLoad(code[pc + LOOKUP_SREG]!, set.keyLen);
  return r ? `lookup: ${r}` : null;
}

export function disasmLookup(prog: Program, code: Int32Array, pc: number): string {
  const flags = code[pc + LOOKUP_FLAGS]!;
  const set = prog.sets[code[pc + LOOKUP_SET]!];
  return `reg ${fmtReg(code[pc + LOOKUP_SREG]!)} set ${set ? set.name : '?'} ${flags ? `0x${flags.toString(16)} ` : ''}`;
}

/** nft_lookup_eval() */
export function evalLookup(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const set = ctx.prog.sets[code[pc + LOOKUP_SET]!]!;
  const found = set.lookup(ctx.regs.r8, ctx.regs.r32, code[pc + LOOKUP_SREG]!);
  const inv = (code[pc + LOOKUP_FLAGS]! & NFT_LOOKUP_F_INV) !== 0;
  if (found === inv) ctx.code = NFT_BREAK;
}
