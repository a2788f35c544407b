/**
 * payload load (net/netfilter/nft_payload.c, nf_tables_core.c nft_payload_fast_eval).
 *
 * Op.PAYLOAD record: [op, dreg, base, offset, len]
 *   +1 dreg    destination register slot (priv->dreg)
 *   +2 base    NFT_PAYLOAD_*_HEADER (priv->base)
 *   +3 offset  bytes from the base, 0..255 (priv->offset)
 *   +4 len     bytes, 1..255 and within the registers (priv->len)
 * Op.PAYLOAD_FAST record, one packed word (the kernel's nft_payload_fast_ops,
 * widened to every load of 1..4 bytes from the network or transport header):
 *   bits 0-7 op, 8-15 offset, 16-20 dreg slot, 21-22 len - 1, 23 transport base
 * (bit 24 is the neq flag of the PAYLOAD_CMP superinstruction, vm/expr/fused.ts).
 *
 * Semantics (6.18): a partial last word is zeroed first; link base needs a
 * MAC header; transport base needs L4 info and BREAKs on a non-first
 * fragment; inner base needs tunnel info (never set here: BREAK); a read past
 * the end of the packet data BREAKs (skb_copy_bits fails).
 */
import { OP_MASK, Op } from '../opcodes.js';
import {
  F_L4PROTO, F_MAC_HEADER, M_END, M_FLAGS, M_FRAGOFF, M_MACOFF, M_NHOFF, M_THOFF, NFT_BREAK, NFT_PAYLOAD_INNER_HEADER,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, PAYLOAD_BASE_NAMES, checkRegStore, regSlot,
} from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';
import type { Packet } from '../packet.js';

export const PAYLOAD_DREG = 1;
export const PAYLOAD_BASE = 2;
export const PAYLOAD_OFFSET = 3;
export const PAYLOAD_LEN = 4;

/** Bit 23 of a packed payload word: transport (1) or network (0) header. */
export const PF_TH = 1 << 23;

/** Packs the operand bits of a PAYLOAD_FAST / PAYLOAD_CMP word (len 1..4, offset 0..255, slot 0..31, NH/TH base). */
export function packPayload(op: number, slot: number, base: number, offset: number, len: number): number {
  return op | (offset << 8) | (slot << 16) | ((len - 1) << 21) | (base === NFT_PAYLOAD_TRANSPORT_HEADER ? PF_TH : 0);
}
export function pfOffset(w: number): number {
  return (w >>> 8) & 0xff;
}
export function pfSlot(w: number): number {
  return (w >>> 16) & 31;
}
export function pfLen(w: number): number {
  return ((w >>> 21) & 3) + 1;
}
export function pfBase(w: number): number {
  return (w & PF_TH) !== 0 ? NFT_PAYLOAD_TRANSPORT_HEADER : NFT_PAYLOAD_NETWORK_HEADER;
}

/** Emits `payload load len b @ base header + offset => reg dreg` (dreg: UAPI number), picking the fast form when the kernel would. */
export function emitPayload(b: Emitter, dreg: number, base: number, offset: number, len: number): void {
  const slot = regSlot(dreg);
  if ((base === NFT_PAYLOAD_NETWORK_HEADER || base === NFT_PAYLOAD_TRANSPORT_HEADER) && len >= 1 && len <= 4 && offset >= 0 && offset <= 255
    && slot >= 0 && Number.isInteger(offset) && Number.isInteger(len)) {
    b.emit([packPayload(Op.PAYLOAD_FAST, slot, base, offset, len)]);
  } else b.emit([Op.PAYLOAD, slot, base, offset, len]);
}

export function validatePayload(_prog: Program, code: Int32Array, pc: number): string | null {
  const w = code[pc]!;
  if ((w & OP_MASK) === Op.PAYLOAD_FAST) {
    if (w >>> 24 !== 0) return 'payload: unknown bits in a packed load';
    const r = checkRegStore(pfSlot(w), pfLen(w));
    return r ? `payload: ${r}` : null;
  }
  const dreg = code[pc + PAYLOAD_DREG]!;
  const base = code[pc + PAYLOAD_BASE]!;
  const off = code[pc + PAYLOAD_OFFSET]!;
  const len = code[pc + PAYLOAD_LEN]!;
  if (base < NFT_PAYLOAD_LL_HEADER || base > NFT_PAYLOAD_INNER_HEADER) return `payload: unknown base ${base} (-EOPNOTSUPP)`;
  if (off < 0 || off > 255) return `payload: offset ${off} out of range 0..255`;
  if (len < 1 || len > 255) return `payload: length ${len} out of range 1..255`;
  const r = checkRegStore(dreg, len);
  if (r) return `payload: ${r}`;
  return null;
}

/** The kernel's text of a payload load (shared with the PAYLOAD_CMP superinstruction). */
export function fmtPayload(dreg: number, base: number, offset: number, len: number): string {
  return `load ${len}b @ ${PAYLOAD_BASE_NAMES[base] ?? 'unknown'} header + ${offset} => reg ${fmtReg(dreg)} `;
}

export function disasmPayload(_prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  if ((w & OP_MASK) !== Op.PAYLOAD) return fmtPayload(pfSlot(w), pfBase(w), pfOffset(w), pfLen(w));
  return fmtPayload(code[pc + PAYLOAD_DREG]!, code[pc + PAYLOAD_BASE]!, code[pc + PAYLOAD_OFFSET]!, code[pc + PAYLOAD_LEN]!);
}

/** Absolute start of `base` in the frame, or -1 when the kernel would BREAK before reading. */
export function payloadBaseOffset(pkt: Packet, base: number): number {
  const m = pkt.meta;
  switch (base) {
    case NFT_PAYLOAD_LL_HEADER:
      return m[M_FLAGS]! & F_MAC_HEADER ? m[M_MACOFF]! : -1;
    case NFT_PAYLOAD_NETWORK_HEADER:
      return m[M_NHOFF]!;
    case NFT_PAYLOAD_TRANSPORT_HEADER:
      return m[M_FLAGS]! & F_L4PROTO && m[M_FRAGOFF] === 0 ? m[M_THOFF]! : -1;
    default:
      return -1;
  }
}

/** nft_payload_eval(), the slow path. */
export function evalPayload(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const w = code[pc]!;
  if ((w & OP_MASK) !== Op.PAYLOAD) payloadLoad(ctx, pfSlot(w), pfBase(w), pfOffset(w), pfLen(w));
  else payloadLoad(ctx, code[pc + PAYLOAD_DREG]!, code[pc + PAYLOAD_BASE]!, code[pc + PAYLOAD_OFFSET]!, code[pc + PAYLOAD_LEN]!);
}

/** nft_payload_eval() on decoded operands: `len` bytes at `base` + `offset` into slot `dreg`, or BREAK. */
export function payloadLoad(ctx: EvalCtx, dreg: number, base: number, offset: number, len: number): void {
  const r8 = ctx.regs.r8;
  if (len % 4) ctx.regs.r32[dreg + (len >> 2)] = 0;
  const start = payloadBaseOffset(ctx.pkt, base);
  if (start < 0) {
    ctx.code = NFT_BREAK;
    return;
  }
  const at = start + offset;
  if (at + len > ctx.pkt.meta[M_END]!) {
    ctx.code = NFT_BREAK;
    return;
  }
  for (let i = 0; i < len; i++) r8[dreg * 4 + i] = ctx.pkt.data[at + i]!;
}
