/**
 * Property: on random small programs (built through the builder, validated)
 * and random packets, the interpreter and the reference walker made of the
 * per-expression eval<Kind> functions agree on the verdict, the registers,
 * the counters, the expression state, the packet metadata and the trace
 * events (helpers/run.ts checks all of them). Several packets run in a row
 * against the same program state, with a moving clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildPkt, buildProg, pktSpec, progSpec } from './helpers/gen.js';
import { runBoth } from './helpers/run.js';
import { Op, opSize, resetState } from '../../vm/index.js';

describe('interpreter ≡ reference walker', () => {
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

  it('the generator reaches every opcode', () => {
    const seen = new Set<number>();
    fc.assert(
      fc.property(progSpec, (spec) => {
        const code = buildProg(spec).code;
        for (let pc = 0; pc < code.length; pc += opSize(code[pc]!)) seen.add(code[pc]!);
      }),
      { numRuns: 300 },
    );
    for (let op = Op.PAYLOAD; op <= Op.LOG; op++) expect(seen.has(op), `opcode ${op}`).toBe(true);
  });
});
