/**
 * Property: the interpreter (vm/interp.ts, what replay runs) and the slow
 * interpreter made of the per-expression eval<Kind> functions agree on the
 * verdict, the registers, the counters, the expression state, the packet
 * metadata and the trace events (helpers/run.ts checks all of them), with
 * the trace ring off and on:
 *  - on random small programs built through the builder (every opcode the
 *    builder emits, odd operands included) and random packets, several in a
 *    row against the same program state, with a moving clock;
 *  - on what the compiler emits: generated iptables rulesets (filter, mangle,
 *    raw, nat; IPv4 and IPv6 with long classifiable runs) compiled for both
 *    backends, straight and optimized (classifier prefilters).
 * A last test fails when an opcode of vm/opcodes.ts is met by neither.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildPkt, buildProg, pktSpec, progSpec } from './helpers/gen.js';
import { runBoth, runOne } from './helpers/run.js';
import { CHAIN_WORDS, CH_HOOK, chainCount, disasm, Op, OP_INFO, OP_MAX, opSize, resetState, Rec, type Program } from '../../vm/index.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { compileTable } from '../../compiler/compile.js';
import type { TableName } from '../../core/ast.js';
import { engineNatRuleset, engineRuleset, enginePacket, genPacketOf } from '../helpers/engine-gen.js';
import { optPacket, optPacketOf, optRuleset } from '../optimize/gen.js';
import { runs } from '../helpers/runs.js';
import { parseIpsetSave } from '../../compiler/ipset.js';

/** The opcodes of a program's records. */
function opcodes(prog: Program, into: Set<number>): void {
  const code = prog.code;
  for (let pc = 0; pc < code.length; pc += opSize(code[pc]! & Rec.OP_MASK)) into.add(code[pc]! & Rec.OP_MASK);
}

/** The base chain of `prog` at hook `hook`. */
function baseChain(prog: Program, hook: number): number {
  for (let c = 0; c < chainCount(prog); c++) if (prog.chains[c * CHAIN_WORDS + CH_HOOK] === hook) return c;
  throw new Error(`no base chain at hook ${hook}`);
}

/** Programs sampled per generator for the opcode census. */
const CENSUS = 300;

const HOOKS: Record<string, number> = { PREROUTING: 0, INPUT: 1, FORWARD: 2, OUTPUT: 3, POSTROUTING: 4 };
const LOCAL = [Uint8Array.of(10, 0, 0, 1), Uint8Array.of(192, 168, 1, 10)];

/** Compiled programs with packets for their base chains: the engine generator's tables and the optimizer's runs. */
const compiled = fc.oneof(
  fc.tuple(fc.oneof(engineRuleset, engineNatRuleset), fc.constantFrom<'legacy' | 'nft'>('legacy', 'nft'), fc.constantFrom<0 | 1>(0, 1)).chain(([gen, backend, optimize]) =>
    fc.array(enginePacket(gen.chains), { minLength: 1, maxLength: 8 }).map((pkts) => {
      const prog = compileTable(parseRestore(gen.text), gen.table as TableName, { backend, optimize, policyRules: true, engine: { seed: 3, localAddrs: LOCAL } }).program;
      return { prog, pkts: pkts.map((g) => ({ chain: HOOKS[g.chain]!, pkt: genPacketOf(g) })) };
    })),
  fc.tuple(optRuleset, fc.constantFrom(256, 7)).chain(([gen, block]) =>
    fc.array(optPacket(gen.family), { minLength: 1, maxLength: 8 }).map((pkts) => {
      const prog = compileTable(parseRestore(gen.text, { family: gen.family }), 'filter', { optimize: 1, classifierBlock: block, policyRules: true }).program;
      return { prog, pkts: pkts.map((g) => ({ chain: 2, pkt: optPacketOf(gen.family, g) })) };
    })),
  // the xt compat set match and SET target (the VM without the node's sets: nothing found, nothing changed)
  fc.tuple(fc.constantFrom('src', 'dst', 'src,dst'), fc.boolean(), engineRuleset).chain(([dirs, inv, gen]) =>
    fc.array(enginePacket(gen.chains), { minLength: 1, maxLength: 4 }).map((pkts) => {
      const text = ['*filter', ':INPUT ACCEPT [0:0]', `-A INPUT -m set ${inv ? '! ' : ''}--match-set a ${dirs} -j SET --add-set b ${dirs} --exist`, 'COMMIT', ''].join('\n');
      const ipsets = parseIpsetSave('create a hash:ip,port\ncreate b hash:ip,port timeout 60\n', 'sets');
      const prog = compileTable(parseRestore(text), 'filter', { policyRules: true, engine: { ipsets } }).program;
      return { prog, pkts: pkts.map((g) => ({ chain: 1, pkt: genPacketOf(g) })) };
    })),
);

