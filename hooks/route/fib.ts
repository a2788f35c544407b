/**
 * Policy routing: the rule list and the tables of one family, and the lookup.
 *
 * Mirrors (Linux 6.18):
 *   net/core/fib_rules.c   fib_rules_lookup(), fib_rule_match()
 *   net/ipv4/fib_rules.c   fib4_rule_match(), fib4_rule_action(), fib4_rule_suppress(), __fib_lookup()
 *   net/ipv6/fib6_rules.c  the same for IPv6 (see the gaps in fibLookup6's comment)
 *
 * Lookup: walk the rules in order; a rule that does not match is skipped
 * (`not` inverts the whole match); `nop` continues; `goto` continues at the
 * first rule whose pref is the target (testing that rule too; an unresolved
 * goto is skipped); unreachable/prohibit/blackhole answer -ENETUNREACH/-EACCES/
 * -EINVAL; a table lookup that finds nothing (missing table, no route, throw
 * route: -EAGAIN) continues with the next rule, and so does a success the
 * rule suppresses (suppress_prefixlength/suppress_ifgroup); anything else is
 * the answer. No answer → -ESRCH, which __fib_lookup reports as -ENETUNREACH.
 *
 * IPv4 without custom rules (fib4_has_custom_rules() false: the rules are
 * the three fib_default_rules_init() makes) takes fib_lookup()'s fast path
 * instead, over the trie the local and main tables share until a rule is
 * added (fib_trie_table(RT_TABLE_LOCAL, main), fib_unmerge()): one
 * longest-prefix lookup over the routes of both, a prefix's local routes
 * before its main ones (fib_insert_alias orders a leaf by table id), then
 * the default table when that finds nothing (-EAGAIN). A main route more
 * specific than a local one (`ip route add local 10.0.0.0/8 dev lo` and
 * `ip route add 10.1.0.0/16 via ...`) then wins, as on Linux, where the
 * rule walk would have stopped at the local table. Lookups in the local
 * table alone (inet_addr_type) search the shared trie too.
 */
import { addrEqual, parseAddr, prefixMatch, type Family, type IpAddr } from './addr.js';
import { FibTable, fibEpoch } from './table.js';
import {
  EACCES, EAGAIN, EHOSTUNREACH, EINVAL, ENETUNREACH, FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_NOP, FR_ACT_PROHIBIT,
  FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, RTN_NAMES, RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN,
  type FibError, type FibResult, type FibRule, type FlowKey, type Route,
} from './types.js';

/** What the lookup needs to know about the node's devices. */
export interface LinkView {
  /** Whether a device of that name exists (a rule naming a missing device never matches). */
  hasLink(name: string): boolean;
  /** The device's group (for suppress_ifgroup); 0 when unknown. */
  linkGroup(name: string): number;
}

export function defaultRule(family: Family, pref: number, table: number): FibRule {
  return {
    family, pref, action: FR_ACT_TO_TBL, table, gotoTarget: 0, invert: false, src: undefined, srcLen: 0, dst: undefined, dstLen: 0,
    iif: '', oif: '', mark: 0, markMask: 0, tos: 0, dscp: -1, ipProto: 0, sport: [0, 0], dport: [0, 0], uid: undefined,
    suppressPrefixlen: -1, suppressIfgroup: -1, unmatchable: false,
  };
}

/** fib4_rules_init / fib6_rules_net_init: 0 local, 32766 main, 32767 default (IPv4 only). */
export function defaultRules(family: Family): FibRule[] {
  const r = [defaultRule(family, 0, RT_TABLE_LOCAL), defaultRule(family, 0x7ffe, RT_TABLE_MAIN)];
  if (family === 4) r.push(defaultRule(family, 0x7fff, RT_TABLE_DEFAULT));
  return r;
}

