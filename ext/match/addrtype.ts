/**
 * addrtype match, revision 1: iptables `extensions/libxt_addrtype.c`,
 * kernel `net/netfilter/xt_addrtype.c` (`addrtype_mt_checkentry_v1`): the
 * routing type (RTN_LOCAL, RTN_UNICAST, ...) of the source and/or
 * destination address, optionally looked up only on the packet's input or
 * output interface.
 *
 * Kernel restrictions: --limit-iface-in and --limit-iface-out exclude each
 * other; --limit-iface-out is refused from PREROUTING/INPUT and
 * --limit-iface-in from OUTPUT/POSTROUTING; for IPv6 the BLACKHOLE,
 * BROADCAST and PROHIBIT..XRESOLVE types are refused.
 */
import { fail } from '../../core/errors.js';
import { Hook, type MatchNode } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { M_IIF, M_OIF, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_SET_CONSTANT } from '../../vm/layout.js';
import { NftSet } from '../../vm/set.js';
import { NFTA_FIB_F_DADDR, NFTA_FIB_F_IIF, NFTA_FIB_F_OIF, NFTA_FIB_F_SADDR, emitCmp, emitFib, emitLookup, inetDevAddrTypeOf } from '../../vm/expr/index.js';
import { le32, type LowerCtx } from '../lower.js';
import { be32, type MatchFn, type XtActionParam } from '../xt.js';
import { lowerCompatMatch } from '../compat.js';

/** rtn_names[]: bit i of a type mask is `1 << RTN_*` (linux/rtnetlink.h order). */
export const RTN_NAMES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'] as const;

interface AddrtypeData {
  /** Bit mask of source address types (0: not tested). */
  source: number;
  /** Bit mask of destination address types (0: not tested). */
  dest: number;
  invSource: boolean;
  invDest: boolean;
  /** XT_ADDRTYPE_LIMIT_IFACE_IN / _OUT */
  limitIn: boolean;
  limitOut: boolean;
}

const TABLE: readonly XtOptEntry[] = [
  { name: 'src-type', id: 0 },
  { name: 'dst-type', id: 1 },
  { name: 'limit-iface-in', id: 2, excl: 1 << 3 },
  { name: 'limit-iface-out', id: 3, excl: 1 << 2 },
];

/** `parse_type()`: the first name the token is a (case-insensitive) prefix of. */
function parseType(tok: string): number | undefined {
  if (tok === '') return undefined;
  const t = tok.toUpperCase();
  const i = RTN_NAMES.findIndex((n) => n.startsWith(t));
  return i < 0 ? undefined : 1 << i;
}

/** `parse_types()`: a comma list. */
function parseTypes(arg: string): number {
  let mask = 0;
  let rest = arg;
  for (let comma = rest.indexOf(','); comma >= 0; comma = rest.indexOf(',')) {
    const m = parseType(rest.slice(0, comma));
    if (m === undefined) fail(`addrtype: bad type \`${rest}'`);
    mask |= m;
    rest = rest.slice(comma + 1);
  }
  const m = parseType(rest);
  if (m === undefined) fail(`addrtype: bad type "${rest}"`);
  return mask | m;
}

function typesToString(mask: number): string {
  return RTN_NAMES.filter((_, i) => mask & (1 << i)).join(',');
}

const BLACKHOLE = 1 << 6;
const PROHIBIT = 1 << 8;
const BROADCAST = 1 << 3;

