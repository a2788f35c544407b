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
 * Record: [op, info, pool, ports]
 *   +1 info   bits 0-2 type: NAT_SNAT, NAT_DNAT, NAT_MASQ, NAT_REDIR, NAT_NETMAP (vm/ct-env.ts);
 *             bits 3-6 address length / 4 (1, 4, or 0 without addresses);
 *             bit 7 INLINE: one IPv4 address (min = max), held in the pool word itself;
 *             bits 8-15 NF_NAT_RANGE_* flags as the x_tables target stores them;
 *             bits 16-31 base of a shifted port range (NF_NAT_RANGE_PROTO_OFFSET)
 *   +2 pool   pool word offset of min address ‖ max address (2 × alen bytes), -1 = none;
 *             with INLINE the address (its bytes as a host-order word)
 *   +3 ports  port range, host order: min in bits 0-15, max in bits 16-31
 */
import { Op } from '../opcodes.js';
import { M_HOOK } from '../layout.js';
import { NF_ACCEPT } from '../../core/netfilter.js';
import { traceRecord, VmError, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { NAT_NETMAP, NAT_SNAT } from '../ct-env.js';
import { bytesToWord, fmtData, fmtWord, poolOk, type EvalCtx } from './common.js';

export { NAT_DNAT, NAT_MASQ, NAT_NETMAP, NAT_REDIR, NAT_SNAT } from '../ct-env.js';
const NAT_NAMES = ['snat', 'dnat', 'masq', 'redir', 'netmap'];
/** Trace ring event of a nat expression. */
const TRACE_NAT = 19;

/** Op.NAT record words and the fields of its info and ports words. */
export const enum Nat {
  INFO = 1,
  POOL = 2,
  PORTS = 3,
  SIZE = 4,
  TYPE_MASK = 7,
  /** The address length in words. */
  ALEN_SHIFT = 3,
  ALEN_MASK = 15,
  INLINE = 0x80,
  FLAGS_SHIFT = 8,
  FLAGS_MASK = 255,
  BASE_SHIFT = 16,
}

interface NatOptions {
  flags?: number;
  minAddr?: Uint8Array;
  maxAddr?: Uint8Array;
  minPort?: number;
  maxPort?: number;
  basePort?: number;
}

export function emitNat(b: Emitter, type: number, o: NatOptions = {}): void {
  const min = o.minAddr;
  const max = o.maxAddr;
  const alen = min && max ? min.length : 0;
  const flags = o.flags ?? 0;
  for (const v of [o.minPort ?? 0, o.maxPort ?? 0, o.basePort ?? 0]) if (!(v >= 0 && v <= 0xffff)) throw new VmError(`nat: port ${v} out of range`);
  if (!(flags >= 0 && flags <= Nat.FLAGS_MASK)) throw new VmError(`nat: flags 0x${flags.toString(16)} out of range`);
  if (alen !== 0 && alen !== 4 && alen !== 16) throw new VmError(`nat: address length ${alen}`);
  // one IPv4 address (every DNAT to a pod): in the record, not the pool
  const inline = alen === 4 && bytesToWord(min!, 4) === bytesToWord(max!, 4);
  const pool = alen === 0 ? -1 : inline ? bytesToWord(min!, 4) : b.pool([...min!, ...max!]);
  const info = type | ((alen >>> 2) << Nat.ALEN_SHIFT) | (inline ? Nat.INLINE : 0) | (flags << Nat.FLAGS_SHIFT) | ((o.basePort ?? 0) << Nat.BASE_SHIFT);
  b.emit([Op.NAT, info, pool, (o.minPort ?? 0) | ((o.maxPort ?? 0) << 16)]);
}

/** The address length of a record's info word, in bytes. */
function natAlen(info: number): number {
  return ((info >>> Nat.ALEN_SHIFT) & Nat.ALEN_MASK) << 2;
}

export function validateNat(prog: Program, code: Int32Array, pc: number): string | null {
  const info = code[pc + Nat.INFO]!;
  const t = info & Nat.TYPE_MASK;
  if (t < NAT_SNAT || t > NAT_NETMAP) return `nat: unknown type ${t} (-EINVAL)`;
  const alen = natAlen(info);
  const pool = code[pc + Nat.POOL]!;
  if ((info & Nat.INLINE) !== 0) return alen === 4 ? null : 'nat: an inline address is one IPv4 address';
  if (alen === 0 ? pool !== -1 : (alen !== 4 && alen !== 16) || !poolOk(prog, pool, 2 * alen)) return 'nat: addresses outside the constant pool';
  return null;
}

export function disasmNat(prog: Program, code: Int32Array, pc: number): string {
  const info = code[pc + Nat.INFO]!;
  const ports = code[pc + Nat.PORTS]!;
  const lo = ports & 0xffff;
  const hi = ports >>> 16;
  const pool = code[pc + Nat.POOL]!;
  const alen = natAlen(info);
  let addr = '';
  if ((info & Nat.INLINE) !== 0) addr = `ip addr ${fmtWord(pool, 4)}- ${fmtWord(pool, 4)}`;
  else if (alen !== 0) {
    const at = pool * 4;
    addr = `${alen === 4 ? 'ip' : 'ip6'} addr ${fmtData(prog.pool8, at, alen)}- ${fmtData(prog.pool8, at + alen, alen)}`;
  }
  const base = info >>> Nat.BASE_SHIFT;
  const flags = (info >>> Nat.FLAGS_SHIFT) & Nat.FLAGS_MASK;
  return `${NAT_NAMES[info & Nat.TYPE_MASK]} ${addr}flags 0x${flags.toString(16)} ${lo || hi ? `proto ${lo}-${hi} ` : ''}${base ? `base ${base} ` : ''}`;
}

/** An inline address as bytes for natTarget (copied by it: nf_nat_range is filled from them). */
const INLINE_ADDR = new Int32Array(1);
const INLINE_ADDR8 = new Uint8Array(INLINE_ADDR.buffer);

/** The target: the binding through the node's NAT core (NF_ACCEPT without one). */
export function execNat(prog: Program, pc: number, pkt: Packet, env: VmEnv, chain: number, rule: number): number {
  const code = prog.code;
  let v = NF_ACCEPT;
  const ct = env.ct;
  if (ct !== null) {
    const info = code[pc + Nat.INFO]!;
    const pool = code[pc + Nat.POOL]!;
    const ports = code[pc + Nat.PORTS]!;
    const alen = natAlen(info);
    let bytes = prog.pool8;
    let min = pool << 2;
    let max = min + alen;
    if ((info & Nat.INLINE) !== 0) {
      INLINE_ADDR[0] = pool;
      bytes = INLINE_ADDR8;
      min = 0;
      max = 0;
    } else if (pool < 0) {
      min = 0;
      max = 0;
    }
    v = ct.natTarget(pkt, pkt.meta[M_HOOK]!, info & Nat.TYPE_MASK, (info >>> Nat.FLAGS_SHIFT) & Nat.FLAGS_MASK, bytes, min, bytes, max, alen,
      ports & 0xffff, ports >>> 16, info >>> Nat.BASE_SHIFT);
  }
  traceRecord(env, TRACE_NAT, chain, rule, v, pc);
  return v;
}

export function evalNat(ctx: EvalCtx, pc: number): void {
  ctx.code = execNat(ctx.prog, pc, ctx.pkt, ctx.env, ctx.chain, ctx.rule);
}
