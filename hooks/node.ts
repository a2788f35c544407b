/**
 * The assembled node: a snapshot (hooks/snapshot) whose modules register
 * into one hook registry (hooks/registry.ts) as kernel modules do, and the
 * IPv4 and IPv6 packet paths (hooks/path/) that call the hooks; a frame
 * goes to the path of its ethertype / IP version.
 *
 *   const node = buildNodeModel(readSnapshot('examples/node'), { engine: 'vm' });
 *   const r = node.receive(specPacket(parseSpec('tcp 198.51.100.7:40000 > 192.168.1.10:22 iif eth0')), 'eth0');
 *   console.log(fateText(r.fate));
 *
 * The modules, per family: the iptables tables of the dump (tables.ts, at
 * the priorities of the dump's backend: priorities.ts); when the ruleset
 * needs conntrack (a rule whose checkentry takes it: ct-node.ts
 * needsConntrack), nf_defrag (defrag.ts; alone for xt_socket and TPROXY:
 * needsDefragAlone), conntrack and, with a nat table,
 * the NAT core running it (ct-node.ts; one conntrack table for both
 * families, as in a namespace). NF_QUEUE finds no listener (as in a fresh
 * namespace): the packet is dropped unless the verdict carries the bypass
 * flag (verdict.ts).
 */
import { parseRestore } from '../compiler/parse/restore.js';
import type { Family, Ruleset, TableName, Rule, Chain } from '../core/ast.js';
import { NfvmError } from '../core/errors.js';
import type { Count, TableEngine } from '../engine/engine.js';
import { ETH_P_IP, ETH_P_IPV6, LINKTYPE_IPV4, LINKTYPE_IPV6, Packet, decodeNetwork, decodePacket, resetMeta, setDeviceWords, setSocket } from '../vm/packet.js';
import { F_CSUM_PARTIAL, F_MAC_HEADER, M_CPU, M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_END, M_FLAGS, M_MARK, M_NFPROTO, M_NHOFF, M_PROTOCOL, SK_KERNEL, SK_NONE } from '../vm/layout.js';
import { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_RELATED, IP_CT_RELATED_REPLY, IPS_DST_NAT, IPS_NAT_MASK, IPS_SRC_NAT, NFPROTO_IPV4, NFPROTO_IPV6 } from '../core/netfilter.js';
import { NfHookRegistry } from './registry.js';
import type { Backend } from '../core/netfilter.js';
import { registerOps, type NodeHookOps, type NodeRegistry } from './hook.js';
import { nfCtSetClosing, type NfConntrack } from './conntrack/index.js';
import { T_DST, T_PORTS, T_PROTO, T_SRC, TUPLE_WORDS } from './conntrack/tuple.js';
import type { XfrmFlow } from './route/xfrm.js';
import { NfHook } from './nf-hook.js';
import { loadTables, type EngineKind, type Tables } from './tables.js';
import { defragOps } from './defrag.js';
import { NodeXtFib, inHostSets } from './xt-fib.js';
import { NodeXtSockets } from './xt-socket.js';
import { parsePfOs } from '../ext/osf.js';
import { parseNfacctList, type NfAcct } from '../ext/nfacct.js';
import { IpFrags } from './path/ip-frag.js';
import { cttimeoutJiffies, cttimeoutUsable, parseNfctTimeouts } from './conntrack/timeout.js';
import { NodeConntrack, forcesCtAcct, needsConntrack, needsDefragAlone, snapshotCtSysctl, usesCtLabels } from './ct-node.js';
import type { Link, Node } from './snapshot/node.js';
import { RTN_LOCAL, RT_TABLE_LOCAL } from './route/types.js';
import { inputDst, linkDev, newPathCtx, resetPathCtx, type Answer, type CtSpec, type InetFamily, type PathCtx } from './path/ctx.js';
import { Inet, IPV4, IPV6 } from './path/inet.js';
import { receive } from './path/receive.js';
import { localOut } from './path/local-out.js';
import type { Emitted, Fate, PathResult } from './path/fate.js';
import { ipFragmentWire } from './path/output.js';
import { unresolvedNeighbour } from './path/neigh.js';
import { NodeStack } from './answer/stack.js';
import { Xorshift32, type Chooser } from '../vm/random.js';
import { IpSetStore } from '../vm/ipset.js';
import { ipsetNames, parseIpsetSave } from '../compiler/ipset.js';
import { XT_HZ_DEFAULT, XtState } from '../ext/xtstate.js';
import { BrHook } from './bridge/nf-bridge.js';
import { BridgeNode } from './bridge/bridge.js';
import { BrNetfilter, brnfSysctl } from './bridge/br-netfilter.js';
import { loadEbtables } from './bridge/ebtables.js';
import type { EbtRuleset, EbtTableName } from '../core/ebt-ast.js';
import { parseMac } from '../core/addr.js';
import { NodeIpvs, ipvsSysctl, unprivilegedPortStart } from './ipvs/core.js';
import { NodeDup } from './dup.js';
import { NodeXtIcmp } from './xt-icmp.js';

export type { EngineKind } from './tables.js';

/** What NodeModel.emitSink is told of each packet leaving the node. */
export interface EmitSink {
  /** The packet bytes[from, to) (IP header on) leaves `dev`; `kind`: 'forwarded', 'sent' or the answer's kind. */
  emitted(dev: string, kind: string, bytes: Uint8Array, from: number, to: number, kernelFields: readonly string[]): void;
}

const NO_FIELDS: readonly string[] = [];
/** A forwarded packet whose TCP checksum the kernel left to the device (F_CSUM_PARTIAL: a NAT helper rewrote it). */
const PARTIAL_SUM: readonly string[] = Object.freeze(['tcp.check']);
export { needsConntrack } from './ct-node.js';
export type { CtSpec } from './path/ctx.js';

