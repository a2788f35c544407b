/**
 * The TableEngine (engine/engine.ts) over the compiled Program and the Vm: one
 * table of a ruleset, compiled with compiler/compile.ts (`policyRules`, so
 * builtin chains count their policy as x_tables' underflow entry does),
 * run by the execution tier (vm/jit, the default) or the interpreter, with counters per rule and policy and trace
 * events mapped back to (chain, 1-based rule number) as ipt_do_table()'s
 * TRACE reports them (an unconditional standard-verdict rule and a chain's
 * tail print as policy/return).
 *
 * Tracing runs the traced packets through the slow interpreter (vm/interp-slow.ts): the
 * packet's nf_trace flag is forced on for the run and restored afterwards
 * unless a TRACE target set it.
 */
import type { Count, TableEngine, TraceEvent } from './engine.js';
import type { EngineOptions } from '../ext/types.js';
import { TraceKind } from './engine.js';
import {
  CHAIN_WORDS, CH_HOOK, F_NFTRACE, F_XT_AH, M_FLAGS, M_FRAGOFF, M_HOOK, M_L4PROTO, M_THOFF, M_XT_FRAGOFF, M_XT_L4PROTO, M_XT_THOFF,
  NFT_CONTINUE, TRACE_NFTRACE, TRACE_RETURN, TRACE_RULE,
} from '../vm/layout.js';
import { VmEnv, chainCount, chainName, prandomU32, type Program } from '../vm/program.js';
import type { Choices, Chooser } from '../vm/random.js';
import { findMatch } from '../ext/registry.js';
import { XtState } from '../ext/xtstate.js';
import { Vm, type VmTier } from '../vm/interp.js';
import { NF_DROP } from '../core/netfilter.js';
import type { Packet } from '../vm/packet.js';
import { TRACE_HOTDROP } from '../vm/expr/xtl4.js';
import type { Ruleset, TableName } from '../core/ast.js';
import { compileTable, type CompileOptions, type CompiledTable, type RuleInfo, type RuleInfos } from '../compiler/compile.js';

export interface VmTableOptions extends EngineOptions {
  /** 'legacy' (default) or 'nft'. */
  backend?: CompileOptions['backend'];
  /** File name for compile errors. */
  file?: string;
  /** Trace ring capacity in events (default 4096). */
  traceCap?: number;
  /** 1 (default): classifier prefilters over long runs of simple rules (compiler/optimize); 0: straight lowering. */
  optimize?: 0 | 1;
  /** Rules per classifier block (compiler/compile.ts CompileOptions). */
  classifierBlock?: number;
  /** 'jit' (default): the execution tier (vm/jit), code generated per chain at load; 'interp': the interpreter (vm/interp.ts). */
  tier?: VmTier;
}

export interface VmTableEngine extends TableEngine {
  readonly compiled: CompiledTable;
  readonly vm: Vm;
}

