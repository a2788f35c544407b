/**
 * Differential runs of one ruleset on every engine nfvm has: the x_tables
 * evaluator (engine/reference, which defines the meaning), and the VM on
 * its execution tier (vm/jit, the default) and on its interpreter, each
 * with the optimized and the straight program. A packet whose verdict,
 * mark, ct mark or REJECT differs between them, or whose run leaves other
 * counters, is a divergence: reported with the packet shrunk (as a packet
 * spec) and, for a generated ruleset, the ruleset cut down to the rules
 * that still show it.
 */
import type { Ruleset, TableName } from '../core/ast.js';
import { TABLE_CHAINS } from '../core/ast.js';
import { parseRestore } from '../compiler/parse/restore.js';
import { referenceTable } from '../engine/reference/index.js';
import { vmTable } from '../engine/vm-table.js';
import type { EngineOptions, TableEngine } from '../engine/engine.js';
import type { Backend } from '../core/netfilter.js';
import { M_CT_MARK, M_HOOK, M_MARK, M_NFPROTO } from '../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../core/netfilter.js';
import { BUILTIN_HOOK } from '../core/ast.js';
import { Packet } from '../vm/packet.js';
import { shrinkPacket, specText, toPacket, type FuzzPacket } from './packet.js';

/** The engines compared, reference first. */
export const ENGINE_NAMES = ['reference', 'vm (jit, optimized)', 'vm (jit, straight)', 'vm (interp, optimized)', 'vm (interp, straight)'] as const;

export interface TablePacket extends FuzzPacket {
  /** The builtin chain it runs through. */
  chain: string;
}

export interface Divergence {
  table: TableName;
  chain: string;
  /** The packet spec (shrunk). */
  packet: string;
  /** What each engine made of it: `verdict ACCEPT mark 0x0 ...`, by engine name. */
  results: Record<string, string>;
  /** For a generated ruleset: the smallest ruleset found that still shows it. */
  ruleset?: string;
}

function sameInts(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The engines, reference first, with the names of ENGINE_NAMES. When the
 * optimizer left the program as it was (no run of rules long enough for a
 * classifier), the optimized and the straight programs are one bytecode:
 * it runs once on each tier (the jit's optimized, the interpreter's
 * straight), and the two names it stands for are left out.
 */
function makeEngines(rs: Ruleset, table: TableName, opts: EngineOptions & { backend?: Backend }): { names: string[]; engines: TableEngine[] } {
  const jit1 = vmTable(rs, table, { ...opts, tier: 'jit', optimize: 1 });
  const int0 = vmTable(rs, table, { ...opts, tier: 'interp', optimize: 0 });
  const a = jit1.compiled.program;
  const b = int0.compiled.program;
  const ref = referenceTable(rs, table, opts);
  if (sameInts(a.code, b.code) && sameInts(a.pool, b.pool)) return { names: [ENGINE_NAMES[0], ENGINE_NAMES[1], ENGINE_NAMES[4]], engines: [ref, jit1, int0] };
  return {
    names: [...ENGINE_NAMES],
    engines: [ref, jit1, vmTable(rs, table, { ...opts, tier: 'jit', optimize: 0 }), vmTable(rs, table, { ...opts, tier: 'interp', optimize: 1 }), int0],
  };
}

const VERDICTS = ['DROP', 'ACCEPT', 'STOLEN', 'QUEUE', 'REPEAT', 'STOP'];

/** The packet as it enters the chain's hook (built once, copied for each engine). */
function template(p: TablePacket, into: Packet): Packet {
  toPacket(p, into);
  into.meta[M_NFPROTO] = p.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
  into.meta[M_HOOK] = BUILTIN_HOOK[p.chain]!;
  return into;
}

function observe(e: TableEngine, chain: string, tmpl: Packet, pkt: Packet): string {
  pkt.data.set(tmpl.data.subarray(0, tmpl.len));
  pkt.len = tmpl.len;
  pkt.meta.set(tmpl.meta);
  const v = e.run(chain, pkt);
  const rej = e.lastReject();
  const vn = VERDICTS[v & 0xffff] ?? String(v & 0xffff);
  return `verdict ${vn}${v >>> 16 ? ` queue ${v >>> 16}` : ''} mark 0x${(pkt.meta[M_MARK]! >>> 0).toString(16)} ctmark 0x${(pkt.meta[M_CT_MARK]! >>> 0).toString(16)}${rej ? ` rejected by ${rej.chain}:${rej.rule}` : ''}`;
}

function counterKey(e: TableEngine): string {
  const parts: string[] = [];
  for (const [chain, c] of e.counters()) parts.push(`${chain}:${c.rules.map((x) => x.packets).join(',')}/${c.policy?.packets ?? '-'}`);
  return parts.join(' ');
}

/** The results of a packet sequence on fresh engines: per engine, its last packet's observation and its counters. */
function runFresh(rs: Ruleset, table: TableName, opts: EngineOptions, seq: readonly TablePacket[]): { names: string[]; results: string[] } {
  const { names, engines } = makeEngines(rs, table, opts);
  const pkt = new Packet(4096);
  const tmpls = seq.map((p) => template(p, new Packet(4096)));
  const results = engines.map((e) => {
    let last = '';
    seq.forEach((p, i) => (last = observe(e, p.chain, tmpls[i]!, pkt)));
    return `${last}; counters ${counterKey(e)}`;
  });
  return { names, results };
}

const differs = (rs: readonly string[]) => rs.some((x) => x !== rs[0]);

export interface TableFuzzResult {
  divergences: Divergence[];
  /** Packets run (each through every engine). */
  packets: number;
  /** Per chain: how many packets each rule matched in the reference engine. */
  hits: Map<string, number[]>;
}

/**
 * Runs `packets` through every engine of `table`. The first divergence of
 * each (chain) is reported, shrunk; `generated` is the ruleset's text
 * when it was generated (then the ruleset is cut down too).
 */
export function fuzzTable(rs: Ruleset, table: TableName, opts: EngineOptions, packets: readonly TablePacket[], generated?: string, deadline = Infinity, progress?: (done: number) => void): TableFuzzResult {
  const { engines } = makeEngines(rs, table, opts);
  const pkt = new Packet(4096);
  const tmpl = new Packet(4096);
  const divergences: Divergence[] = [];
  const seen = new Set<string>();
  let bad: number | undefined;
  let ran = 0;
  for (let i = 0; i < packets.length; i++) {
    if ((i & 1023) === 1023) {
      if (Date.now() > deadline) break;
      progress?.(i);
    }
    ran++;
    const p = packets[i]!;
    template(p, tmpl);
    const ref = observe(engines[0]!, p.chain, tmpl, pkt);
    for (let k = 1; k < engines.length; k++) {
      if (observe(engines[k]!, p.chain, tmpl, pkt) !== ref && bad === undefined) bad = i;
    }
  }
  if (bad === undefined && differs(engines.map(counterKey))) {
    // every packet's own results agreed, the counters did not: the first prefix of the run whose counters differ ends with the packet
    const counters = (k: number) => differs(runFresh(rs, table, opts, packets.slice(0, k)).results.map((r) => r.slice(r.indexOf('; counters'))));
    let lo = 1;
    let hi = ran;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (counters(mid)) hi = mid;
      else lo = mid + 1;
    }
    bad = lo - 1;
  }
  if (bad !== undefined) {
    const d = explain(rs, table, opts, packets.slice(0, bad + 1), generated);
    if (!seen.has(d.chain)) divergences.push(d);
    seen.add(d.chain);
  }
  const hits = new Map<string, number[]>();
  for (const [chain, c] of engines[0]!.counters()) hits.set(chain, c.rules.map((x) => x.packets));
  return { divergences, packets: ran, hits };
}

