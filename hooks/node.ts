/**
 * The assembled node: a snapshot (hooks/snapshot) with its iptables tables
 * registered into the netfilter hook registry (hooks/registry.ts) at the
 * priorities of the dump's backend (hooks/priorities.ts), each table run by
 * a TableEngine (the bytecode VM or the reference evaluator), and the IPv4
 * and IPv6 packet paths (hooks/path/ipv4.ts, ipv6.ts) that call the hooks;
 * a frame goes to the path of its ethertype / IP version. The ip6tables
 * tables (ip6tables-save.txt) register as ip6table_* (or the ip6 nft
 * tables) at the NF_IP6_PRI_* priorities, with nf_defrag_ipv6 and IPv6
 * conntrack when that ruleset needs conntrack.
 *
 *   const node = buildNodeModel(readSnapshot('examples/node'), { engine: 'vm' });
 *   const r = node.trace(specPacket(parseSpec('tcp 198.51.100.7:40000 > 192.168.1.10:22 iif eth0')), 'eth0');
 *   console.log(fateText(r.fate));
 *
 * Registration follows the kernel modules (Linux 6.18): iptable_raw -300,
 * iptable_mangle -150, iptable_nat through the NAT core at -100 (PRE_ROUTING,
 * LOCAL_OUT) and 100 (LOCAL_IN, POST_ROUTING), iptable_filter 0,
 * iptable_security 50 (iptables-nft: 150), each only on the hooks its table
 * has; when the ruleset needs conntrack (a nat table, or a conntrack/state/
 * connmark/CONNMARK/CT/NOTRACK/helper/... extension: their checkentry calls
 * nf_ct_netns_get) nf_defrag_ipv4 -400, conntrack -200 and confirm INT_MAX
 * are registered as well. Only tables present in the dump are registered,
 * as in a namespace where only those tables were ever loaded.
 *
 * The conntrack/NAT seam (no conntrack or NAT model yet; a later issue):
 *  - nf_defrag_ipv4 steals every fragment (it would wait for the others);
 *    reassembly is not modelled;
 *  - conntrack itself does not change the packet: its state is what the
 *    packet brings (a packet spec's `ct ...`; a captured frame is the first
 *    packet of its own connection, ctstate NEW, when conntrack is active,
 *    and has no conntrack entry otherwise);
 *  - the nat table's chains run only for ctstate NEW (the first packet of a
 *    connection), as nf_nat_inet_fn() does; DNAT/SNAT/MASQUERADE/REDIRECT are
 *    recorded in the trace by the engine but no address is rewritten;
 *  - NF_QUEUE finds no listener (as in a fresh namespace): the packet is
 *    dropped unless the verdict carries the bypass flag.
 */
import { parseRestore } from '../compiler/parse/restore.js';
import type { Ruleset, TableName, Rule, Chain } from '../core/ast.js';
import { NfvmError } from '../core/errors.js';
import type { Count, TableEngine } from '../engine/engine.js';
import { TraceKind } from '../engine/engine.js';
import { referenceTable } from '../engine/reference/index.js';
import { vmTable } from '../engine/vm-table.js';
import type { Packet } from '../vm/packet.js';
import { setDevice } from '../vm/packet.js';
import { M_CT_DIR, M_CT_STATE, M_CT_STATUS, M_MARK, M_NHOFF, M_NFPROTO } from '../vm/layout.js';
import {
  NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_STOLEN, NF_VERDICT_MASK, NF_INET_LOCAL_OUT, NF_QUEUE,
  NF_VERDICT_QBITS, NF_VERDICT_FLAG_QUEUE_BYPASS, NF_CT_STATE_NEW_BIT, type Backend,
} from '../core/netfilter.js';
import { NfHookRegistry, type NfHookOps, type NfHookState } from './registry.js';
import { HOOK_CHAIN_NAMES, hookSlots, type HookSlot } from './priorities.js';
import type { Link, Node } from './snapshot/node.js';
import { RTN_BROADCAST, RTN_LOCAL, RT_TABLE_LOCAL } from './route/types.js';
import { Ipv4Path, arphrd, isFragment, type Netfilter, type PathCtx } from './path/ipv4.js';
import { Ipv6Path, defrag6Takes, routeKeys6 } from './path/ipv6.js';
import type { Fate, PathResult, VerdictSource } from './path/fate.js';
import { logBody } from './path/log.js';