export function vmTable(rs: Ruleset, table: TableName, options: VmTableOptions = {}): VmTableEngine {
  const xt = options.xt ?? new XtState();
  const opts: VmTableOptions = { ...options, xt };
  const compiled = compileTable(rs, table, { backend: opts.backend ?? 'legacy', engine: opts, file: opts.file, policyRules: true, optimize: opts.optimize ?? 1, classifierBlock: opts.classifierBlock });
  const prog = compiled.program;
  const env = new VmEnv(opts.seed ?? 1, 0, opts.random?.state);
  env.ct = opts.ct ?? null;
  env.ipsets = opts.ipsets ?? null;
  env.fib = opts.fib ?? null;
  const vm = new Vm(env, opts.tier ?? 'jit');
  vm.load(prog);
  const traceCap = opts.traceCap ?? 4096;
  const astTable = rs.tables.get(table)!;

  const index = chainIndex(prog, astTable.chains);

  let tracing = false;
  let events: TraceEvent[] = [];

  // The outcomes of each rule's random draws, in draw order (MatchModule.random), built on first use.
  const drawChoices = new Map<number, (Choices | undefined)[]>();
  const choicesOf = (ri: number): (Choices | undefined)[] => {
    let c = drawChoices.get(ri);
    if (!c) {
      const info = compiled.rules.at(ri);
      const r = info ? astTable.chains.get(info.chain)?.rules[info.num - 1] : undefined;
      c = [];
      for (const m of r?.matches ?? []) {
        const mod = m.unknown ? undefined : findMatch(m.name, rs.family);
        const ch = mod?.random?.(m.data);
        if (ch) c.push(ch);
      }
      drawChoices.set(ri, c);
    }
    return c;
  };
  let lastDrawRule = -1;
  let drawOrdinal = 0;

  // an unconditional standard-verdict rule prints as the chain's tail (policy in a builtin chain, return in a user chain)
  const kindOf = (info: RuleInfo): TraceKind =>
    info.tailLike ? (astTable.chains.get(info.chain)?.builtin ? TraceKind.POLICY : TraceKind.RETURN) : TraceKind.RULE;

  // Legacy ip6tables: ip6_packet_match() and the matches after it see the packet past an AH
  // header (ipv6_find_hdr without IP6_FH_F_AUTH); the nf_tables pktinfo the VM reads stops at it.
  const legacy = (opts.backend ?? 'legacy') === 'legacy';
  const xtView = rs.family === 'ip6' && legacy;
  let inXtView = false;
  const runXtView = (chain: string, pkt: Packet, describe?: (pkt: Packet) => string): number => {
    const m = pkt.meta;
    const p = m[M_L4PROTO]!;
    const t = m[M_THOFF]!;
    const f = m[M_FRAGOFF]!;
    m[M_L4PROTO] = m[M_XT_L4PROTO]!;
    m[M_THOFF] = m[M_XT_THOFF]!;
    m[M_FRAGOFF] = m[M_XT_FRAGOFF]!;
    inXtView = true;
    try {
      return engine.run(chain, pkt, describe);
    } finally {
      inXtView = false;
      m[M_L4PROTO] = p;
      m[M_THOFF] = t;
      m[M_FRAGOFF] = f;
    }
  };

  const engine: VmTableEngine = {
    table,
    compiled,
    vm,
    run(chain: string, pkt: Packet, describe?: (pkt: Packet) => string): number {
      const base = index.base.get(chain);
      if (base === undefined) throw new RangeError(`table ${table} has no builtin chain ${chain}`);
      const meta = pkt.meta;
      meta[M_HOOK] = prog.chains[base * CHAIN_WORDS + CH_HOOK]!;
      env.rejectRule = -1;
      env.nowNs = xt.nowNs;
      env.xtHotdrop = false;
      lastDrawRule = -1;
      // a compat match's hotdrop after matching (XT_MATCH_HOTDROP) ends the run in NF_DROP whatever the verdict
      if (xtView && !inXtView && (meta[M_FLAGS]! & F_XT_AH) !== 0) return runXtView(chain, pkt, describe);
      if (!tracing) {
        const v = vm.run(prog, base, pkt) >>> 0;
        return env.xtHotdrop ? NF_DROP : v;
      }
      const before = meta[M_FLAGS]! & F_NFTRACE;
      const from = env.traceHead;
      meta[M_FLAGS] |= F_NFTRACE;
      const ran = runDescribed(vm, prog, base, pkt, describe, legacy);
      const v = env.xtHotdrop ? NF_DROP : ran;
      mapTrace(env, prog, index, compiled.rules, from, kindOf, events);
      if (!before) {
        let set = false;
        for (const e of env.events().slice(-(env.traceHead - from))) if (e.type === TRACE_NFTRACE) set = e.verdict !== 0;
        if (!set) meta[M_FLAGS] &= ~F_NFTRACE;
      }
      return v;
    },
    counters(): Map<string, { rules: Count[]; policy: Count | undefined }> {
      const out = new Map<string, { rules: Count[]; policy: Count | undefined }>();
      for (const ch of astTable.chains.values()) out.set(ch.name, { rules: [], policy: undefined });
      const c = prog.counters;
      for (const info of compiled.rules) {
        if (info.kind === 'wrap') continue;
        const count = { packets: c[2 * info.counter]!, bytes: c[2 * info.counter + 1]! };
        const slot = out.get(info.chain)!;
        if (info.kind === 'policy') slot.policy = count;
        else slot.rules.push(count);
      }
      return out;
    },
    zero(): void {
      prog.counters.fill(0);
    },
    setTrace(on: boolean): void {
      tracing = on;
      if (on && env.trace === null) env.enableTrace(traceCap);
    },
    takeTrace(): TraceEvent[] {
      const t = events;
      events = [];
      return t;
    },
    lastReject() {
      const info = env.rejectRule < 0 ? undefined : compiled.rules.at(env.rejectRule);
      return info ? { chain: info.chain, rule: info.num } : undefined;
    },
    setChooser(c: Chooser | null): void {
      if (opts.random) opts.random.chooser = c;
      env.drawAt = c === null ? null : (ri: number) => {
        drawOrdinal = ri === lastDrawRule ? drawOrdinal + 1 : 0;
        lastDrawRule = ri;
        return c.draw(choicesOf(ri)[drawOrdinal], () => prandomU32(env));
      };
    },
    checkpoint(withCounters = true): () => void {
      const counters = withCounters ? prog.counters.slice() : undefined;
      const state = prog.state.slice();
      const rng = env.rng[0]!;
      return () => {
        if (counters) prog.counters.set(counters);
        prog.state.set(state);
        env.rng[0] = rng;
      };
    },
  };
  return engine;
}

