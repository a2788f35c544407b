/**
 * The iptables tables as hook modules: iptable_{raw,mangle,nat,filter,
 * security} and ip6table_* (or the iptables-nft base chains), each table's
 * engine run on its builtin chain at the hooks and priorities of
 * priorities.ts, registered only for the tables the dump has (as in a
 * namespace where only those tables were ever loaded).
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/netfilter/iptable_filter.c, iptable_raw.c, iptable_security.c   ipt_do_table() on the hook's chain
 *   net/ipv4/netfilter/iptable_mangle.c  ipt_mangle_out(): re-route (ip_route_me_harder) when the
 *                                         chain changed mark, saddr, daddr or TOS
 *   net/ipv6/netfilter/ip6table_mangle.c ip6t_mangle_out(): the same over saddr, daddr, mark, hop
 *                                         limit and the first header word (flow label, traffic class)
 *   net/ipv4/netfilter/iptable_nat.c     the nat table's chains, run by the NAT core (ct-node.ts,
 *                                         nf_nat_inet_fn) for a connection's first packet only
 * The TRACE lines are ip_tables.c trace_packet()'s, with nf_log_syslog's body (path/log.ts).
 */
import type { Family, Rule, Ruleset, Table, TableName } from '../core/ast.js';
import { saveRule } from '../compiler/save.js';
import {
  NF_DROP, NF_INET_LOCAL_OUT, NF_STOLEN, NF_VERDICT_MASK, NF_VERDICT_QBITS,
  NFPROTO_IPV4, NFPROTO_IPV6, type Backend,
} from '../core/netfilter.js';
import { TraceKind, type EngineOptions, type TableEngine } from '../engine/engine.js';
import { referenceTable } from '../engine/reference/index.js';
import { vmTable } from '../engine/vm-table.js';
import { M_MARK, M_NHOFF } from '../vm/layout.js';
import type { Packet } from '../vm/packet.js';
import { traceDescriber, type NodeHookOps, type NodeHookState } from './hook.js';
import { HOOK_CHAIN_NAMES, hookSlots } from './priorities.js';
import { logBody } from './path/log.js';
import type { NodeDup } from './dup.js';
import type { NodeXtIcmp } from './xt-icmp.js';

/** 'vm': the bytecode on the execution tier where packets walk long chains, else the interpreter (vm/interp.ts VmTier 'auto'); 'interp': the bytecode on the interpreter; 'reference': the x_tables evaluator. */
export type EngineKind = 'vm' | 'interp' | 'reference';

export interface TablesOptions extends EngineOptions {
  engine: EngineKind;
  backend: Backend;
  /** The VM's program: 1 with classifier prefilters, 0 straight lowering. */
  optimize: 0 | 1;
  /** The dump's file, for errors. */
  file: string;
  /** Called after each run with the packet: stores the ct mark its rules may have written (the node's conntrack). */
  afterRun?: (pkt: Packet) => void;
  /** The node's nf_dup_ipv4/ipv6 (TEE): the copies a run made are sent once it returns. */
  dup?: NodeDup;
  /** The ICMP errors targets ask for (NPT), sent once a run returns. */
  xtIcmp?: NodeXtIcmp;
}

/** The tables of one family's ruleset: their engines and the hook ops that run them. */
export interface Tables {
  readonly rs: Ruleset;
  readonly engines: Map<TableName, TableEngine>;
  readonly ops: NodeHookOps[];
}

/** Builds the engine of every table of `rs` and their hook ops (the iptable_* / ip6table_* modules). */
export function loadTables(rs: Ruleset, o: TablesOptions): Tables {
  const pf = rs.family === 'ip6' ? NFPROTO_IPV6 : NFPROTO_IPV4;
  const engines = new Map<TableName, TableEngine>();
  const ops: NodeHookOps[] = [];
  for (const [name, ast] of rs.tables) {
    const engine = o.engine === 'reference'
      ? referenceTable(rs, name, o)
      : vmTable(rs, name, { ...o, tier: o.engine === 'interp' ? 'interp' : 'auto' });
    engines.set(name, engine);
    for (const s of hookSlots(pf, o.backend, { tables: [name] })) {
      ops.push({
        pf, hooknum: s.hook, priority: s.priority, name: s.owner,
        source: { kind: 'table', family: rs.family, table: name, ast, engine },
        hook: tableHook(rs.family, ast, engine, s.hook, o.afterRun, o.dup, o.xtIcmp),
      });
    }
  }
  return { rs, engines, ops };
}

