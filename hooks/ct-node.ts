/**
 * Connection tracking and NAT as the node's hook modules, over the
 * conntrack table (hooks/conntrack/) and the NAT core (hooks/nat/), as
 * nf_conntrack, nf_nat and iptable_nat register them (Linux 6.18):
 *
 *   net/netfilter/nf_conntrack_proto.c  ipv4_conntrack_in / ipv6_conntrack_in (PRE_ROUTING, -200),
 *                                       ipv4_conntrack_local / ipv6_conntrack_local (LOCAL_OUT, -200),
 *                                       nf_confirm (LOCAL_IN and POST_ROUTING, last)
 *   net/netfilter/nf_nat_proto.c        nf_nat_ipv4_ops / nf_nat_ipv6_ops: nf_nat_ipv4_pre_routing and
 *                                       nf_nat_ipv4_local_fn (-100), nf_nat_ipv4_fn at LOCAL_IN and
 *                                       nf_nat_ipv4_out (100); the nat table's chain of the hook runs
 *                                       inside them (nf_nat_inet_fn's lookup), only for the first packet
 *                                       of a connection, per manip type
 *   net/netfilter/xt_nat.c, xt_MASQUERADE.c, xt_REDIRECT.c, xt_NETMAP.c, xt_CT.c   what the targets
 *                                       do, reached by both engines through NfCtEnv (vm/ct-env.ts)
 *
 * Conntrack is loaded for a family when its ruleset has a nat table or an
 * extension whose checkentry takes a conntrack reference (nf_ct_netns_get);
 * both families share the namespace's one table. Time is the packet's
 * (`now`, nanoseconds on the capture's clock). The node hands the packet's
 * conntrack back when the packet leaves (nfResetCt); ct->mark written by a
 * table's rules is stored after each table (nf_ct's mark is the
 * conntrack's, one packet is in flight at a time).
 */
import type { Rule, Ruleset } from '../core/ast.js';
import {
  IPS_ASSURED, IPS_CONFIRMED, IPS_DST_NAT, IPS_EXPECTED, IPS_SEEN_REPLY, IPS_SRC_NAT, IP_CT_DIR_REPLY, NF_ACCEPT, NF_CT_STATE_ESTABLISHED_BIT,
  NF_CT_STATE_INVALID_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT, NF_CT_STATE_UNTRACKED_BIT, NF_DROP, NF_INET_LOCAL_OUT,
  NF_INET_PRE_ROUTING, NF_VERDICT_MASK, NF_VERDICT_QBITS, NFPROTO_IPV4, type Backend,
} from '../core/netfilter.js';
import { NfvmError } from '../core/errors.js';
import {
  CT_HELPERS, CT_TMPL_DIR_SHIFT, CT_TMPL_HELPER_MASK, CT_TMPL_TIMEOUT_MASK, CT_TMPL_TIMEOUT_SHIFT, CT_TMPL_HELPER_SHIFT, CT_TMPL_NOTRACK, CT_TMPL_ZONE_MARK, CT_TMPL_ZONE_MASK,
  CT_ZONE_DFLT, NAT_DNAT, NAT_MASQ, NAT_NETMAP, NAT_REDIR, NAT_SNAT, type NfCtEnv,
} from '../vm/ct-env.js';
import { M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_END, M_NFPROTO, M_NHOFF } from '../vm/layout.js';
import type { Packet } from '../vm/packet.js';
import { NfConntrack, CtSysctlError, nfConntrackSysctl, type NfConntrackSysctl } from './conntrack/index.js';
import { IPPROTO_TCP, T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS, getL4proto, hasPorts, l4, nfCtGetTuple } from './conntrack/tuple.js';
import type { Expectation } from './conntrack/expect.js';
import { nfNatFollowMaster, nfNatFtp } from './nat/ftp.js';
import { PROTO_WORDS } from './conntrack/core.js';
import { P_TCP_STATE } from './conntrack/proto_tcp.js';
import { TCP_CONNTRACK_CLOSE, TCP_CONNTRACK_TIME_WAIT } from './conntrack/sysctl.js';
import { addrText, statusNames } from './conntrack/print.js';
import { formatIPv4, formatIPv6, hostPort } from '../core/addr.js';
import {
  NAT_DROP_WHY, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NfNat, NfNatRange2, nfNatFn, nfNatMasqueradeIpv4, nfNatMasqueradeIpv6, nfNatNetmap, nfNatRangeSet,
  nfNatRedirectIpv4, nfNatRedirectIpv6, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, type Inet6Ifaddr, type InIfaddr,
  type RedirectIfaddr6,
} from './nat/index.js';
import type { NodeHookOps, NodeHookState } from './hook.js';
import { HOOK_CHAIN_NAMES, hookSlots } from './priorities.js';
import type { Node, Address } from './snapshot/node.js';
import { parseIPv4 } from './route/addr.js';
import type { PathCtx } from './path/ctx.js';
import type { Fate } from './path/fate.js';
import type { Xorshift32 } from '../vm/random.js';

