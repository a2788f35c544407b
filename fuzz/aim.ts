/**
 * Packets aimed at a rule: through the jumps that reach its chain from a
 * builtin chain, with the addresses, protocol, ports, interfaces and mark
 * every rule on the way asks for (as far as fuzz/shape.ts models them),
 * and at each edge of the rule's own ranges and just past it.
 */
import type { Ruleset, TableName } from '../core/ast.js';
import { chainOrder, ruleSpec } from '../compiler/save.js';
import type { Node } from '../hooks/snapshot/node.js';
import { DEFAULT_PACKET, type FuzzPacket } from './packet.js';
import { isBuiltin, shapeOf, type Range, type RuleShape } from './shape.js';
import { addrRange6, MAX6, text6, type Range6 } from './addr6.js';
import { formatAddr } from '../hooks/route/addr.js';

/** Rule texts by table and chain (`-A CHAIN ...`). */
export type ChainTexts = Map<string, string[]>;

/** With `base`, the texts of the chains `rs` shares with `base.rs` (the same Chain objects, fuzz/delta.ts) are base's arrays. */
export function chainTexts(rs: Ruleset | undefined, base?: { rs: Ruleset | undefined; texts: ChainTexts }): ChainTexts {
  const out: ChainTexts = new Map();
  if (!rs) return out;
  for (const [name, t] of rs.tables) {
    const bt = base?.rs?.tables.get(name);
    for (const c of chainOrder(t)) {
      const key = `${name}\0${c.name}`;
      const shared = bt?.chains.get(c.name) === c ? base!.texts.get(key) : undefined;
      out.set(key, shared ?? c.rules.map((r) => `-A ${c.name}${ruleSpec(rs.family, r)}`));
    }
  }
  return out;
}

/** A rule that jumps or goes to a chain: where it is, and its text. */
export interface Caller {
  table: TableName;
  chain: string;
  num: number;
  text: string;
  shape?: RuleShape;
}

/**
 * The rules that jump or go to each chain, by `table\0chain` (shaped when a
 * path takes them). With `base` (the callers of `baseTexts`), only the
 * chains whose rules differ from `baseTexts` are read again: two rulesets
 * that differ in a few chains share the rest.
 */
export function callersOf(t: ChainTexts, base?: { callers: Map<string, Caller[]>; texts: ChainTexts }): Map<string, Caller[]> {
  const m = new Map<string, Caller[]>();
  const sameAsBase = (key: string, rules: readonly string[]) => {
    const r = base?.texts.get(key);
    return r === rules || (r !== undefined && r.length === rules.length && r.every((x, i) => x === rules[i]));
  };
  const reread = new Set<string>();
  for (const [key, rules] of t) if (!base || !sameAsBase(key, rules)) reread.add(key);
  if (base) {
    for (const [k2, list] of base.callers) {
      if (!t.has(k2)) continue;
      const kept = list.filter((c) => !reread.has(`${c.table}\0${c.chain}`));
      if (kept.length) m.set(k2, kept);
    }
  }
  for (const key of reread) {
    const rules = t.get(key)!;
    const [table, chain] = key.split('\0') as [TableName, string];
    rules.forEach((text, i) => {
      const tgt = / -[jg] (\S+)/.exec(text)?.[1];
      if (!tgt) return;
      const k2 = `${table}\0${tgt}`;
      if (!t.has(k2)) return;
      const c: Caller = { table, chain, num: i + 1, text };
      const list = m.get(k2);
      if (list) list.push(c);
      else m.set(k2, [c]);
    });
  }
  return m;
}

/** The node's IPv4 addresses and interfaces, for aiming packets. */
export interface NodeView {
  ifaces: string[];
  local: number[];
  /** Per interface, an address of its connected IPv4 subnet that is not the node's: a destination routed out of it. */
  neighbour?: Map<string, number>;
  /** The node's global IPv6 addresses, and per interface a neighbour on its IPv6 subnet (as for IPv4). */
  local6?: string[];
  neighbour6?: Map<string, string>;
}

