/**
 * SNAT, DNAT, MASQUERADE and REDIRECT targets: iptables
 * `extensions/libxt_NAT.c` (the merged libipt_SNAT/libipt_DNAT/
 * libip6t_SNAT/libip6t_DNAT/MASQUERADE/REDIRECT of iptables >= 1.8.9);
 * kernel `net/netfilter/xt_nat.c` (SNAT/DNAT), `xt_MASQUERADE.c`
 * (`ipt_MASQUERADE.c`/`ip6t_MASQUERADE.c` in older trees) and
 * `xt_REDIRECT.c`.
 *
 * Argument syntax (parse_to/parse_ports):
 *   --to-source / --to-destination  [ADDR[-ADDR]][:PORT[-PORT[/BASE]]]
 *     (IPv6 addresses in brackets when a port follows: `[a::1-a::9]:80-90`)
 *   --to-ports                      PORT[-PORT[/BASE]]
 * A port needs `-p tcp|udp|sctp|dccp|icmp` given BEFORE the option. The
 * first port and the base may be service names, the upper port must be a
 * number. Addresses are numeric (inet_pton: dotted quad, no leading zeros).
 *
 * Revisions as iptables picks them on current kernels: SNAT/MASQUERADE/
 * REDIRECT IPv4 rev 0 (`nf_nat_ipv4_multi_range_compat`), SNAT IPv6 rev 1
 * and MASQUERADE/REDIRECT IPv6 rev 0 (`nf_nat_range`), DNAT rev 2
 * (`nf_nat_range2`, the only one that stores the `/BASE` port of a shifted
 * port range). With the older layouts the base is lost (saved as `/0`);
 * REDIRECT refuses it ("Shifted portmap ranges not supported").
 *
 * Kernel: all only in the `nat` table; SNAT from POSTROUTING/INPUT, DNAT
 * and REDIRECT from PREROUTING/OUTPUT, MASQUERADE from POSTROUTING.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { Family } from '../../core/ast.js';
import type { ExtContext, TargetModule, ExtTargetNode } from '../types.js';
import { serviceToPort } from '../protocols.js';
import { strtoulPrefix } from '../numbers.js';
import { addrBytes, formatAddr, parseIPv4Into, parseIPv6 } from '../../core/addr.js';
import { NF_ACCEPT } from '../../core/netfilter.js';
import { NAT_DNAT, NAT_MASQ, NAT_REDIR, NAT_SNAT, emitNat } from '../../vm/expr/index.js';
import type { LowerCtx } from '../lower.js';
import type { TargetFn } from '../xt.js';

/** `NF_NAT_RANGE_*` flags (uapi nf_nat.h). */
export const NF_NAT_RANGE = {
  MAP_IPS: 1 << 0,
  PROTO_SPECIFIED: 1 << 1,
  PROTO_RANDOM: 1 << 2,
  PERSISTENT: 1 << 3,
  PROTO_RANDOM_FULLY: 1 << 4,
  PROTO_OFFSET: 1 << 5,
  NETMAP: 1 << 6,
} as const;

/** `struct nf_nat_range2` in decoded form (also used for the older layouts). */
interface NatRangeData {
  /** Kernel target revision the rule is loaded with (0, 1 or 2; see the header). */
  revision: number;
  /** NF_NAT_RANGE_* bits. */
  flags: number;
  /** First address of the range (4 or 16 bytes; zeros without MAP_IPS). */
  minAddr: Uint8Array;
  /** Last address of the range. */
  maxAddr: Uint8Array;
  /** Port range (host order; meaningful with PROTO_SPECIFIED). */
  minPort: number;
  maxPort: number;
  /** Base of a shifted port range (PROTO_OFFSET); 0 when the layout cannot hold it. */
  basePort: number;
}

type NatKind = 'SNAT' | 'DNAT' | 'MASQUERADE' | 'REDIRECT';

const PORT_PROTOS = new Set([6, 17, 132, 33, 1]); // tcp udp sctp dccp icmp (libxt_NAT.c __NAT_parse)

/** xtables_strtoui(arg, &end, ...) prefix parse. */
function strtoui(s: string, min: number, max: number): { value: number; rest: string } | undefined {
  const r = strtoulPrefix(s, BigInt(min), BigInt(max));
  return r ? { value: Number(r.value), rest: r.rest } : undefined;
}