export type EngineKind = 'vm' | 'reference';

export interface NodeModelOptions {
  /** Evaluator of the tables (default 'vm'). */
  engine?: EngineKind;
  /** Overrides the backend the dump's header names (default: the header's, else legacy). */
  backend?: Backend;
  /** Seed of `statistic --mode random` (default 1). */
  seed?: number;
  /** The VM's program: 1 (default) with classifier prefilters (compiler/optimize), 0 straight lowering. */
  optimize?: 0 | 1;
}

/** Extensions whose checkentry takes a conntrack reference (nf_ct_netns_get). */
const CT_MATCHES = new Set(['conntrack', 'state', 'connmark', 'helper', 'connbytes', 'connlimit', 'cluster', 'ipvs', 'socket']);
const CT_TARGETS = new Set(['CONNMARK', 'CT', 'NOTRACK', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP', 'CONNSECMARK', 'TPROXY']);

/** Whether loading `rs` would register conntrack (and nf_defrag) in the namespace. */
export function needsConntrack(rs: Ruleset): boolean {
  if (rs.tables.has('nat')) return true;
  for (const t of rs.tables.values())
    for (const c of t.chains.values())
      for (const r of c.rules) {
        if (r.matches.some((m) => CT_MATCHES.has(m.name))) return true;
        if ((r.target.kind === 'ext' || r.target.kind === 'unknown') && CT_TARGETS.has(r.target.name)) return true;
      }
  return false;
}

interface NodeHookState extends NfHookState {
  ctx: PathCtx;
  inLink: Link | undefined;
  outLink: Link | undefined;
}

interface EntryInfo {
  slot: HookSlot;
}

/** Per-address lists for `addrtype` (the local table's host routes). */
function addrLists(node: Node): { localAddrs: Uint8Array[]; broadcastAddrs: Uint8Array[] } {
  const localAddrs: Uint8Array[] = [];
  const broadcastAddrs: Uint8Array[] = [];
  const tbl = node.fib4.tables.get(RT_TABLE_LOCAL);
  const bytes = (v: number) => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  for (const r of tbl ? tbl.routes() : []) {
    if (r.plen !== 32 && !(r.type === RTN_LOCAL && r.dst.w[0]! >>> 24 === 127)) continue;
    if (r.type === RTN_LOCAL) localAddrs.push(bytes(r.dst.w[0]!));
    else if (r.type === RTN_BROADCAST) broadcastAddrs.push(bytes(r.dst.w[0]!));
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

export class NodeModel implements Netfilter {
  readonly registry = new NfHookRegistry<Packet, NodeHookState>();
  /** IPv4 rules of the node (iptables-save.txt), parsed; undefined without the file. */
  readonly rs4: Ruleset | undefined;
  readonly rs6: Ruleset | undefined;
  /** Engines of the IPv4 tables present. */
  readonly engines = new Map<TableName, TableEngine>();
  /** Engines of the IPv6 tables present. */
  readonly engines6 = new Map<TableName, TableEngine>();
  readonly backend: Backend;
  /** Backend of the ip6tables tables (the option, else ip6tables-save.txt's header, else the IPv4 one). */
  readonly backend6: Backend;
  readonly conntrack: boolean;
  /** Whether the ip6tables ruleset registers IPv6 conntrack (and nf_defrag_ipv6). */
  readonly conntrack6: boolean;
  readonly path: Ipv4Path;
  readonly path6: Ipv6Path;
  private tracing = false;
  private readonly entryInfo = new Map<NfHookOps<Packet, NodeHookState>, EntryInfo>();

  constructor(
    readonly node: Node,
    readonly opts: NodeModelOptions = {},
  ) {
    const txt4 = node.iptables;
    const txt6 = node.ip6tables;
    this.rs4 = txt4 ? parseRestore(txt4.text, { family: 'ip', file: txt4.file }) : undefined;
    this.rs6 = txt6 ? parseRestore(txt6.text, { family: 'ip6', file: txt6.file }) : undefined;
    this.backend = opts.backend ?? txt4?.backend ?? txt6?.backend ?? 'legacy';
    this.backend6 = opts.backend ?? txt6?.backend ?? this.backend;
    this.conntrack = this.rs4 ? needsConntrack(this.rs4) : false;
    this.conntrack6 = this.rs6 ? needsConntrack(this.rs6) : false;
    const lists = addrLists(node);
    const engineOpts = { seed: opts.seed ?? 1, ...lists };
    if (this.rs4) {
      for (const t of this.rs4.tables.keys()) {
        const file = txt4!.file;
        const e = (opts.engine ?? 'vm') === 'reference'
          ? referenceTable(this.rs4, t, { ...engineOpts, file })
          : vmTable(this.rs4, t, { ...engineOpts, file, backend: this.backend, optimize: opts.optimize ?? 1 });
        this.engines.set(t, e);
      }
    }
    if (this.rs6) {
      for (const t of this.rs6.tables.keys()) {
        const file = txt6!.file;
        const e = (opts.engine ?? 'vm') === 'reference'
          ? referenceTable(this.rs6, t, { ...engineOpts, file })
          : vmTable(this.rs6, t, { ...engineOpts, file, backend: this.backend6, optimize: opts.optimize ?? 1 });
        this.engines6.set(t, e);
      }
    }
    const slots = [
      ...hookSlots(NFPROTO_IPV4, this.backend, { conntrack: this.conntrack, tables: [...this.engines.keys()] }),
      ...hookSlots(NFPROTO_IPV6, this.backend6, { conntrack: this.conntrack6, tables: [...this.engines6.keys()] }),
    ];
    for (const s of slots) {
      const ops: NfHookOps<Packet, NodeHookState> = { priority: s.priority, name: s.owner, hook: this.hookFn(s) };
      this.entryInfo.set(ops, { slot: s });
      this.registry.register(s.family, s.hook, ops);
    }
    this.path = new Ipv4Path(node, this);
    const nf6: Netfilter = {
      hook: (hook, pkt, inLink, outLink, ctx) => this.hookPf(NFPROTO_IPV6, hook, pkt, inLink, outLink, ctx),
      conntrack: this.conntrack6,
    };
    this.path6 = new Ipv6Path(node, nf6);
  }

  private hookFn(s: HookSlot): (pkt: Packet, st: NodeHookState) => number {
    switch (s.component) {
      case 'defrag':
        if (s.family === NFPROTO_IPV6) return (pkt) => (defrag6Takes(pkt) ? NF_STOLEN : NF_ACCEPT);
        return (pkt) => (isFragment(pkt) ? NF_STOLEN : NF_ACCEPT);
      case 'conntrack-in':
      case 'conntrack-local':
      case 'conntrack-confirm':
        return () => NF_ACCEPT;
      case 'table': {
        const table = s.table as TableName;
        const v6 = s.family === NFPROTO_IPV6;
        const engine = (v6 ? this.engines6 : this.engines).get(table)!;
        const chain = HOOK_CHAIN_NAMES[s.hook]!;
        const nat = table === 'nat';
        const mangleOut = table === 'mangle' && s.hook === NF_INET_LOCAL_OUT;
        return (pkt, st) => {
          if (nat && (pkt.meta[M_CT_STATE]! & NF_CT_STATE_NEW_BIT) === 0) return NF_ACCEPT;
          const body = this.tracing ? logBody(pkt, st.in, st.out) : '';
          let before: number[] | undefined;
          if (mangleOut && st.ctx.reroute) before = v6 ? routeKeys6(pkt) : routeKeys(pkt);
          const v = engine.run(chain, pkt);
          if (this.tracing) {
            for (const e of engine.takeTrace()) {
              const type = e.kind === TraceKind.RULE ? 'rule' : e.kind === TraceKind.RETURN ? 'return' : 'policy';
              st.ctx.steps.push({ kind: 'trace', table, chain: e.chain, type, num: e.rule, line: `TRACE: ${table}:${e.chain}:${type}:${e.rule} ${body}` });
            }
          }
          if (before && (v & NF_VERDICT_MASK) !== NF_DROP && (v & NF_VERDICT_MASK) !== NF_STOLEN) {
            const after = v6 ? routeKeys6(pkt) : routeKeys(pkt);
            if (after.some((x, i) => x !== before![i])) {
              const r = st.ctx.reroute!(pkt);
              if (typeof r === 'number') return NF_DROP | ((-r) << NF_VERDICT_QBITS);
              st.outLink = r;
              st.out = r.name;
            }
          }
          return v;
        };
      }
    }
  }

  /** nf_hook() for the IPv4 path: devices on the packet and the state, nf_hook_slow, the fate of a verdict. */
  hook(hook: number, pkt: Packet, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx): 1 | Fate {
    return this.hookPf(NFPROTO_IPV4, hook, pkt, inLink, outLink, ctx);
  }

  /** nf_hook() for (pf, hook). */
  hookPf(pf: number, hook: number, pkt: Packet, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx): 1 | Fate {
    const entries = this.registry.entries(pf, hook);
    // nf_hook(): no entries registered on this hook, nothing to run
    if (entries.length === 0) return 1;
    if (inLink) setDevice(pkt, 'in', inLink.ifindex, inLink.name, arphrd(inLink), inLink.group);
    else setDevice(pkt, 'in', 0);
    if (outLink) setDevice(pkt, 'out', outLink.ifindex, outLink.name, arphrd(outLink), outLink.group);
    else setDevice(pkt, 'out', 0);
    const st: NodeHookState = { hook, pf, in: inLink?.name ?? '', out: outLink?.name ?? '', index: -1, verdict: NF_ACCEPT, ctx, inLink, outLink };
    const from = ctx.steps.length;
    const ret = this.registry.nfHookSlow(pf, hook, pkt, st);
    if (ret === 1) return 1;
    const ops = entries[st.index]!;
    const info = this.entryInfo.get(ops);
    const by = this.verdictSource(info?.slot, ops.name, hook, ctx, from);
    const v = st.verdict;
    switch (v & NF_VERDICT_MASK) {
      case NF_DROP: {
        if (info?.slot.table === 'mangle' && hook === NF_INET_LOCAL_OUT && v >>> NF_VERDICT_QBITS !== 0) {
          // Only the re-route puts an errno in a verdict here (the engines' DROP carries none).
          return { kind: 'dropped', reason: 'reroute', detail: 're-route after mangle OUTPUT changed the packet found no route', by };
        }
        // Which rule decided is known from the trace only; without it the table is.
        const reason = !info || info.slot.component !== 'table' ? 'hook' : by.policy ? 'policy' : by.rule > 0 || !this.tracing ? 'rule' : 'hotdrop';
        return { kind: 'dropped', reason, detail: reason === 'hotdrop' ? 'a match could not read the header it needs (hotdrop)' : '', by };
      }
      case NF_QUEUE: {
        const q = v >>> NF_VERDICT_QBITS;
        if (v & NF_VERDICT_FLAG_QUEUE_BYPASS) return { kind: 'queued', queue: q, by };
        return { kind: 'dropped', reason: 'queue', detail: `queued to queue ${q}, where no program listens`, by };
      }
      case NF_STOLEN:
        if (info?.slot.component === 'defrag') return { kind: 'dropped', reason: 'reassembly', detail: `a fragment, held by ${ops.name} for reassembly (not modelled)`, by: undefined };
        return { kind: 'stolen', by };
      default:
        return { kind: 'stolen', by };
    }
  }

  private verdictSource(slot: HookSlot | undefined, entry: string, hook: number, ctx: PathCtx, from: number): VerdictSource {
    const hookName = HOOK_CHAIN_NAMES[hook]!;
    const src: VerdictSource = { table: slot?.table ?? '', hook: hookName, chain: '', rule: 0, policy: '', entry };
    if (!slot || slot.component !== 'table') return src;
    const table = (slot.family === NFPROTO_IPV6 ? this.rs6 : this.rs4)?.tables.get(slot.table as TableName);
    for (let i = ctx.steps.length - 1; i >= from; i--) {
      const s = ctx.steps[i]!;
      if (s.kind !== 'trace' || s.table !== slot.table) continue;
      src.chain = s.chain;
      const chain = table?.chains.get(s.chain);
      if (s.type === 'policy' && chain && s.num === chain.rules.length + 1) src.policy = chain.policy ?? 'ACCEPT';
      else src.rule = s.num;
      break;
    }
    return src;
  }

  /** Turns the TRACE steps on (every table's engine records its events). */
  setTrace(on: boolean): void {
    this.tracing = on;
    for (const e of this.engines.values()) e.setTrace(on);
    for (const e of this.engines6.values()) e.setTrace(on);
  }

  /** A frame received on interface `iif` (pkt decoded, its ct fields set by the caller). */
  receive(pkt: Packet, iif: string): PathResult {
    const ctx: PathCtx = { steps: [], reroute: undefined, quiet: !this.tracing };
    const link = this.node.links.get(iif);
    if (!link) throw new NfvmError('value', `no interface ${iif} in the snapshot`, this.node.dir || '<node>', undefined, iif);
    const pf = pkt.meta[M_NFPROTO];
    if (pkt.meta[M_NHOFF]! >= pkt.len || (pf !== NFPROTO_IPV4 && pf !== NFPROTO_IPV6)) {
      return { fate: { kind: 'dropped', reason: 'not-ip', detail: 'not an IPv4 or IPv6 packet (ARP and other protocols are not modelled)', by: undefined }, steps: ctx.steps };
    }
    const fate = pf === NFPROTO_IPV6 ? this.path6.receive(pkt, link, ctx) : this.path.receive(pkt, link, ctx);
    return { fate, steps: ctx.steps };
  }

  /** A packet sent by a local program (out of `oif` when given). */
  send(pkt: Packet, oif = ''): PathResult {
    const ctx: PathCtx = { steps: [], reroute: undefined, quiet: !this.tracing };
    if (oif && !this.node.links.get(oif)) throw new NfvmError('value', `no interface ${oif} in the snapshot`, this.node.dir || '<node>', undefined, oif);
    const pf = pkt.meta[M_NFPROTO];
    if (pf !== NFPROTO_IPV4 && pf !== NFPROTO_IPV6) {
      return { fate: { kind: 'dropped', reason: 'not-ip', detail: 'not an IPv4 or IPv6 packet', by: undefined }, steps: ctx.steps };
    }
    const fate = pf === NFPROTO_IPV6 ? this.path6.send(pkt, oif, ctx) : this.path.send(pkt, oif, ctx);
    return { fate, steps: ctx.steps };
  }

  /** Counters of a table's rules and policies, from its engine (IPv4, or IPv6 with family 'ip6'). */
  counters(table: TableName, family: 'ip' | 'ip6' = 'ip'): Map<string, { rules: Count[]; policy: Count | undefined }> | undefined {
    return (family === 'ip6' ? this.engines6 : this.engines).get(table)?.counters();
  }

  /**
   * The IPv4 ruleset with the engines' counters written into its AST (rule
   * counters and builtin policy counters), ready for saveRuleset(rs, {counters: true}).
   */
  rulesetWithCounters(family: 'ip' | 'ip6' = 'ip'): Ruleset | undefined {
    const rs = family === 'ip6' ? this.rs6 : this.rs4;
    if (!rs) return undefined;
    const engines = family === 'ip6' ? this.engines6 : this.engines;
    for (const [name, table] of rs.tables) {
      const c = engines.get(name)?.counters();
      if (!c) continue;
      for (const chain of table.chains.values()) applyCounters(chain, c.get(chain.name));
    }
    return rs;
  }
}

function applyCounters(chain: Chain, c: { rules: Count[]; policy: Count | undefined } | undefined): void {
  chain.rules.forEach((r: Rule, i: number) => {
    const k = c?.rules[i];
    r.counters = { packets: BigInt(k?.packets ?? 0), bytes: BigInt(k?.bytes ?? 0) };
  });
  if (chain.builtin) chain.policyCounters = { packets: BigInt(c?.policy?.packets ?? 0), bytes: BigInt(c?.policy?.bytes ?? 0) };
}

/** What ipt_mangle_out() compares: mark, saddr, daddr, tos. */
function routeKeys(pkt: Packet): number[] {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const w = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  return [pkt.meta[M_MARK]!, w(nh + 12), w(nh + 16), d[nh + 1]!];
}

export function buildNodeModel(node: Node, opts: NodeModelOptions = {}): NodeModel {
  return new NodeModel(node, opts);
}

/** Sets a captured frame's conntrack fields: ctstate NEW when the node runs conntrack, none otherwise. */
export function captureCt(model: NodeModel, pkt: Packet): void {
  const m = pkt.meta;
  if (m[M_NFPROTO] === NFPROTO_IPV6 ? model.conntrack6 : model.conntrack) {
    m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
    m[M_CT_STATUS] = 0;
    m[M_CT_DIR] = 0;
  } else {
    m[M_CT_STATE] = 0;
    m[M_CT_DIR] = -1;
  }
}
