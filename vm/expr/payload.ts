/**
 * payload load (net/netfilter/nft_payload.c, nf_tables_core.c nft_payload_fast_eval).
 *
 * Record: [op, dreg, base, offset, len]
 *   +1 dreg    destination register slot (priv->dreg)
 *   +2 base    NFT_PAYLOAD_*_HEADER (priv->base)
 *   +3 offset  bytes from the base, 0..255 (priv->offset)
 *   +4 len     bytes, 1..255 and within the registers (priv->len)
 * Op.PAYLOAD_FAST1/2/4 are the kernel's nft_payload_fast_ops: network or
 * transport base, len 1, 2 or 4, offset aligned to len, dreg word-aligned.
 *
 * Semantics (6.18): a partial last word is zeroed first; link base needs a
 * MAC header; transport base needs L4 info and BREAKs on a non-first
 * fragment; inner base needs tunnel info (never set here: BREAK); a read past
 * the end of the packet data BREAKs (skb_copy_bits fails).
 */
import { Op } from '../opcodes.js';
import {
  F_L4PROTO, F_MAC_HEADER, M_END, M_FLAGS, M_FRAGOFF, M_MACOFF, M_NHOFF, M_THOFF, NFT_BREAK, NFT_PAYLOAD_INNER_HEADER,
  NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, PAYLOAD_BASE_NAMES, checkRegStore, regSlot,
} from '../layout.js';
import type { Program } from '../program.js';
import type { ProgramBuilder } from '../builder.js';
import { fmtReg, type EvalCtx } from './common.js';
import type { Packet } from '../packet.js';

export const PAYLOAD_DREG = 1;
export const PAYLOAD_BASE = 2;
export const PAYLOAD_OFFSET = 3;
export const PAYLOAD_LEN = 4;

/** Emits `payload load len b @ base header + offset => reg dreg` (dreg: UAPI number), picking the fast form when the kernel would. */
export function emitPayload(b: ProgramBuilder, dreg: number, base: number, offset: number, len: number): void {
  const slot = regSlot(dreg);
  let op = Op.PAYLOAD;
  if ((base === NFT_PAYLOAD_NETWORK_HEADER || base === NFT_PAYLOAD_TRANSPORT_HEADER) && offset % len === 0 && slot >= 0) {
    if (len === 1) op = Op.PAYLOAD_FAST1;
    else if (len === 2) op = Op.PAYLOAD_FAST2;
    else if (len === 4) op = Op.PAYLOAD_FAST4;
  }
  b.emit([op, slot, base, offset, len]);
}

export function validatePayload(_prog: Program, code: Int32Array, pc: number): string | null {
  const op = code[pc]!;
  const dreg = code[pc + PAYLOAD_DREG]!;
  const base = code[pc + PAYLOAD_BASE]!;
  const off = code[pc + PAYLOAD_OFFSET]!;
  const len = code[pc + PAYLOAD_LEN]!;
  if (base < NFT_PAYLOAD_LL_HEADER || base > NFT_PAYLOAD_INNER_HEADER) return `payload: unknown base ${base} (-EOPNOTSUPP)`;
  if (off < 0 || off > 255) return `payload: offset ${off} out of range 0..255`;
  if (len < 1 || len > 255) return `payload: length ${len} out of range 1..255`;
  const r = checkRegStore(dreg, len);
  if (r) return `payload: ${r}`;
  if (op !== Op.PAYLOAD) {
    const want = op === Op.PAYLOAD_FAST1 ? 1 : op === Op.PAYLOAD_FAST2 ? 2 : 4;
    if (len !== want || off % len !== 0) return `payload: fast load of ${len} bytes at offset ${off}`;
    if (base !== NFT_PAYLOAD_NETWORK_HEADER && base !== NFT_PAYLOAD_TRANSPORT_HEADER) return `payload: fast load from base ${base}`;
  }
  return null;
}

export function disasmPayload(_prog: Program, code: Int32Array, pc: number): string {
  const base = PAYLOAD_BASE_NAMES[code[pc + PAYLOAD_BASE]!] ?? 'unknown';
  return `load ${code[pc + PAYLOAD_LEN]}b @ ${base} header + ${code[pc + PAYLOAD_OFFSET]} => reg ${fmtReg(code[pc + PAYLOAD_DREG]!)} `;
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
  const dreg = code[pc + PAYLOAD_DREG]!;
  const len = code[pc + PAYLOAD_LEN]!;
  const r8 = ctx.regs.r8;
  if (len % 4) ctx.regs.r32[dreg + (len >> 2)] = 0;
  const start = payloadBaseOffset(ctx.pkt, code[pc + PAYLOAD_BASE]!);
  if (start < 0) {
    ctx.code = NFT_BREAK;
    return;
  }
  const at = start + code[pc + PAYLOAD_OFFSET]!;
  if (at + len > ctx.pkt.meta[M_END]!) {
    ctx.code = NFT_BREAK;
    return;
  }
  for (let i = 0; i < len; i++) r8[dreg * 4 + i] = ctx.pkt.data[at + i]!;
}