/** parse_ports(): PORT[-PORT[/BASE]] into the range. */
function parsePorts(arg: string, portok: boolean, r: NatRangeData): void {
  if (!portok) fail('Need TCP, UDP, SCTP or DCCP with port specification');
  r.flags |= NF_NAT_RANGE.PROTO_SPECIFIED;
  let port: number;
  let end: string;
  const p = strtoui(arg, 0, 0xffff);
  if (p) {
    port = p.value;
    end = p.rest;
  } else {
    const s = serviceToPort(arg);
    if (s === undefined) fail(`Port \`${arg}' not valid`);
    port = s;
    end = '';
  }
  if (end === '') {
    r.minPort = r.maxPort = port;
    return;
  }
  if (end[0] === ':') fail('Invalid port:port syntax - use dash');
  if (end[0] !== '-') fail(`Garbage after port value: \`${end}'`);
  const maxArg = end.slice(1);
  // a range: no service names for the upper bound
  const m = strtoui(maxArg, 0, 0xffff);
  if (!m) fail(`Port \`${maxArg}' not valid`);
  if (m.value < port) fail(`Port range \`${maxArg}' funky`);
  r.minPort = port;
  r.maxPort = m.value;
  if (m.rest === '') return;
  if (m.rest[0] !== '/') fail(`Garbage after port range: \`${m.rest}'`);
  const baseArg = m.rest.slice(1);
  let base: number;
  const b = strtoui(baseArg, 1, 0xffff); // trailing text after the number is ignored
  if (b) {
    base = b.value;
  } else {
    const s = serviceToPort(baseArg);
    if (s === undefined) fail(`Port \`${baseArg}' not valid`);
    base = s;
  }
  r.flags |= NF_NAT_RANGE.PROTO_OFFSET;
  r.basePort = base;
}

/** glibc inet_pton(AF_INET): exactly four decimal parts 0..255 without leading zeros. */
function inetPton4(s: string): Uint8Array | undefined {
  // scanned once, without a split and a regex per group (one DNAT per kube-proxy endpoint)
  if (!parseIPv4Into(s, 4, PTON4, true)) return undefined;
  // kept by the rule: a view on the shared slab rather than a buffer of its own
  const out = addrBytes(4);
  out.set(PTON4);
  return out;
}

/** inetPton4()'s bytes while it scans (all four written when it succeeds). */
const PTON4 = new Uint8Array(4);

function inetPton(family: Family, s: string): Uint8Array | undefined {
  if (family === 'ip') return inetPton4(s);
  if (s.includes('.')) {
    const v4 = s.slice(s.lastIndexOf(':') + 1);
    if (!inetPton4(v4)) return undefined;
  }
  return parseIPv6(s);
}

/** parse_to(): [ADDR[-ADDR]][:PORTS] (IPv6: `[ADDR[-ADDR]]:PORTS`). */
function parseTo(orig: string, portok: boolean, r: NatRangeData, family: Family): void {
  let start: string;
  let colon: number; // index of the port colon in `orig`, -1 for none
  const lb = orig.indexOf('[');
  if (lb < 0) {
    colon = orig.indexOf(':');
    // one colon is port information, more make an IPv6 address
    if (colon >= 0 && orig.indexOf(':', colon + 1) >= 0) colon = -1;
    start = colon >= 0 ? orig.slice(0, colon) : orig;
  } else {
    const rb = orig.indexOf(']', lb + 1);
    if (rb < 0 || family === 'ip') fail('Invalid address format');
    start = orig.slice(lb + 1, rb);
    colon = orig.indexOf(':', rb + 1);
  }
  if (colon >= 0) {
    parsePorts(orig.slice(colon + 1), portok, r);
    // starts with a colon, or `[]:`: no address
    if (colon === 0 || colon === 2) return;
    if (lb < 0) start = orig.slice(0, colon);
  }
  r.flags |= NF_NAT_RANGE.MAP_IPS;
  const dash = start.indexOf('-');
  const lo = dash >= 0 ? start.slice(0, dash) : start;
  const min = inetPton(family, lo);
  if (!min) fail(`Bad IP address "${lo}"`);
  r.minAddr = min;
  if (dash >= 0) {
    const hiText = start.slice(dash + 1);
    const max = inetPton(family, hiText);
    if (!max) fail(`Bad IP address "${hiText}"`);
    r.maxAddr = max;
  } else {
    // one address: the same bytes (nothing changes a range's addresses in place; a kube-proxy dump has one per endpoint)
    r.maxAddr = min;
  }
}

