/**
 * The slow interpreter: nft_do_chain() written plainly over the
 * per-expression eval<Kind> functions (vm/expr), one call per expression.
 * It is the oracle the property tests hold nftDoChain (vm/interp.ts) to, and
 * the traced variant: when a
 * packet enters with nf_trace set and the VM has a trace ring, the
 * interpreter hands the packet to this function, which records
 * (chain, rule, verdict) events as nft_trace_packet() reports them.
 */
import { Op, OP_INFO, Rec } from './opcodes.js';
import {
  CHAIN_WORDS, CH_FIRST, CH_POLICY, F_NFTRACE, M_FLAGS, NFT_BREAK, NFT_CONTINUE, NFT_GOTO, NFT_JUMP,
  NFT_JUMP_STACK_SIZE, TRACE_POLICY, TRACE_RETURN, TRACE_RULE,
} from './layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK } from '../core/netfilter.js';
import { traceRecord, type NftRegs, type Program, type VmEnv } from './program.js';
import type { Packet } from './packet.js';
import { EXPR_KINDS } from './expr/index.js';
import type { EvalCtx } from './expr/common.js';

export function nftDoChainSlow(prog: Program, baseChain: number, pkt: Packet, regs: NftRegs, stack: Int32Array, env: VmEnv): number {
  const code = prog.code;
  regs.clear();
  const ctx: EvalCtx = { prog, pkt, regs, env, code: NFT_CONTINUE, target: -1, chain: baseChain, rule: -1, skip: 0 };
  const tracing = env.trace !== null && (pkt.meta[M_FLAGS]! & F_NFTRACE) !== 0;
  // the packet in words, its number in env.traceNotes + 1 (0: no describer)
  const describe = (): number => {
    const d = env.traceDescribe;
    if (d === null) return 0;
    env.traceNotes.push(d(pkt));
    return env.traceNotes.length;
  };
  // the current rule's words taken at its counter (env.traceAtCounter), 0 when not
  let atCounter = 0;
  const trace = (type: number, rule: number, verdict: number): void => {
    if (tracing && (pkt.meta[M_FLAGS]! & F_NFTRACE) !== 0) {
      traceRecord(env, type, ctx.chain, rule, verdict, type === TRACE_RULE && atCounter !== 0 ? atCounter : describe());
    }
  };
  let pc = prog.chains[baseChain * CHAIN_WORDS + CH_FIRST]!;
  let sp = 0;
  for (;;) {
    let verdict = NFT_CONTINUE;
    let next = pc;
    while ((code[pc]! & Rec.OP_MASK) === Op.RULE) {
      next = pc + (code[pc]! >>> Rec.OP_BITS);
      ctx.rule = code[pc + Rec.RULE_INDEX]!;
      ctx.code = NFT_CONTINUE;
      let counted = false;
      atCounter = 0;
      for (let e = pc + Rec.RULE_WORDS; e < next; e += OP_INFO[code[e]! & Rec.OP_MASK]!.size + ctx.skip) {
        ctx.skip = 0;
        if ((code[e]! & Rec.OP_MASK) === Op.COUNTER) {
          counted = true;
          // x_tables logs the rule here, its matches passed, before its target changes the packet
          if (tracing && env.traceAtCounter) atCounter = describe();
        }
        EXPR_KINDS[code[e]! & Rec.OP_MASK]!.eval(ctx, e);
        if (ctx.code !== NFT_CONTINUE) break;
      }
      ctx.skip = 0;
      if (ctx.code === NFT_BREAK) {
        // the compiler puts the counter after the matches: a BREAK after it
        // (a target's ct load without a conntrack) still means the rule matched,
        // which x_tables' TRACE reports as rule:N
        if (counted) trace(TRACE_RULE, ctx.rule, NFT_CONTINUE);
        pc = next;
        continue;
      }
      if (ctx.code === NFT_CONTINUE) {
        trace(TRACE_RULE, ctx.rule, NFT_CONTINUE);
        pc = next;
        continue;
      }
      verdict = ctx.code;
      break;
    }
    if (verdict !== NFT_CONTINUE) trace(TRACE_RULE, ctx.rule, verdict);
    const low = verdict & NF_VERDICT_MASK;
    if (low === NF_ACCEPT || low === NF_DROP || low === NF_QUEUE || low === NF_STOLEN) return verdict;
    if (verdict === NFT_JUMP) {
      if (sp >= NFT_JUMP_STACK_SIZE) return NF_DROP;
      stack[2 * sp] = ctx.chain;
      stack[2 * sp + 1] = next;
      sp++;
    }
    if (verdict === NFT_JUMP || verdict === NFT_GOTO) {
      ctx.chain = ctx.target;
      pc = prog.chains[ctx.chain * CHAIN_WORDS + CH_FIRST]!;
      continue;
    }
    // NFT_CONTINUE at the end of the chain, or NFT_RETURN.
    trace(TRACE_RETURN, -1, verdict);
    if (sp > 0) {
      sp--;
      ctx.chain = stack[2 * sp]!;
      pc = stack[2 * sp + 1]!;
      continue;
    }
    ctx.chain = baseChain;
    const policy = prog.chains[baseChain * CHAIN_WORDS + CH_POLICY]!;
    trace(TRACE_POLICY, -1, policy);
    return policy;
  }
}
