/**
 * The fate translator: what a hook entry's verdict means for the packet, in
 * the words of the path (path/fate.ts): which entry gave it (VerdictSource:
 * the table, chain and rule, from the TRACE steps or the engine's REJECT
 * record) and what became of the packet.
 *
 * As nf_hook_slow() (net/netfilter/core.c, Linux 6.18) treats verdicts:
 * NF_DROP drops (the errno in the verdict is ip_route_me_harder's when
 * mangle OUTPUT's re-route failed; a table's REJECT is a drop after its
 * reply); NF_QUEUE finds no listener (as in a fresh namespace) and drops
 * unless the verdict carries the bypass flag; NF_STOLEN is consumed
 * (nf_defrag's fragments wait for the others there).
 */
import {
  NF_DROP, NF_INET_LOCAL_OUT, NF_QUEUE, NF_STOLEN, NF_VERDICT_MASK, NF_VERDICT_QBITS, NF_VERDICT_FLAG_QUEUE_BYPASS,
} from '../core/netfilter.js';
import type { NodeHookOps, NodeHookState } from './hook.js';
import { HOOK_CHAIN_NAMES } from './priorities.js';
import type { Fate, VerdictSource } from './path/fate.js';
import { ruleAt } from './tables.js';
import { rejectReply } from '../ext/target/REJECT.js';

/** The fate of a packet whose walk `ops` ended with `verdict`; the TRACE steps of this hook start at `from`. */
export function verdictFate(ops: NodeHookOps, verdict: number, st: NodeHookState, from: number): Fate {
  const src = ops.source;
  // a module that explains its verdict (IPVS's stolen packets, conntrack's drops) says it all: no source made for it
  if (src.kind !== 'defrag' && src.explain) {
    const f = src.explain(verdict, st);
    if (f) return f;
  }
  const by = verdictSource(ops, st, from);
  switch (verdict & NF_VERDICT_MASK) {
    case NF_DROP: {
      if (src.kind === 'defrag') return { kind: 'dropped', reason: 'reassembly', detail: `${ops.name} dropped the fragment (a cut fragment header, or past 65535 bytes)`, by: undefined };
      if (src.kind !== 'table') return { kind: 'dropped', reason: 'hook', detail: '', by };
      if (src.table === 'mangle' && st.hook === NF_INET_LOCAL_OUT && verdict >>> NF_VERDICT_QBITS !== 0) {
        // Only the re-route puts an errno in a verdict here (the engines' DROP carries none).
        return { kind: 'dropped', reason: 'reroute', detail: 're-route after mangle OUTPUT changed the packet found no route', by };
      }
      const rej = src.engine.lastReject();
      if (rej) {
        by.chain = rej.chain;
        by.rule = rej.rule;
        by.policy = '';
        const t = ruleAt(src.ast, rej.chain, rej.rule)?.target;
        // The rule is the table's own: its target is REJECT (the default reply were it not).
        const data = t?.kind === 'ext' ? t.data : { with: src.family === 'ip6' ? 4 : 3 };
        const reply = rejectReply(src.family, data as Parameters<typeof rejectReply>[1]);
        return { kind: 'rejected', with: reply.name, tcpReset: reply.tcpReset, code: reply.code, by };
      }
      // Which rule decided is known from the trace only; without it the table is.
      const reason = by.policy ? 'policy' : by.rule > 0 || st.ctx.quiet ? 'rule' : 'hotdrop';
      return { kind: 'dropped', reason, detail: reason === 'hotdrop' ? 'a match could not read the header it needs (hotdrop)' : '', by };
    }
    case NF_QUEUE: {
      const q = verdict >>> NF_VERDICT_QBITS;
      if (verdict & NF_VERDICT_FLAG_QUEUE_BYPASS) return { kind: 'queued', queue: q, by };
      return { kind: 'dropped', reason: 'queue', detail: `queued to queue ${q}, where no program listens`, by };
    }
    case NF_STOLEN:
      if (src.kind === 'defrag') return { kind: 'dropped', reason: 'reassembly', detail: `a fragment, taken by ${ops.name}: held until its datagram is whole (or dropped: a duplicate, an overlap, a queue gone)`, by: undefined };
      return { kind: 'stolen', by };
    default:
      return { kind: 'stolen', by };
  }
}

/** Where the verdict came from: the entry, and for a table the last rule or policy its TRACE steps show. */
function verdictSource(ops: NodeHookOps, st: NodeHookState, from: number): VerdictSource {
  const src = ops.source;
  const v: VerdictSource = { table: src.kind === 'table' ? src.table : '', hook: HOOK_CHAIN_NAMES[st.hook]!, chain: '', rule: 0, policy: '', entry: ops.name };
  if (src.kind !== 'table') return v;
  const steps = st.ctx.steps;
  for (let i = steps.length - 1; i >= from; i--) {
    const s = steps[i]!;
    if (s.kind !== 'trace' || s.table !== src.table) continue;
    v.chain = s.chain;
    const chain = src.ast.chains.get(s.chain);
    if (s.type === 'policy' && chain && s.num === chain.rules.length + 1) v.policy = chain.policy ?? 'ACCEPT';
    else v.rule = s.num;
    break;
  }
  return v;
}