/** The zero addresses a range starts with (replaced, never changed in place), by length. */
const ZERO_ADDR: Readonly<Record<number, Uint8Array>> = { 4: new Uint8Array(4), 16: new Uint8Array(16) };

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** sprint_range(): the range as iptables prints it. */
function formatNatRange(r: NatRangeData, family: Family): string {
  const brackets = family === 'ip6' && (r.flags & NF_NAT_RANGE.PROTO_SPECIFIED) !== 0;
  let s = '';
  if (r.flags & NF_NAT_RANGE.MAP_IPS) {
    if (brackets) s += '[';
    s += formatAddr(family, r.minAddr);
    if (!sameBytes(r.minAddr, r.maxAddr)) s += '-' + formatAddr(family, r.maxAddr);
    if (brackets) s += ']';
  }
  if (r.flags & NF_NAT_RANGE.PROTO_SPECIFIED) {
    s += `:${r.minPort}`;
    if (r.maxPort !== r.minPort) s += `-${r.maxPort}`;
    if (r.flags & NF_NAT_RANGE.PROTO_OFFSET) s += `/${r.basePort}`;
  }
  return s;
}

interface NatSpec {
  kind: NatKind;
  family: Family;
  /** The address option (SNAT/DNAT) or undefined for the `--to-ports` targets. */
  toOpt: 'to-source' | 'to-destination' | undefined;
  flagOpts: readonly string[];
  revision: number;
  /** The layout stores the base port of a shifted range (nf_nat_range2). */
  keepsBase: boolean;
  /** x6_fcheck refuses a shifted range (DNAT_fcheck/DNAT_fcheck6). */
  refusesOffset: boolean;
  hooks: number;
}

const FLAG_BITS: Readonly<Record<string, number>> = {
  random: NF_NAT_RANGE.PROTO_RANDOM,
  'random-fully': NF_NAT_RANGE.PROTO_RANDOM_FULLY,
  persistent: NF_NAT_RANGE.PERSISTENT,
};

function makeNat(spec: NatSpec): TargetModule<NatRangeData> {
  const bytes = spec.family === 'ip' ? 4 : 16;
  const rangeOpt = spec.toOpt ?? 'to-ports';
  const kmod = spec.kind === 'SNAT' || spec.kind === 'DNAT' ? 'xt_nat' : `xt_${spec.kind}`;
  return {
    kind: 'target',
    name: spec.kind,
    family: spec.family,
    options: [{ name: rangeOpt, arg: 1 }, ...spec.flagOpts.map((name) => ({ name, arg: 0 as const }))],
    tables: ['nat'],
    hooks: spec.hooks,
    init: () => ({
      revision: spec.revision,
      flags: 0,
      minAddr: ZERO_ADDR[bytes]!,
      maxAddr: ZERO_ADDR[bytes]!,
      minPort: 0,
      maxPort: 0,
      basePort: 0,
    }),
    parse(d, opt, arg, _inv, ctx: ExtContext) {
      const portok = PORT_PROTOS.has(ctx.rule.proto);
      if (opt === rangeOpt) {
        if (spec.toOpt) parseTo(arg!, portok, d, spec.family);
        else parsePorts(arg!, portok, d);
        if (!spec.keepsBase) d.basePort = 0;
        return;
      }
      d.flags |= FLAG_BITS[opt] ?? 0;
    },
    final(d, seen) {
      if (spec.refusesOffset && d.flags & NF_NAT_RANGE.PROTO_OFFSET) {
        fail('Shifted portmap ranges not supported with this kernel');
      }
      if (spec.toOpt && !seen.has(spec.toOpt)) fail(`${spec.kind}: option "--${spec.toOpt}" must be specified`, 'option');
    },
    save(d) {
      let range = formatNatRange(d, spec.family);
      if (!spec.toOpt && range.startsWith(':')) range = range.slice(1);
      let s = range ? ` --${rangeOpt} ${range}` : '';
      if (d.flags & NF_NAT_RANGE.PROTO_RANDOM) s += ' --random';
      if (d.flags & NF_NAT_RANGE.PROTO_RANDOM_FULLY) s += ' --random-fully';
      if (d.flags & NF_NAT_RANGE.PERSISTENT) s += ' --persistent';
      return s;
    },
    check(d) {
      // masquerade_tg_check / redirect_tg_check: no addresses for these two
      if (!spec.toOpt && d.flags & NF_NAT_RANGE.MAP_IPS) return `${kmod}: bad MAP_IPS`;
      return undefined;
    },
    lower: lowerNat,
    reference: (d) => natTg(spec.kind, d, spec.family),
  };
}

