/**
 * REJECT on bridged frames and on frames to the bridge's own address,
 * IPv4 and IPv6, against the running kernel (Linux 6.18): the bridge node
 * of ../shared/docs/kernel-oracle.md (br0 10.0.0.1/24 and 2001:db8::1/64
 * over eth0 and eth1, silent peers, static fdb entries and permanent
 * neighbours, bridge-nf-call-iptables and -ip6tables on). The answers take
 * the kernel's two ways out:
 *  - a TCP reset for a bridged frame (nf_send_reset / nf_send_reset6,
 *    net/ipv{4,6}/netfilter/nf_reject_ipv{4,6}.c) is built with the
 *    frame's own MACs swapped and handed to dev_queue_xmit() on the port
 *    it came in by: it meets no OUTPUT or POSTROUTING chain;
 *  - an ICMP or ICMPv6 error (icmp_send / icmpv6_send), and a reset for a
 *    frame to the node itself, leave through ip_local_out / ip6_local_out:
 *    OUTPUT, POSTROUTING, then br0.
 * Every counter of `iptables-legacy-save -c` and `ip6tables-legacy-save -c`
 * (OUTPUT and POSTROUTING included) is compared with a replay of the same
 * frames on a snapshot of the node, both engines, and every answer the
 * sending peer receives with the answers the model sent out of eth0: the
 * same addresses, protocol, ports, TCP flags, sequence numbers, ICMP type
 * and code and length (the IP ID and checksums the kernel fills itself are
 * left out).
 *
 * Root with iproute2, bridge, iptables-legacy, ip6tables-legacy, tcpreplay
 * and tcpdump; skips with a message otherwise (fails under CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bridgeTopology, counterDiffs, flattenCounters, kernelSkip, netnsDel, nsSnapshotRunner, run, type KernelCounter } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel, type EngineKind } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap } from '../../hooks/input/pcap.js';
import { LINKTYPE_ETHERNET, loadFrame, readCaptureFile } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { conntrackList } from '../../hooks/conntrack/print.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { formatIPv4, formatIPv6 } from '../../core/addr.js';

const TOOLS = ['ip', 'bridge', 'iptables-legacy-restore', 'iptables-legacy-save', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'tcpreplay', 'tcpdump'];
const SKIP = kernelSkip('REJECT on bridged frames against the kernel', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { a: `nfvm-rja-${id}`, n: `nfvm-rjn-${id}`, b: `nfvm-rjb-${id}` };
const MAC = { a: '02:00:00:00:00:0a', b: '02:00:00:00:00:0b', br0: '02:00:00:00:00:fe', eth0: '02:00:00:00:01:00', eth1: '02:00:00:00:01:01' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-brreject-'));

const RULES4 = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p tcp
-A OUTPUT -p icmp
-A POSTROUTING -p tcp
-A POSTROUTING -p icmp
-A POSTROUTING -m physdev --physdev-is-bridged
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset
-A FORWARD -p tcp --dport 80 -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j REJECT
-A FORWARD -p tcp --dport 443 -j REJECT --reject-with icmp-host-prohibited
-A OUTPUT -p tcp --tcp-flags RST RST
-A OUTPUT -p icmp
COMMIT
`;

const RULES6 = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p tcp
-A OUTPUT -p ipv6-icmp
-A POSTROUTING -p tcp
-A POSTROUTING -p ipv6-icmp
-A POSTROUTING -m physdev --physdev-is-bridged
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset
-A FORWARD -p tcp --dport 80 -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j REJECT
-A FORWARD -p tcp --dport 443 -j REJECT --reject-with icmp6-adm-prohibited
-A OUTPUT -p tcp --tcp-flags RST RST
-A OUTPUT -p ipv6-icmp
COMMIT
`;

/** Frames from the peer behind eth0: bridged to the peer behind eth1, and to the node. */
const FRAMES: readonly string[] = [
  `tcp 10.0.0.2:40000 > 10.0.0.3:80 syn seq 1000 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp 10.0.0.2:40001 > 10.0.0.3:80 seq 2000 ackseq 3000 len 20 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `udp 10.0.0.2:40002 > 10.0.0.3:53 len 12 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp 10.0.0.2:40003 > 10.0.0.3:443 syn seq 5 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp 10.0.0.2:40004 > 10.0.0.1:22 syn seq 77 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.br0}`,
  `tcp [2001:db8::a]:41000 > [2001:db8::b]:80 syn seq 1000 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp [2001:db8::a]:41001 > [2001:db8::b]:80 seq 2000 ackseq 3000 len 20 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `udp [2001:db8::a]:41002 > [2001:db8::b]:53 len 12 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp [2001:db8::a]:41003 > [2001:db8::b]:443 syn seq 5 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp [2001:db8::a]:41004 > [2001:db8::1]:22 syn seq 77 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.br0}`,
];

