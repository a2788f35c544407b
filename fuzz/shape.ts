/**
 * What a rule matches, in the few dimensions where set inclusion and
 * disjointness are easy to decide: IPv4 or IPv6 source and destination ranges,
 * interfaces, protocol, tcp/udp port ranges, the packet mark. A rule with
 * any other match (or an inverted one outside those) is `opaque`: nothing
 * is claimed about it. Read from the rule as iptables-save prints it, so
 * every spelling of the input has already been canonicalised.
 *
 * The fuzzer names the earlier rule that shadows a rule no packet reached
 * (every packet the later rule matches, the earlier terminal one takes
 * first), and the diff says two orders of a chain are equivalent when
 * every pair of rules they order differently is disjoint.
 */
import type { Family, Ruleset, TableName } from '../core/ast.js';
import { TABLE_CHAINS } from '../core/ast.js';
import { splitArgs } from '../compiler/parse/argv.js';
import { chainOrder, ruleSpec } from '../compiler/save.js';
import { parseIPv4 } from '../core/addr.js';
import { addrRange6, type Range6 } from './addr6.js';

/** An inclusive range of unsigned integers. */
export interface Range {
  lo: number;
  hi: number;
}

export interface RuleShape {
  table: TableName;
  chain: string;
  /** 1-based, as TRACE numbers it. */
  num: number;
  /** `-A CHAIN ...` as iptables-save prints it. */
  text: string;
  /** IPv4 rules: the address ranges. */
  src: Range | undefined;
  dst: Range | undefined;
  /** IPv6 rules: the address ranges. */
  src6: Range6 | undefined;
  dst6: Range6 | undefined;
  invSrc: boolean;
  invDst: boolean;
  iif: string;
  oif: string;
  invIif: boolean;
  invOif: boolean;
  /** 0: any. */
  proto: number;
  invProto: boolean;
  /** Unions of port ranges; undefined: any. */
  sport: Range[] | undefined;
  dport: Range[] | undefined;
  invSport: boolean;
  invDport: boolean;
  mark: { value: number; mask: number; inv: boolean } | undefined;
  /** Some match is outside this model. */
  opaque: boolean;
  /** The target as written after -j/-g (`ACCEPT`, `DNAT --to-destination 10.0.0.1:80`, `KUBE-SVC-X`), '' without one. */
  target: string;
  /** `-g`. */
  goto: boolean;
  /** The packet never goes past the rule when it matches (a verdict, a goto, a terminal target). */
  terminal: boolean;
}

/** Targets that end the traversal of the table when their rule matches (x_tables targets returning a verdict other than XT_CONTINUE). */
const TERMINAL = new Set(['ACCEPT', 'DROP', 'REJECT', 'QUEUE', 'NFQUEUE', 'RETURN', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP', 'TPROXY', 'NOTRACK']);

/** Matches that restrict nothing. */
const NEUTRAL_MATCHES = new Set(['comment']);

function prefixRange(addr: Uint8Array, plen: number): Range {
  const a = ((addr[0]! << 24) | (addr[1]! << 16) | (addr[2]! << 8) | addr[3]!) >>> 0;
  const m = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  const lo = (a & m) >>> 0;
  return { lo, hi: (lo | (~m >>> 0)) >>> 0 };
}

/** `10.0.0.0/8` (and a dotted mask when contiguous) as a range; undefined otherwise. */
export function addrRange(s: string): Range | undefined {
  const [a, p] = s.split('/');
  const addr = parseIPv4(a!);
  if (!addr) return undefined;
  if (p === undefined) return prefixRange(addr, 32);
  if (/^\d{1,2}$/.test(p) && Number(p) <= 32) return prefixRange(addr, Number(p));
  return undefined;
}

function portRanges(s: string): Range[] | undefined {
  const out: Range[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d*)(?::(\d*))?$/.exec(part);
    if (!m) return undefined;
    const lo = m[1] === '' ? 0 : Number(m[1]);
    const hi = m[2] === undefined ? lo : m[2] === '' ? 65535 : Number(m[2]);
    out.push({ lo, hi });
  }
  return out;
}

/** The protocol numbers of `-p` as iptables-save prints them (names it prints, or a number). */
export function protoNumber(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = PROTO_NAMES[v];
  if (n !== undefined) return n;
  return /^\d+$/.test(v) && Number(v) <= 255 ? Number(v) : undefined;
}

const PROTO_NAMES: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, { tcp: 6, udp: 17, icmp: 1, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, gre: 47, esp: 50, ah: 51 });

function num(s: string): number {
  return Number(s) >>> 0;
}

