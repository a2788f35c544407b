/**
 * The search of `nfvm diff`: two models of one node, differing in their
 * ruleset of one family (IPv4 or IPv6), fed the same packets from the same state; a packet (or a
 * packet and its reply) whose fate differs between them is a difference.
 *
 * What is compared, per packet: the fate (delivered, forwarded, sent,
 * dropped, rejected, queued; with the rule or policy that decided, by its
 * text, not its number), the NAT rewrites, the mark the packet ends with,
 * the output interface, and the rules whose counters it touched (each
 * rule it matched, by text). Random decisions (`statistic --mode random`)
 * are enumerated (hooks/branches.ts): two outcomes with different
 * probabilities are a difference too.
 *
 * The packets, in order: those aimed at the rules that differ (the rules
 * in one ruleset and not the other, and those a chain orders differently),
 * reached through the jumps that lead to their chain, at each edge of
 * their addresses and ports and just outside it, each alone and two of
 * one chain at once (a swap differs only where both match); then packets drawn from
 * both rulesets' constants (fuzz/constants.ts) and random ones; each new
 * TCP/UDP packet aimed at a rule also with its reply (state matters).
 */
import type { Family, Ruleset, TableName } from '../core/ast.js';
import { exploreBranches } from '../hooks/branches.js';
import type { NodeModel } from '../hooks/node.js';
import { parseSpec } from '../hooks/input/spec.js';
import type { Fate, PathResult, PathStep } from '../hooks/path/fate.js';
import { M_MARK } from '../vm/layout.js';
import type { Packet } from '../vm/packet.js';
import { constantsOfTexts, constantsSummary, type Constants } from '../fuzz/constants.js';
import { drawPacket, specText } from '../fuzz/packet.js';
import { seededRand } from '../fuzz/rand.js';
import { disjoint, shapeOf } from '../fuzz/shape.js';
import { aimedPackets, callersOf, chainTexts, nodeView, pathsTo, repeated, repeatsFor, type Caller, type ChainTexts } from '../fuzz/aim.js';
import { replyTo, specInput } from './model.js';

/** What one side made of a unit on one branch of its random decisions. */
export interface SideRun {
  probability: number;
  results: PathResult[];
  /** Each packet's mark after its path. */
  marks: number[];
  /** Comparable key of each aspect. */
  aspects: Aspects;
}

export interface Aspects {
  fate: string;
  nat: string;
  mark: string;
  oif: string;
  counters: string;
}

export const ASPECT_NAMES: Readonly<Record<keyof Aspects, string>> = { fate: 'fate', nat: 'NAT result', mark: 'mark', oif: 'output interface', counters: 'counters touched' };

export interface Difference {
  /** The packet specs, as trace takes them (`reply` for the answer to the one before). */
  packets: string[];
  /** The aspects that differ (ASPECT_NAMES values). */
  differs: string[];
  old: SideRun[];
  new: SideRun[];
}

export interface Searched {
  /** Units aimed at the rules that differ (and their edges). */
  directed: number;
  /** Units drawn from the constants of both rulesets and at random. */
  drawn: number;
  /** Units that were a packet and its reply. */
  flows: number;
  /** Rules that differ between the rulesets (in one and not the other, or ordered differently). */
  changedRules: number;
  constants: string;
}

