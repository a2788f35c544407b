/**
 * nat (net/netfilter/nft_nat.c, nft_masq.c, nft_redir.c; xt SNAT/DNAT/
 * MASQUERADE/REDIRECT). The address translation arrives with the conntrack
 * model; for now the expression records a TRACE_NAT event (the record's word
 * offset in `arg`, the kind readable from the record) and ends with NF_ACCEPT.
 *
 * Record: [op, type, flags, pool, alen, minPort, maxPort]
 *   +1 type     NAT_SNAT, NAT_DNAT, NAT_MASQ, NAT_REDIR
 *   +2 flags    NF_NAT_RANGE_* bits as the x_tables target stores them
 *   +3 pool     pool word offset of min address ‖ max address (2 × alen bytes), -1 = none
 *   +4 alen     address length (4, 16, or 0 without addresses)
 *   +5 minPort  port range, host order
 *   +6 maxPort
 */
import { Op } from '../opcodes.js';
import { NF_ACCEPT } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import { poolOk, type EvalCtx, fmtData } from './common.js';

export const NAT_SNAT = 0;
export const NAT_DNAT = 1;
export const NAT_MASQ = 2;
export const NAT_REDIR = 3;
const NAT_NAMES = ['snat', 'dnat', 'masq', 'redir'];
/** Trace ring event of a nat expression. */
const TRACE_NAT = 19;

const NAT_TYPE = 1;
const NAT_FLAGS = 2;
const NAT_POOL = 3;
const NAT_ALEN = 4;
const NAT_MINPORT = 5;
const NAT_MAXPORT = 6;

interface NatOptions {
  flags?: number;
  minAddr?: Uint8Array;
  maxAddr?: Uint8Array;
  minPort?: number;
  maxPort?: number;
}

export function emitNat(b: Emitter, type: number, o: NatOptions = {}): void {
  const alen = o.minAddr ? o.minAddr.length : 0;
  const pool = o.minAddr && o.maxAddr ? b.pool([...o.minAddr, ...o.maxAddr]) : -1;
  b.emit([Op.NAT, type, o.flags ?? 0, pool, pool === -1 ? 0 : alen, o.minPort ?? 0, o.maxPort ?? 0]);
}

export function validateNat(prog: Program, code: Int32Array, pc: number): string | null {
  const t = code[pc + NAT_TYPE]!;
  if (t < NAT_SNAT || t > NAT_REDIR) return `nat: unknown type ${t} (-EINVAL)`;
  const alen = code[pc + NAT_ALEN]!;
  const pool = code[pc + NAT_POOL]!;
  if (pool !== -1 && ((alen !== 4 && alen !== 16) || !poolOk(prog, pool, 2 * alen))) return 'nat: addresses outside the constant pool';
  const lo = code[pc + NAT_MINPORT]!;
  const hi = code[pc + NAT_MAXPORT]!;
  if (lo < 0 || hi < 0 || lo > 0xffff || hi > 0xffff) return 'nat: port out of range';
  return null;
}

export function disasmNat(prog: Program, code: Int32Array, pc: number): string {
  const lo = code[pc + NAT_MINPORT]!;
  const hi = code[pc + NAT_MAXPORT]!;
  const pool = code[pc + NAT_POOL]!;
  const alen = code[pc + NAT_ALEN]!;
  let addr = '';
  if (pool !== -1) {
    const at = pool * 4;
    addr = `${alen === 4 ? 'ip' : 'ip6'} addr ${fmtData(prog.pool8, at, alen)}- ${fmtData(prog.pool8, at + alen, alen)}`;
  }
  return `${NAT_NAMES[code[pc + NAT_TYPE]!]} ${addr}flags 0x${(code[pc + NAT_FLAGS]! >>> 0).toString(16)} ${lo || hi ? `proto ${lo}-${hi} ` : ''}`;
}

export function execNat(pc: number, env: VmEnv, chain: number, rule: number): number {
  traceRecord(env, TRACE_NAT, chain, rule, NF_ACCEPT, pc);
  return NF_ACCEPT;
}

export function evalNat(ctx: EvalCtx, pc: number): void {
  ctx.code = execNat(pc, ctx.env, ctx.chain, ctx.rule);
}