/** What identifies an answer: addresses, protocol, ports or ICMP type/code, TCP flags and numbers, length (not the IP ID or checksums). */
function summary(ip: Uint8Array): string {
  const v6 = ip[0]! >> 4 === 6;
  const l4 = v6 ? 40 : (ip[0]! & 15) * 4;
  const proto = v6 ? ip[6]! : ip[9]!;
  const src = v6 ? formatIPv6(ip, 8) : formatIPv4(ip, 12);
  const dst = v6 ? formatIPv6(ip, 24) : formatIPv4(ip, 16);
  const len = v6 ? 40 + ((ip[4]! << 8) | ip[5]!) : (ip[2]! << 8) | ip[3]!;
  const u16 = (o: number) => (ip[l4 + o]! << 8) | ip[l4 + o + 1]!;
  const u32 = (o: number) => ((ip[l4 + o]! << 24) | (ip[l4 + o + 1]! << 16) | (ip[l4 + o + 2]! << 8) | ip[l4 + o + 3]!) >>> 0;
  const ttl = v6 ? ip[7]! : ip[8]!;
  let what: string;
  if (proto === 6) what = `tcp ${u16(0)} > ${u16(2)} flags 0x${ip[l4 + 13]!.toString(16)} seq ${u32(4)} ack ${u32(8)} win ${u16(14)}`;
  else if (proto === 1 || proto === 58) what = `icmp type ${ip[l4]} code ${ip[l4 + 1]}`;
  else what = `proto ${proto}`;
  return `${src} > ${dst} ttl ${ttl} len ${len} ${what}`;
}

/**
 * A connection through the bridge, then a segment of it REJECTed with a
 * reset: nf_send_reset() calls nf_ct_set_closing() on the original's
 * conntrack (nf_conntrack_tcp_set_closing: CLOSE, its 10 s timeout).
 */