describe('execution tier ≡ interpreter', () => {
  // the tier with its inlined records, with every rule in its own segment (moves between
  // segments), with every record through its fallback (what a kind it does not inline runs),
  // and with every rule run as a loop over its row of parameters (a chain of rules of one shape)
  for (const tier of ['jit', 'jit-split', 'jit-fallback', 'jit-runs'] as const) {
    it(`${tier}: on random programs and packets`, () => {
      fc.assert(
        fc.property(progSpec, fc.array(fc.tuple(pktSpec, fc.nat(3_000_000_000)), { minLength: 1, maxLength: 6 }), fc.boolean(), (spec, pkts, trace) => {
          const prog = buildProg(spec);
          resetState(prog, 0);
          let now = 0;
          for (const [ps, dt] of pkts) {
            now += dt;
            runBoth(prog, 0, buildPkt(ps), { keepState: true, nowNs: now, trace }, [tier, 'interp']);
          }
        }),
        { numRuns: runs(tier === 'jit' ? 1000 : 300) },
      );
    });

    it(`${tier}: on compiled rulesets (both backends, straight and optimized) and generated packets`, () => {
      fc.assert(
        fc.property(compiled, fc.boolean(), ({ prog, pkts }, trace) => {
          resetState(prog, 0);
          const ops = new Set<number>();
          opcodes(prog, ops);
          // after a rule the classifier chose did not match, the interpreter asks the classifier again and the
          // tier goes on straight: the rules one of them passes over leave other scratch registers, nothing else
          const regs = !ops.has(Op.CLASSIFY);
          for (const { chain, pkt } of pkts) runBoth(prog, baseChain(prog, chain), pkt, { keepState: true, trace, regs }, [tier, 'interp']);
        }),
        { numRuns: runs(tier === 'jit' ? 300 : 100) },
      );
    });
  }
});

/**
 * Chains of rules of a few shapes in runs (the tier runs each run as a loop
 * over its parameters and passes over rules failing a compare together, or
 * failing any of its first compares: a mixed run's protocol and address),
 * their tests drawn from a small domain so that packets match some rules,
 * fail others at each compare, and enter runs in the middle on return from
 * a user chain (the jumps are rules of a run too).
 */
const runRuleset = fc.array(
  fc.tuple(fc.nat(3), fc.nat(3), fc.constantFrom('tcp', 'udp', 'mixed'), fc.nat(5), fc.constantFrom('ACCEPT', 'DROP', 'SUB'), fc.integer({ min: 1, max: 12 })),
  { minLength: 1, maxLength: 8 },
).map((runs) => {
  // SUB drops some of what it gets and returns the rest, into the middle of the run that jumped
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':SUB - [0:0]',
    '-A SUB -p tcp -m tcp --dport 1 -j DROP', '-A SUB -s 10.0.0.2/32 -j RETURN', '-A SUB -p udp -m udp --dport 2 -j DROP'];
  runs.forEach(([a, shape, protos, port, target, n], r) => {
    for (let i = 0; i < n; i++) {
      // a mixed run: tcp and udp rules of one shape (kube-proxy's KUBE-SERVICES), passed over together where they fail
      const proto = protos !== 'mixed' ? protos : (a + i * i) % 3 === 0 ? 'udp' : 'tcp';
      const src = `-s 10.0.0.${(a + i * (r + 1)) % 4}/32`;
      const dport = `-m ${proto} --dport ${1 + ((port + i) % 4)}`;
      const spec = shape === 0 ? `${src} -p ${proto} ${dport}` : shape === 1 ? `${src} -p ${proto}` : shape === 2 ? `-p ${proto} ${dport}` : `! ${src} -p ${proto} ${dport}`;
      lines.push(`-A FORWARD ${spec} -j ${target}`);
    }
  });
  lines.push('COMMIT', '');
  return lines.join('\n');
});