/** The shape of one rule from its iptables-save text (`ruleSpec`). */
export function shapeOf(table: TableName, chain: string, num1: number, spec: string, family: Family): RuleShape {
  const sh: RuleShape = {
    table, chain, num: num1, text: `-A ${chain}${spec}`, src: undefined, dst: undefined, src6: undefined, dst6: undefined, invSrc: false, invDst: false, iif: '', oif: '',
    invIif: false, invOif: false, proto: 0, invProto: false, sport: undefined, dport: undefined, invSport: false, invDport: false,
    mark: undefined, opaque: false, target: '', goto: false, terminal: false,
  };
  const args = splitArgs(spec.trim(), 1, '<rule>').map((a) => a.text);
  let inv = false;
  let match = '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = () => args[++i] ?? '';
    if (a === '!') {
      inv = true;
      continue;
    }
    switch (a) {
      case '-s':
      case '-d': {
        const v = val();
        if (family === 'ip6') {
          const r6 = addrRange6(v);
          if (!r6) sh.opaque = true;
          if (a === '-s') [sh.src6, sh.invSrc] = [r6, inv];
          else [sh.dst6, sh.invDst] = [r6, inv];
          break;
        }
        const r = addrRange(v);
        if (!r) sh.opaque = true;
        if (a === '-s') [sh.src, sh.invSrc] = [r, inv];
        else [sh.dst, sh.invDst] = [r, inv];
        break;
      }
      case '-i':
        [sh.iif, sh.invIif] = [val(), inv];
        break;
      case '-o':
        [sh.oif, sh.invOif] = [val(), inv];
        break;
      case '-p': {
        const v = val();
        sh.proto = protoNumber(v) ?? -1;
        sh.invProto = inv;
        if (sh.proto < 0) sh.opaque = true;
        break;
      }
      case '-f':
        sh.opaque = true;
        break;
      case '-m':
        match = val();
        if (!NEUTRAL_MATCHES.has(match) && match !== 'tcp' && match !== 'udp' && match !== 'mark' && match !== 'multiport') sh.opaque = true;
        break;
      case '-j':
      case '-g': {
        sh.goto = a === '-g';
        sh.target = args.slice(i + 1).join(' ');
        const name = args[i + 1] ?? '';
        sh.terminal = sh.goto || TERMINAL.has(name);
        i = args.length;
        break;
      }
      default:
        if ((match === 'tcp' || match === 'udp' || match === 'multiport') && /^--(sport|dport|sports|dports|ports)$/.test(a)) {
          const r = portRanges(val());
          if (!r || a === '--ports') sh.opaque = true;
          else if (a.startsWith('--s')) [sh.sport, sh.invSport] = [r, inv];
          else [sh.dport, sh.invDport] = [r, inv];
        } else if (match === 'mark' && a === '--mark') {
          const [v, m] = val().split('/');
          sh.mark = { value: num(v!), mask: m === undefined ? 0xffffffff : num(m), inv };
        } else if (match === 'comment' && a === '--comment') {
          val();
        } else {
          sh.opaque = true;
          // skip the option's value words
          while (args[i + 1] !== undefined && !args[i + 1]!.startsWith('-') && args[i + 1] !== '!') i++;
        }
    }
    inv = false;
  }
  if (sh.target === '') sh.terminal = false;
  return sh;
}

/** Every rule of every chain of the ruleset, shaped (builtin chains first, in save order). */
export function shapes(rs: Ruleset): RuleShape[] {
  const out: RuleShape[] = [];
  for (const [name, t] of rs.tables) {
    for (const c of chainOrder(t)) c.rules.forEach((r, i) => out.push(shapeOf(name, c.name, i + 1, ruleSpec(rs.family, r), rs.family)));
  }
  return out;
}

/** Whether a builtin chain of `table`. */
export function isBuiltin(table: TableName, chain: string): boolean {
  return TABLE_CHAINS[table].includes(chain);
}

function within<T extends Range | Range6>(inner: T, outer: T): boolean {
  return inner.lo >= outer.lo && inner.hi <= outer.hi;
}

function rangesWithin(inner: Range[], outer: Range[]): boolean {
  return inner.every((r) => outer.some((o) => within(r, o)));
}

function rangesMeet(a: Range[], b: Range[]): boolean {
  return a.some((x) => b.some((y) => x.lo <= y.hi && y.lo <= x.hi));
}

/** An interface pattern: `eth+` matches every name starting `eth`, `+` any. */
function ifaceWithin(inner: string, outer: string): boolean {
  if (outer === '') return true;
  if (inner === '') return false;
  if (outer.endsWith('+')) return (inner.endsWith('+') ? inner.slice(0, -1) : inner).startsWith(outer.slice(0, -1));
  return inner === outer;
}

