/**
 * Superinstructions: two kernel expressions in one record and one dispatch,
 * chosen by the builder's peephole pass (fuseRule, called from finish()).
 * They write the register exactly as the pair does, so the rest of the rule
 * and the final register state are unchanged, and they print back as the
 * kernel's two lines.
 *
 * Op.PAYLOAD_CMP = PAYLOAD_FAST (vm/expr/payload.ts) + CMP_EQ32 of the same
 * register and length: [packed word, data]
 *   packed word: the PAYLOAD_FAST bits (0-7 op, 8-15 offset, 16-20 slot,
 *                21-22 len - 1, 23 transport base, 25 kernel fast ops) + bit 24 neq
 *   data:        the compared bytes as a host-order word, zero above len
 * A load of len < 4 zero-extends into its word, so the register word equals
 * the data word exactly when the bytes do.
 *
 * Op.META_CMP = META_GET of a key stored as a plain u32 copy of a metadata
 * field (len, priority, mark, iif, oif, secmark, cpu: no BREAK, no
 * conversion) + CMP_EQ32 of 1..4 bytes of the same register: [packed word, data]
 *   packed word: bits 0-7 op, 8-13 NFT_META_* key, 14-18 slot, 19-20 len - 1,
 *                21 neq, 22-27 M_* index of the metadata field
 *   data:        as for PAYLOAD_CMP
 *
 * Op.L4PROTO_CMP = META_GET l4proto (BREAK without a layer-4 protocol) +
 * CMP_EQ32 eq/neq of its 1 byte in the same register, the first two
 * expressions of nearly every iptables rule with `-p`: [packed word]
 *   packed word: bits 0-7 op, 8-12 slot, 13 neq, 16-23 the protocol
 *
 * Op.RANDOM_CMP = four expressions, the lowering of a random draw against a
 * threshold (xt_statistic --mode random): META_GET random + BITWISE32 of
 * the same register with mask 0x7fffffff and no xor + BYTEORDER hton of its
 * 4 bytes + CMP of the 4 bytes against data: [packed word, data]
 *   packed word: bits 0-7 op, 8-12 slot, 13-15 NFT_CMP_* op
 *   data:        the compared bytes as a host-order word
 * The register ends as the four leave it: the masked draw in network order.
 * The compiler emits it directly (emitRandomCmp): 2 words where the four
 * take 19 and a pool word.
 */
import { OP_INFO, Op, Rec } from '../opcodes.js';
import {
  CMP_OP_NAMES, NFT_CMP_GTE, regSlot, F_L4PROTO, M_FLAGS, M_L4PROTO, NFT_META_L4PROTO,
  M_CPU, M_IIF, M_LEN, M_MARK, M_OIF, M_PRIORITY, M_SECMARK, NFT_BREAK, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_CPU, NFT_META_IIF,
  NFT_META_LEN, NFT_META_MARK, NFT_META_OIF, NFT_META_PRIORITY, NFT_META_SECMARK, META_KEY_NAMES, checkRegStore,
} from '../layout.js';
import { prandomU32, type Program } from '../program.js';
import type { Emitter } from '../emit.js';
import { byteMask, bytesToWord, fmtReg, fmtWord, type EvalCtx } from './common.js';
import { ceLen, ceOp, ceSlot, cmpHolds, cmpWord, fmtCmp32 } from './cmp.js';
import { Meta } from './meta.js';
import { fmtPayload, payloadLoad, pfBase, pfKfastOk, pfLen, pfOffset, pfSlot, PayloadFast } from './payload.js';

/** Op.PAYLOAD_CMP: the PayloadFast fields (vm/expr/payload.ts) plus neq, and the data word. */
export const enum PayloadCmp {
  /** Bit 24: neq. */
  NEQ = 0x1000000,
  /** The word uses bits below this one. */
  BITS = 26,
  DATA = 1,
  SIZE = 2,
}

/** Op.META_CMP: the packed word's fields, and the data word. */
export const enum MetaCmp {
  KEY_SHIFT = 8,
  KEY_MASK = 63,
  SLOT_SHIFT = 14,
  SLOT_MASK = 31,
  /** len - 1 */
  LEN_SHIFT = 19,
  LEN_MASK = 3,
  /** Bit 21: neq. */
  NEQ = 0x200000,
  /** The M_* index of the metadata field the key copies. */
  FIELD_SHIFT = 22,
  FIELD_MASK = 63,
  /** The word uses bits below this one. */
  BITS = 28,
  DATA = 1,
  SIZE = 2,
}

