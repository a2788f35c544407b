/**
 * xt_l4: the x_tables rules a layer-4 match applies before reading its
 * header (net/netfilter/xt_tcpudp.c tcp_mt/udp_mt, ip_tables.c icmp_match,
 * xt_multiport.c), as one guard expression the compiler puts in front of
 * the match's loads with `backend: 'legacy'`:
 *  - a non-first fragment (fragoff != 0) never matches, whatever the `!`
 *    flags (BREAK); for tcp, fragoff == 1 is the "evil TCP offset=1 frag"
 *    and hotdrops (NF_DROP);
 *  - a header that cannot be read in full at thoff hotdrops (NF_DROP).
 * No kernel nf_tables expression does this; it prints as `xt_l4`.
 *
 * Record, packed: [op | hdrlen << 8 | flags << 16]
 *   hdrlen  bytes the match reads at the transport header (tcp 20, udp 8, icmp 8, ports 4)
 *   flags   XT_L4_F_TCP: apply the offset-1 rule
 */
import { Op } from '../opcodes.js';
import { F_L4PROTO, M_END, M_FLAGS, M_FRAGOFF, M_THOFF, NFT_BREAK, NFT_CONTINUE } from '../layout.js';
import { NF_DROP } from '../../core/netfilter.js';
import { traceRecord, type Program, type VmEnv } from '../program.js';
import type { Emitter } from '../emit.js';
import type { Packet } from '../packet.js';
import type { EvalCtx } from './common.js';

/** Op.XT_L4: the packed word's fields. */
export const enum XtL4 {
  HDRLEN_SHIFT = 8,
  HDRLEN_MASK = 255,
  FLAGS_SHIFT = 16,
  /** The word uses bits below this one. */
  BITS = 17,
  SIZE = 1,
}
const XT_L4_F_TCP = 1;

export function xtL4Hdrlen(w: number): number {
  return (w >>> XtL4.HDRLEN_SHIFT) & XtL4.HDRLEN_MASK;
}

export function emitXtL4(b: Emitter, hdrlen: number, tcp = false): void {
  b.emit([Op.XT_L4 | (hdrlen << XtL4.HDRLEN_SHIFT) | ((tcp ? XT_L4_F_TCP : 0) << XtL4.FLAGS_SHIFT)]);
}

export function validateXtL4(_prog: Program, code: Int32Array, pc: number): string | null {
  const w = code[pc]!;
  if (w >>> XtL4.BITS !== 0) return 'xt_l4: unknown flags';
  const len = xtL4Hdrlen(w);
  if (len < 1 || len > 60) return `xt_l4: header length ${len} out of range 1..60`;
  return null;
}

export function disasmXtL4(_prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  return `hdrlen ${xtL4Hdrlen(w)} ${(w >>> XtL4.FLAGS_SHIFT) & XT_L4_F_TCP ? 'tcp ' : ''}`;
}

/** Trace ring event of a hotdrop (the rule did not match; the packet is dropped). */
export const TRACE_HOTDROP = 20;

/** NFT_CONTINUE, NFT_BREAK (no match) or NF_DROP (hotdrop, recorded as TRACE_HOTDROP). */
export function execXtL4(code: Int32Array, pc: number, pkt: Packet, env: VmEnv, chain: number, rule: number): number {
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_L4PROTO) === 0) return NFT_BREAK;
  const fragoff = m[M_FRAGOFF]!;
  if (fragoff !== 0) {
    if (fragoff !== 1 || ((code[pc]! >>> XtL4.FLAGS_SHIFT) & XT_L4_F_TCP) === 0) return NFT_BREAK;
  } else if (m[M_THOFF]! + xtL4Hdrlen(code[pc]!) <= m[M_END]!) return NFT_CONTINUE;
  traceRecord(env, TRACE_HOTDROP, chain, rule, NF_DROP, pc);
  return NF_DROP;
}

export function evalXtL4(ctx: EvalCtx, pc: number): void {
  const v = execXtL4(ctx.prog.code, pc, ctx.pkt, ctx.env, ctx.chain, ctx.rule);
  if (v !== NFT_CONTINUE) ctx.code = v;
}