function ifaceMeet(a: string, b: string): boolean {
  if (a === '' || b === '') return true;
  const pa = a.endsWith('+') ? a.slice(0, -1) : undefined;
  const pb = b.endsWith('+') ? b.slice(0, -1) : undefined;
  if (pa !== undefined && pb !== undefined) return pa.startsWith(pb) || pb.startsWith(pa);
  if (pa !== undefined) return b.startsWith(pa);
  if (pb !== undefined) return a.startsWith(pb);
  return a === b;
}

/**
 * Whether every packet `r` matches, `e` matches too (both shapes
 * non-opaque; an inverted field of `e` is only trusted when `r` has the
 * same one). False when unsure.
 */
export function subsumes(e: RuleShape, r: RuleShape): boolean {
  if (e.opaque || r.opaque) return false;
  const fieldRange = <T extends Range | Range6>(er: T | undefined, ei: boolean, rr: T | undefined, ri: boolean) => {
    if (!er) return true;
    if (!rr) return false;
    if (ei !== ri) return false;
    return ei ? within(er, rr) : within(rr, er);
  };
  if (!fieldRange(e.src, e.invSrc, r.src, r.invSrc) || !fieldRange(e.dst, e.invDst, r.dst, r.invDst)) return false;
  if (!fieldRange(e.src6, e.invSrc, r.src6, r.invSrc) || !fieldRange(e.dst6, e.invDst, r.dst6, r.invDst)) return false;
  const iface = (ei: string, einv: boolean, ri: string, rinv: boolean) => {
    if (ei === '') return true;
    if (einv !== rinv) return false;
    return einv ? ifaceWithin(ei, ri) : ifaceWithin(ri, ei);
  };
  if (!iface(e.iif, e.invIif, r.iif, r.invIif) || !iface(e.oif, e.invOif, r.oif, r.invOif)) return false;
  if (e.proto !== 0 && (e.proto !== r.proto || e.invProto !== r.invProto)) return false;
  const ports = (ep: Range[] | undefined, ei: boolean, rp: Range[] | undefined, ri: boolean) => {
    if (!ep) return true;
    if (!rp || ei !== ri) return false;
    return ei ? rangesWithin(ep, rp) : rangesWithin(rp, ep);
  };
  if (!ports(e.sport, e.invSport, r.sport, r.invSport) || !ports(e.dport, e.invDport, r.dport, r.invDport)) return false;
  if (e.mark) {
    if (!r.mark || e.mark.inv || r.mark.inv) return false;
    // r's packets have (mark & r.mask) == r.value; e needs (mark & e.mask) == e.value for all of them
    if ((e.mark.mask & ~r.mark.mask) !== 0 || ((r.mark.value & e.mark.mask) >>> 0) !== e.mark.value >>> 0) return false;
  }
  return true;
}

/** Whether no packet matches both (decided on non-inverted fields only). False when unsure. */
export function disjoint(a: RuleShape, b: RuleShape): boolean {
  const rangeApart = <T extends Range | Range6>(x: T | undefined, xi: boolean, y: T | undefined, yi: boolean) => !!x && !!y && !xi && !yi && (x.hi < y.lo || y.hi < x.lo);
  if (rangeApart(a.src, a.invSrc, b.src, b.invSrc) || rangeApart(a.dst, a.invDst, b.dst, b.invDst)) return true;
  if (rangeApart(a.src6, a.invSrc, b.src6, b.invSrc) || rangeApart(a.dst6, a.invDst, b.dst6, b.invDst)) return true;
  if (a.proto > 0 && b.proto > 0 && !a.invProto && !b.invProto && a.proto !== b.proto) return true;
  if (!a.invIif && !b.invIif && !ifaceMeet(a.iif, b.iif)) return true;
  if (!a.invOif && !b.invOif && !ifaceMeet(a.oif, b.oif)) return true;
  const portsApart = (x: Range[] | undefined, xi: boolean, y: Range[] | undefined, yi: boolean) => !!x && !!y && !xi && !yi && !rangesMeet(x, y);
  if (portsApart(a.sport, a.invSport, b.sport, b.invSport) || portsApart(a.dport, a.invDport, b.dport, b.invDport)) return true;
  if (a.mark && b.mark && !a.mark.inv && !b.mark.inv) {
    const common = (a.mark.mask & b.mark.mask) >>> 0;
    if (((a.mark.value & common) >>> 0) !== ((b.mark.value & common) >>> 0)) return true;
  }
  return false;
}

/**
 * The earlier terminal rule of the same chain that takes every packet
 * `r` matches, when the model can tell; undefined otherwise.
 */
export function shadowOf(chainShapes: readonly RuleShape[], r: RuleShape): RuleShape | undefined {
  for (const e of chainShapes) {
    if (e.num >= r.num) break;
    if (e.terminal && subsumes(e, r)) return e;
  }
  return undefined;
}
