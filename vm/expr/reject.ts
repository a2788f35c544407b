/**
 * reject (net/netfilter/nft_reject*.c, xt REJECT): records the reply the
 * kernel would send (a TRACE_REJECT event: the record's word offset in
 * `arg`, the type/code readable from the record) and ends with NF_DROP.
 *
 * Record: [op, type, code]
 *   +1 type  NFT_REJECT_ICMP_UNREACH (0), NFT_REJECT_TCP_RST (1), NFT_REJECT_ICMPX_UNREACH (2)
 *   +2 code  ICMP / ICMPv6 code (the REJECT `--reject-with` value as the x_tables target stores it)
 */
import { Op } from '../opcodes.js';
import { NF_DROP } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { EvalCtx } from './common.js';

export const NFT_REJECT_ICMP_UNREACH = 0;
export const NFT_REJECT_TCP_RST = 1;
export const NFT_REJECT_ICMPX_UNREACH = 2;
/** Trace ring event of a reject (after vm/layout.ts TRACE_NFTRACE). */
const TRACE_REJECT = 18;

const REJECT_TYPE = 1;
const REJECT_CODE = 2;

export function emitReject(b: Emitter, type: number, code: number): void {
  b.emit([Op.REJECT, type, code]);
}

export function validateReject(_prog: Program, code: Int32Array, pc: number): string | null {
  const t = code[pc + REJECT_TYPE]!;
  if (t < NFT_REJECT_ICMP_UNREACH || t > NFT_REJECT_ICMPX_UNREACH) return `reject: unknown type ${t} (-EINVAL)`;
  const c = code[pc + REJECT_CODE]!;
  if (c < 0 || c > 255) return `reject: code ${c} out of range`;
  return null;
}

export function disasmReject(_prog: Program, code: Int32Array, pc: number): string {
  return `type ${code[pc + REJECT_TYPE]} code ${code[pc + REJECT_CODE]} `;
}

export function execReject(pc: number, env: VmEnv, chain: number, rule: number): number {
  env.rejectRule = rule;
  traceRecord(env, TRACE_REJECT, chain, rule, NF_DROP, pc);
  return NF_DROP;
}

export function evalReject(ctx: EvalCtx, pc: number): void {
  ctx.code = execReject(pc, ctx.env, ctx.chain, ctx.rule);
}
