/**
 * TRACE lines against the kernel (Linux 6.18, iptables legacy: x_tables'
 * trace_packet() logs through the namespace's nf_log backend, here
 * nfnetlink_log, which `tcpdump -i nflog:0` captures with each line's
 * prefix, the packet's mark and the packet itself). Frames from a sender
 * to the node and through it meet mangle targets that change the mark,
 * TOS, DSCP and TTL, a DNAT and a kube-proxy-style `--set-xmark
 * 0x4000/0x0`: the kernel logs each rule after its matches and before its
 * target, so a rule's line shows the packet as the rules before it left
 * it. Each TRACE line of `nfvm trace` (both engines) is compared with the
 * kernel's: table, chain, type and number, MARK, TOS, TTL, SRC, DST and
 * the ports. Then generated rulesets (seeded; NFVM_PROPERTY_SCALE scales
 * their number): stateless ones on one-way frames, and stateful ones
 * (conntrack state, direction, status and original destination,
 * connection marks, DNAT, SNAT and MASQUERADE) and firewall ones (TCP
 * flags, multiport, iprange, addrtype, pkttype, NOTRACK, REJECT, DROP,
 * TCPMSS) on two-sided TCP, UDP and ICMP echo flows, where every line of
 * every frame must agree (LEN included), and so must the counters
 * (`iptables-save -c`) and the conntrack table
 * afterwards (`conntrack -L -o extended`, timeouts within seconds); bridged frames
 * through br_netfilter (IN, OUT, PHYSIN, PHYSOUT), IPv6 (ip6tables:
 * traffic class, hop limit; the stateful and firewall generators again in
 * IPv6 words, frames told apart by their flow label), and datagrams the node sends itself (OUTPUT,
 * a DNAT there, POSTROUTING), traced from the packet the kernel logged;
 * a kube-proxy node as `nfvm gen kube-proxy` writes it (ClusterIPs and
 * NodePorts, externalTrafficPolicy Cluster and Local; nftables mode's
 * verdict maps as the ipsets nfvm runs them, loaded with `ipset restore`),
 * and with three endpoints a Service, where each of the kernel's traces must
 * be one of the outcomes `trace --all-branches` lists, at probability 1/3.
 *
 * Root with iproute2, the legacy iptables and ip6tables tools, ipset,
 * conntrack, tcpreplay and tcpdump
 * (libpcap's nflog); skips with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { bridgeTopology, compareConntrack, counterDiffs, flattenCounters, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, run, saveHeader, senderForwardingTopology, senderForwardingTopology6 } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { conntrackList } from '../../hooks/conntrack/print.js';
import { exploreBranches } from '../../hooks/branches.js';
import type { PathResult } from '../../hooks/path/fate.js';
import { LINKTYPE_ETHERNET, loadFrame, writePcap, type Frame } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec, specPacket } from '../../hooks/input/spec.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { runs, scaled } from '../helpers/runs.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { CLUSTER_CIDR, kubeProxySnapshot, kubeServices } from '../../gen/kube-proxy.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ipset', 'conntrack', 'tcpreplay', 'tcpdump'];
const SKIP = kernelSkip('TRACE lines against the kernel', TOOLS);
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-trace-'));
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02', b: '02:00:00:00:00:03', eth0: '02:00:00:00:00:10', eth1: '02:00:00:00:00:11' };

/** Frames from the sender: to the node (delivered, then dropped in INPUT: the node stays silent) and through it (10.9.0.0/16 goes back out eth0). */
const SPECS = [
  'udp 10.0.0.2:40000 > 10.0.0.1:9999 len 3 ipid 11',
  'udp 10.0.0.2:40001 > 10.0.0.1:9999 len 3 ipid 12 tos 0x04 ttl 30',
  'udp 10.0.0.2:40002 > 10.9.0.5:7777 len 3 ipid 13',
  'tcp 10.0.0.2:40003 > 10.9.0.6:8080 syn ipid 14 dscp 8',
].map((s) => `${s} src-mac ${MAC.sender} dst-mac ${MAC.node}`);