export function nodeView(node: Node): NodeView {
  const ifaces = [...node.links.keys()].filter((n) => n !== 'lo');
  const local = node.addresses.filter((a) => a.family === 4 && a.dev !== 'lo').map((a) => a.local.w[0]! >>> 0);
  const neighbour = new Map<string, number>();
  for (const a of node.addresses) {
    if (a.family !== 4 || a.dev === 'lo' || a.prefixlen > 30 || neighbour.has(a.dev)) continue;
    const v = a.local.w[0]! >>> 0;
    const mask = a.prefixlen === 0 ? 0 : (0xffffffff << (32 - a.prefixlen)) >>> 0;
    const host = (v & ~mask) >>> 0;
    neighbour.set(a.dev, (((v & mask) >>> 0) + (host === 1 ? 2 : 1)) >>> 0);
  }
  const local6: string[] = [];
  const neighbour6 = new Map<string, string>();
  for (const a of node.addresses) {
    if (a.family !== 6 || a.dev === 'lo' || a.scope !== 'global') continue;
    const text = formatAddr(a.local);
    local6.push(text);
    const r = addrRange6(`${text}/${a.prefixlen}`);
    if (r && a.prefixlen <= 126 && !neighbour6.has(a.dev)) {
      const host = addrRange6(text)!.lo;
      neighbour6.set(a.dev, text6(host === r.lo + 1n ? r.lo + 2n : r.lo + 1n));
    }
  }
  return { ifaces: ifaces.length ? ifaces : ['lo'], local, neighbour, local6, neighbour6 };
}

function ifaceFits(name: string, pat: string): boolean {
  return pat.endsWith('+') ? name.startsWith(pat.slice(0, -1)) : name === pat;
}

/** A point of `r` (its low edge), or one outside it when the field is inverted. */
function inside(r: Range, inv: boolean): number {
  return inv ? (r.lo > 0 ? r.lo - 1 : r.hi + 1) : r.lo;
}

function inside6(r: Range6, inv: boolean): string {
  return text6(inv ? (r.lo > 0n ? r.lo - 1n : r.hi + 1n) : r.lo);
}

/** A destination port no rule is likely to name. */
const UNUSUAL_PORT = 47819;
/** A source outside every reserved range (93.184.216.34, 2a00:1450:4001::1). */
const PUBLIC_SRC = 0x5db8d822;
const PUBLIC_SRC6 = '2a00:1450:4001::1';

export interface AimOptions {
  /** Also aim with the other protocols, an unusual port and an invalid TCP packet where the rules leave those open (default true). */
  variants?: boolean;
}

/**
 * Packets aimed at `target` through the rules of `path` (the jumps from a
 * builtin chain down to target's chain, outermost first): a packet every
 * rule of the path matches as far as the model can tell, and one per edge
 * of the target's own ranges (each edge, and one past it).
 */
