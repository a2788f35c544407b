/**
 * The constants a ruleset is written in, and their boundaries: every
 * address prefix (its first and last address and the ones just outside),
 * every port and port-range edge (and one past it), marks with and
 * without the bits their masks test, interface names (and a name a
 * wildcard takes, and one it does not), protocols, conntrack states, and
 * the addresses and ports of the node's ipset members. Packets built from
 * these land on both sides of every edge a rule draws.
 */
import { exthdrClauses } from './exthdr.js';
import type { Ruleset } from '../core/ast.js';
import { splitArgs } from '../compiler/parse/argv.js';
import { chainOrder, ruleSpec } from '../compiler/save.js';
import { addrRange, protoNumber } from './shape.js';
import { addrRange6, MAX6, text6 } from './addr6.js';

export interface Constants {
  /** IPv4 addresses as unsigned 32-bit numbers. */
  addrs: number[];
  /** IPv6 addresses as ip6tables prints them. */
  addrs6: string[];
  ports: number[];
  marks: number[];
  /** Concrete interface names (a wildcard's stem + "0", and a near miss). */
  ifaces: string[];
  protos: number[];
  ctstates: string[];
  /** IPv6 extension headers the rules look at, as packet spec clauses (exthdrClauses). */
  exthdrs: string[];
}

/** IPv6 address candidates (with a prefix length), checked by addrRange6. */
const IPV6 = /[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:\/\d{1,3})?/g;
const IPV4 = /\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\/(\d{1,2}))?(?:-(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}))?/g;

export function emptyConstants(): Constants {
  return { addrs: [], addrs6: [], ports: [], marks: [], ifaces: [], protos: [], ctstates: [], exthdrs: [] };
}

class Collector {
  readonly addrs = new Set<number>();
  readonly addrs6 = new Set<bigint>();
  readonly ports = new Set<number>();
  readonly marks = new Set<number>();
  readonly ifaces = new Set<string>();
  readonly protos = new Set<number>();
  readonly ctstates = new Set<string>();
  readonly exthdrs = new Set<string>();

  addr(v: number): void {
    if (v >= 0 && v <= 0xffffffff) this.addrs.add(v >>> 0);
  }

  /** A range's edges and the addresses just outside it. */
  range(lo: number, hi: number): void {
    this.addr(lo);
    this.addr(hi);
    this.addr(lo - 1);
    this.addr(hi + 1);
    if (hi - lo > 2) this.addr(lo + 1);
  }

  /** An IPv6 range's edges and the addresses just outside it. */
  range6(lo: bigint, hi: bigint): void {
    for (const v of [lo, hi, lo - 1n, hi + 1n, ...(hi - lo > 2n ? [lo + 1n] : [])]) if (v >= 0n && v <= MAX6) this.addrs6.add(v);
  }

  port(p: number): void {
    if (p >= 0 && p <= 65535) this.ports.add(p);
  }

  portEdges(lo: number, hi: number): void {
    for (const p of [lo - 1, lo, hi, hi + 1]) this.port(p);
  }

  iface(name: string): void {
    if (name.endsWith('+')) {
      const stem = name.slice(0, -1);
      this.ifaces.add(`${stem}0`);
      if (stem) this.ifaces.add(`x${stem}`);
    } else if (name) this.ifaces.add(name);
  }

  /** Addresses and ranges anywhere in a text (option values, ipset members). */
  text(s: string): void {
    for (const m of s.matchAll(IPV4)) {
      const r = addrRange(m[2] === undefined ? m[1]! : `${m[1]}/${m[2]}`);
      if (!r) continue;
      if (m[3] !== undefined) {
        const hi = addrRange(m[3]);
        if (hi) this.range(r.lo, hi.hi);
      } else this.range(r.lo, r.hi);
    }
    if (s.indexOf(':') < 0) return;
    for (const m of s.matchAll(IPV6)) {
      const r = addrRange6(m[0]);
      if (r) this.range6(r.lo, r.hi);
    }
  }

  done(): Constants {
    const sortNum = (s: Set<number>) => [...s].sort((a, b) => a - b);
    return {
      addrs: sortNum(this.addrs), addrs6: [...this.addrs6].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(text6), ports: sortNum(this.ports), marks: sortNum(this.marks), ifaces: [...this.ifaces].sort(),
      protos: sortNum(this.protos), ctstates: [...this.ctstates].sort(), exthdrs: [...this.exthdrs].slice(0, 256),
    };
  }
}

