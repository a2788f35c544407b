/**
 * lookup (net/netfilter/nft_lookup.c): is the key in sreg a member of a set?
 * Maps (dreg) are not modelled.
 *
 * Record: [op, sreg, set, flags]
 *   +1 sreg   source register slot; the set's key length is read from it
 *   +2 set    index into Program.sets
 *   +3 flags  NFT_LOOKUP_F_INV: match when the key is absent; LOOKUP_FLAGS_ATTR: the
 *             flags attribute is sent when zero too (printed as `0x0`)
 */
import { Op } from '../opcodes.js';
import { LOOKUP_FLAGS_ATTR, NFT_BREAK, NFT_LOOKUP_F_INV, checkRegLoad, regSlot } from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';

/** Op.LOOKUP record words. */
export const enum Lookup {
  SREG = 1,
  SET = 2,
  FLAGS = 3,
  SIZE = 4,
}

/**
 * Emits `lookup reg sreg set NAME` against a set added with
 * ProgramBuilder.addSet(); `flagsAttr`: the flags attribute goes with it
 * when zero too (as ebtables-nft sends it).
 */
export function emitLookup(b: Emitter, sreg: number, setName: string, invert = false, flagsAttr = false): void {
  b.emit([Op.LOOKUP, regSlot(sreg), b.setIndex(setName), (invert ? NFT_LOOKUP_F_INV : 0) | (flagsAttr ? LOOKUP_FLAGS_ATTR : 0)]);
}

export function validateLookup(prog: Program, code: Int32Array, pc: number): string | null {
  const si = code[pc + Lookup.SET]!;
  const set = si >= 0 ? prog.sets[si] : undefined;
  if (!set) return `lookup: set ${si} does not exist (-ENOENT)`;
  const flags = code[pc + Lookup.FLAGS]!;
  if (flags & ~(NFT_LOOKUP_F_INV | LOOKUP_FLAGS_ATTR)) return `lookup: unknown flags 0x${(flags >>> 0).toString(16)} (-EINVAL)`;
  const r = checkRegLoad(code[pc + Lookup.SREG]!, set.keyLen);
  return r ? `lookup: ${r}` : null;
}

export function disasmLookup(prog: Program, code: Int32Array, pc: number): string {
  const flags = code[pc + Lookup.FLAGS]!;
  const set = prog.sets[code[pc + Lookup.SET]!];
  return `reg ${fmtReg(code[pc + Lookup.SREG]!)} set ${set ? set.name : '?'} ${flags ? `0x${(flags & NFT_LOOKUP_F_INV).toString(16)} ` : ''}`;
}

/** nft_lookup_eval() */
export function evalLookup(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const set = ctx.prog.sets[code[pc + Lookup.SET]!]!;
  const found = set.lookup(ctx.regs.r8, ctx.regs.r32, code[pc + Lookup.SREG]!);
  const inv = (code[pc + Lookup.FLAGS]! & NFT_LOOKUP_F_INV) !== 0;
  if (found === inv) ctx.code = NFT_BREAK;
}