/** Op.L4PROTO_CMP: the packed word's fields. */
export const enum L4protoCmp {
  SLOT_SHIFT = 8,
  SLOT_MASK = 31,
  /** Bit 13: neq. */
  NEQ = 0x2000,
  /** Bits 14-15: unused, zero. */
  UNUSED = 0xc000,
  PROTO_SHIFT = 16,
  /** The word uses bits below this one. */
  BITS = 24,
  SIZE = 1,
}

/** The metadata field a META_CMP key copies, or -1 when the key cannot be fused. */
function metaCmpField(key: number): number {
  switch (key) {
    case NFT_META_LEN: return M_LEN;
    case NFT_META_PRIORITY: return M_PRIORITY;
    case NFT_META_MARK: return M_MARK;
    case NFT_META_IIF: return M_IIF;
    case NFT_META_OIF: return M_OIF;
    case NFT_META_SECMARK: return M_SECMARK;
    case NFT_META_CPU: return M_CPU;
    default: return -1;
  }
}

function mcKey(w: number): number {
  return (w >>> MetaCmp.KEY_SHIFT) & MetaCmp.KEY_MASK;
}
function mcSlot(w: number): number {
  return (w >>> MetaCmp.SLOT_SHIFT) & MetaCmp.SLOT_MASK;
}
function mcLen(w: number): number {
  return ((w >>> MetaCmp.LEN_SHIFT) & MetaCmp.LEN_MASK) + 1;
}
function mcField(w: number): number {
  return (w >>> MetaCmp.FIELD_SHIFT) & MetaCmp.FIELD_MASK;
}

/**
 * The peephole pass over one rule's words, `words[from, to)`, in place (a
 * fused record is never longer than the records it replaces, so each word
 * is written at or before the one being read); returns the rule's new end.
 * It fuses a load immediately followed by an eq/neq compare of the same
 * register and length. The chain references `fix[k * stride]` (k in
 * [f0, f1): word positions relative to `from`) are moved with their records.
 * Records of opcodes it does not know are copied unchanged.
 */
export function fuseRule(words: Int32Array, from: number, to: number, fix: Int32Array, f0: number, f1: number, stride: number): number {
  let out = from;
  let i = from;
  while (i < to) {
    const w = words[i]!;
    const op = w & Rec.OP_MASK;
    const size = OP_INFO[op]?.size ?? 1;
    const nw = i + size < to ? words[i + size]! : 0;
    if (i + size < to && (nw & Rec.OP_MASK) === Op.CMP_EQ32 && i + size + 1 < to) {
      const slot = ceSlot(nw);
      const len = ceLen(nw);
      const data = words[i + size + 1]!;
      if (op === Op.PAYLOAD_FAST && pfSlot(w) === slot && pfLen(w) === len) {
        words[out++] = (w & ~Rec.OP_MASK) | Op.PAYLOAD_CMP | (ceOp(nw) === NFT_CMP_NEQ ? PayloadCmp.NEQ : 0);
        words[out++] = data;
        i += size + 2;
        continue;
      }
      if (op === Op.META_GET && w === Op.META_GET && words[i + Meta.REG] === slot && words[i + Meta.KEY] === NFT_META_L4PROTO && len === 1) {
        words[out++] = Op.L4PROTO_CMP | (slot << L4protoCmp.SLOT_SHIFT) | (ceOp(nw) === NFT_CMP_NEQ ? L4protoCmp.NEQ : 0) | ((data & 0xff) << L4protoCmp.PROTO_SHIFT);
        i += size + 2;
        continue;
      }
      if (op === Op.META_GET && w === Op.META_GET && words[i + Meta.REG] === slot) {
        const key = words[i + Meta.KEY]!;
        const field = metaCmpField(key);
        if (field >= 0) {
          words[out++] = Op.META_CMP | (key << MetaCmp.KEY_SHIFT) | (slot << MetaCmp.SLOT_SHIFT) | ((len - 1) << MetaCmp.LEN_SHIFT)
            | (ceOp(nw) === NFT_CMP_NEQ ? MetaCmp.NEQ : 0) | (field << MetaCmp.FIELD_SHIFT);
          words[out++] = data;
          i += size + 2;
          continue;
        }
      }
    }
    for (let k = 0; k < size && i + k < to; k++) {
      // a reference is moved once: its new position is before every word still to be read
      for (let j = f0; j < f1; j++) if (fix[j * stride] === i + k - from) fix[j * stride] = out - from;
      words[out++] = words[i + k]!;
    }
    i += size;
  }
  return out;
}