export const addrtype: MatchModule<AddrtypeData> = {
  kind: 'match',
  name: 'addrtype',
  pure: true,
  options: [
    { name: 'src-type', arg: 1, invert: true },
    { name: 'dst-type', arg: 1, invert: true },
    { name: 'limit-iface-in', arg: 0 },
    { name: 'limit-iface-out', arg: 0 },
  ],
  init: () => ({ source: 0, dest: 0, invSource: false, invDest: false, limitIn: false, limitOut: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'src-type':
        d.source |= parseTypes(arg!);
        if (invert) d.invSource = true;
        return;
      case 'dst-type':
        d.dest |= parseTypes(arg!);
        if (invert) d.invDest = true;
        return;
      case 'limit-iface-in':
        d.limitIn = true;
        return;
      case 'limit-iface-out':
        d.limitOut = true;
        return;
    }
  },
  final(_d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (!(xflags & 3)) fail('addrtype: you must specify --src-type or --dst-type', 'option');
    xtOptFcheck('addrtype', TABLE, xflags);
  },
  save(d) {
    let s = '';
    if (d.source) s += `${d.invSource ? ' !' : ''} --src-type ${typesToString(d.source)}`;
    if (d.dest) s += `${d.invDest ? ' !' : ''} --dst-type ${typesToString(d.dest)}`;
    if (d.limitIn) s += ' --limit-iface-in';
    if (d.limitOut) s += ' --limit-iface-out';
    return s;
  },
  check(d, ctx) {
    if (d.limitIn && d.limitOut) return 'xt_addrtype: both incoming and outgoing interface limitation cannot be selected';
    if (ctx.hookMask & ((1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN)) && d.limitOut) {
      return 'xt_addrtype: output interface limitation not valid in PREROUTING and INPUT';
    }
    if (ctx.hookMask & ((1 << Hook.POST_ROUTING) | (1 << Hook.LOCAL_OUT)) && d.limitIn) {
      return 'xt_addrtype: input interface limitation not valid in POSTROUTING and OUTPUT';
    }
    if (ctx.family === 'ip6') {
      const all = d.source | d.dest;
      if (all & BLACKHOLE) return 'xt_addrtype: ipv6 BLACKHOLE matching not supported';
      if (all >= PROHIBIT) return 'xt_addrtype: ipv6 PROHIBIT (THROW, NAT ..) matching not supported';
      if (all & BROADCAST) return 'xt_addrtype: ipv6 does not support BROADCAST matching';
    }
    return undefined;
  },
  lower: lowerAddrtype,
  reference: addrtypeMt,
};

// --- lowering (the VM engine) ------------------------------------------------
/**
 * addrtype (xt_addrtype v1): `!!(mask & (1 << type(addr))) XOR invert` for
 * the source and/or the destination. IPv4 is lowered as nft's `fib saddr|daddr
 * type` (with --limit-iface-in/out `fib saddr . iif type` / `. oif type`,
 * NFTA_FIB_F_IIF / NFTA_FIB_F_OIF, nft_fib4_eval_type: the same
 * inet_dev_addr_type()): a fib load of the RTN_* type, then cmp (one type)
 * or a lookup in an anonymous set of the types (XT_ADDRTYPE_x = 1 << RTN_x).
 * The node's local and broadcast addresses (EngineOptions) become two sets
 * of the Program. IPv6 is the fib only for the masks it answers as
 * match_type6() does (fibType6); an interface limit, ANYCAST, UNREACHABLE,
 * UNICAST or several types take match_type6()'s class tests and
 * match_lookup_rt6()'s bit mask, which nft's fib6 type (one RTN_* value,
 * ANYCAST before LOCAL, the reject route's own type) cannot carry: such a
 * rule is loaded as iptables-nft loads every addrtype rule, a compat
 * `[ match name addrtype rev 1 ]` running the reference function.
 */
/** Whether the node has the `local 127.0.0.0/8 dev lo` route: a 127/8 address is listed (lo's 127.0.0.1/8 makes it). */
function hasLoopbackRoute(addrs: readonly Uint8Array[]): boolean {
  return addrs.some((a) => a.length === 4 && a[0] === 127);
}

const LOCAL_SET = '__local';
const BCAST_SET = '__broadcast';

function nodeSets(c: LowerCtx): void {
  try {
    c.b.setIndex(LOCAL_SET);
    return;
  } catch {
    // first use in this program: add them
  }
  const len = c.v6 ? 16 : 4;
  const local = new NftSet(LOCAL_SET, len, NFT_SET_CONSTANT);
  const bcast = new NftSet(BCAST_SET, len, NFT_SET_CONSTANT);
  for (const a of c.engine.localAddrs ?? []) if (a.length === len) local.add(a);
  for (const a of c.engine.broadcastAddrs ?? []) if (a.length === len) bcast.add(a);
  c.b.addSet(local);
  c.b.addSet(bcast);
}

function typeTest(c: LowerCtx, flags: number, mask: number, invert: boolean): void {
  nodeSets(c);
  const types: number[] = [];
  for (let t = 0; t < 16; t++) if (mask & (1 << t)) types.push(t);
  c.withReg(4, (r) => {
    emitFib(c.b, r, flags, LOCAL_SET, BCAST_SET, !c.v6 && hasLoopbackRoute(c.engine.localAddrs ?? []));
    if (types.length === 1) {
      emitCmp(c.b, invert ? NFT_CMP_NEQ : NFT_CMP_EQ, r, le32(types[0]!));
      return;
    }
    const set = c.anonSet(4, false);
    for (const t of types) set.add(le32(t));
    emitLookup(c.b, r, set.name, invert);
  });
}