function parseNum(s: string | undefined): number | undefined {
  if (s === undefined || !/^(0x[0-9a-f]+|\d+)$/i.test(s)) return undefined;
  const v = Number(s);
  return v <= 0xffffffff ? v : undefined;
}

/** One rule (its iptables-save options) into the collector. */
function ruleConstants(c: Collector, spec: string): void {
  for (const x of exthdrClauses(spec)) c.exthdrs.add(x);
  const args = splitArgs(spec.trim(), 1, '<rule>').map((a) => a.text);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    if (a === '-i' || a === '-o') c.iface(v ?? '');
    else if (a === '-p') {
      const p = protoNumber(v);
      if (p !== undefined) c.protos.add(p);
    } else if (/^--(sports?|dports?|ports|to-ports|to-destination|to-source|to)$/.test(a) && v !== undefined) {
      // port lists and ranges (`80`, `1024:65535`, `80,443`, `10.0.0.1:8080`, `10.0.0.1:80-90`)
      for (const part of v.split(',')) {
        const pm = /(?:^|:)(\d{1,5})(?:[:-](\d{1,5}))?$/.exec(part);
        if (pm) c.portEdges(Number(pm[1]), Number(pm[2] ?? pm[1]));
        const open = /^(\d{1,5}):$/.exec(part);
        if (open) c.portEdges(Number(open[1]), 65535);
      }
    } else if (/^--(mark|set-xmark|set-mark|or-mark|and-mark|xor-mark|ctmark|nfmask|ctmask)$/.test(a) && v !== undefined) {
      const [val, mask] = v.split('/');
      const x = parseNum(val);
      const m = parseNum(mask) ?? 0xffffffff;
      if (x !== undefined) {
        c.marks.add(x >>> 0);
        c.marks.add((x & m) >>> 0);
        // the same value with a bit the mask tests flipped, and with the bits it ignores set
        const low = m & -m;
        c.marks.add((x ^ low) >>> 0);
        c.marks.add((x | ~m) >>> 0);
      }
    } else if (/^--(ctstate|state)$/.test(a) && v !== undefined) {
      for (const s of v.split(',')) c.ctstates.add(s.toLowerCase());
    }
    if (v !== undefined && /^-[sd]$|^--(to|src-range|dst-range|ctorig|ctrepl)/.test(a)) c.text(v);
  }
}

/** The constants of rulesets (and of extra texts: ipset-save members). */
export function constantsOf(rulesets: readonly Ruleset[], texts: readonly string[] = []): Constants {
  const c = new Collector();
  for (const rs of rulesets) {
    for (const t of rs.tables.values()) for (const ch of chainOrder(t)) for (const r of ch.rules) ruleConstants(c, ruleSpec(rs.family, r));
  }
  ipsetConstants(c, texts);
  return c.done();
}

/** Addresses and ports of ipset members (`add NAME 10.0.0.1,tcp:80`). */
function ipsetConstants(c: Collector, texts: readonly string[]): void {
  for (const t of texts) {
    c.text(t);
    for (const m of t.matchAll(/,(?:tcp|udp|sctp):(\d{1,5})(?:-(\d{1,5}))?/g)) c.portEdges(Number(m[1]), Number(m[2] ?? m[1]));
  }
}

/**
 * The constants of rule texts (`-A CHAIN ...` as iptables-save prints them),
 * at most `max` rules: beyond that an even sample of them.
 */
export function constantsOfTexts(rules: readonly string[], texts: readonly string[] = [], max = 20000): Constants {
  const c = new Collector();
  const step = Math.max(1, rules.length / max);
  for (let i = 0; i < rules.length; i += step) ruleConstants(c, rules[Math.floor(i)]!);
  ipsetConstants(c, texts);
  return c.done();
}

/** How many boundary values each dimension holds. */
export function constantsSummary(k: Constants): string {
  return `${k.addrs.length + k.addrs6.length} addresses, ${k.ports.length} ports, ${k.marks.length} marks, ${k.ifaces.length} interfaces, ${k.protos.length} protocols, ${k.ctstates.length} conntrack states`;
}
