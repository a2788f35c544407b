/**
 * The node as a pipeline of modules (hooks/hook.ts): a module registers
 * hook ops at a priority, as conntrack, NAT, the bridge or IPVS will; its
 * hook function sees the devices and the per-packet context (the conntrack
 * entry slot, the TRACE steps), runs in priority order among the tables,
 * and its verdicts become fates through the fate translator
 * (hooks/verdict.ts). Also: REJECT's fate with tracing off (replay), and
 * the mangle OUTPUT re-route of the shared local-out stage in both
 * families.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { registerOps, type NodeHookOps } from '../../hooks/hook.js';
import { NF_IP_PRI_CONNTRACK, NF_IP_PRI_FILTER } from '../../hooks/priorities.js';
import { fateText } from '../../hooks/path/fate.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import { M_NHOFF, M_PRIORITY } from '../../vm/layout.js';
import {
  NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING, NF_STOLEN,
} from '../../core/netfilter.js';

const fixture = (name: string) => {
  const dir = join(import.meta.dirname, '../path/fixtures', name);
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
};

function model(name: string, over: Record<string, string> = {}, engine: EngineKind = 'vm'): NodeModel {
  const files = fixture(name);
  for (const [k, v] of Object.entries(over)) files.set(k, v);
  return buildNodeModel(buildNode('', files), { engine });
}

function go(m: NodeModel, spec: string, trace: boolean) {
  m.setTrace(trace);
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  return iif === '' ? m.send(pkt, s.oif) : m.receive(pkt, iif);
}

describe('a module registered into the node', () => {
  it('runs at its priority among the tables, sees the devices, and what it writes on the packet reaches later hooks', () => {
    const m = model('node');
    const seen: string[] = [];
    const ops: NodeHookOps[] = [
      {
        pf: NFPROTO_IPV4, hooknum: NF_INET_PRE_ROUTING, priority: NF_IP_PRI_CONNTRACK, name: 'test_ct_in', source: { kind: 'module' },
        hook: (_pkt, st) => {
          seen.push(`in ${st.in} steps ${st.ctx.steps.filter((s) => s.kind === 'trace').length}`);
          _pkt.meta[M_PRIORITY] = 7;
          return NF_ACCEPT;
        },
      },
      {
        pf: NFPROTO_IPV4, hooknum: NF_INET_LOCAL_IN, priority: NF_IP_PRI_FILTER + 1, name: 'test_ct_confirm', source: { kind: 'module' },
        hook: (_pkt, st) => {
          seen.push(`confirm ${_pkt.meta[M_PRIORITY]}`);
          return NF_ACCEPT;
        },
      },
    ];
    registerOps(m.registry, ops);
    expect(m.registry.entries(NFPROTO_IPV4, NF_INET_PRE_ROUTING).map((e) => `${e.name}@${e.priority}`))
      .toEqual(['iptable_raw@-300', 'test_ct_in@-200', 'iptable_mangle@-150']);
    const r = go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0', true);
    expect(fateText(r.fate)).toBe('delivered locally to 10.0.0.1 on eth0');
    // raw PREROUTING ran before it (one TRACE step), the confirm hook after filter INPUT saw the entry
    expect(seen).toEqual(['in eth0 steps 1', 'confirm 7']);
  });

  it('its drop is a fate: its own explanation, else "by hook NAME"', () => {
    const m = model('node');
    registerOps(m.registry, [
      {
        pf: NFPROTO_IPV4, hooknum: NF_INET_PRE_ROUTING, priority: NF_IP_PRI_CONNTRACK, name: 'test_invalid',
        source: { kind: 'module', explain: (v) => (v === NF_DROP ? { kind: 'dropped', reason: 'hook', detail: 'invalid by test_invalid', by: undefined } : undefined) },
        hook: (pkt) => (pkt.data[pkt.meta[M_NHOFF]! + 9] === 17 ? NF_DROP : NF_ACCEPT),
      },
      { pf: NFPROTO_IPV4, hooknum: NF_INET_LOCAL_IN, priority: -500, name: 'test_steal', source: { kind: 'module' }, hook: () => NF_STOLEN },
    ]);
    expect(fateText(go(m, 'udp 10.0.0.2 > 10.0.0.1:53 iif eth0', false).fate)).toBe('dropped: invalid by test_invalid');
    expect(fateText(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0', false).fate)).toBe('stolen by hook test_steal in INPUT');
    const m6 = model('node6');
    registerOps(m6.registry, [{ pf: NFPROTO_IPV6, hooknum: NF_INET_LOCAL_IN, priority: -500, name: 'test_drop6', source: { kind: 'module' }, hook: () => NF_DROP }]);
    expect(go(m6, 'udp [2001:db8::2]:1 > [2001:db8::1]:53 iif eth0', false).fate).toMatchObject({ kind: 'dropped', reason: 'hook', by: { entry: 'test_drop6', hook: 'INPUT', table: '' } });
  });
});

describe.each(['vm', 'reference'] as const)('REJECT with tracing off (%s engine)', (engine) => {
  it('is a fate of its own, naming its rule and reply, as replay sees it', () => {
    const m = model('node', {}, engine);
    const r = go(m, 'tcp 10.0.0.2 > 10.0.0.1:23 iif eth0', false);
    expect(r.steps).toEqual([]);
    expect(r.fate).toEqual({
      kind: 'rejected', with: 'icmp-port-unreachable', tcpReset: false, code: 3,
      by: { table: 'filter', hook: 'INPUT', chain: 'INPUT', rule: 2, policy: '', entry: 'iptable_filter' },
    });
    // a plain DROP after it is still a drop
    expect(go(m, 'tcp 10.0.0.9 > 8.8.8.8:81 iif eth0', false).fate).toMatchObject({ kind: 'dropped', reason: 'rule' });
  });
});

describe('fates with tracing off', () => {
  it('say what the traced ones say (forwarded: the gateway and destination too)', () => {
    const m = model('node');
    for (const spec of ['tcp 10.0.0.2 > 8.8.8.8:80 iif eth0', 'udp 10.0.0.2 > 10.0.0.255:53 iif eth0', 'tcp 10.0.0.1 > 10.1.0.7:80 from local']) {
      expect(fateText(go(m, spec, false).fate)).toBe(fateText(go(m, spec, true).fate));
    }
    expect(fateText(go(m, 'tcp 10.0.0.2 > 8.8.8.8:80 iif eth0', false).fate)).toBe('forwarded out eth1 via 10.1.0.2');
    const m6 = model('node6');
    expect(fateText(go(m6, 'udp 2001:db8::2 > 2400:cb00::1 iif eth0', false).fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
  });
});

describe('the shared local-out stage', () => {
  it('re-routes after mangle OUTPUT changed the packet, in IPv6 as in IPv4 (ip6t_mangle_out)', () => {
    const files = fixture('node6');
    const rules = JSON.parse(files.get('ip6-rule.json')!) as object[];
    rules.push({ priority: 100, src: 'all', fwmark: '0x7', table: '100' });
    const routes = JSON.parse(files.get('ip6-route.json')!) as object[];
    routes.push({ dst: 'default', gateway: '2001:db8::9', dev: 'eth0', table: '100', flags: [] });
    const mangle = '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
      '-A OUTPUT -d 2400:cb00::1/128 -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n';
    const m = model('node6', { 'ip6-rule.json': JSON.stringify(rules), 'ip6-route.json': JSON.stringify(routes), 'ip6tables-save.txt': mangle });
    const r = go(m, 'tcp [2001:db8:1::1]:40000 > [2400:cb00::1]:80 from local', true);
    expect(fateText(r.fate)).toBe('sent out eth0 via 2001:db8::9');
    expect(r.steps.filter((s) => s.kind === 'route').map((s) => s.kind === 'route' && s.text.split(':')[0])).toEqual(['output route', 're-route after mangle OUTPUT']);
  });
});
