/**
 * How the node's modules register into the hook registry (hooks/registry.ts)
 * and what their hook functions see, as kernel modules call
 * nf_register_net_hooks() with their struct nf_hook_ops.
 *
 * A module (the iptables tables in tables.ts, nf_defrag in defrag.ts,
 * conntrack and NAT in ct-node.ts; the bridge and IPVS later) builds
 * NodeHookOps: a family, a hook point, a priority from priorities.ts and a
 * hook function over (pkt, state), and registers them with registerOps().
 * The packet carries its conntrack in its metadata (M_CT_ID, skb->_nfct);
 * the state gives the function the devices and the per-packet context: the
 * TRACE steps (ctx.steps, formatted only when !ctx.quiet), the OUTPUT
 * re-route (ctx.reroute), the NAT rewrites. When an entry ends the walk,
 * the fate translator (verdict.ts) reads its `source` to say what the
 * verdict means.
 *
 *   registerOps(registry, [{
 *     pf: NFPROTO_IPV4, hooknum: NF_INET_PRE_ROUTING, priority: NF_IP_PRI_CONNTRACK, name: 'ipv4_conntrack_in',
 *     source: { kind: 'module' },
 *     hook: (pkt, st) => ct.nfConntrackIn(pkt, st.hook, now),
 *   }]);
 */
import { NF_ACCEPT } from '../core/netfilter.js';
import type { Family, Table, TableName } from '../core/ast.js';
import type { TableEngine } from '../engine/engine.js';
import type { Packet } from '../vm/packet.js';
import type { NfHookOps, NfHookRegistry, NfHookState } from './registry.js';
import type { Link } from './snapshot/node.js';
import type { PathCtx } from './path/ctx.js';
import type { Fate } from './path/fate.js';

/** struct nf_hook_state as the node's hook functions get it. */
export interface NodeHookState extends NfHookState {
  /** The packet's context: conntrack entry, TRACE steps, OUTPUT re-route. */
  ctx: PathCtx;
  inLink: Link | undefined;
  /** The output device; mangle OUTPUT's re-route may change it. */
  outLink: Link | undefined;
}

/**
 * The hook state of nesting depth `depth` in `states` (an entry may send a
 * packet through hooks again: TEE, br_netfilter), filled for a walk of
 * `hook`: made once per depth, reused packet after packet.
 */
export function hookState(states: NodeHookState[], depth: number, pf: number, hook: number, inLink: Link | undefined, outLink: Link | undefined, ctx: PathCtx): NodeHookState {
  const inName = inLink?.name ?? '';
  const outName = outLink?.name ?? '';
  const st = states[depth];
  if (st === undefined) {
    const fresh: NodeHookState = { hook, pf, in: inName, out: outName, index: -1, verdict: NF_ACCEPT, ctx, inLink, outLink };
    states[depth] = fresh;
    return fresh;
  }
  st.hook = hook;
  st.in = inName;
  st.out = outName;
  st.index = -1;
  st.verdict = NF_ACCEPT;
  st.ctx = ctx;
  st.inLink = inLink;
  st.outLink = outLink;
  return st;
}

/** What a registered entry is, for the fate translator. */
export type HookSource =
  /**
   * An iptables table (x_tables) or iptables-nft base chain, run by its
   * engine; `explain` (the NAT core's, around the nat table) turns a verdict
   * that is not the table's own into a fate.
   */
  | {
    readonly kind: 'table'; readonly family: Family; readonly table: TableName; readonly ast: Table; readonly engine: TableEngine;
    readonly explain?: (verdict: number, st: NodeHookState) => Fate | undefined;
  }
  /** nf_defrag_ipv4/ipv6: NF_STOLEN means "held for reassembly". */
  | { readonly kind: 'defrag' }
  /** Any other module; `explain` (when given) turns its non-accept verdicts into fates. */
  | { readonly kind: 'module'; readonly explain?: (verdict: number, st: NodeHookState) => Fate | undefined };

/** struct nf_hook_ops of the node: where it registers, and what it is. */
export interface NodeHookOps extends NfHookOps<Packet, NodeHookState> {
  /** NFPROTO_*. */
  readonly pf: number;
  /** NF_INET_* hook number. */
  readonly hooknum: number;
  readonly source: HookSource;
}

export type NodeRegistry = NfHookRegistry<Packet, NodeHookState, NodeHookOps>;

/** nf_register_net_hooks(): each ops at its (pf, hooknum). */
export function registerOps(registry: NodeRegistry, ops: readonly NodeHookOps[]): void {
  for (const o of ops) registry.register(o.pf, o.hooknum, o);
}

/**
 * The describer a table hook gives its engine's traced runs (TraceEvent.packet):
 * `body` words the packet with the devices of the run the returned function was
 * last bound to (`at(st)`, right before the run).
 */
export function traceDescriber(body: (pkt: Packet, inDev: string, outDev: string) => string): (st: NodeHookState) => (pkt: Packet) => string {
  let cur: NodeHookState | undefined;
  const describe = (pkt: Packet): string => body(pkt, cur!.in, cur!.out);
  return (st) => {
    cur = st;
    return describe;
  };
}
