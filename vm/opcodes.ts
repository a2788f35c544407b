/**
 * The opcode table: the single source of truth for the bytecode format
 * (QuickJS `DEF(...)` / bpfilter `_bf_matcher_metas[]` style). The emitters
 * (vm/expr), the validator, the disassembler and the interpreter all read it.
 *
 * A program is one Int32Array of fixed-width records: an opcode word followed
 * by its operands. Every opcode has one record size. Kernel fast-path
 * specialisations (nft_cmp_fast_ops, nft_payload_fast_ops,
 * nft_bitwise_fast_ops) are separate opcodes with the same meaning as the
 * generic one; they print in the kernel's generic form.
 *
 * Keep values literal: esbuild inlines `const enum` members across modules
 * only for literal members imported through ESM.
 */

export const enum Op {
  /** Rule header: [op, next rule word offset, rule index]. The kernel's nft_rule_dp. */
  RULE = 1,
  /** Chain end sentinel: [op]. The kernel's is_last rule. */
  END = 2,
  /** payload load, generic: [op, dreg slot, base, offset, len]. */
  PAYLOAD = 3,
  /** payload load of 1 byte at network/transport base (nft_payload_fast_eval). Same layout. */
  PAYLOAD_FAST1 = 4,
  /** payload load of 2 bytes. Same layout. */
  PAYLOAD_FAST2 = 5,
  /** payload load of 4 bytes. Same layout. */
  PAYLOAD_FAST4 = 6,
  /** cmp, generic: [op, sreg slot, cmp op, len, pool word offset of the data]. */
  CMP = 7,
  /** cmp eq/neq of ≤ 4 bytes (nft_cmp_fast): [op, sreg, cmp op, len, data word, mask word]. */
  CMP_EQ32 = 8,
  /** bitwise, generic: [op, sreg, dreg, bitwise op, len, mask pool off, xor pool off, shift]. */
  BITWISE = 9,
  /** bitwise mask/xor of exactly 4 bytes (nft_bitwise_fast): [op, sreg, dreg, mask, xor]. */
  BITWISE32 = 10,
  /** range: [op, sreg, range op, len, from pool off, to pool off]. */
  RANGE = 11,
  /** byteorder: [op, sreg, dreg, byteorder op, len, size]. */
  BYTEORDER = 12,
  /** meta load: [op, dreg, key]. */
  META_GET = 13,
  /** meta set: [op, sreg, key]. */
  META_SET = 14,
  /** immediate data, generic: [op, dreg, len, pool off]. */
  IMMEDIATE = 15,
  /** immediate data of ≤ 4 bytes: [op, dreg, len, value word]. */
  IMMEDIATE32 = 16,
  /** immediate verdict (reg 0): [op, verdict code, chain index or -1]. */
  VERDICT = 17,
  /** counter: [op, counter index]. */
  COUNTER = 18,
  /** lookup: [op, sreg, set index, flags]. */
  LOOKUP = 19,
  /** numgen: [op, dreg, type, modulus, offset, state index]. */
  NUMGEN = 20,
  /** limit: [op, rate, unit (s), burst, type, flags, state index]. */
  LIMIT = 21,
  /** log: [op, prefix string or -1, group or -1, snaplen, qthreshold, level or -1, flags or -1]. */
  LOG = 22,
}

/** One past the highest opcode. */
export const OP_MAX = 23;

/** What an operand word means; the validator and the disassembler dispatch on it. */
export type OperandKind =
  | 'next' // word offset of the next RULE/END
  | 'rule' // rule index
  | 'sreg' // source register slot
  | 'dreg' // destination register slot
  | 'base' // payload base
  | 'off' // byte offset
  | 'len' // byte length
  | 'cmpop' // NFT_CMP_*
  | 'rangeop' // NFT_RANGE_*
  | 'bitop' // NFT_BITWISE_*
  | 'byteop' // NFT_BYTEORDER_*
  | 'size' // element size
  | 'key' // NFT_META_*
  | 'imm' // a raw 32-bit value
  | 'pool' // word offset into the constant pool (-1 = none)
  | 'verdict' // verdict code
  | 'chain' // chain index (-1 = none)
  | 'counter' // counter index
  | 'set' // set index
  | 'flags' // flag bits
  | 'state' // index into Program.state
  | 'str'; // index into Program.strings (-1 = none)

