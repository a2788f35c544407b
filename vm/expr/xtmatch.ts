/**
 * xt_match: the two x_tables tests nf_tables has no expression for, with
 * x_tables semantics (kernel 6.18):
 *  - XT_MATCH_PORTS, multiport `--ports` (xt_multiport.c ports_match_v1):
 *    the source OR the destination port is in the set, XOR invert. nft can
 *    test one field against a set but not "either field" within a rule; the
 *    compiler loads both ports (2 bytes each) into sreg1/sreg2 first.
 *  - XT_MATCH_TCPOPT, tcp `--tcp-option N` (xt_tcpudp.c tcp_find_option):
 *    walks the options after the 20-byte header; a data offset below 5 or
 *    options past the end of the packet hotdrop (NF_DROP). The walk steps
 *    over kind 0/1 by one byte and others by their length byte (0 → 1); a
 *    length byte one past the options is read from the packet, 0 past it.
 *  - XT_MATCH_CTGUARD, xt_conntrack's `if (ct == NULL) return
 *    info->match_flags & XT_CONNTRACK_STATE` and xt_helper's `if (!ct)
 *    return info->invert`: a packet without a conntrack passes the rest of
 *    the match, the `a` words of records after the guard, which test its
 *    conntrack (they would BREAK). With a conntrack it goes on into them.
 *  - XT_MATCH_HOTDROP, ipt_do_table's `while (!acpar.hotdrop)`: an x_tables
 *    match run through a compat record (vm/expr/compat.ts) may return true
 *    and hotdrop (an inverted test over a malformed header): x_tables then
 *    counts the rule and runs its target before dropping. The compat record
 *    sets VmEnv.xtHotdrop and lets the rule go on; this record, after the
 *    counter (before a verdict, after an extension target), ends the
 *    traversal with NF_DROP; the engine turns the verdict of such a run into
 *    NF_DROP (engine/vm-table.ts).
 *  - XT_MATCH_NOPROTO, ip6_packet_match()'s `if (protohdr < 0) *hotdrop =
 *    true`: a legacy ip6tables rule with -p (IP6T_F_PROTO) on a packet
 *    whose ipv6_find_hdr() fails (no F_L4PROTO, or -1 in the x_tables view
 *    past AH) drops it uncounted; emitted after the address and interface
 *    compares, before the protocol compare, as ip6_packet_match() orders them.
 * Printed `[ xt_match ports reg 1 reg 2 set __set0 ]`,
 * `[ xt_match tcpopt 8 ]` (`invert` appended when inverted),
 * `[ xt_match ctguard skip 12 ]`, `[ xt_match hotdrop ]` and `[ xt_match noproto ]`.
 *
 * Record: [op, kind, a, b, c, flags]
 *   ports:   a sreg1 slot, b sreg2 slot, c set index
 *   tcpopt:  a option kind (1..255), b 0, c -1
 *   ctguard: a words to skip (whole records of the same rule), b 0, c -1
 *   hotdrop, noproto: a 0, b 0, c -1
 *   flags:   XT_MATCH_F_INV
 */