export interface DiffResult {
  differences: Difference[];
  searched: Searched;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The rules of `a` not in `b` (as a multiset), and the rules of chains both have in another order. */
function changedRules(a: ChainTexts, b: ChainTexts): { key: string; index: number; text: string }[] {
  const out: { key: string; index: number; text: string }[] = [];
  for (const [key, rules] of a) {
    const other = b.get(key) ?? [];
    if (sameRules(rules, other)) continue;
    const count = new Map<string, number>();
    for (const t of other) count.set(t, (count.get(t) ?? 0) + 1);
    const common: string[] = [];
    rules.forEach((t, i) => {
      const n = count.get(t) ?? 0;
      if (n > 0) {
        count.set(t, n - 1);
        common.push(t);
      } else out.push({ key, index: i, text: t });
    });
    // the rules both have, in another order: those between the first and the last place the orders part
    const inCommon = new Map<string, number>();
    for (const t of common) inCommon.set(t, (inCommon.get(t) ?? 0) + 1);
    const otherCommon = other.filter((t) => {
      const c = inCommon.get(t) ?? 0;
      if (c > 0) inCommon.set(t, c - 1);
      return c > 0;
    });
    let lo = 0;
    while (lo < common.length && common[lo] === otherCommon[lo]) lo++;
    let hi = common.length - 1;
    while (hi >= lo && common[hi] === otherCommon[hi]) hi--;
    if (hi >= lo) {
      const index = new Map<string, number>();
      rules.forEach((t, i) => index.has(t) || index.set(t, i));
      for (let j = lo; j <= hi; j++) out.push({ key, index: index.get(common[j]!)!, text: common[j]! });
    }
  }
  return out;
}

/**
 * Whether the two rulesets are equivalent by construction: the same
 * canonical text, or chains holding the same rules where every pair of
 * rules ordered differently is disjoint (no packet matches both). The
 * reason, or undefined.
 */
export function equivalentByConstruction(a: Ruleset | undefined, b: Ruleset | undefined, ta = chainTexts(a), tb = chainTexts(b)): string | undefined {
  if (!a || !b) return a === b ? 'neither has a ruleset of the family compared' : undefined;
  if (ta.size !== tb.size) return undefined;
  const policies = (rs: Ruleset) => [...rs.tables].map(([n, t]) => [...t.chains.values()].map((c) => `${n}:${c.name}:${c.policy ?? '-'}`).sort().join(' ')).sort().join('\n');
  if (policies(a) !== policies(b)) return undefined;
  // every chain with the same rules in the same order: what iptables-save prints is the same
  let same = true;
  for (const [key, ra] of ta) {
    const rb = tb.get(key);
    if (!rb || !sameRules(ra, rb)) {
      same = false;
      break;
    }
  }
  if (same) return 'the same ruleset as iptables-save prints it (canonical text)';
  let reordered = 0;
  for (const [key, ra] of ta) {
    const rb = tb.get(key);
    if (!rb || rb.length !== ra.length) return undefined;
    if (sameRules(ra, rb)) continue;
    if ([...ra].sort().join('\n') !== [...rb].sort().join('\n')) return undefined;
    if (ra.length > 2000) return undefined;
    const [table, chain] = key.split('\0') as [TableName, string];
    const shapes = ra.map((t, i) => shapeOf(table, chain, i + 1, t.slice(`-A ${chain}`.length), a.family));
    const posB = new Map<string, number[]>();
    rb.forEach((t, i) => posB.set(t, [...(posB.get(t) ?? []), i]));
    const where = ra.map((t) => posB.get(t)!.shift()!);
    for (let i = 0; i < ra.length; i++) {
      for (let j = i + 1; j < ra.length; j++) {
        if (where[i]! > where[j]! && ra[i] !== ra[j] && !disjoint(shapes[i]!, shapes[j]!)) return undefined;
      }
    }
    reordered++;
  }
  return `the same rules; ${reordered} chain${reordered === 1 ? '' : 's'} order${reordered === 1 ? 's' : ''} them differently where no packet matches two rules whose order changed`;
}

/** A side's run of a unit, on every branch of its random decisions. */
function runUnit(m: NodeModel, restore: () => void, unit: readonly string[], ruleText: (table: string, chain: string, num: number) => string): SideRun[] {
  const extra = new WeakMap<PathResult, { results: PathResult[]; marks: number[] }>();
  const x = exploreBranches((chooser) => {
    restore();
    m.setChooser(chooser);
    const results: PathResult[] = [];
    const marks: number[] = [];
    try {
      let prev: { pkt: Packet; fate: Fate } | undefined;
      unit.forEach((text, i) => {
        const spec = text === 'reply' ? replyTo(prev!, i) : text;
        const parsed = parseSpec(spec);
        const { pkt, iif, ct } = specInput(m, parsed);
        const input = { now: i * 1e6, ct };
        const r = iif === '' ? m.send(pkt, parsed.oif, input) : m.receive(pkt, iif, input);
        results.push(r);
        marks.push(pkt.meta[M_MARK]! >>> 0);
        prev = { pkt, fate: r.fate };
      });
    } finally {
      m.setChooser(null);
    }
    // one result standing for the unit: every packet's steps, so that branches group by all of them
    const all: PathResult = { fate: results.at(-1)!.fate, steps: results.flatMap((r) => r.steps), answers: results.flatMap((r) => r.answers) };
    extra.set(all, { results, marks });
    return all;
  }, 256);
  return x.outcomes.map((o) => {
    const e = extra.get(o.result)!;
    return { probability: o.probability, results: e.results, marks: e.marks, aspects: aspectsOf(e.results, e.marks, ruleText) };
  });
}

function fateKey(f: Fate, ruleText: (table: string, chain: string, num: number) => string): string {
  const by = 'by' in f && f.by ? (f.by.policy ? `${f.by.table}:${f.by.chain} policy ${f.by.policy}` : f.by.rule > 0 ? `${f.by.table}: ${ruleText(f.by.table, f.by.chain, f.by.rule)}` : `${f.by.table}:${f.by.hook} ${f.by.entry}`) : '';
  switch (f.kind) {
    case 'delivered': return `delivered ${f.addr} ${f.cast} ${f.socket ?? ''}`;
    case 'forwarded': return `forwarded ${f.via ?? ''} ${f.dst}`;
    case 'sent': return `sent ${f.via ?? ''} ${f.dst} ${f.cast}`;
    case 'dropped': return `dropped ${f.reason} ${by}`;
    case 'rejected': return `rejected ${f.with} ${by}`;
    case 'queued': return `queued ${f.queue} ${by}`;
    case 'stolen': return `stolen ${by}`;
    case 'bridged': return `bridged ${f.bridge} ${f.ports.map((p) => `${p.port}:${p.fate ? fateKey(p.fate, ruleText) : 'sent'}`).join(',')} ${f.local ? fateKey(f.local, ruleText) : ''}`;
  }
}

function touched(steps: readonly PathStep[], out: string[]): void {
  for (const s of steps) if (s.kind === 'trace' && s.type === 'rule') out.push(`${s.table} ${s.rule}`);
}

function aspectsOf(results: readonly PathResult[], marks: readonly number[], ruleText: (table: string, chain: string, num: number) => string): Aspects {
  const counters: string[] = [];
  for (const r of results) {
    touched(r.steps, counters);
    for (const a of r.answers) touched(a.steps, counters);
  }
  return {
    fate: results.map((r) => `${fateKey(r.fate, ruleText)}; answers ${r.answers.map((a) => `${a.kind}:${a.fate.kind}`).join(',')}`).join(' | '),
    nat: results.map((r) => (r.fate.nat ?? []).join(', ')).join(' | '),
    mark: marks.map((m) => `0x${m.toString(16)}`).join(' | '),
    oif: results.map((r) => (r.fate.kind === 'forwarded' || r.fate.kind === 'sent' || r.fate.kind === 'delivered' ? r.fate.dev : '')).join(' | '),
    counters: counters.sort().join('\n'),
  };
}

/** The aspects in which two sides' outcomes differ ([] when they are the same distribution). */
function compareSides(a: readonly SideRun[], b: readonly SideRun[]): string[] {
  const dist = (s: readonly SideRun[]) => {
    const m = new Map<string, number>();
    for (const r of s) {
      const k = JSON.stringify(r.aspects);
      m.set(k, (m.get(k) ?? 0) + r.probability);
    }
    return m;
  };
  const da = dist(a);
  const db = dist(b);
  let same = da.size === db.size;
  if (same) for (const [k, p] of da) if (Math.abs((db.get(k) ?? -1) - p) > 1e-9) same = false;
  if (same) return [];
  const out: string[] = [];
  const names = Object.keys(ASPECT_NAMES) as (keyof Aspects)[];
  for (const n of names) {
    const va = new Map<string, number>();
    const vb = new Map<string, number>();
    for (const r of a) va.set(r.aspects[n], (va.get(r.aspects[n]) ?? 0) + r.probability);
    for (const r of b) vb.set(r.aspects[n], (vb.get(r.aspects[n]) ?? 0) + r.probability);
    let d = va.size !== vb.size;
    for (const [k, p] of va) if (Math.abs((vb.get(k) ?? -1) - p) > 1e-9) d = true;
    if (d) out.push(ASPECT_NAMES[n]);
  }
  return out.length ? out : ['the outcomes together'];
}

export interface DiffOptions {
  /** Packets drawn from the constants and at random. */
  packets: number;
  seed: number;
  /** Stop after this many differences. */
  maxDifferences: number;
  progress?: (done: number, total: number, found: number) => void;
  /** The family whose rulesets differ (default ip): its ruleset, addresses and packets. */
  family?: Family;
}

/**
 * Searches for packets whose fate differs between `a` and `b` (models of
 * one node, traced: the counters touched are read from the TRACE steps).
 */
export function searchDifferences(a: NodeModel, b: NodeModel, o: DiffOptions, ta = chainTexts(a.rs4), tb = chainTexts(b.rs4)): DiffResult {
  // the counters touched are read from the trace, not the counters, so those are not restored
  const ra = a.checkpoint(false);
  const rb = b.checkpoint(false);
  if (!ra || !rb) throw new Error('diff needs models that can save their state (the VM engines)');
  const textOf = (t: ChainTexts) => (table: string, chain: string, num: number) => t.get(`${table}\0${chain}`)?.[num - 1] ?? `${chain} rule ${num}`;
  const family = o.family ?? 'ip';
  const v6 = family === 'ip6';
  const view = nodeView(a.node);
  // the chains both share (fuzz/delta.ts) once
  const allRules = [...new Set([...ta.values(), ...tb.values()])].flat();
  const k: Constants = constantsOfTexts(allRules, [a.node.ipsets?.text ?? '']);
  // on big rulesets the drawn packets run untraced (the VM's fast path; traced runs take the slow interpreter): fate, NAT, mark and interface compared, and a difference traced again for its report
  const traceDrawn = allRules.length <= 40000;
  const units: { packets: string[]; directed: boolean }[] = [];
  const seen = new Set<string>();
  const add = (packets: string[], directed: boolean) => {
    const key = packets.join('\n');
    if (seen.has(key)) return;
    seen.add(key);
    units.push({ packets, directed });
  };
  // 1. aimed at the rules that differ
  const changed = [...changedRules(ta, tb).map((c) => ({ ...c, side: ta })), ...changedRules(tb, ta).map((c) => ({ ...c, side: tb }))];
  const callers = new Map<ChainTexts, Map<string, Caller[]>>();
  const aimAt = (c: (typeof changed)[number], also?: (typeof changed)[number]) => {
    if (!callers.has(c.side)) {
      // the second side's callers are the first's, but for the chains that differ
      const other = c.side === ta ? tb : ta;
      const base = callers.get(other);
      callers.set(c.side, callersOf(c.side, base && { callers: base, texts: other }));
    }
    const [table, chain] = c.key.split('\0') as [TableName, string];
    const shape = (x: (typeof changed)[number]) => shapeOf(table, chain, x.index + 1, x.text.slice(`-A ${chain}`.length), family);
    const target = shape(c);
    for (const { hook, path } of pathsTo(table, chain, callers.get(c.side)!, family)) {
      const way = also ? [...path, shape(also)] : path;
      const n = repeatsFor(way, target);
      for (const p of aimedPackets(way, target, hook, view, v6, { variants: changed.length <= 200 })) {
        add([specText(p)], true);
        if ((p.proto === 6 || p.proto === 17) && p.flags === 0x02) add([specText(p), 'reply'], true);
        // rate and state matches answer differently after a few packets of one source
        if (n > 1) add(repeated(p, n).map(specText), true);
      }
    }
  };
  for (const c of changed.slice(0, 2000)) aimAt(c);
  // Two changed rules of one chain (a swap, a rule moved past another):
  // the packets that differ are those both match, so aim at each pair at once.
  const byChain = new Map<string, (typeof changed)[number][]>();
  for (const c of changed.slice(0, 2000)) {
    const k2 = `${c.side === ta ? 'a' : 'b'}\0${c.key}`;
    const list = byChain.get(k2);
    if (list) list.push(c);
    else byChain.set(k2, [c]);
  }
  let pairs = 0;
  for (const list of byChain.values()) {
    const l = list.slice(0, 40);
    for (let i = 0; i < l.length && pairs < 2000; i++) {
      for (let j = i + 1; j < l.length && pairs < 2000; j++, pairs++) {
        aimAt(l[j]!, l[i]);
        aimAt(l[i]!, l[j]);
      }
    }
  }
  const directed = units.length;
  // 2. from both rulesets' constants, and at random
  const rand = seededRand(o.seed);
  for (let i = 0; i < o.packets; i++) {
    const p = drawPacket(rand, k, { ifaces: view.ifaces, ct: false, local: true, v6 });
    if (p.iif && !view.ifaces.includes(p.iif)) p.iif = view.ifaces[0]!;
    add([specText(p)], false);
    if (i % 8 === 0 && (p.proto === 6 || p.proto === 17)) add([specText({ ...p, flags: 0x02 }), 'reply'], false);
  }
  const differences: Difference[] = [];
  let flows = 0;
  const reported = new Set<string>();
  // Differences in the counters alone (a packet both sides treat alike, but
  // through a rule whose text changed) are kept, and reported after those of
  // the fate; the aimed packets are all run while fewer of those were found.
  let fates = 0;
  const onlyCounters = (d: readonly string[]) => d.length === 1 && d[0] === ASPECT_NAMES.counters;
  units.forEach((u, i) => {
    if (fates >= o.maxDifferences || (differences.length >= o.maxDifferences && !u.directed)) return;
    // a flow whose first packet already differs says nothing more
    if (u.packets.length > 1 && reported.has(u.packets[0]!)) return;
    if (u.packets.length > 1) flows++;
    let sa: SideRun[];
    let sb: SideRun[];
    const both = (trace: boolean) => {
      a.setTrace(trace);
      b.setTrace(trace);
      sa = runUnit(a, ra, u.packets, textOf(ta));
      sb = runUnit(b, rb, u.packets, textOf(tb));
    };
    try {
      both(u.directed || traceDrawn);
    } catch (e) {
      // a reply to a packet that was not answered on one side: the first packet alone tells
      if (u.packets.length > 1 && (e as Error).name === 'UsageError') return;
      throw e;
    }
    let d = compareSides(sa!, sb!);
    if (d.length && !(u.directed || traceDrawn)) {
      both(true);
      d = compareSides(sa!, sb!);
    }
    if (d.length) {
      if (!onlyCounters(d)) fates++;
      else if (differences.length >= o.maxDifferences) return;
      differences.push({ packets: u.packets, differs: d, old: sa!, new: sb! });
      reported.add(u.packets[0]!);
    }
    if (o.progress && (i & 63) === 0) o.progress(i, units.length, differences.length);
  });
  ra();
  rb();
  // stable: the fate's differences first, each group in search order
  const ranked = [...differences.filter((d) => !onlyCounters(d.differs)), ...differences.filter((d) => onlyCounters(d.differs))].slice(0, o.maxDifferences);
  return {
    differences: ranked,
    searched: { directed, drawn: units.length - directed, flows, changedRules: changed.length, constants: constantsSummary(k) },
  };
}