/** A divergence made small: the packet alone when it shows it alone (shrunk), and the generated ruleset cut down. */
function explain(rs: Ruleset, table: TableName, opts: EngineOptions, seq: readonly TablePacket[], generated: string | undefined): Divergence {
  const last = seq.at(-1)!;
  const prefix = seq.slice(0, -1);
  // the packet alone on fresh engines, else after the packets before it (match state: nth, limit, ...)
  const prefixNeeded = !differs(runFresh(rs, table, opts, [last]).results);
  const failsWith = (r: Ruleset, q: TablePacket) => differs(runFresh(r, table, opts, prefixNeeded ? [...prefix, q] : [q]).results);
  const pkt = { ...shrinkPacket(last, (q) => failsWith(rs, { ...q, chain: last.chain } as TablePacket), 200), chain: last.chain } as TablePacket;
  let text: string | undefined;
  let finalRs = rs;
  if (generated !== undefined) {
    // drop rules while the divergence stays
    let lines = generated.split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!lines[i]!.startsWith('-A ')) continue;
      const cand = [...lines.slice(0, i), ...lines.slice(i + 1)];
      let r: Ruleset;
      try {
        r = parseRestore(cand.join('\n'));
      } catch {
        continue;
      }
      try {
        if (failsWith(r, pkt)) {
          lines = cand;
          finalRs = r;
        }
      } catch {
        // a ruleset the engines refuse: keep the rule
      }
    }
    text = lines.join('\n');
  }
  const results: Record<string, string> = {};
  const fin = runFresh(finalRs, table, opts, prefixNeeded ? [...prefix, pkt] : [pkt]);
  fin.results.forEach((r, i) => (results[fin.names[i]!] = r));
  const spec = specText(pkt) + (prefixNeeded ? ` (after ${prefix.length} earlier packet${prefix.length === 1 ? '' : 's'})` : '');
  return { table, chain: pkt.chain, packet: spec, results, ...(text !== undefined ? { ruleset: text } : {}) };
}

/** Builtin chains of a table. */
export function tableChains(table: TableName): readonly string[] {
  return TABLE_CHAINS[table];
}