/** A table's counters by chain: its rules' and its policy's. */
export type TableCounters = Map<string, { rules: Count[]; policy: Count | undefined }>;

export interface NodeModelOptions {
  /** Evaluator of the tables (default 'vm'). */
  engine?: EngineKind;
  /** Drop the node's ruleset texts once parsed (Node.releaseRulesetTexts: the command line's one model of a snapshot). */
  releaseText?: boolean;
  /** Overrides the backend the dump's header names (default: the header's, else legacy). */
  backend?: Backend;
  /** Seed of `statistic --mode random`, of the NAT core's port choice and of the conntrack hash (default 1). */
  seed?: number;
  /** The VM's program: 1 (default) with classifier prefilters (compiler/optimize), 0 straight lowering. */
  optimize?: 0 | 1;
  /** CONFIG_HZ of the modelled kernel: the jiffies the rate and state matches count (default 250). */
  hz?: number;
  /**
   * The CPU every packet is handled on (smp_processor_id(): `-m cpu`, nft's
   * meta cpu, bpf's SKF_AD_CPU, NFQUEUE --queue-cpu-fanout); default 0.
   */
  cpu?: number;
  /**
   * The snapshot's rulesets already parsed (and checked) from its texts,
   * instead of parsing them again: `nfvm diff` builds its second side from
   * the first's unchanged chains (fuzz/delta.ts).
   */
  parsed?: { rs4?: Ruleset; rs6?: Ruleset };
  /**
   * Changes made to the node's rules before any packet (`nfvm trace
   * --apply`), in order, each applied as `iptables-restore [--noflush]`
   * applies it (compiler/parse/restore.ts `base`) to the rules of its family.
   */
  changes?: readonly RulesChange[];
}

/** A change to a node's rules: iptables-restore input of one family. */
export interface RulesChange {
  readonly file: string;
  readonly text: string;
  readonly family: Family;
  readonly noflush: boolean;
}

/** What a packet brings besides its bytes: its time, and a packet spec's `ct` clause. */
export interface PacketInput {
  /** The packet's time in nanoseconds (a capture timestamp; any fixed origin): conntrack's clock. Default: the last packet's. */
  now?: number;
  /** A packet spec's `ct` clause (applied when the packet's family runs conntrack). */
  ct?: CtSpec;
}

/** Per-address lists for `addrtype` (the local table's host routes). */
function addrLists(node: Node): { localAddrs: Uint8Array[]; broadcastAddrs: Uint8Array[] } {
  const localAddrs: Uint8Array[] = [];
  const broadcastAddrs: Uint8Array[] = [];
  const tbl = node.fib4.tables.get(RT_TABLE_LOCAL);
  const bytes = (v: number) => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  for (const r of tbl ? tbl.routes() : []) {
    if (!inHostSets(r)) continue;
    if (r.type === RTN_LOCAL) localAddrs.push(bytes(r.dst.w[0]!));
    else broadcastAddrs.push(bytes(r.dst.w[0]!));
  }
  const t6 = node.fib6.tables.get(RT_TABLE_LOCAL);
  for (const r of t6 ? t6.routes() : []) {
    if (r.type !== RTN_LOCAL || r.plen !== 128) continue;
    const b = new Uint8Array(16);
    for (let i = 0; i < 4; i++) {
      const w = r.dst.w[i]!;
      b[4 * i] = w >>> 24; b[4 * i + 1] = (w >>> 16) & 255; b[4 * i + 2] = (w >>> 8) & 255; b[4 * i + 3] = w & 255;
    }
    localAddrs.push(b);
  }
  return { localAddrs, broadcastAddrs };
}

export class NodeModel {
  readonly registry: NodeRegistry = new NfHookRegistry();
  /** IPv4 rules of the node (iptables-save.txt), parsed; undefined without the file. */
  readonly rs4: Ruleset | undefined;
  readonly rs6: Ruleset | undefined;
  /** Engines of the IPv4 tables present. */
  readonly engines: Map<TableName, TableEngine>;
  /** Engines of the IPv6 tables present. */
  readonly engines6: Map<TableName, TableEngine>;
  readonly backend: Backend;
  /** Backend of the ip6tables tables (the option, else ip6tables-save.txt's header, else the IPv4 one). */
  readonly backend6: Backend;
  readonly conntrack: boolean;
  /** Whether the ip6tables ruleset registers IPv6 conntrack (and nf_defrag_ipv6). */
  readonly conntrack6: boolean;
  readonly inet4: Inet;
  readonly inet6: Inet;
  /** Connection tracking and NAT, when a ruleset loads conntrack. */
  readonly conntrackModule: NodeConntrack | undefined;
  /** The node's ipsets (ipset-save.txt; none without it): the set match and the SET target of every table use and change them. */
  readonly ipsets: IpSetStore;
  /** The node's extended accounting objects (nfacct.txt), counted into by `-m nfacct` in both families; undefined without the file. */
  readonly nfacct: ReadonlyMap<string, NfAcct> | undefined;
  /** The node's one random source (every engine draws from it; vm/random.ts). */
  readonly random: Xorshift32;
  /** The node's own stack: transport protocols and the answers it sends (hooks/answer). */
  readonly stack: NodeStack;
  /** The clock and named tables of the rate and state matches (recent, hashlimit, RATEEST), shared by both families. */
  readonly xt: XtState;
  /** The reassembly queues (ip_defrag's and ipv6_frag_rcv's, and nf_defrag's of both families). */
  readonly frags: IpFrags;
  /** NodeModelOptions.cpu: the CPU the node handles every packet on. */
  readonly cpu: number;
  /** The node's bridges (their ports, forwarding databases and the bridge hooks); undefined without a bridge. */
  readonly bridge: BridgeNode | undefined;
  /** The ebtables ruleset (ebtables-save.txt) and the engines of its tables. */
  readonly ebtables: EbtRuleset | undefined;
  readonly ebEngines: Map<EbtTableName, TableEngine> = new Map();
  /** Backend of the ebtables tables (the dump's header; nft without one). */
  readonly ebBackend: Backend = 'nft';
  /** IPVS, when the snapshot has virtual services (ipvsadm-save.txt). */
  readonly ipvs: NodeIpvs | undefined;
  /** Record the packets that leave the node (PathResult.emitted), for comparing with a capture. */
  recordEmitted = false;
  /**
   * Told of every packet that leaves the node (as the wire has it, in
   * fragments past the MTU), without a copy: its bytes are bytes[from, to)
   * until the next packet. For consumers that keep only some of them
   * (cli/replay.ts); recordEmitted gives the packets as PathResult.emitted.
   */
  emitSink: EmitSink | undefined;
  /**
   * Reuse one context and one result for every packet while tracing is off:
   * what receive() returns is valid until the next packet (a replay reads
   * each result before feeding the next frame; a caller keeping results
   * leaves this off).
   */
  reuseResults = false;
  private tracing = false;
  /** The context and the result reused while reuseResults is set (not tracing). */
  private readonly ctx0: PathCtx = newPathCtx(true);
  private readonly result0: PathResult = { fate: { kind: 'stolen', by: undefined }, steps: [], answers: [], emitted: undefined };
  /** The packet buffer of each answer depth, reused. */
  private readonly answerPkts: Packet[] = [];

