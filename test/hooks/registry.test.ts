/**
 * The hook registry against net/netfilter/core.c (6.18): priority order, the
 * tie rule (newest first among equals), unregistration, nf_hook_slow verdicts,
 * and a model-based test of register/unregister sequences.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  hookEntriesGrow, MAX_HOOK_COUNT, NfHookRegistry, nfHookSlow, type NfHookOps, type NfHookState,
} from '../../hooks/registry.js';
import {
  NF_VERDICT_FLAG_QUEUE_BYPASS, NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
  NF_INET_PRE_ROUTING, NF_QUEUE, NF_STOLEN,
} from '../../core/netfilter.js';
import { hookSlots, NF_IP_PRI_CONNTRACK, NF_IP_PRI_CONNTRACK_CONFIRM, NF_IP_PRI_FILTER, NF_IP_PRI_MANGLE, NF_IP_PRI_NAT_DST, NF_IP_PRI_RAW } from '../../hooks/priorities.js';

type Ops = NfHookOps<string[], NfHookState>;
const ops = (name: string, priority: number, verdict = NF_ACCEPT): Ops => ({ name, priority, hook: (trail) => (trail.push(name), verdict) });
const state = (): NfHookState => ({ hook: 0, pf: NFPROTO_IPV4, in: '', out: '', index: -1, verdict: 0 });
const names = (a: readonly Ops[]) => a.map((o) => o.name);

describe('hook registry', () => {
  it('orders by priority and runs the newest first among equal priorities (6.18)', () => {
    const r = new NfHookRegistry<string[]>();
    r.register(NFPROTO_IPV4, NF_INET_PRE_ROUTING, ops('filter', 0));
    r.register(NFPROTO_IPV4, NF_INET_PRE_ROUTING, ops('raw', -300));
    r.register(NFPROTO_IPV4, NF_INET_PRE_ROUTING, ops('a0', 0));
    r.register(NFPROTO_IPV4, NF_INET_PRE_ROUTING, ops('b0', 0));
    r.register(NFPROTO_IPV4, NF_INET_PRE_ROUTING, ops('last', 2147483647));
    expect(names(r.entries(NFPROTO_IPV4, NF_INET_PRE_ROUTING))).toEqual(['raw', 'b0', 'a0', 'filter', 'last']);
    expect(Object.isFrozen(r.entries(NFPROTO_IPV4, NF_INET_PRE_ROUTING))).toBe(true);
    expect(r.entries(NFPROTO_IPV6, NF_INET_PRE_ROUTING)).toEqual([]);
  });

  it('copy on write: an array already handed out does not change', () => {
    const r = new NfHookRegistry<string[]>();
    const a = ops('a', 0);
    r.register(NFPROTO_IPV4, NF_INET_LOCAL_IN, a);
    const before = r.entries(NFPROTO_IPV4, NF_INET_LOCAL_IN);
    r.register(NFPROTO_IPV4, NF_INET_LOCAL_IN, ops('b', 1));
    expect(r.unregister(NFPROTO_IPV4, NF_INET_LOCAL_IN, a)).toBe(true);
    expect(names(before)).toEqual(['a']);
    expect(names(r.entries(NFPROTO_IPV4, NF_INET_LOCAL_IN))).toEqual(['b']);
    expect(r.unregister(NFPROTO_IPV4, NF_INET_LOCAL_IN, a)).toBe(false);
  });

  it('refuses more than MAX_HOOK_COUNT entries (E2BIG)', () => {
    let a: readonly Ops[] = [];
    for (let i = 0; i < MAX_HOOK_COUNT; i++) a = hookEntriesGrow(a, ops(`h${i}`, i));
    expect(() => hookEntriesGrow(a, ops('x', 0))).toThrow(/more than 1024/);
  });

  it('nf_hook_slow: accept continues, drop/stolen/queue stop with the kernel return values', () => {
    const run = (...v: number[]) => {
      const trail: string[] = [];
      const st = state();
      const ret = nfHookSlow(v.map((x, i) => ops(`h${i}`, i, x)), trail, st);
      return { ret, trail, index: st.index, verdict: st.verdict };
    };
    expect(run(NF_ACCEPT, NF_ACCEPT)).toEqual({ ret: 1, trail: ['h0', 'h1'], index: -1, verdict: NF_ACCEPT });
    expect(run(NF_ACCEPT, NF_DROP, NF_ACCEPT)).toMatchObject({ ret: -1, trail: ['h0', 'h1'], index: 1 });
    // NF_DROP_ERR(-EHOSTUNREACH) carries the errno in the high 16 bits.
    expect(run(((113 << 16) | NF_DROP) >>> 0).ret).toBe(-113);
    expect(run(NF_STOLEN, NF_ACCEPT)).toMatchObject({ ret: 0, trail: ['h0'], index: 0 });
    // NFQUEUE without a listener: dropped (0) unless --queue-bypass.
    expect(run(NF_QUEUE, NF_ACCEPT)).toMatchObject({ ret: 0, trail: ['h0'] });
    expect(run(NF_QUEUE | NF_VERDICT_FLAG_QUEUE_BYPASS, NF_ACCEPT)).toMatchObject({ ret: 1, trail: ['h0', 'h1'] });
  });

  it('the legacy and nft tables register at the kernel priorities', () => {
    const r = new NfHookRegistry<string[]>();
    for (const s of hookSlots(NFPROTO_IPV4, 'legacy', { conntrack: true })) r.register(s.family, s.hook, { name: s.table ?? s.component, priority: s.priority, hook: () => NF_ACCEPT });
    expect(r.entries(NFPROTO_IPV4, NF_INET_PRE_ROUTING).map((e) => [e.name, e.priority])).toEqual([
      ['defrag', -400], ['raw', NF_IP_PRI_RAW], ['conntrack-in', NF_IP_PRI_CONNTRACK], ['mangle', NF_IP_PRI_MANGLE], ['nat', NF_IP_PRI_NAT_DST],
    ]);
    expect(names(r.entries(NFPROTO_IPV4, NF_INET_LOCAL_IN))).toEqual(['mangle', 'filter', 'security', 'nat', 'conntrack-confirm']);
    expect(r.entries(NFPROTO_IPV4, NF_INET_LOCAL_IN).at(-1)!.priority).toBe(NF_IP_PRI_CONNTRACK_CONFIRM);
    const nft = hookSlots(NFPROTO_IPV6, 'nft');
    expect(nft.find((s) => s.table === 'security' && s.hook === NF_INET_LOCAL_IN)!.priority).toBe(150);
    expect(nft.find((s) => s.table === 'mangle' && s.hook === NF_INET_LOCAL_OUT)!.chainType).toBe('route');
    expect(nft.find((s) => s.table === 'filter' && s.hook === NF_INET_LOCAL_IN)!.priority).toBe(NF_IP_PRI_FILTER);
  });
});

// Model: a list sorted by priority where an insert goes before all equals.
class Model {
  list: { id: number; priority: number }[] = [];
}
type Real = { reg: NfHookRegistry<string[]>; ops: Map<number, Ops> };

class Register implements fc.Command<Model, Real> {
  constructor(readonly id: number, readonly priority: number) {}
  check = () => true;
  run(m: Model, r: Real) {
    const o = ops(String(this.id), this.priority);
    r.ops.set(this.id, o);
    r.reg.register(NFPROTO_IPV4, NF_INET_LOCAL_OUT, o);
    const at = m.list.findIndex((e) => e.priority >= this.priority);
    m.list.splice(at < 0 ? m.list.length : at, 0, { id: this.id, priority: this.priority });
    expect(names(r.reg.entries(NFPROTO_IPV4, NF_INET_LOCAL_OUT))).toEqual(m.list.map((e) => String(e.id)));
  }
  toString = () => `register(${this.id}@${this.priority})`;
}
class Unregister implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.list.length > 0;
  run(m: Model, r: Real) {
    const victim = m.list[this.pick % m.list.length]!;
    expect(r.reg.unregister(NFPROTO_IPV4, NF_INET_LOCAL_OUT, r.ops.get(victim.id)!)).toBe(true);
    m.list = m.list.filter((e) => e !== victim);
    expect(names(r.reg.entries(NFPROTO_IPV4, NF_INET_LOCAL_OUT))).toEqual(m.list.map((e) => String(e.id)));
  }
  toString = () => `unregister(#${this.pick})`;
}

describe('hook registry, model-based', () => {
  it('register/unregister sequences agree with a sorted list (ties: newest first)', () => {
    let next = 0;
    const cmds = [
      fc.constantFrom(-300, -150, -100, 0, 0, 50, 100).map((p) => new Register(next++, p)),
      fc.nat(64).map((k) => new Unregister(k)),
    ];
    fc.assert(fc.property(fc.commands(cmds, { maxCommands: 40 }), (c) => {
      fc.modelRun(() => ({ model: new Model(), real: { reg: new NfHookRegistry<string[]>(), ops: new Map() } }), c);
    }));
  });
});
