/**
 * One routing table: longest-prefix match over a binary trie.
 *
 * Mirrors fib_table_lookup() of net/ipv4/fib_trie.c (Linux 6.18) in what it
 * decides, not in its LC-trie layout: the longest prefix that has a usable
 * route wins, otherwise the lookup backtracks to shorter prefixes. Routes of
 * one prefix are kept in the kernel's alias order (TOS descending, then
 * metric ascending, then insertion), and for each one:
 *   - a TOS route is skipped unless (flow TOS & 0x1c) equals it
 *     (fib_dscp_masked_match);
 *   - a route whose scope is narrower than the flow's is skipped;
 *   - a reject type answers at once with its error (fib_props: unreachable
 *     -EHOSTUNREACH, prohibit -EACCES, blackhole/nat/xresolve -EINVAL,
 *     throw -EAGAIN);
 *   - otherwise the first nexthop that is not dead and, when the flow has an
 *     output device, uses that device, is the result; none → next route.
 * A lookup walks at most 33/129 trie nodes and allocates nothing.
 */
import type { Family } from './addr.js';
import { EAGAIN, FIB_PROPS_ERROR, type FibResult, type Route } from './types.js';

/** IPTOS_RT_MASK: the TOS bits a legacy TOS route/rule compares. */
export const IPTOS_RT_MASK = 0x1c;

class TrieNode {
  c0: TrieNode | null = null;
  c1: TrieNode | null = null;
  routes: Route[] | null = null;
}

function bitAt(w: ArrayLike<number>, i: number): number {
  return (w[i >>> 5]! >>> (31 - (i & 31))) & 1;
}

/**
 * Alias order of fib_find_alias/fib_insert_alias: table id descending (the
 * merged trie of the local and main tables holds a prefix's local routes
 * before its main ones: Fib.lookup), then TOS descending, then priority
 * ascending; equal ones keep insertion order.
 */
function aliasBefore(a: Route, b: Route): boolean {
  if (a.table !== b.table) return a.table > b.table;
  if (a.tos !== b.tos) return a.tos > b.tos;
  return a.metric < b.metric;
}

/** pick(): no route of the prefix is usable (not an errno). */
const NONE_USABLE = 1;

/**
 * Counts the changes to any routing table or rule list: what a memo of
 * routing answers (hooks/path/route-cache.ts) compares to know it still holds.
 */
export const fibEpoch = { value: 0 };

const LOOKUP_CACHE_BITS = 12;
const LOOKUP_CACHE = 1 << LOOKUP_CACHE_BITS;

export class FibTable {
  private readonly root = new TrieNode();
  private readonly path: TrieNode[] = [];
  /**
   * IPv4: the route lists of the trie again, by prefix length and prefix
   * (the same arrays the trie nodes hold), and the lengths present, longest
   * first. A walk then asks one map per length present (a handful) instead
   * of following up to 32 trie nodes; it visits the same lists in the same
   * order (the prefixes of daddr, longest first). Keys: the prefix shifted
   * right by one (a small integer), the map of its last bit.
   */
  private readonly byLen: [Map<number, Route[]>, Map<number, Route[]>][] = [];
  private lens: number[] = [];
  private count = 0;
  /** Counts the routes added: what a copy of the table (Fib's merged trie) compares to know it is current. */
  version = 0;
  /** Set by lookup(): the route and the index of the nexthop chosen. */
  resRoute: Route | null = null;
  resNh = -1;
  /**
   * The results of recent IPv4 lookups, by destination, in sets of two
   * slots (the one not used last is replaced): a replay asks the same few
   * destinations millions of times. Keyed by
   * every input of lookup() (daddr, tos, oif, scope); emptied by insert().
   */
  private readonly cacheDaddr = new Int32Array(LOOKUP_CACHE);
  private readonly cacheKey = new Int32Array(LOOKUP_CACHE);
  private readonly cacheOif: string[] = new Array<string>(LOOKUP_CACHE).fill('');
  private readonly cacheErr = new Int32Array(LOOKUP_CACHE);
  private readonly cacheNh = new Int32Array(LOOKUP_CACHE);
  private readonly cacheRoute: (Route | null)[] = new Array<Route | null>(LOOKUP_CACHE).fill(null);
  /** Per set of two slots, the way its last hit or fill used. */
  private readonly cacheMru = new Uint8Array(LOOKUP_CACHE >>> 1);
  /**
   * The FibResult fib_rules_lookup() made of each cached lookup and the rule
   * it went through (Fib.lookup: a result is made of the route, its
   * nexthop and the rule only, so the slot's route and nexthop give the
   * same result for the same rule); emptied with its slot.
   */
  readonly cacheResult: (FibResult | undefined)[] = new Array<FibResult | undefined>(LOOKUP_CACHE).fill(undefined);
  /** The cache slot of the last lookup (-1: not cached, IPv6). */
  resSlot = -1;

