/**
 * The execution tier: nft_do_chain() (net/netfilter/nf_tables_core.c, 6.18)
 * over code generated from a verified Program (vm/jit/gen.ts), the
 * interpreter's (vm/interp.ts) meaning exactly: the same register, counter,
 * state, metadata and trace-event effects, the same jump stack. The program
 * is verified (vm/validate.ts) before any code is generated from it; the
 * generated functions are built once per program (a WeakMap cache) with
 * `new Function` over source made only of nfvm's fixed text and int32
 * literals (vm/jit/src.ts).
 *
 * A packet that enters with nf_trace set while the VM has a trace ring runs
 * through nftDoChainSlow, as in the interpreter.
 */
import { OP_INFO, opSize, Rec } from '../opcodes.js';
import { CHAIN_WORDS, CH_FIRST, CH_POLICY, F_NFTRACE, M_FLAGS, NFT_BREAK, NFT_CONTINUE, NFT_GOTO, NFT_JUMP, NFT_JUMP_STACK_SIZE } from '../layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK } from '../../core/netfilter.js';
import { prandomU32, traceRecord, type NftRegs, type Program, type VmEnv } from '../program.js';
import type { Packet } from '../packet.js';
import { validate } from '../validate.js';
import { nftDoChainSlow } from '../interp-slow.js';
import { EXPR_KINDS } from '../expr/index.js';
import type { EvalCtx } from '../expr/common.js';
import { EXTRA_OPS, execExtra } from '../expr/extra.js';
import { CLS_JUMP, clsPc, execClassify } from '../expr/classify.js';
import { limitCost, limitOver } from '../expr/limit.js';
import { ctStateWord, ctXtStateWord } from '../expr/ct.js';
import { pkttypeLoopback } from '../expr/meta.js';
import { generate, OUT_NEXT, OUT_PC, OUT_TARGET, SEG_GO, WITHIN_DISPATCH, type GenOptions } from './gen.js';

export { jitMode, type JitMode } from './gen.js';

type Segment = (pc: number, pkt: Packet, regs: NftRegs, env: VmEnv) => number;

/** A program's generated code. */
export interface JitCode {
  readonly prog: Program;
  readonly segments: readonly Segment[];
  /** The segment of each rule header and END record, -1 elsewhere. */
  readonly segAt: Int32Array;
  /** The generated source of each segment (tests, `nfvm disasm` debugging). */
  readonly sources: readonly string[];
}

/** The driver's scratch words (one packet at a time, as clsPc). */
const out = new Int32Array(3);

/** The evaluation context of the fallback, one per program (no allocation per record). */
interface FallbackCtx {
  prog: Program;
  pkt: Packet;
  regs: NftRegs;
  env: VmEnv;
  code: number;
  target: number;
  chain: number;
  rule: number;
  skip: number;
}

/**
 * The fallback of one record: the kinds the interpreter hands to execExtra
 * go there; every other kind runs its expression evaluation (vm/expr eval,
 * what the slow interpreter runs). Returns NFT_CONTINUE, NFT_BREAK, a
 * verdict (its target chain in out[OUT_TARGET]) or CLS_JUMP (clsPc[0]).
 */
function fallbackOf(prog: Program): (pc: number, chain: number, rule: number, pkt: Packet, regs: NftRegs, env: VmEnv) => number {
  const code = prog.code;
  const ctx: FallbackCtx = { prog, pkt: null!, regs: null!, env: null!, code: NFT_CONTINUE, target: -1, chain: 0, rule: 0, skip: 0 };
  return (pc, chain, rule, pkt, regs, env) => {
    const op = code[pc]! & Rec.OP_MASK;
    if (EXTRA_OPS.has(op)) return execExtra(prog, pc, pkt, regs, env, chain, rule);
    ctx.pkt = pkt;
    ctx.regs = regs;
    ctx.env = env;
    ctx.chain = chain;
    ctx.rule = rule;
    ctx.code = NFT_CONTINUE;
    ctx.target = -1;
    ctx.skip = 0;
    EXPR_KINDS[op]!.eval(ctx as EvalCtx, pc);
    const skip = ctx.skip;
    ctx.skip = 0;
    if (ctx.code === NFT_CONTINUE && skip !== 0) {
      clsPc[0] = pc + OP_INFO[op]!.size + skip;
      return CLS_JUMP;
    }
    out[OUT_TARGET] = ctx.target;
    return ctx.code;
  };
}

/**
 * A move to `to` from a record of the rule ending at `next`: when `to` is a
 * later record of the same rule, the rest of the rule runs here through the
 * fallback (NFT_CONTINUE: the rule ended, NFT_BREAK, or a verdict); otherwise
 * WITHIN_DISPATCH (the generated code re-enters its switch at clsPc[0]).
 */
function withinOf(prog: Program, fallback: ReturnType<typeof fallbackOf>) {
  const code = prog.code;
  return (to: number, next: number, chain: number, rule: number, pkt: Packet, regs: NftRegs, env: VmEnv): number => {
    if (to >= next) return WITHIN_DISPATCH; // a later rule header, or the end of the chain
    let pc = to;
    while (pc < next) {
      const v = fallback(pc, chain, rule, pkt, regs, env);
      if (v === NFT_CONTINUE) pc += opSize(code[pc]! & Rec.OP_MASK);
      else if (v === CLS_JUMP) {
        if (clsPc[0]! >= next) return WITHIN_DISPATCH;
        pc = clsPc[0]!;
      } else return v;
    }
    return NFT_CONTINUE;
  };
}

