/**
 * The engines agree on the stateful node: for generated stateful
 * rulesets (test/helpers/stateful-gen.ts: NOTRACK and zones, MARK and
 * CONNMARK, DNAT/NETMAP/REDIRECT/SNAT/MASQUERADE, every conntrack option)
 * and generated multi-packet conversations (repeated 5-tuples, replies,
 * TCP state changes, ICMP errors quoting NATed packets, source port
 * clashes under SNAT), the node with the VM (on its execution tier, vm/jit,
 * and on its interpreter, --engine interp) and the node with the x_tables
 * evaluator give every frame the same fate and the same bytes on the way
 * out, and end with the same counters and the same conntrack table
 * (tuples, NAT bindings, states, marks, timeouts). Each engine runs with
 * tracing off (the path replay takes) and on (trace's), which must agree
 * too. Run counts come from FC_NUM_RUNS (test/setup.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { statefulRules } from '../helpers/stateful-gen.js';
import { statefulModel } from '../helpers/flows.js';
import { converse, flow, replay } from '../helpers/conversation-gen.js';

describe('VM and x_tables evaluator agree on the stateful node', () => {
  it('on fates, bytes out, counters and the conntrack table over generated conversations, tracing off and on', () => {
    fc.assert(
      fc.property(statefulRules, fc.array(flow, { minLength: 1, maxLength: 14 }), (g, flows) => {
        const frames = converse(statefulModel(g.text), flows);
        const runs = (['vm', 'interp', 'reference'] as const).flatMap((engine) => [false, true].map((trace) => {
          const m = statefulModel(g.text, engine);
          m.setTrace(trace);
          return { name: `${engine}${trace ? ' traced' : ''}`, out: replay(m, frames) };
        }));
        for (const r of runs.slice(1)) expect([r.name, r.out]).toEqual([r.name, runs[0]!.out]);
      }),
    );
  });
});
