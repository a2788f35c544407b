/**
 * The opcode table is the single source of truth: every opcode has a record
 * size and operand kinds, an expression kind (validator, disassembler,
 * slow-path evaluator), a case in the interpreter and a golden case.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXPR_KINDS, OP_INFO, OP_MASK, OP_MAX, Op, RULE_WORDS, opSize, ruleOffsets } from '../../vm/index.js';
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

  const golden = Object.values(GOLDEN).map((f) => f());
  const used = new Set<number>();
  for (const p of golden) {
    for (const pc of ruleOffsets(p)) {
      if (pc < 0) continue;
      const next = pc + (p.code[pc]! >>> 8);
      for (let e = pc + RULE_WORDS; e < next; e += opSize(p.code[e]! & OP_MASK)) used.add(p.code[e]! & OP_MASK);
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
