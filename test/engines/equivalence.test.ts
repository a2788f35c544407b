/**
 * The two engines agree: for generated rulesets (user chains, jumps, gotos,
 * returns, every supported match and target, negations; filter, mangle and
 * raw tables) and generated packets, the bytecode VM and the reference
 * evaluator give the same verdict, final mark and ct mark, the same counters
 * for every rule and policy, and the same sequence of (chain, rule) visited.
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
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../vm/packet.js';
import { M_CT_DIR, M_CT_MARK, M_CT_STATE, M_HOOK, M_MARK, M_NFPROTO, M_PKTTYPE } from '../../vm/layout.js';
import { BCAST4, LOCAL4, engineRuleset, enginePacket, packetFrame, type GenPacket } from '../helpers/engine-gen.js';

const HOOK: Record<string, number> = { PREROUTING: 0, INPUT: 1, FORWARD: 2, OUTPUT: 3, POSTROUTING: 4 };
const v4 = (a: string) => Uint8Array.from(a.split('.').map(Number));
const OPTS: EngineOptions = { seed: 7, localAddrs: LOCAL4.map(v4), broadcastAddrs: BCAST4.map(v4) };

function toPacket(g: GenPacket): Packet {
  const p = new Packet(2048);
  p.setFrame(packetFrame(g));
  decodePacket(p, g.ethernet ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
  const hook = HOOK[g.chain]!;
  p.meta[M_NFPROTO] = 2;
  p.meta[M_HOOK] = hook;
  if (hook <= 2) setDevice(p, 'in', 2 + (g.iif.length % 3), g.iif);
  if (hook >= 2) setDevice(p, 'out', 5 + (g.oif.length % 3), g.oif);
  p.meta[M_MARK] = g.mark;
  p.meta[M_CT_STATE] = g.ctstate;
  p.meta[M_CT_MARK] = g.ctmark;
  p.meta[M_CT_DIR] = g.ctstate === 1 || g.ctstate === 64 ? -1 : 0;
  p.meta[M_PKTTYPE] = g.pkttype;
  return p;
}

interface Observed {
  verdicts: number[];
  marks: number[];
  ctmarks: number[];
  traces: string[][];
  rejects: string[];
  counters: string;
}

function observe(engine: TableEngine, packets: GenPacket[]): Observed {
  engine.setTrace(true);
  const o: Observed = { verdicts: [], marks: [], ctmarks: [], traces: [], rejects: [], counters: '' };
  for (const g of packets) {
    const p = toPacket(g);
    o.verdicts.push(engine.run(g.chain, p));
    o.marks.push(p.meta[M_MARK]! >>> 0);
    o.ctmarks.push(p.meta[M_CT_MARK]! >>> 0);
    o.traces.push(engine.takeTrace().map((e) => `${e.chain}:${e.kind}:${e.rule}`));
    o.rejects.push(rejectText(engine));
  }
  o.counters = JSON.stringify([...engine.counters()]);
  return o;
}

function rejectText(engine: TableEngine): string {
  const r = engine.lastReject();
  return r ? `${r.chain}:${r.rule}` : '';
}

describe('VM and reference evaluator agree', () => {
  it('on verdicts, marks, counters and traces for generated rulesets and packets', () => {
    fc.assert(
      fc.property(
        engineRuleset.chain((rs) => fc.tuple(fc.constant(rs), fc.array(enginePacket(rs.chains), { minLength: 1, maxLength: 12 }))),
        ([gen, packets]) => {
          if (process.env.NFVM_EQ_SKIP) fc.pre(!new RegExp(process.env.NFVM_EQ_SKIP).test(gen.text));
          const rs = parseRestore(gen.text);
          const table = gen.table as TableName;
          const ref = observe(referenceTable(rs, table, OPTS), packets);
          const vm = observe(vmTable(rs, table, OPTS), packets);
          expect(vm).toEqual(ref);
        },
      ),
      { numRuns: Number(process.env.NFVM_EQ_RUNS ?? 300) },
    );
  });

  it('with tracing off (as replay runs them), on which REJECT rule ended each run', () => {
    let rejected = 0;
    fc.assert(
      fc.property(
        engineRuleset.chain((rs) => fc.tuple(fc.constant(rs), fc.array(enginePacket(rs.chains), { minLength: 1, maxLength: 12 }))),
        ([gen, packets]) => {
          const rs = parseRestore(gen.text);
          const table = gen.table as TableName;
          const run = (engine: TableEngine) => packets.map((g) => {
            const v = engine.run(g.chain, toPacket(g));
            return `${v}:${rejectText(engine)}`;
          });
          const ref = run(referenceTable(rs, table, OPTS));
          expect(run(vmTable(rs, table, OPTS))).toEqual(ref);
          for (const o of ref) {
            const [v, chain, num] = o.split(':');
            if (!chain) continue;
            rejected++;
            expect(Number(v)).toBe(0); // NF_DROP
            expect(rs.tables.get(table)!.chains.get(chain)!.rules[Number(num) - 1]!.target).toMatchObject({ kind: 'ext', name: 'REJECT' });
          }
        },
      ),
      { numRuns: Number(process.env.NFVM_EQ_RUNS ?? 300) },
    );
    expect(rejected).toBeGreaterThan(0);
  });
});