const RULES = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -s 10.0.0.2/32 -j TRACE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MARKS - [0:0]
-A PREROUTING -p udp -j MARK --set-mark 0x5
-A PREROUTING -p udp -m udp --dport 9999 -j TOS --set-tos 0x10
-A PREROUTING -p udp -m udp --dport 9999 -j TTL --ttl-set 9
-A PREROUTING -j MARKS
-A PREROUTING -m mark --mark 0x15 -j MARK --set-xmark 0x4000/0x0
-A MARKS -p udp -j MARK --or-mark 0x10
-A MARKS -p tcp -j DSCP --set-dscp 0x0a
-A MARKS -j TTL --ttl-dec 2
-A INPUT -j DSCP --set-dscp 0x01
-A INPUT -j MARK --set-xmark 0x4000/0x0
-A FORWARD -p udp -j TTL --ttl-inc 3
-A POSTROUTING -j TOS --and-tos 0x0f
-A POSTROUTING -j MARK --set-mark 0x7
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.7:80
-A PREROUTING -p udp -m udp --dport 9999 -j MARK --set-mark 0x21
-A POSTROUTING -p tcp -j MARK --or-mark 0x100
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p udp -j MARK --or-mark 0x2
-A INPUT -p udp -j DROP
-A FORWARD -m mark --mark 0x4015 -j MARK --set-xmark 0x1/0xffff0000
-A FORWARD -j ACCEPT
COMMIT
`;

/** One TRACE line in the fields both sides show. */
interface Line {
  prefix: string;
  fields: string;
}

/** The devices of a line: IN, OUT, and PHYSIN, PHYSOUT as nf_log prints them (the bridge ports, unless the hook's own devices); '?' where the kernel's record cannot tell. */
interface Devs {
  in: string;
  out: string;
  physin: string;
  physout: string;
}

function fieldsOf(d: Devs, mark: number, len: number, tos: number, ttl: number, src: string, dst: string, sport: number, dport: number): string {
  return `IN=${d.in} OUT=${d.out} PHYSIN=${d.physin} PHYSOUT=${d.physout} MARK=0x${mark.toString(16)} LEN=${len} TOS=0x${tos.toString(16).padStart(2, '0')} TTL=${ttl} SRC=${src} DST=${dst} SPT=${sport} DPT=${dport}`;
}

/**
 * The TRACE lines of a pcap of LINKTYPE_NFLOG records (tcpdump -i nflog:0):
 * per record its nflog TLVs (host byte order lengths and types), the prefix
 * (NFULA_PREFIX 10), the mark (NFULA_MARK 2, big endian, absent when 0),
 * the devices (NFULA_IFINDEX_INDEV 4, _OUTDEV 5, _PHYSINDEV 6, _PHYSOUTDEV
 * 7: ifindexes, named by `names`) and the IPv4 packet (NFULA_PAYLOAD 9), by
 * the packet's IP ID (IPv6: its flow label; with `key` sport: its source port), the
 * packet of each key's first record into `firsts`. nfnetlink_log gives a physical device only with its
 * hook device (__build_packet_message()), where nf_log_syslog prints it
 * whenever it differs from that device: without one it is '?'.
 */
function nflogLines(file: string, names: ReadonlyMap<number, string>, firsts?: Map<number, Uint8Array>, key: 'id' | 'sport' = 'id'): Map<number, Line[]> {
  const b = readFileSync(file);
  const out = new Map<number, Line[]>();
  if (b.readUInt32LE(0) !== 0xa1b2c3d4 || b.readUInt32LE(20) !== 239) throw new Error(`${file}: not a little-endian LINKTYPE_NFLOG pcap`);
  for (let at = 24; at + 16 <= b.length; ) {
    const caplen = b.readUInt32LE(at + 8);
    const rec = b.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    let prefix = '';
    let mark = 0;
    let ip: Buffer | undefined;
    const dev = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let t = 4; t + 4 <= rec.length; ) {
      const len = rec.readUInt16LE(t);
      const type = rec.readUInt16LE(t + 2) & 0x7fff;
      if (len < 4) break;
      const v = rec.subarray(t + 4, t + len);
      if (type === 10) prefix = v.toString('latin1').replace(/\0.*$/s, '').trim();
      else if (type === 2) mark = v.readUInt32BE(0);
      else if (type === 9) ip = v;
      else if (type >= 4 && type <= 7) dev[type] = v.readUInt32BE(0);
      t += (len + 3) & ~3;
    }
    if (!prefix.startsWith('TRACE: ') || !ip) continue;
    const name = (i: number) => (i === 0 ? '' : names.get(i) ?? `#${i}`);
    const phys = (hookDev: number, physDev: number) => (hookDev === 0 ? '?' : physDev !== 0 && physDev !== hookDev ? name(physDev) : '');
    const devs = { in: name(dev[4]!), out: name(dev[5]!), physin: phys(dev[4]!, dev[6]!), physout: phys(dev[5]!, dev[7]!) };
    let line: Line;
    let id: number;
    if (ip[0]! >> 4 === 6) {
      // IPv6 without extension headers: traffic class, hop limit, addresses as %pI6 prints them; keyed by flow label
      const addr = (o: number) => Array.from({ length: 8 }, (_, k) => ip!.readUInt16BE(o + 2 * k).toString(16).padStart(4, '0')).join(':');
      const tc = ((ip[0]! & 15) << 4) | (ip[1]! >> 4);
      id = ((ip[1]! & 15) << 16) | ip.readUInt16BE(2);
      const ports = ip[6] === 6 || ip[6] === 17;
      line = { prefix, fields: fieldsOf(devs, mark, ip.readUInt16BE(4) + 40, tc, ip[7]!, addr(8), addr(24), ports ? ip.readUInt16BE(40) : 0, ports ? ip.readUInt16BE(42) : 0) };
    } else {
      const hl = (ip[0]! & 15) * 4;
      const addr = (o: number) => `${ip![o]}.${ip![o + 1]}.${ip![o + 2]}.${ip![o + 3]}`;
      id = ip.readUInt16BE(key === 'id' ? 4 : hl);
      // the LOG body prints the TOS byte as TOS (IPTOS_TOS_MASK) and PREC (IPTOS_PREC_MASK), not the low bit
      const ports = ip[9] === 6 || ip[9] === 17;
      line = { prefix, fields: fieldsOf(devs, mark, ip.readUInt16BE(2), ip[1]! & 0xfe, ip[8]!, addr(12), addr(16), ports ? ip.readUInt16BE(hl) : 0, ports ? ip.readUInt16BE(hl + 2) : 0) };
    }
    out.set(id, [...(out.get(id) ?? []), line]);
    if (firsts && !firsts.has(id)) firsts.set(id, Uint8Array.from(ip));
  }
  return out;
}

/** The same fields of an `nfvm trace` TRACE line (its LOG body; the TOS byte is TOS | PREC), a physical device '?' where the kernel's line (`kernel`) has it so. */
function nfvmLine(line: string, kernel: Line | undefined): Line {
  const m = /^(TRACE: \S+) (.*)$/.exec(line);
  if (!m) throw new Error(`not a TRACE line: ${line}`);
  const f = (k: string) => new RegExp(`(?:^| )${k}=(\\S*)`).exec(m[2]!)?.[1];
  const unknown = (k: string) => kernel !== undefined && kernel.fields.includes(` ${k}=? `);
  const devs = { in: f('IN') ?? '', out: f('OUT') ?? '', physin: unknown('PHYSIN') ? '?' : f('PHYSIN') ?? '', physout: unknown('PHYSOUT') ? '?' : f('PHYSOUT') ?? '' };
  return { prefix: m[1]!, fields: fieldsOf(devs, Number(f('MARK') ?? 0), Number(f('LEN')), f('TC') !== undefined ? Number(f('TC')) : Number(f('TOS')) | Number(f('PREC')), Number(f('TTL') ?? f('HOPLIMIT')), f('SRC')!, f('DST')!, Number(f('SPT') ?? 0), Number(f('DPT') ?? 0)) };
}