  constructor(
    readonly node: Node,
    readonly opts: NodeModelOptions = {},
  ) {
    // the texts through node each time, never in a local: with releaseText they are gone before the tables compile
    this.ipsets = node.ipsets ? parseIpsetSave(node.ipsets.text, node.ipsets.file) : new IpSetStore();
    // the kernel refuses a rule naming a set that does not exist ("Set foo doesn't exist.")
    // and cgroup_get_from_path() a cgroup path that does not exist (xt_cgroup: ENOENT)
    // and nfnl_acct_find_get() an accounting object that does not exist (xt_nfacct: ENOENT)
    this.nfacct = node.nfacct ? parseNfacctList(node.nfacct.text, node.nfacct.file) : undefined;
    // and nf_ct_set_timeout() a cttimeout policy that does not exist or is of another protocol (xt_CT: ENOENT, EINVAL)
    const policies = node.ctTimeouts ? parseNfctTimeouts(node.ctTimeouts.text, node.ctTimeouts.file) : undefined;
    const unusable = policies?.map(cttimeoutUsable);
    const objects = {
      ipsets: ipsetNames(this.ipsets), cgroups: node.cgroups, nfacct: this.nfacct && new Set(this.nfacct.keys()),
      ctTimeouts: policies && new Set(policies.map((p) => p.name)),
      ctTimeoutProtos: policies && new Map(policies.map((p) => [p.name, [p.l3num, p.l4num] as const])),
    };
    this.backend = opts.backend ?? node.iptables?.backend ?? node.ip6tables?.backend ?? 'legacy';
    this.backend6 = opts.backend ?? node.ip6tables?.backend ?? this.backend;
    let rs4 = opts.parsed?.rs4 ?? (node.iptables ? parseRestore(node.iptables.text, { family: 'ip', file: node.iptables.file, objects, backend: this.backend }) : undefined);
    let rs6 = opts.parsed?.rs6 ?? (node.ip6tables ? parseRestore(node.ip6tables.text, { family: 'ip6', file: node.ip6tables.file, objects, backend: this.backend6 }) : undefined);
    for (const c of opts.changes ?? []) {
      const v6 = c.family === 'ip6';
      // a family the snapshot has no rules of: the kernel's tables are empty
      const base = (v6 ? rs6 : rs4) ?? parseRestore('', { family: c.family });
      const rs = parseRestore(c.text, { family: c.family, file: c.file, objects, backend: v6 ? this.backend6 : this.backend, base, noflush: c.noflush });
      if (v6) rs6 = rs;
      else rs4 = rs;
    }
    this.rs4 = rs4;
    this.rs6 = rs6;
    if (opts.releaseText) node.releaseRulesetTexts();
    // ip_vs_register_conntrack(): a virtual service takes conntrack for its family (nf_ct_netns_get).
    const ipvsFamily = (f: 4 | 6) => node.ipvs?.services.some((s) => s.family === f) ?? false;
    this.conntrack = (this.rs4 ? needsConntrack(this.rs4) : false) || ipvsFamily(4);
    this.conntrack6 = (this.rs6 ? needsConntrack(this.rs6) : false) || ipvsFamily(6);
    this.random = new Xorshift32(opts.seed ?? 1);
    this.stack = new NodeStack(node, this.random);
    const seed = opts.seed ?? 1;
    // A snapshot's conntrack sysctls are checked even when its ruleset loads
    // no conntrack: a value the kernel's proc handler refuses cannot come
    // from a real node, so the snapshot is damaged either way.
    const ctm = this.conntrack || this.conntrack6 ? new NodeConntrack(node, seed, this.random) : (snapshotCtSysctl(node), undefined);
    if (ctm && ((this.rs4 && forcesCtAcct(this.rs4)) || (this.rs6 && forcesCtAcct(this.rs6)))) ctm.ct.sysctl.acct = 1;
    if (ctm && ((this.rs4 && usesCtLabels(this.rs4)) || (this.rs6 && usesCtLabels(this.rs6)))) ctm.ct.labelsUsed = true;
    if (ctm && policies) ctm.ct.timeoutPolicies = [undefined, ...policies.map((p, i) => (unusable![i] ? undefined : cttimeoutJiffies(p, ctm.ct.sysctl.hz, ctm.ct.sysctl.sctpTimeouts)))];
    this.conntrackModule = ctm;
    this.xt = new XtState(opts.hz ?? XT_HZ_DEFAULT);
    this.frags = new IpFrags(node.sysctl);
    this.cpu = opts.cpu ?? 0;
    // the accounting objects are state of the namespace: saved and restored with the matches' named objects
    for (const o of this.nfacct?.values() ?? []) this.xt.named.set(`nfacct:${o.name}`, o);
    const ipvs = node.ipvs && node.ipvs.services.length > 0
      ? new NodeIpvs(node.ipvs, ipvsSysctl(node.sysctl), {
        inet: (pf) => (pf === NFPROTO_IPV6 ? this.inet6 : this.inet4),
        ct: ctm?.ct,
        saddr4: (daddr) => this.stack.env.route4(daddr, 0, 0, 0, 0, '')?.saddr ?? 0,
        unprivilegedPortStart: unprivilegedPortStart(node.sysctl.num('net.ipv4.ip_unprivileged_port_start')),
      })
      : undefined;
    this.ipvs = ipvs;
    const dup = new NodeDup({
      node,
      inet: (pf) => (pf === NFPROTO_IPV6 ? this.inet6 : this.inet4),
      xmit: (pkt, fate, ctx) => this.bridgeXmit(pkt, fate, ctx),
      release: (pkt) => this.conntrackModule?.ct.nfResetCt(pkt),
    });
    const xtIcmp = new NodeXtIcmp();
    const common = { engine: opts.engine ?? 'vm', seed, random: this.random, xt: this.xt, optimize: opts.optimize ?? 1, ...addrLists(node), ct: ctm, afterRun: ctm?.markStore, ipsets: this.ipsets, fib: new NodeXtFib(node), sockets: new NodeXtSockets(node), dup, icmp: xtIcmp, xtIcmp, osf: node.osf ? parsePfOs(node.osf.text, node.osf.file) : undefined, ipvs, xfrmNoStates: node.xfrmNoStates === true, nfacct: this.nfacct,
      ctTimeouts: policies && new Map(policies.map((p, i) => [p.name, { index: i + 1, unusable: unusable![i] }])) } as const;
    const load = (rs: Ruleset | undefined, file: string, backend: Backend): Tables | undefined =>
      rs ? loadTables(rs, { ...common, backend, file }) : undefined;
    const t4 = load(this.rs4, node.iptables?.file ?? '', this.backend);
    const t6 = load(this.rs6, node.ip6tables?.file ?? '', this.backend6);
    this.engines = t4?.engines ?? new Map();
    this.engines6 = t6?.engines ?? new Map();
    // The nat table runs inside the NAT core's entries (nf_nat_inet_fn), which take its places.
    const ops = [...(t4?.ops ?? []), ...(t6?.ops ?? [])];
    const isNat = (o: NodeHookOps) => o.source.kind === 'table' && o.source.table === 'nat';
    registerOps(this.registry, ops.filter((o) => !isNat(o)));
    if (ctm) registerOps(this.registry, ctm.natOps(ops.filter(isNat)));
    // nf_defrag comes with conntrack, and alone for xt_socket and TPROXY (ct-node.ts needsDefragAlone)
    if (this.conntrack || (this.rs4 !== undefined && needsDefragAlone(this.rs4))) registerOps(this.registry, defragOps(NFPROTO_IPV4, this.backend, this.frags));
    if (this.conntrack6 || (this.rs6 !== undefined && needsDefragAlone(this.rs6))) registerOps(this.registry, defragOps(NFPROTO_IPV6, this.backend6, this.frags));
    if (this.conntrack) registerOps(this.registry, ctm!.conntrackOps(NFPROTO_IPV4, this.backend));
    if (this.conntrack6) registerOps(this.registry, ctm!.conntrackOps(NFPROTO_IPV6, this.backend6));
    if (ipvs) registerOps(this.registry, ipvs.ops());
    const nf4 = new NfHook(this.registry, NFPROTO_IPV4);
    const nf6 = new NfHook(this.registry, NFPROTO_IPV6);
    if (ctm) {
      const note = (p: Packet) => ctm.describe(p);
      if (this.conntrack) nf4.ctNote = note;
      if (this.conntrack6) nf6.ctNote = note;
    }
    this.inet4 = new Inet(node, nf4, IPV4);
    this.inet4.frags = this.frags;
    const ct4 = this.conntrackModule?.ct;
    if (this.inet4.xfrm && ct4) this.inet4.xfrm.natDecode = (pkt, fl) => xfrmNatDecode(ct4, pkt, fl);
    this.inet6 = new Inet(node, nf6, IPV6);
    this.inet6.frags = this.frags;
    if (this.inet6.xfrm && ct4) this.inet6.xfrm.natDecode = (pkt, fl) => xfrmNatDecode(ct4, pkt, fl);
    if (node.bridge.bridges.size > 0) {
      // A bridge in the namespace: br_netfilter registers its hooks (brnf_device_event).
      const inet = (pf: number) => (pf === NFPROTO_IPV4 ? this.inet4 : pf === NFPROTO_IPV6 ? this.inet6 : undefined);
      const bridgeOf = (dev: string) => node.bridge.ports.get(dev)?.bridge ?? '';
      const brHook = new BrHook(this.registry, bridgeOf);
      const br = new BridgeNode(node, brHook, inet, () => new Packet());
      if (ctm) br.ct = ctm.ct;
      const ebt = node.bridge.ebtables;
      if (ebt) {
        this.ebBackend = opts.backend ?? ebt.backend;
        const macOf = (dev: string) => {
          const l = node.links.get(dev);
          return l ? parseMac(l.mac) ?? undefined : undefined;
        };
        const t = loadEbtables(ebt.ruleset, { backend: this.ebBackend, file: ebt.file, br, nf: brHook, macOf });
        this.ebtables = ebt.ruleset;
        this.ebEngines = t.engines;
        registerOps(this.registry, t.ops);
      }
      const brCt = ctm ? { isConfirmed: (id: number) => ctm.ct.isConfirmed(id), confirm: (p: Packet) => ctm.ct.nfConfirm(p, ctm.now) } : undefined;
      registerOps(this.registry, new BrNetfilter(br, brnfSysctl(node.sysctl), inet, brCt).ops());
      this.bridge = br;
    }
  }

