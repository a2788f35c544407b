/**
 * Bridged frames against the running kernel (Linux 6.18): the bridge node
 * of ../shared/docs/kernel-oracle.md (br0 10.0.0.1/24 over eth0 and eth1,
 * veths to two silent peers, static fdb entries and permanent neighbours
 * for both, bridge-nf-call-iptables on, ICMP echo ignored, ICMP errors not
 * rate-limited). For each case
 * an iptables ruleset is loaded with iptables-legacy-restore (a fixed one
 * with physdev, conntrack and NAT rules, then generated ones), the node is
 * captured with captureSnapshot, frames are injected with tcpreplay on the
 * peers' veths (bridged to the other peer, to the bridge's own address,
 * broadcast, unknown unicast, multicast), and every counter of
 * `iptables-legacy-save -c`, OUTPUT and POSTROUTING included, is compared
 * with a replay of the same frames on the snapshot, with both engines.
 *
 * Frames to the node's own address are UDP to a port a socket holds open,
 * or TCP whose reset the node sends (the node's own answers pass OUTPUT
 * and POSTROUTING: the model sends them too).
 *
 * Root with iproute2, bridge, iptables-legacy and tcpreplay; skips with a
 * message otherwise (fails under CI). NFVM_PROPERTY_SCALE scales the
 * generated cases, FC_SEED replays a run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ICMP_UNLIMITED, bridgeTopology, flattenCounters, kernelSkip, netnsDel, nsSh, nsSnapshotRunner, run, type KernelCounter } from '../helpers/kernel.js';
import { engineRuleset } from '../helpers/engine-gen.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel, captureCt, ebtablesWithCounters, type EngineKind, type NodeModel } from '../../hooks/node.js';
import { parseEbtRestore } from '../../compiler/ebt/restore.js';
import { saveEbtRuleset } from '../../compiler/ebt/save.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { loadFrame, readCaptureFile, writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { runs, scaled } from '../helpers/runs.js';

const TOOLS = ['ip', 'bridge', 'ebtables-nft-restore', 'ebtables-nft-save', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'tcpreplay', 'python3'];
const SKIP = kernelSkip('bridged frames against the kernel', TOOLS);

const CASES = runs(8);
const MIXED = runs(8);
const SEED = Number(process.env.FC_SEED ?? 20261204);
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { a: `nfvm-ba-${id}`, n: `nfvm-bn-${id}`, b: `nfvm-bb-${id}` };
const MAC = { a: '02:00:00:00:00:0a', b: '02:00:00:00:00:0b', br0: '02:00:00:00:00:fe', eth0: '02:00:00:00:01:00', eth1: '02:00:00:00:01:01' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-bridge-kern-'));
/** The UDP port the node holds open (frames to it draw no answer). */
const OPEN_UDP = 5353;

/** A frame spec (or, for ARP, its description and bytes) and the port it enters by. */
interface Frame { line: string; port: 'eth0' | 'eth1'; data?: Uint8Array }

const frameGen = fc.record({
  port: fc.constantFrom('eth0' as const, 'eth1' as const),
  to: fc.constantFrom('peer', 'peer', 'peer', 'node', 'node', 'broadcast', 'unknown', 'multicast'),
  proto: fc.constantFrom('tcp', 'udp', 'udp', 'icmp'),
  sport: fc.constantFrom(1024, 40000, 53, 80),
  dport: fc.constantFrom(22, 80, 443, 8080, 53),
  flags: fc.constantFrom('syn', 'ack', 'syn,ack', 'rst'),
  ttl: fc.constantFrom(64, 1, 2),
  tos: fc.constantFrom(0, 0x10),
  len: fc.constantFrom(0, 40),
});
type FrameG = typeof frameGen extends fc.Arbitrary<infer T> ? T : never;

function frameOf(g: FrameG, ipid: number): Frame {
  const me = g.port === 'eth0' ? { ip: '10.0.0.2', mac: MAC.a } : { ip: '10.0.0.3', mac: MAC.b };
  const peer = g.port === 'eth0' ? { ip: '10.0.0.3', mac: MAC.b } : { ip: '10.0.0.2', mac: MAC.a };
  const [dst, dmac] = g.to === 'peer' ? [peer.ip, peer.mac]
    : g.to === 'node' ? ['10.0.0.1', MAC.br0]
      : g.to === 'broadcast' ? ['10.0.0.255', 'ff:ff:ff:ff:ff:ff']
        : g.to === 'multicast' ? ['224.0.0.251', '01:00:5e:00:00:fb']
          : ['10.0.0.99', '02:00:00:00:00:99'];
  // to the node: UDP to the open port (the model and the kernel both stay silent), TCP draws a reset
  const proto = g.to === 'node' && g.proto === 'icmp' ? 'udp' : g.proto;
  const dport = g.to === 'node' && proto === 'udp' ? OPEN_UDP : g.dport;
  const ports = proto === 'icmp' ? '' : ':';
  let s = `${proto} ${me.ip}${ports && `:${g.sport}`} > ${dst}${ports && `:${dport}`}`;
  if (proto === 'tcp') s += ` ${g.flags}`;
  if (proto === 'icmp') s += ' echo-request';
  s += ` ttl ${g.ttl} tos ${g.tos} len ${g.len} ipid ${ipid} iif ${g.port} src-mac ${me.mac} dst-mac ${dmac}`;
  return { line: s, port: g.port };
}

