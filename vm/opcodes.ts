/**
 * The opcode table: the single source of truth for the bytecode format
 * (QuickJS `DEF(...)` / bpfilter `_bf_matcher_metas[]` style). The emitters
 * (vm/expr), the validator, the disassembler and the interpreter all read it.
 *
 * A program is one Int32Array of fixed-width records: an opcode word followed
 * by its operands. Every opcode has one record size. The opcode is the low
 * Rec.OP_BITS bits of the first word (`code[pc] & Rec.OP_MASK`); the hot records pack
 * their small operands into the 24 bits above it ("packed" below, layouts in
 * their vm/expr files), records with plain operand words leave those bits 0.
 * Kernel fast-path specialisations (nft_cmp_fast_ops, nft_payload_fast_ops,
 * nft_bitwise_fast_ops) are separate opcodes with the same meaning as the
 * generic one; they print in the kernel's generic form. Superinstructions
 * (PAYLOAD_CMP, META_CMP, L4PROTO_CMP) are chosen by the builder's peephole pass in
 * finish(), RANDOM_CMP by the statistic match's lowering: one record, one
 * dispatch, the same register writes as the expressions they replace,
 * printed back as the kernel's lines.
 *
 * Keep values literal: esbuild inlines `const enum` members across modules
 * only for literal members imported through ESM.
 */

export const enum Op {
  /** Rule header: [op | words to the next rule << 8, rule index]. The kernel's nft_rule_dp. */
  RULE = 1,
  /** Chain end sentinel: [op]. The kernel's is_last rule. */
  END = 2,
  /** payload load, generic: [op, dreg slot, base, offset, len]. */
  PAYLOAD = 3,
  /** payload load of 1..4 bytes at network/transport base (nft_payload_fast_eval), packed: [op | operands]. */
  PAYLOAD_FAST = 4,
  /** superinstruction: payload load of 1..4 bytes + cmp eq/neq of the same register and length, packed: [op | operands, data]. */
  PAYLOAD_CMP = 5,
  /** superinstruction: meta load of a plain u32 key + cmp eq/neq of 1..4 bytes of it, packed: [op | operands, data]. */
  META_CMP = 6,
  /** cmp, generic: [op, sreg slot, cmp op, len, pool word offset of the data]. */
  CMP = 7,
  /** cmp eq/neq of ≤ 4 bytes (nft_cmp_fast), packed: [op | sreg, len, neq, data word]. */
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
  /** immediate verdict (reg 0), packed: [op | verdict code << 8 | (chain index + 1) << 12]. */
  VERDICT = 17,
  /** counter, packed: [op | counter index << 8]. */
  COUNTER = 18,
  /** lookup: [op, sreg, set index, flags]. */
  LOOKUP = 19,
  /** numgen: [op, dreg, type, modulus, offset, state index]. */
  NUMGEN = 20,
  /** limit: [op, rate, unit (s), burst, type, flags, state index]. */
  LIMIT = 21,
  /** log: [op, prefix string or -1, group or -1, snaplen, qthreshold, level or -1, flags or -1]. */
  LOG = 22,
  /** ct load (vm/expr/ct.ts): [op, dreg, key, dir]. */
  CT_GET = 23,
  /** ct set: [op, sreg, key, dir]. */
  CT_SET = 24,
  /** fib address type (vm/expr/fib.ts): [op, dreg, flags, local set, broadcast set]. */
  FIB = 25,
  /** x_tables layer-4 guard (vm/expr/xtl4.ts), packed: [op | hdrlen << 8 | flags << 16]. */
  XT_L4 = 26,
  /** reject (vm/expr/reject.ts): [op, type, code]. */
  REJECT = 27,
  /** queue (vm/expr/queue.ts): [op, num, total, flags]. */
  QUEUE = 28,
  /** nat (vm/expr/nat.ts): [op, info (type, address length, flags, base port), pool offset or the one IPv4 address, port range]. */
  NAT = 29,
  /** classify (vm/expr/classify.ts), the optimizer's run prefilter: [op, pool offset of the classifier, id]. */
  CLASSIFY = 30,
  /** xt_match (vm/expr/xtmatch.ts), x_tables-only tests: [op, kind, a, b, c, flags]. */
  XT_MATCH = 31,
  /** xt compat set match (vm/expr/xtset.ts): [op, pool offset of the info words]. */
  XT_SET_MATCH = 32,
  /** xt compat SET target (vm/expr/xtset.ts): [op, pool offset of the info words]. */
  XT_SET_TARGET = 33,
  /** x_tables match inside nf_tables (vm/expr/compat.ts, nft_compat): [op, xt index]. */
  MATCH = 34,
  /** x_tables target inside nf_tables (vm/expr/compat.ts, nft_compat): [op, xt index]. */
  TARGET = 35,
  /** superinstruction: meta load random + bitwise & 0x7fffffff + byteorder hton + cmp of 4 bytes (vm/expr/fused.ts), packed: [op | operands, data]. */
  RANDOM_CMP = 36,
  /** superinstruction: meta load l4proto + cmp eq/neq of its byte (vm/expr/fused.ts), packed: [op | operands]. */
  L4PROTO_CMP = 37,
}