  /** Turns the TRACE steps on (every table's engine records its events). */
  setTrace(on: boolean): void {
    this.tracing = on;
    for (const e of this.engines.values()) e.setTrace(on);
    for (const e of this.engines6.values()) e.setTrace(on);
    for (const e of this.ebEngines.values()) e.setTrace(on);
  }

  private family(pkt: Packet): InetFamily | undefined {
    const pf = pkt.meta[M_NFPROTO];
    return pf === NFPROTO_IPV4 ? this.inet4 : pf === NFPROTO_IPV6 ? this.inet6 : undefined;
  }

  /** Whether the node runs conntrack for the packet's family. */
  tracks(pkt: Packet): boolean {
    const pf = pkt.meta[M_NFPROTO];
    return pf === NFPROTO_IPV4 ? this.conntrack : pf === NFPROTO_IPV6 ? this.conntrack6 : false;
  }

  /** The packet's context: its time on the node's clock (conntrack's timeouts, the answers' rate limits) and the spec's `ct` clause. */
  private start(pkt: Packet, input: PacketInput) {
    pkt.meta[M_CPU] = this.cpu;
    const ctm = this.conntrackModule;
    if (ctm && input.now !== undefined) ctm.now = input.now;
    if (input.now !== undefined) {
      this.stack.setNow(input.now);
      this.frags.setNow(input.now);
      if (this.ipvs) this.ipvs.nowNs = input.now;
      this.ipsets.setNow(input.now);
      if (this.bridge) this.bridge.now = input.now;
    }
    if (input.now !== undefined || this.xt.loadNs === undefined) this.xt.setNow(input.now ?? this.xt.nowNs);
    const ctSpec = input.ct && this.tracks(pkt) ? input.ct : undefined;
    if (this.reuseResults && !this.tracing) return resetPathCtx(this.ctx0, true, ctSpec, this.stack);
    return newPathCtx(!this.tracing, ctSpec, this.stack);
  }