export class Fib {
  readonly tables = new Map<number, FibTable>();
  private rules_: FibRule[] = [];
  /** Index of each goto's target rule, -1 when unresolved. */
  private gotoIdx: number[] = [];
  /** 1 for each rule without a selector (selectorFree): its match needs no look at the flow. */
  private matchesAll = new Uint8Array(0);
  private readonly daddrScratch: Uint32Array;
  /**
   * The results made so far, per route and nexthop index: a result is made
   * of the route, its nexthop and the rule only, so a lookup that misses the
   * tables' caches (a capture of many addresses) finds it here instead of
   * making an object per lookup.
   */
  private readonly made = new Map<Route, (FibResult | undefined)[]>();
  /** IPv4 without custom rules (fib4_has_custom_rules() false): the local and main tables are one trie. */
  private mergedTables = false;
  /** That trie, made on first use, and the versions of the local and main tables it was made of. */
  private merged: FibTable | undefined;
  private mergedOf: [FibTable | undefined, number, FibTable | undefined, number] = [undefined, 0, undefined, 0];
  /** The address scratch() hands out (one object: nothing is made per lookup). */
  private readonly scratchAddr: IpAddr;

  constructor(readonly family: Family) {
    this.daddrScratch = new Uint32Array(family === 4 ? 1 : 4);
    this.scratchAddr = { family, w: this.daddrScratch } as IpAddr;
  }

  get rules(): readonly FibRule[] {
    return this.rules_;
  }

  /** Replaces the rule list (kept in pref order; equal prefs keep the given order, as rules added later go after). */
  setRules(rules: readonly FibRule[]): void {
    const sorted = rules.map((r, i) => ({ r, i })).sort((a, b) => a.r.pref - b.r.pref || a.i - b.i).map((x) => x.r);
    this.rules_ = sorted;
    this.matchesAll = Uint8Array.from(sorted, (r) => (selectorFree(r) ? 1 : 0));
    this.gotoIdx = sorted.map((r) => (r.action === FR_ACT_GOTO ? sorted.findIndex((t) => t.pref === r.gotoTarget) : -1));
    const defaults = defaultRules(this.family);
    this.mergedTables = this.family === 4 && sorted.length === defaults.length && sorted.every((r, i) => isDefaultRule(r, defaults[i]!));
    this.merged = undefined;
    fibEpoch.value++;
  }

  /** IPv4 without custom rules (fib4_has_custom_rules() false): the local and main tables are one trie. IPv6: never. */
  get localMainMerged(): boolean {
    return this.mergedTables;
  }

  /** The table lookups of `id` go to: the shared trie for local and main without custom rules (IPv4). */
  private lookupTable(id: number): FibTable | undefined {
    if (!this.mergedTables || (id !== RT_TABLE_LOCAL && id !== RT_TABLE_MAIN)) return this.tables.get(id);
    const local = this.tables.get(RT_TABLE_LOCAL);
    const main = this.tables.get(RT_TABLE_MAIN);
    const of = this.mergedOf;
    // made again when either table changed, however its routes were added
    if (this.merged === undefined || of[0] !== local || of[1] !== (local?.version ?? 0) || of[2] !== main || of[3] !== (main?.version ?? 0)) {
      const m = new FibTable(RT_TABLE_MAIN, this.family, true);
      for (const t of [local, main]) for (const r of t?.routes() ?? []) m.insert(r);
      this.merged = m;
      this.mergedOf = [local, local?.version ?? 0, main, main?.version ?? 0];
    }
    return this.merged;
  }

  table(id: number): FibTable {
    let t = this.tables.get(id);
    if (!t) this.tables.set(id, (t = new FibTable(id, this.family)));
    return t;
  }

  addRoute(r: Route): boolean {
    return this.table(r.table).insert(r);
  }

