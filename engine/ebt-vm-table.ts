/**
 * The bridge-family TableEngine over the compiled Program and the Vm: one
 * ebtables table compiled by compiler/ebt/compile.ts (as ebtables-nft loads
 * it, builtin chains wrapped so that their policy counts), run by the
 * execution tier (vm/jit, the default) or the interpreter. Counters per
 * rule and per builtin chain policy; trace events mapped back to (chain,
 * 1-based rule number) as engine/reference/ebtables.ts records them.
 */
import type { EbtRuleset, EbtTableName } from '../core/ebt-ast.js';
import type { Count, TableEngine, TraceEvent } from './engine.js';
import { TraceKind } from './engine.js';
import { CHAIN_WORDS, CH_HOOK, F_NFTRACE, M_FLAGS, M_HOOK } from '../vm/layout.js';
import { VmEnv } from '../vm/program.js';
import type { Chooser } from '../vm/random.js';
import { Vm, type VmTier } from '../vm/interp.js';
import { NF_DROP } from '../core/netfilter.js';
import type { Packet } from '../vm/packet.js';
import type { TargetAction } from '../ext/xt.js';
import type { EbtEngineOptions } from '../ext/ebt/types.js';
import { XtState } from '../ext/xtstate.js';
import { compileEbtTable, type EbtCompiledTable } from '../compiler/ebt/compile.js';
import type { RuleInfo } from '../compiler/compile.js';
import { chainIndex, mapTrace, runDescribed } from './vm-table.js';

export interface EbtVmTableOptions extends EbtEngineOptions {
  /** Trace ring capacity in events (default 4096). */
  traceCap?: number;
  /** 'jit' (default) or 'interp'. */
  tier?: VmTier;
}

export interface EbtVmTableEngine extends TableEngine {
  readonly compiled: EbtCompiledTable;
  readonly vm: Vm;
  /** The log/nflog/arpreply actions recorded since the last call (while tracing), then cleared. */
  takeActions(): TargetAction[];
}

export function ebtVmTable(rs: EbtRuleset, table: EbtTableName, options: EbtVmTableOptions = {}): EbtVmTableEngine {
  const xt = options.xt ?? new XtState();
  const opts: EbtVmTableOptions = { ...options, xt };
  const compiled = compileEbtTable(rs, table, { engine: opts, file: opts.file, policyRules: true });
  const prog = compiled.program;
  const env = new VmEnv(opts.seed ?? 1, 0, opts.random?.state);
  const vm = new Vm(env, opts.tier ?? 'jit');
  vm.load(prog);
  const traceCap = opts.traceCap ?? 4096;
  const astTable = rs.tables.get(table)!;

  const index = chainIndex(prog, astTable.chains);

  let tracing = false;
  let events: TraceEvent[] = [];

  // ebtables has no tail-like rules: a user chain's policy rule prints as its policy
  const kindOf = (info: RuleInfo): TraceKind => (info.kind === 'policy' ? TraceKind.POLICY : TraceKind.RULE);

  return {
    table,
    compiled,
    vm,
    run(chain: string, pkt: Packet, describe?: (pkt: Packet) => string): number {
      const base = index.base.get(chain);
      if (base === undefined) throw new RangeError(`table ${table} has no builtin chain ${chain}`);
      const meta = pkt.meta;
      meta[M_HOOK] = prog.chains[base * CHAIN_WORDS + CH_HOOK]!;
      env.nowNs = xt.nowNs;
      env.xtHotdrop = false;
      if (!tracing) {
        const v = vm.run(prog, base, pkt) >>> 0;
        return env.xtHotdrop ? NF_DROP : v;
      }
      const before = meta[M_FLAGS]! & F_NFTRACE;
      const from = env.traceHead;
      meta[M_FLAGS] |= F_NFTRACE;
      // ebtables-nft: nft_trace_packet() reports a rule after it ran
      const ran = runDescribed(vm, prog, base, pkt, describe, false);
      mapTrace(env, prog, index, compiled.rules, from, kindOf, events);
      if (!before) meta[M_FLAGS] &= ~F_NFTRACE;
      return env.xtHotdrop ? NF_DROP : ran;
    },
    counters(): Map<string, { rules: Count[]; policy: Count | undefined }> {
      const out = new Map<string, { rules: Count[]; policy: Count | undefined }>();
      for (const ch of astTable.chains.values()) out.set(ch.name, { rules: [], policy: undefined });
      const c = prog.counters;
      for (const info of compiled.rules) {
        if (info.kind === 'wrap') continue;
        const count = { packets: c[2 * info.counter]!, bytes: c[2 * info.counter + 1]! };
        const slot = out.get(info.chain)!;
        if (info.kind === 'rule') slot.rules.push(count);
        else if (astTable.chains.get(info.chain)!.builtin) slot.policy = count;
      }
      return out;
    },
    zero(): void {
      prog.counters.fill(0);
    },
    setTrace(on: boolean): void {
      tracing = on;
      compiled.env.recording = on;
      if (on && env.trace === null) env.enableTrace(traceCap);
    },
    takeTrace(): TraceEvent[] {
      const t = events;
      events = [];
      return t;
    },
    takeActions(): TargetAction[] {
      const a = compiled.env.actions;
      compiled.env.actions = [];
      return a;
    },
    lastReject() {
      return undefined;
    },
    setChooser(c: Chooser | null): void {
      compiled.env.rng.chooser = c;
    },
    checkpoint(withCounters = true): () => void {
      const counters = withCounters ? prog.counters.slice() : undefined;
      const state = prog.state.slice();
      return () => {
        if (counters) prog.counters.set(counters);
        prog.state.set(state);
      };
    },
  };
}