  private lastIif = '';
  private lastLink: Link | undefined;

  /** A frame received on interface `iif` (pkt decoded, its ct fields set by the caller: captureCt). */
  receive(pkt: Packet, iif: string, input: PacketInput = {}): PathResult {
    // the snapshot's links are fixed once read: the last frame's device, mostly
    const link = iif === this.lastIif ? this.lastLink : this.node.links.get(iif);
    if (!link) throw new NfvmError('value', `no interface ${iif} in the snapshot`, this.node.dir || '<node>', undefined, iif);
    this.lastIif = iif;
    this.lastLink = link;
    const ctx = this.start(pkt, input);
    this.fragExpiry(ctx);
    if (this.bridge?.isPort(iif)) return this.finish(pkt, ctx, this.bridgeXmit(pkt, this.bridge.handleFrame(pkt, link, ctx), ctx));
    const af = this.family(pkt);
    if (!af || pkt.meta[M_NHOFF]! >= pkt.len) {
      return { fate: { kind: 'dropped', reason: 'not-ip', detail: 'not an IPv4 or IPv6 packet (ARP and other protocols are not modelled)', by: undefined }, steps: ctx.steps, answers: [] };
    }
    return this.finish(pkt, ctx, this.bridgeXmit(pkt, receive(af, pkt, link, ctx), ctx));
  }