  /**
   * fib_rules_lookup() over this family's rules. `iif` is '' for locally
   * generated traffic, which the kernel looks up with iif = lo.
   */
  lookup(links: LinkView, daddr: IpAddr, saddr: IpAddr | undefined, flow: FlowKey): FibResult {
    const iif = flow.iif || 'lo';
    const oif = flow.oif ?? '';
    const mark = (flow.mark ?? 0) >>> 0;
    const tos = flow.tos ?? 0;
    const rules = this.rules_;
    for (let i = 0; i < rules.length; i++) {
      let rule = rules[i]!;
      if (this.matchesAll[i] ? rule.invert : !ruleMatch(rule, links, daddr, saddr, iif, oif, mark, tos, flow)) continue;
      if (rule.action === FR_ACT_GOTO) {
        // The kernel tests the target and goes on from there ("goto jumped").
        const t = this.gotoIdx[i]!;
        if (t < 0) continue;
        i = t - 1;
        continue;
      }
      if (rule.action === FR_ACT_NOP) continue;
      switch (rule.action) {
        case FR_ACT_UNREACHABLE: return fail('unreachable', ENETUNREACH, rule, undefined);
        case FR_ACT_PROHIBIT: return fail('prohibit', EACCES, rule, undefined);
        case FR_ACT_TO_TBL: break;
        case FR_ACT_BLACKHOLE:
        default: return fail('blackhole', EINVAL, rule, undefined);
      }
      // without custom rules the local rule's lookup is fib_lookup()'s one lookup in the shared trie; the main rule has none of its own
      if (this.mergedTables && rule.table === RT_TABLE_MAIN) continue;
      const tbl = this.lookupTable(rule.table);
      if (!tbl) continue;
      const err = tbl.lookup(daddr.w, tos, oif, RT_SCOPE_UNIVERSE);
      if (err === -EAGAIN) continue;
      const route = tbl.resRoute!;
      // the shared trie's answer is told by the rule of the route's own table (the rules are the three defaults: main's is the second)
      if (this.mergedTables && route.table === RT_TABLE_MAIN) rule = rules[1]!;
      if (err < 0) return fail(err === -EACCES ? 'prohibit' : err === -EHOSTUNREACH ? 'unreachable' : 'blackhole', -err, rule, route);
      const nh = route.nexthops[tbl.resNh]!;
      // fib4_rule_suppress()
      if (route.plen <= rule.suppressPrefixlen) continue;
      if (rule.suppressIfgroup !== -1 && nh.dev !== '' && links.linkGroup(nh.dev) === rule.suppressIfgroup) continue;
      const slot = tbl.resSlot;
      const kept = slot >= 0 ? tbl.cacheResult[slot] : undefined;
      if (kept !== undefined && kept.rule === rule) return kept;
      // the shared trie's answers are the main table's (fib_lookup's res->table: `ip route get` of a local address says no "table local")
      const res = this.madeResult(route, tbl.resNh, rule, this.mergedTables && tbl === this.merged ? RT_TABLE_MAIN : route.table);
      if (slot >= 0) tbl.cacheResult[slot] = res;
      return res;
    }
    return fail('noroute', ENETUNREACH, undefined, undefined);
  }

  /** The answer `res` gives through nexthop k of its route instead (fib_select_multipath's choice). */
  nexthopResult(res: FibResult & { ok: true }, k: number): FibResult & { ok: true } {
    return this.madeResult(res.route, k, res.rule, res.table);
  }

  /** The answer of `route` through its nexthop k, by `rule`, in `table`: made once per nexthop and kept while they stay the same. */
  private madeResult(route: Route, k: number, rule: FibRule | undefined, table: number): FibResult & { ok: true } {
    let byNh = this.made.get(route);
    if (byNh === undefined) this.made.set(route, (byNh = new Array<FibResult | undefined>(route.nexthops.length).fill(undefined)));
    const kept = byNh[k];
    if (kept !== undefined && kept.ok && kept.rule === rule && kept.table === table) return kept;
    const nh = route.nexthops[k]!;
    const res = {
      ok: true as const, type: RTN_NAMES[route.type] ?? String(route.type), rtnType: route.type, table, route,
      dev: nh.dev, gateway: nh.gateway, prefsrc: route.prefsrc, rule,
    };
    byNh[k] = res;
    return res;
  }

  /** Lookup in one table only, without rules (what inet_dev_addr_type does with the local table). */
  tableLookup(id: number, daddr: IpAddr): Route | undefined {
    if (!this.tables.has(id)) return undefined;
    const t = this.lookupTable(id);
    if (!t) return undefined;
    return t.lookup(daddr.w, 0, '', RT_SCOPE_UNIVERSE) === 0 ? t.resRoute! : undefined;
  }

