/**
 * The optimized VM (`optimize: 1`, classifier prefilters over long runs)
 * agrees with the x_tables evaluator: verdicts, final marks and every
 * rule's and policy's counters on the fast path (no tracing: the
 * classifier jumps), and the trace of (chain, rule) visited (tracing runs
 * the slow interpreter, which evaluates runs linearly) — for generated IPv4 and IPv6
 * rulesets with long classifiable runs and packets with fragments and
 * truncated layer-4 headers. Also: the optimized and the straight program
 * give the same verdicts and counters packet by packet.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { TableEngine } from '../../engine/engine.js';
import { M_MARK } from '../../vm/layout.js';
import { runs } from '../helpers/runs.js';
import { classifiers, optPacket, optPacketOf, optRuleset, type Fam, type OptPacket } from './gen.js';

interface Observed {
  verdicts: number[];
  marks: number[];
  counters: string;
}

function observe(engine: TableEngine, f: Fam, packets: OptPacket[]): Observed {
  const o: Observed = { verdicts: [], marks: [], counters: '' };
  for (const g of packets) {
    const p = optPacketOf(f, g);
    o.verdicts.push(engine.run('FORWARD', p));
    o.marks.push(p.meta[M_MARK]! >>> 0);
  }
  o.counters = JSON.stringify([...engine.counters()]);
  return o;
}

function traces(engine: TableEngine, f: Fam, packets: OptPacket[]): string[][] {
  engine.setTrace(true);
  return packets.map((g) => {
    engine.run('FORWARD', optPacketOf(f, g));
    return engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`);
  });
}

const OPTS = { seed: 3 };

describe('optimize=1: VM and x_tables evaluator agree', () => {
  let withClassifiers = 0;
  let total = 0;
  it('on verdicts, marks, counters and traces for rulesets with long classifiable runs', () => {
    fc.assert(
      fc.property(
        optRuleset.chain((rs) => fc.tuple(fc.constant(rs), fc.array(optPacket(rs.family), { minLength: 1, maxLength: 24 }), fc.constantFrom(256, 256, 32, 7, 1))),
        ([gen, packets, block]) => {
          const rs = parseRestore(gen.text, { family: gen.family });
          // small blocks: several per run, so the block summary is exercised too
          const vm = vmTable(rs, 'filter', { ...OPTS, optimize: 1, classifierBlock: block });
          total++;
          if (classifiers(vm.compiled.program) > 0) withClassifiers++;
          const ref = referenceTable(rs, 'filter', OPTS);
          const r = observe(ref, gen.family, packets);
          expect(observe(vm, gen.family, packets)).toEqual(r);
          const straight = vmTable(rs, 'filter', { ...OPTS, optimize: 0 });
          expect(observe(straight, gen.family, packets)).toEqual(r);
          expect(traces(vmTable(rs, 'filter', { ...OPTS, optimize: 1, classifierBlock: block }), gen.family, packets)).toEqual(traces(referenceTable(rs, 'filter', OPTS), gen.family, packets));
        },
      ),
      { numRuns: runs(200) },
    );
    // the property is about classifiers: most generated rulesets must have one
    expect(withClassifiers).toBeGreaterThan(total / 2);
  });
});
