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
import { CHAIN_WORDS, CH_HOOK, F_NFTRACE, M_FLAGS, M_HOOK, NFT_CONTINUE, TRACE_RETURN, TRACE_RULE } from '../vm/layout.js';
import { VmEnv, chainCount, chainName } from '../vm/program.js';
import type { Chooser } from '../vm/random.js';
import { Vm, type VmTier } from '../vm/interp.js';
import { NF_DROP } from '../core/netfilter.js';
import type { Packet } from '../vm/packet.js';
import { TRACE_HOTDROP } from '../vm/expr/xtl4.js';
import type { TargetAction } from '../ext/xt.js';
import type { EbtEngineOptions } from '../ext/ebt/types.js';
import { XtState } from '../ext/xtstate.js';
import { compileEbtTable, type EbtCompiledTable } from '../compiler/ebt/compile.js';

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

  const baseIndex = new Map<string, number>();
  const userChain = new Set<number>();
  const ruleCount = new Map<string, number>();
  for (const ch of astTable.chains.values()) ruleCount.set(ch.name, ch.rules.length);
  for (let c = 0; c < chainCount(prog); c++) {
    const name = chainName(prog, c);
    if (prog.chains[c * CHAIN_WORDS + CH_HOOK]! >= 0) baseIndex.set(name, c);
    else if (!astTable.chains.get(name)?.builtin && !name.endsWith('\0body')) userChain.add(c);
  }

  let tracing = false;
  let events: TraceEvent[] = [];

  function mapTrace(from: number): void {
    const raw = env.events();
    const start = Math.max(0, raw.length - (env.traceHead - from));
    let hotdropRule = -1;
    for (let i = start; i < raw.length; i++) {
      const e = raw[i]!;
      if (e.type === TRACE_HOTDROP) hotdropRule = e.rule;
      else if (e.type === TRACE_RULE) {
        if (e.rule === hotdropRule) continue;
        const info = compiled.rules[e.rule]!;
        if (info.kind === 'wrap') continue;
        events.push({ kind: info.kind === 'policy' ? TraceKind.POLICY : TraceKind.RULE, chain: info.chain, rule: info.num });
      } else if (e.type === TRACE_RETURN && e.verdict === NFT_CONTINUE && userChain.has(e.chain)) {
        const name = chainName(prog, e.chain);
        events.push({ kind: TraceKind.RETURN, chain: name, rule: (ruleCount.get(name) ?? 0) + 1 });
      }
    }
  }

  return {
    table,
    compiled,
    vm,
    run(chain: string, pkt: Packet): number {
      const base = baseIndex.get(chain);
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
      const ran = vm.run(prog, base, pkt) >>> 0;
      mapTrace(from);
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
    checkpoint(): () => void {
      const counters = prog.counters.slice();
      const state = prog.state.slice();
      return () => {
        prog.counters.set(counters);
        prog.state.set(state);
      };
    },
  };
}
