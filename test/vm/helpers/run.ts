/**
 * Runs a chain on the interpreter and on the slow interpreter (state reset
 * before each), checks that verdict, registers, counters, packet metadata and
 * trace events agree, and returns the interpreter's result.
 */
import { expect } from 'vitest';
import { NftRegs, VmEnv, jitCode, jitDoChain, nftDoChain, nftDoChainSlow, resetState, type Packet, type Program } from '../../../vm/index.js';

/**
 * The interpreter, the slow interpreter, the generated tier, the tier with
 * every rule in a segment of its own, with every record through its
 * fallback, or with every rule run as a loop over its parameter rows.
 */
export type Runner = 'interp' | 'slow' | 'jit' | 'jit-split' | 'jit-fallback' | 'jit-runs';

const JIT_OPTIONS = { jit: {}, 'jit-split': { segmentWords: 1 }, 'jit-fallback': { inline: false }, 'jit-runs': { runMin: 1 } } as const;

export interface RunResult {
  verdict: number;
  regs: Int32Array;
  counters: number[];
  meta: Int32Array;
  events: ReturnType<VmEnv['events']>;
}

export interface RunOpts {
  trace?: boolean;
  nowNs?: number;
  /** Skip the state reset (to run several packets against the same program state). */
  keepState?: boolean;
  /** Compare registers too (default true). */
  regs?: boolean;
}

export function runOne(engine: Runner, prog: Program, chain: number, pkt: Packet, opts: RunOpts = {}, env?: VmEnv): RunResult {
  const p = pkt.clone();
  const e = env ?? new VmEnv(1234, opts.trace ? 64 : 0);
  if (opts.nowNs !== undefined) e.nowNs = opts.nowNs;
  const regs = new NftRegs();
  const stack = new Int32Array(32);
  const verdict = engine === 'interp' ? nftDoChain(prog, chain, p, regs, stack, e)
    : engine === 'slow' ? nftDoChainSlow(prog, chain, p, regs, stack, e)
    : jitDoChain(jitCode(prog, JIT_OPTIONS[engine]), chain, p, regs, stack, e);
  return { verdict, regs: regs.r32.slice(), counters: [...prog.counters], meta: p.meta.slice(), events: e.events() };
}

export function runBoth(prog: Program, chain: number, pkt: Packet, opts: RunOpts = {}, pair: [Runner, Runner] = ['interp', 'slow']): RunResult {
  if (!opts.keepState) resetState(prog, 0);
  const [an, bn] = pair;
  const s0 = prog.state.slice();
  const c0 = prog.counters.slice();
  const b = runOne(bn, prog, chain, pkt, opts);
  const sW = prog.state.slice();
  prog.state.set(s0);
  prog.counters.set(c0);
  const a = runOne(an, prog, chain, pkt, opts);
  const vs = `${an} vs ${bn}`;
  expect(a.verdict, `verdict: ${vs}`).toBe(b.verdict);
  if (opts.regs !== false) expect([...a.regs], `registers: ${vs}`).toEqual([...b.regs]);
  expect(a.counters, `counters: ${vs}`).toEqual(b.counters);
  expect([...prog.state], `expression state: ${vs}`).toEqual([...sW]);
  expect([...a.meta], `packet metadata: ${vs}`).toEqual([...b.meta]);
  expect(a.events, `events: ${vs}`).toEqual(b.events);
  return a;
}
