/**
 * The optimizer (`optimize: 1`): a classifier prefilter in front of long runs
 * of simple rules. A chain's rules are cut into maximal runs of consecutive
 * rules whose tests are all classifiable (classifiable() below); a run of at
 * least MIN_RUN rules gets a `classify` expression (vm/expr/classify.ts) as
 * the first expression of its first rule, over a Linear Bit Vector Search
 * (bpf-iptables) built here by buildClassifier().
 *
 * The classifier only has to be a superset: its bit for a rule must be set
 * for every packet the rule's straight bytecode (backend 'legacy') matches.
 * Where the rule set of a field is exact it is used as is; where it is not
 * an interval set (a non-contiguous address mask) its covering interval is
 * used, and an inverted test that is not one interval's complement allows
 * every value. The jump lands on the rule, which then runs all its
 * expressions, so a superset costs time, never exactness.
 *
 * Classifiable: the IP part without -f (addresses with any mask, inverted
 * too; -p, inverted too; -i/-o exact names and `name+` prefixes, inverted
 * too; a bare `-i +`), the matches tcp (ports, ranges, inversions,
 * --tcp-flags/--syn; with `-p tcp`) and udp (with `-p udp`), at most one
 * tcp/udp match per rule, and any pure match (MatchModule.pure: comment,
 * conntrack and state, mark, connmark, addrtype, ...), which the classifier
 * takes to match every packet: a firewall's `-m conntrack --ctstate NEW`
 * rules classify on their addresses, interfaces and ports. Anything else
 * ends the run.
 */
import type { AddrMask, Family, Rule } from '../../core/ast.js';
import type { PortsData, TcpData } from '../../ext/match/tcpudp.js';
import {
  CLS_BLK_WORDS, CLS_BLKSZ, CLS_BLOCK, CLS_BLOCKS, CLS_FIRST, CLS_NSUM, CLS_SUMS, CLS_NCOLS, CLS_COLS, CLS_FLAGS, CLS_FLD_WORDS, CLS_F_TCP, CLS_F_UDP, CLS_F_V6, CLS_HDR_WORDS,
  CLS_IFACES, CLS_IF_WORDS, CLS_KEY_MAX, CLS_K_DPORT, CLS_K_DST, CLS_K_IIF, CLS_K_OIF, CLS_K_PROTO, CLS_K_SPORT, CLS_K_SRC,
  CLS_K_TCPFLAGS, CLS_NBLOCKS, CLS_NIIF, CLS_NKEYS, CLS_NOIF, CLS_NRULES, CLS_PCS, CLS_RANKS, CLS_RK_WORDS, CLS_SIZE, CLS_TOP, CLS_TOP_BITS, CLS_TOP_MIN, CLS_USED,
} from '../../vm/expr/classify.js';
import { Words } from '../../vm/words.js';
import { findMatch } from '../../ext/registry.js';

/** Runs shorter than this stay straight: a few rules scan faster than the classifier runs. */
export const MIN_RUN = 16;

/** A run of rules [start, end) of one chain. */
export interface Run {
  start: number;
  end: number;
}

/** Interface test of a rule: an exact name or a prefix (`eth+`), as bytes compared. */
interface IfPattern {
  text: string;
  prefix: boolean;
  invert: boolean;
}

function ifPattern(name: string, invert: boolean): IfPattern | null | undefined {
  if (name === '') return null;
  const prefix = name.endsWith('+');
  const text = prefix ? name.slice(0, -1) : name;
  if (prefix && text === '') return invert ? undefined : null; // `! -i +` never matches: left straight
  if (text.length + (prefix ? 0 : 1) > 16 || /[^\x01-\xff]/.test(text)) return undefined;
  return { text, prefix, invert };
}

/**
 * The rule's tcp or udp match, or null; undefined when the rule is not
 * classifiable. A pure match (MatchModule.pure: comment, conntrack, mark,
 * ...) is no test the classifier models: it may match any packet, and a
 * rule the classifier passes over would not have changed anything in it.
 */
