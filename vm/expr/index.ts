/**
 * The expression kinds by opcode: validator, disassembler and slow-path
 * evaluator for every expression record (structure records RULE/END have none).
 * A meta-test checks that every opcode in OP_INFO has an entry here and a
 * case in the interpreter.
 */
import { Op, OP_MAX } from '../opcodes.js';
import type { Program } from '../program.js';
import type { EvalCtx } from './common.js';
import { disasmBitwise, evalBitwise, validateBitwise } from './bitwise.js';
import { disasmByteorder, evalByteorder, validateByteorder } from './byteorder.js';
import { disasmCmp, evalCmp, validateCmp } from './cmp.js';
import { disasmCounter, evalCounter, validateCounter } from './counter.js';
import { disasmImmediate, evalImmediate, validateImmediate } from './immediate.js';
import { disasmLimit, evalLimit, validateLimit } from './limit.js';
import { disasmFused, disasmRandomCmp, evalFused, evalRandomCmp, validateFused, validateRandomCmp } from './fused.js';
import { disasmLog, evalLog, validateLog } from './log.js';
import { disasmLookup, evalLookup, validateLookup } from './lookup.js';
import { disasmMeta, evalMeta, validateMeta } from './meta.js';
import { disasmNumgen, evalNumgen, validateNumgen } from './numgen.js';
import { disasmPayload, evalPayload, validatePayload } from './payload.js';
import { disasmRange, evalRange, validateRange } from './range.js';
import { disasmCt, evalCt, validateCt } from './ct.js';
import { disasmFib, evalFib, validateFib } from './fib.js';
import { disasmXtL4, evalXtL4, validateXtL4 } from './xtl4.js';
import { disasmXtMatch, evalXtMatch, validateXtMatch } from './xtmatch.js';
import { disasmReject, evalReject, validateReject } from './reject.js';
import { disasmQueue, evalQueue, validateQueue } from './queue.js';
import { disasmNat, evalNat, validateNat } from './nat.js';
import { disasmCompat, evalCompat, validateCompat } from './compat.js';
import { disasmClassify, evalClassify, validateClassify } from './classify.js';
import { disasmXtSet, evalXtSet, validateXtSet } from './xtset.js';

interface ExprKind {
  readonly validate: (prog: Program, code: Int32Array, pc: number) => string | null;
  readonly disasm: (prog: Program, code: Int32Array, pc: number) => string;
  readonly eval: (ctx: EvalCtx, pc: number) => void;
}

const payload: ExprKind = { validate: validatePayload, disasm: disasmPayload, eval: evalPayload };
const cmp: ExprKind = { validate: validateCmp, disasm: disasmCmp, eval: evalCmp };
const bitwise: ExprKind = { validate: validateBitwise, disasm: disasmBitwise, eval: evalBitwise };
const meta: ExprKind = { validate: validateMeta, disasm: disasmMeta, eval: evalMeta };
const immediate: ExprKind = { validate: validateImmediate, disasm: disasmImmediate, eval: evalImmediate };

const table: (ExprKind | undefined)[] = [];
for (let i = 0; i < OP_MAX; i++) table.push(undefined);
table[Op.PAYLOAD] = payload;
table[Op.PAYLOAD_FAST] = payload;
table[Op.PAYLOAD_CMP] = { validate: validateFused, disasm: disasmFused, eval: evalFused };
table[Op.META_CMP] = { validate: validateFused, disasm: disasmFused, eval: evalFused };
table[Op.L4PROTO_CMP] = { validate: validateFused, disasm: disasmFused, eval: evalFused };
table[Op.RANDOM_CMP] = { validate: validateRandomCmp, disasm: disasmRandomCmp, eval: evalRandomCmp };
table[Op.CMP] = cmp;
table[Op.CMP_EQ32] = cmp;
table[Op.BITWISE] = bitwise;
table[Op.BITWISE32] = bitwise;
table[Op.RANGE] = { validate: validateRange, disasm: disasmRange, eval: evalRange };
table[Op.BYTEORDER] = { validate: validateByteorder, disasm: disasmByteorder, eval: evalByteorder };
table[Op.META_GET] = meta;
table[Op.META_SET] = meta;
table[Op.IMMEDIATE] = immediate;
table[Op.IMMEDIATE32] = immediate;
table[Op.VERDICT] = immediate;
table[Op.COUNTER] = { validate: validateCounter, disasm: disasmCounter, eval: evalCounter };
table[Op.LOOKUP] = { validate: validateLookup, disasm: disasmLookup, eval: evalLookup };
table[Op.NUMGEN] = { validate: validateNumgen, disasm: disasmNumgen, eval: evalNumgen };
table[Op.LIMIT] = { validate: validateLimit, disasm: disasmLimit, eval: evalLimit };
table[Op.LOG] = { validate: validateLog, disasm: disasmLog, eval: evalLog };
const ct: ExprKind = { validate: validateCt, disasm: disasmCt, eval: evalCt };
table[Op.CT_GET] = ct;
table[Op.CT_SET] = ct;
table[Op.FIB] = { validate: validateFib, disasm: disasmFib, eval: evalFib };
table[Op.XT_L4] = { validate: validateXtL4, disasm: disasmXtL4, eval: evalXtL4 };
table[Op.REJECT] = { validate: validateReject, disasm: disasmReject, eval: evalReject };
table[Op.QUEUE] = { validate: validateQueue, disasm: disasmQueue, eval: evalQueue };
table[Op.NAT] = { validate: validateNat, disasm: disasmNat, eval: evalNat };
table[Op.CLASSIFY] = { validate: validateClassify, disasm: disasmClassify, eval: evalClassify };
table[Op.XT_MATCH] = { validate: validateXtMatch, disasm: disasmXtMatch, eval: evalXtMatch };
const xtset: ExprKind = { validate: validateXtSet, disasm: disasmXtSet, eval: evalXtSet };
table[Op.XT_SET_MATCH] = xtset;
table[Op.XT_SET_TARGET] = xtset;
const compat: ExprKind = { validate: validateCompat, disasm: disasmCompat, eval: evalCompat };
table[Op.MATCH] = compat;
table[Op.TARGET] = compat;

/** EXPR_KINDS[op]: the expression kind of an opcode (undefined for RULE/END and non-opcodes). */
export const EXPR_KINDS: readonly (ExprKind | undefined)[] = Object.freeze(table);

export * from './bitwise.js';
export * from './byteorder.js';
export * from './cmp.js';
export * from './common.js';
export * from './counter.js';
export * from './fused.js';
export * from './immediate.js';
export * from './limit.js';
export * from './log.js';
export * from './lookup.js';
export * from './meta.js';
export * from './numgen.js';
export * from './payload.js';
export * from './range.js';
export * from './ct.js';
export * from './fib.js';
export * from './xtl4.js';
export * from './xtmatch.js';
export * from './reject.js';
export * from './queue.js';
export * from './nat.js';
export * from './classify.js';
export * from './xtset.js';
export * from './compat.js';