/**
 * The issue's mix of frames: the IP frames above, ARP (requests for the
 * node's address and a peer's, broadcast or unicast, gratuitous, replies),
 * 802.1Q-tagged IPv4 and untagged IPv6 (bridged, to the node, multicast).
 */
const mixedFrameGen = fc.oneof(
  { weight: 4, arbitrary: frameGen.map((g) => ({ kind: 'ip' as const, g })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('arp' as const), port: fc.constantFrom('eth0' as const, 'eth1' as const), op: fc.constantFrom(1, 1, 2), target: fc.constantFrom('node', 'peer', 'self'), unicast: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('vlan' as const), port: fc.constantFrom('eth0' as const, 'eth1' as const), vid: fc.constantFrom(10, 20), to: fc.constantFrom('peer', 'node'), dport: fc.constantFrom(53, 80) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ip6' as const), port: fc.constantFrom('eth0' as const, 'eth1' as const), to: fc.constantFrom('peer', 'multicast', 'node'), proto: fc.constantFrom('udp', 'tcp') }) },
);
type MixedG = typeof mixedFrameGen extends fc.Arbitrary<infer T> ? T : never;

function macBytes(m: string): number[] {
  return m.split(':').map((x) => parseInt(x, 16));
}

/** An Ethernet ARP frame (RFC 826 over Ethernet, 42 bytes). */
function arpFrame(dmac: string, op: number, sha: string, spa: string, tha: string, tpa: string): Uint8Array {
  const ip = (a: string) => a.split('.').map(Number);
  return Uint8Array.from([...macBytes(dmac), ...macBytes(sha), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op, ...macBytes(sha), ...ip(spa), ...macBytes(tha), ...ip(tpa)]);
}

function mixedFrameOf(m: MixedG, ipid: number): Frame {
  if (m.kind === 'ip') return frameOf(m.g, ipid);
  const me = m.port === 'eth0' ? { ip: '10.0.0.2', ip6: 'fe80::a', mac: MAC.a } : { ip: '10.0.0.3', ip6: 'fe80::b', mac: MAC.b };
  const peer = m.port === 'eth0' ? { ip: '10.0.0.3', ip6: 'fe80::b', mac: MAC.b } : { ip: '10.0.0.2', ip6: 'fe80::a', mac: MAC.a };
  if (m.kind === 'arp') {
    const [tpa, tmac] = m.target === 'node' ? ['10.0.0.1', MAC.br0] : m.target === 'peer' ? [peer.ip, peer.mac] : [me.ip, 'ff:ff:ff:ff:ff:ff'];
    const dmac = m.op === 2 || (m.unicast && m.target !== 'self') ? tmac : 'ff:ff:ff:ff:ff:ff';
    const tha = m.op === 2 ? tmac : '00:00:00:00:00:00';
    return { line: `arp op ${m.op} ${me.ip} > ${tpa} iif ${m.port} src-mac ${me.mac} dst-mac ${dmac}`, port: m.port, data: arpFrame(dmac, m.op, me.mac, me.ip, tha, tpa) };
  }
  if (m.kind === 'vlan') {
    const [dst, dmac] = m.to === 'peer' ? [peer.ip, peer.mac] : ['10.0.0.1', MAC.br0];
    return { line: `udp ${me.ip}:1000 > ${dst}:${m.dport} ipid ${ipid} vlan ${m.vid} iif ${m.port} src-mac ${me.mac} dst-mac ${dmac}`, port: m.port };
  }
  const [dst, dmac] = m.to === 'peer' ? [peer.ip6, peer.mac] : m.to === 'multicast' ? ['ff02::1', '33:33:00:00:00:01'] : ['fe80::fe', MAC.br0];
  return { line: `${m.proto} [${me.ip6}]:1000 > [${dst}]:53${m.proto === 'tcp' ? ' syn' : ''} iif ${m.port} src-mac ${me.mac} dst-mac ${dmac}`, port: m.port };
}

const FIXED_RULES = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m physdev --physdev-in eth1 -j ACCEPT
-A PREROUTING -i br0 -p udp
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m physdev --physdev-in eth0
-A PREROUTING -m physdev --physdev-is-in
-A PREROUTING -m physdev ! --physdev-is-bridged
-A INPUT -m physdev --physdev-in eth+
-A INPUT -m physdev --physdev-is-bridged
-A FORWARD -m physdev --physdev-in eth0 --physdev-out eth1
-A FORWARD -m physdev --physdev-out eth0 --physdev-is-bridged
-A FORWARD -i br0 -o br0
-A POSTROUTING -m physdev --physdev-is-out --physdev-is-bridged
-A POSTROUTING -o br0 -m physdev ! --physdev-is-bridged
-A POSTROUTING -m physdev --physdev-out eth1 --physdev-is-bridged -j MARK --set-xmark 0x1/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate NEW -p tcp
-A INPUT -m pkttype --pkt-type broadcast
-A INPUT -p udp --dport ${OPEN_UDP}
-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED
-A FORWARD -m physdev --physdev-in eth1 -p tcp --dport 443 -j DROP
-A FORWARD -p udp -m physdev ! --physdev-out eth1 --physdev-is-bridged -j ACCEPT
-A OUTPUT -p tcp --tcp-flags RST RST
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -d 10.0.0.3 --dport 8080 -j DNAT --to-destination 10.0.0.1:22
-A PREROUTING -m physdev --physdev-in eth1 -p udp --dport 53
-A POSTROUTING -m physdev --physdev-out eth0 --physdev-is-bridged
-A POSTROUTING -o br0
COMMIT
`;

const FIXED_EBTABLES = `*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:guests RETURN
-A INPUT -p IPv4 --ip-proto udp
-A INPUT -d ff:ff:ff:ff:ff:ff
-A FORWARD -i eth0 -j guests
-A FORWARD -p IPv4 -o eth1
-A FORWARD -d Multicast
-A FORWARD -p IPv4 --ip-proto tcp --ip-dport 22 -j DROP
-A OUTPUT -p IPv4
-A OUTPUT -o eth0
-A guests -p IPv4 --ip-proto tcp --ip-dport 80 -j DROP
-A guests -s ${MAC.a}
*nat
:PREROUTING ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
-A PREROUTING -p IPv4 -i eth1
-A PREROUTING -d ${MAC.br0}
-A PREROUTING -p IPv4 --ip-proto udp --ip-dport 53 -j mark --mark-set 0x5 --mark-target CONTINUE
-A OUTPUT -p IPv4
-A POSTROUTING -o eth0
-A POSTROUTING -p IPv4 --ip-proto udp
`;

/** Generated ebtables rules: what can be matched on this topology's frames, each option at most once. */
const ebtRule = fc.record({
  proto: fc.constantFrom('', '', '-p IPv4', '-p IPv4', '-p ARP', '-p ! IPv4', '-p IPv6', '-p LENGTH'),
  ip: fc.constantFrom('', '--ip-proto tcp', '--ip-proto udp --ip-dport 53', '--ip-dst 10.0.0.1', '--ip-src 10.0.0.2/31', '--ip-proto tcp --ip-dport 80:443', '--ip-tos 0x10'),
  src: fc.constantFrom('', '', `-s ${MAC.a}`, `-s ${MAC.b}`),
  dst: fc.constantFrom('', '', `-d ${MAC.br0}`, '-d Broadcast', '-d Multicast', '-d Unicast', '! -d Unicast'),
  iif: fc.constantFrom('', '', '-i eth0', '-i eth1', '-i eth+'),
  oif: fc.constantFrom('', '', '-o eth0', '! -o eth1'),
  pkttype: fc.constantFrom('', '', '--pkttype-type broadcast', '--pkttype-type otherhost', '--pkttype-type host'),
  target: fc.constantFrom('', '', '-j ACCEPT', '-j DROP', '-j CONTINUE', '-j RETURN', '-j u1', '-j mark --mark-set 0x3 --mark-target CONTINUE'),
}).map((r) => [r.proto, r.proto === '-p IPv4' ? r.ip : '', r.src, r.dst, r.iif, r.oif, r.pkttype, r.target].filter(Boolean).join(' '));
const ebtRuleset = fc.record({
  input: fc.array(ebtRule, { maxLength: 3 }), forward: fc.array(ebtRule, { maxLength: 4 }), output: fc.array(ebtRule, { maxLength: 2 }),
  u1: fc.array(ebtRule.filter((r) => !r.includes('-j u1')), { maxLength: 3 }), pre: fc.array(ebtRule.filter((r) => !r.includes('-j u1') && !/-o /.test(r)), { maxLength: 3 }),
  post: fc.array(ebtRule.filter((r) => !r.includes('-j u1') && !/-i /.test(r)), { maxLength: 3 }),
  policy: fc.constantFrom('ACCEPT', 'ACCEPT', 'DROP'), u1policy: fc.constantFrom('RETURN', 'ACCEPT', 'DROP'),
}).map(ebtText);

/** The ebtables-restore text of generated chains: -o is no condition before the output port is known, -i not after it is gone; each kept to its chains. */
function ebtText(g: { input: string[]; forward: string[]; output: string[]; u1: string[]; pre: string[]; natOut?: string[]; post: string[]; policy: string; u1policy: string; outPolicy?: string }): string {
  const noOut = (r: string) => !/-o /.test(r);
  const lines = ['*filter', ':INPUT ACCEPT', `:FORWARD ${g.policy}`, `:OUTPUT ${g.outPolicy ?? 'ACCEPT'}`, `:u1 ${g.u1policy}`];
  for (const r of g.input.filter(noOut)) lines.push(`-A INPUT ${r}`);
  for (const r of g.forward) lines.push(`-A FORWARD ${r}`);
  for (const r of g.output.filter((x) => !/-i /.test(x) && !x.includes('-j u1'))) lines.push(`-A OUTPUT ${r}`);
  for (const r of g.u1.filter(noOut)) lines.push(`-A u1 ${r}`);
  lines.push('*nat', ':PREROUTING ACCEPT', ':OUTPUT ACCEPT', ':POSTROUTING ACCEPT');
  for (const r of g.pre) lines.push(`-A PREROUTING ${r}`);
  for (const r of g.natOut ?? []) lines.push(`-A OUTPUT ${r}`);
  for (const r of g.post) lines.push(`-A POSTROUTING ${r}`);
  return lines.join('\n') + '\n';
}

/**
 * The issue's ebtables rules: the ones above plus ip6, arp, vlan and mark
 * matches and nat OUTPUT rules. `--logical-in`/`--logical-out` are left
 * out: this kernel refuses them (no nft_meta_bridge, EOPNOTSUPP).
 */
const ebtMixedRule = fc.record({
  proto: fc.constantFrom('', '', '-p IPv4', '-p IPv4', '-p ARP', '-p ARP', '-p IPv6', '-p 802_1Q', '-p ! IPv4'),
  ip: fc.constantFrom('', '--ip-proto tcp', '--ip-proto udp --ip-dport 53', '--ip-dst 10.0.0.1', '--ip-src 10.0.0.2/31'),
  ip6: fc.constantFrom('', '--ip6-proto udp', '--ip6-dst ff02::1', '--ip6-src fe80::a/127', '--ip6-proto tcp --ip6-dport 53'),
  arp: fc.constantFrom('', '--arp-op Request', '--arp-op Reply', '--arp-ip-dst 10.0.0.1', '--arp-ip-src 10.0.0.2', '--arp-gratuitous', '--arp-mac-src 02:00:00:00:00:0b'),
  vlan: fc.constantFrom('', '--vlan-id 10', '--vlan-id 20', '--vlan-encap IPv4'),
  mark: fc.constantFrom('', '', '', '--mark 0x3', '--mark 0x1/0x1', '! --mark 0x3'),
  src: fc.constantFrom('', '', `-s ${MAC.a}`, `-s ${MAC.b}`),
  dst: fc.constantFrom('', '', `-d ${MAC.br0}`, '-d Broadcast', '-d Multicast', '-d Unicast'),
  iif: fc.constantFrom('', '', '-i eth0', '-i eth1', '-i eth+'),
  oif: fc.constantFrom('', '', '-o eth0', '! -o eth1', '-o eth+'),
  target: fc.constantFrom('', '', '-j ACCEPT', '-j DROP', '-j CONTINUE', '-j RETURN', '-j u1', '-j mark --mark-set 0x3 --mark-target CONTINUE', '-j mark --mark-or 0x1 --mark-target ACCEPT'),
}).map((r) => [
  r.proto, r.proto === '-p IPv4' ? r.ip : r.proto === '-p IPv6' ? r.ip6 : r.proto === '-p ARP' ? r.arp : r.proto === '-p 802_1Q' ? r.vlan : '',
  r.mark, r.src, r.dst, r.iif, r.oif, r.target,
].filter(Boolean).join(' '));
const ebtMixedRuleset = fc.record({
  input: fc.array(ebtMixedRule, { maxLength: 3 }), forward: fc.array(ebtMixedRule, { maxLength: 4 }), output: fc.array(ebtMixedRule, { maxLength: 3 }),
  u1: fc.array(ebtMixedRule.filter((r) => !r.includes('-j u1')), { maxLength: 3 }), pre: fc.array(ebtMixedRule.filter((r) => !r.includes('-j u1') && !/-o /.test(r)), { maxLength: 3 }),
  natOut: fc.array(ebtMixedRule.filter((r) => !r.includes('-j u1') && !/-i /.test(r)), { maxLength: 2 }),
  post: fc.array(ebtMixedRule.filter((r) => !r.includes('-j u1') && !/-i /.test(r)), { maxLength: 3 }),
  policy: fc.constantFrom('ACCEPT', 'ACCEPT', 'DROP'), u1policy: fc.constantFrom('RETURN', 'ACCEPT', 'DROP'), outPolicy: fc.constantFrom('ACCEPT', 'ACCEPT', 'DROP'),
}).map(ebtText);

/**
 * iptables rules for the issue's check: every table with count-only and
 * verdict rules over physdev, -i/-o, marks (which see ebtables' mark) and
 * protocols, the nat table's four chains included (its rules see a packet
 * only when conntrack is on: a conntrack match in filter turns it on, or not).
 */
const iptMatch = fc.constantFrom('', '', '-p udp', '-p tcp --dport 80', '-p udp --dport 53', '-i br0', '-o br0', '-m mark --mark 0x3', '-m mark --mark 0x1/0x1',
  '-m physdev --physdev-in eth0', '-m physdev --physdev-out eth1', '-m physdev --physdev-is-bridged', '-m physdev ! --physdev-is-bridged', '-d 10.0.0.1', '-s 10.0.0.2',
  '-m pkttype --pkt-type broadcast', '-m addrtype --dst-type LOCAL');
const iptRule = (targets: readonly string[]) => fc.tuple(iptMatch, iptMatch, fc.constantFrom(...targets)).map(([a, b, t]) => {
  // one of each option: a second -p or -i/-o of the same kind would be refused
  const parts = [a];
  if (b && b.split(' ')[0] !== a.split(' ')[0] && !(a.includes('physdev') && b.includes('physdev'))) parts.push(b);
  return [...parts, t].filter(Boolean).join(' ');
});
const iptRuleset = fc.record({
  ct: fc.boolean(),
  mangle: fc.array(fc.tuple(fc.constantFrom('PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'), iptRule(['', '', '-j MARK --set-xmark 0x1/0x1', '-j ACCEPT', '-j RETURN'])), { maxLength: 6 }),
  filter: fc.array(fc.tuple(fc.constantFrom('INPUT', 'FORWARD', 'OUTPUT'), iptRule(['', '', '-j ACCEPT', '-j DROP', '-j RETURN'])), { maxLength: 6 }),
  nat: fc.array(fc.tuple(fc.constantFrom('PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'), iptRule(['', '', '-j ACCEPT', '-j RETURN'])), { maxLength: 6 }),
}).map((g) => {
  // what iptables and the kernel refuse per hook: -o before routing, -i after it, physdev-out where no bridge port is known yet (physdev_mt_check)
  const fits = (c: string, r: string) => !((c === 'PREROUTING' || c === 'INPUT') && /(^| )-o |physdev-out/.test(r)) && !((c === 'OUTPUT' || c === 'POSTROUTING') && /(^| )-i /.test(r))
    && !(c === 'OUTPUT' && /physdev-out/.test(r));
  const chain = (name: string, rules: [string, string][]) => rules.filter(([c, r]) => c === name && fits(c, r)).map(([c, r]) => `-A ${c} ${r}`.trimEnd());
  const table = (t: string, chains: string[], rules: [string, string][], extra: string[] = []) =>
    [`*${t}`, ...chains.map((c) => `:${c} ACCEPT [0:0]`), ...extra, ...chains.flatMap((c) => chain(c, rules)), 'COMMIT'].join('\n');
  const ctRule = g.ct ? ['-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED'] : [];
  return [
    table('raw', ['PREROUTING', 'OUTPUT'], []),
    table('mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'], g.mangle),
    table('nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], g.nat),
    table('filter', ['INPUT', 'FORWARD', 'OUTPUT'], g.filter, ctRule),
  ].join('\n') + '\n';
});

/** ebtables-nft-save -c: per rule `table chain #n` → counters (1.8.9's `--opt ! value` read as 1.8.13's `! --opt value`). */
function ebtCounters(text: string): Map<string, KernelCounter> {
  const rs = parseEbtRestore(text.split('\n').map((l) => l.replace(/ (--?[A-Za-z0-9_-]+) ! /g, ' ! $1 ')).join('\n'));
  const out = new Map<string, KernelCounter>();
  for (const [t, table] of rs.tables) for (const c of table.chains.values()) c.rules.forEach((r, i) => out.set(`bridge ${t} ${c.name} #${i + 1}`, r.counters ?? { packets: 0n, bytes: 0n }));
  return out;
}

/**
 * The generated table with the other two empty (all counters are compared,
 * OUTPUT and POSTROUTING too). No nat table: these cases run before the
 * fixed one, which adds it (iptables-restore leaves a table it is not given;
 * a legacy nat table without NAT targets loads no conntrack on this kernel,
 * which nfvm does not model yet).
 */
function generated(text: string, table: string): string {
  const lines = text.split('\n').filter((l) => !/--mode random/.test(l) && !/ ! -[io] \+(?= |$)|! --[a-z]*ports? 0:65535/.test(l));
  const empty: Record<string, string> = {
    raw: '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
    mangle: '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
    filter: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
  };
  return ['raw', 'mangle', 'filter'].map((t) => (t === table ? lines.join('\n') + '\n' : empty[t])).join('');
}

/** Replays the capture of each port in turn, as the kernel received them. */
function replay(model: NodeModel, pcaps: { file: string; port: string }[]): void {
  const pkt = new Packet();
  for (const { file, port } of pcaps) {
    for (const f of readCaptureFile(file)) {
      resetMeta(pkt);
      loadFrame(pkt, f);
      captureCt(model, pkt);
      model.receive(pkt, port);
    }
  }
}

interface Tally { cases: number; counters: number; agree: number; nonzero: number; failures: string[] }

let listener: ChildProcess | undefined;

describe.skipIf(SKIP)('bridged frames against the kernel', () => {
  beforeAll(async () => {
    bridgeTopology(NS, MAC);
    // the node's ICMP errors unlimited: the kernel keeps each peer's rate-limit tokens (inet_peer) from case to case
    // in this one namespace, where the model of each case starts with full ones (seed 123457: case 8's REJECTs
    // found 10.0.0.2's tokens spent by the cases before it)
    nsSh(NS.n, ICMP_UNLIMITED);
    listener = spawn('ip', ['netns', 'exec', NS.n, 'python3', '-c', `import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',${OPEN_UDP}))\ntime.sleep(3600)`], { stdio: 'ignore' });
    // the socket must be bound before the first snapshot lists it
    for (let i = 0; i < 100; i++) {
      const ss = await run('ip', ['netns', 'exec', NS.n, 'ss', '-Huln']);
      if (ss.stdout.includes(`:${OPEN_UDP} `)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(() => {
    listener?.kill('SIGKILL');
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** One case: load `rules`, capture, inject `frames`, compare every counter with each engine. */
  async function runCase(k: number, rules: string, ebt: string, frames: Frame[], tally: Record<EngineKind, Tally>): Promise<boolean> {
    const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], rules);
    if (restore.code !== 0) return false;
    const ebRestore = await run('ip', ['netns', 'exec', NS.n, 'ebtables-nft-restore'], ebt);
    if (ebRestore.code !== 0) return false;
    await run('ip', ['netns', 'exec', NS.n, 'conntrack', '-F']);
    const snap = join(tmp, `snap-${k}`);
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    const pcaps: { file: string; port: string }[] = [];
    for (const port of ['eth0', 'eth1'] as const) {
      const mine = frames.filter((f) => f.port === port);
      if (!mine.length) continue;
      const file = join(tmp, `case-${k}-${port}.pcap`);
      writeFileSync(file, writePcap(mine.map((f) => ({ data: f.data ?? encodeSpec(parseSpec(f.line)).data })), { linktype: LINKTYPE_ETHERNET }));
      pcaps.push({ file, port });
      const send = await run('ip', ['netns', 'exec', port === 'eth0' ? NS.a : NS.b, 'tcpreplay', '-q', '-t', '--intf1=veth0', file]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 300));
    const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
    const kernel = flattenCounters(parseRestore(save.stdout, { counters: true }), true);
    const ebSave = await run('ip', ['netns', 'exec', NS.n, 'ebtables-nft-save', '-c']);
    for (const [key, c] of ebtCounters(ebSave.stdout)) kernel.set(key, c);
    for (const engine of ['vm', 'reference'] as const) {
      const t = tally[engine];
      const model = buildNodeModel(readSnapshot(snap), { engine });
      t.cases++;
      replay(model, pcaps);
      const mine = flattenCounters(model.rulesetWithCounters()!, true);
      const ebMine = ebtablesWithCounters(model);
      if (ebMine) for (const [key, c] of ebtCounters(saveEbtRuleset(ebMine, { counters: true }))) mine.set(key, c);
      const diffs: string[] = [];
      for (const [key, kc] of kernel) {
        const mc: KernelCounter | undefined = mine.get(key);
        t.counters++;
        if (kc.packets !== 0n) t.nonzero++;
        if (mc && mc.packets === kc.packets && mc.bytes === kc.bytes) t.agree++;
        else diffs.push(`  ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
      }
      if (diffs.length) t.failures.push(`case ${k} (${engine}):\n${diffs.join('\n')}\n--- rules:\n${rules}--- ebtables:\n${ebt}--- frames:\n${frames.map((f) => f.line).join('\n')}`);
    }
    rmSync(snap, { recursive: true, force: true });
    return true;
  }

  const newTally = (): Record<EngineKind, Tally> => ({
    vm: { cases: 0, counters: 0, agree: 0, nonzero: 0, failures: [] },
    interp: { cases: 0, counters: 0, agree: 0, nonzero: 0, failures: [] },
    reference: { cases: 0, counters: 0, agree: 0, nonzero: 0, failures: [] },
  });

  it(`${CASES} generated rulesets over generated bridged frames: every counter agrees`, async () => {
    const cases = fc.sample(fc.tuple(engineRuleset, ebtRuleset, fc.array(frameGen, { minLength: 8, maxLength: 20 })), { numRuns: CASES, seed: SEED + 1 });
    const tally = newTally();
    let loaded = 0;
    for (let k = 0; k < cases.length; k++) {
      const [gen, ebt, fg] = cases[k]!;
      const frames = fg.map((g, i) => frameOf(g, ((k * 64 + i) % 65535) + 1));
      if (await runCase(k + 1, generated(gen.text, gen.table), ebt, frames, tally)) loaded++;
    }
    for (const e of ['vm', 'reference'] as const) {
      const t = tally[e];
      console.log(`bridge generated [${e}]: ${t.cases} cases, ${t.agree}/${t.counters} counters agree (${t.nonzero} non-zero in the kernel), ${t.failures.length} cases differ`);
    }
    expect(loaded).toBeGreaterThan(CASES / 2);
    expect(tally.reference.failures.slice(0, 2).join('\n\n')).toBe('');
    expect(tally.vm.failures.slice(0, 2).join('\n\n')).toBe('');
  }, scaled(600_000));
  it('physdev, conntrack and NAT rules over bridged, local, broadcast, multicast and unknown-unicast frames: every counter agrees', async () => {
    const frames = fc.sample(frameGen, { numRuns: runs(30), seed: SEED }).map((g, i) => frameOf(g, i + 1));
    // the DNAT rule's frame: bridged to 10.0.0.3:8080, DNATed to the node
    frames.push({ line: `tcp 10.0.0.2:40001 > 10.0.0.3:8080 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`, port: 'eth0' });
    const tally = newTally();
    expect(await runCase(0, FIXED_RULES, FIXED_EBTABLES, frames, tally)).toBe(true);
    for (const e of ['vm', 'reference'] as const) console.log(`bridge fixed rules [${e}]: ${tally[e].agree}/${tally[e].counters} counters agree (${tally[e].nonzero} non-zero in the kernel)`);
    expect(tally.reference.failures.join('\n\n')).toBe('');
    expect(tally.vm.failures.join('\n\n')).toBe('');
  }, scaled(120_000));

  it('broute under ebtables-nft: the BROUTING chain\'s DROP policy drops the frame (nf_tables chain policy); every counter agrees', async () => {
    // ebtables-nft 1.8.9 refuses `-t broute`: the table it would make (iptables/nft.c: BROUTING, filter, prerouting at
    // NF_BR_PRI_FIRST) is made with nft; its DROP rules (meta broute set) cannot load here (no nft_meta_bridge: EOPNOTSUPP)
    const nftText = 'table bridge broute {\n chain BROUTING {\n  type filter hook prerouting priority -2147483648; policy drop;\n  ip protocol tcp counter accept\n }\n}\n';
    const rules = '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -i eth0\n-A PREROUTING -i br0 -p tcp\n-A PREROUTING -i br0 -p udp\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'
      // the nat table of a case before is replaced too (iptables-restore leaves a table it is not given)
      + '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';
    expect((await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], rules)).code).toBe(0);
    expect((await run('ip', ['netns', 'exec', NS.n, 'ebtables-nft-restore'], '*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n-A FORWARD\n*nat\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\n-A PREROUTING\n')).code).toBe(0);
    const snap = join(tmp, 'snap-broute');
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    // the snapshot's ebtables-save.txt with the broute table as ebtables-nft 1.8.13 prints it
    const ebFile = join(snap, 'ebtables-save.txt');
    writeFileSync(ebFile, `${readFileSync(ebFile, 'utf8')}*broute\n:BROUTING DROP\n-A BROUTING -p IPv4 --ip-proto tcp -j ACCEPT\n`);
    try {
      const load = await run('ip', ['netns', 'exec', NS.n, 'nft', '-f', '-'], nftText);
      expect(load.stderr).toBe('');
      const frames: Frame[] = [
        { line: `udp 10.0.0.2:1000 > 10.0.0.3:53 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`, port: 'eth0' },
        { line: `tcp 10.0.0.2:1000 > 10.0.0.3:80 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`, port: 'eth0' },
        { line: `udp 10.0.0.2:1000 > 10.0.0.1:${OPEN_UDP} iif eth0 src-mac ${MAC.a} dst-mac ${MAC.br0}`, port: 'eth0' },
        { line: `udp 10.0.0.3:1000 > 10.0.0.255:53 iif eth1 src-mac ${MAC.b} dst-mac ff:ff:ff:ff:ff:ff`, port: 'eth1' },
        { line: `tcp 10.0.0.3:1000 > 10.0.0.2:22 syn iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}`, port: 'eth1' },
      ];
      const pcaps: { file: string; port: string }[] = [];
      for (const port of ['eth0', 'eth1'] as const) {
        const file = join(tmp, `broute-${port}.pcap`);
        writeFileSync(file, writePcap(frames.filter((f) => f.port === port).map((f) => ({ data: encodeSpec(parseSpec(f.line)).data })), { linktype: LINKTYPE_ETHERNET }));
        pcaps.push({ file, port });
        await run('ip', ['netns', 'exec', port === 'eth0' ? NS.a : NS.b, 'tcpreplay', '-q', '-t', '--intf1=veth0', file]);
      }
      await new Promise((r) => setTimeout(r, 300));
      const kernel = flattenCounters(parseRestore((await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c'])).stdout, { counters: true }), true);
      const ebSave = (await run('ip', ['netns', 'exec', NS.n, 'ebtables-nft-save', '-c'])).stdout;
      for (const [key, c] of ebtCounters(ebSave)) kernel.set(key, c);
      const listed = (await run('ip', ['netns', 'exec', NS.n, 'nft', 'list', 'table', 'bridge', 'broute'])).stdout;
      const m = /counter packets (\d+) bytes (\d+) accept/.exec(listed)!;
      kernel.set('bridge broute BROUTING #1', { packets: BigInt(m[1]!), bytes: BigInt(m[2]!) });
      // only the TCP frames passed BROUTING: bridged; the others were dropped there, before anything counted them
      expect(kernel.get('bridge broute BROUTING #1')!.packets).toBe(2n);
      expect(kernel.get('raw PREROUTING #3')!.packets).toBe(0n);
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(snap), { engine });
        replay(model, pcaps);
        const mine = flattenCounters(model.rulesetWithCounters()!, true);
        for (const [key, c] of ebtCounters(saveEbtRuleset(ebtablesWithCounters(model)!, { counters: true }))) mine.set(key, c);
        const diffs = [...kernel].filter(([k, c]) => mine.get(k)?.packets !== c.packets || mine.get(k)?.bytes !== c.bytes)
          .map(([k, c]) => `${k}: kernel [${c.packets}:${c.bytes}] nfvm [${mine.get(k)?.packets}:${mine.get(k)?.bytes}]`);
        expect(diffs, engine).toEqual([]);
      }
    } finally {
      await run('ip', ['netns', 'exec', NS.n, 'nft', 'delete', 'table', 'bridge', 'broute']);
      rmSync(snap, { recursive: true, force: true });
    }
  }, scaled(120_000));

  it(`the issue's check: ${MIXED} generated ebtables-nft and iptables rulesets (nat OUTPUT and POSTROUTING, marks, ip/ip6/arp/vlan) over bridged, local, broadcast, unknown-unicast, ARP, VLAN and IPv6 frames: every counter agrees`, async () => {
    const cases = fc.sample(fc.tuple(iptRuleset, ebtMixedRuleset, fc.array(mixedFrameGen, { minLength: 8, maxLength: 24 })), { numRuns: MIXED, seed: SEED + 2 });
    const tally = newTally();
    let loaded = 0;
    for (let k = 0; k < cases.length; k++) {
      const [ipt, ebt, fg] = cases[k]!;
      const frames = fg.map((g, i) => mixedFrameOf(g, ((k * 64 + i) % 65535) + 1));
      if (await runCase(1000 + k, ipt, ebt, frames, tally)) loaded++;
    }
    for (const e of ['vm', 'reference'] as const) {
      const t = tally[e];
      console.log(`bridge issue check [${e}]: ${t.cases} cases (seed ${SEED + 2}), ${t.agree}/${t.counters} counters agree (${t.nonzero} non-zero in the kernel), ${t.failures.length} cases differ`);
    }
    expect(loaded).toBe(cases.length);
    expect(tally.reference.failures.slice(0, 2).join('\n\n')).toBe('');
    expect(tally.vm.failures.slice(0, 2).join('\n\n')).toBe('');
  }, scaled(1_800_000));
});
