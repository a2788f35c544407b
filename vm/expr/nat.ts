/**
 * nat (net/netfilter/nft_nat.c, nft_masq.c, nft_redir.c; the x_tables
 * targets SNAT/DNAT/MASQUERADE/REDIRECT/NETMAP of xt_nat.c, xt_MASQUERADE.c,
 * xt_REDIRECT.c, xt_NETMAP.c). The binding is the node's NAT core's
 * (vm/ct-env.ts NfCtEnv.natTarget, nf_nat_setup_info): the expression hands
 * it the rule's range and returns its verdict, NF_ACCEPT as the x_tables
 * targets do once the binding is made (the rest of the chain is skipped).
 * Without a conntrack environment it accepts with no binding. Either way a
 * TRACE_NAT event is recorded (the record's word offset in `arg`).
 *
 * Record: [op, type, flags, pool, alen, minPort, maxPort, basePort]
 *   +1 type     NAT_SNAT, NAT_DNAT, NAT_MASQ, NAT_REDIR, NAT_NETMAP (vm/ct-env.ts)
 *   +2 flags    NF_NAT_RANGE_* bits as the x_tables target stores them
 *   +3 pool     pool word offset of min address ‖ max address (2 × alen bytes), -1 = none
 *   +4 alen     address length (4, 16, or 0 without addresses)
 *   +5 minPort  port range, host order
 *   +6 maxPort
 *   +7 basePort base of a shifted port range (NF_NAT_RANGE_PROTO_OFFSET)
 */
import { Op } from '../opcodes.js';
import { M_HOOK } from '../layout.js';
import { NF_ACCEPT } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { NAT_NETMAP, NAT_SNAT } from '../ct-env.js';
import { poolOk, type EvalCtx, fmtData } from './common.js';

export { NAT_DNAT, NAT_MASQ, NAT_NETMAP, NAT_REDIR, NAT_SNAT } from '../ct-env.js';
const NAT_NAMES = ['snat', 'dnat', 'masq', 'redir', 'netmap'];
/** Trace ring event of a nat expression. */
const TRACE_NAT = 19;

const NAT_TYPE = 1;
const NAT_FLAGS = 2;
const NAT_POOL = 3;
const NAT_ALEN = 4;
const NAT_MINPORT = 5;
const NAT_MAXPORT = 6;
const NAT_BASEPORT = 7;

interface NatOptions {
  flags?: number;
  minAddr?: Uint8Array;
  maxAddr?: Uint8Array;
  minPort?: number;
  maxPort?: number;
  basePort?: number;
}

export function emitNat(b: Emitter, type: number, o: NatOptions = {}): void {
  const alen = o.minAddr ? o.minAddr.length : 0;
  const pool = o.minAddr && o.maxAddr ? b.pool([...o.minAddr, ...o.maxAddr]) : -1;
  b.emit([Op.NAT, type, o.flags ?? 0, pool, pool === -1 ? 0 : alen, o.minPort ?? 0, o.maxPort ?? 0, o.basePort ?? 0]);
}

export function validateNat(prog: Program, code: Int32Array, pc: number): string | null {
  const t = code[pc + NAT_TYPE]!;
  if (t < NAT_SNAT || t > NAT_NETMAP) return `nat: unknown type ${t} (-EINVAL)`;
  const alen = code[pc + NAT_ALEN]!;
  const pool = code[pc + NAT_POOL]!;
  if (pool !== -1 && ((alen !== 4 && alen !== 16) || !poolOk(prog, pool, 2 * alen))) return 'nat: addresses outside the constant pool';
  const lo = code[pc + NAT_MINPORT]!;
  const hi = code[pc + NAT_MAXPORT]!;
  const base = code[pc + NAT_BASEPORT]!;
  if (lo < 0 || hi < 0 || base < 0 || lo > 0xffff || hi > 0xffff || base > 0xffff) return 'nat: port out of range';
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
  const base = code[pc + NAT_BASEPORT]!;
  return `${NAT_NAMES[code[pc + NAT_TYPE]!]} ${addr}flags 0x${(code[pc + NAT_FLAGS]! >>> 0).toString(16)} ${lo || hi ? `proto ${lo}-${hi} ` : ''}${base ? `base ${base} ` : ''}`;
}

/** The target: the binding through the node's NAT core (NF_ACCEPT without one). */
export function execNat(prog: Program, pc: number, pkt: Packet, env: VmEnv, chain: number, rule: number): number {
  const code = prog.code;
  let v = NF_ACCEPT;
  const ct = env.ct;
  if (ct !== null) {
    const pool = code[pc + NAT_POOL]!;
    const alen = code[pc + NAT_ALEN]!;
    const at = pool < 0 ? 0 : pool << 2;
    v = ct.natTarget(pkt, pkt.meta[M_HOOK]!, code[pc + NAT_TYPE]!, code[pc + NAT_FLAGS]!, prog.pool8, at, prog.pool8, at + alen, alen,
      code[pc + NAT_MINPORT]!, code[pc + NAT_MAXPORT]!, code[pc + NAT_BASEPORT]!);
  }
  traceRecord(env, TRACE_NAT, chain, rule, v, pc);
  return v;
}

export function evalNat(ctx: EvalCtx, pc: number): void {
  ctx.code = execNat(ctx.prog, pc, ctx.pkt, ctx.env, ctx.chain, ctx.rule);
}
