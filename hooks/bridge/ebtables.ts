/**
 * The ebtables tables as bridge hook modules, at the priorities of the
 * dump's backend (Linux 6.18, include/uapi/linux/netfilter_bridge.h):
 *
 *   legacy  net/bridge/netfilter/ebtable_broute.c  PRE_ROUTING, NF_BR_PRI_FIRST: ebt_broute():
 *                                                  only on a forwarding port; the table's DROP
 *                                                  means "route it" (br_netfilter_broute set,
 *                                                  NF_ACCEPT), a PACKET_HOST made so only by
 *                                                  the bridge's address goes back to OTHERHOST
 *           ebtable_nat.c     PRE_ROUTING -300 (NAT_DST_BRIDGED), LOCAL_OUT 100 (NAT_DST_OTHER),
 *                             POST_ROUTING 300 (NAT_SRC)
 *           ebtable_filter.c  LOCAL_IN and FORWARD -200 (FILTER_BRIDGED), LOCAL_OUT 200 (FILTER_OTHER)
 *   nft     the base chains ebtables-nft creates (iptables/nft.c, table xtables_bridge):
 *           filter INPUT/FORWARD/OUTPUT all -200; nat PREROUTING -300, OUTPUT 100,
 *           POSTROUTING 300; broute BROUTING at NF_BR_PRI_FIRST (a rule's DROP: meta set broute 1
 *           and accept; the chain's DROP policy drops)
 *
 * Each table's engine is the ebtables evaluator (engine/reference/ebtables.ts).
 */
import type { EbtRuleset, EbtTable, EbtTableName } from '../../core/ebt-ast.js';
import {
  NF_ACCEPT, NF_BR_FORWARD, NF_BR_LOCAL_IN, NF_BR_LOCAL_OUT, NF_BR_POST_ROUTING, NF_BR_PRE_ROUTING, NF_DROP, NF_VERDICT_MASK,
  NFPROTO_BRIDGE, type Backend,
} from '../../core/netfilter.js';
import { ebtReferenceTable } from '../../engine/reference/ebtables.js';
import { TraceKind, type TableEngine } from '../../engine/engine.js';
import { saveEbtRule } from '../../compiler/ebt/save.js';
import { F_BR_BROUTE, M_FLAGS, M_MACOFF, M_PKTTYPE, PACKET_HOST, PACKET_OTHERHOST } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { formatMac } from '../../core/addr.js';
import { traceDescriber, type NodeHookOps, type NodeHookState } from '../hook.js';
import type { Fate, VerdictSource } from '../path/fate.js';
import {
  NF_BR_PRI_FILTER_BRIDGED, NF_BR_PRI_FILTER_OTHER, NF_BR_PRI_FIRST, NF_BR_PRI_NAT_DST_BRIDGED, NF_BR_PRI_NAT_DST_OTHER, NF_BR_PRI_NAT_SRC,
} from '../priorities.js';
import type { BrHook } from './nf-bridge.js';
import { sameMac, type BridgeNode } from './bridge.js';

/** NF_BR_* hook → the ebtables builtin chain it runs. */
const BR_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** (table, hook, priority) of each backend. */
export function ebtablesSlots(table: EbtTableName, backend: Backend): { hook: number; priority: number; chain: string }[] {
  switch (table) {
    case 'broute':
      return [{ hook: NF_BR_PRE_ROUTING, priority: NF_BR_PRI_FIRST, chain: 'BROUTING' }];
    case 'nat':
      return [
        { hook: NF_BR_PRE_ROUTING, priority: NF_BR_PRI_NAT_DST_BRIDGED, chain: 'PREROUTING' },
        { hook: NF_BR_LOCAL_OUT, priority: NF_BR_PRI_NAT_DST_OTHER, chain: 'OUTPUT' },
        { hook: NF_BR_POST_ROUTING, priority: NF_BR_PRI_NAT_SRC, chain: 'POSTROUTING' },
      ];
    case 'filter':
      return [
        { hook: NF_BR_LOCAL_IN, priority: NF_BR_PRI_FILTER_BRIDGED, chain: 'INPUT' },
        { hook: NF_BR_FORWARD, priority: NF_BR_PRI_FILTER_BRIDGED, chain: 'FORWARD' },
        { hook: NF_BR_LOCAL_OUT, priority: backend === 'legacy' ? NF_BR_PRI_FILTER_OTHER : NF_BR_PRI_FILTER_BRIDGED, chain: 'OUTPUT' },
      ];
  }
}

export interface EbtablesTables {
  readonly rs: EbtRuleset;
  readonly engines: Map<EbtTableName, TableEngine>;
  readonly ops: NodeHookOps[];
}

/** The engines of an ebtables ruleset and the hook entries that run them. */
export function loadEbtables(rs: EbtRuleset, o: { backend: Backend; file: string; br: BridgeNode; nf: BrHook; macOf: (dev: string) => Uint8Array | undefined }): EbtablesTables {
  const engines = new Map<EbtTableName, TableEngine>();
  const ops: NodeHookOps[] = [];
  for (const [name, ast] of rs.tables) {
    const engine = ebtReferenceTable(rs, name, { backend: o.backend, file: o.file, macOf: o.macOf });
    engines.set(name, engine);
    for (const s of ebtablesSlots(name, o.backend)) {
      const owner = o.backend === 'legacy' ? `ebtable_${name}` : `nft bridge ${name}`;
      const explain = (v: number, st: NodeHookState) => dropFate(name, ast, v, st);
      ops.push({
        pf: NFPROTO_BRIDGE, hooknum: s.hook, priority: s.priority, name: owner, source: { kind: 'module', explain },
        hook: name === 'broute' ? brouteHook(engine, ast, o) : tableHook(name, ast, engine, s.chain),
      });
    }
  }
  return { rs, engines, ops };
}