export function aimedPackets(path: readonly RuleShape[], target: RuleShape, hook: string, view: NodeView, v6 = false, o: AimOptions = {}): FuzzPacket[] {
  const all = [...path, target];
  // documentation addresses (TEST-NET-2/3, 2001:db8::/32) unless the rules ask for others
  const p: FuzzPacket = { ...DEFAULT_PACKET, v6, src: 0xc6336401, dst: 0xcb007101, src6: '2001:db8:6401::1', dst6: '2001:db8:7101::1', icmpType: v6 ? 128 : 8 };
  let dstSet = false;
  for (const s of all) {
    if (s.src) p.src = inside(s.src, s.invSrc);
    if (s.dst) {
      p.dst = inside(s.dst, s.invDst);
      dstSet = true;
    }
    if (s.src6) p.src6 = inside6(s.src6, s.invSrc);
    if (s.dst6) {
      p.dst6 = inside6(s.dst6, s.invDst);
      dstSet = true;
    }
    if (s.proto > 0 && !s.invProto) p.proto = s.proto;
    if (s.sport?.[0]) p.sport = s.invSport ? (s.sport[0].lo > 0 ? s.sport[0].lo - 1 : s.sport[0].hi + 1) : s.sport[0].lo;
    if (s.dport?.[0]) p.dport = s.invDport ? (s.dport[0].lo > 0 ? s.dport[0].lo - 1 : s.dport[0].hi + 1) : s.dport[0].lo;
    if (s.mark) p.mark = s.mark.inv ? (s.mark.value ^ (s.mark.mask & -s.mark.mask)) >>> 0 : s.mark.value;
  }
  if (p.proto !== 6 && p.proto !== 17 && p.proto !== (v6 ? 58 : 1)) p.proto = p.proto || 6;
  // `-m addrtype --dst-type LOCAL` on the way (Docker's and kube-proxy's jumps): one of the node's addresses
  const dstLocal = all.some((s) => /(?<!!) --dst-type LOCAL\b/.test(s.text));
  if ((hook === 'INPUT' || hook === 'PREROUTING' || dstLocal) && !dstSet) {
    if (!v6 && view.local.length) p.dst = view.local[0]!;
    if (v6 && view.local6?.length) p.dst6 = view.local6[0]!;
  } else if (dstLocal && !v6) {
    // an address of the node's that the ranges on the way (`! -d 127.0.0.0/8`) allow
    const fits = view.local.find((a) => all.every((s) => !s.dst || (a >= s.dst.lo && a <= s.dst.hi) !== s.invDst));
    if (fits !== undefined) p.dst = fits;
  }
  const iifPats = all.filter((s) => s.iif && !s.invIif).map((s) => s.iif);
  const oifPats = all.filter((s) => s.oif && !s.invOif).map((s) => s.oif);
  const local = hook === 'OUTPUT';
  // a destination routed out of the interface the rules ask for
  const outIf = oifPats.length ? view.ifaces.find((n) => oifPats.every((x) => ifaceFits(n, x))) : undefined;
  if (!dstSet && outIf !== undefined && hook !== 'INPUT') {
    if (!v6 && view.neighbour?.has(outIf)) p.dst = view.neighbour.get(outIf)!;
    if (v6 && view.neighbour6?.has(outIf)) p.dst6 = view.neighbour6.get(outIf)!;
  }
  const base: FuzzPacket[] = [];
  if (local || hook === 'POSTROUTING') base.push({ ...p, local: true, oif: oifPats.length ? view.ifaces.find((n) => oifPats.every((x) => ifaceFits(n, x))) ?? '' : '' });
  if (!local) {
    const notIif = all.filter((s) => s.iif && s.invIif).map((s) => s.iif);
    const fits = view.ifaces.filter((n) => iifPats.every((x) => ifaceFits(n, x)) && !notIif.some((x) => ifaceFits(n, x)));
    for (const i of (fits.length ? fits : view.ifaces).slice(0, 2)) base.push({ ...p, iif: i });
  }
  // Earlier rules of the chains on the way can take the packet first (a
  // `-p tcp --dport 80 -j ACCEPT` before a rule that names no port): where
  // the rules leave the protocol or the destination port open, the edges are
  // also tried with the other protocols and an unusual port; where they ask
  // for conntrack's INVALID state, with a TCP packet conntrack refuses (an RST
  // of no connection).
  const protoOpen = !all.some((s) => s.proto > 0 && !s.invProto);
  const dportOpen = !all.some((s) => s.dport !== undefined);
  const invalid = all.some((s) => / --(ct)?state \S*INVALID/.test(s.text));
  // the documentation addresses are what bogon filters drop first
  const srcOpen = !all.some((s) => (v6 ? s.src6 : s.src) !== undefined && !s.invSrc);
  const variants: Partial<FuzzPacket>[] = [];
  if (o.variants !== false) {
    const icmp = v6 ? 58 : 1;
    if (protoOpen) for (const proto of [17, icmp]) if (proto !== p.proto) variants.push({ proto });
    if (dportOpen && (p.proto === 6 || p.proto === 17)) variants.push({ dport: UNUSUAL_PORT });
    if (protoOpen && dportOpen) variants.push({ proto: p.proto === 6 ? 17 : 6, dport: UNUSUAL_PORT });
    if (srcOpen) variants.push(v6 ? { src6: PUBLIC_SRC6 } : { src: PUBLIC_SRC }, v6 ? { src6: PUBLIC_SRC6, dport: UNUSUAL_PORT } : { src: PUBLIC_SRC, dport: UNUSUAL_PORT });
    if (invalid) variants.push({ proto: 6, flags: 0x04, ...(dportOpen ? { dport: UNUSUAL_PORT } : {}) });
  }
  const firsts = base.slice();
  for (const q of variants) for (const b of firsts) base.push({ ...b, ...q });
  // a source the node routes back out of the interface (rp_filter, `-m rpfilter`)
  if (o.variants !== false && srcOpen) {
    for (const b of firsts) {
      if (!b.iif) continue;
      if (!v6 && view.neighbour?.has(b.iif)) base.push({ ...b, src: view.neighbour.get(b.iif)!, dport: dportOpen ? UNUSUAL_PORT : b.dport });
      if (v6 && view.neighbour6?.has(b.iif)) base.push({ ...b, src6: view.neighbour6.get(b.iif)!, dport: dportOpen ? UNUSUAL_PORT : b.dport });
    }
  }
  const out: FuzzPacket[] = [...base];
  const heads = [base[0]!, ...base.slice(firsts.length).filter((_, i) => i % firsts.length === 0)];
  const edges = (r: Range | undefined, set: (q: FuzzPacket, v: number) => FuzzPacket, max: number) => {
    if (!r) return;
    for (const b0 of heads) for (const v of [r.lo, r.hi, r.lo - 1, r.hi + 1]) if (v >= 0 && v <= max) out.push(set(b0, v));
  };
  edges(target.src, (q, v) => ({ ...q, src: v }), 0xffffffff);
  edges(target.dst, (q, v) => ({ ...q, dst: v }), 0xffffffff);
  const edges6 = (r: Range6 | undefined, set: (q: FuzzPacket, v: string) => FuzzPacket) => {
    if (!r) return;
    for (const b0 of heads) for (const v of [r.lo, r.hi, r.lo - 1n, r.hi + 1n]) if (v >= 0n && v <= MAX6) out.push(set(b0, text6(v)));
  };
  edges6(target.src6, (q, v) => ({ ...q, src6: v }));
  edges6(target.dst6, (q, v) => ({ ...q, dst6: v }));
  for (const r of target.sport ?? []) edges(r, (q, v) => ({ ...q, sport: v }), 65535);
  for (const r of target.dport ?? []) edges(r, (q, v) => ({ ...q, dport: v }), 65535);
  if (target.mark) {
    const m = target.mark;
    for (const b0 of heads) for (const v of [m.value, (m.value ^ (m.mask & -m.mask)) >>> 0, (m.value | ~m.mask) >>> 0, 0]) out.push({ ...b0, mark: v });
  }
  return out;
}