/**
 * The call generated code makes for a record it does not inline: the
 * record's fallback, and a move it makes (CLS_JUMP) followed within the
 * rule (jitWithin) or handed back as WITHIN_DISPATCH. NFT_CONTINUE: go on
 * with the rule; NFT_BREAK: the next rule (also when the rest of the rule
 * ran here without a verdict); otherwise the verdict, with out[OUT_NEXT].
 */
function jitFallbackOf(prog: Program) {
  const one = fallbackOf(prog);
  const within = withinOf(prog, one);
  return (pc: number, next: number, chain: number, rule: number, pkt: Packet, regs: NftRegs, env: VmEnv): number => {
    let v = one(pc, chain, rule, pkt, regs, env);
    if (v === NFT_CONTINUE || v === NFT_BREAK) return v;
    if (v === CLS_JUMP) {
      v = within(clsPc[0]!, next, chain, rule, pkt, regs, env);
      if (v === WITHIN_DISPATCH || v === NFT_BREAK) return v;
      if (v === NFT_CONTINUE) return NFT_BREAK;
    }
    out[OUT_NEXT] = next;
    return v;
  };
}

/**
 * Byte copies and compares of the generated code: calls, not loops in the
 * source, since the optimizing compiler's time grows steeply with the loops
 * of one function (a segment of 200 interface-name rules took it seconds).
 */
function copy8(dst: Uint8Array, d: number, src: Uint8Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) dst[d + i] = src[s + i]!;
}

/** The first nonzero difference a[ai + i] - b[bi + i] over n bytes, or 0 (the interpreter's memcmp sign). */
function cmp8(a: Uint8Array, ai: number, b: Uint8Array, bi: number, n: number): number {
  for (let i = 0; i < n; i++) {
    const diff = a[ai + i]! - b[bi + i]!;
    if (diff !== 0) return diff;
  }
  return 0;
}

const cache = new WeakMap<Program, JitCode>();

/** The generated code of `prog`, built (after validating it) on first use. */
export function jitCode(prog: Program, opts: GenOptions = {}): JitCode {
  const plain = opts.inline !== false && opts.segmentWords === undefined && opts.runMin === undefined;
  const cached = plain ? cache.get(prog) : undefined;
  if (cached) return cached;
  validate(prog);
  const { sources, segAt, slotAt, rowAt, baseAt, params } = generate(prog, opts);
  const kit = Object.freeze({
    prog, classify: execClassify, slotAt, rowAt, baseAt, params, code: prog.code, pool: prog.pool, pool8: prog.pool8, counters: prog.counters, state: prog.state, sets: prog.sets,
    out, clsPc, fallback: jitFallbackOf(prog), traceRecord, limitOver, limitCost, prandomU32, pkttypeLoopback, copy8, cmp8,
    extra: execExtra, ctStateWord, ctXtStateWord,
  });
  const segments: Segment[] = [];
  for (const src of sources) segments.push(new Function('K', src)(kit) as Segment);
  const j: JitCode = Object.freeze({ prog, segments: Object.freeze(segments), segAt, sources: Object.freeze(sources) });
  if (plain) cache.set(prog, j);
  return j;
}

/**
 * Runs base chain `baseChain` of the program of `j` on `pkt`: nftDoChain's
 * contract (registers zeroed, `stack` of 2 * NFT_JUMP_STACK_SIZE words).
 */
export function jitDoChain(j: JitCode, baseChain: number, pkt: Packet, regs: NftRegs, stack: Int32Array, env: VmEnv): number {
  const prog = j.prog;
  if (env.trace !== null && (pkt.meta[M_FLAGS]! & F_NFTRACE) !== 0) return nftDoChainSlow(prog, baseChain, pkt, regs, stack, env);
  const chains = prog.chains;
  const segments = j.segments;
  const segAt = j.segAt;
  regs.clear();
  let chain = baseChain;
  let pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
  let sp = 0;
  for (;;) {
    const s = segAt[pc]!;
    // not a rule header or END: unreachable for validated programs, the end of the chain (as the interpreter's default)
    const v = s < 0 ? NFT_CONTINUE : segments[s]!(pc, pkt, regs, env);
    if (v === SEG_GO) {
      pc = out[OUT_PC]!;
      continue;
    }
    const low = v & NF_VERDICT_MASK;
    if (low === NF_ACCEPT || low === NF_DROP || low === NF_QUEUE || low === NF_STOLEN) return v;
    if (v === NFT_JUMP) {
      if (sp >= NFT_JUMP_STACK_SIZE) return NF_DROP;
      stack[sp << 1] = chain;
      stack[(sp << 1) + 1] = out[OUT_NEXT]!;
      sp++;
      chain = out[OUT_TARGET]!;
      pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
      continue;
    }
    if (v === NFT_GOTO) {
      chain = out[OUT_TARGET]!;
      pc = chains[chain * CHAIN_WORDS + CH_FIRST]!;
      continue;
    }
    // NFT_CONTINUE at the end of a chain, or NFT_RETURN.
    if (sp > 0) {
      sp--;
      chain = stack[sp << 1]!;
      pc = stack[(sp << 1) + 1]!;
      continue;
    }
    return chains[baseChain * CHAIN_WORDS + CH_POLICY]!;
  }
}