/** A bridge TRACE line's body, as ebt_log words a frame: `IN=.. OUT=.. MAC source = .. MAC dest = .. proto = 0x....`. */
function ebtBody(pkt: Packet, inDev: string, outDev: string): string {
  const d = pkt.data;
  const mac = pkt.meta[M_MACOFF]!;
  return `IN=${inDev} OUT=${outDev} MAC source = ${formatMac(d.subarray(mac + 6, mac + 12))} MAC dest = ${formatMac(d.subarray(mac, mac + 6))} proto = 0x${((d[mac + 12]! << 8) | d[mac + 13]!).toString(16).padStart(4, '0')}`;
}

/** The trace steps of a table's run: `TRACE: bridge TABLE:CHAIN:rule:N IN=.. OUT=.. MAC ...`, with the rule as ebtables-save prints it. */
function traceSteps(name: EbtTableName, ast: EbtTable, engine: TableEngine, pkt: Packet, st: NodeHookState): void {
  const ctx = st.ctx;
  for (const e of engine.takeTrace()) {
    const type = e.kind === TraceKind.RULE ? 'rule' : e.kind === TraceKind.RETURN ? 'return' : 'policy';
    const chain = ast.chains.get(e.chain);
    const r = chain?.rules[e.rule - 1];
    ctx.steps.push({
      kind: 'trace', table: `bridge ${name}`, chain: e.chain, type, num: e.rule, line: `TRACE: bridge ${name}:${e.chain}:${type}:${e.rule} ${e.packet ?? ebtBody(pkt, st.in, st.out)}`,
      rule: r ? saveEbtRule(e.chain, r, false) : chain ? `-P ${e.chain} ${chain.policy}` : '',
    });
  }
}

function tableHook(name: EbtTableName, ast: EbtTable, engine: TableEngine, chain: string): (pkt: Packet, st: NodeHookState) => number {
  // each line's body is the frame as its rule left it (the engines word it after the rule: nft_trace_packet())
  const describeAt = traceDescriber(ebtBody);
  return (pkt, st) => {
    const v = engine.run(chain, pkt, st.ctx.quiet ? undefined : describeAt(st));
    if (!st.ctx.quiet) traceSteps(name, ast, engine, pkt, st);
    return v;
  };
}

/**
 * The broute table. Legacy ebt_broute(): only on a forwarding port; any
 * NF_DROP of the table means "route it" (br_netfilter_broute set,
 * NF_ACCEPT). ebtables-nft: the BROUTING base chain runs on every frame;
 * its rules' `meta broute set 1` (the engine's F_BR_BROUTE) routes, its
 * DROP policy drops (nf_tables' chain policy, as this kernel does).
 */
function brouteHook(engine: TableEngine, ast: EbtTable, o: { br: BridgeNode; nf: BrHook; backend: Backend }): (pkt: Packet, st: NodeHookState) => number {
  const describeAt = traceDescriber(ebtBody);
  return (pkt, st) => {
    const port = st.inLink ? o.br.portOf.get(st.inLink.name) : undefined;
    const legacy = o.backend === 'legacy';
    if (legacy && (!port || port.port.state !== 'forwarding')) return NF_ACCEPT;
    const v = engine.run('BROUTING', pkt, st.ctx.quiet ? undefined : describeAt(st));
    if (!st.ctx.quiet) traceSteps('broute', ast, engine, pkt, st);
    const m = pkt.meta;
    if (!legacy) {
      if ((m[M_FLAGS]! & F_BR_BROUTE) === 0) return v;
      // nft_meta_bridge_set_eval() sets the flag only: pkt_type stays as br_handle_frame left it
      m[M_FLAGS] &= ~F_BR_BROUTE;
      o.nf.broute = true;
      return NF_ACCEPT;
    }
    if ((v & NF_VERDICT_MASK) !== NF_DROP) return v;
    o.nf.broute = true;
    // ebt_broute() undoes the PACKET_HOST br_handle_frame gave a frame for the bridge's address but not the port's
    const at = m[M_MACOFF]!;
    if (port && m[M_PKTTYPE] === PACKET_HOST && !sameMac(pkt.data, at, port.port.mac) && sameMac(pkt.data, at, port.bridge.dev.mac)) m[M_PKTTYPE] = PACKET_OTHERHOST;
    return NF_ACCEPT;
  };
}

/** What an ebtables DROP means for the frame: the rule or policy its last trace step names. */
function dropFate(name: EbtTableName, ast: EbtTable, v: number, st: NodeHookState): Fate | undefined {
  if ((v & NF_VERDICT_MASK) !== NF_DROP) return undefined;
  const by: VerdictSource = { table: `bridge ${name}`, hook: BR_CHAINS[st.hook] ?? '', chain: '', rule: 0, policy: '', entry: `ebtable_${name}` };
  const steps = st.ctx.steps;
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i]!;
    if (s.kind !== 'trace' || s.table !== by.table) continue;
    by.chain = s.chain;
    if (s.type === 'policy') by.policy = ast.chains.get(s.chain)?.policy ?? 'DROP';
    else by.rule = s.num;
    break;
  }
  return { kind: 'dropped', reason: by.policy ? 'policy' : 'rule', detail: '', by };
}