/** The first word of every record, and the rule header's words. */
export const enum Rec {
  /** Bits of a record's first word that hold the opcode; packed operands start here. */
  OP_BITS = 8,
  /** `code[pc] & Rec.OP_MASK` is the opcode of the record at pc. */
  OP_MASK = 0xff,
  /** Rule header: the rule index (the words to the next rule sit above the opcode, from Rec.OP_BITS). */
  RULE_INDEX = 1,
  /** Words in a rule header. */
  RULE_WORDS = 2,
}

/** One past the highest opcode. */
export const OP_MAX = 38;

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
  | 'str' // index into Program.strings (-1 = none)
  | 'xt' // index into Program.xt
  | 'packed'; // operands packed into the opcode word (layout in the vm/expr file)

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
  /** Operands packed above the opcode in the first word; otherwise the first word is the opcode alone. */
  readonly packed: boolean;
}

function def(op: Op, name: string, expr: string, operands: OperandKind[], packed = false): OpInfo {
  return Object.freeze({ op, name, expr, size: 1 + operands.length, operands: Object.freeze(operands), packed });
}

const PAYLOAD_OPS: OperandKind[] = ['dreg', 'base', 'off', 'len'];

/** OP_INFO[op]: the table, indexed by opcode. Index 0 is not an opcode. */
export const OP_INFO: readonly (OpInfo | undefined)[] = Object.freeze([
  undefined,
  def(Op.RULE, 'rule', '', ['rule'], true),
  def(Op.END, 'end', '', []),
  def(Op.PAYLOAD, 'payload', 'payload', PAYLOAD_OPS),
  def(Op.PAYLOAD_FAST, 'payload_fast', 'payload', [], true),
  def(Op.PAYLOAD_CMP, 'payload_cmp', 'payload', ['imm'], true),
  def(Op.META_CMP, 'meta_cmp', 'meta', ['imm'], true),
  def(Op.CMP, 'cmp', 'cmp', ['sreg', 'cmpop', 'len', 'pool']),
  def(Op.CMP_EQ32, 'cmp_eq32', 'cmp', ['imm'], true),
  def(Op.BITWISE, 'bitwise', 'bitwise', ['sreg', 'dreg', 'bitop', 'len', 'pool', 'pool', 'imm']),
  def(Op.BITWISE32, 'bitwise32', 'bitwise', ['sreg', 'dreg', 'imm', 'imm']),
  def(Op.RANGE, 'range', 'range', ['sreg', 'rangeop', 'len', 'pool', 'pool']),
  def(Op.BYTEORDER, 'byteorder', 'byteorder', ['sreg', 'dreg', 'byteop', 'len', 'size']),
  def(Op.META_GET, 'meta_get', 'meta', ['dreg', 'key']),
  def(Op.META_SET, 'meta_set', 'meta', ['sreg', 'key']),
  def(Op.IMMEDIATE, 'immediate', 'immediate', ['dreg', 'len', 'pool']),
  def(Op.IMMEDIATE32, 'immediate32', 'immediate', ['dreg', 'len', 'imm']),
  def(Op.VERDICT, 'verdict', 'immediate', [], true),
  def(Op.COUNTER, 'counter', 'counter', [], true),
  def(Op.LOOKUP, 'lookup', 'lookup', ['sreg', 'set', 'flags']),
  def(Op.NUMGEN, 'numgen', 'numgen', ['dreg', 'imm', 'imm', 'imm', 'state']),
  def(Op.LIMIT, 'limit', 'limit', ['imm', 'imm', 'imm', 'imm', 'flags', 'state']),
  def(Op.LOG, 'log', 'log', ['str', 'imm', 'imm', 'imm', 'imm', 'imm']),
  def(Op.CT_GET, 'ct_get', 'ct', ['dreg', 'key', 'imm']),
  def(Op.CT_SET, 'ct_set', 'ct', ['sreg', 'key', 'imm']),
  def(Op.FIB, 'fib', 'fib', ['dreg', 'flags', 'set', 'set', 'flags']),
  def(Op.XT_L4, 'xt_l4', 'xt_l4', [], true),
  def(Op.REJECT, 'reject', 'reject', ['imm', 'imm']),
  def(Op.QUEUE, 'queue', 'queue', ['imm', 'imm', 'flags']),
  def(Op.NAT, 'nat', 'nat', ['imm', 'imm', 'imm']),
  def(Op.CLASSIFY, 'classify', 'classify', ['pool', 'imm']),
  def(Op.XT_MATCH, 'xt_match', 'xt_match', ['imm', 'imm', 'imm', 'imm', 'flags']),
  def(Op.XT_SET_MATCH, 'xt_set_match', 'match', ['pool']),
  def(Op.XT_SET_TARGET, 'xt_set_target', 'target', ['pool']),
  def(Op.MATCH, 'match', 'match', ['xt']),
  def(Op.TARGET, 'target', 'target', ['xt']),
  def(Op.RANDOM_CMP, 'random_cmp', 'meta', ['imm'], true),
  def(Op.L4PROTO_CMP, 'l4proto_cmp', 'meta', [], true),
]);

/** The opcode of a record's first word. */
export function opOf(word: number): number {
  return word & Rec.OP_MASK;
}

/** Record size of `op`, or 0 when `op` is not an opcode. */
export function opSize(op: number): number {
  const info = op > 0 && op < OP_MAX ? OP_INFO[op] : undefined;
  return info ? info.size : 0;
}
