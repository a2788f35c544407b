/**
 * match (net/netfilter/nft_compat.c, kernel 6.18): an x_tables match run
 * from an nf_tables rule, as iptables-nft loads every extension nf_tables
 * has no native expression for (hashlimit, recent, quota, connlimit, time,
 * ...). nft_match_eval() calls the xt_match's `match` function with the
 * packet; a hotdrop sets NF_DROP, a match goes on (NFT_CONTINUE), a miss
 * ends the rule (NFT_BREAK).
 *
 * The match function and its private state belong to the extension (ext/):
 * the program holds it by index (Program.compat), as the kernel's
 * expression holds its xt_match and matchinfo. Printed as nft --debug
 * prints it: `[ match name hashlimit rev 3 ]`.
 *
 * Record: [op, compat index, flags (0)]
 */
import { Op } from '../opcodes.js';
import { NFT_BREAK, NFT_CONTINUE } from '../layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import type { EvalCtx } from './common.js';
import { TRACE_HOTDROP } from './xtl4.js';

/** What the match function returns: the xt_match result, or a hotdrop. */
export const XT_COMPAT_NOMATCH = 0;
export const XT_COMPAT_MATCH = 1;
export const XT_COMPAT_HOTDROP = 2;

/** One x_tables match of the program: its name and revision (as printed) and the function. */
export interface XtCompat {
  readonly name: string;
  readonly rev: number;
  /** The match over the packet at its hook (M_HOOK set): XT_COMPAT_*. */
  readonly match: (pkt: Packet) => number;
}

/** Op.XT_COMPAT record words. */
export const enum XtCompatRec {
  INDEX = 1,
  FLAGS = 2,
  SIZE = 3,
}

export function emitXtCompatMatch(b: Emitter, m: XtCompat): void {
  b.emit([Op.XT_COMPAT, b.compat(m), 0]);
}

export function validateXtCompat(prog: Program, code: Int32Array, pc: number): string | null {
  const i = code[pc + XtCompatRec.INDEX]!;
  if (i < 0 || i >= prog.compat.length) return `match: compat index ${i} out of range`;
  if (code[pc + XtCompatRec.FLAGS] !== 0) return 'match: unknown flags';
  return null;
}

export function disasmXtCompat(prog: Program, code: Int32Array, pc: number): string {
  const m = prog.compat[code[pc + XtCompatRec.INDEX]!]!;
  return `name ${m.name} rev ${m.rev} `;
}

/** nft_match_eval(): NFT_CONTINUE, NFT_BREAK or NF_DROP (a hotdrop, recorded as TRACE_HOTDROP). */
export function execXtCompat(prog: Program, pc: number, pkt: Packet, env: VmEnv, chain: number, rule: number): number {
  const r = prog.compat[prog.code[pc + XtCompatRec.INDEX]!]!.match(pkt);
  if (r === XT_COMPAT_MATCH) return NFT_CONTINUE;
  if (r === XT_COMPAT_NOMATCH) return NFT_BREAK;
  traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
  return NF_DROP;
}

export function evalXtCompat(ctx: EvalCtx, pc: number): void {
  const v = execXtCompat(ctx.prog, pc, ctx.pkt, ctx.env, ctx.chain, ctx.rule);
  if (v !== NFT_CONTINUE) ctx.code = v;
}