const EMPTY_MANGLE = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;
const CLOSING_RULES = `${EMPTY_MANGLE}*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp --tcp-flags PSH PSH -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED
COMMIT
`;
const CLOSING_FRAMES: readonly string[] = [
  `tcp 10.0.0.2:42000 > 10.0.0.3:8080 syn seq 1000 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp 10.0.0.3:8080 > 10.0.0.2:42000 syn,ack seq 9000 ackseq 1001 iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}`,
  `tcp 10.0.0.2:42000 > 10.0.0.3:8080 ack seq 1001 ackseq 9001 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
  `tcp 10.0.0.2:42000 > 10.0.0.3:8080 ack,psh seq 1001 ackseq 9001 len 10 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}`,
];

describe.skipIf(SKIP)('REJECT on bridged frames against the kernel', () => {
  beforeAll(() => bridgeTopology(NS, MAC, { ipv6: true }), 60_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  interface KernelRun { snap: string; pcap: string; frames: readonly string[]; counters: Map<string, KernelCounter>; answers: string[]; conntrack: string[] }

  /** Loads the rules, sends the frames (each by the peer its `iif` faces) and reads back counters, the answers peer a received, and `conntrack -L`. */
  async function kernelRun(name: string, rules4: string, rules6: string, frames: readonly string[]): Promise<KernelRun> {
    for (const [tool, text] of [['iptables-legacy-restore', rules4], ['ip6tables-legacy-restore', rules6]] as const) {
      const r = await run('ip', ['netns', 'exec', NS.n, tool], text);
      expect(r.stderr, tool).toBe('');
    }
    await run('ip', ['netns', 'exec', NS.n, 'conntrack', '-F']);
    const snap = join(tmp, `snap-${name}`);
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    const pcap = join(tmp, `${name}.pcap`);
    writeFileSync(pcap, writePcap(frames.map((f) => ({ data: encodeSpec(parseSpec(f)).data })), { linktype: LINKTYPE_ETHERNET }));
    const got = join(tmp, `${name}-answers.pcap`);
    const dump = spawn('ip', ['netns', 'exec', NS.a, 'tcpdump', '-i', 'veth0', '-Q', 'in', '-U', '-w', got, 'tcp[tcpflags] & tcp-rst != 0 or icmp or (ip6 and tcp) or (icmp6 and ip6[40] < 128)'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    for (const [i, f] of frames.entries()) {
      const one = join(tmp, `${name}-${i}.pcap`);
      writeFileSync(one, writePcap([{ data: encodeSpec(parseSpec(f)).data }], { linktype: LINKTYPE_ETHERNET }));
      const send = await run('ip', ['netns', 'exec', / iif eth1 /.test(f) ? NS.b : NS.a, 'tcpreplay', '-q', '--intf1=veth0', one]);
      expect(send.code, send.stderr).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1500));
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    const answers = [...readCaptureFile(got)].map((f) => summary(f.data.subarray(14))).sort();
    const counters = new Map<string, KernelCounter>();
    for (const tool of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
      const save = await run('ip', ['netns', 'exec', NS.n, tool, '-c']);
      const family = tool.startsWith('ip6') ? 'ip6' : 'ip';
      for (const [k, v] of flattenCounters(parseRestore(save.stdout, { counters: true, family }), true)) counters.set(`${tool} ${k}`, v);
    }
    const ct = await run('ip', ['netns', 'exec', NS.n, 'conntrack', '-L']);
    return { snap, pcap, frames, counters, answers, conntrack: ct.stdout.split('\n').filter(Boolean).map(stateOf).sort() };
  }

  /** The same frames through a model of the snapshot: its counters, the answers it sent towards peer a, its conntrack states. */
  function modelRun(k: KernelRun, engine: EngineKind): { counters: Map<string, KernelCounter>; answers: string[]; conntrack: string[] } {
    const model = buildNodeModel(readSnapshot(k.snap), { engine });
    model.recordEmitted = true;
    const pkt = new Packet();
    const answers: string[] = [];
    for (const [i, f] of [...readCaptureFile(k.pcap)].entries()) {
      resetMeta(pkt);
      loadFrame(pkt, f);
      model.captureCt(pkt);
      const r = model.receive(pkt, / iif eth1 /.test(k.frames[i]!) ? 'eth1' : 'eth0');
      // towards peer a: out of eth0 (a reset sent straight out of the port), or out of br0 to a's address
      for (const e of r.emitted ?? []) if (e.kind !== 'forwarded' && (e.dev === 'eth0' || e.dev === 'br0')) answers.push(summary(e.packet));
    }
    const counters = new Map<string, KernelCounter>();
    for (const family of ['ip', 'ip6'] as const) {
      const rs = model.rulesetWithCounters(family);
      if (rs) for (const [key, v] of flattenCounters(rs, true)) counters.set(`${family === 'ip' ? 'iptables' : 'ip6tables'}-legacy-save ${key}`, v);
    }
    const ct = model.conntrackModule ? conntrackList(model.conntrackModule.ct, 0, false) : [];
    return { counters, answers: answers.sort(), conntrack: ct.map(stateOf).sort() };
  }

  for (const engine of ['vm', 'reference'] as EngineKind[]) {
    it(`[${engine}] bridged and local frames, IPv4 and IPv6: the same counters, the same answers reach the sender`, async () => {
      const k = await kernelRun(`reject-${engine}`, RULES4, RULES6, FRAMES);
      const m = modelRun(k, engine);
      const tally = { counters: 0, agree: 0, nonzero: 0 };
      const diffs = counterDiffs(k.counters, m.counters, tally);
      console.log(`REJECT on bridged frames [${engine}]: ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero); ` +
        `${k.answers.length} answers reached the sender, nfvm sent ${m.answers.length}`);
      expect(diffs).toEqual([]);
      expect(m.answers).toEqual(k.answers);
    }, 120_000);

    it(`[${engine}] a reset for a segment of a tracked connection sets it closing`, async () => {
      const k = await kernelRun(`closing-${engine}`, CLOSING_RULES, `${EMPTY_MANGLE}*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n`, CLOSING_FRAMES);
      const m = modelRun(k, engine);
      const tally = { counters: 0, agree: 0, nonzero: 0 };
      expect(counterDiffs(k.counters, m.counters, tally)).toEqual([]);
      expect(k.answers.length).toBe(1);
      expect(m.answers).toEqual(k.answers);
      console.log(`REJECT closing a connection [${engine}]: kernel ${k.conntrack.join('; ')} / nfvm ${m.conntrack.join('; ')}`);
      expect(m.conntrack).toEqual(k.conntrack);
    }, 120_000);
  }
});

/** A `conntrack -L` line without its timeout and counters-like fields: protocol, state, tuples, flags. */
function stateOf(line: string): string {
  return line.replace(/\s+/g, ' ').replace(/^(\w+) (\d+) \d+ /, '$1 $2 ').replace(/ use=\d+/, '').trim();
}
