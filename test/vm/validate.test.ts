/**
 * The load-time verifier: each class of malformed program is refused with a
 * VmError, and fuzzed programs (random words, and valid programs with random
 * words changed) either are refused with a VmError or run on both engines
 * without an exception, agreeing.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CHAIN_WORDS, CH_FIRST, CH_POLICY, NFT_CMP_EQ, NFT_CMP_LT, NFT_JUMP, NFT_LIMIT_PKTS, NFT_META_MARK,
  NFT_PAYLOAD_NETWORK_HEADER as NH, NFT_PAYLOAD_LL_HEADER as LL, NFT_CMP_NEQ, opSize, ruleOffsets, NFT_REG_1, NftSet,
  Op, ProgramBuilder, VmError, OP_INFO, resetState, emitBitwiseShift, emitByteorder, emitCmp, emitCounter, emitLimit,
  emitLog, emitLookup, emitMetaGet, emitMetaSet, emitNumgen, emitPayload, emitVerdict, validate, NFT_BITWISE_LSHIFT,
  NFT_BYTEORDER_HTON, type Program, Rec,
} from '../../vm/index.js';
import { NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_STOLEN } from '../../core/netfilter.js';
import { buildPkt, buildProg, pktSpec, progSpec } from './helpers/gen.js';
import { runOne } from './helpers/run.js';
import { runs } from '../helpers/runs.js';

/** The word offsets of a program's rule headers and records, named in emission order. */
function offsets(prog: Program, names: string[][]): Record<string, number> {
  const at: Record<string, number> = {};
  const code = prog.code;
  ruleOffsets(prog).forEach((pc, ri) => {
    at[`rule${ri}`] = pc;
    const next = pc + (code[pc]! >>> 8);
    let k = 0;
    for (let e = pc + Rec.RULE_WORDS; e < next; e += opSize(code[e]! & Rec.OP_MASK)) at[names[ri]![k++]!] = e;
    expect(k, `rule ${ri} records`).toBe(names[ri]!.length);
  });
  return at;
}

/** A valid program (no superinstructions); `at` gives the word offsets of its records by name. */
function base(): { prog: Program; at: Record<string, number> } {
  const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
  b.addSet(new NftSet('s', 4));
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
  b.chain('A');
  b.rule('INPUT');
  emitPayload(b, NFT_REG_1, NH, 12, 3);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [1, 2, 3]);
  emitCmp(b, NFT_CMP_LT, NFT_REG_1, [1, 2, 3, 4, 5]);
  emitPayload(b, NFT_REG_1, LL, 0, 6);
  emitCounter(b);
  emitVerdict(b, NFT_JUMP, 'A');
  b.rule('A');
  emitMetaGet(b, NFT_REG_1, NFT_META_MARK);
  emitLookup(b, NFT_REG_1, 's');
  emitNumgen(b, NFT_REG_1, 0, 4);
  emitLimit(b, 1, 1, 0, NFT_LIMIT_PKTS);
  emitLog(b, { prefix: 'x' });
  emitBitwiseShift(b, NFT_BITWISE_LSHIFT, NFT_REG_1, NFT_REG_1, 4, 3);
  emitByteorder(b, NFT_BYTEORDER_HTON, NFT_REG_1, NFT_REG_1, 4, 2);
  emitMetaSet(b, NFT_META_MARK, NFT_REG_1);
  const prog = b.finish({ fuse: false });
  const at = offsets(prog, [
    ['payload', 'cmp32', 'cmp', 'gpayload', 'counter', 'verdict'],
    ['meta', 'lookup', 'numgen', 'limit', 'log', 'shift', 'byteorder', 'metaset'],
  ]);
  expect(prog.code[at.payload!]! & Rec.OP_MASK).toBe(Op.PAYLOAD_FAST);
  expect(prog.code[at.cmp32!]! & Rec.OP_MASK).toBe(Op.CMP_EQ32);
  expect(prog.code[at.gpayload!]).toBe(Op.PAYLOAD);
  return { prog, at };
}