function l4Match(rule: Rule, family: Family): { tcp: boolean; d: PortsData } | null | undefined {
  let out: { tcp: boolean; d: PortsData } | null = null;
  for (const m of rule.matches) {
    if (m.unknown) return undefined;
    if (m.name !== 'tcp' && m.name !== 'udp') {
      if (findMatch(m.name, family)?.pure) continue;
      return undefined;
    }
    if (out) return undefined;
    const tcp = m.name === 'tcp';
    if (rule.invProto || rule.proto !== (tcp ? 6 : 17)) return undefined;
    if (tcp && (m.data as TcpData).option) return undefined;
    out = { tcp, d: m.data as PortsData };
  }
  return out;
}

/** True when the classifier can model every test of the rule. */
export function classifiable(rule: Rule, family: Family): boolean {
  if (rule.frag || rule.invFrag) return false;
  if (ifPattern(rule.iif, rule.invIif) === undefined || ifPattern(rule.oif, rule.invOif) === undefined) return false;
  const l4 = l4Match(rule, family);
  if (l4 === undefined) return false;
  // A pure match that may fail (any but a comment) can make the rule a candidate that does not match, and
  // the classifier is then asked again from the next rule: such a rule joins a run only when a test of its
  // own (an address, an interface, ports or TCP flags) narrows the packets it is a candidate for, as a
  // firewall's `-d A -p tcp --dport N -m conntrack --ctstate NEW` does; a run of `-m mark --mark N` rules
  // would have every packet classified again at every rule, so `-m mark`, or `-m conntrack --ctstate
  // ESTABLISHED` with at most `-p tcp`, ends the run as before.
  for (const m of rule.matches) if (m.name !== 'comment' && m.name !== 'tcp' && m.name !== 'udp') return narrowed(rule, l4);
  return true;
}

/** The rule tests an address, an interface, ports or TCP flags. */
function narrowed(rule: Rule, l4: { d: PortsData } | null): boolean {
  const masked = (a: AddrMask | undefined): boolean => a !== undefined && a.mask.some((b) => b !== 0);
  if (masked(rule.src) || masked(rule.dst) || rule.iif !== '' || rule.oif !== '') return true;
  if (l4 === null) return false;
  const d = l4.d;
  const tcp = d as Partial<TcpData>;
  return d.spts[0] !== 0 || d.spts[1] !== 0xffff || d.invSpt || d.dpts[0] !== 0 || d.dpts[1] !== 0xffff || d.invDpt || !!tcp.flgMask || !!tcp.invFlags;
}