  /**
   * ip_expire() / ip6frag_expire_frag_queue(): the reassembly queues whose
   * timer ran out before this packet answer with an ICMP time exceeded
   * (fragment reassembly) about their first fragment, routed again from its
   * input device; IPv4 conntrack queues only for a datagram to the node
   * (frag_expire_skip_icmp). The answers go with this packet's.
   */
  private fragExpiry(ctx: PathCtx): void {
    const heads = this.frags.takeExpired();
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      const link = this.node.linksByIndex.get(h.iif);
      if (!link) continue;
      const p = (this.expiryPkt ??= new Packet());
      resetMeta(p);
      p.setFrame(h.frame);
      const m = p.meta;
      m[M_NHOFF] = h.nh;
      m[M_PROTOCOL] = h.v6 ? ETH_P_IPV6 : ETH_P_IP;
      m[M_NFPROTO] = h.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
      if (h.nh > 0) m[M_FLAGS] = m[M_FLAGS]! | F_MAC_HEADER;
      decodeNetwork(p);
      setDeviceWords(p, true, linkDev(link));
      const actx = newPathCtx(true, undefined, this.stack, ctx.depth);
      const af = h.v6 ? this.inet6 : this.inet4;
      const rt = af.routeInput(p, link, actx);
      if (rt.kind === 'drop' || (!h.v6 && h.conntrack && rt.kind !== 'local')) continue;
      actx.dst = rt.kind === 'local' ? inputDst(true, rt.cast, 'lo') : inputDst(false, 'unicast', rt.dev);
      // ICMP_TIME_EXCEEDED / ICMPV6_TIME_EXCEED, code 1: fragment reassembly time exceeded
      this.stack.icmpError(h.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4, p, h.v6 ? 3 : 11, 1, 0, link, actx);
      for (const a of actx.answers) ctx.answers.push(a);
    }
  }

  private expiryPkt: Packet | undefined;

  /** A packet sent by a local program (out of `oif` when given). */
  send(pkt: Packet, oif = '', input: PacketInput = {}): PathResult {
    if (oif && !this.node.links.get(oif)) throw new NfvmError('value', `no interface ${oif} in the snapshot`, this.node.dir || '<node>', undefined, oif);
    const ctx = this.start(pkt, input);
    const af = this.family(pkt);
    if (!af) return { fate: { kind: 'dropped', reason: 'not-ip', detail: 'not an IPv4 or IPv6 packet', by: undefined }, steps: ctx.steps, answers: [] };
    return this.finish(pkt, ctx, this.bridgeXmit(pkt, localOut(af, pkt, oif, ctx), ctx));
  }

  /**
   * A packet the IP stack sent or forwarded out of a bridge device goes on through the bridge
   * (ip_finish_output2 → dev_queue_xmit → br_dev_xmit); its fate there when it does not leave a port.
   */
  private bridgeXmit(pkt: Packet, fate: Fate, ctx: PathCtx): Fate {
    if ((fate.kind !== 'sent' && fate.kind !== 'forwarded') || !this.bridge) return fate;
    const b = this.bridge.bridges.get(fate.dev);
    if (!b) return fate;
    return this.bridge.devXmit(pkt, b, fate, ctx);
  }

  /** The result of a packet: its fate, then the answers its path queued, each sent through ip_local_out. */
  private finish(pkt: Packet, ctx: PathCtx, fate: Fate): PathResult {
    if (ctx.nat.length) fate.nat = ctx.nat;
    // the next hop's link-layer address (a bridge device's output says so itself, BridgeNode.devXmit)
    if (!ctx.quiet && (fate.kind === 'forwarded' || (fate.kind === 'sent' && fate.cast === 'unicast')) && !this.bridge?.bridges.has(fate.dev)) {
      const note = unresolvedNeighbour(this.node, fate.dev, fate.via ?? fate.dst);
      if (note) ctx.steps.push({ kind: 'check', text: note });
    }
    let r: PathResult;
    if (ctx === this.ctx0) {
      r = this.result0;
      r.fate = fate;
      r.steps = ctx.steps;
      if (r.answers.length) r.answers.length = 0;
      r.emitted = undefined;
    } else r = { fate, steps: ctx.steps, answers: [] };
    if (this.recordEmitted) r.emitted = [];
    // TEE's copies left while the packet was in a hook, before it
    if (ctx.clones.length) this.sendClones(ctx, r);
    if ((this.recordEmitted || this.emitSink) && (fate.kind === 'forwarded' || fate.kind === 'sent')) {
      this.emit(r.emitted, fate.dev, fate.kind, pkt.data, pkt.meta[M_NHOFF]!, pkt.meta[M_END]!, pkt.meta[M_FLAGS]! & F_CSUM_PARTIAL ? PARTIAL_SUM : NO_FIELDS);
    }
    if (ctx.answers.length) this.sendAnswers(ctx, r);
    // The packet leaves the model (sent, delivered, dropped): it lets go of its conntrack (its answers hold their own reference).
    this.conntrackModule?.ct.nfResetCt(pkt);
    return r;
  }

  /** The copies TEE sent (hooks/dup.ts) into the result, each followed by the answers to it. */
  private sendClones(ctx: PathCtx, r: PathResult): void {
    for (const c of ctx.clones) {
      const a = c.result;
      r.answers.push(a);
      if ((r.emitted || this.emitSink) && a.fate.kind === 'sent') this.emit(r.emitted, a.fate.dev, a.kind, a.packet, 0, a.packet.length, a.kernelFields);
      if (c.ctx.answers.length) this.sendAnswers(c.ctx, r);
    }
  }

  /** ip_local_out() of each answer queued on `ctx`, depth first (an answer's own answers follow it). */
  private sendAnswers(ctx: PathCtx, r: PathResult): void {
    for (const a of ctx.answers) {
      const depth = ctx.depth + 1;
      const pkt = (this.answerPkts[depth] ??= new Packet());
      resetMeta(pkt);
      pkt.setFrame(a.packet);
      decodePacket(pkt, a.pf === NFPROTO_IPV6 ? LINKTYPE_IPV6 : LINKTYPE_IPV4);
      pkt.meta[M_MARK] = a.mark;
      pkt.meta[M_CPU] = this.cpu;
      setSocket(pkt, a.noSocket ? SK_NONE : SK_KERNEL);
      const actx = newPathCtx(ctx.quiet, undefined, this.stack, depth);
      if (a.icmpSocket) actx.icmpLocked = a.pf;
      if (a.closing && this.conntrackModule) nfCtSetClosing(this.conntrackModule.ct, a.origCtId);
      // the status first: attachCt copies it into the packet (M_CT_STATUS, what --ctstatus reads)
      const later = this.ctStatusAsSent(a);
      this.attachCt(pkt, a);
      const af = a.pf === NFPROTO_IPV6 ? this.inet6 : this.inet4;
      let fate: Fate;
      if (a.xmit !== undefined) {
        if (!actx.quiet) actx.steps.push({ kind: 'check', text: `dev_queue_xmit on ${a.xmit}: no OUTPUT, POSTROUTING or bridge hooks` });
        fate = { kind: 'sent', dev: a.xmit, via: undefined, dst: af.daddr(pkt), cast: 'unicast' };
      } else {
        fate = this.bridgeXmit(pkt, localOut(af, pkt, a.oif, actx, a.route, a.anySource === true), actx);
      }
      if (later >= 0) this.ctStatusNow(a, later);
      if (actx.nat.length) fate.nat = actx.nat;
      const sent = fate.kind === 'sent' ? ipBytes(pkt) : a.packet;
      r.answers.push({ kind: a.kind, why: a.why, depth, steps: actx.steps, fate, packet: sent, kernelFields: a.kernelFields });
      // its TEE copies left before it (listed after it, under it)
      if (actx.clones.length) this.sendClones(actx, r);
      if ((r.emitted || this.emitSink) && fate.kind === 'sent') this.emit(r.emitted, fate.dev, a.kind, sent, 0, sent.length, a.kernelFields);
      if (actx.answers.length) this.sendAnswers(actx, r);
      this.conntrackModule?.ct.nfResetCt(pkt);
    }
  }

  /**
   * An attached answer's path sees the original's conntrack status as it
   * was when the answer was made (Answer.origCtStatus: an ICMP redirect
   * leaves before its packet's POSTROUTING binds the source, so
   * nf_nat_icmp_reply_translation() finds the NAT not done and drops it).
   * The status of now, when it differs (else -1).
   */
  private ctStatusAsSent(a: Answer): number {
    const ct = this.conntrackModule?.ct;
    if (!ct || !a.attach || a.origCtId < 0) return -1;
    const now = ct.status[a.origCtId]!;
    if (now === a.origCtStatus) return -1;
    ct.status[a.origCtId] = a.origCtStatus;
    return now;
  }

  /** The status of now back, with what the answer's path changed in it (a binding its NAT made) kept. */
  private ctStatusNow(a: Answer, now: number): void {
    const ct = this.conntrackModule!.ct;
    const after = ct.status[a.origCtId]!;
    const then = a.origCtStatus;
    ct.status[a.origCtId] = (now & ~(then & ~after)) | (after & ~then);
  }

  /**
   * The conntrack an answer enters ip_local_out with. nf_ct_attach() (ICMP
   * errors: icmp_glue_bits, icmpv6_getfrag; REJECT's resets:
   * nf_send_reset) gives it the original's entry, ctinfo RELATED_REPLY when
   * the original went in the original direction, RELATED otherwise
   * (nf_conntrack_attach), and conntrack at LOCAL_OUT leaves it alone; an
   * echo reply and the stack's own reset carry none and are looked up as
   * any packet. An original without an entry (untracked, a template,
   * conntrack not loaded) gives nothing to attach.
   */
  private attachCt(pkt: Packet, a: Answer): void {
    this.captureCt(pkt);
    const ctm = this.conntrackModule;
    if (!ctm || !a.attach || a.origCtId < 0 || !(a.pf === NFPROTO_IPV6 ? this.conntrack6 : this.conntrack)) return;
    ctm.ct.nfConntrackGet(a.origCtId);
    ctm.ct.setPacketCt(pkt.meta, a.origCtId, a.origCtDir === IP_CT_DIR_ORIGINAL ? IP_CT_RELATED_REPLY : IP_CT_RELATED);
  }

  /** Records the packet bytes[from, to) leaving `dev` as the wire has it: in fragments when larger than the device's MTU. */
  private emit(out: Emitted[] | undefined, dev: string, kind: string, bytes: Uint8Array, from: number, to: number, kernelFields: readonly string[]): void {
    const mtu = this.node.links.get(dev)?.mtu ?? 65536;
    const sink = this.emitSink;
    if (to - from <= mtu) {
      sink?.emitted(dev, kind, bytes, from, to, kernelFields);
      out?.push({ dev, kind, packet: bytes.slice(from, to), kernelFields });
      return;
    }
    for (const p of ipFragmentWire(bytes.slice(from, to), mtu)) {
      sink?.emitted(dev, kind, p, 0, p.length, kernelFields);
      out?.push({ dev, kind, packet: p, kernelFields });
    }
  }

  /** Sets the clock of the next packets (nanoseconds: a capture's timestamps): the rate limits of the answers run on it. */
  setNow(nowNs: number): void {
    this.stack.setNow(nowNs);
    this.frags.setNow(nowNs);
    this.ipsets.setNow(nowNs);
    this.xt.setNow(nowNs);
    if (this.conntrackModule) this.conntrackModule.now = nowNs;
    if (this.ipvs) this.ipvs.nowNs = nowNs;
    if (this.bridge) this.bridge.now = nowNs;
  }

  /**
   * Sets (or clears) the forced-choice hook of every random draw of the
   * node (vm/random.ts): the engines' and the stack's.
   */
  setChooser(c: Chooser | null): void {
    this.random.chooser = c;
    for (const e of this.engines.values()) e.setChooser(c);
    for (const e of this.engines6.values()) e.setChooser(c);
    for (const e of this.ebEngines.values()) e.setChooser(c);
  }

  /**
   * Saves the run-time state (counters, match state, the random source,
   * the answers' rate limits, the conntrack table, the reassembly queues); the returned function restores it.
   * undefined when an engine cannot save its state (the x_tables evaluator, `--engine reference`, keeps match state in closures)
   * or IPVS has seen packets (it restores only to the state its services were built in).
   * `counters` false leaves the rule counters out (their values do not decide any match).
   */
  checkpoint(counters = true): (() => void) | undefined {
    const engines = [...this.engines.values(), ...this.engines6.values(), ...this.ebEngines.values()];
    if (engines.some((e) => !e.checkpoint)) return undefined;
    const ipvs = this.ipvs?.checkpoint();
    if (this.ipvs && !ipvs) return undefined;
    const fdbs = this.bridge ? [...this.bridge.bridges.values()].map((b) => [b.fdb, b.fdb.save()] as const) : [];
    const restores = engines.map((e) => e.checkpoint!(counters));
    const rng = this.random.state[0]!;
    const stack = this.stack.save();
    const ct = this.conntrackModule?.checkpoint();
    const sets = this.ipsets.checkpoint();
    const xt = this.xt.checkpoint();
    const frags = this.frags.checkpoint();
    return () => {
      for (const r of restores) r();
      frags();
      sets();
      xt();
      this.random.state[0] = rng;
      this.stack.restore(stack);
      ct?.();
      ipvs?.();
      for (const [fdb, saved] of fdbs) fdb.restore(saved);
    };
  }

  /** A captured frame has no conntrack yet (skb->_nfct empty): the node's conntrack classifies it. */
  captureCt(pkt: Packet): void {
    const m = pkt.meta;
    m[M_CT_ID] = -1;
    m[M_CT_STATE] = 0;
    m[M_CT_DIR] = -1;
    m[M_CT_STATUS] = 0;
    m[M_CT_MARK] = 0;
  }

  /** The conntrack table, when the node runs conntrack. */
  get conntrackTable(): NfConntrack | undefined {
    return this.conntrackModule?.ct;
  }

  /** Counters of a table's rules and policies, from its engine (IPv4, or IPv6 with family 'ip6'). */
  counters(table: TableName, family: 'ip' | 'ip6' = 'ip'): Map<string, { rules: Count[]; policy: Count | undefined }> | undefined {
    return (family === 'ip6' ? this.engines6 : this.engines).get(table)?.counters();
  }

  /**
   * The ruleset of a family with the engines' counters written into its AST
   * (rule counters and builtin policy counters), ready for saveRuleset(rs, {counters: true});
   * `counters` gives them instead of the engines (a replay's counters summed over its workers).
   */
  rulesetWithCounters(family: 'ip' | 'ip6' = 'ip', counters?: (table: TableName) => TableCounters | undefined): Ruleset | undefined {
    const rs = family === 'ip6' ? this.rs6 : this.rs4;
    if (!rs) return undefined;
    const engines = family === 'ip6' ? this.engines6 : this.engines;
    for (const [name, table] of rs.tables) {
      const c = counters ? counters(name) : engines.get(name)?.counters();
      if (!c) continue;
      for (const chain of table.chains.values()) applyCounters(chain, c.get(chain.name));
    }
    return rs;
  }
}