/** A compiled table's chains as the engines look them up. */
export interface ChainIndex {
  /** Builtin chain name → its base chain's index. */
  base: Map<string, number>;
  /** A user chain's index (a fall-off-the-end return traces there). */
  isUser(chain: number): boolean;
  /** Rules of a chain, by name (a user chain's implicit return is rule count + 1). */
  ruleCount(name: string): number;
}

/**
 * The index of a program's chains. Only the base chains are listed at load (a handful); what
 * a trace asks of the others is looked up when it asks: a kube-proxy table has hundreds of
 * thousands of chains and a trace visits a few.
 */
export function chainIndex(prog: Program, chains: ReadonlyMap<string, { readonly name: string; readonly rules: readonly unknown[]; readonly builtin: boolean }>): ChainIndex {
  const base = new Map<string, number>();
  for (let c = 0; c < chainCount(prog); c++) {
    if (prog.chains[c * CHAIN_WORDS + CH_HOOK]! >= 0) base.set(chainName(prog, c), c);
  }
  return {
    base,
    isUser(c: number): boolean {
      if (c < 0 || c >= chainCount(prog) || prog.chains[c * CHAIN_WORDS + CH_HOOK]! >= 0) return false;
      const name = chainName(prog, c);
      return !chains.get(name)?.builtin && !name.endsWith('\0body');
    },
    ruleCount: (name: string): number => chains.get(name)?.rules.length ?? 0,
  };
}

/**
 * Appends to `out` the VM trace events recorded since trace head `from`, as
 * (chain, 1-based rule number, the packet words kept for it): a rule a compat match hotdropped is not
 * reported, the builtin chains' wrap rules are skipped, `kindOf` says how a
 * rule prints, and a user chain run off its end prints as its return. The
 * packet words of the run (env.traceNotes) are released afterwards.
 */
export function mapTrace(env: VmEnv, prog: Program, index: ChainIndex, rules: RuleInfos, from: number, kindOf: (info: RuleInfo) => TraceKind, out: TraceEvent[]): void {
  const raw = env.events();
  const start = Math.max(0, raw.length - (env.traceHead - from));
  let hotdropRule = -1;
  for (let i = start; i < raw.length; i++) {
    const e = raw[i]!;
    if (e.type === TRACE_HOTDROP) hotdropRule = e.rule;
    else if (e.type === TRACE_RULE) {
      if (e.rule === hotdropRule) continue;
      const info = rules.at(e.rule)!;
      if (info.kind === 'wrap') continue;
      out.push(described({ kind: kindOf(info), chain: info.chain, rule: info.num }, env, e.arg));
    } else if (e.type === TRACE_RETURN && e.verdict === NFT_CONTINUE && index.isUser(e.chain)) {
      const name = chainName(prog, e.chain);
      out.push(described({ kind: TraceKind.RETURN, chain: name, rule: index.ruleCount(name) + 1 }, env, e.arg));
    }
  }
  env.traceNotes.length = 0;
}

/**
 * A traced run of base chain `base` with `describe` wording the packet of
 * each event, at a rule's counter (`atCounter`: x_tables) or after the rule
 * (nf_tables); the words stay in the VM's env.traceNotes for mapTrace.
 */
export function runDescribed(vm: Vm, prog: Program, base: number, pkt: Packet, describe: ((pkt: Packet) => string) | undefined, atCounter: boolean): number {
  const env = vm.env;
  env.traceNotes.length = 0;
  env.traceDescribe = describe ?? null;
  env.traceAtCounter = atCounter;
  try {
    return vm.run(prog, base, pkt) >>> 0;
  } finally {
    env.traceDescribe = null;
  }
}

/** The event with the packet words the slow interpreter kept for it (EV_ARG = their number + 1), when it did. */
function described(ev: TraceEvent, env: VmEnv, arg: number): TraceEvent {
  const words = arg > 0 ? env.traceNotes[arg - 1] : undefined;
  if (words !== undefined) ev.packet = words;
  return ev;
}
