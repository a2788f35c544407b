/**
 * What every vm/expr/<kind>.ts file shares: the slow-path evaluation context
 * (the kernel's `struct nft_regs *regs, const struct nft_pktinfo *pkt`) and
 * the libnftnl 1.2.x value printers.
 */
import { slotReg } from '../layout.js';
import type { Packet } from '../packet.js';
import type { NftRegs, Program, VmEnv } from '../program.js';

/** State of one slow-path evaluation (vm/interp-slow.ts): the eval<Kind> functions mutate it. */
export interface EvalCtx {
  readonly prog: Program;
  readonly pkt: Packet;
  readonly regs: NftRegs;
  readonly env: VmEnv;
  /** regs->verdict.code */
  code: number;
  /** regs->verdict.chain (a chain index) */
  target: number;
  /** Current chain index and rule index (for trace and log events). */
  chain: number;
  rule: number;
  /** Words of the rule's following records to step over (an xt_match ctguard), 0 normally. */
  skip: number;
}

/** `%02x` of each byte value. */
const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * `%08x` of a u32 from its four bytes, high first: a table per byte, which a
 * listing of a big table calls hundreds of thousands of times (several times
 * faster than toString(16) and padStart on a value above 2^31).
 */
function hex8(b3: number, b2: number, b1: number, b0: number): string {
  return HEX2[b3]! + HEX2[b2]! + HEX2[b1]! + HEX2[b0]!;
}

/** `0x%08x ` per u32 word of `len` bytes at byte offset `at`, words read in host (little-endian) order. */
export function fmtData(bytes: Uint8Array, at: number, len: number): string {
  let s = '';
  for (let w = 0; w < len; w += 4) {
    const p = at + w;
    const n = len - w;
    s += '0x' + hex8(n > 3 ? bytes[p + 3]! : 0, n > 2 ? bytes[p + 2]! : 0, n > 1 ? bytes[p + 1]! : 0, bytes[p]!) + ' ';
  }
  return s;
}

/** One host-order word printed as data of `len` ≤ 4 bytes. */
export function fmtWord(word: number, len: number): string {
  const v = word & byteMask(len);
  return '0x' + hex8((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255) + ' ';
}

/** The register number libnftnl prints for a slot (nft_dump_register). */
export function fmtReg(slot: number): string {
  return String(slotReg(slot));
}

/** Mask selecting the first `len` (1..4) bytes of a host-order word (nft_cmp_fast_mask on little-endian). */
export function byteMask(len: number): number {
  return len >= 4 ? -1 : (1 << (len * 8)) - 1;
}

/** Reads `len` ≤ 4 bytes as a host-order word with zero padding. */
export function bytesToWord(bytes: ArrayLike<number>, len: number): number {
  let v = 0;
  for (let i = 0; i < len && i < 4; i++) v |= (bytes[i]! & 0xff) << (8 * i);
  return v;
}

/** True when 0 ≤ off and off + words ≤ pool.length. */
export function poolOk(prog: Program, off: number, len: number): boolean {
  return off >= 0 && len >= 0 && off + ((len + 3) >>> 2) <= prog.pool.length;
}