/** The same loads and compares fused (PAYLOAD_CMP, META_CMP). */
function fused(): { prog: Program; at: Record<string, number> } {
  const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
  b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
  b.rule('INPUT');
  emitPayload(b, NFT_REG_1, NH, 12, 3);
  emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [1, 2, 3]);
  emitMetaGet(b, NFT_REG_1, NFT_META_MARK);
  emitCmp(b, NFT_CMP_NEQ, NFT_REG_1, [1, 2]);
  const prog = b.finish();
  const at = offsets(prog, [['pcmp', 'mcmp']]);
  expect(prog.code[at.pcmp!]! & Rec.OP_MASK).toBe(Op.PAYLOAD_CMP);
  expect(prog.code[at.mcmp!]! & Rec.OP_MASK).toBe(Op.META_CMP);
  return { prog, at };
}

function withCode(prog: Program, f: (code: Int32Array, chains: Int32Array) => void, extra: Partial<Program> = {}): Program {
  const code = prog.code.slice();
  const chains = prog.chains.slice();
  f(code, chains);
  return { ...prog, code, chains, ...extra };
}

function rejects(p: Program, why: RegExp): void {
  let err: unknown;
  try {
    validate(p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a VmError matching ${why}`).toBeInstanceOf(VmError);
  expect((err as Error).message).toMatch(why);
}

describe('validate refuses each class of malformed program', () => {
  it('accepts the base program', () => {
    expect(() => validate(base().prog)).not.toThrow();
  });

  const { prog, at: at0 } = base();
  const at = at0 as Record<string, number> & { [k: string]: number };
  const slot = (w: number, shift: number, v: number): number => (w & ~(31 << shift)) | (v << shift);
  const verdict = (code: number, chain: number): number => Op.VERDICT | ((code & 0xf) << 8) | ((chain + 1) << 12);
  const cases: [string, (c: Int32Array, ch: Int32Array) => void, RegExp, Partial<Program>?][] = [
    ['unknown opcode', (c) => { c[at.counter] = 99; }, /unknown expression opcode 99/],
    ['structure record inside a rule', (c) => { c[at.counter] = Op.END; }, /unknown expression opcode/],
    ['operand bits on an unpacked opcode', (c) => { c[at.meta] = Op.META_GET | (1 << 8); }, /unknown expression opcode/],
    ['record past the end of its rule', (c) => { c[at.rule0] = Op.RULE | ((at.cmp + 2 - at.rule0) << 8); }, /runs past the end of its rule|next offset/],
    ['rule next offset inside its header', (c) => { c[at.rule1] = Op.RULE | (1 << 8); }, /next offset/],
    ['rule next offset past the code', (c) => { c[at.rule1] = Op.RULE | (5000 << 8); }, /next offset/],
    ['rule index out of range', (c) => { c[at.rule1 + 1] = 7; }, /rule index 7/],
    ['rule index used twice', (c) => { c[at.rule1 + 1] = 0; }, /used twice/],
    ['dreg in the verdict area', (c) => { c[at.payload] = slot(c[at.payload]!, 16, 0); }, /not a data register/],
    ['load overrunning the registers', (c) => { c[at.payload] = slot(c[at.payload]!, 16, 20); }, /overrun/],
    ['packed load with unknown bits', (c) => { c[at.payload] |= 1 << 26; }, /unknown bits/],
    ['generic load into the verdict area', (c) => { c[at.gpayload + 1] = 0; }, /not a data register/],
    ['generic load overrunning the registers', (c) => { c[at.gpayload + 1] = 19; c[at.gpayload + 4] = 5; }, /overrun/],
    ['payload length 0', (c) => { c[at.gpayload + 4] = 0; }, /length 0/],
    ['payload offset 256', (c) => { c[at.gpayload + 3] = 256; }, /offset 256/],
    ['payload base', (c) => { c[at.gpayload + 2] = 9; }, /unknown base/],
    ['cmp op', (c) => { c[at.cmp + 2] = 6; }, /unknown op/],
    ['cmp length 17', (c) => { c[at.cmp + 3] = 17; }, /length 17/],
    ['cmp data outside the pool', (c) => { c[at.cmp + 4] = 1000; }, /constant pool/],
    ['cmp fast form with data wider than its length', (c) => { c[at.cmp32 + 1] = 0x01020304; }, /wider/],
    ['cmp fast form with unknown bits', (c) => { c[at.cmp32] |= 1 << 20; }, /unknown bits/],
    ['cmp fast form in the verdict area', (c) => { c[at.cmp32] = slot(c[at.cmp32]!, 8, 1); }, /not a data register/],
    ['counter index', (c) => { c[at.counter] = Op.COUNTER | (5 << 8); }, /counter: index 5/],
    ['jump target out of range', (c) => { c[at.verdict] = verdict(NFT_JUMP, 9); }, /out of range/],
    ['jump to a base chain', (c) => { c[at.verdict] = verdict(NFT_JUMP, 0); }, /base chain/],
    ['jump without a target', (c) => { c[at.verdict] = verdict(NFT_JUMP, -1); }, /out of range/],
    ['stolen verdict', (c) => { c[at.verdict] = verdict(NF_STOLEN, -1); }, /invalid verdict/],
    ['repeat verdict', (c) => { c[at.verdict] = verdict(4, -1); }, /invalid verdict/],
    ['accept with a chain', (c) => { c[at.verdict] = verdict(NF_ACCEPT, 1); }, /chain operand/],
    ['meta key that cannot be loaded', (c) => { c[at.meta + 2] = 13; }, /cannot be loaded/],
    ['meta key that cannot be set', (c) => { c[at.metaset + 2] = 0; }, /cannot be set/],
    ['lookup of a missing set', (c) => { c[at.lookup + 2] = 3; }, /set 3 does not exist/],
    ['lookup flags', (c) => { c[at.lookup + 3] = 2; }, /unknown flags/],
    ['numgen modulus 0', (c) => { c[at.numgen + 3] = 0; }, /modulus 0/],
    ['numgen state', (c) => { c[at.numgen + 5] = 100; }, /state 100/],
    ['limit rate 0', (c) => { c[at.limit + 1] = 0; }, /rate 0/],
    ['log prefix string', (c) => { c[at.log + 1] = 50; }, /prefix string/],
    ['log group with a level', (c) => { c[at.log + 2] = 1; c[at.log + 5] = 4; }, /group with level/],
    ['shift of 32', (c) => { c[at.shift + 7] = 32; }, /shift 32/],
    ['byteorder size 8', (c) => { c[at.byteorder + 5] = 8; }, /element size 8/],
    ['base chain policy', (_c, ch) => { ch[CH_POLICY] = NF_STOLEN; }, /policy/],
    ['chain start outside the code', (_c, ch) => { ch[CHAIN_WORDS + CH_FIRST] = 5000; }, /outside the code/],
    ['chain start inside a rule', (_c, ch) => { ch[CHAIN_WORDS + CH_FIRST] = at.meta; }, /expected a rule header/],
    ['chains sharing records', (_c, ch) => { ch[CHAIN_WORDS + CH_FIRST] = 0; }, /shared/],
  ];
  for (const [name, f, why] of cases) it(name, () => rejects(withCode(prog, f), why));

  const { prog: fprog, at: fat0 } = fused();
  const fat = fat0 as Record<string, number> & { [k: string]: number };
  it('accepts the fused program', () => {
    expect(() => validate(fprog)).not.toThrow();
  });
  const fcases: [string, (c: Int32Array) => void, RegExp][] = [
    ['fused load into the verdict area', (c) => { c[fat.pcmp] = slot(c[fat.pcmp]!, 16, 3); }, /not a data register/],
    ['fused load with unknown bits', (c) => { c[fat.pcmp] |= 1 << 27; }, /unknown bits/],
    ['fused load with data wider than its length', (c) => { c[fat.pcmp + 1] = 0x01020304; }, /wider/],
    ['fused meta with a key that is not a plain field', (c) => { c[fat.mcmp] = (c[fat.mcmp]! & ~(63 << 8)) | (13 << 8); }, /cannot be fused/],
    ['fused meta with the wrong field', (c) => { c[fat.mcmp] = (c[fat.mcmp]! & ~(63 << 22)) | (1 << 22); }, /field 1/],
    ['fused meta with unknown bits', (c) => { c[fat.mcmp] |= 1 << 29; }, /unknown bits/],
    ['fused meta with data wider than its length', (c) => { c[fat.mcmp + 1] = 0x010203; }, /wider/],
  ];
  for (const [name, f, why] of fcases) it(name, () => rejects(withCode(fprog, f), why));

  it('verdict codes a packed word cannot hold are refused when emitted', () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('INPUT', { hook: NF_INET_LOCAL_IN, policy: NF_ACCEPT });
    b.rule('INPUT');
    expect(() => emitVerdict(b, NF_DROP | (5 << 16))).toThrow(/invalid verdict/);
    expect(() => emitVerdict(b, NF_DROP | (5 << 16))).toThrow(VmError);
  });

  it('source map that does not match the rules', () => rejects({ ...prog, srcmap: new Int32Array(2) }, /source map/));
  it('pool8 that is not the pool', () => rejects({ ...prog, pool8: new Uint8Array(4) }, /pool8/));
  it('chain loops (-ELOOP) and nesting deeper than 15 (-EMLINK)', () => {
    const b = new ProgramBuilder(NFPROTO_IPV4, 'filter');
    b.chain('A');
    b.chain('B');
    b.rule('A');
    emitVerdict(b, NFT_JUMP, 'B');
    b.rule('B');
    emitVerdict(b, NFT_JUMP, 'A');
    expect(() => b.finish()).toThrow(/ELOOP/);
  });
});

/** validate() then, if accepted, run every base chain on both engines. */
function checkProgram(p: Program, pkts: ReturnType<typeof buildPkt>[]): boolean {
  try {
    validate(p);
  } catch (e) {
    if (!(e instanceof VmError)) throw e;
    return false;
  }
  const nch = p.chains.length / CHAIN_WORDS;
  for (let c = 0; c < nch; c++) {
    if (p.chains[c * CHAIN_WORDS + CH_POLICY]! < 0) continue;
    for (const pkt of pkts) {
      const st = p.state.slice();
      const cn = p.counters.slice();
      const a = runOne('interp', p, c, pkt);
      p.state.set(st);
      p.counters.set(cn);
      const b = runOne('slow', p, c, pkt);
      expect(a.verdict).toBe(b.verdict);
      expect([...a.regs]).toEqual([...b.regs]);
      // the execution tier generates code from whatever the validator accepts
      p.state.set(st);
      p.counters.set(cn);
      const j = runOne('jit', p, c, pkt);
      expect(j.verdict).toBe(a.verdict);
      expect([...j.regs]).toEqual([...a.regs]);
      expect(j.counters).toEqual(a.counters);
    }
  }
  return true;
}

describe('fuzzing the validator', () => {
  const word = fc.oneof(fc.integer({ min: -6, max: 30 }), fc.integer({ min: -1, max: 100 }), fc.integer());

  it('random words: only VmError, and accepted programs run', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 60 }),
        fc.array(fc.tuple(fc.nat(60), fc.integer({ min: -1, max: 2 }), fc.integer({ min: -1, max: 8 }), fc.nat(3)), { minLength: 1, maxLength: 3 }),
        fc.array(word, { maxLength: 8 }),
        fc.nat(3),
        fc.array(pktSpec, { minLength: 1, maxLength: 2 }),
        (code, chains, pool, nrules, pkts) => {
          const poolArr = Int32Array.from(pool);
          const p: Program = {
            family: NFPROTO_IPV4,
            table: 't',
            code: Int32Array.from(code),
            pool: poolArr,
            pool8: new Uint8Array(poolArr.buffer),
            chains: Int32Array.from(chains.flatMap(([first, policy, hook, rules]) => [first, policy, 0, policy >= 0 ? hook : -1, rules])),
            strings: ['c'],
            sets: [new NftSet('s', 2)],
            counters: new Float64Array(4),
            state: new Float64Array(8),
            srcmap: new Int32Array(nrules * 2),
            nrules,
            xt: [{ kind: 'match', name: 'm', rev: 0, fn: () => 0 }, { kind: 'target', name: 'T', rev: 0, fn: () => -1 }],
          };
          if (checkProgram(p, pkts.map(buildPkt))) accepted++;
        },
      ),
      { numRuns: runs(3000) },
    );
    // Hand-made minimal programs are accepted too (an empty chain is just END).
    expect(checkProgram({ ...base().prog }, [buildPkt(fc.sample(pktSpec, runs(1))[0]!)])).toBe(true);
  });

  it('well-formed records with random operands: only VmError, and accepted programs run', () => {
    let accepted = 0;
    const small = fc.oneof(fc.integer({ min: -1, max: 24 }), fc.constantFrom(-5, -4, -3, -2, 255, 256, 0x7fffffff));
    const hi = fc.oneof(fc.constant(0), fc.nat(0xffffff), fc.nat(0x7ff));
    const rec = fc.tuple(fc.integer({ min: Op.PAYLOAD, max: Op.LOG }), fc.array(small, { minLength: 7, maxLength: 7 }), hi);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2), fc.array(rec, { maxLength: 4 })), { maxLength: 5 }),
        fc.array(small, { minLength: 8, maxLength: 8 }),
        fc.array(pktSpec, { minLength: 1, maxLength: 2 }),
        (rules, pool, pkts) => {
          const code: number[] = [];
          const chains: number[] = [];
          let ri = 0;
          for (let c = 0; c < 3; c++) {
            const mine = rules.filter(([ch]) => ch === c);
            chains.push(code.length, c === 0 ? NF_ACCEPT : -1, 0, c === 0 ? 1 : -1, mine.length);
            for (const [, recs] of mine) {
              const words = recs.flatMap(([op, ops, hi]) => [op | (OP_INFO[op]!.packed ? hi << 8 : 0), ...ops.slice(0, OP_INFO[op]!.size - 1)]);
              code.push(Op.RULE | ((Rec.RULE_WORDS + words.length) << 8), ri++, ...words);
            }
            code.push(Op.END);
          }
          const poolArr = Int32Array.from(pool);
          const p: Program = {
            family: NFPROTO_IPV4, table: 't', code: Int32Array.from(code), pool: poolArr, pool8: new Uint8Array(poolArr.buffer),
            chains: Int32Array.from(chains), strings: ['c', 'd'], sets: [new NftSet('s', 2), new NftSet('i', 1, 4).addRange([1], [9])],
            counters: new Float64Array(8), state: new Float64Array(12), srcmap: new Int32Array(ri * 2), nrules: ri, xt: [],
          };
          resetState(p, 0);
          if (checkProgram(p, pkts.map(buildPkt))) accepted++;
        },
      ),
      { numRuns: runs(3000) },
    );
    expect(accepted).toBeGreaterThan(runs(3000) / 30); // one in thirty accepted, at any NFVM_PROPERTY_SCALE
  });

  it('valid programs with random words changed: only VmError, and accepted programs run', () => {
    let accepted = 0;
    fc.assert(
      fc.property(progSpec, fc.array(fc.tuple(fc.nat(10_000), word), { minLength: 1, maxLength: 3 }), fc.array(pktSpec, { minLength: 1, maxLength: 2 }), (spec, edits, pkts) => {
        const good = buildProg(spec);
        if (good.code.length === 0) return;
        const code = good.code.slice();
        for (const [i, w] of edits) code[i % code.length] = w;
        if (checkProgram({ ...good, code }, pkts.map(buildPkt))) accepted++;
      }),
      { numRuns: runs(1500) },
    );
    expect(accepted).toBeGreaterThan(runs(1500) / 30);
  });
});
