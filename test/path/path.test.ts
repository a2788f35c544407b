/**
 * The IPv4 packet path (hooks/path/ipv4.ts) over the assembled node
 * (hooks/node.ts): where each kernel check sits and what the hooks and
 * counters see. The node is test/path/fixtures/node (captured from a 6.18
 * namespace: eth0 02:00:00:00:00:02 10.0.0.1/24 + 192.168.50.1/32, eth1
 * 10.1.0.1/24, default via 10.1.0.2, forwarding on, rp_filter 0), with
 * file overrides per test.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import { saveRuleset } from '../../compiler/save.js';
import { NFPROTO_IPV4, NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';

const FIX = join(import.meta.dirname, 'fixtures/node');
const base = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));

function model(over: Record<string, string> = {}, engine: EngineKind = 'vm'): NodeModel {
  const files = new Map(base);
  for (const [k, v] of Object.entries(over)) files.set(k, v);
  return buildNodeModel(buildNode('', files), { engine });
}

function go(m: NodeModel, spec: string, trace = true): PathResult {
  m.setTrace(trace);
  const { pkt, iif, ct } = specInput(m, parseSpec(spec));
  return iif === '' ? m.send(pkt, parseSpec(spec).oif, { ct }) : m.receive(pkt, iif, { ct });
}

const traces = (r: PathResult) => r.steps.flatMap((s) => (s.kind === 'trace' ? [`${s.table}:${s.chain}:${s.type}:${s.num}`] : []));
const sysctl = (extra: string) => base.get('sysctl.txt')! + extra;

describe.each(['vm', 'reference'] as const)('packet path (%s engine)', (engine) => {
  it('local delivery: PREROUTING, the input route, INPUT, with the rules met', () => {
    const r = go(model({}, engine), 'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0');
    expect(fateText(r.fate)).toBe('delivered locally to 10.0.0.1 on eth0');
    expect(traces(r)).toEqual(['raw:PREROUTING:policy:2', 'mangle:PREROUTING:policy:2', 'mangle:INPUT:policy:1', 'filter:INPUT:rule:1', 'filter:SSH:rule:1']);
  });

  it('the TRACE line is nf_log_syslog\'s', () => {
    const r = go(model({}, engine), 'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn iif eth0');
    const first = r.steps.find((s) => s.kind === 'trace');
    expect(first && first.kind === 'trace' && first.line).toBe(
      'TRACE: raw:PREROUTING:policy:2 IN=eth0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00 SRC=10.0.0.2 DST=10.0.0.1 LEN=40 ' +
      'TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=40000 DPT=22 SEQ=1 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 ');
  });

  it('forwarding: TTL decremented before FORWARD, POSTROUTING with both devices, out via the gateway', () => {
    const r = go(model({}, engine), 'tcp 10.0.0.2 > 8.8.8.8:80 iif eth0');
    expect(fateText(r.fate)).toBe('forwarded out eth1 via 10.1.0.2');
    // mangle FORWARD rule 1 is `-m ttl --ttl-eq 63`: the packet came in with 64.
    expect(traces(r)).toContain('mangle:FORWARD:rule:1');
    const post = r.steps.find((s) => s.kind === 'trace' && s.chain === 'POSTROUTING');
    expect(post && post.kind === 'trace' && post.line).toMatch(/IN=eth0 OUT=eth1 .* TTL=63 .* MARK=0x2 $/);
  });

  it('dropped by a rule, named with its table, chain and number', () => {
    const r = go(model({}, engine), 'tcp 10.0.0.2 > 8.8.8.8:81 iif eth0');
    expect(fateText(r.fate)).toBe('dropped by filter:FORWARD rule 2');
    const p = go(model({}, engine), 'udp 10.0.0.2 > 8.8.8.8:81 iif eth0');
    expect(fateText(p.fate)).toBe('dropped by filter:FORWARD policy DROP');
  });

  it('TTL 1 passes PREROUTING and never reaches FORWARD', () => {
    const m = model({}, engine);
    const r = go(m, 'tcp 10.0.0.2 > 8.8.8.8:80 ttl 1 iif eth0', false);
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ttl' });
    const c = m.counters('mangle')!;
    expect(c.get('PREROUTING')!.policy!.packets).toBe(1);
    expect(c.get('FORWARD')!.policy!.packets).toBe(0);
  });

  it('a frame for another MAC is dropped before PREROUTING; broadcast and multicast MACs are not', () => {
    const m = model({}, engine);
    expect(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 dst-mac 02:00:00:00:00:99').fate).toMatchObject({ kind: 'dropped', reason: 'other-host' });
    expect(m.counters('raw')!.get('PREROUTING')!.policy!.packets).toBe(0);
    expect(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 dst-mac ff:ff:ff:ff:ff:ff').fate.kind).toBe('delivered');
    // ... but a link-layer broadcast is not forwarded (ip_forward: PACKET_HOST only)
    expect(go(m, 'tcp 10.0.0.2 > 8.8.8.8:80 iif eth0 dst-mac ff:ff:ff:ff:ff:ff').fate).toMatchObject({ kind: 'dropped', reason: 'not-host' });
  });

  it('martians: own source, loopback destination, limited-broadcast and multicast sources', () => {
    const m = model({}, engine);
    expect(go(m, 'udp 192.168.50.1 > 10.0.0.1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    expect(go(m, 'udp 10.0.0.2 > 127.0.0.1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-destination' });
    expect(go(m, 'udp 127.0.0.5 > 10.0.0.1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    expect(go(m, 'udp 255.255.255.255 > 10.0.0.1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    expect(go(m, 'udp 224.1.1.1 > 10.0.0.1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    expect(go(m, 'udp 10.0.0.2 > 0.0.0.0 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-destination' });
    // martians are dropped after PREROUTING
    expect(m.counters('raw')!.get('PREROUTING')!.policy!.packets).toBe(6);
  });

  it('a routing drop untraced (a replay: one context reused, the detail formatted when read) is the traced one', () => {
    const specs = [
      'udp 192.168.50.1 > 10.0.0.1 iif eth0', 'udp 10.0.0.2 > 127.0.0.1 iif eth0', 'udp 127.0.0.5 > 10.0.0.1 iif eth0',
      'udp 255.255.255.255 > 10.0.0.1 iif eth0', 'udp 224.1.1.1 > 10.0.0.1 iif eth0', 'udp 10.0.0.2 > 0.0.0.0 iif eth0',
      'udp 10.0.0.2 > 239.1.2.3 iif eth0',
    ];
    const traced = model({}, engine);
    const want = specs.map((spec) => go(traced, spec).fate);
    for (const reuse of [false, true]) {
      const m = model({}, engine);
      m.reuseResults = reuse;
      specs.forEach((spec, i) => {
        const fate = go(m, spec, false).fate;
        expect(fate.kind === 'dropped' && fate.detail, spec).toBe((want[i] as { detail: string }).detail);
        expect(JSON.stringify(fate), spec).toBe(JSON.stringify(want[i]));
        expect(fateText(fate), spec).toBe(fateText(want[i]!));
        expect(fate).toEqual(want[i]);
      });
    }
  });

  it('route_localnet lets 127/8 in from outside', () => {
    const m = model({ 'sysctl.txt': sysctl('net.ipv4.conf.eth0.route_localnet = 1\n') }, engine);
    expect(fateText(go(m, 'udp 10.0.0.2 > 127.0.0.1 iif eth0').fate)).toBe('delivered locally to 127.0.0.1 on eth0');
  });

  it('broadcast and all-hosts multicast are delivered; other groups are not', () => {
    const m = model({}, engine);
    expect(fateText(go(m, 'udp 10.0.0.2 > 10.0.0.255 iif eth0').fate)).toBe('delivered locally to 10.0.0.255 (broadcast) on eth0');
    expect(fateText(go(m, 'udp 10.0.0.2 > 255.255.255.255 iif eth0').fate)).toBe('delivered locally to 255.255.255.255 (broadcast) on eth0');
    // a subnet broadcast of another device is a broadcast route too
    expect(go(m, 'udp 10.0.0.2 > 10.1.0.255 iif eth0').fate).toMatchObject({ kind: 'delivered', cast: 'broadcast' });
    expect(fateText(go(m, 'icmp 10.0.0.2 > 224.0.0.1 iif eth0').fate)).toBe('delivered locally to 224.0.0.1 (multicast) on eth0');
    expect(go(m, 'udp 10.0.0.2 > 224.0.0.251 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'multicast' });
  });

  it('forwarding off on the input device', () => {
    const m = model({ 'sysctl.txt': sysctl('net.ipv4.conf.eth0.forwarding = 0\n') }, engine);
    expect(go(m, 'tcp 10.0.0.2 > 8.8.8.8:80 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'ip-forward-off' });
    expect(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0').fate.kind).toBe('delivered');
  });

  it('rp_filter: strict refuses a source routed out of another device, loose accepts it', () => {
    const strict = model({ 'sysctl.txt': sysctl('net.ipv4.conf.all.rp_filter = 1\n') }, engine);
    expect(go(strict, 'tcp 10.1.0.5 > 10.0.0.1:80 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'rp-filter' });
    expect(go(strict, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0').fate.kind).toBe('delivered');
    const loose = model({ 'sysctl.txt': sysctl('net.ipv4.conf.all.rp_filter = 2\n') }, engine);
    expect(go(loose, 'tcp 10.1.0.5 > 10.0.0.1:80 iif eth0').fate.kind).toBe('delivered');
  });

  it('no route: an unreachable route answers before INPUT/FORWARD', () => {
    const routes = JSON.parse(base.get('ip-route.json')!) as object[];
    routes.push({ type: 'unreachable', dst: '203.0.113.0/24', flags: [] });
    const m = model({ 'ip-route.json': JSON.stringify(routes) }, engine);
    expect(go(m, 'tcp 10.0.0.2 > 203.0.113.9:80 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'no-route' });
  });

  it('a fragment for the host waits for reassembly before INPUT; a forwarded one goes on', () => {
    const m = model({}, engine);
    expect(go(m, 'udp 10.0.0.2 > 10.0.0.1 frag offset 8 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'reassembly' });
    expect(m.counters('mangle')!.get('INPUT')!.policy!.packets).toBe(0);
    expect(m.counters('mangle')!.get('PREROUTING')!.policy!.packets).toBe(1);
    expect(go(m, 'tcp 10.0.0.2 > 8.8.8.8 frag offset 8 iif eth0').fate.kind).toBe('dropped'); // FORWARD policy DROP
    expect(m.counters('mangle')!.get('FORWARD')!.policy!.packets).toBe(1);
  });

  it('from local: OUTPUT, the re-route after mangle OUTPUT changed the mark, POSTROUTING', () => {
    const rules = JSON.parse(base.get('ip-rule.json')!) as object[];
    rules.push({ priority: 100, src: 'all', fwmark: '0x7', table: '100' });
    const routes = JSON.parse(base.get('ip-route.json')!) as object[];
    routes.push({ dst: 'default', gateway: '10.0.0.2', dev: 'eth0', table: '100', flags: [] });
    const m = model({ 'ip-rule.json': JSON.stringify(rules), 'ip-route.json': JSON.stringify(routes) }, engine);
    // mangle OUTPUT marks 10.9.9.9 with 0x7; rule 100 sends marked traffic out of eth0
    const r = go(m, 'tcp 10.1.0.1 > 10.9.9.9:80 from local');
    expect(fateText(r.fate)).toBe('sent out eth0 via 10.0.0.2');
    const out = r.steps.filter((s) => s.kind === 'trace' && (s.chain === 'OUTPUT' || s.chain === 'POSTROUTING')).map((s) => s.kind === 'trace' && s.line.split(' SRC')[0]);
    expect(out).toEqual([
      'TRACE: raw:OUTPUT:policy:1 IN= OUT=eth1', 'TRACE: mangle:OUTPUT:rule:1 IN= OUT=eth1', 'TRACE: mangle:OUTPUT:policy:2 IN= OUT=eth1',
      'TRACE: filter:OUTPUT:policy:1 IN= OUT=eth0', 'TRACE: mangle:POSTROUTING:policy:1 IN= OUT=eth0',
    ]);
  });

  it('from local to a local address: out of lo and back in through PREROUTING and INPUT on lo', () => {
    const r = go(model({}, engine), 'tcp 10.0.0.1 > 10.0.0.1:22 from local');
    expect(fateText(r.fate)).toBe('delivered locally to 10.0.0.1 on lo');
    expect(traces(r)).toEqual([
      'raw:OUTPUT:policy:1', 'mangle:OUTPUT:policy:2', 'filter:OUTPUT:policy:1', 'mangle:POSTROUTING:policy:1',
      'raw:PREROUTING:policy:2', 'mangle:PREROUTING:policy:2', 'mangle:INPUT:policy:1', 'filter:INPUT:rule:1', 'filter:SSH:rule:1',
    ]);
    const pre = r.steps.find((s) => s.kind === 'trace' && s.chain === 'PREROUTING');
    expect(pre && pre.kind === 'trace' && pre.line).toContain('IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 ');
  });

  it('replayed counters print as iptables-save -c', () => {
    const m = model({}, engine);
    go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0', false);
    go(m, 'tcp 10.0.0.9 > 10.0.0.1:22 iif eth0', false);
    go(m, 'tcp 10.0.0.2 > 10.0.0.1:23 iif eth0', false);
    const text = saveRuleset(m.rulesetWithCounters()!, { counters: true, comments: false });
    expect(text).toContain('[3:120] -A INPUT -p tcp -m tcp --dport 22 -j SSH\n'.replace('[3:120]', '[2:80]'));
    expect(text).toContain('[1:40] -A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable\n');
    expect(text).toContain('[2:80] -A SSH -s 10.0.0.0/24 -j ACCEPT\n');
    expect(text).toContain(':PREROUTING ACCEPT [3:120]\n');
  });
});

describe('hook registration', () => {
  it('the tables of the dump at their backend\'s priorities, in priority order', () => {
    const legacy = model();
    const names = (m: NodeModel, hook: number) => m.registry.entries(NFPROTO_IPV4, hook).map((e) => `${e.name}@${e.priority}`);
    expect(names(legacy, NF_INET_PRE_ROUTING)).toEqual(['iptable_raw@-300', 'iptable_mangle@-150']);
    const sec = base.get('iptables-save.txt')! + '*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
    const nftText = sec.replace('# Generated by iptables-save v1.8.9', '# Generated by iptables-nft-save v1.8.9 (nf_tables)');
    expect(names(model({ 'iptables-save.txt': sec }), NF_INET_LOCAL_IN)).toEqual(['iptable_mangle@-150', 'iptable_filter@0', 'iptable_security@50']);
    const nft = model({ 'iptables-save.txt': nftText });
    expect(nft.backend).toBe('nft');
    expect(names(nft, NF_INET_LOCAL_IN)).toEqual(['nft ip mangle@-150', 'nft ip filter@0', 'nft ip security@150']);
  });

  it('a nat table alone brings no conntrack: its chains see no packet (kernel: 0 conntrack entries, policy counter 0)', () => {
    const nat = base.get('iptables-save.txt')! + '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -j RETURN\nCOMMIT\n';
    const m = model({ 'iptables-save.txt': nat });
    expect(m.conntrack).toBe(false);
    expect(traces(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0')).filter((t) => t.startsWith('nat:'))).toEqual([]);
  });

  it('a NAT target brings conntrack and defrag; the nat chains run for NEW packets only', () => {
    const nat = base.get('iptables-save.txt')! + '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n';
    const m = model({ 'iptables-save.txt': nat });
    expect(m.conntrack).toBe(true);
    expect(m.registry.entries(NFPROTO_IPV4, NF_INET_PRE_ROUTING).map((e) => e.priority)).toEqual([-400, -300, -200, -150, -100]);
    expect(traces(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ct new'))).toContain('nat:PREROUTING:policy:1');
    expect(traces(go(m, 'tcp 10.0.0.2 > 10.0.0.1:22 iif eth0 ct established'))).not.toContain('nat:PREROUTING:policy:1');
    // nf_defrag_ipv4 takes fragments before raw PREROUTING
    expect(go(m, 'udp 10.0.0.2 > 10.0.0.1 mf iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'reassembly' });
  });
});