const runPacket = fc.tuple(fc.nat(3), fc.constantFrom(6, 17, 1), fc.integer({ min: 1, max: 5 })).map(([a, proto, dport]) => genPacketOf({
  chain: 'FORWARD', ethernet: false, srcMac: '02:00:00:00:00:01', src: `10.0.0.${a}`, dst: '10.1.0.5', proto, ttl: 64, tos: 0, fragoff: 0, mf: false,
  ipOptions: false, sport: 40000, dport, tcpFlags: 16, tcpOptions: false, icmpType: 8, icmpCode: 0, truncate: undefined, payload: 0, iif: 'eth0', oif: 'eth1',
  mark: 0, ctstate: 2, ctmark: 0, pkttype: 0,
}));

describe('execution tier ≡ interpreter on runs of rules of one shape', () => {
  for (const backend of ['legacy', 'nft'] as const) {
    it(`${backend}: verdicts, counters and registers`, () => {
      fc.assert(
        fc.property(runRuleset, fc.array(runPacket, { minLength: 1, maxLength: 8 }), fc.boolean(), (text, pkts, trace) => {
          const prog = compileTable(parseRestore(text), 'filter', { backend, optimize: 0, policyRules: true }).program;
          resetState(prog, 0);
          for (const pkt of pkts) runBoth(prog, baseChain(prog, HOOKS.FORWARD!), pkt, { keepState: true, trace }, ['jit', 'interp']);
        }),
        { numRuns: runs(300) },
      );
    });
  }
});

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
      { numRuns: runs(1500) },
    );
  });

  it('on compiled rulesets (both backends, straight and optimized) and generated packets', () => {
    fc.assert(
      fc.property(compiled, fc.boolean(), ({ prog, pkts }, trace) => {
        resetState(prog, 0);
        const ops = new Set<number>();
        opcodes(prog, ops);
        // a classifier skips rules the slow interpreter evaluates one by one: their scratch registers differ, nothing else
        const regs = !ops.has(Op.CLASSIFY);
        for (const { chain, pkt } of pkts) runBoth(prog, baseChain(prog, chain), pkt, { keepState: true, trace, regs });
      }),
      { numRuns: runs(400) },
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
      { numRuns: runs(800) },
    );
  });

  it('the generators reach every opcode of vm/opcodes.ts (a new opcode needs generator coverage)', () => {
    const seen = new Set<number>();
    // a census of what the generators produce, not a property: a fixed sample, not scaled
    for (const spec of fc.sample(progSpec, { numRuns: CENSUS, seed: 1 })) opcodes(buildProg(spec), seen);
    for (const { prog } of fc.sample(compiled, { numRuns: CENSUS, seed: 1 })) opcodes(prog, seen);
    const missing: string[] = [];
    for (let op = 1; op < OP_MAX; op++) if (OP_INFO[op] && !seen.has(op)) missing.push(OP_INFO[op]!.name);
    expect(missing).toEqual([]);
    // and the table has no hole: every number below OP_MAX is an opcode
    for (let op = 1; op < OP_MAX; op++) expect(OP_INFO[op], `opcode ${op}`).toBeDefined();
  });
});