/**
 * Runs `send` while `tcpdump -i nflog:0` in namespace `node` writes what nfnetlink_log's group 0 gets to `log`.
 * The frames go out back to back and each draws dozens of TRACE messages: a 4 MiB socket buffer (-B) keeps
 * a tcpdump slowed by a loaded machine from losing some (a kube-proxy case once got 14 packets' traces of 16).
 */
async function captureNflog(node: string, log: string, send: () => Promise<void>): Promise<void> {
  const dump = spawn('ip', ['netns', 'exec', node, 'tcpdump', '-i', 'nflog:0', '-B', '4096', '-U', '-w', log], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((r) => dump.on('exit', r));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    dump.on('exit', () => reject(new Error(`tcpdump -i nflog:0: ${err}`)));
  });
  try {
    await send();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    dump.kill('SIGINT');
    await exited;
  }
}

/**
 * The frames of `specs`, sent from the sender into a fresh node namespace
 * with `rules` loaded (routed: senderForwardingTopology; bridged:
 * bridgeTopology with br_netfilter, the sender on port eth0): the kernel's
 * TRACE lines by IP ID, and the node's snapshot.
 */
async function kernelTrace(tag: string, rules: string, specs: readonly string[], topo: 'routed' | 'bridged' | 'routed6' = 'routed', setup?: (node: string) => void): Promise<{ frames: Uint8Array[]; kernel: Map<number, Line[]>; snap: string; conntrack: string[]; counters: Map<string, KernelCounter> }> {
  const frames = specs.map((s) => encodeSpec(parseSpec(s)).data);
  const pcap = join(tmp, `${tag}.pcap`);
  writeFileSync(pcap, writePcap(frames.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
  const suffix = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
  const ns = { s: `nfvm-trs-${suffix}`, n: `nfvm-trn-${suffix}`, b: `nfvm-trb-${suffix}` };
  const log = join(tmp, `${tag}-nflog.pcap`);
  const snap = join(tmp, `${tag}-snap`);
  try {
    if (topo === 'routed') senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
    else if (topo === 'routed6') senderForwardingTopology6(ns, { sender: MAC.sender, eth0: MAC.node });
    else bridgeTopology({ a: ns.s, n: ns.n, b: ns.b }, { a: MAC.sender, b: MAC.b, br0: MAC.node, eth0: MAC.eth0, eth1: MAC.eth1 });
    // x_tables' TRACE logs through the namespace's nf_log backend: nfnetlink_log, group 0
    setup?.(ns.n);
    const six = topo === 'routed6';
    nsSh(ns.n, `sysctl -qw net.netfilter.nf_log.${six ? 10 : 2}=nfnetlink_log`);
    const tool = six ? 'ip6tables' : 'iptables';
    const load = await run('ip', ['netns', 'exec', ns.n, `${tool}-legacy-restore`], rules);
    if (load.code !== 0 || load.stderr !== '') throw new Error(`${tool}-legacy-restore: ${load.stderr}\n${rules}`);
    captureSnapshot(snap, nsSnapshotRunner(ns.n));
    writeFileSync(join(snap, `${tool}-save.txt`), `${saveHeader('legacy')}${rules}`);
    await captureNflog(ns.n, log, async () => {
      const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '--intf1=veth0', pcap]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
    });
    // the connections the frames left (`conntrack -L -o extended`; none listed when conntrack never loaded)
    const ct = await run('ip', ['netns', 'exec', ns.n, 'conntrack', '-L', '-f', six ? 'ipv6' : 'ipv4', '-o', 'extended']);
    if (ct.code !== 0) throw new Error(`conntrack -L: ${ct.stderr}`);
    const conntrack = ct.stdout.split('\n').filter((l) => l.trim() !== '');
    const save = await run('ip', ['netns', 'exec', ns.n, `${tool}-legacy-save`, '-c']);
    const counters = flattenCounters(parseRestore(save.stdout, { counters: true, family: six ? 'ip6' : 'ip' }), true);
    const links = JSON.parse(readFileSync(join(snap, 'ip-link.json'), 'utf8')) as { ifindex: number; ifname: string }[];
    return { frames, kernel: nflogLines(log, new Map(links.map((l) => [l.ifindex, l.ifname]))), snap, conntrack, counters };
  } finally {
    netnsDel(ns.s);
    netnsDel(ns.n);
    if (topo === 'bridged') netnsDel(ns.b);
  }
}

/** Frame `i` of a capture as `nfvm replay` reads it: 1 µs after the one before, from second 1000. */
function frameAt(data: Uint8Array, i: number): Frame {
  return { data, origLen: data.length, tsSec: 1000, tsNsec: i * 1000, linktype: LINKTYPE_ETHERNET, ifId: 0, ifName: '', section: 0, offset: 0, flags: 0, comment: '' } as Frame;
}

/** The TRACE lines `nfvm trace` gives each frame on the snapshot's node, but those of the TRACE rule itself. */
function nfvmTrace(snap: string, frames: readonly Uint8Array[], engine: 'vm' | 'reference', conntrack?: string[], counters?: Map<string, KernelCounter>, family: 'ip' | 'ip6' = 'ip'): string[][] {
  const model = buildNodeModel(readSnapshot(snap), { engine });
  model.setTrace(true);
  const pkt = new Packet();
  const lines = frames.map((data, i) => {
    resetMeta(pkt);
    loadFrame(pkt, frameAt(data, i));
    model.captureCt(pkt);
    const r = model.receive(pkt, 'eth0', { now: 1000e9 + i * 1000 });
    // the kernel logs from the rule after the one whose TRACE target set nf_trace; nfvm traces every rule
    return r.steps.flatMap((s) => (s.kind === 'trace' && !s.rule.includes('-j TRACE') ? [s.line] : []));
  });
  // the conntrack table as `conntrack -L -o extended` lists it, at the last frame
  const ctm = model.conntrackModule;
  if (conntrack && ctm) conntrack.push(...conntrackList(ctm.ct, 1000e9 + frames.length * 1000, true).filter((l) => l.startsWith(family === 'ip' ? 'ipv4' : 'ipv6')));
  // every rule's and policy's counters, as iptables-save -c prints them
  if (counters) for (const [k, v] of flattenCounters(model.rulesetWithCounters(family)!, true)) counters.set(k, v);
  return lines;
}

/**
 * `conntrack -L` lines with a port the SNAT range 2000-2010 gave made
 * generic: the kernel picks it at random for a source NAT whose original
 * port is out of the range (nf_nat_l4proto_unique_tuple(): get_random_u16()
 * for NF_NAT_MANIP_SRC), nfvm with its seeded generator.
 */
function natRange(lines: readonly string[]): string[] {
  return lines.map((l) => l.replace(/ dport=20(?:0\d|10) /, ' dport=2000-2010 '));
}

/** nfvm's lines of a frame in the kernel's fields, line by line against the kernel's (`kernel`). */
function asKernel(mine: readonly string[], kernel: readonly Line[] | undefined): Line[] {
  return mine.map((l, i) => nfvmLine(l, kernel?.[i]));
}

/** What the runs of one test agreed on, summed. */
interface Agreed {
  lines: number;
  ct: { agree: number; total: number };
  tally: { counters: number; agree: number; nonzero: number };
}

const agreed = (): Agreed => ({ lines: 0, ct: { agree: 0, total: 0 }, tally: { counters: 0, agree: 0, nonzero: 0 } });

const summary = (a: Agreed): string =>
  `${a.lines} lines agree (both engines); conntrack -L: ${a.ct.agree}/${a.ct.total} entries agree; counters: ${a.tally.agree}/${a.tally.counters} agree (${a.tally.nonzero} non-zero)`;

/**
 * Both engines' TRACE lines of every frame (keyed from `first`) against the
 * kernel's; with `run`'s counters and conntrack table, those too. `label`
 * heads a failure (the ruleset, for a generated one).
 */
function expectAgreement(
  k: { frames: readonly Uint8Array[]; kernel: Map<number, Line[]>; snap: string; conntrack?: string[]; counters?: Map<string, KernelCounter> },
  specs: readonly string[], first: number, into: Agreed, o: { label?: string; family?: 'ip' | 'ip6'; state?: boolean } = {},
): void {
  for (const engine of ['vm', 'reference'] as const) {
    const mineCt: string[] = [];
    const mineCounters = new Map<string, KernelCounter>();
    nfvmTrace(k.snap, k.frames, engine, mineCt, mineCounters, o.family).forEach((mine, i) => {
      expect(asKernel(mine, k.kernel.get(first + i)), `${engine}: frame ${i + 1}: ${specs[i]}${o.label ? `\n${o.label}` : ''}`).toEqual(k.kernel.get(first + i) ?? []);
      into.lines += mine.length;
    });
    if (!o.state) continue;
    const c = compareConntrack(natRange(k.conntrack!), natRange(mineCt));
    expect(c.diffs, `${engine}: conntrack -L\n${o.label ?? ''}`).toEqual([]);
    into.ct.agree += c.agree;
    into.ct.total += c.total;
    expect(counterDiffs(k.counters!, mineCounters, into.tally), `${engine}: ${o.family === 'ip6' ? 'ip6tables' : 'iptables'}-save -c\n${o.label ?? ''}`).toEqual([]);
  }
}

/** `n` rulesets of generator `mode` (seeded), each in a fresh namespace pair with its frames; what agreed. */
async function generatedRuns(mode: 'stateless' | 'stateful' | 'firewall', six: boolean, n: number, seed: number, first: number): Promise<Agreed> {
  const into = agreed();
  for (const [r, rules] of fc.sample(genRules(mode, six), { numRuns: n, seed }).entries()) {
    const specs = mode === 'stateless' ? genSpecs(first) : flowSpecs(first, six);
    const k = await kernelTrace(`${mode}${six ? '6' : ''}-${r}`, rules, specs, six ? 'routed6' : 'routed');
    expectAgreement(k, specs, first, into, { label: rules, family: six ? 'ip6' : 'ip', state: mode !== 'stateless' });
  }
  return into;
}

/**
 * A generated ruleset: mangle, nat and filter chains of rules with address,
 * port, mark, TOS, DSCP, TTL and length matches and targets that change the
 * mark, TOS, DSCP and TTL, save and restore the connection mark, jump, go
 * to and return; delivered packets are dropped in INPUT (the node stays
 * silent), TTLs stay above 1 (no time exceeded).
 */
const genRules = (mode: 'stateless' | 'stateful' | 'firewall', six = false) => fc.gen().map((g) => {
  const stateful = mode !== 'stateless';
  const firewall = mode === 'firewall';
  // the IPv6 words of the same rules (senderForwardingTopology6's addresses; hl for ttl, HL for TTL, ICMPv6)
  const W = six
    ? { sender: '2001:db8::2/128', senders: '2001:db8::/64', servers: '2001:db8:9::/64', node: '2001:db8::1/128', ttl: 'hl', TTL: 'HL', icmp: '-p ipv6-icmp -m icmp6 --icmpv6-type echo-request', icmpAny: '-p ipv6-icmp',
      origdst: ['2001:db8:9::5', '2001:db8:9::7', '2001:db8::1'], dstRange: '2001:db8:9::5-2001:db8:9::7', srcRange: '2001:db8::1-2001:db8::2', prohibited: 'icmp6-adm-prohibited',
      dnat: ['[2001:db8:9::9]:80', '2001:db8:9::8'], snat: ['2001:db8::1', '[2001:db8::1]:2000-2010'], snatFrom: '2001:db8:9::/64' }
    : { sender: '10.0.0.2/32', senders: '10.0.0.0/24', servers: '10.9.0.0/24', node: '10.0.0.1/32', ttl: 'ttl', TTL: 'TTL', icmp: '-p icmp -m icmp --icmp-type echo-request', icmpAny: '-p icmp',
      origdst: ['10.9.0.5', '10.9.0.7', '10.0.0.1'], dstRange: '10.9.0.5-10.9.0.7', srcRange: '10.0.0.1-10.0.0.2', prohibited: 'icmp-host-prohibited',
      dnat: ['10.9.0.9:80', '10.9.0.8'], snat: ['10.0.0.1', '10.0.0.1:2000-2010'], snatFrom: '10.9.0.0/24' };
  const pick = <T>(xs: readonly T[]): T => xs[g(fc.nat, { max: xs.length - 1 })]!;
  const hex = (max: number) => `0x${g(fc.nat, { max }).toString(16)}`;
  // at most one address or protocol part (iptables takes each once) and an extension match
  const ipPart = (): string => pick([
    '-p udp', '-p tcp', `-p udp -m udp --dport ${pick(['9999', '7000:8000', '1:7776'])}`, `-p tcp -m tcp --dport ${pick(['8080', '22:9000'])}`,
    `-s ${W.sender}`, `! -s ${W.senders}`, `-d ${W.servers}`, `-d ${W.node}`, '',
    ...(firewall ? [
      '-p tcp -m tcp --tcp-flags SYN,ACK SYN', '-p tcp -m tcp ! --syn', W.icmp, W.icmpAny, '-p tcp -m multiport --dports 80,443,8080',
      '-p udp -m multiport --ports 53,7500', '-p tcp -m tcp --tcp-flags ACK,PSH ACK,PSH',
    ] : []),
  ]);
  const extMatch = (): string => pick([
    `-m mark --mark ${hex(255)}/${hex(255)}`, `-m mark ! --mark ${hex(15)}`, `-m tos --tos ${pick(['0x10', '0x08', '0x00'])}/0x1e`,
    `-m ${W.ttl} --${W.ttl}-lt ${g(fc.integer, { min: 5, max: 70 })}`, `-m ${W.ttl} --${W.ttl}-gt ${g(fc.integer, { min: 5, max: 70 })}`, `-m dscp --dscp ${hex(63)}`,
    `-m length --length ${g(fc.integer, { min: 20, max: 40 })}:${g(fc.integer, { min: 40, max: 100 })}`, '',
    ...(stateful ? [
      `-m conntrack --ctstate ${pick(['NEW', 'ESTABLISHED', 'RELATED,ESTABLISHED', 'INVALID', 'NEW,ESTABLISHED'])}`, `-m state ! --state ${pick(['NEW', 'ESTABLISHED'])}`,
      `-m conntrack --ctdir ${pick(['ORIGINAL', 'REPLY'])}`, `-m connmark --mark ${hex(255)}/${hex(255)}`, `-m conntrack --ctstatus ${pick(['SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'NONE'])}`,
      `-m conntrack --ctorigdst ${pick(W.origdst)}`,
    ] : []),
    ...(firewall ? [
      `-m iprange --dst-range ${W.dstRange}`, `-m iprange ! --src-range ${W.srcRange}`, `-m addrtype --dst-type ${pick(['LOCAL', 'UNICAST'])}`,
      '-m addrtype --src-type LOCAL', '-m pkttype --pkt-type unicast', '-m conntrack --ctstate UNTRACKED', '-m comment --comment "a rule"',
    ] : []),
  ]);
  const target = (table: string, user: boolean, chain: string): string => {
    const mangle = table === 'mangle';
    const t = [
      `-j MARK --set-xmark ${hex(0xffff)}/${hex(0xffff)}`, `-j MARK --set-mark ${hex(255)}`, `-j MARK --or-mark ${hex(255)}`, `-j MARK --and-mark ${hex(255)}`, '',
      ...(mangle ? [`-j TOS --set-tos ${hex(255)}/${hex(255)}`, `-j DSCP --set-dscp ${hex(63)}`, `-j ${W.TTL} --${W.ttl}-set ${g(fc.integer, { min: 8, max: 90 })}`,
        `-j ${W.TTL} --${W.ttl}-inc ${g(fc.integer, { min: 1, max: 3 })}`, `-j ${W.TTL} --${W.ttl}-dec ${g(fc.integer, { min: 1, max: 2 })}`, '-j CONNMARK --save-mark', '-j CONNMARK --restore-mark'] : []),
      ...(chain === 'U1' ? ['-j U2', '-g U2', '-j RETURN'] : chain === 'U2' ? ['-j RETURN'] : ['-j U1', '-g U1', '-j U2']),
      ...(user ? [] : ['-j ACCEPT']),
      ...(stateful ? [`-j CONNMARK --set-xmark ${hex(255)}/${hex(255)}`, ...(table === 'nat' ? natTarget(chain) : [])] : []),
      ...(firewall && table === 'filter' ? ['-j DROP', '-j REJECT', '-p tcp -j REJECT --reject-with tcp-reset', `-j REJECT --reject-with ${W.prohibited}`] : []),
      ...(firewall && mangle ? ['-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200'] : []),
    ];
    return pick(t);
  };
  // NAT in the chains that take it: DNAT to the servers the frames also come back from, SNAT and MASQUERADE out eth0
  const natTarget = (chain: string): string[] =>
    chain === 'PREROUTING' ? [`-p tcp -m tcp --dport 8080 -j DNAT --to-destination ${W.dnat[0]}`, `-p udp -m udp --dport 7500 -j DNAT --to-destination ${W.dnat[1]}`]
      : chain === 'POSTROUTING' ? ['-o eth0 -j MASQUERADE', `-p udp -j SNAT --to-source ${W.snat[0]}`, `-s ${W.snatFrom} -p udp -j SNAT --to-source ${W.snat[1]}`]
        : [];
  const chains: Record<string, string[]> = {
    mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'], nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  };
  const text = ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '-A PREROUTING -i eth0 -j TRACE'];
  // rules that keep flows out of conntrack, after the TRACE rule (so traced)
  if (firewall) for (let i = g(fc.nat, { max: 2 }); i > 0; i--) text.push(`-A PREROUTING ${pick(['-p udp -m udp --dport 53', W.icmpAny, `-d ${six ? '2001:db8:9::6/128' : '10.9.0.6/32'}`, '-p tcp -m tcp --dport 443'])} -j CT --notrack`);
  text.push('COMMIT');
  for (const [table, builtins] of Object.entries(chains)) {
    text.push(`*${table}`, ...builtins.map((c) => `:${c} ${table === 'filter' && c === 'INPUT' ? 'DROP' : 'ACCEPT'} [0:0]`), ':U1 - [0:0]', ':U2 - [0:0]');
    for (const c of [...builtins.filter((b) => b !== 'OUTPUT'), 'U1', 'U2']) {
      const n = g(fc.nat, { max: c.startsWith('U') ? 4 : 6 });
      for (let i = 0; i < n; i++) {
        // a NAT target comes with its own protocol or address part
        const t = target(table, c.startsWith('U'), c);
        const words = [/^-[pso] /.test(t) ? '' : ipPart(), extMatch(), t].filter((x) => x !== '');
        text.push(`-A ${c} ${words.join(' ')}`.trimEnd());
      }
    }
    text.push('COMMIT');
  }
  return `${text.join('\n')}\n`;
});

/** Generated frames: UDP and TCP to the node and through it, with assorted TOS, TTL and ports; IP IDs from `id`. */
function genSpecs(id: number): string[] {
  const dsts = ['10.0.0.1:9999', '10.0.0.1:7777', '10.9.0.5:8080', '10.9.0.6:7500', '10.9.0.7:53'];
  return dsts.flatMap((d, i) => ['udp', 'tcp'].map((p, j) => {
    const k = 2 * i + j;
    return `${p} 10.0.0.2:${41000 + k} > ${d}${p === 'udp' ? ' len 3' : ' syn'} ipid ${id + k} tos ${[0, 0x10, 0x08, 0x28, 0x04][i]} ttl ${[64, 30, 9, 64, 12][(i + j) % 5]} src-mac ${MAC.sender} dst-mac ${MAC.node}`;
  }));
}

/**
 * Generated two-sided flows through the node (the sender plays both ends:
 * 10.9.0.0/16 is routed back out eth0): TCP handshakes with consistent
 * sequence numbers and data, UDP requests and answers, each answered from
 * the original server and from the DNAT targets of the generated rules
 * (a reply when the rule applied, a new flow when not); IP IDs from `id`.
 */
function flowSpecs(id: number, six = false): string[] {
  const out: string[] = [];
  // IPv6 frames are told apart by their flow label (no IP ID)
  const add = (s: string) => out.push(`${s} ${six ? 'flowlabel' : 'ipid'} ${id + out.length} src-mac ${MAC.sender} dst-mac ${MAC.node}`);
  const clientHost = six ? '2001:db8::2' : '10.0.0.2';
  const at = (host: string, port: number) => (six ? `[${host}]:${port}` : `${host}:${port}`);
  const srv = (n: number) => (six ? `2001:db8:9::${n}` : `10.9.0.${n}`);
  const tcp = (c: number, server: string, port: number, answerFrom: readonly string[]) => {
    add(`tcp ${at(clientHost, c)} > ${at(server, port)} syn seq 1000`);
    for (const a of answerFrom) add(`tcp ${a} > ${at(clientHost, c)} syn,ack seq 5000 ackseq 1001`);
    add(`tcp ${at(clientHost, c)} > ${at(server, port)} ack seq 1001 ackseq 5001`);
    add(`tcp ${at(clientHost, c)} > ${at(server, port)} ack,psh seq 1001 ackseq 5001 len 10`);
    for (const a of answerFrom) add(`tcp ${a} > ${at(clientHost, c)} ack seq 5001 ackseq 1011`);
  };
  const udp = (c: number, server: string, port: number, answerFrom: readonly string[]) => {
    add(`udp ${at(clientHost, c)} > ${at(server, port)} len 5`);
    for (const a of answerFrom) add(`udp ${a} > ${at(clientHost, c)} len 7`);
    add(`udp ${at(clientHost, c)} > ${at(server, port)} len 9`);
  };
  tcp(42000, srv(5), 8080, [at(srv(5), 8080), at(srv(9), 80)]);
  tcp(42001, srv(6), 443, [at(srv(6), 443)]);
  udp(42002, srv(7), 7500, [at(srv(7), 7500), at(srv(8), 7500)]);
  udp(42003, srv(6), 53, [at(srv(6), 53)]);
  tcp(42004, six ? '2001:db8::1' : '10.0.0.1', 22, []);
  const icmp = six ? 'icmpv6' : 'icmp';
  add(`${icmp} ${clientHost} > ${srv(5)} echo-request id 7 seq 1`);
  add(`${icmp} ${srv(5)} > ${clientHost} echo-reply id 7 seq 1`);
  add(`${icmp} ${clientHost} > ${srv(5)} echo-request id 7 seq 2`);
  return out;
}

describe.skipIf(SKIP)('TRACE lines against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('each rule is logged with the packet as the rules before it left it (mark, TOS, DSCP, TTL, DNAT), both engines', async () => {
    const k = await kernelTrace('fixed', RULES, SPECS);
    expect(k.kernel.size).toBe(SPECS.length);
    const a = agreed();
    expectAgreement(k, SPECS, 11, a);
    console.log(`TRACE lines against the kernel: ${a.lines} lines of ${SPECS.length} frames agree (both engines)`);
  }, 60_000);

  const N = runs(6);
  it(`${N} generated rulesets: every TRACE line of every frame, both engines`, async () => {
    const a = await generatedRuns('stateless', false, N, 20261206, 100);
    console.log(`TRACE lines against the kernel: ${N} generated rulesets, ${a.lines} lines agree (both engines)`);
  }, scaled(300_000));

  const M = runs(6);
  it(`${M} generated stateful rulesets: two-sided flows with conntrack states, connection marks and NAT, every TRACE line, both engines`, async () => {
    const a = await generatedRuns('stateful', false, M, 20261207, 200);
    console.log(`TRACE lines against the kernel: ${M} generated stateful rulesets, ${summary(a)}`);
  }, scaled(300_000));

  it('bridged frames (br_netfilter): IN, OUT, PHYSIN and PHYSOUT of every line, both engines', async () => {
    const rules = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -j TRACE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m physdev --physdev-in eth0 -j MARK --set-mark 0x1
-A FORWARD -m physdev --physdev-out eth1 -j MARK --or-mark 0x2
-A POSTROUTING -m physdev --physdev-is-bridged -j MARK --or-mark 0x4
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m physdev --physdev-in eth0 --physdev-out eth1 -j ACCEPT
COMMIT
`;
    const specs = [
      `udp 10.0.0.2:40000 > 10.0.0.3:7777 len 3 ipid 301 src-mac ${MAC.sender} dst-mac ${MAC.b}`,
      `tcp 10.0.0.2:40001 > 10.0.0.3:80 syn ipid 302 src-mac ${MAC.sender} dst-mac ${MAC.b}`,
      `udp 10.0.0.2:40002 > 10.0.0.1:9999 len 3 ipid 303 src-mac ${MAC.sender} dst-mac ${MAC.node}`,
    ];
    const k = await kernelTrace('bridged', rules, specs, 'bridged');
    expect(k.kernel.size).toBe(specs.length);
    const a = agreed();
    expectAgreement(k, specs, 301, a);
    console.log(`TRACE lines of bridged frames against the kernel: ${a.lines} lines agree (both engines)`);
  }, 60_000);

  it('IPv6 (ip6tables): mark, traffic class, DSCP and hop limit as each rule met them, both engines', async () => {
    const rules = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i eth0 -j TRACE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp -j MARK --set-mark 0x5
-A PREROUTING -p udp -j TOS --set-tos 0x10
-A PREROUTING -p tcp -j DSCP --set-dscp 0x0a
-A PREROUTING -j HL --hl-set 20
-A PREROUTING -m hl --hl-eq 20 -j MARK --or-mark 0x10
-A FORWARD -j HL --hl-dec 2
-A POSTROUTING -m mark --mark 0x15 -j MARK --set-xmark 0x4000/0x0
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p udp -j MARK --or-mark 0x100
COMMIT
`;
    const specs = [
      'udp [2001:db8::2]:40100 > [2001:db8:9::5]:7777 len 3',
      'tcp [2001:db8::2]:40101 > [2001:db8:9::6]:80 syn',
      'udp [2001:db8::2]:40102 > [2001:db8::1]:9999 len 3',
    ].map((x, i) => `${x} flowlabel ${40100 + i} src-mac ${MAC.sender} dst-mac ${MAC.node}`);
    const k = await kernelTrace('six', rules, specs, 'routed6');
    expect(k.kernel.size).toBe(specs.length);
    const a = agreed();
    expectAgreement(k, specs, 40100, a, { family: 'ip6' });
    console.log(`TRACE lines of IPv6 frames against the kernel: ${a.lines} lines agree (both engines)`);
  }, 60_000);

  it('datagrams the node sends (OUTPUT, a DNAT there, POSTROUTING), both engines', async () => {
    const rules = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p udp -j TRACE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p udp -j MARK --set-mark 0x5
-A OUTPUT -p udp -m udp --dport 7000 -j TOS --set-tos 0x10
-A OUTPUT -m owner --uid-owner 0 -j MARK --or-mark 0x100
-A OUTPUT -j TTL --ttl-set 33
-A POSTROUTING -m mark --mark 0x105 -j MARK --set-xmark 0x1/0x1
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p udp -m udp --dport 7000 -j DNAT --to-destination 10.9.0.9:7001
-A OUTPUT -p udp -j MARK --or-mark 0x20
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m mark --mark 0x124 -j MARK --or-mark 0x1000
COMMIT
`;
    const suffix = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
    const ns = { s: `nfvm-trs-${suffix}`, n: `nfvm-trn-${suffix}` };
    const log = join(tmp, 'local-nflog.pcap');
    const snap = join(tmp, 'local-snap');
    const firsts = new Map<number, Uint8Array>();
    let kernel: Map<number, Line[]>;
    try {
      senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
      nsSh(ns.n, 'sysctl -qw net.netfilter.nf_log.2=nfnetlink_log');
      const load = await run('ip', ['netns', 'exec', ns.n, 'iptables-legacy-restore'], rules);
      if (load.code !== 0 || load.stderr !== '') throw new Error(`iptables-legacy-restore: ${load.stderr}`);
      captureSnapshot(snap, nsSnapshotRunner(ns.n));
      writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader('legacy')}${rules}`);
      await captureNflog(ns.n, log, async () => {
        // three datagrams from the node (bash's /dev/udp: a socket each, its own source port)
        const send = await run('ip', ['netns', 'exec', ns.n, 'bash', '-c', 'for d in 10.9.0.5/7000 10.9.0.6/8000 10.0.0.2/9; do echo hi > /dev/udp/$d; done']);
        if (send.code !== 0) throw new Error(`bash /dev/udp: ${send.stderr}`);
      });
      const links = JSON.parse(readFileSync(join(snap, 'ip-link.json'), 'utf8')) as { ifindex: number; ifname: string }[];
      kernel = nflogLines(log, new Map(links.map((l) => [l.ifindex, l.ifname])), firsts, 'sport');
    } finally {
      netnsDel(ns.s);
      netnsDel(ns.n);
    }
    expect(kernel.size).toBe(3);
    let lines = 0;
    for (const engine of ['vm', 'reference'] as const) {
      const model = buildNodeModel(readSnapshot(snap), { engine });
      model.setTrace(true);
      for (const [sport, ip] of firsts) {
        // the datagram as the kernel logged it first (raw OUTPUT): its addresses, ports, ID and DF
        const a = (o: number) => `${ip[o]}.${ip[o + 1]}.${ip[o + 2]}.${ip[o + 3]}`;
        const df = (ip[6]! & 0x40) !== 0 ? ' df' : '';
        const spec = `udp ${a(12)}:${sport} > ${a(16)}:${(ip[22]! << 8) | ip[23]!} len ${((ip[24]! << 8) | ip[25]!) - 8} ipid ${(ip[4]! << 8) | ip[5]!}${df} ttl ${ip[8]} from local`;
        const r = model.send(specPacket(parseSpec(spec)));
        const mine = r.steps.flatMap((s) => (s.kind === 'trace' && !s.rule.includes('-j TRACE') ? [s.line] : []));
        expect(asKernel(mine, kernel.get(sport)), `${engine}: ${spec}`).toEqual(kernel.get(sport));
        lines += mine.length;
      }
    }
    console.log(`TRACE lines of datagrams the node sends against the kernel: ${lines} lines agree (both engines)`);
  }, 60_000);

  const F = runs(6);
  it(`${F} generated firewall rulesets: TCP flags, multiport, iprange, addrtype, pkttype, NOTRACK, REJECT, TCPMSS, ICMP echo flows, every TRACE line, both engines`, async () => {
    const a = await generatedRuns('firewall', false, F, 20261208, 500);
    console.log(`TRACE lines against the kernel: ${F} generated firewall rulesets, ${summary(a)}`);
  }, scaled(300_000));

  it.each([['iptables', false], ['iptables', true], ['nftables', false]] as const)('a kube-proxy node (%s mode, NodePorts, externalTrafficPolicy Local %s): first packets to ClusterIPs and NodePorts, every TRACE line, both engines', async (mode, local) => {
    // one endpoint a Service: no statistic rule (the kernel's draws are its own)
    const o = { services: 12, endpoints: 1, mode, nodePorts: true, localTrafficPolicy: local };
    const files = kubeProxySnapshot(o);
    const svcs = kubeServices(o);
    // kube-proxy's rules as `nfvm gen kube-proxy` writes them, with a TRACE rule; the pods (10.128.0.0/9) are routed back to the sender
    const rules = `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -i eth0 -j TRACE\nCOMMIT\n${files.get('iptables-save.txt')!}`;
    const specs = svcs.slice(0, 8).flatMap((sv, i) => {
      const l4 = sv.proto === 'tcp' ? 'syn' : 'len 4';
      const one = [`${sv.proto} 10.0.0.2:${43000 + i} > ${sv.clusterIp}:${sv.port} ${l4}`];
      if (sv.nodePort !== undefined) one.push(`${sv.proto} 10.0.0.2:${43100 + i} > 10.0.0.1:${sv.nodePort} ${l4}`);
      return one;
    }).map((x, i) => `${x} ipid ${600 + i} src-mac ${MAC.sender} dst-mac ${MAC.node}`);
    const sets = files.get('ipset-save.txt');
    const k = await kernelTrace(`kube${mode[0]}${local ? 'l' : ''}`, rules, specs, 'routed', (n) => {
      nsSh(n, `ip route add ${CLUSTER_CIDR} via 10.0.0.2`);
      // nftables mode's verdict maps as ipsets (gen/kube-proxy.ts), loaded before the rules that name them
      if (sets !== undefined) {
        const r = spawnSync('ip', ['netns', 'exec', n, 'ipset', 'restore'], { input: sets, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`ipset restore: ${r.stderr}`);
      }
    });
    if (sets !== undefined) writeFileSync(join(k.snap, 'ipset-save.txt'), sets);
    expect(k.kernel.size).toBe(specs.length);
    const a = agreed();
    expectAgreement(k, specs, 600, a);
    console.log(`TRACE lines of a kube-proxy node (${mode} mode, externalTrafficPolicy Local ${local}) against the kernel: ${a.lines} lines of ${specs.length} first packets agree (both engines)`);
  }, 60_000);

  it('a kube-proxy node with three endpoints a Service: each kernel trace is one of the outcomes `trace --all-branches` lists (statistic random)', async () => {
    const o = { services: 10, endpoints: 3, mode: 'iptables' as const, nodePorts: true };
    const svcs = kubeServices(o);
    const rules = `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -i eth0 -j TRACE\nCOMMIT\n${kubeProxySnapshot(o).get('iptables-save.txt')!}`;
    // four connections to each of four Services: the kernel draws its own endpoints
    const specs = svcs.slice(0, 4).flatMap((sv, i) => [0, 1, 2, 3].map((k) => `${sv.proto} 10.0.0.2:${44000 + 10 * i + k} > ${sv.clusterIp}:${sv.port} ${sv.proto === 'tcp' ? 'syn' : 'len 4'}`))
      .map((x, i) => `${x} ipid ${700 + i} src-mac ${MAC.sender} dst-mac ${MAC.node}`);
    const { frames, kernel, snap } = await kernelTrace('kube3', rules, specs, 'routed', (n) => nsSh(n, `ip route add ${CLUSTER_CIDR} via 10.0.0.2`));
    expect(kernel.size).toBe(specs.length);
    const model = buildNodeModel(readSnapshot(snap), { engine: 'vm' });
    model.setTrace(true);
    const restore = model.checkpoint()!;
    const pkt = new Packet();
    let traced = 0;
    frames.forEach((data, i) => {
      const x = exploreBranches((chooser) => {
        restore();
        model.setChooser(chooser);
        try {
          resetMeta(pkt);
          loadFrame(pkt, frameAt(data, i));
          model.captureCt(pkt);
          return model.receive(pkt, 'eth0', { now: 1000e9 + i * 1000 });
        } finally {
          model.setChooser(null);
        }
      });
      expect(x.outcomes.length, specs[i]).toBe(3);
      const want = kernel.get(700 + i)!;
      const lines = (r: PathResult) => asKernel(r.steps.flatMap((st) => (st.kind === 'trace' && !st.rule.includes('-j TRACE') ? [st.line] : [])), want);
      const hit = x.outcomes.filter((out) => JSON.stringify(lines(out.result)) === JSON.stringify(want));
      expect(hit.length, `${specs[i]}: the kernel's trace is none of nfvm's outcomes`).toBe(1);
      expect(hit[0]!.probability).toBeCloseTo(1 / 3, 6);
      traced++;
    });
    console.log(`kube-proxy statistic ladder against the kernel: ${traced} kernel traces, each one of nfvm's 3 outcomes (1/3 each)`);
  }, 60_000);

  const S6 = runs(4);
  it.each(['stateful', 'firewall'] as const)(`${S6} generated IPv6 %s rulesets (ip6tables): two-sided flows, every TRACE line, the counters and the conntrack table, both engines`, async (mode) => {
    const a = await generatedRuns(mode, true, S6, mode === 'stateful' ? 20261209 : 20261210, 800);
    console.log(`TRACE lines against the kernel: ${S6} generated IPv6 ${mode} rulesets, ${summary(a)}`);
  }, scaled(300_000));
});