/** The paths of jumps from a builtin chain to `chain` (outermost rule first), at most `max`. */
export function pathsTo(table: TableName, chain: string, callers: Map<string, Caller[]>, family: 'ip' | 'ip6', max = 3): { hook: string; path: RuleShape[] }[] {
  const out: { hook: string; path: RuleShape[] }[] = [];
  const walk = (c: string, path: RuleShape[], depth: number) => {
    if (out.length >= max) return;
    if (isBuiltin(table, c)) {
      out.push({ hook: c, path });
      return;
    }
    if (depth > 12) return;
    for (const r of (callers.get(`${table}\0${c}`) ?? []).slice(0, max)) {
      if (path.some((p) => p.chain === r.chain)) continue;
      r.shape ??= shapeOf(r.table, r.chain, r.num, r.text.slice(`-A ${r.chain}`.length), family);
      walk(r.chain, [r.shape, ...path], depth + 1);
    }
  };
  walk(chain, [], 0);
  return out;
}

/**
 * How many packets of one source it takes before a rate or state match on
 * the way can change its answer (recent's --hitcount, limit's and
 * hashlimit's burst, connlimit's count, statistic's --every), plus one; 0
 * when no such match is on the way. At most 16.
 */
export function repeatsFor(path: readonly RuleShape[], target: RuleShape): number {
  let n = 0;
  for (const s of [...path, target]) {
    const t = s.text;
    const num = (re: RegExp, dflt: number) => {
      const m = re.exec(t);
      return m ? Number(m[1]) : dflt;
    };
    if (/ -m recent /.test(t)) n = Math.max(n, num(/ --hitcount (\d+)/, 1));
    if (/ -m limit /.test(t)) n = Math.max(n, num(/ --limit-burst (\d+)/, 5));
    if (/ -m hashlimit /.test(t)) n = Math.max(n, num(/ --hashlimit-burst (\d+)/, 5));
    if (/ -m connlimit /.test(t)) n = Math.max(n, num(/ --connlimit-(?:above|upto) (\d+)/, 1));
    if (/ -m statistic /.test(t)) n = Math.max(n, num(/ --every (\d+)/, 1));
  }
  return n === 0 ? 0 : Math.min(n + 1, 16);
}

/** `n` packets like `p` from the same source, each a new connection (the source port counts up). */
export function repeated(p: FuzzPacket, n: number): FuzzPacket[] {
  const out: FuzzPacket[] = [];
  for (let i = 0; i < n; i++) out.push({ ...p, sport: p.proto === 6 || p.proto === 17 ? (p.sport + i) & 0xffff : p.sport });
  return out;
}
