/**
 * The two engines agree: for generated rulesets (user chains, jumps, gotos,
 * returns, every supported match and target, negations; filter, mangle,
 * raw and nat tables) and generated packets, the bytecode VM and the reference
 * evaluator give the same verdict, final mark and ct mark, the same REJECT
 * and the same counters for every rule and policy with tracing off (the VM
 * on its execution tier, vm/jit, the path replay runs, and on its
 * interpreter, vm/interp.ts, --engine interp; on the straight and the
 * optimized program), and with tracing on (the VM's slow interpreter) the same
 * sequence of (chain, rule) visited too; for rulesets loaded by either
 * backend (with 'nft', the matches iptables-nft lowers natively mean what
 * its nf_tables expressions do, in both engines).
 * Seeded (test/setup.ts): a failure prints the shrunk ruleset and packets,
 * replayable with FC_SEED.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRestore } from '../../compiler/parse/restore.js';
import type { TableName } from '../../core/ast.js';
import { referenceTable } from '../../engine/reference/index.js';
import { vmTable } from '../../engine/vm-table.js';
import type { EngineOptions, TableEngine } from '../../engine/engine.js';
import type { Backend } from '../../core/netfilter.js';
import { M_CT_MARK, M_MARK } from '../../vm/layout.js';
import { BCAST4, LOCAL4, engineNatRuleset, engineRuleset, enginePacket, genPacketOf as toPacket, type GenPacket } from '../helpers/engine-gen.js';
import { runs } from '../helpers/runs.js';

const v4 = (a: string) => Uint8Array.from(a.split('.').map(Number));
const OPTS: EngineOptions = { seed: 7, localAddrs: LOCAL4.map(v4), broadcastAddrs: BCAST4.map(v4) };
/** A node without lo's 127.0.0.1/8: 127/8 is no local address there (no `local 127.0.0.0/8` route). */
const OPTS_NO_LO: EngineOptions = { ...OPTS, localAddrs: LOCAL4.filter((a) => !a.startsWith('127.')).map(v4) };

interface Observed {
  verdicts: number[];
  marks: number[];
  ctmarks: number[];
  rejects: string[];
  counters: string;
  /** With tracing on: the (chain, kind, rule) sequence of each packet. */
  traces?: string[][];
}

/**
 * Runs the packets through a fresh engine. With tracing off the VM runs
 * its tier (vm/jit, what replay runs) or nftDoChain (vm/interp.ts); with tracing on it hands
 * traced packets to the slow interpreter, so the two modes are observed on
 * separate engines and both compared with the reference.
 */
function observe(engine: TableEngine, packets: GenPacket[], trace: boolean): Observed {
  engine.setTrace(trace);
  const o: Observed = { verdicts: [], marks: [], ctmarks: [], rejects: [], counters: '' };
  if (trace) o.traces = [];
  for (const g of packets) {
    const p = toPacket(g);
    o.verdicts.push(engine.run(g.chain, p));
    o.marks.push(p.meta[M_MARK]! >>> 0);
    o.ctmarks.push(p.meta[M_CT_MARK]! >>> 0);
    if (trace) o.traces!.push(engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`));
    o.rejects.push(rejectText(engine));
  }
  o.counters = JSON.stringify([...engine.counters()]);
  return o;
}

function rejectText(engine: TableEngine): string {
  const r = engine.lastReject();
  return r ? `${r.chain}:${r.rule}` : '';
}

const cases = fc.oneof({ weight: 4, arbitrary: engineRuleset }, { weight: 1, arbitrary: engineNatRuleset }).chain((rs) =>
  fc.tuple(fc.constant(rs), fc.array(enginePacket(rs.chains), { minLength: 1, maxLength: 12 }), fc.constantFrom<Backend>('legacy', 'legacy', 'nft'), fc.boolean()));

describe('VM and x_tables evaluator agree', () => {
  let rejected = 0;
  it('with tracing off (the execution tier and the interpreter, straight and optimized programs) and on (the rule sequence), on verdicts, marks, REJECTs and counters', () => {
    fc.assert(
      fc.property(cases, ([gen, packets, backend, lo]) => {
        const rs = parseRestore(gen.text);
        const table = gen.table as TableName;
        const opts = { ...(lo ? OPTS : OPTS_NO_LO), backend };
        const ref = observe(referenceTable(rs, table, opts), packets, false);
        for (const tier of ['jit', 'interp'] as const) {
          expect(observe(vmTable(rs, table, { ...opts, optimize: 0, tier }), packets, false), `tracing off, straight program, ${tier}`).toEqual(ref);
          expect(observe(vmTable(rs, table, { ...opts, optimize: 1, tier }), packets, false), `tracing off, optimized program, ${tier}`).toEqual(ref);
        }
        const refTraced = observe(referenceTable(rs, table, opts), packets, true);
        expect(refTraced, 'tracing changes nothing in the reference').toMatchObject(ref);
        expect(observe(vmTable(rs, table, opts), packets, true), 'tracing on').toEqual(refTraced);
        for (const [i, o] of ref.rejects.entries()) {
          if (!o) continue;
          rejected++;
          const [chain, num] = o.split(':');
          expect(ref.verdicts[i]).toBe(0); // NF_DROP
          expect(rs.tables.get(table)!.chains.get(chain!)!.rules[Number(num) - 1]!.target).toMatchObject({ kind: 'ext', name: 'REJECT' });
        }
      }),
      { numRuns: runs(300) },
    );
    // the REJECT comparison is not vacuous
    expect(rejected).toBeGreaterThan(0);
  });
});