/** The ebtables ruleset with the engines' counters written into its AST (ready for saveEbtRuleset(rs, {counters: true})). */
export function ebtablesWithCounters(model: NodeModel, counters?: (table: EbtTableName) => TableCounters | undefined): EbtRuleset | undefined {
  const rs = model.ebtables;
  if (!rs) return undefined;
  for (const [name, table] of rs.tables) {
    const c = counters ? counters(name) : model.ebEngines.get(name)?.counters();
    for (const chain of table.chains.values()) {
      const k = c?.get(chain.name);
      chain.rules.forEach((r, i) => {
        r.counters = { packets: BigInt(k?.rules[i]?.packets ?? 0), bytes: BigInt(k?.rules[i]?.bytes ?? 0) };
      });
      chain.policyCounters = { packets: BigInt(k?.policy?.packets ?? 0), bytes: BigInt(k?.policy?.bytes ?? 0) };
    }
  }
  return rs;
}

function applyCounters(chain: Chain, c: { rules: Count[]; policy: Count | undefined } | undefined): void {
  chain.rules.forEach((r: Rule, i: number) => {
    const k = c?.rules[i];
    r.counters = { packets: BigInt(k?.packets ?? 0), bytes: BigInt(k?.bytes ?? 0) };
  });
  if (chain.builtin) chain.policyCounters = { packets: BigInt(c?.policy?.packets ?? 0), bytes: BigInt(c?.policy?.bytes ?? 0) };
}

