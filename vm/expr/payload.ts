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
 *   bits 0-7 op, 8-15 offset, 16-20 dreg slot, 21-22 len - 1, 23 transport base,
 *   25 the kernel's fast ops (len 1, 2 or 4 at an offset aligned to it)
 * (bit 24 is the neq flag of the PAYLOAD_CMP superinstruction, vm/expr/fused.ts).
 *
 * Semantics (6.18): a partial last word is zeroed first; link base needs a
 * MAC header; transport base needs L4 info and BREAKs on a non-first
 * fragment in nft_payload_eval(), but nft_payload_fast_eval()
 * (nf_tables_core.c) tests only the L4 info and reads a non-first
 * fragment's data at thoff (the fragoff test came to the fast path after
 * 6.18; checked against the running kernel by
 * test/kernel/backend-semantics-kernel.test.ts); inner base needs tunnel info
 * (never set here: BREAK); a read past the end of the packet data BREAKs
 * (skb_copy_bits fails).
 */
import { Op, Rec } from '../opcodes.js';
import {
  F_L4PROTO, F_MAC_HEADER, M_END, M_FLAGS, M_FRAGOFF, M_MACOFF, M_NHOFF, M_THOFF, NFT_BREAK, NFT_PAYLOAD_INNER_HEADER,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, PAYLOAD_BASE_NAMES, checkRegStore, regSlot,
} from '../layout.js';
import type { Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { fmtReg, type EvalCtx } from './common.js';
import type { Packet } from '../packet.js';

/** Op.PAYLOAD record words. */
export const enum Payload {
  DREG = 1,
  BASE = 2,
  OFFSET = 3,
  LEN = 4,
  SIZE = 5,
}

/** The packed word of Op.PAYLOAD_FAST (the load half of Op.PAYLOAD_CMP too): its fields' shifts and masks. */
export const enum PayloadFast {
  OFFSET_SHIFT = 8,
  OFFSET_MASK = 0xff,
  SLOT_SHIFT = 16,
  SLOT_MASK = 31,
  /** len - 1 */
  LEN_SHIFT = 21,
  LEN_MASK = 3,
  /** Bit 23: transport (1) or network (0) header. */
  TH = 0x800000,
  /** Bit 25: the kernel would pick nft_payload_fast_ops (len 1, 2 or 4, offset aligned): a transport load reads non-first fragments. */
  KFAST = 0x2000000,
  /** The offset, length and base bits: two loads with the same key read the same bytes of a packet. */
  LOAD_KEY = 0xe0ff00,
  /** The word uses bits below this one. */
  BITS = 24,
  SIZE = 1,
}

/** Packs the operand bits of a PAYLOAD_FAST / PAYLOAD_CMP word (len 1..4, offset 0..255, slot 0..31, NH/TH base). */
function packPayload(op: number, slot: number, base: number, offset: number, len: number): number {
  return op | (offset << PayloadFast.OFFSET_SHIFT) | (slot << PayloadFast.SLOT_SHIFT) | ((len - 1) << PayloadFast.LEN_SHIFT)
    | (base === NFT_PAYLOAD_TRANSPORT_HEADER ? PayloadFast.TH : 0) | (kernelFast(offset, len) ? PayloadFast.KFAST : 0);
}

/** nft_payload_select_ops(): fast ops for 1, 2 or 4 bytes at an offset aligned to the length (network and transport base). */
function kernelFast(offset: number, len: number): boolean {
  return (len === 1 || len === 2 || len === 4) && offset % len === 0;
}

/** The packed word's KFAST bit agrees with its offset and length (the validator's check). */
export function pfKfastOk(w: number): boolean {
  return ((w & PayloadFast.KFAST) !== 0) === kernelFast(pfOffset(w), pfLen(w));
}
export function pfOffset(w: number): number {
  return (w >>> PayloadFast.OFFSET_SHIFT) & PayloadFast.OFFSET_MASK;
}
export function pfSlot(w: number): number {
  return (w >>> PayloadFast.SLOT_SHIFT) & PayloadFast.SLOT_MASK;
}
export function pfLen(w: number): number {
  return ((w >>> PayloadFast.LEN_SHIFT) & PayloadFast.LEN_MASK) + 1;
}
export function pfBase(w: number): number {
  return (w & PayloadFast.TH) !== 0 ? NFT_PAYLOAD_TRANSPORT_HEADER : NFT_PAYLOAD_NETWORK_HEADER;
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
  if ((w & Rec.OP_MASK) === Op.PAYLOAD_FAST) {
    if ((w & ~PayloadFast.KFAST) >>> PayloadFast.BITS !== 0) return 'payload: unknown bits in a packed load';
    if (!pfKfastOk(w)) return 'payload: fast-ops bit disagrees with the offset and length';
    const r = checkRegStore(pfSlot(w), pfLen(w));
    return r ? `payload: ${r}` : null;
  }
  const dreg = code[pc + Payload.DREG]!;
  const base = code[pc + Payload.BASE]!;
  const off = code[pc + Payload.OFFSET]!;
  const len = code[pc + Payload.LEN]!;
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
  if ((w & Rec.OP_MASK) !== Op.PAYLOAD) return fmtPayload(pfSlot(w), pfBase(w), pfOffset(w), pfLen(w));
  return fmtPayload(code[pc + Payload.DREG]!, code[pc + Payload.BASE]!, code[pc + Payload.OFFSET]!, code[pc + Payload.LEN]!);
}

/** Absolute start of `base` in the frame, or -1 when the kernel would BREAK before reading (`kfast`: the kernel's fast ops). */
function payloadBaseOffset(pkt: Packet, base: number, kfast: boolean): number {
  const m = pkt.meta;
  switch (base) {
    case NFT_PAYLOAD_LL_HEADER:
      return m[M_FLAGS]! & F_MAC_HEADER ? m[M_MACOFF]! : -1;
    case NFT_PAYLOAD_NETWORK_HEADER:
      return m[M_NHOFF]!;
    case NFT_PAYLOAD_TRANSPORT_HEADER:
      return m[M_FLAGS]! & F_L4PROTO && (kfast || m[M_FRAGOFF] === 0) ? m[M_THOFF]! : -1;
    default:
      return -1;
  }
}

/** nft_payload_eval(), the slow path. */
export function evalPayload(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) !== Op.PAYLOAD) payloadLoad(ctx, pfSlot(w), pfBase(w), pfOffset(w), pfLen(w), (w & PayloadFast.KFAST) !== 0);
  else payloadLoad(ctx, code[pc + Payload.DREG]!, code[pc + Payload.BASE]!, code[pc + Payload.OFFSET]!, code[pc + Payload.LEN]!);
}

/** nft_payload_eval() (nft_payload_fast_eval() when `kfast`) on decoded operands: `len` bytes at `base` + `offset` into slot `dreg`, or BREAK. */
export function payloadLoad(ctx: EvalCtx, dreg: number, base: number, offset: number, len: number, kfast = false): void {
  const r8 = ctx.regs.r8;
  if (len % 4) ctx.regs.r32[dreg + (len >> 2)] = 0;
  const start = payloadBaseOffset(ctx.pkt, base, kfast);
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
