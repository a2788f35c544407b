/**
 * match / target: the x_tables extensions inside nf_tables
 * (net/netfilter/nft_compat.c, kernel 6.18), what iptables-nft loads for
 * every match and target it has no native translation for:
 *  - nft_match_eval(): builds the xt_action_param from the pktinfo
 *    (nft_compat_set_par: thoff = nft_thoff(pkt), fragoff = pkt->fragoff),
 *    calls the match; a hotdrop sets NF_DROP, no match NFT_BREAK;
 *  - nft_target_eval(): calls the target; a hotdrop gives NF_DROP,
 *    XT_CONTINUE NFT_CONTINUE, anything else is the verdict.
 * The program carries the extension functions (Program.xt); the module
 * that lowers a rule builds them from its reference face (ext/compat.ts),
 * so both engines run the same xt_NAME.c function over the packet.
 * Printed as nft does: `[ match name u32 rev 0 ]`, `[ target name TCPMSS rev 0 ]`.
 *
 * Record: [op, xt index]
 */
import { Op } from '../opcodes.js';
import { NFT_BREAK, NFT_CONTINUE } from '../layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import type { EvalCtx } from './common.js';
import { TRACE_HOTDROP } from './xtl4.js';

/**
 * One x_tables extension of a program (struct nft_xt: the xt_match or
 * xt_target with its info). `fn` runs it over the packet: a match returns
 * 1 (matched), 0 (not) or -1 (hotdrop); a target returns NFT_CONTINUE or a
 * netfilter verdict (NF_DROP for a hotdrop).
 */
export interface XtExpr {
  readonly kind: 'match' | 'target';
  readonly name: string;
  readonly rev: number;
  readonly fn: (pkt: Packet, env: VmEnv) => number;
}

const XT_INDEX = 1;
const SIZE = 2;

export function emitXtCompat(b: Emitter, x: XtExpr): void {
  b.emit([x.kind === 'match' ? Op.MATCH : Op.TARGET, b.xt(x)]);
}

export function validateCompat(prog: Program, code: Int32Array, pc: number): string | null {
  const x = prog.xt[code[pc + XT_INDEX]!];
  if (!x) return `compat: extension ${code[pc + XT_INDEX]} does not exist`;
  if ((x.kind === 'match') !== (code[pc] === Op.MATCH)) return `compat: ${x.name} is a ${x.kind}`;
  return typeof x.fn === 'function' ? null : `compat: ${x.name} has no function`;
}

export function disasmCompat(prog: Program, code: Int32Array, pc: number): string {
  const x = prog.xt[code[pc + XT_INDEX]!]!;
  return `name ${x.name} rev ${x.rev} `;
}

/** NFT_CONTINUE, NFT_BREAK or a verdict (a hotdrop: NF_DROP, recorded as TRACE_HOTDROP). */
export function execCompat(prog: Program, pc: number, pkt: Packet, env: VmEnv, chain: number, rule: number): number {
  const code = prog.code;
  const x = prog.xt[code[pc + XT_INDEX]!]!;
  const r = x.fn(pkt, env);
  if (code[pc] === Op.TARGET) return r;
  if (r > 0) return NFT_CONTINUE;
  if (r === 0) return NFT_BREAK;
  traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
  return NF_DROP;
}

export function evalCompat(ctx: EvalCtx, pc: number): void {
  const v = execCompat(ctx.prog, pc, ctx.pkt, ctx.env, ctx.chain, ctx.rule);
  if (v !== NFT_CONTINUE) ctx.code = v;
}

export const COMPAT_SIZE = SIZE;