/**
 * Extensions whose checkentry takes a conntrack reference (nf_ct_netns_get),
 * which registers conntrack and nf_defrag in the namespace (Linux 6.18). Not
 * xt_CT with --notrack (xt_ct_tg_check returns before it; `-j NOTRACK` is
 * that), not xt_ipvs (ipvs_mt_check checks the family only).
 */
const CT_MATCHES = new Set(['conntrack', 'state', 'connmark', 'helper', 'connbytes', 'connlimit', 'connlabel', 'cluster']);
const CT_TARGETS = new Set(['CONNMARK', 'CT', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP', 'CONNSECMARK', 'SYNPROXY']);
/**
 * Extensions whose checkentry enables nf_defrag alone (nf_defrag_ipv4_enable,
 * nf_defrag_ipv6_enable): socket_mt_v1_check (and v2, v3), tproxy_tg4_check
 * and tproxy_tg6_check.
 */
const DEFRAG_MATCHES = new Set(['socket']);
const DEFRAG_TARGETS = new Set(['TPROXY']);

/** Whether a rule's checkentry (its matches' or its target's) is one of `matches` / `targets`; CT with --notrack is none. */
function ruleTakes(r: Rule, matches: ReadonlySet<string>, targets: ReadonlySet<string>): boolean {
  if (r.matches.some((m) => matches.has(m.name))) return true;
  const t = r.target;
  if (t.kind === 'unknown') return targets.has(t.name);
  return t.kind === 'ext' && targets.has(t.name) && !(t.name === 'CT' && (t.data as { notrack?: boolean }).notrack === true);
}

/**
 * Whether loading `rs` turns conntrack accounting on: connbytes_mt_check()
 * forces nf_conntrack_acct to 1 ("Forcing CT accounting to be enabled").
 */
export function forcesCtAcct(rs: Ruleset): boolean {
  return someRule(rs, (r) => r.matches.some((m) => m.name === 'connbytes'));
}

/**
 * Whether loading `rs` puts conntrack labels in use: connlabel_mt_check()
 * calls nf_connlabels_get(), after which new conntracks get the labels
 * extension (those made before have none).
 */
export function usesCtLabels(rs: Ruleset): boolean {
  return someRule(rs, (r) => r.matches.some((m) => m.name === 'connlabel'));
}

/**
 * Whether loading `rs` would register conntrack (and nf_defrag) in the
 * namespace: only a rule whose checkentry calls nf_ct_netns_get() does. A
 * nat table alone registers the NAT core's hooks, but nf_nat_inet_fn()
 * lets an untracked packet pass without running the table, so a nat table
 * without NAT targets (or other conntrack users) sees no packet.
 */
export function needsConntrack(rs: Ruleset): boolean {
  return someRule(rs, (r) => ruleTakes(r, CT_MATCHES, CT_TARGETS));
}

/**
 * Whether loading `rs` registers nf_defrag without conntrack (conntrack
 * brings its own): xt_socket and TPROXY. Fragments are then reassembled
 * before the raw table (NF_IP_PRI_CONNTRACK_DEFRAG).
 */
export function needsDefragAlone(rs: Ruleset): boolean {
  return someRule(rs, (r) => ruleTakes(r, DEFRAG_MATCHES, DEFRAG_TARGETS));
}

function someRule(rs: Ruleset, f: (r: Rule) => boolean): boolean {
  for (const t of rs.tables.values()) for (const c of t.chains.values()) for (const r of c.rules) if (f(r)) return true;
  return false;
}

/**
 * The namespace's conntrack sysctls from the snapshot (net.netfilter.nf_conntrack_*
 * of sysctl.txt over the kernel's defaults); a value the kernel's proc
 * handler refuses is an NfvmError at its line.
 */
export function snapshotCtSysctl(node: Node): NfConntrackSysctl {
  const given = new Map<string, string>();
  for (const k of node.sysctl.keys()) if (k.startsWith('net.netfilter.nf_conntrack_')) given.set(k, node.sysctl.get(k)!);
  try {
    return nfConntrackSysctl(given);
  } catch (e) {
    if (!(e instanceof CtSysctlError)) throw e;
    throw new NfvmError('value', `${e.key}: ${e.reason}`, node.sysctl.file, node.sysctl.pos(e.key), e.value);
  }
}

/** RT_SCOPE_* of an `ip -j addr` scope name. */
function scopeOf(a: Address): number {
  return a.scope === 'host' ? RT_SCOPE_HOST : a.scope === 'link' ? RT_SCOPE_LINK : a.scope === 'global' || a.scope === 'universe' ? RT_SCOPE_UNIVERSE
    : Number.isInteger(Number(a.scope)) ? Number(a.scope) : RT_SCOPE_UNIVERSE;
}

/** The packet's endpoints as `10.0.0.2:40000 > 10.1.0.2:80` (addresses only without ports). */
function endpoints(pkt: Packet): string {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const v4 = m[M_NFPROTO] === NFPROTO_IPV4;
  const src = v4 ? formatIPv4(d, nh + 12) : formatIPv6(d, nh + 8);
  const dst = v4 ? formatIPv4(d, nh + 16) : formatIPv6(d, nh + 24);
  const proto = v4 ? d[nh + 9]! : d[nh + 6]!;
  const th = v4 ? nh + (d[nh]! & 15) * 4 : nh + 40;
  if (!hasPorts(proto) || th + 4 > pkt.len) return `${src} > ${dst}`;
  return `${hostPort(src, (d[th]! << 8) | d[th + 1]!)} > ${hostPort(dst, (d[th + 2]! << 8) | d[th + 3]!)}`;
}

/** The status bits a trace note shows. */
const TRACE_STATUS = IPS_EXPECTED | IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_SRC_NAT | IPS_DST_NAT;

export class NodeConntrack implements NfCtEnv {
  readonly ct: NfConntrack;
  readonly nat: NfNat;
  /** The clock of the packet in flight, nanoseconds (a capture timestamp, or trace's virtual clock); the conntrack table's follows it. */
  get now(): number {
    return this.nowNs;
  }
  set now(v: number) {
    this.nowNs = v;
    this.ct.setNow(v);
  }
  private nowNs = 0;
  /** The state of the NAT entry whose table chain is running: the devices and route the targets choose addresses from. */
  private natState: NodeHookState | undefined;
  private readonly range = new NfNatRange2();
  private readonly templates = new Map<number, number>();
  private readonly v4Addrs = new Map<string, InIfaddr[]>();
  private readonly v6Addrs: Inet6Ifaddr[];
  private readonly v6ByDev = new Map<string, RedirectIfaddr6[]>();

  constructor(readonly node: Node, seed: number, rng?: Xorshift32) {
    this.ct = new NfConntrack(snapshotCtSysctl(node), { seed, rng });
    this.nat = new NfNat(this.ct);
    // nf_nat_ftp (built in, as on the kernel here): the FTP helper's announcements on NATed control
    // connections, and the NAT of the connections they announce (exp->expectfn)
    const nat = this.nat;
    this.ct.natFtpHook = (pkt, hook, e, ctinfo, type, thoff, matchoff, matchlen, exp, policy) =>
      nfNatFtp(nat, pkt, hook, e, ctinfo, type, thoff, matchoff, matchlen, exp, policy, pkt.meta[M_NFPROTO]!);
    this.ct.expectFollow = (e, exp) => nfNatFollowMaster(nat, e, exp);
    // Device addresses in ifa_list order: primaries first, as the kernel keeps them.
    const ordered = [...node.addresses].sort((a, b) => (a.secondary === b.secondary ? 0 : a.secondary ? 1 : -1));
    for (const a of ordered) {
      if (a.family === 4) {
        const list = this.v4Addrs.get(a.dev) ?? [];
        list.push({ local: a.local.w[0]! >>> 0, prefixlen: a.prefixlen, scope: scopeOf(a), secondary: a.secondary });
        this.v4Addrs.set(a.dev, list);
      } else {
        const list = this.v6ByDev.get(a.dev) ?? [];
        list.push({ addr: a.local.w, tentative: a.tentative });
        this.v6ByDev.set(a.dev, list);
      }
    }
    this.v6Addrs = node.addresses.filter((a) => a.family === 6).map((a) => ({ addr: a.local.w, prefixlen: a.prefixlen, ifindex: a.ifindex, tentative: a.tentative }));
  }

  // ---------------------------------------------------------------------------
  // NfCtEnv: what the engines' targets and matches reach

  tupleWord(id: number, dir: number, word: number): number {
    return this.ct.tuples[(2 * id + dir) * TUPLE_WORDS + word]!;
  }

  expiresSec(id: number): number {
    const ct = this.ct;
    if (!ct.isConfirmed(id)) return 0;
    ct.setNow(this.now);
    return Math.floor(ct.expires(id) / ct.sysctl.hz);
  }

  acctCounter(id: number, dir: number, bytes: boolean): number {
    return this.ct.acctCounter(id, dir, bytes);
  }

  labelBit(id: number, bit: number): number {
    return this.ct.labelBit(id, bit);
  }

  labelSet(id: number, bit: number): void {
    this.ct.labelSet(id, bit);
  }

  status(id: number): number {
    return this.ct.status[id]!;
  }

  tcpClosed(id: number): boolean {
    const ct = this.ct;
    if ((ct.tuples[2 * id * TUPLE_WORDS + T_PROTO]! & 0xff) !== IPPROTO_TCP) return false;
    const s = ct.proto[id * PROTO_WORDS + P_TCP_STATE]!;
    return s === TCP_CONNTRACK_TIME_WAIT || s === TCP_CONNTRACK_CLOSE;
  }

  packetZone(pkt: Packet): number {
    const id = pkt.meta[M_CT_ID]!;
    if (id >= 0) return this.ct.zoneId[id]! | (this.ct.zoneDir[id]! << 16);
    if (id <= -2) {
      const t = this.ct.template(-2 - id);
      return t.zoneId | (t.zoneDir << 16);
    }
    return CT_ZONE_DFLT;
  }

  lookupPacket(pkt: Packet, t: Int32Array, o: number, zone: number): number {
    const m = pkt.meta;
    const d = pkt.data;
    const nh = m[M_NHOFF]!;
    const end = m[M_END]!;
    const pf = m[M_NFPROTO]!;
    const dataoff = getL4proto(d, nh, end, pf);
    if (dataoff <= 0 || !nfCtGetTuple(d, nh, dataoff, end, pf, l4.protonum, t, o)) return -2;
    return this.findTuple(t, o, zone);
  }

  findTuple(t: Int32Array, o: number, zone: number): number {
    this.ct.setNow(this.now);
    const n = this.ct.findGet(t, o, zone & 0xffff, zone >>> 16);
    return n < 0 ? -1 : n >> 1;
  }

  /** The helper of the conntrack's master (an expected connection's: hooks/conntrack/expect.ts), 0 none. */
  masterHelper(id: number): number {
    const m = this.ct.master[id]!;
    return m >= 0 ? this.ct.helper[m]! : 0;
  }

  natTarget(pkt: Packet, hook: number, kind: number, flags: number, min: Uint8Array, minAt: number, max: Uint8Array, maxAt: number, alen: number,
    minPort: number, maxPort: number, basePort: number): number {
    const r = this.range;
    nfNatRangeSet(r, flags, min, minAt, max, maxAt, alen, minPort, maxPort, basePort);
    const nat = this.nat;
    const v4 = pkt.meta[M_NFPROTO] === NFPROTO_IPV4;
    const st = this.natState;
    switch (kind) {
      case NAT_SNAT:
        return nat.xtNatTarget(pkt, r, NF_NAT_MANIP_SRC);
      case NAT_DNAT:
        return nat.xtNatTarget(pkt, r, NF_NAT_MANIP_DST);
      case NAT_NETMAP:
        return nfNatNetmap(nat, pkt, r, hook);
      case NAT_MASQ: {
        const out = st?.outLink;
        if (!out) return NF_DROP;
        if (!v4) return nfNatMasqueradeIpv6(nat, pkt, r, out.ifindex, this.v6Addrs);
        const d = pkt.data;
        const nh = pkt.meta[M_NHOFF]!;
        const gw = st.ctx.gateway;
        // rt_nexthop(): the gateway, or the destination when it is on link.
        const nexthop = gw !== undefined && gw.includes('.') ? parseIPv4(gw) >>> 0 : ((d[nh + 16]! << 24) | (d[nh + 17]! << 16) | (d[nh + 18]! << 8) | d[nh + 19]!) >>> 0;
        const others = [...this.node.links.values()].filter((l) => l.ifindex !== out.ifindex).sort((a, b) => a.ifindex - b.ifindex)
          .map((l) => this.v4Addrs.get(l.name) ?? []);
        return nfNatMasqueradeIpv4(nat, pkt, r, out.ifindex, this.v4Addrs.get(out.name) ?? [], nexthop, others);
      }
      case NAT_REDIR: {
        const dev = st?.inLink?.name ?? '';
        if (v4) return nfNatRedirectIpv4(nat, pkt, r, hook, (this.v4Addrs.get(dev) ?? []).map((a) => a.local));
        return nfNatRedirectIpv6(nat, pkt, r, hook, this.v6ByDev.get(dev) ?? []);
      }
      default:
        return NF_ACCEPT;
    }
  }

  ctTarget(pkt: Packet, tmpl: number): void {
    if (tmpl & CT_TMPL_NOTRACK) {
      this.ct.nfCtSetUntracked(pkt);
      return;
    }
    let t = this.templates.get(tmpl);
    if (t === undefined) {
      t = this.ct.nfCtTmplAlloc({
        zoneId: tmpl & CT_TMPL_ZONE_MASK, zoneDir: (tmpl >>> CT_TMPL_DIR_SHIFT) & 3, zoneFromMark: (tmpl & CT_TMPL_ZONE_MARK) !== 0,
        helper: (tmpl >>> CT_TMPL_HELPER_SHIFT) & CT_TMPL_HELPER_MASK, timeout: (tmpl >>> CT_TMPL_TIMEOUT_SHIFT) & CT_TMPL_TIMEOUT_MASK,
      });
      this.templates.set(tmpl, t);
    }
    this.ct.nfCtSetTemplate(pkt, t);
  }

  /** ct->mark written by a table's rules (CONNMARK, nft's ct mark set): stored in the conntrack. */
  readonly markStore = (pkt: Packet): void => {
    const e = pkt.meta[M_CT_ID]!;
    if (e >= 0) this.ct.mark[e] = pkt.meta[M_CT_MARK]!;
  };

  /** Saves the conntrack table, the NAT core's state and the clock; the returned function restores them. */
  checkpoint(): () => void {
    const ct = this.ct.checkpoint();
    const templates = new Map(this.templates);
    const now = this.now;
    const reroute = this.nat.rerouteNeeded;
    return () => {
      ct();
      this.templates.clear();
      for (const [k, v] of templates) this.templates.set(k, v);
      this.now = now;
      this.nat.rerouteNeeded = reroute;
    };
  }

  // ---------------------------------------------------------------------------
  // The hook entries

  /** The packet spec's `ct` clause, before nf_conntrack_in: the connection it describes (see README "Packet input"). */
  private preset(pkt: Packet, ctx: PathCtx): boolean {
    const spec = ctx.ctSpec;
    if (!spec) return true;
    if (spec.state === 'invalid') return false;
    if (spec.state === 'untracked') {
      this.ct.nfCtSetUntracked(pkt);
      return true;
    }
    this.ct.nfCtPreset(pkt, spec.state, spec.reply, this.now);
    return true;
  }

  /** After nf_conntrack_in: the spec's `ct mark`, and the note. */
  private classified(pkt: Packet, st: NodeHookState, owner: string): void {
    const ctx = st.ctx;
    const mark = ctx.ctSpec?.mark ?? -1;
    const e = pkt.meta[M_CT_ID]!;
    if (mark >= 0 && e >= 0) {
      this.ct.mark[e] = mark | 0;
      pkt.meta[M_CT_MARK] = mark | 0;
    }
    ctx.ctSeen = true;
    if (!ctx.quiet) ctx.steps.push({ kind: 'conntrack', text: `${owner}: ${this.describe(pkt)}` });
  }

  /** The conntrack entries of family `pf`: conntrack in/local at -200, nf_confirm last. */
  conntrackOps(pf: number, backend: Backend): NodeHookOps[] {
    const ct = this.ct;
    const explain = (verdict: number, st: NodeHookState): Fate | undefined => {
      if ((verdict & NF_VERDICT_MASK) !== NF_DROP) return undefined;
      const helper = ct.confirmDropWhy;
      ct.confirmDropWhy = undefined;
      const why = st.hook === NF_INET_PRE_ROUTING || st.hook === NF_INET_LOCAL_OUT
        ? `the conntrack table is full (nf_conntrack_max ${ct.sysctl.max}) and no unassured entry could be evicted (nf_conntrack_in)`
        : helper ?? 'its new conntrack clashed with one inserted meanwhile (nf_confirm)';
      return { kind: 'dropped', reason: 'conntrack', detail: why, by: undefined };
    };
    return hookSlots(pf, backend, { conntrack: true, tables: [] }).filter((s) => s.component !== 'defrag').map((s): NodeHookOps => {
      const base = { pf, hooknum: s.hook, priority: s.priority, name: s.owner, source: { kind: 'module', explain } } as const;
      if (s.component === 'conntrack-in' || s.component === 'conntrack-local') {
        const local = s.component === 'conntrack-local';
        return {
          ...base,
          hook: (pkt, st) => {
            if (!this.preset(pkt, st.ctx)) {
              this.classified(pkt, st, s.owner);
              return NF_ACCEPT;
            }
            // the table's clock is the module's (set with it): no clock argument to box per packet
            const v = local ? ct.nfConntrackLocal(pkt) : ct.nfConntrackIn(pkt, NF_INET_PRE_ROUTING);
            if (v === NF_ACCEPT) this.classified(pkt, st, s.owner);
            return v;
          },
        };
      }
      return {
        ...base,
        hook: (pkt, st) => {
          const v = ct.nfConfirm(pkt, undefined, s.hook);
          const x = ct.lastExpectation;
          if (x !== undefined) {
            ct.lastExpectation = undefined;
            if (!st.ctx.quiet) st.ctx.steps.push({ kind: 'conntrack', text: `${CT_HELPERS[ct.helper[x.master]!]} helper: expects ${expectationText(x)}` });
          }
          return v;
        },
      };
    });
  }

  /**
   * The NAT core's entries in place of the nat table's: at each hook
   * nf_nat_ipv4/ipv6 runs `table` (the nat table's chain there) for the
   * first packet of a connection, then rewrites the packet by the
   * connection's binding; DNAT at PRE_ROUTING makes the route be looked up
   * again, at LOCAL_OUT re-routes (ip_route_me_harder).
   */
  natOps(tableOps: readonly NodeHookOps[]): NodeHookOps[] {
    const nat = this.nat;
    return tableOps.map((o): NodeHookOps => {
      const hook = o.hooknum;
      const table = o.hook;
      const where = `nat ${HOOK_CHAIN_NAMES[hook]}`;
      let tableVerdict = NF_ACCEPT;
      const lookup = (pkt: Packet): number => (tableVerdict = table(pkt, this.natState!));
      const explain = (verdict: number): Fate | undefined => {
        if ((verdict & NF_VERDICT_MASK) !== NF_DROP || tableVerdict === verdict) return undefined;
        if (verdict >>> NF_VERDICT_QBITS !== 0) return { kind: 'dropped', reason: 'reroute', detail: 're-route after destination NAT in OUTPUT found no route', by: undefined };
        return { kind: 'dropped', reason: 'nat', detail: `the NAT core dropped it at ${HOOK_CHAIN_NAMES[hook]}: ${NAT_DROP_WHY[nat.dropped]}`, by: undefined };
      };
      const source = o.source.kind === 'table' ? { ...o.source, explain } : o.source;
      return {
        ...o,
        source,
        hook: (pkt, st) => {
          const ctx = st.ctx;
          const before = ctx.quiet || pkt.meta[M_CT_ID]! < 0 ? '' : endpoints(pkt);
          tableVerdict = NF_ACCEPT;
          this.natState = st;
          let v: number;
          try {
            v = nfNatFn(nat, pkt, hook, st.outLink?.ifindex ?? 0, lookup);
          } finally {
            this.natState = undefined;
          }
          if (v !== NF_ACCEPT) return v;
          if (before) {
            const after = endpoints(pkt);
            if (after !== before) {
              ctx.steps.push({ kind: 'nat', text: `${where} (${o.name}): ${before} rewritten to ${after}` });
              ctx.nat.push(this.rewriteWords(pkt, before, after));
            }
          }
          if (hook === NF_INET_PRE_ROUTING && nat.rerouteNeeded) ctx.dstDropped = true;
          else if (hook === NF_INET_LOCAL_OUT && nat.rerouteNeeded && ctx.reroute) {
            const r = ctx.reroute(pkt, 'destination NAT in OUTPUT');
            if (typeof r === 'number') return NF_DROP | ((-r) << NF_VERDICT_QBITS);
            st.outLink = r;
            st.out = r.name;
          }
          return v;
        },
      };
    });
  }

  /** `DNAT to 10.244.1.5:8080` / `SNAT to ...`, `un-DNAT from ...` / `un-SNAT to ...` for a reply. */
  private rewriteWords(pkt: Packet, before: string, after: string): string {
    const [bs, bd] = before.split(' > ');
    const [as, ad] = after.split(' > ');
    const reply = pkt.meta[M_CT_DIR] === IP_CT_DIR_REPLY;
    const out: string[] = [];
    if (bd !== ad) out.push(reply ? `un-SNAT to ${ad}` : `DNAT to ${ad}`);
    if (bs !== as) out.push(reply ? `un-DNAT from ${as}` : `SNAT to ${as}`);
    return out.join(', ');
  }

  /** The packet's connection in words, for the trace. */
  describe(pkt: Packet): string {
    const m = pkt.meta;
    const e = m[M_CT_ID]!;
    const s = m[M_CT_STATE]!;
    if (m[M_CT_DIR] === -1) return s & NF_CT_STATE_UNTRACKED_BIT ? 'UNTRACKED (no conntrack)' : 'INVALID (no conntrack)';
    if (e <= -2) return 'NEW (a CT template, before conntrack)';
    const ct = this.ct;
    const state = s & NF_CT_STATE_ESTABLISHED_BIT ? 'ESTABLISHED' : s & NF_CT_STATE_RELATED_BIT ? 'RELATED' : s & NF_CT_STATE_NEW_BIT ? 'NEW' : s & NF_CT_STATE_INVALID_BIT ? 'INVALID' : '?';
    const dir = m[M_CT_DIR] === IP_CT_DIR_REPLY ? ' reply' : '';
    const tuple = (node: number) => {
      const o = node * TUPLE_WORDS;
      const t = ct.tuples;
      const l3 = t[o + T_PROTO]! >>> 8;
      const p = t[o + T_PROTO]! & 0xff;
      const a = (at: number, port: number) => {
        const x = addrText(l3, t, o + at);
        return hasPorts(p) ? hostPort(x, port) : x;
      };
      return `${a(0, t[o + T_PORTS]! >>> 16)} > ${a(4, t[o + T_PORTS]! & 0xffff)}`;
    };
    const st = ct.status[e]!;
    const bits = statusNames(st, TRACE_STATUS);
    const zone = ct.zoneId[e] ? ` zone ${ct.zoneId[e]}` : ' zone 0';
    const helper = ct.helper[e] ? ` helper ${CT_HELPERS[ct.helper[e]!]}` : '';
    return `${state}${dir},${zone}, mark 0x${(m[M_CT_MARK]! >>> 0).toString(16)}${helper}, status ${bits.join('|') || '0'}: ${tuple(2 * e)}, reply ${tuple(2 * e + 1)}`;
  }
}

/** An expectation as `conntrack -L expect` writes its tuple: protocol, source and destination, ports (any source port). */
function expectationText(x: Expectation): string {
  const t = x.tuple;
  const l3num = t[T_PROTO]! >>> 8;
  const proto = (t[T_PROTO]! & 0xff) === IPPROTO_TCP ? 'tcp' : 'udp';
  return `${proto} src=${addrText(l3num, t, T_SRC)} dst=${addrText(l3num, t, T_DST)} sport=0 dport=${t[T_PORTS]! & 0xffff}`;
}
