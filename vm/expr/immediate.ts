/**
 * immediate (net/netfilter/nft_immediate.c): a constant into a register, or a
 * verdict into the verdict register (reg 0).
 *
 * Op.IMMEDIATE record:   [op, dreg, len, pool]   data of 5..16 bytes in the pool
 * Op.IMMEDIATE32 record: [op, dreg, len, value]  data of 1..4 bytes inline (host-order word)
 * Op.VERDICT record, one packed word: bits 0-7 op, 8-11 code, 12-31 chain + 1
 *   code   NF_ACCEPT, NF_DROP, NF_QUEUE (exact codes, as nft_verdict_init), NFT_CONTINUE,
 *          NFT_BREAK, NFT_RETURN, NFT_JUMP, NFT_GOTO: 4-bit two's complement (-8..7;
 *          codes outside it are all invalid and refused by emitVerdict)
 *   chain  target chain index for jump/goto (resolved by a builder fixup), else -1 (field 0)
 *
 * A data store writes len bytes; a partial last word is zeroed first
 * (nft_data_copy zeroes the word: `dst[len / NFT_REG32_SIZE] = 0`).
 */
import { Op, Rec } from '../opcodes.js';
import {
  CHAIN_WORDS, CH_POLICY, NFT_BREAK, NFT_CONTINUE, NFT_GOTO, NFT_JUMP, NFT_RETURN, checkRegStore, regSlot,
} from '../layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK } from '../../core/netfilter.js';
import { VmError, chainCount, chainName, type Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { bytesToWord, fmtData, fmtReg, fmtWord, poolOk, type EvalCtx } from './common.js';

/** Op.IMMEDIATE / Op.IMMEDIATE32 record words. */
export const enum Immediate {
  DREG = 1,
  LEN = 2,
  /** The pool offset (IMMEDIATE) or the value (IMMEDIATE32). */
  DATA = 3,
  SIZE = 4,
}

/** Op.VERDICT packed word: the 4-bit two's complement code in bits 8-11, chain index + 1 from bit 12. */
export const enum Verdict {
  CODE_SHIFT = 8,
  CODE_MASK = 15,
  CHAIN_SHIFT = 12,
  /** `(w << CODE_UP) >> CODE_DOWN` is the code, sign-extended. */
  CODE_UP = 20,
  CODE_DOWN = 28,
  SIZE = 1,
}

/** The verdict code of a packed VERDICT word. */
export function verdictCode(w: number): number {
  return (w << Verdict.CODE_UP) >> Verdict.CODE_DOWN;
}
/** The target chain of a packed VERDICT word, -1 for none. */
export function verdictChain(w: number): number {
  return (w >>> Verdict.CHAIN_SHIFT) - 1;
}

/** Emits `immediate reg dreg <data>` (data in register byte order, 1..16 bytes). */
export function emitImmediate(b: Emitter, dreg: number, data: ArrayLike<number>): void {
  const len = data.length;
  if (len <= 4) b.emit([Op.IMMEDIATE32, regSlot(dreg), len, bytesToWord(data, len)]);
  else b.emit([Op.IMMEDIATE, regSlot(dreg), len, b.pool(data)]);
}

/** Emits `immediate reg 0 <verdict>`; jump/goto name their target chain (resolved at finish). */
export function emitVerdict(b: Emitter, code: number, chain?: string): void {
  if ((code === NFT_JUMP || code === NFT_GOTO) !== (chain !== undefined)) throw new TypeError('verdict: a chain name goes with jump/goto only');
  if (code < -8 || code > 7 || !Number.isInteger(code)) throw new VmError(`immediate: invalid verdict ${code} (-EINVAL)`);
  const at = b.emit([Op.VERDICT | ((code & Verdict.CODE_MASK) << Verdict.CODE_SHIFT)]);
  if (chain !== undefined) b.fixupChain(at, chain, Verdict.CHAIN_SHIFT);
}

export function validateImmediate(prog: Program, code: Int32Array, pc: number): string | null {
  if ((code[pc]! & Rec.OP_MASK) === Op.VERDICT) {
    const v = verdictCode(code[pc]!);
    const chain = verdictChain(code[pc]!);
    if (v === NFT_JUMP || v === NFT_GOTO) {
      if (chain < 0 || chain >= chainCount(prog)) return `immediate: ${v === NFT_JUMP ? 'jump' : 'goto'} to chain ${chain} out of range`;
      if (prog.chains[chain * CHAIN_WORDS + CH_POLICY]! >= 0) return `immediate: jump/goto to base chain ${chainName(prog, chain)} (-EINVAL)`;
      return null;
    }
    if (chain !== -1) return 'immediate: chain operand on a verdict without a target';
    // nft_verdict_init() since the 2024 fix (CVE-2024-1086): exact codes only, no
    // NF_DROP_ERR / queue-number bits and no NF_STOLEN from userspace.
    if (v === NFT_CONTINUE || v === NFT_BREAK || v === NFT_RETURN || v === NF_ACCEPT || v === NF_DROP || v === NF_QUEUE) return null;
    return `immediate: invalid verdict ${v} (-EINVAL)`;
  }
  const len = code[pc + Immediate.LEN]!;
  if (len < 1 || len > 16) return `immediate: length ${len} out of range 1..16`;
  const r = checkRegStore(code[pc + Immediate.DREG]!, len);
  if (r) return `immediate: ${r}`;
  if (code[pc] === Op.IMMEDIATE32) {
    if (len > 4) return 'immediate: inline data longer than 4 bytes';
  } else if (!poolOk(prog, code[pc + Immediate.DATA]!, len)) return 'immediate: data outside the constant pool';
  return null;
}

/** libnftnl nftnl_verdict2str() + `-> chain`. */
function fmtVerdict(prog: Program, v: number, chain: number): string {
  switch (v) {
    case NFT_CONTINUE: return 'continue ';
    case NFT_BREAK: return 'break ';
    case NFT_JUMP: return `jump -> ${chainName(prog, chain)} `;
    case NFT_GOTO: return `goto -> ${chainName(prog, chain)} `;
    case NFT_RETURN: return 'return ';
    default:
      switch (v & NF_VERDICT_MASK) {
        case NF_ACCEPT: return 'accept ';
        case NF_DROP: return 'drop ';
        case NF_QUEUE: return 'queue ';
        case NF_STOLEN: return 'stolen ';
        default: return 'unknown ';
      }
  }
}

export function disasmImmediate(prog: Program, code: Int32Array, pc: number): string {
  if ((code[pc]! & Rec.OP_MASK) === Op.VERDICT) return `reg 0 ${fmtVerdict(prog, verdictCode(code[pc]!), verdictChain(code[pc]!))}`;
  const len = code[pc + Immediate.LEN]!;
  const data = code[pc] === Op.IMMEDIATE32 ? fmtWord(code[pc + Immediate.DATA]!, len) : fmtData(prog.pool8, code[pc + Immediate.DATA]! * 4, len);
  return `reg ${fmtReg(code[pc + Immediate.DREG]!)} ${data}`;
}

/** nft_immediate_eval() */
export function evalImmediate(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  if ((code[pc]! & Rec.OP_MASK) === Op.VERDICT) {
    ctx.code = verdictCode(code[pc]!);
    ctx.target = verdictChain(code[pc]!);
    return;
  }
  const d = code[pc + Immediate.DREG]!;
  const len = code[pc + Immediate.LEN]!;
  const r8 = ctx.regs.r8;
  if (len % 4) ctx.regs.r32[d + (len >> 2)] = 0;
  if (code[pc] === Op.IMMEDIATE32) {
    const w = code[pc + Immediate.DATA]!;
    for (let i = 0; i < len; i++) r8[d * 4 + i] = (w >>> (8 * i)) & 0xff;
  } else {
    const p8 = ctx.prog.pool8;
    const at = code[pc + Immediate.DATA]! * 4;
    for (let i = 0; i < len; i++) r8[d * 4 + i] = p8[at + i]!;
  }
}
