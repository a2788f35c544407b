/**
 * The IPv6 packet path (hooks/path/ipv6.ts) over the assembled node. The
 * node is test/path/fixtures/node6, captured from a 6.18 namespace (the one
 * test/kernel/replay6-kernel.test.ts builds): eth0 02:00:00:00:00:02 with
 * 2001:db8::1/64, 2001:db8:50::1/128 and fe80::ff:fe00:2, eth1
 * 02:00:00:00:01:01 with 2001:db8:1::1/64 and fe80::ff:fe00:101, IPv6
 * forwarding on, default via 2001:db8:1::2, the kernel's anycast and
 * multicast routes (ip6-route.json). Its ip6tables-save.txt is written for
 * these tests; files are overridden per test.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { fateText, type PathResult } from '../../hooks/path/fate.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { specInput } from '../../cli/model.js';
import { cmdTrace } from '../../cli/trace.js';
import { cmdReplay } from '../../cli/replay.js';
import { outputText } from '../../cli/io.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { NFPROTO_IPV6, NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { joinedGroups } from '../../hooks/path/ipv6-route.js';
import { Packet, decodePacket } from '../../vm/packet.js';

const FIX = join(import.meta.dirname, 'fixtures/node6');
const base = new Map(readdirSync(FIX).map((f) => [f, readFileSync(join(FIX, f), 'utf8')]));

function model(over: Record<string, string> = {}, engine: EngineKind = 'vm'): NodeModel {
  const files = new Map(base);
  for (const [k, v] of Object.entries(over)) files.set(k, v);
  return buildNodeModel(buildNode('', files), { engine });
}

function go(m: NodeModel, spec: string, trace = true): PathResult {
  m.setTrace(trace);
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  return iif === '' ? m.send(pkt, s.oif) : m.receive(pkt, iif);
}

const traces = (r: PathResult) => r.steps.flatMap((s) => (s.kind === 'trace' ? [`${s.table}:${s.chain}:${s.type}:${s.num}`] : []));
const lines = (r: PathResult) => r.steps.flatMap((s) => (s.kind === 'trace' ? [s.line] : []));
const sysctl = (extra: string) => base.get('sysctl.txt')! + extra;
const FILTER_ACCEPT = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe.each(['vm', 'reference'] as const)('IPv6 packet path (%s engine)', (engine) => {
  it('local delivery: PREROUTING, the input route, INPUT, with the rules met', () => {
    const r = go(model({}, engine), 'tcp [2001:db8::2]:40000 > [2001:db8::1]:22 syn iif eth0');
    expect(fateText(r.fate)).toBe('delivered locally to 2001:db8::1 on eth0');
    expect(traces(r)).toEqual(['raw:PREROUTING:policy:1', 'mangle:PREROUTING:policy:1', 'mangle:INPUT:policy:1', 'filter:INPUT:rule:3', 'filter:SSH:rule:1']);
    const bad = go(model({}, engine), 'tcp [2001:db8:ff::9]:40000 > [2001:db8::1]:22 syn iif eth0');
    expect(fateText(bad.fate)).toBe('dropped by filter:INPUT policy DROP');
  });

  it('the TRACE line is nf_log_syslog\'s dump_ipv6_packet (%pI6: addresses written out in full)', () => {
    const r = go(model({}, engine), 'tcp [2001:db8::2]:40000 > [2001:db8::1]:22 syn tos 0x10 flowlabel 5 iif eth0');
    expect(lines(r)[0]).toBe(
      'TRACE: raw:PREROUTING:policy:1 IN=eth0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:86:dd ' +
      'SRC=2001:0db8:0000:0000:0000:0000:0000:0002 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=60 TC=16 HOPLIMIT=64 FLOWLBL=5 ' +
      'PROTO=TCP SPT=40000 DPT=22 SEQ=1 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 ');
    // A fragment header is printed as an option (NF_LOG_IPOPT is in TRACE's mask); a non-first fragment has no ports.
    const f = go(model({}, engine), 'udp 2001:db8::2 > 2001:db8::1 frag offset 8 mf ipid 7 iif eth0');
    expect(lines(f)[0]).toMatch(/ HOPLIMIT=64 FLOWLBL=0 OPT \( FRAG:8 INCOMPLETE ID:00000007 \) PROTO=UDP $/);
    const e = go(model({}, engine), 'icmpv6 2001:db8::2 > 2001:db8::1 echo-request iif eth0');
    expect(lines(e)[0]).toMatch(/ PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=1 $/);
  });

  it('forwarding: hop limit decremented before FORWARD, POSTROUTING with both devices, out via the gateway', () => {
    const r = go(model({}, engine), 'tcp [2001:db8::2]:40000 > [2400:cb00::1]:80 iif eth0');
    expect(fateText(r.fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
    // mangle FORWARD rule 1 is `-m hl --hl-eq 63`: the packet came in with 64.
    expect(traces(r)).toEqual(['raw:PREROUTING:policy:1', 'mangle:PREROUTING:policy:1', 'mangle:FORWARD:rule:1', 'mangle:FORWARD:policy:2',
      'filter:FORWARD:policy:2', 'mangle:POSTROUTING:policy:1']);
    expect(lines(r).at(-1)).toMatch(/^TRACE: mangle:POSTROUTING:policy:1 IN=eth0 OUT=eth1 .* HOPLIMIT=63 .* MARK=0x2 $/);
    const d = go(model({}, engine), 'udp 2001:db8::2 > 2001:db8:1::7 iif eth0');
    expect(fateText(d.fate)).toBe('dropped by filter:FORWARD rule 1');
  });

  it('hop limit <= 1: time exceeded before FORWARD', () => {
    const r = go(model({}, engine), 'udp 2001:db8::2 > 2400:cb00::1 hl 1 iif eth0');
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ttl' });
    expect(traces(r).some((t) => t.includes('FORWARD'))).toBe(false);
    expect(fateText(go(model({}, engine), 'udp 2001:db8::2 > 2400:cb00::1 hl 2 iif eth0').fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
  });

  it('forwarding off (net.ipv6.conf.all.forwarding = 0) drops after PREROUTING; force_forwarding of the input device forwards', () => {
    const off = model({ 'sysctl.txt': sysctl('net.ipv6.conf.all.forwarding = 0\n') }, engine);
    const r = go(off, 'udp 2001:db8::2 > 2400:cb00::1 iif eth0');
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ip-forward-off' });
    expect(traces(r)).toEqual(['raw:PREROUTING:policy:1', 'mangle:PREROUTING:policy:1']);
    const forced = model({ 'sysctl.txt': sysctl('net.ipv6.conf.all.forwarding = 0\nnet.ipv6.conf.eth0.force_forwarding = 1\n') }, engine);
    expect(fateText(go(forced, 'udp 2001:db8::2 > 2400:cb00::1 iif eth0').fate)).toBe('forwarded out eth1 via 2001:db8:1::2');
  });

  it('link-local destinations are routed through the input device only (as `ip -6 route get ... iif eth0` on 6.18)', () => {
    const m = model({}, engine);
    expect(fateText(go(m, 'icmpv6 fe80::1 > fe80::ff:fe00:2 echo-request iif eth0').fate)).toBe('delivered locally to fe80::ff:fe00:2 on eth0');
    // eth1's link-local address seen on eth0: fe80::/64 dev eth0, back out of eth0 (a redirect is sent).
    const r = go(m, 'udp 2001:db8::2 > fe80::ff:fe00:101 iif eth0');
    expect(fateText(r.fate)).toBe('forwarded out eth0 to fe80::ff:fe00:101 (directly connected)');
    // A link-local source is not forwarded to another link (ICMPv6 beyond scope / not a neighbour).
    expect(go(m, 'udp fe80::1 > 2400:cb00::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    // ... but back out of the same link it is.
    expect(fateText(go(m, 'udp fe80::1 > 2001:db8::5 iif eth0').fate)).toBe('forwarded out eth0 to 2001:db8::5 (directly connected)');
    // The unspecified source is never forwarded to another link.
    expect(go(m, 'udp :: > 2400:cb00::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
  });

  it('anycast: the subnet-router anycast address of a forwarding node is delivered', () => {
    expect(fateText(go(model({}, engine), 'icmpv6 2001:db8::2 > 2001:db8:: echo-request iif eth0').fate)).toBe('delivered locally to 2001:db8:: on eth0');
  });

  it('multicast: joined groups are delivered, others dropped; interface-local and scope 0 dropped in ip6_rcv_core', () => {
    const m = model({}, engine);
    expect(fateText(go(m, 'udp fe80::1 > ff02::1 iif eth0 dst-mac 33:33:00:00:00:01').fate)).toBe('delivered locally to ff02::1 (multicast) on eth0');
    expect(fateText(go(m, 'udp fe80::1 > ff02::2 iif eth0').fate)).toBe('delivered locally to ff02::2 (multicast) on eth0');
    expect(fateText(go(m, 'udp fe80::1 > ff02::1:ff00:1 iif eth0').fate)).toBe('delivered locally to ff02::1:ff00:1 (multicast) on eth0');
    expect(go(m, 'udp fe80::1 > ff02::fb iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'multicast' });
    expect(go(m, 'udp fe80::1 > ff05::2 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'multicast' });
    const il = go(m, 'udp fe80::1 > ff01::1 iif eth0');
    expect(il.fate).toMatchObject({ kind: 'dropped', reason: 'martian-destination' });
    expect(traces(il)).toEqual([]);
    expect(go(m, 'udp fe80::1 > ff00::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-destination' });
    expect(go(m, 'udp ff02::1 > 2001:db8::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    expect(go(m, 'udp 2001:db8::2 > ::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-destination' });
    expect(go(m, 'udp ::1 > 2001:db8::1 iif eth0').fate).toMatchObject({ kind: 'dropped', reason: 'martian-source' });
    // A unicast packet in a link-layer multicast frame is delivered but never forwarded.
    expect(fateText(go(m, 'udp 2001:db8::2 > 2001:db8::1 iif eth0 dst-mac 33:33:00:00:00:01').fate)).toBe('dropped by filter:INPUT policy DROP');
    expect(go(m, 'udp 2001:db8::2 > 2400:cb00::1 iif eth0 dst-mac 33:33:00:00:00:01').fate).toMatchObject({ kind: 'dropped', reason: 'not-host' });
    expect(go(m, 'udp 2001:db8::2 > 2001:db8::1 iif eth0 dst-mac 02:00:00:00:00:99').fate).toMatchObject({ kind: 'dropped', reason: 'other-host' });
  });

  it('disable_ipv6 on the input device drops before PREROUTING', () => {
    const m = model({ 'sysctl.txt': sysctl('net.ipv6.conf.eth0.disable_ipv6 = 1\n') }, engine);
    const r = go(m, 'tcp [2001:db8::2]:40000 > [2001:db8::1]:22 iif eth0');
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ipv6-disabled' });
    expect(traces(r)).toEqual([]);
  });

  it('fragments pass INPUT without conntrack (IPv6 reassembles after it); nf_defrag_ipv6 takes them first with conntrack', () => {
    const r = go(model({}, engine), 'udp 2001:db8::2 > ff02::1 frag offset 8 iif eth0');
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'reassembly' });
    expect(traces(r)).toContain('filter:INPUT:rule:4');
    const ct = model({ 'ip6tables-save.txt': '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate NEW\nCOMMIT\n' }, engine);
    expect(ct.conntrack6).toBe(true);
    expect(ct.conntrack).toBe(false);
    const s = go(ct, 'udp 2001:db8::2 > 2001:db8::1 frag offset 8 iif eth0');
    expect(s.fate).toMatchObject({ kind: 'dropped', reason: 'reassembly' });
    expect(traces(s)).toEqual([]);
    const whole = go(ct, 'udp 2001:db8::2 > 2001:db8::1 iif eth0');
    expect(traces(whole)).toEqual(['filter:INPUT:rule:1', 'filter:INPUT:policy:2']);
    // A non-final fragment whose end is not a multiple of 8 (20 + 10 bytes after the fragment
    // header): nf_ct_frag6_queue says -EPROTO and nf_defrag_ipv6 lets it through (seen on 6.18).
    const odd = go(ct, 'tcp [2001:db8::2]:1 > [2001:db8::1]:2 mf ipid 5 len 10 iif eth0');
    expect(traces(odd)).toEqual(['filter:INPUT:rule:1', 'filter:INPUT:policy:2']);
    expect(traces(go(ct, 'tcp [2001:db8::2]:1 > [2001:db8::1]:2 mf ipid 5 len 12 iif eth0'))).toEqual([]);
    // A first fragment that stops before a whole upper-layer header (RFC 8200 4.5) goes on as it is;
    // a fragment with no data after the header is dropped (end == offset). Both seen on 6.18.
    expect(traces(go(ct, 'ip6 proto 47 2001:db8::2 > 2001:db8::1 mf ipid 6 len 0 iif eth0'))).toEqual(['filter:INPUT:rule:1', 'filter:INPUT:policy:2']);
    expect(traces(go(ct, 'udp 2001:db8::2 > 2001:db8::1 frag offset 8 ipid 7 len 0 iif eth0'))).toEqual([]);
  });

  it('locally generated packets: OUTPUT and POSTROUTING, out of the route\'s device or back in through lo', () => {
    const m = model({}, engine);
    const r = go(m, 'tcp [2001:db8::1]:40000 > [2400:cb00::1]:80 from local');
    expect(fateText(r.fate)).toBe('sent out eth1 via 2001:db8:1::2');
    expect(traces(r)).toEqual(['raw:OUTPUT:policy:1', 'mangle:OUTPUT:policy:1', 'filter:OUTPUT:policy:1', 'mangle:POSTROUTING:policy:1']);
    const l = go(m, 'tcp [2001:db8::1]:40000 > [2001:db8:1::1]:80 from local');
    expect(fateText(l.fate)).toBe('delivered locally to 2001:db8:1::1 on lo');
    expect(traces(l).slice(4)).toEqual(['raw:PREROUTING:policy:1', 'mangle:PREROUTING:policy:1', 'mangle:INPUT:policy:1', 'filter:INPUT:rule:1']);
  });
});

describe('IPv6 node: hooks, groups, commands', () => {
  it('the ip6tables tables register at the NF_IP6_PRI_* priorities, apart from the IPv4 ones', () => {
    const m = model();
    const at = (hook: number) => m.registry.entries(NFPROTO_IPV6, hook).map((e) => `${e.name}@${e.priority}`);
    expect(at(NF_INET_PRE_ROUTING)).toEqual(['ip6table_raw@-300', 'ip6table_mangle@-150']);
    expect(at(NF_INET_LOCAL_IN)).toEqual(['ip6table_mangle@-150', 'ip6table_filter@0']);
    // a NAT target's checkentry takes conntrack (nf_ct_netns_get); the nat table alone does not
    const ct = model({ 'ip6tables-save.txt': '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n' });
    expect(ct.registry.entries(NFPROTO_IPV6, NF_INET_PRE_ROUTING).map((e) => `${e.name}@${e.priority}`))
      .toEqual(['nf_defrag_ipv6@-400', 'ipv6_conntrack_in@-200', 'ip6table_nat@-100']);
  });

  it('an ip6tables-nft dump registers at the nft base-chain priorities (security 150)', () => {
    const m = model({ 'ip6tables-save.txt': '# Generated by ip6tables-nft-save v1.8.9 (nf_tables) on Thu Nov 26 17:00:00 2026\n' +
      '*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' + FILTER_ACCEPT });
    expect(m.backend6).toBe('nft');
    expect(m.registry.entries(NFPROTO_IPV6, NF_INET_LOCAL_IN).map((e) => `${e.name}@${e.priority}`)).toEqual(['nft ip6 filter@0', 'nft ip6 security@150']);
  });

  it('joined groups: all-nodes, all-routers when forwarding, solicited-node of each address and anycast prefix', () => {
    const m = model();
    expect([...joinedGroups(m.node, m.node.links.get('eth0')!)].sort()).toEqual(
      ['ff01::1', 'ff02::1', 'ff02::1:ff00:0', 'ff02::1:ff00:1', 'ff02::1:ff00:2', 'ff02::2'].sort());
    expect([...joinedGroups(m.node, m.node.links.get('lo')!)].sort()).toEqual(['ff01::1', 'ff02::1']);
  });

  it('nfvm replay --save ip6tables counts the IPv6 frames of a mixed capture, --save iptables the IPv4 ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-ipv6-'));
    try {
      const snap = join(dir, 'node');
      cpSync(FIX, snap, { recursive: true });
      const specs = [
        'tcp [2001:db8::2]:40000 > [2001:db8::1]:22 syn iif eth0',
        'tcp [2001:db8:ff::9]:40000 > [2001:db8::1]:22 syn iif eth0',
        'udp 2001:db8::2 > 2001:db8:1::7 iif eth0',
        'udp 10.0.0.2 > 10.0.0.1 iif eth0',
      ];
      const pcap = join(dir, 'c.pcap');
      writeFileSync(pcap, writePcap(specs.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
      const out6 = outputText(cmdReplay([snap, '--pcap', pcap, '--iface', 'eth0', '--save', 'ip6tables']));
      expect(out6).toContain('[2:120] -A INPUT -p tcp -m tcp --dport 22 -j SSH');
      expect(out6).toContain('[1:60] -A SSH -s 2001:db8::/64 -j ACCEPT');
      expect(out6).toContain('[1:48] -A FORWARD -d 2001:db8:1::7/128 -j DROP');
      expect(out6).toContain(':INPUT DROP [1:60]');
      expect(out6).toContain(':PREROUTING ACCEPT [3:168]');
      const rs = parseRestore(out6, { family: 'ip6', counters: true });
      expect(rs.tables.get('filter')!.chains.get('INPUT')!.policyCounters).toEqual({ packets: 1n, bytes: 60n });
      const out4 = outputText(cmdReplay([snap, '--pcap', pcap, '--iface', 'eth0', '--save', 'iptables']));
      // The node has no IPv4 address and does not forward IPv4: raw PREROUTING is all the IPv4 frame meets.
      expect(out4).toContain(':PREROUTING ACCEPT [1:28]');
      expect(out4).toContain(':INPUT ACCEPT [0:0]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nfvm trace takes an IPv6 spec, in text and JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-ipv6-'));
    try {
      const snap = join(dir, 'node');
      cpSync(FIX, snap, { recursive: true });
      const text = cmdTrace([snap, '--packet', 'tcp [2001:db8::2]:40000 > [2400:cb00::1]:80 iif eth0']);
      expect(text).toMatch(/^# ipv6_rcv: eth0 accepts the packet \(pkt_type host\)$/m);
      expect(text).toMatch(/^# input route: 2400:cb00::1 via unicast route default via 2001:db8:1::2 dev eth1 \(table main\): ip6_forward out eth1$/m);
      expect(text.trimEnd().split('\n').at(-1)).toBe('forwarded out eth1 via 2001:db8:1::2');
      const doc = JSON.parse(cmdTrace([snap, '--json', '--packet', 'udp fe80::1 > ff02::fb iif eth0'])) as { fate: { kind: string; reason: string } };
      expect(doc.fate).toMatchObject({ kind: 'dropped', reason: 'multicast' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a snapshot without ip6tables-save.txt has no IPv6 hooks: IPv6 frames follow the path with nothing to count', () => {
    const files = new Map(base);
    files.delete('ip6tables-save.txt');
    const m = buildNodeModel(buildNode('', files));
    expect(m.registry.entries(NFPROTO_IPV6, NF_INET_LOCAL_IN)).toEqual([]);
    expect(fateText(go(m, 'udp 2001:db8::2 > 2001:db8::1 iif eth0').fate)).toBe('delivered locally to 2001:db8::1 on eth0');
    expect(m.rulesetWithCounters('ip6')).toBeUndefined();
  });

  it('never throws on damaged IPv6 frames (truncated, bit-flipped, random extension header chains)', () => {
    const m = model();
    m.setTrace(true);
    const seeds = [
      'tcp [2001:db8::2]:40000 > [2001:db8::1]:22 syn iif eth0',
      'udp 2001:db8::2 > ff02::1 frag offset 8 mf ipid 9 len 30 iif eth0',
      'icmpv6 2001:db8::2 > 2400:cb00::1 type 1 code 4 len 60 iif eth0',
      'ip6 proto 0 2001:db8::2 > 2001:db8::1 len 24 iif eth0',
    ].map((x) => encodeSpec(parseSpec(x)).data);
    let rnd = 12345;
    const next = () => (rnd = (rnd * 1103515245 + 12345) >>> 0) >>> 8;
    for (let i = 0; i < 3000; i++) {
      const base = seeds[i % seeds.length]!;
      const f = base.slice(0, 14 + (next() % (base.length - 13)));
      for (let k = next() % 6; k > 0; k--) f[14 + (next() % Math.max(1, f.length - 14))] = next() & 255;
      const pkt = new Packet(4096);
      pkt.setFrame(f);
      decodePacket(pkt, LINKTYPE_ETHERNET);
      const r = m.receive(pkt, 'eth0');
      expect(typeof fateText(r.fate)).toBe('string');
    }
  });

  it('IPv4 filter rules do not see IPv6 packets and vice versa', () => {
    const m = model({ 'iptables-save.txt': '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', 'ip6tables-save.txt': FILTER_ACCEPT });
    expect(fateText(go(m, 'udp 2001:db8::2 > 2001:db8::1 iif eth0').fate)).toBe('delivered locally to 2001:db8::1 on eth0');
  });
});