  /** Scratch words for callers that look up numeric IPv4 addresses without allocating. */
  scratch(v4: number): IpAddr {
    this.daddrScratch[0] = v4;
    return this.scratchAddr;
  }
}

function fail(error: FibError, errno: number, rule: FibRule | undefined, route: Route | undefined): FibResult {
  return { ok: false, error, errno, rule, route };
}

/**
 * `r` is default rule `d` as fib_default_rules_init() made it (pref, table,
 * no selector, not inverted, no suppression). The kernel's flag is set when
 * any rule is added and stays set; a snapshot shows only the rules left, so
 * a node whose rules are the three defaults is taken never to have had others.
 */
function isDefaultRule(r: FibRule, d: FibRule): boolean {
  return r.pref === d.pref && r.table === d.table && r.action === FR_ACT_TO_TBL && !r.invert && selectorFree(r) && r.suppressPrefixlen === -1 && r.suppressIfgroup === -1 && !r.realms;
}

/** A rule without a selector (the default rules: `from all lookup main`): fib_rule_match() matches every flow. */
function selectorFree(r: FibRule): boolean {
  return r.iif === '' && r.oif === '' && r.markMask === 0 && !r.unmatchable && !r.uid && r.srcLen <= 0 && r.dstLen <= 0 && r.dscp < 0 && r.tos === 0
    && r.ipProto === 0 && r.sport[0] === 0 && r.sport[1] === 0 && r.dport[0] === 0 && r.dport[1] === 0;
}

/** fib_rule_match() + fib4_rule_match()/fib6_rule_match(), then FIB_RULE_INVERT. */
function ruleMatch(
  r: FibRule, links: LinkView, daddr: IpAddr, saddr: IpAddr | undefined, iif: string, oif: string, mark: number, tos: number, flow: FlowKey,
): boolean {
  return r.invert !== ruleMatchRaw(r, links, daddr, saddr, iif, oif, mark, tos, flow);
}

function ruleMatchRaw(
  r: FibRule, links: LinkView, daddr: IpAddr, saddr: IpAddr | undefined, iif: string, oif: string, mark: number, tos: number, flow: FlowKey,
): boolean {
  if (r.iif !== '' && (r.iif !== iif || !links.hasLink(r.iif))) return false;
  if (r.oif !== '' && (r.oif !== oif || !links.hasLink(r.oif))) return false;
  if ((((r.mark ^ mark) & r.markMask) >>> 0) !== 0) return false;
  if (r.unmatchable) return false;
  if (r.uid) {
    const uid = flow.uid ?? 0;
    if (uid < r.uid[0] || uid > r.uid[1]) return false;
  }
  if (r.srcLen > 0) {
    // A flow without a source address has saddr 0.
    if (!prefixMatch(saddr ? saddr.w : r.family === 4 ? ZERO4 : ZERO6, r.src!.w, r.srcLen)) return false;
  }
  if (r.dstLen > 0 && !prefixMatch(daddr.w, r.dst!.w, r.dstLen)) return false;
  if (r.dscp >= 0) {
    if (r.dscp !== (tos >>> 2)) return false;
  } else if (r.tos !== 0 && r.tos !== (tos & 0x1c)) return false;
  if (r.ipProto !== 0 && r.ipProto !== (flow.proto ?? 0)) return false;
  if (!portMatch(r.sport, flow.sport ?? 0)) return false;
  if (!portMatch(r.dport, flow.dport ?? 0)) return false;
  return true;
}

const ZERO4 = new Uint32Array(1);
const ZERO6 = new Uint32Array(4);

function portMatch(range: readonly [number, number], port: number): boolean {
  if (range[0] === 0 && range[1] === 0) return true;
  return port >= range[0] && port <= range[1];
}

export function toAddr(a: string | IpAddr | undefined): IpAddr | undefined {
  if (a === undefined) return undefined;
  if (typeof a !== 'string') return a;
  return parseAddr(a);
}

export { addrEqual };