export interface OpInfo {
  /** The opcode. */
  readonly op: Op;
  /** Our name for the opcode (disassembler debug output, errors). */
  readonly name: string;
  /** The kernel expression it prints as (`[ <expr> ... ]`), or '' for structure records. */
  readonly expr: string;
  /** Record size in words, the opcode word included. */
  readonly size: number;
  /** Operand kinds, one per word after the opcode. */
  readonly operands: readonly OperandKind[];
}

function def(op: Op, name: string, expr: string, operands: OperandKind[]): OpInfo {
  return Object.freeze({ op, name, expr, size: 1 + operands.length, operands: Object.freeze(operands) });
}

const PAYLOAD_OPS: OperandKind[] = ['dreg', 'base', 'off', 'len'];

/** OP_INFO[op]: the table, indexed by opcode. Index 0 is not an opcode. */
export const OP_INFO: readonly (OpInfo | undefined)[] = Object.freeze([
  undefined,
  def(Op.RULE, 'rule', '', ['next', 'rule']),
  def(Op.END, 'end', '', []),
  def(Op.PAYLOAD, 'payload', 'payload', PAYLOAD_OPS),
  def(Op.PAYLOAD_FAST1, 'payload_fast1', 'payload', PAYLOAD_OPS),
  def(Op.PAYLOAD_FAST2, 'payload_fast2', 'payload', PAYLOAD_OPS),
  def(Op.PAYLOAD_FAST4, 'payload_fast4', 'payload', PAYLOAD_OPS),
  def(Op.CMP, 'cmp', 'cmp', ['sreg', 'cmpop', 'len', 'pool']),
  def(Op.CMP_EQ32, 'cmp_eq32', 'cmp', ['sreg', 'cmpop', 'len', 'imm', 'imm']),
  def(Op.BITWISE, 'bitwise', 'bitwise', ['sreg', 'dreg', 'bitop', 'len', 'pool', 'pool', 'imm']),
  def(Op.BITWISE32, 'bitwise32', 'bitwise', ['sreg', 'dreg', 'imm', 'imm']),
  def(Op.RANGE, 'range', 'range', ['sreg', 'rangeop', 'len', 'pool', 'pool']),
  def(Op.BYTEORDER, 'byteorder', 'byteorder', ['sreg', 'dreg', 'byteop', 'len', 'size']),
  def(Op.META_GET, 'meta_get', 'meta', ['dreg', 'key']),
  def(Op.META_SET, 'meta_set', 'meta', ['sreg', 'key']),
  def(Op.IMMEDIATE, 'immediate', 'immediate', ['dreg', 'len', 'pool']),
  def(Op.IMMEDIATE32, 'immediate32', 'immediate', ['dreg', 'len', 'imm']),
  def(Op.VERDICT, 'verdict', 'immediate', ['verdict', 'chain']),
  def(Op.COUNTER, 'counter', 'counter', ['counter']),
  def(Op.LOOKUP, 'lookup', 'lookup', ['sreg', 'set', 'flags']),
  def(Op.NUMGEN, 'numgen', 'numgen', ['dreg', 'imm', 'imm', 'imm', 'state']),
  def(Op.LIMIT, 'limit', 'limit', ['imm', 'imm', 'imm', 'imm', 'flags', 'state']),
  def(Op.LOG, 'log', 'log', ['str', 'imm', 'imm', 'imm', 'imm', 'imm']),
]);

/** Record size of `op`, or 0 when `op` is not an opcode. */
export function opSize(op: number): number {
  const info = op > 0 && op < OP_MAX ? OP_INFO[op] : undefined;
  return info ? info.size : 0;
}