export function validateFused(_prog: Program, code: Int32Array, pc: number): string | null {
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) === Op.L4PROTO_CMP) {
    if (w >>> L4protoCmp.BITS !== 0 || (w & L4protoCmp.UNUSED) !== 0) return 'meta: unknown bits in a fused l4proto compare';
    const r = checkRegStore((w >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK, 4);
    return r ? `meta: ${r}` : null;
  }
  const data = code[pc + 1]!;
  if ((w & Rec.OP_MASK) === Op.PAYLOAD_CMP) {
    if (w >>> PayloadCmp.BITS !== 0) return 'payload: unknown bits in a fused load and compare';
    if (!pfKfastOk(w)) return 'payload: fast-ops bit disagrees with the offset and length';
    const r = checkRegStore(pfSlot(w), pfLen(w));
    if (r) return `payload: ${r}`;
    if ((data & ~byteMask(pfLen(w))) !== 0) return 'cmp: fast form data wider than the length';
    return null;
  }
  if (w >>> MetaCmp.BITS !== 0) return 'meta: unknown bits in a fused load and compare';
  const field = metaCmpField(mcKey(w));
  if (field < 0) return `meta: key ${mcKey(w)} cannot be fused with a compare`;
  if (field !== mcField(w)) return `meta: field ${mcField(w)} is not the field of key ${mcKey(w)}`;
  const r = checkRegStore(mcSlot(w), 4);
  if (r) return `meta: ${r}`;
  if ((data & ~byteMask(mcLen(w))) !== 0) return 'cmp: fast form data wider than the length';
  return null;
}