  /** `derived`: a copy of other tables (Fib's merged trie), whose filling changes no routing answer (fibEpoch is not moved). */
  constructor(
    readonly id: number,
    readonly family: Family,
    private readonly derived = false,
  ) {
    const bits = family === 4 ? 32 : 128;
    for (let i = 0; i <= bits; i++) this.path.push(this.root);
  }

  get size(): number {
    return this.count;
  }

  /** Adds a route; an identical one (prefix, type, TOS, metric, nexthops, prefsrc) is not added twice. */
  insert(r: Route): boolean {
    let n = this.root;
    for (let i = 0; i < r.plen; i++) {
      if (bitAt(r.dst.w, i)) n = n.c1 ??= new TrieNode();
      else n = n.c0 ??= new TrieNode();
    }
    let list = n.routes;
    if (!list) {
      list = n.routes = [];
      if (this.family === 4) {
        const p = r.plen === 0 ? 0 : (r.dst.w[0]! & (-1 << (32 - r.plen))) | 0;
        const maps = (this.byLen[r.plen] ??= [new Map(), new Map()]);
        maps[p & 1]!.set(p >> 1, list);
        if (!this.lens.includes(r.plen)) this.lens = [...this.lens, r.plen].sort((a, b) => b - a);
      }
    }
    if (list.some((x) => sameRoute(x, r))) return false;
    let at = list.length;
    while (at > 0 && aliasBefore(r, list[at - 1]!)) at--;
    list.splice(at, 0, r);
    this.count++;
    this.version++;
    if (!this.derived) fibEpoch.value++;
    this.cacheKey.fill(0);
    return true;
  }

  /** Every route, shorter prefixes first (a stable order for dumps and tests). */
  routes(): Route[] {
    const out: Route[] = [];
    const stack: TrieNode[] = [this.root];
    const nodes: TrieNode[] = [];
    while (stack.length) {
      const n = stack.pop()!;
      nodes.push(n);
      if (n.c1) stack.push(n.c1);
      if (n.c0) stack.push(n.c0);
    }
    for (const n of nodes) if (n.routes) out.push(...n.routes);
    return out.sort((a, b) => a.plen - b.plen);
  }

  /**
   * fib_table_lookup(): 0 with resRoute/resNh set, -EAGAIN when nothing
   * matches (or a throw route), or the negative error of a reject route
   * (resRoute set to it).
   */
  lookup(daddr: ArrayLike<number>, tos: number, oif: string, scope: number): number {
    if (this.family !== 4) {
      this.resSlot = -1;
      return this.walk(daddr, tos, oif, scope);
    }
    const d = daddr[0]! | 0;
    // two ways a set: destinations that share a set (hundreds of flows' addresses do) do not evict each other
    const set = (Math.imul(d ^ (d >>> 15), 0x2c1b3c6d) >>> (32 - LOOKUP_CACHE_BITS)) & (LOOKUP_CACHE - 2);
    // valid bit, tos, scope: the key of everything lookup() reads but daddr and oif
    const key = 0x10000 | ((tos & 0xff) << 8) | (scope & 0xff);
    for (let i = set; i < set + 2; i++) {
      if (this.cacheKey[i] === key && this.cacheDaddr[i] === d && this.cacheOif[i] === oif) {
        this.cacheMru[set >>> 1] = i & 1;
        this.resRoute = this.cacheRoute[i]!;
        this.resNh = this.cacheNh[i]!;
        this.resSlot = i;
        return this.cacheErr[i]!;
      }
    }
    // the way the set used last stays
    const i = set + (this.cacheMru[set >>> 1]! ^ 1);
    this.cacheMru[set >>> 1] = i & 1;
    const err = this.walk4(d, tos, oif, scope);
    this.cacheKey[i] = key;
    this.cacheDaddr[i] = d;
    this.cacheOif[i] = oif;
    this.cacheErr[i] = err;
    this.cacheRoute[i] = this.resRoute;
    this.cacheNh[i] = this.resNh;
    this.cacheResult[i] = undefined;
    this.resSlot = i;
    return err;
  }

