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

/**
 * A dropped fate and its source, filled again for each packet a table or
 * module drops: what verdictFate() gives a replay's reused context (the
 * fate is read before the next packet), so that a dropped frame makes no
 * objects.
 */
export class DropScratch {
  readonly by: VerdictSource = { table: '', hook: '', chain: '', rule: 0, policy: '', entry: '' };
  readonly fate: Fate & { kind: 'dropped' } = { kind: 'dropped', reason: 'rule', detail: '', by: this.by };
  /** The dropped fate, its source as it stands. */
  dropped(reason: 'rule' | 'policy' | 'hotdrop' | 'hook', detail: string): Fate {
    const f = this.fate;
    f.reason = reason;
    f.detail = detail;
    f.by = this.by;
    // the last packet's NAT rewrites (Node.finish)
    if (f.nat !== undefined) f.nat = undefined;
    return f;
  }
}

/**
 * The fate of a packet whose walk `ops` ended with `verdict`; the TRACE
 * steps of this hook start at `from`. With `scratch` (a replay's reused
 * context, outside any answer or nested hook), a dropped fate and its
 * source are the scratch's, valid until the next packet.
 */
export function verdictFate(ops: NodeHookOps, verdict: number, st: NodeHookState, from: number, scratch?: DropScratch): Fate {
  const src = ops.source;
  // a module that explains its verdict (IPVS's stolen packets, conntrack's drops) says it all: no source made for it
  if (src.kind !== 'defrag' && src.explain) {
    const f = src.explain(verdict, st);
    if (f) return f;
  }
  const reuse = scratch !== undefined && (verdict & NF_VERDICT_MASK) === NF_DROP && src.kind !== 'defrag';
  const by = verdictSource(ops, st, from, reuse ? scratch.by : undefined);
  switch (verdict & NF_VERDICT_MASK) {
    case NF_DROP: {
      if (src.kind === 'defrag') return { kind: 'dropped', reason: 'reassembly', detail: `${ops.name} dropped the fragment (a cut fragment header, or past 65535 bytes)`, by: undefined };
      if (src.kind !== 'table') return reuse ? scratch.dropped('hook', '') : { kind: 'dropped', reason: 'hook', detail: '', by };
      if (src.table === 'mangle' && st.hook === NF_INET_LOCAL_OUT && verdict >>> NF_VERDICT_QBITS !== 0) {
        // Only the re-route puts an errno in a verdict here (the engines' DROP carries none).
        return { kind: 'dropped', reason: 'reroute', detail: 're-route after mangle OUTPUT changed the packet found no route', by: reuse ? { ...by } : by };
      }
      const rej = src.engine.lastReject();
      if (rej) {
        // a rejected fate outlives the reply sent from within the hook: its own source
        const rby = reuse ? { ...by } : by;
        rby.chain = rej.chain;
        rby.rule = rej.rule;
        rby.policy = '';
        const t = ruleAt(src.ast, rej.chain, rej.rule)?.target;
        // The rule is the table's own: its target is REJECT (the default reply were it not).
        const data = t?.kind === 'ext' ? t.data : { with: src.family === 'ip6' ? 4 : 3 };
        const reply = rejectReply(src.family, data as Parameters<typeof rejectReply>[1]);
        return { kind: 'rejected', with: reply.name, tcpReset: reply.tcpReset, code: reply.code, by: rby };
      }
      // Which rule decided is known from the trace only; without it the table is.
      const reason = by.policy ? 'policy' : by.rule > 0 || st.ctx.quiet ? 'rule' : 'hotdrop';
      const detail = reason === 'hotdrop' ? 'a match could not read the header it needs (hotdrop)' : '';
      return reuse ? scratch.dropped(reason, detail) : { kind: 'dropped', reason, detail, by };
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

/** Where the verdict came from: the entry, and for a table the last rule or policy its TRACE steps show (into `into` when given). */
function verdictSource(ops: NodeHookOps, st: NodeHookState, from: number, into?: VerdictSource): VerdictSource {
  const src = ops.source;
  const table = src.kind === 'table' ? src.table : '';
  const hook = HOOK_CHAIN_NAMES[st.hook]!;
  let v: VerdictSource;
  if (into === undefined) v = { table, hook, chain: '', rule: 0, policy: '', entry: ops.name };
  else {
    v = into;
    v.table = table;
    v.hook = hook;
    v.chain = '';
    v.rule = 0;
    v.policy = '';
    v.entry = ops.name;
  }
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