import { Op } from '../opcodes.js';
import { F_L4PROTO, M_CT_DIR, M_END, M_FLAGS, M_L4PROTO, M_THOFF, NFT_BREAK, NFT_CONTINUE, checkRegLoad, regSlot } from '../layout.js';
import { Op as OpCode, OP_INFO, Rec } from '../opcodes.js';
import { CLS_JUMP, clsPc } from './classify.js';
import { NF_DROP } from '../../core/netfilter.js';
import { traceRecord, type NftRegs, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import { fmtReg, type EvalCtx } from './common.js';
import { TRACE_HOTDROP } from './xtl4.js';

const XT_MATCH_PORTS = 1;
const XT_MATCH_TCPOPT = 2;
const XT_MATCH_CTGUARD = 3;
const XT_MATCH_HOTDROP = 4;
const XT_MATCH_NOPROTO = 5;
const XT_MATCH_F_INV = 1;

const KIND = 1;
const A = 2;
const B = 3;
const C = 4;
const FLAGS = 5;

export function emitXtMatchPorts(b: Emitter, sreg1: number, sreg2: number, setName: string, invert: boolean): void {
  b.emit([Op.XT_MATCH, XT_MATCH_PORTS, regSlot(sreg1), regSlot(sreg2), b.setIndex(setName), invert ? XT_MATCH_F_INV : 0]);
}

export function emitXtMatchTcpOpt(b: Emitter, option: number, invert: boolean): void {
  b.emit([Op.XT_MATCH, XT_MATCH_TCPOPT, option, 0, -1, invert ? XT_MATCH_F_INV : 0]);
}

/** Emits a guard over the records that follow (its skip is set with setXtMatchCtGuard once they are emitted); returns its position in the rule. */
export function emitXtMatchCtGuard(b: Emitter): number {
  return b.emit([Op.XT_MATCH, XT_MATCH_CTGUARD, 0, 0, -1, 0]);
}

/** Emits the end of a rule whose compat match may have hotdropped after matching (ipt_do_table's loop condition). */
export function emitXtMatchHotdrop(b: Emitter): void {
  b.emit([Op.XT_MATCH, XT_MATCH_HOTDROP, 0, 0, -1, 0]);
}

/** Emits ip6_packet_match()'s hotdrop for a protocol ipv6_find_hdr() cannot find (legacy ip6tables, -p given). */
export function emitXtMatchNoProto(b: Emitter): void {
  b.emit([Op.XT_MATCH, XT_MATCH_NOPROTO, 0, 0, -1, 0]);
}

/** Sets the guard at rule position `at` to skip the records up to rule position `end`. */
export function setXtMatchCtGuard(b: Emitter, at: number, end: number): void {
  b.patch(at + A, end - (at + SIZE));
}

const SIZE = 6;

export function validateXtMatch(prog: Program, code: Int32Array, pc: number): string | null {
  if (code[pc + FLAGS]! & ~XT_MATCH_F_INV) return 'xt_match: unknown flags';
  switch (code[pc + KIND]) {
    case XT_MATCH_PORTS: {
      const set = prog.sets[code[pc + C]!];
      if (!set) return `xt_match: set ${code[pc + C]} does not exist (-ENOENT)`;
      if (set.keyLen !== 2) return 'xt_match: ports need a set of 2-byte keys';
      const r = checkRegLoad(code[pc + A]!, 2) ?? checkRegLoad(code[pc + B]!, 2);
      return r ? `xt_match: ${r}` : null;
    }
    case XT_MATCH_TCPOPT: {
      const o = code[pc + A]!;
      if (o < 1 || o > 255) return `xt_match: tcp option ${o} out of range 1..255`;
      return code[pc + B] === 0 && code[pc + C] === -1 ? null : 'xt_match: stray operands';
    }
    case XT_MATCH_CTGUARD: {
      if (code[pc + B] !== 0 || code[pc + C] !== -1 || code[pc + FLAGS] !== 0) return 'xt_match: stray operands';
      // The skip must land on a record boundary of the same rule (the rule's records are validated in turn).
      const skip = code[pc + A]!;
      let e = pc + SIZE;
      const end = e + skip;
      while (e < end) {
        const op = code[e]! & Rec.OP_MASK;
        if (op === OpCode.RULE || op === OpCode.END || e >= code.length) return 'xt_match: ctguard skips past its rule';
        const size = OP_INFO[op]?.size ?? 0;
        if (size === 0) return 'xt_match: ctguard skips an unknown record';
        e += size;
      }
      return skip < 0 || e !== end ? 'xt_match: ctguard skip does not end on a record boundary' : null;
    }
    case XT_MATCH_HOTDROP:
    case XT_MATCH_NOPROTO:
      return code[pc + A] === 0 && code[pc + B] === 0 && code[pc + C] === -1 && code[pc + FLAGS] === 0 ? null : 'xt_match: stray operands';
    default:
      return `xt_match: unknown kind ${code[pc + KIND]}`;
  }
}

export function disasmXtMatch(prog: Program, code: Int32Array, pc: number): string {
  const inv = code[pc + FLAGS]! & XT_MATCH_F_INV ? 'invert ' : '';
  if (code[pc + KIND] === XT_MATCH_CTGUARD) return `ctguard skip ${code[pc + A]} `;
  if (code[pc + KIND] === XT_MATCH_HOTDROP) return 'hotdrop ';
  if (code[pc + KIND] === XT_MATCH_NOPROTO) return 'noproto ';
  if (code[pc + KIND] === XT_MATCH_PORTS) {
    return `ports reg ${fmtReg(code[pc + A]!)} reg ${fmtReg(code[pc + B]!)} set ${prog.sets[code[pc + C]!]!.name} ${inv}`;
  }
  return `tcpopt ${code[pc + A]} ${inv}`;
}

/** NFT_CONTINUE, NFT_BREAK or NF_DROP (a hotdrop, recorded as TRACE_HOTDROP). */
export function execXtMatch(prog: Program, pc: number, pkt: Packet, regs: NftRegs, env: VmEnv, chain: number, rule: number): number {
  const code = prog.code;
  const inv = (code[pc + FLAGS]! & XT_MATCH_F_INV) !== 0;
  if (code[pc + KIND] === XT_MATCH_CTGUARD) {
    if (pkt.meta[M_CT_DIR] !== -1) return NFT_CONTINUE;
    clsPc[0] = pc + SIZE + code[pc + A]!;
    return CLS_JUMP;
  }
  if (code[pc + KIND] === XT_MATCH_HOTDROP) return env.xtHotdrop ? NF_DROP : NFT_CONTINUE;
  if (code[pc + KIND] === XT_MATCH_NOPROTO) {
    const m = pkt.meta;
    if ((m[M_FLAGS]! & F_L4PROTO) !== 0 && m[M_L4PROTO]! >= 0) return NFT_CONTINUE;
    traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
    return NF_DROP;
  }
  if (code[pc + KIND] === XT_MATCH_PORTS) {
    const set = prog.sets[code[pc + C]!]!;
    const found = set.lookup(regs.r8, regs.r32, code[pc + A]!) || set.lookup(regs.r8, regs.r32, code[pc + B]!);
    return found !== inv ? NFT_CONTINUE : NFT_BREAK;
  }
  const d = pkt.data;
  const m = pkt.meta;
  const th = m[M_THOFF]!;
  const end = m[M_END]!;
  const doff = d[th + 12]! >> 4;
  if (doff < 5) {
    traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
    return NF_DROP;
  }
  const optlen = doff * 4 - 20;
  if (optlen === 0) return inv ? NFT_CONTINUE : NFT_BREAK;
  const op = th + 20;
  if (op + optlen > end) {
    traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
    return NF_DROP;
  }
  const option = code[pc + A]!;
  for (let i = 0; i < optlen; ) {
    const k = d[op + i]!;
    if (k === option) return inv ? NFT_BREAK : NFT_CONTINUE;
    if (k < 2) i++;
    else {
      const len = op + i + 1 < end ? d[op + i + 1]! : 0;
      i += len || 1;
    }
  }
  return inv ? NFT_CONTINUE : NFT_BREAK;
}

export function evalXtMatch(ctx: EvalCtx, pc: number): void {
  const v = execXtMatch(ctx.prog, pc, ctx.pkt, ctx.regs, ctx.env, ctx.chain, ctx.rule);
  if (v === CLS_JUMP) ctx.skip = clsPc[0]! - (pc + SIZE);
  else if (v !== NFT_CONTINUE) ctx.code = v;
}