/**
 * Whether an IPv6 type mask is one nft's fib type answers as match_type6()
 * does: none, MULTICAST (ff00::/8), UNSPEC (::) or LOCAL (a local address)
 * alone. UNICAST is ipv6_addr_type()'s class, local addresses included,
 * where the fib answers LOCAL; a set of several types tests each in turn.
 */
function fibType6(mask: number): boolean {
  return mask === 0 || mask === T_MULTICAST || mask === T_UNSPEC || mask === T_LOCAL;
}

function lowerAddrtype(c: LowerCtx, m: MatchNode): void {
  const d = m.data as AddrtypeData;
  // a node with IPv6 local ranges answers LOCAL by its routes, which the program's sets do not hold
  if (c.v6 && (d.limitIn || d.limitOut || !fibType6(d.source) || !fibType6(d.dest) || c.engine.fib?.localRanges6 === true)) {
    lowerCompatMatch(c, m, () => addrtypeMt(d, 'ip6'), 1);
    return;
  }
  const dev = d.limitIn ? NFTA_FIB_F_IIF : d.limitOut ? NFTA_FIB_F_OIF : 0;
  if (d.source) typeTest(c, NFTA_FIB_F_SADDR | dev, d.source, d.invSource);
  if (d.dest) typeTest(c, NFTA_FIB_F_DADDR | dev, d.dest, d.invDest);
}

// --- reference semantics (--engine reference) --------------------------------
/**
 * addrtype match: net/netfilter/xt_addrtype.c addrtype_mt_v1(), match_type(),
 * match_type6() and match_lookup_rt6() (kernel 6.18), with the address
 * classification of net/ipv4/fib_frontend.c __inet_dev_addr_type() and
 * net/ipv6/addrconf_core.c __ipv6_addr_type().
 *
 * The node is described by EngineOptions.localAddrs / broadcastAddrs (host
 * addresses) instead of a routing table:
 *  - IPv4: 0.0.0.0 and 255.255.255.255 are BROADCAST (ipv4_is_zeronet() is
 *    `addr == 0` since 5.x), 224/4 MULTICAST; then the local table: a listed
 *    local address is LOCAL, a listed broadcast address BROADCAST, then all
 *    of 127/8 LOCAL when a 127/8 address is listed (the `local 127.0.0.0/8
 *    dev lo` route lo's 127.0.0.1/8 creates); anything else UNICAST. A node
 *    whose local table holds more than host routes (VmFib.localRanges: an
 *    AnyIP range) is asked instead, as with a device.
 *  - IPv6: MULTICAST / UNICAST / UNSPEC from the address itself; LOCAL when
 *    listed (the RTF_LOCAL route of a local address).
 * With --limit-iface-in / --limit-iface-out, dev is par->in / par->out (the
 * packet's M_IIF / M_OIF): IPv4 asks the node's FIB for
 * inet_dev_addr_type(net, dev, addr) (a local-table route counts when its
 * first nexthop is dev); IPv6, and ANYCAST / UNREACHABLE without a device,
 * ask it for match_lookup_rt6() (hooks/xt-fib.ts: nf_ipv6_chk_addr on dev,
 * the route bound to dev, ipv6_anycast_destination). An engine without a
 * node knows no route: IPv4 UNICAST past the fixed addresses, IPv6
 * UNREACHABLE.
 */
const RTN_UNICAST = 1;
const RTN_LOCAL = 2;
const RTN_BROADCAST = 3;
const RTN_MULTICAST = 5;

/** XT_ADDRTYPE_* = 1 << RTN_* */
const T_UNSPEC = 1 << 0;
const T_UNICAST = 1 << RTN_UNICAST;
const T_LOCAL = 1 << RTN_LOCAL;
const T_ANYCAST = 1 << 4;
const T_MULTICAST = 1 << RTN_MULTICAST;
const T_UNREACHABLE = 1 << 7;

function listed(list: readonly Uint8Array[], d: Uint8Array, at: number, len: number): boolean {
  outer: for (const a of list) {
    if (a.length !== len) continue;
    for (let i = 0; i < len; i++) if (a[i] !== d[at + i]) continue outer;
    return true;
  }
  return false;
}