/** The maximal runs of classifiable rules of at least `minRun` rules. */
export function findRuns(rules: readonly Rule[], family: Family, minRun = MIN_RUN): Run[] {
  const runs: Run[] = [];
  // most chains of a big table are short (kube-proxy's tens of thousands of one- or two-rule chains)
  if (rules.length < minRun) return runs;
  let start = -1;
  for (let i = 0; i <= rules.length; i++) {
    const ok = i < rules.length && classifiable(rules[i]!, family);
    if (ok && start < 0) start = i;
    if (!ok && start >= 0) {
      if (i - start >= minRun) runs.push({ start, end: i });
      start = -1;
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------
// Rule tests as sets of key values: flattened [lo, hi] pairs, sorted and
// disjoint, within 0..max; null = every value (no test).
// ---------------------------------------------------------------------------

type Vals = number[] | null;

function complement(s: number[], max: number): number[] {
  const out: number[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i += 2) {
    if (s[i]! > from) out.push(from, s[i]! - 1);
    from = s[i + 1]! + 1;
  }
  if (from <= max) out.push(from, max);
  return out;
}

/** The values 0..max for which `has` holds, as intervals. */
function enumerate(max: number, has: (v: number) => boolean): number[] {
  const out: number[] = [];
  for (let v = 0; v <= max; v++) {
    if (!has(v)) continue;
    if (out.length && out[out.length - 1] === v - 1) out[out.length - 1] = v;
    else out.push(v, v);
  }
  return out;
}

const u32 = (b: Uint8Array, k: number): number => ((b[4 * k]! << 24) | (b[4 * k + 1]! << 16) | (b[4 * k + 2]! << 8) | b[4 * k + 3]!) >>> 0;

/** A contiguous high-bit mask (0 and ~0 included). */
const contiguous = (m: number): boolean => {
  const low = ~m >>> 0;
  return (low & (low + 1)) === 0;
};

/** `(addr & mask) == net`, inverted or not, as one set per address word. */
function addrSets(addr: Uint8Array, mask: Uint8Array, invert: boolean, words: number): Vals[] {
  const out: Vals[] = [];
  const nz: number[] = [];
  for (let k = 0; k < words; k++) {
    const m = u32(mask, k);
    const v = (u32(addr, k) & m) >>> 0;
    out.push(m === 0 ? null : [v, (v | ~m) >>> 0]);
    if (m !== 0) nz.push(k);
  }
  if (!invert) return out;
  const all: Vals[] = out.map(() => null);
  if (nz.length === 0) {
    all[0] = []; // `! -s 0/0`: never
    return all;
  }
  if (nz.length === 1 && contiguous(u32(mask, nz[0]!))) all[nz[0]!] = complement(out[nz[0]!]!, 0xffffffff);
  return all;
}

/** A tcp/udp port test as port_match() (and lowerPorts, backend 'legacy') applies it. */
function portSet(lo: number, hi: number, invert: boolean): number[] {
  const s = lo <= hi ? [lo, hi] : [];
  return invert ? complement(s, 0xffff) : s;
}

/** Per key, the values for which the rule's tests can hold (iface keys: pattern, resolved later). */
interface RuleSets {
  sets: Vals[];
  iif: IfPattern | null;
  oif: IfPattern | null;
}

function ruleSets(rule: Rule, v6: boolean): RuleSets {
  const sets: Vals[] = new Array<Vals>(CLS_NKEYS).fill(null);
  const words = v6 ? 4 : 1;
  if (rule.src) addrSets(rule.src.addr, rule.src.mask, rule.invSrc, words).forEach((s, k) => (sets[CLS_K_SRC + k] = s));
  if (rule.dst) addrSets(rule.dst.addr, rule.dst.mask, rule.invDst, words).forEach((s, k) => (sets[CLS_K_DST + k] = s));
  if (rule.proto !== 0) sets[CLS_K_PROTO] = rule.invProto ? complement([rule.proto, rule.proto], 255) : [rule.proto, rule.proto];
  const l4 = l4Match(rule, v6 ? 'ip6' : 'ip');
  if (l4) {
    const d = l4.d;
    // every source port (`--sport 0:65535`, ClassBench's usual): no source port key, the
    // destination port's (65536 for a packet without ports a tcp/udp match could read) holds it
    const sport = portSet(d.spts[0], d.spts[1], d.invSpt);
    if (!(sport.length === 2 && sport[0] === 0 && sport[1] === 0xffff)) sets[CLS_K_SPORT] = sport;
    sets[CLS_K_DPORT] = portSet(d.dpts[0], d.dpts[1], d.invDpt);
    // without a flags test, no flags key: -p tcp and the port keys (65536 for a later
    // fragment, the flags' 256) already hold the packets such a rule may match to TCP first fragments
    if (l4.tcp) {
      const t = d as TcpData;
      if (t.flgMask || t.invFlags) sets[CLS_K_TCPFLAGS] = enumerate(255, (x) => ((x & t.flgMask) === t.flgCmp) !== t.invFlags);
    }
  }
  return { sets, iif: ifPattern(rule.iif, rule.invIif) ?? null, oif: ifPattern(rule.oif, rule.invOif) ?? null };
}

/** Interface entries: exact names, then prefixes longest first; the packet's key is the first it matches. */
function ifEntries(pats: (IfPattern | null)[]): IfPattern[] {
  const exact = new Set<string>();
  const prefix = new Set<string>();
  for (const p of pats) if (p) (p.prefix ? prefix : exact).add(p.text);
  return [
    ...[...exact].sort().map((text) => ({ text, prefix: false, invert: false })),
    ...[...prefix].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)).map((text) => ({ text, prefix: true, invert: false })),
  ];
}

/** The keys 0..entries.length for which pattern `p` holds. */
function ifSet(p: IfPattern | null, entries: IfPattern[]): Vals {
  if (!p) return null;
  const holds = (e: IfPattern): boolean => {
    if (!p.prefix) return !e.prefix && e.text === p.text;
    return e.prefix ? e.text.length >= p.text.length && e.text.startsWith(p.text) : e.text.startsWith(p.text);
  };
  return enumerate(entries.length, (v) => (v < entries.length && holds(entries[v]!)) !== p.invert);
}

function ifWords(e: IfPattern): number[] {
  const bytes = [...e.text].map((ch) => ch.charCodeAt(0) & 0xff);
  if (!e.prefix) bytes.push(0);
  const out = new Array<number>(CLS_IF_WORDS).fill(0);
  bytes.forEach((b, i) => {
    out[i >> 2] |= b << (8 * (i & 3));
    out[4 + (i >> 2)] |= 0xff << (8 * (i & 3));
  });
  return out;
}

// ---------------------------------------------------------------------------
// LBVS tables
// ---------------------------------------------------------------------------

interface FieldTable {
  key: number;
  starts: number[];
  rows: Int32Array;
}

/** Elementary intervals of one key over a block's rule sets and their rule bit rows, equal neighbours merged. */
function fieldTable(key: number, sets: Vals[], max: number): FieldTable | null {
  const n = sets.length;
  const words = (n + 31) >>> 5;
  if (sets.every((s) => s === null)) return null;
  // the cut points (values < 2^32): sorted numerically as a typed array, duplicates dropped
  let ncuts = 1;
  for (const s of sets) if (s) ncuts += s.length;
  const cuts = new Uint32Array(ncuts);
  let nc = 1; // cuts[0] = 0
  for (const s of sets) {
    if (!s) continue;
    for (let i = 0; i < s.length; i += 2) {
      cuts[nc++] = s[i]!;
      if (s[i + 1]! < max) cuts[nc++] = s[i + 1]! + 1;
    }
  }
  cuts.subarray(0, nc).sort();
  let ns = 0;
  for (let i = 0; i < nc; i++) if (i === 0 || cuts[i] !== cuts[ns - 1]) cuts[ns++] = cuts[i]!;
  const starts = cuts.subarray(0, ns);
  /** The index of cut point `v` (present by construction). */
  const index = (v: number): number => {
    let lo = 0;
    let hi = ns - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // toggles: a rule's bit switches on at its interval's start and off after its end
  const tog = new Int32Array((ns + 1) * words);
  for (let r = 0; r < n; r++) {
    const s = sets[r];
    const bit = 1 << (r & 31);
    const w = r >>> 5;
    if (!s) {
      tog[w] ^= bit;
      continue;
    }
    for (let i = 0; i < s.length; i += 2) {
      tog[index(s[i]!) * words + w] ^= bit;
      const after = s[i + 1]! < max ? index(s[i + 1]! + 1) : ns;
      tog[after * words + w] ^= bit;
    }
  }
  // the rows, written in place over the toggles (row i only reads toggles i and up): equal neighbours merged
  const kept: number[] = [];
  let at = 0;
  for (let i = 0; i < ns; i++) {
    const t = i * words;
    let same = at > 0;
    for (let w = 0; w < words; w++) {
      const v = (at > 0 ? tog[at - words + w]! : 0) ^ tog[t + w]!;
      tog[at + w] = v;
      if (same && tog[at - words + w] !== v) same = false;
    }
    if (same) continue;
    kept.push(starts[i]!);
    at += words;
  }
  if (kept.length === 1) {
    // one interval: useless when every rule is in it
    let full = true;
    for (let r = 0; r < n && full; r++) if ((tog[r >>> 5]! & (1 << (r & 31))) === 0) full = false;
    if (full) return null;
  }
  return { key, starts: kept, rows: tog.slice(0, at) };
}

/**
 * The block summary of one key: over the union of the blocks' interval
 * starts, a bit per column (a group of one block's rules, see columnsOf) set
 * when one of the column's rules may match there (a rule that does not test
 * the key may match everywhere; a block that does not test it passes). A
 * column's bit changes only at its block's starts, so the table is swept
 * once over the points where some column's bit changes (sorted), not over
 * every start for every column.
 *
 * A long run has about two points per rule and a row of ncolumns / 32 words
 * per point: rows for every point would grow with the square of the run.
 * Past SUM_WORDS_PER_RULE words per rule, consecutive points are grouped,
 * `g` to an interval, whose row is the union of their rows (every bit set at
 * one of them): a block the packet cannot match may be searched, none that
 * it can is skipped, so the classifier stays first-match exact.
 */
/** Summary row words per rule of a run, at most (runs under about 16,000 rules never reach it). */
const SUM_WORDS_PER_RULE = 8;

function summaryTable(key: number, blocks: FieldTable[][], sizes: number[], columns: Column[]): FieldTable {
  const nc = columns.length;
  const words = (nc + 31) >>> 5;
  const row = new Int32Array(words);
  // events value * 2^21 + column * 2 + live, sorted numerically (exact in a double: value < 2^32, column < 2^20)
  if (nc >= 1 << 20) throw new RangeError(`classifier of ${nc} columns`);
  const events: number[] = [];
  for (let c = 0; c < nc; c++) {
    const { block: b, mask } = columns[c]!;
    const f = blocks[b]!.find((t) => t.key === key);
    if (!f) {
      row[c >>> 5]! |= 1 << (c & 31);
      continue;
    }
    const w = (sizes[b]! + 31) >>> 5;
    let prev = 0;
    for (let i = 0; i < f.starts.length; i++) {
      let live = 0;
      for (let j = 0; j < w; j++) {
        if ((f.rows[i * w + j]! & mask[j]!) !== 0) {
          live = 1;
          break;
        }
      }
      if (live !== prev) events.push(f.starts[i]! * 2097152 + c * 2 + live);
      prev = live;
    }
  }
  const ev = Float64Array.from(events).sort();
  // the intervals: 0, then every distinct event value (the rows are sized once: they are the big part)
  let nint = 1;
  for (let j = 0, last = 0; j < ev.length; j++) {
    const v = Math.floor(ev[j]! / 2097152);
    if (v !== last) {
      nint++;
      last = v;
    }
  }
  let nrules = 0;
  for (const size of sizes) nrules += size;
  const g = Math.max(1, Math.ceil(nint / Math.max(1, Math.floor((SUM_WORDS_PER_RULE * nrules) / words))));
  const kept: number[] = [];
  const rows = new Int32Array(Math.ceil(nint / g) * words);
  let i = 0;
  // the first interval starts at 0 (every field table's first start is 0)
  for (let v = 0, point = 0, at = 0; ; point++) {
    const opens = point % g === 0;
    for (; i < ev.length && Math.floor(ev[i]! / 2097152) === v; i++) {
      const e = ev[i]! % 2097152;
      const c = e >>> 1;
      if (e & 1) {
        row[c >>> 5]! |= 1 << (c & 31);
        // a bit set inside a group stays set in the group's row
        if (!opens) rows[at + (c >>> 5)]! |= 1 << (c & 31);
      } else row[c >>> 5]! &= ~(1 << (c & 31));
    }
    if (opens) {
      at = kept.length * words;
      rows.set(row, at);
      kept.push(v);
    }
    if (i >= ev.length) break;
    v = Math.floor(ev[i]! / 2097152);
  }
  return { key, starts: kept, rows };
}

/** A summary column: some rules of one block, as a bit per rule of the block. */
interface Column {
  block: number;
  mask: Int32Array;
}

/** Columns a block has at most (each is a summary bit: a row's words grow with them). */
const MAX_COLUMNS = 16;
/** Rules a column holds at most. */
const COLUMN_RULES = 128;
/** A test that allows this share of a key's values or more is broad (an address prefix of /8 or shorter). */
const BROAD = 1 / 256;

/**
 * How a rule tests key `k`: 0 not at all (or every value: `--dport 0:65535`),
 * 1 broadly (at least BROAD of the values), 2 narrowly.
 */
function testClass(v: Vals, max: number): number {
  if (v === null) return 0;
  let cover = 0;
  for (let j = 0; j < v.length; j += 2) cover += v[j + 1]! - v[j]! + 1;
  const share = cover / (max + 1);
  return share >= 1 ? 0 : share >= BROAD ? 1 : 2;
}

/**
 * A block's columns: its rules grouped by how they test each key, at most
 * COLUMN_RULES a column. The summary ANDs one row per key, and a rule that
 * does not test a key (or tests it broadly) sets that key's row everywhere
 * (or nearly): over a whole block, `-s A` rules and `-d B` rules let it pass
 * for any packet from A or to B, though none of them may match a packet from
 * A to C. Per column, where every rule tests the same keys as narrowly, such
 * a packet fails the summary and the block is not searched. A column is
 * still a superset (it passes wherever one of its rules may match), so no
 * block that may match is skipped. At most MAX_COLUMNS a block: the rules of
 * the rarest groups share the last column. On ClassBench's 10,000-rule
 * traces a packet searches 1.0 (fw1), 2.0 (ipc1) and 1.1 (acl1) blocks; with
 * one column a block fw1 and ipc1 searched 6.8 and 6.0.
 */
function columnsOf(block: number, sets: readonly RuleSets[], keys: readonly number[], maxOf: (k: number) => number): Column[] {
  const words = (sets.length + 31) >>> 5;
  const groups = new Map<number, number[]>();
  sets.forEach((r, i) => {
    let pattern = 0;
    for (const k of keys) pattern = pattern * 3 + testClass(r.sets[k] ?? null, maxOf(k));
    const g = groups.get(pattern);
    if (g) g.push(i);
    else groups.set(pattern, [i]);
  });
  const chunks: number[][] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i += COLUMN_RULES) chunks.push(g.slice(i, i + COLUMN_RULES));
  chunks.sort((x, y) => y.length - x.length || x[0]! - y[0]!);
  const out: Column[] = [];
  chunks.forEach((rules, i) => {
    if (i >= MAX_COLUMNS) {
      const last = out[MAX_COLUMNS - 1]!.mask;
      for (const r of rules) last[r >>> 5]! |= 1 << (r & 31);
      return;
    }
    const mask = new Int32Array(words);
    for (const r of rules) mask[r >>> 5]! |= 1 << (r & 31);
    out.push({ block, mask });
  });
  return out;
}

/** A ranked field: the union of the blocks' starts on it and, per union interval and block, the block's interval. */
interface Ranks {
  key: number;
  starts: Uint32Array;
  /** starts.length × ceil(nblocks / 2) words, two 16-bit ranks a word (vm/expr/classify.ts CLS_RANKS). */
  ranks: Int32Array;
  /** Per union interval, the summary's interval holding it. */
  summary: Int32Array;
}

/**
 * The ranks of the fields worth them: one binary search of a ranked field's
 * union per packet stands for the summary's search and one per block
 * searched. Fields with the most intervals per block gain most and go first;
 * a field is ranked only while the ranks stay within `budget` words (twice
 * the rest of the classifier: a union of n points costs n × nblocks / 2
 * words, which would grow with the square of a long run). ClassBench fw1's
 * 10,000 rules rank both address fields within twice and only one within
 * once; the second saved a fifth of a packet's time.
 */
function rankTables(blocks: FieldTable[][], summary: FieldTable[], budget: number): Ranks[] {
  const nb = blocks.length;
  const half = (nb + 1) >>> 1;
  const cands = summary.map(({ key }) => {
    const tables = blocks.map((fields) => fields.find((t) => t.key === key));
    let points = 0;
    for (const t of tables) if (t) points += t.starts.length;
    return { key, tables, points };
  });
  cands.sort((x, y) => y.points - x.points || x.key - y.key);
  const out: Ranks[] = [];
  for (const { key, tables, points } of cands) {
    // the union, sorted numerically, duplicates dropped
    const all = new Uint32Array(points);
    let n = 0;
    for (const t of tables) if (t) for (const v of t.starts) all[n++] = v;
    all.sort();
    let nu = 0;
    for (let i = 0; i < n; i++) if (i === 0 || all[i] !== all[nu - 1]) all[nu++] = all[i]!;
    if (nu * (half + 1) > budget) continue;
    budget -= nu * (half + 1);
    const starts = all.slice(0, nu);
    const ranks = new Int32Array(nu * half);
    tables.forEach((t, b) => {
      if (!t) return;
      if (t.starts.length > 0xffff) throw new RangeError(`classifier block of ${t.starts.length} intervals`);
      const shift = (b & 1) << 4;
      for (let u = 0, j = 0; u < nu; u++) {
        while (j + 1 < t.starts.length && t.starts[j + 1]! <= starts[u]!) j++;
        ranks[u * half + (b >>> 1)]! |= j << shift;
      }
    });
    // the summary's starts are starts of some block on the key, so each union interval lies in one of its intervals
    const sum = summary.find((t) => t.key === key)!.starts;
    const map = new Int32Array(nu);
    for (let u = 0, j = 0; u < nu; u++) {
      while (j + 1 < sum.length && sum[j + 1]! <= starts[u]!) j++;
      map[u] = j;
    }
    out.push({ key, starts, ranks, summary: map });
  }
  return out;
}

/**
 * The classifier data (vm/expr/classify.ts layout) of a run of rules whose
 * first rule has Program rule index `firstRule`, in blocks of `blockSize`
 * rules; the target table is left for linkClassify().
 */
export function buildClassifier(rules: readonly Rule[], family: Family, firstRule: number, blockSize = CLS_BLOCK): Int32Array {
  if (!(blockSize >= 1 && blockSize <= CLS_BLOCK)) throw new RangeError(`classifier blocks of ${blockSize} rules`);
  const v6 = family === 'ip6';
  const n = rules.length;
  // the interface entries come from every rule; the other sets are made a block at a time (a run may be 100,000 rules)
  const iifs = ifEntries(rules.map((r) => ifPattern(r.iif, r.invIif) ?? null));
  const oifs = ifEntries(rules.map((r) => ifPattern(r.oif, r.invOif) ?? null));
  const blockSets = (lo: number, hi: number): RuleSets[] => {
    const rs: RuleSets[] = [];
    for (let i = lo; i < hi; i++) {
      const r = ruleSets(rules[i]!, v6);
      r.sets[CLS_K_IIF] = ifSet(r.iif, iifs);
      r.sets[CLS_K_OIF] = ifSet(r.oif, oifs);
      rs.push(r);
    }
    return rs;
  };
  const maxOf = (k: number): number => (k === CLS_K_IIF ? iifs.length : k === CLS_K_OIF ? oifs.length : CLS_KEY_MAX[k]!);
  let flags = v6 ? CLS_F_V6 : 0;
  for (const r of rules) {
    const l4 = l4Match(r, v6 ? 'ip6' : 'ip');
    if (l4) flags |= l4.tcp ? CLS_F_TCP : CLS_F_UDP;
  }
  const keysOf = v6 ? [...Array(CLS_NKEYS).keys()] : [...Array(CLS_NKEYS).keys()].filter((k) => k === CLS_K_SRC || k === CLS_K_DST || k >= CLS_K_PROTO);

  const nb = Math.ceil(n / blockSize);
  const blocks: FieldTable[][] = [];
  const sizes: number[] = [];
  const columns: Column[] = [];
  let used = 0;
  for (let b = 0; b < nb; b++) {
    const lo = b * blockSize;
    const hi = Math.min(n, lo + blockSize);
    sizes.push(hi - lo);
    const fields: FieldTable[] = [];
    const rs = blockSets(lo, hi);
    for (const k of keysOf) {
      const t = fieldTable(k, rs.map((r) => r.sets[k] ?? null), maxOf(k));
      if (t) {
        fields.push(t);
        used |= 1 << k;
      }
    }
    // the most selective first: the AND of a word stops at the first zero
    fields.sort((x, y) => y.starts.length - x.starts.length);
    blocks.push(fields);
    if (nb > 1) for (const c of columnsOf(b, rs, keysOf, maxOf)) columns.push(c);
  }
  const summary = nb > 1 ? keysOf.filter((k) => used & (1 << k)).map((k) => summaryTable(k, blocks, sizes, columns)) : [];
  if (summary.length === 0) columns.length = 0;
  summary.sort((x, y) => y.starts.length - x.starts.length);

  // the data's size is known: one exact buffer, no growing copies (the tables of a long run are megabytes)
  const tablesWords = (fields: FieldTable[]): number => fields.reduce((a, f) => a + CLS_FLD_WORDS + f.starts.length + f.rows.length, 0);
  const base = CLS_HDR_WORDS + (iifs.length + oifs.length) * CLS_IF_WORDS + n + 1 + nb * CLS_BLK_WORDS + blocks.reduce((a, f) => a + tablesWords(f), 0) + tablesWords(summary) + columns.length;
  const ranked = nb > 1 && summary.length ? rankTables(blocks, summary, 2 * base) : [];
  /** The top table of a ranked field (vm/expr/classify.ts CLS_RANKS): per value of the top bits, the interval of its least key. */
  const topTable = (r: Ranks): Int32Array => {
    const t = new Int32Array(CLS_TOP + 1);
    for (let b = 0, u = 0; b < CLS_TOP; b++) {
      const least = b * 2 ** (32 - CLS_TOP_BITS);
      while (u + 1 < r.starts.length && r.starts[u + 1]! <= least) u++;
      t[b] = u;
    }
    t[CLS_TOP] = r.starts.length - 1;
    return t;
  };
  const tops = ranked.map((r) => (r.starts.length > CLS_TOP_MIN ? topTable(r) : null));
  const size = base + (ranked.length ? 1 + ranked.reduce((a, r, i) => a + CLS_RK_WORDS + 2 * r.starts.length + r.ranks.length + (tops[i]?.length ?? 0), 0) : 0);
  const out = new Words(size);
  out.fill(0, CLS_HDR_WORDS);
  out.set(CLS_NRULES, n);
  out.set(CLS_FIRST, firstRule);
  out.set(CLS_NBLOCKS, nb);
  out.set(CLS_FLAGS, flags);
  out.set(CLS_USED, used);
  out.set(CLS_NIIF, iifs.length);
  out.set(CLS_NOIF, oifs.length);
  out.set(CLS_BLKSZ, blockSize);
  out.set(CLS_NSUM, summary.length);
  out.set(CLS_IFACES, out.length);
  for (const e of [...iifs, ...oifs]) out.append(ifWords(e));
  out.set(CLS_PCS, out.length);
  out.fill(-1, n + 1);
  out.set(CLS_BLOCKS, out.length);
  const bt = out.length;
  out.fill(0, nb * CLS_BLK_WORDS);
  /**
   * Fills the entry at `e`: the field id, the interval count, the offset of the starts (appended,
   * biased), then the offset of each table (appended).
   */
  const intervalEntry = (e: number, key: number, starts: ArrayLike<number>, tables: Int32Array[]): void => {
    out.set(e, key);
    out.set(e + 1, starts.length);
    out.set(e + 2, out.length);
    for (let i = 0; i < starts.length; i++) out.push((starts[i]! ^ 0x80000000) | 0);
    tables.forEach((t, k) => {
      out.set(e + 3 + k, out.length);
      out.append(t);
    });
  };
  /** Appends a field table; returns its offset. */
  const fieldTables = (fields: FieldTable[]): number => {
    const ft = out.length;
    out.fill(0, fields.length * CLS_FLD_WORDS);
    fields.forEach((f, i) => intervalEntry(ft + i * CLS_FLD_WORDS, f.key, f.starts, [f.rows]));
    return ft;
  };
  // every block's field entries side by side (each packet reads those of the blocks it searches), then their intervals
  const entries: number[] = [];
  blocks.forEach((fields, b) => {
    const at = bt + b * CLS_BLK_WORDS;
    out.set(at, b * blockSize);
    out.set(at + 1, sizes[b]!);
    out.set(at + 2, fields.length);
    out.set(at + 3, out.length);
    entries.push(out.length);
    out.fill(0, fields.length * CLS_FLD_WORDS);
  });
  blocks.forEach((fields, b) => fields.forEach((f, i) => intervalEntry(entries[b]! + i * CLS_FLD_WORDS, f.key, f.starts, [f.rows])));
  out.set(CLS_SUMS, summary.length ? fieldTables(summary) : 0);
  out.set(CLS_NCOLS, columns.length);
  out.set(CLS_COLS, columns.length ? out.length : 0);
  for (const c of columns) out.push(c.block);
  if (ranked.length) {
    const rl = out.length;
    out.set(CLS_RANKS, rl);
    out.push(ranked.length);
    out.fill(0, ranked.length * CLS_RK_WORDS);
    ranked.forEach((r, i) => {
      const e = rl + 1 + i * CLS_RK_WORDS;
      intervalEntry(e, r.key, r.starts, [r.ranks, r.summary]);
      const top = tops[i];
      out.set(e + 5, top ? out.length : 0);
      if (top) out.append(top);
    });
  }
  out.set(CLS_SIZE, out.length);
  if (out.length !== size) throw new Error(`classifier: ${out.length} words written, ${size} expected`);
  return out.take();
}