/** The hook function of a table at one hook: its builtin chain, the TRACE steps, mangle's re-route. */
function tableHook(
  family: Family, ast: Table, engine: TableEngine, hook: number, afterRun: ((pkt: Packet) => void) | undefined, dup: NodeDup | undefined,
  xtIcmp: NodeXtIcmp | undefined,
): (pkt: Packet, st: NodeHookState) => number {
  const table = ast.name;
  const chain = HOOK_CHAIN_NAMES[hook]!;
  const mangleOut = table === 'mangle' && hook === NF_INET_LOCAL_OUT;
  const keys = family === 'ip6' ? routeKeys6 : routeKeys;
  // each TRACE line's LOG body is the packet as its rule met it
  const describeAt = traceDescriber(logBody);
  return (pkt, st) => {
    const ctx = st.ctx;
    const before = mangleOut && ctx.reroute ? keys(pkt) : undefined;
    const v = engine.run(chain, pkt, ctx.quiet ? undefined : describeAt(st));
    if (afterRun !== undefined) afterRun(pkt);
    if (!ctx.quiet) {
      for (const e of engine.takeTrace()) {
        const type = e.kind === TraceKind.RULE ? 'rule' : e.kind === TraceKind.RETURN ? 'return' : 'policy';
        ctx.steps.push({
          kind: 'trace', table, chain: e.chain, type, num: e.rule, line: `TRACE: ${table}:${e.chain}:${type}:${e.rule} ${e.packet ?? logBody(pkt, st.in, st.out)}`,
          rule: ruleText(family, ast, e.chain, e.rule),
        });
      }
    }
    // TEE's copies leave now, before the next hook entry (hooks/dup.ts)
    if (dup !== undefined && dup.pending.length !== 0) dup.flush(ctx);
    // ... and the ICMP errors its targets asked for (hooks/xt-icmp.ts)
    if (xtIcmp !== undefined && xtIcmp.pending.length !== 0) xtIcmp.flush(pkt, st.inLink, ctx);
    if (before && (v & NF_VERDICT_MASK) !== NF_DROP && (v & NF_VERDICT_MASK) !== NF_STOLEN) {
      const after = keys(pkt);
      if (after.some((x, i) => x !== before[i])) {
        const r = ctx.reroute!(pkt, 'mangle OUTPUT');
        // ip_route_me_harder() failed: NF_DROP_ERR(errno).
        if (typeof r === 'number') return NF_DROP | ((-r) << NF_VERDICT_QBITS);
        st.outLink = r;
        st.out = r.name;
      }
    }
    return v;
  };
}

/** The rule of a chain by its 1-based number, undefined past the end. */
export function ruleAt(ast: Table, chain: string, num: number): Rule | undefined {
  return ast.chains.get(chain)?.rules[num - 1];
}

/**
 * What a TRACE step met, as iptables prints it: the rule as iptables-save
 * does (`-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT`), a builtin chain's
 * policy as the command that sets it (`-P INPUT DROP`), '' for the implicit
 * return at the end of a user chain.
 */
export function ruleText(family: Family, ast: Table, chain: string, num: number): string {
  const r = ruleAt(ast, chain, num);
  if (r) return saveRule(family, chain, r, false);
  const c = ast.chains.get(chain);
  return c?.builtin ? `-P ${chain} ${c.policy ?? 'ACCEPT'}` : '';
}

/** What ipt_mangle_out() compares: mark, saddr, daddr, tos. */
function routeKeys(pkt: Packet): number[] {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const w = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  return [pkt.meta[M_MARK]!, w(nh + 12), w(nh + 16), d[nh + 1]!];
}

/** What ip6t_mangle_out() compares: mark, saddr, daddr, hop limit, the first header word. */
function routeKeys6(pkt: Packet): number[] {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const w = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  const out = [pkt.meta[M_MARK]!, d[nh + 7]!, w(nh)];
  for (let i = 8; i < 40; i += 4) out.push(w(nh + i));
  return out;
}