/** The IP packet of `pkt` (network header to end), copied. */
function ipBytes(pkt: Packet): Uint8Array {
  return pkt.data.slice(pkt.meta[M_NHOFF]!, pkt.meta[M_END]!);
}

export function buildNodeModel(node: Node, opts: NodeModelOptions = {}): NodeModel {
  return new NodeModel(node, opts);
}

/** Sets a captured frame's conntrack fields (NodeModel.captureCt). */
export function captureCt(model: NodeModel, pkt: Packet): void {
  model.captureCt(pkt);
}

/**
 * nf_nat_decode_session() / nf_nat_ipv4_decode_session() /
 * nf_nat_ipv6_decode_session(): the policy
 * check's flow takes, where NAT changed them, the addresses (and ports of
 * TCP, UDP, UDP-Lite, SCTP) of the conntrack's tuple in the packet's
 * direction: the destination when the original direction was destination
 * NATed (a reply: source NATed), the source for the other kind.
 */
function xfrmNatDecode(ct: NfConntrack, pkt: Packet, fl: XfrmFlow): void {
  const e = pkt.meta[M_CT_ID]!;
  const dir = pkt.meta[M_CT_DIR]!;
  if (e < 0 || (dir !== IP_CT_DIR_ORIGINAL && dir !== IP_CT_DIR_REPLY)) return;
  const st = ct.status[e]!;
  const t = ct.tuples;
  const o = (2 * e + dir) * TUPLE_WORDS;
  const proto = t[o + T_PROTO]! & 0xff;
  const ports = proto === 6 || proto === 17 || proto === 136 || proto === 132;
  const words = fl.family === 4 ? 1 : 4;
  let bit = dir === IP_CT_DIR_ORIGINAL ? IPS_DST_NAT : IPS_SRC_NAT;
  if (st & bit) {
    for (let i = 0; i < words; i++) fl.daddr[i] = t[o + T_DST + i]! >>> 0;
    if (ports) fl.dport = t[o + T_PORTS]! & 0xffff;
  }
  bit ^= IPS_NAT_MASK;
  if (st & bit) {
    for (let i = 0; i < words; i++) fl.saddr[i] = t[o + T_SRC + i]! >>> 0;
    if (ports) fl.sport = t[o + T_PORTS]! >>> 16;
  }
}