const SNAT_HOOKS = (1 << Hook.POST_ROUTING) | (1 << Hook.LOCAL_IN);
const DNAT_HOOKS = (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_OUT);
const MASQ_HOOKS = 1 << Hook.POST_ROUTING;

function natPair(kind: NatKind, make: (family: Family) => Omit<NatSpec, 'kind' | 'family'>): [TargetModule<NatRangeData>, TargetModule<NatRangeData>] {
  return [makeNat({ kind, family: 'ip', ...make('ip') }), makeNat({ kind, family: 'ip6', ...make('ip6') })];
}

export const [SNAT4, SNAT6] = natPair('SNAT', (f) => ({
  toOpt: 'to-source',
  flagOpts: ['random', 'random-fully', 'persistent'],
  revision: f === 'ip' ? 0 : 1,
  keepsBase: false,
  refusesOffset: false,
  hooks: SNAT_HOOKS,
}));

export const [DNAT4, DNAT6] = natPair('DNAT', () => ({
  toOpt: 'to-destination',
  flagOpts: ['random', 'persistent'],
  revision: 2,
  keepsBase: true,
  refusesOffset: false,
  hooks: DNAT_HOOKS,
}));

export const [MASQUERADE4, MASQUERADE6] = natPair('MASQUERADE', () => ({
  toOpt: undefined,
  flagOpts: ['random', 'random-fully'],
  revision: 0,
  keepsBase: false,
  refusesOffset: false,
  hooks: MASQ_HOOKS,
}));

export const [REDIRECT4, REDIRECT6] = natPair('REDIRECT', () => ({
  toOpt: undefined,
  flagOpts: ['random'],
  revision: 0,
  keepsBase: false,
  refusesOffset: true,
  hooks: DNAT_HOOKS,
}));

export const NAT_TARGETS = [SNAT4, SNAT6, DNAT4, DNAT6, MASQUERADE4, MASQUERADE6, REDIRECT4, REDIRECT6];

// --- lowering (the VM engine) ------------------------------------------------
const KIND_NUM: Readonly<Record<NatKind, number>> = { SNAT: NAT_SNAT, DNAT: NAT_DNAT, MASQUERADE: NAT_MASQ, REDIRECT: NAT_REDIR };

/** SNAT/DNAT/MASQUERADE/REDIRECT → `nat`: the binding through the node's NAT core, then NF_ACCEPT (vm/expr/nat.ts). */
function lowerNat(c: LowerCtx, t: ExtTargetNode<NatRangeData>): void {
  const d = t.data;
  const addrs = d.flags & NF_NAT_RANGE.MAP_IPS ? { minAddr: d.minAddr, maxAddr: d.maxAddr } : {};
  emitNat(c.b, KIND_NUM[t.name as NatKind], { flags: d.flags, ...addrs, minPort: d.minPort, maxPort: d.maxPort, basePort: d.basePort });
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * SNAT, DNAT, MASQUERADE and REDIRECT: net/netfilter/xt_nat.c
 * (xt_snat_target_v*, xt_dnat_target_v*: nf_nat_setup_info with the rule's
 * range), xt_MASQUERADE.c (nf_nat_masquerade_ipv4/ipv6), xt_REDIRECT.c
 * (nf_nat_redirect_ipv4/ipv6), kernel 6.18: the NAT core is the node's
 * (XtEnv.ct); without one the target accepts with no binding. Recorded
 * while tracing.
 */
function natTg(kind: NatKind, info: NatRangeData, family: Family): TargetFn {
  const k = KIND_NUM[kind];
  const alen = info.flags & NF_NAT_RANGE.MAP_IPS ? (family === 'ip' ? 4 : 16) : 0;
  return (par) => {
    const ct = par.env.ct;
    const v = ct === null ? NF_ACCEPT
      : ct.natTarget(par.pkt, par.hook, k, info.flags, info.minAddr, 0, info.maxAddr, 0, alen, info.minPort, info.maxPort, info.basePort);
    if (par.env.recording) par.env.actions.push({ kind: 'NAT', chain: par.chain, rule: par.rule, target: kind, data: info, verdict: v });
    return v;
  };
}
