/**
 * The opcode table is the single source of truth: every opcode has a record
 * size and operand kinds, an expression kind (validator, disassembler,
 * slow-path evaluator), a case in the interpreter and a golden case.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Bitwise, Bitwise32, Byteorder, Cmp, CmpEq32, Counter, EXPR_KINDS, Immediate, Limit, Log, Lookup, Meta, MetaCmp, Numgen, OP_INFO,
  L4protoCmp, Nat, OP_MAX, Op, Payload, PayloadCmp, PayloadFast, RandomCmp, Range, Rec, Verdict, XtL4, opSize, ruleOffsets,
} from '../../vm/index.js';
import { GOLDEN } from './helpers/golden.js';

const interpSrc = readFileSync(fileURLToPath(new URL('../../vm/interp.ts', import.meta.url)), 'utf8');

describe('OP_INFO', () => {
  it('is indexed by opcode, with sizes matching the operand lists', () => {
    expect(OP_INFO.length).toBe(OP_MAX);
    expect(OP_INFO[0]).toBeUndefined();
    for (let op = 1; op < OP_MAX; op++) {
      const info = OP_INFO[op]!;
      expect(info.op).toBe(op);
      expect(info.size).toBe(1 + info.operands.length);
      expect(opSize(op)).toBe(info.size);
      expect(Object.isFrozen(info)).toBe(true);
    }
    expect(opSize(0)).toBe(0);
    expect(opSize(OP_MAX)).toBe(0);
    expect(opSize(-1)).toBe(0);
  });

  it('agrees with the named record layouts the interpreter reads (vm/expr const enums)', () => {
    const sizes: [Op, number][] = [
      [Op.RULE, Rec.RULE_WORDS], [Op.PAYLOAD, Payload.SIZE], [Op.PAYLOAD_FAST, PayloadFast.SIZE], [Op.PAYLOAD_CMP, PayloadCmp.SIZE],
      [Op.META_CMP, MetaCmp.SIZE], [Op.CMP, Cmp.SIZE], [Op.CMP_EQ32, CmpEq32.SIZE], [Op.BITWISE, Bitwise.SIZE],
      [Op.BITWISE32, Bitwise32.SIZE], [Op.RANGE, Range.SIZE], [Op.BYTEORDER, Byteorder.SIZE], [Op.META_GET, Meta.SIZE],
      [Op.META_SET, Meta.SIZE], [Op.IMMEDIATE, Immediate.SIZE], [Op.IMMEDIATE32, Immediate.SIZE], [Op.VERDICT, Verdict.SIZE],
      [Op.COUNTER, Counter.SIZE], [Op.LOOKUP, Lookup.SIZE], [Op.NUMGEN, Numgen.SIZE], [Op.LIMIT, Limit.SIZE], [Op.LOG, Log.SIZE],
      [Op.RANDOM_CMP, RandomCmp.SIZE], [Op.L4PROTO_CMP, L4protoCmp.SIZE], [Op.XT_L4, XtL4.SIZE], [Op.NAT, Nat.SIZE],
    ];
    for (const [op, size] of sizes) expect([OP_INFO[op]!.name, size]).toEqual([OP_INFO[op]!.name, OP_INFO[op]!.size]);
    // the interpreter reads record words through these names, not numeric offsets
    expect(interpSrc).not.toMatch(/code\[pc \+ \d/);
    expect(interpSrc).not.toMatch(/(\be|\bw|code\[pc\]!) >>> \d/);
  });

  const golden = Object.values(GOLDEN).map((f) => f());
  const used = new Set<number>();
  for (const p of golden) {
    for (const pc of ruleOffsets(p)) {
      if (pc < 0) continue;
      const next = pc + (p.code[pc]! >>> 8);
      for (let e = pc + Rec.RULE_WORDS; e < next; e += opSize(p.code[e]! & Rec.OP_MASK)) used.add(p.code[e]! & Rec.OP_MASK);
    }
  }

  for (let op = 1; op < OP_MAX; op++) {
    const info = OP_INFO[op]!;
    it(`${info.name}: interpreter case${op > Op.END ? ', expression kind and golden case' : ''}`, () => {
      expect(interpSrc).toContain(`case Op.${info.name.toUpperCase()}:`);
      if (op <= Op.END) return;
      expect(EXPR_KINDS[op], 'EXPR_KINDS entry').toBeDefined();
      expect(info.expr).not.toBe('');
      expect(used.has(op), 'used by a golden case').toBe(true);
    });
  }
});
