/**
 * Property: on random small programs (built through the builder, validated)
 * and random packets, the interpreter and the slow interpreter made of the
 * per-expression eval<Kind> functions agree on the verdict, the registers,
 * the counters, the expression state, the packet metadata and the trace
 * events (helpers/run.ts checks all of them). Several packets run in a row
 * against the same program state, with a moving clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildPkt, buildProg, pktSpec, progSpec } from './helpers/gen.js';
import { runBoth, runOne } from './helpers/run.js';
import { Op, disasm, opSize, resetState, Rec } from '../../vm/index.js';

describe('interpreter ≡ slow interpreter', () => {
  it('on random programs and packets', () => {
    fc.assert(
      fc.property(progSpec, fc.array(fc.tuple(pktSpec, fc.nat(3_000_000_000)), { minLength: 1, maxLength: 6 }), fc.boolean(), (spec, pkts, trace) => {
        const prog = buildProg(spec);
        resetState(prog, 0);
        let now = 0;
        for (const [ps, dt] of pkts) {
          now += dt;
          runBoth(prog, 0, buildPkt(ps), { keepState: true, nowNs: now, trace });
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('superinstructions change nothing: fused and unfused programs agree (interpreter vs slow interpreter) and print the same', () => {
    fc.assert(
      fc.property(progSpec, fc.array(pktSpec, { minLength: 1, maxLength: 4 }), (spec, pkts) => {
        const fused = buildProg(spec);
        const plain = buildProg(spec, false);
        expect(disasm(fused)).toBe(disasm(plain));
        for (const ps of pkts) {
          const pkt = buildPkt(ps);
          resetState(fused, 0);
          resetState(plain, 0);
          const a = runOne('interp', fused, 0, pkt);
          const b = runOne('slow', plain, 0, pkt);
          expect(a.verdict).toBe(b.verdict);
          expect([...a.regs]).toEqual([...b.regs]);
          expect(a.counters).toEqual(b.counters);
          expect([...a.meta]).toEqual([...b.meta]);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('the generator reaches every opcode', () => {
    const seen = new Set<number>();
    fc.assert(
      fc.property(progSpec, (spec) => {
        const code = buildProg(spec).code;
        for (let pc = 0; pc < code.length; pc += opSize(code[pc]! & Rec.OP_MASK)) seen.add(code[pc]! & Rec.OP_MASK);
      }),
      { numRuns: 300 },
    );
    for (let op = Op.PAYLOAD; op <= Op.LOG; op++) expect(seen.has(op), `opcode ${op}`).toBe(true);
  });
});