/** inet_dev_addr_type(net, NULL, addr) over the modelled local table. */
function inetAddrType(par: XtActionParam, at: number): number {
  const d = par.d;
  const env = par.env;
  const all0 = d[at] === 0 && d[at + 1] === 0 && d[at + 2] === 0 && d[at + 3] === 0;
  const all1 = d[at] === 255 && d[at + 1] === 255 && d[at + 2] === 255 && d[at + 3] === 255;
  if (all0 || all1) return RTN_BROADCAST;
  if ((d[at]! & 0xf0) === 0xe0) return RTN_MULTICAST;
  if (env.fib !== null && env.fib.localRanges) return inetDevAddrTypeOf(env.fib, be32(d, at), 0);
  // host routes before the 127/8 one (127.255.255.255 is lo's broadcast route)
  if (listed(env.localAddrs, d, at, 4)) return RTN_LOCAL;
  if (listed(env.broadcastAddrs, d, at, 4)) return RTN_BROADCAST;
  if (d[at] === 127 && hasLoopbackRoute(env.localAddrs)) return RTN_LOCAL;
  return RTN_UNICAST;
}

const IPV6_ADDR_ANY = 0;
const IPV6_ADDR_UNICAST = 0x1;
const IPV6_ADDR_MULTICAST = 0x2;

/** __ipv6_addr_type(), reduced to the UNICAST / MULTICAST / ANY distinctions addrtype uses. */
function ipv6AddrType(d: Uint8Array, at: number): number {
  const top3 = d[at]! & 0xe0;
  if (top3 !== 0x00 && top3 !== 0xe0) return IPV6_ADDR_UNICAST;
  if (d[at] === 0xff) return IPV6_ADDR_MULTICAST;
  let zero8 = true;
  for (let i = 0; i < 8; i++) if (d[at + i] !== 0) zero8 = false;
  if (zero8) {
    const w2 = ((d[at + 8]! << 24) | (d[at + 9]! << 16) | (d[at + 10]! << 8) | d[at + 11]!) >>> 0;
    const w3 = ((d[at + 12]! << 24) | (d[at + 13]! << 16) | (d[at + 14]! << 8) | d[at + 15]!) >>> 0;
    if (w2 === 0) return w3 === 0 ? IPV6_ADDR_ANY : IPV6_ADDR_UNICAST; // loopback / v4-compatible
    if (w2 === 0xffff) return 0x1000; // IPV6_ADDR_MAPPED: neither unicast nor multicast
  }
  return IPV6_ADDR_UNICAST;
}

/** match_type6(): `ifindex` the device (0: none). */
function matchType6(par: XtActionParam, at: number, mask: number, ifindex: number): boolean {
  const t = ipv6AddrType(par.d, at);
  if (mask & T_MULTICAST && !(t & IPV6_ADDR_MULTICAST)) return false;
  if (mask & T_UNICAST && !(t & IPV6_ADDR_UNICAST)) return false;
  if (mask & T_UNSPEC && t !== IPV6_ADDR_ANY) return false;
  if (!(mask & (T_LOCAL | T_ANYCAST | T_UNREACHABLE))) return true;
  // LOCAL alone without a device: the RTF_LOCAL route of a listed address (the VM's fib set)
  if (ifindex === 0 && !(mask & (T_ANYCAST | T_UNREACHABLE)) && par.env.fib?.localRanges6 !== true) return listed(par.env.localAddrs, par.d, at, 16);
  const fib = par.env.fib;
  return (mask & (fib === null ? T_UNREACHABLE : fib.matchLookupRt6(par.d, at, ifindex, mask))) !== 0;
}

/** inet_dev_addr_type(net, dev, addr) with dev the device of `ifindex` (0: NULL, inet_addr_type). */
function matchTypeDev(par: XtActionParam, at: number, ifindex: number): number {
  return ifindex === 0 ? inetAddrType(par, at) : inetDevAddrTypeOf(par.env.fib, be32(par.d, at), ifindex);
}

function addrtypeMt(info: AddrtypeData, family: 'ip' | 'ip6'): MatchFn {
  // XT_ADDRTYPE_LIMIT_IFACE_IN: dev = par->in; _OUT: par->out
  const devAt = info.limitIn ? M_IIF : info.limitOut ? M_OIF : -1;
  if (family === 'ip6') {
    return (par) => {
      const ifindex = devAt < 0 ? 0 : par.meta[devAt]!;
      if (info.source && matchType6(par, par.nh + 8, info.source, ifindex) === info.invSource) return false;
      if (info.dest && matchType6(par, par.nh + 24, info.dest, ifindex) === info.invDest) return false;
      return true;
    };
  }
  return (par) => {
    const ifindex = devAt < 0 ? 0 : par.meta[devAt]!;
    if (info.source && ((info.source & (1 << matchTypeDev(par, par.nh + 12, ifindex))) !== 0) === info.invSource) return false;
    if (info.dest && ((info.dest & (1 << matchTypeDev(par, par.nh + 16, ifindex))) !== 0) === info.invDest) return false;
    return true;
  };
}