/** Two lines, the kernel's: disasmRuleAt wraps the result in `[ <expr> ...]`, the inner `]\n  [ cmp` splits it. */
export function disasmFused(_prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) === Op.L4PROTO_CMP) {
    const slot = (w >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK;
    const cmp = fmtCmp32((w & L4protoCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, slot, 1, w >>> L4protoCmp.PROTO_SHIFT);
    return `load l4proto => reg ${fmtReg(slot)} ]\n  [ cmp ${cmp}`;
  }
  const data = code[pc + 1]!;
  if ((w & Rec.OP_MASK) === Op.PAYLOAD_CMP) {
    const cmp = fmtCmp32((w & PayloadCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, pfSlot(w), pfLen(w), data);
    return `${fmtPayload(pfSlot(w), pfBase(w), pfOffset(w), pfLen(w))}]\n  [ cmp ${cmp}`;
  }
  const name = META_KEY_NAMES[mcKey(w)] ?? 'unknown';
  const cmp = fmtCmp32((w & MetaCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, mcSlot(w), mcLen(w), data);
  return `load ${name} => reg ${fmtReg(mcSlot(w))} ]\n  [ cmp ${cmp}`;
}

/** The pair, evaluated as the kernel evaluates the two expressions. */
export function evalFused(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const w = code[pc]!;
  if ((w & Rec.OP_MASK) === Op.L4PROTO_CMP) {
    const meta = ctx.pkt.meta;
    if ((meta[M_FLAGS]! & F_L4PROTO) === 0) {
      ctx.code = NFT_BREAK;
      return;
    }
    const slot = (w >>> L4protoCmp.SLOT_SHIFT) & L4protoCmp.SLOT_MASK;
    ctx.regs.r32[slot] = meta[M_L4PROTO]! & 0xff;
    cmpWord(ctx, (w & L4protoCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, slot, 1, w >>> L4protoCmp.PROTO_SHIFT);
    return;
  }
  const data = code[pc + 1]!;
  if ((w & Rec.OP_MASK) === Op.PAYLOAD_CMP) {
    payloadLoad(ctx, pfSlot(w), pfBase(w), pfOffset(w), pfLen(w), (w & PayloadFast.KFAST) !== 0);
    if (ctx.code === NFT_BREAK) return;
    cmpWord(ctx, (w & PayloadCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, pfSlot(w), pfLen(w), data);
    return;
  }
  ctx.regs.r32[mcSlot(w)] = ctx.pkt.meta[mcField(w)]!;
  cmpWord(ctx, (w & MetaCmp.NEQ) !== 0 ? NFT_CMP_NEQ : NFT_CMP_EQ, mcSlot(w), mcLen(w), data);
}

/** Op.RANDOM_CMP: the packed word's fields, and the data word. */
export const enum RandomCmp {
  SLOT_SHIFT = 8,
  SLOT_MASK = 31,
  CMPOP_SHIFT = 13,
  CMPOP_MASK = 7,
  /** The word uses bits below this one. */
  BITS = 16,
  /** The bitwise mask of the four (xt_statistic's: the draw's low 31 bits). */
  MASK = 0x7fffffff,
  DATA = 1,
  SIZE = 2,
}

/**
 * `meta load random => reg`, `bitwise reg = (reg & 0x7fffffff) ^ 0`,
 * `byteorder reg = hton(reg, 4, 4)`, `cmp <op> reg data` as one record;
 * `data` is 4 bytes in register (memory) order.
 */
export function emitRandomCmp(b: Emitter, reg: number, op: number, data: ArrayLike<number>): void {
  const slot = regSlot(reg);
  b.emit([Op.RANDOM_CMP | (slot << RandomCmp.SLOT_SHIFT) | (op << RandomCmp.CMPOP_SHIFT), bytesToWord(data, 4)]);
}

/** A host-order word with its bytes reversed (byteorder of 4 bytes; also the big-endian value of a host-order word's bytes). */
export function bswap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

export function validateRandomCmp(_prog: Program, code: Int32Array, pc: number): string | null {
  const w = code[pc]!;
  if (w >>> RandomCmp.BITS !== 0) return 'meta: unknown bits in a fused random compare';
  if (((w >>> RandomCmp.CMPOP_SHIFT) & RandomCmp.CMPOP_MASK) > NFT_CMP_GTE) return 'cmp: unknown op (-EINVAL)';
  const r = checkRegStore((w >>> RandomCmp.SLOT_SHIFT) & RandomCmp.SLOT_MASK, 4);
  return r ? `meta: ${r}` : null;
}

/** The kernel's four lines. */
export function disasmRandomCmp(_prog: Program, code: Int32Array, pc: number): string {
  const w = code[pc]!;
  const reg = fmtReg((w >>> RandomCmp.SLOT_SHIFT) & RandomCmp.SLOT_MASK);
  const op = CMP_OP_NAMES[(w >>> RandomCmp.CMPOP_SHIFT) & RandomCmp.CMPOP_MASK];
  return `load random => reg ${reg} ]\n  [ bitwise reg ${reg} = ( reg ${reg} & ${fmtWord(RandomCmp.MASK, 4)}) ^ 0x00000000 ]\n`
    + `  [ byteorder reg ${reg} = hton(reg ${reg}, 4, 4) ]\n  [ cmp ${op} reg ${reg} ${fmtWord(code[pc + RandomCmp.DATA]!, 4)}`;
}

/** The four, evaluated as the kernel evaluates them. */
export function evalRandomCmp(ctx: EvalCtx, pc: number): void {
  const code = ctx.prog.code;
  const w = code[pc]!;
  const slot = (w >>> RandomCmp.SLOT_SHIFT) & RandomCmp.SLOT_MASK;
  const draw = ctx.env.drawAt === null ? prandomU32(ctx.env) : ctx.env.drawAt(ctx.rule);
  ctx.regs.r32[slot] = bswap32(draw & RandomCmp.MASK);
  cmpWord(ctx, (w >>> RandomCmp.CMPOP_SHIFT) & RandomCmp.CMPOP_MASK, slot, 4, code[pc + RandomCmp.DATA]!);
}

/**
 * The compare of the four on a masked draw `v` (a host-order word): the
 * register's bytes are v in network order, so memcmp against the data is
 * the unsigned order of v and the data's big-endian value.
 */
export function randomCmpHolds(op: number, v: number, data: number): boolean {
  const a = v >>> 0;
  const b = bswap32(data) >>> 0;
  return cmpHolds(op, a < b ? -1 : a > b ? 1 : 0);
}