  /** The longest-prefix walk of lookup() down the trie (IPv6; IPv4 asks its index: walk4). */
  private walk(daddr: ArrayLike<number>, tos: number, oif: string, scope: number): number {
    const path = this.path;
    const bits = this.family === 4 ? 32 : 128;
    let depth = 0;
    let n: TrieNode | null = this.root;
    for (;;) {
      path[depth] = n;
      if (depth === bits) break;
      n = bitAt(daddr, depth) ? n.c1 : n.c0;
      if (!n) break;
      depth++;
    }
    this.resRoute = null;
    this.resNh = -1;
    for (let d = depth; d >= 0; d--) {
      const list = path[d]!.routes;
      if (!list) continue;
      const err = this.pick(list, tos, oif, scope);
      if (err !== NONE_USABLE) return err;
    }
    return -EAGAIN;
  }

  /** walk() over the IPv4 index: the lists of the prefixes of `d` present, longest first. */
  private walk4(d: number, tos: number, oif: string, scope: number): number {
    this.resRoute = null;
    this.resNh = -1;
    const lens = this.lens;
    for (let k = 0; k < lens.length; k++) {
      const len = lens[k]!;
      const p = len === 0 ? 0 : (d & (-1 << (32 - len))) | 0;
      const list = this.byLen[len]![p & 1]!.get(p >> 1);
      if (!list) continue;
      const err = this.pick(list, tos, oif, scope);
      if (err !== NONE_USABLE) return err;
    }
    return -EAGAIN;
  }

  /**
   * The routes of one prefix in alias order: 0 (resRoute/resNh set), a
   * reject route's error (-EAGAIN for a throw route: the lookup ends there),
   * or NONE_USABLE (the walk goes on to shorter prefixes).
   */
  private pick(list: readonly Route[], tos: number, oif: string, scope: number): number {
    for (let a = 0; a < list.length; a++) {
      const r = list[a]!;
      if (r.tos !== 0 && r.tos !== (tos & IPTOS_RT_MASK)) continue;
      if (r.scope < scope) continue;
      const err = FIB_PROPS_ERROR[r.type] ?? 0;
      // IPv6: a reject route's nexthop is lo; a lookup bound to another device
      // (RT6_LOOKUP_F_IFACE, rt6_score_route() RT6_NUD_FAIL_HARD) passes it by
      if (err !== 0 && this.family === 6 && oif !== '' && oif !== 'lo') continue;
      if (err !== 0) {
        this.resRoute = r;
        return -err;
      }
      const nhs = r.nexthops;
      for (let h = 0; h < nhs.length; h++) {
        const nh = nhs[h]!;
        if (nh.flags.includes('dead')) continue;
        if (oif !== '' && nh.dev !== oif) continue;
        this.resRoute = r;
        this.resNh = h;
        return 0;
      }
    }
    return NONE_USABLE;
  }
}

function sameRoute(a: Route, b: Route): boolean {
  if (a.table !== b.table || a.type !== b.type || a.tos !== b.tos || a.metric !== b.metric || a.plen !== b.plen) return false;
  if ((a.prefsrc === undefined) !== (b.prefsrc === undefined)) return false;
  if (a.prefsrc && b.prefsrc && a.prefsrc.w.join() !== b.prefsrc.w.join()) return false;
  if (a.nexthops.length !== b.nexthops.length) return false;
  for (let i = 0; i < a.nexthops.length; i++) {
    const x = a.nexthops[i]!, y = b.nexthops[i]!;
    if (x.dev !== y.dev || (x.gateway?.w.join() ?? '') !== (y.gateway?.w.join() ?? '')) return false;
  }
  return true;
}
