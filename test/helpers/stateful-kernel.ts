/**
 * One case of the stateful kernel tests (test/kernel/stateful-kernel.test.ts,
 * IPv4, and stateful6-kernel.test.ts, IPv6): a ruleset loaded into the node
 * namespace with ip(6)tables-legacy-restore, the node's snapshot, a
 * conversation generated with the snapshot's model as the network
 * (flows.ts), injected from the wire namespace with one tcpreplay (a
 * tcpprep cache splitting it by source MAC) at the capture's pace, and
 * compared with `nfvm replay --json` on both engines: every counter, every
 * `conntrack -L -o extended` line of the family, and, for a case that asks,
 * every frame the node sent (a `tcpdump -i any` capture in the node replayed
 * two-sided: answers.ts). A case that captures is replayed at the times the
 * node received its frames (answers.ts arrivalTimes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ICMP_UNLIMITED, compareConntrack, flattenCounters, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, run } from './kernel.js';
import { Conversation, MAC } from './flows.js';
import type { StatefulGen } from './stateful-gen.js';
import { arrivalTimes, captureDuring, replayTwoSided } from './answers.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { conntrackLine, type CtEntryJson } from '../../hooks/conntrack/index.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { cmdReplay } from '../../cli/replay.js';
import { outputText } from '../../cli/io.js';

/** The rig's namespaces: the wire (the clients and servers' veth ends, tcpreplay) and the node. */
export interface StatefulNs {
  wire: string;
  node: string;
}

/** The rig's namespaces made (netnsAdd: deleted at exit even when a run is cut short), `first` then `ip link set lo up` run in each. */
export function addNamespaces(NS: StatefulNs, first = ''): void {
  for (const ns of [NS.wire, NS.node]) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
    nsSh(ns, `${first ? `${first}; ` : ''}ip link set lo up`);
  }
}

/** Waits up to 5 s for the node's veths to have carrier (three LOWER_UP links with lo). */
export function waitCarrier(NS: StatefulNs): void {
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.node, '-o', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/LOWER_UP/g) ?? []).length >= 3) break;
    spawnSync('sleep', ['0.1']);
  }
}

/** A UDP socket bound at `port` on the node, held until killed: datagrams redirected there are delivered, silently. */
export function udpListener(NS: StatefulNs, port: number, type: 'udp4' | 'udp6'): ChildProcess {
  return spawn('ip', ['netns', 'exec', NS.node, process.execPath, '-e',
    `const s=require('dgram').createSocket('${type}');s.bind(${port});setInterval(()=>{},1e6)`], { stdio: 'ignore' });
}

/** The rig taken down: the listener, the namespaces, the temporary directory. */
export function teardownRig(NS: StatefulNs, listener: ChildProcess | undefined, tmp: string): void {
  if (listener?.pid) listener.kill();
  netnsDel(NS.wire);
  netnsDel(NS.node);
  rmSync(tmp, { recursive: true, force: true });
}

/** The defaults ICMP_UNLIMITED changes, put back after a generated case. */
const DEFAULT_ICMP = 'sysctl -qw net.ipv4.icmp_ratelimit=1000 net.ipv6.icmp.ratelimit=100 net.ipv4.icmp_msgs_per_sec=1000 net.ipv4.icmp_msgs_burst=50';

/**
 * The generated cases run one after the other (case numbers from 100): the
 * failures, each with its rules and first differences. A generated case is
 * compared with a replay at the conversation's times, which tcpreplay on a
 * loaded machine keeps only so well, so it runs with ICMP_UNLIMITED: a late
 * frame cannot change which errors the node sends (seed 8675309 under load:
 * two more in the kernel, and the nth counters after them off by two). The
 * written cases keep the defaults; stateful6's burst case compares the
 * limit frame by frame.
 */
export async function runGenerated(gens: readonly StatefulGen[], seed: number, flows: (c: Conversation, g: StatefulGen, i: number) => void,
  runCase: (k: number, cs: StatefulCase) => Promise<string[]>): Promise<string[]> {
  const failed: string[] = [];
  for (const [i, g] of gens.entries()) {
    const cs: StatefulCase = { name: `generated ${i} (seed ${seed})`, rules: g.text, flows: (c) => flows(c, g, i), setup: ICMP_UNLIMITED, teardown: DEFAULT_ICMP };
    const diffs = await runCase(100 + i, cs);
    if (diffs.length) failed.push(`${cs.name}\n--- rules:\n${g.text}\n${diffs.slice(0, 12).join('\n')}`);
  }
  return failed;
}

export interface StatefulCase {
  name: string;
  rules: string;
  /** Shell run in the node before the snapshot (policy routing), and its undoing. */
  setup?: string;
  teardown?: string;
  flows(c: Conversation): void;
  /**
   * Also capture what the node sends and replay that two-sided capture:
   * every frame the node sent must be one nfvm sent, byte for byte but for
   * the fields the kernel fills itself (a TCP checksum left to the device,
   * an automatic flow label).
   */
  frames?: boolean;
}

export const EMPTY = {
  raw: '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
  mangle: '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
  nat: '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
  filter: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
};
export type TableName = keyof typeof EMPTY;

/** A full ruleset: the given tables, the others empty (so a restore replaces everything). */
export function ruleset(given: Partial<Record<TableName, string>>): string {
  return (Object.keys(EMPTY) as TableName[]).map((t) => (given[t] ? `${given[t]!.trim()}\n` : EMPTY[t])).join('');
}

/** raw: NOTRACK both ways of NTP, zone 5 for SSH, zone 7 for DNS's original direction. */
export const RAW_NOTRACK_ZONES = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 123 -j NOTRACK
-A PREROUTING -p udp -m udp --sport 123 -j CT --notrack
-A PREROUTING -p tcp -m tcp --dport 22 -j CT --zone 5
-A PREROUTING -p tcp -m tcp --sport 22 -j CT --zone 5
-A PREROUTING -p udp -m udp --dport 53 -j CT --zone-orig 7
COMMIT`;

/** raw: the FTP helper on control connections to port 21. */
export const RAW_FTP = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp
COMMIT`;

/** mangle: MARK and CONNMARK in their forms (restore, save, masks, shifts) with mark and connmark matches; `icmp`: the ICMP protocol's name. */
export const mangleMarks = (icmp: string) => `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff
-A PREROUTING -m mark ! --mark 0x0/0xff -j RETURN
-A PREROUTING -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x11/0xff
-A PREROUTING -p udp -j MARK --or-mark 0x2
-A PREROUTING -p ${icmp} -j CONNMARK --set-xmark 0x30/0xf0 --left-shift-mark 2
-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xff
-A FORWARD -m connmark --mark 0x1
-A FORWARD -m connmark --mark 0x2/0x2
-A FORWARD -m connmark --mark 0xc0/0xf0
-A FORWARD -m mark --mark 0x11
-A POSTROUTING -m connmark ! --mark 0x0 -j CONNMARK --restore-mark --nfmask 0xf000 --ctmask 0xf0 --left-shift-mark 8
-A POSTROUTING -m mark --mark 0x1000/0xf000
COMMIT`;

/** FORWARD rules that count each conntrack state. */
export const COUNT_STATES = `-A FORWARD -m conntrack --ctstate INVALID
-A FORWARD -m conntrack --ctstate NEW
-A FORWARD -m conntrack --ctstate ESTABLISHED
-A FORWARD -m conntrack --ctstate RELATED
-A FORWARD -m conntrack --ctstate UNTRACKED
-A FORWARD -m conntrack --ctstate SNAT
-A FORWARD -m conntrack --ctstate DNAT`;

export interface StatefulTally {
  counters: number;
  countersAgree: number;
  /** Kernel counters that moved, and conntracks the kernel listed (once per case). */
  nonzero: number;
  connections: number;
  conntrack: number;
  conntrackAgree: number;
  refused: number;
  frames: number;
}

export const newTally = (): StatefulTally => ({ counters: 0, countersAgree: 0, nonzero: 0, connections: 0, conntrack: 0, conntrackAgree: 0, refused: 0, frames: 0 });

export interface StatefulRun {
  diffs: string[];
  /** Kernel counters that moved, of how many, and the conntracks the kernel listed. */
  moved: number;
  counters: number;
  connections: number;
}

/**
 * Runs case `cs` (number `k`, for its files in `tmp`) in the node and wire
 * namespaces `ns`. A generated case (its name starts with "generated") whose
 * ruleset the kernel refuses must be refused by nfvm too. A case whose frames
 * are captured and whose capture holds fewer than were sent (tcpdump lost
 * some) runs again once after `rebuild` has made the namespaces anew: the
 * first run's state the kernel keeps outside conntrack and the tables (the
 * inet_peer entries of its ICMP rate limits, recent lists) would reach the
 * second in the same namespaces.
 */
export async function runStatefulCase(family: 'ip' | 'ip6', ns: { node: string; wire: string }, tmp: string, k: number, cs: StatefulCase, tally: StatefulTally, rebuild?: () => void): Promise<StatefulRun> {
  const tool = family === 'ip' ? 'iptables-legacy' : 'ip6tables-legacy';
  const inNode = (argv: string[], input?: string) => run('ip', ['netns', 'exec', ns.node, ...argv], input);
  const out: StatefulRun = { diffs: [], moved: 0, counters: 0, connections: 0 };
  await inNode(['conntrack', '-F']);
  const load = await inNode([`${tool}-restore`], cs.rules);
  if (load.code !== 0) {
    if (!cs.name.startsWith('generated')) throw new Error(`${cs.name}: ${tool}-restore: ${load.stderr}`);
    let refused = false;
    try {
      parseRestore(cs.rules, { family });
    } catch {
      refused = true;
    }
    tally.refused++;
    if (!refused) out.diffs.push(`${tool}-restore refused it (${load.stderr.split('\n')[0]}), nfvm did not`);
    return out;
  }
  if (cs.setup) nsSh(ns.node, cs.setup);
  try {
    const snap = join(tmp, `snap-${k}`);
    captureSnapshot(snap, nsSnapshotRunner(ns.node));
    const c = new Conversation(buildNodeModel(readSnapshot(snap)));
    cs.flows(c);
    const pcap = join(tmp, `case-${k}.pcapng`);
    writeFileSync(pcap, c.pcapng());
    // the kernel: the frames in on both sides, in order, at the capture's pace
    await inNode(['conntrack', '-F']);
    for (const t of ['filter', 'nat', 'mangle', 'raw']) await inNode([tool, '-t', t, '-Z']);
    const cache = join(tmp, `case-${k}.cache`);
    const prep = await run('tcpprep', ['--mac', MAC.s0, '-i', pcap, '-o', cache]);
    if (prep.code !== 0) throw new Error(`tcpprep: ${prep.stderr}`);
    const replay = async () => {
      const send = await run('ip', ['netns', 'exec', ns.wire, 'tcpreplay', '-q', `--cachefile=${cache}`, '--intf1=s0', '--intf2=c0', pcap], undefined, 300_000);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 500));
    };
    const cap = join(tmp, `case-${k}-node.pcap`);
    if (cs.frames) {
      await captureDuring(ns.node, cap, replay);
      const held = arrivalTimes(snap, cap).length;
      if (held !== c.frames.length && rebuild) {
        console.log(`${cs.name}: the node's capture holds ${held} of the ${c.frames.length} frames sent to it; the case runs again in new namespaces`);
        rmSync(snap, { recursive: true, force: true });
        rebuild();
        // the case's teardown runs once, in the new namespaces, when this call ends
        return await runStatefulCase(family, ns, tmp, k, { ...cs, teardown: undefined }, tally);
      }
    } else await replay();
    const save = await inNode([`${tool}-save`, '-c']);
    const list = await inNode(['conntrack', '-L', '-f', family === 'ip' ? 'ipv4' : 'ipv6', '-o', 'extended']);
    const kernel = flattenCounters(parseRestore(save.stdout, { family, counters: true }), true);
    const kernelCt = list.stdout.split('\n').filter((l) => l.trim());
    out.moved = [...kernel.values()].filter((kc) => kc.packets !== 0n).length;
    out.counters = kernel.size;
    out.connections = kernelCt.length;
    tally.nonzero += out.moved;
    tally.connections += out.connections;
    // a case whose frames were captured is replayed at the times the node received them: a rate limit
    // or a timeout then sees the kernel's gaps, not the conversation's (tcpreplay keeps its pace only so well)
    let replayed = pcap;
    if (cs.frames) {
      const times = arrivalTimes(snap, cap);
      if (times.length !== c.frames.length) out.diffs.push(`the node's capture holds ${times.length} of the ${c.frames.length} frames sent to it`);
      else writeFileSync((replayed = join(tmp, `case-${k}-arrived.pcapng`)), c.pcapng(times));
    }
    for (const engine of ['vm', 'reference'] as const) {
      const argv = [snap, '--pcap', replayed, '--json', '--engine', engine, ...(family === 'ip6' ? ['--save', 'ip6tables'] : [])];
      const doc = JSON.parse(outputText(cmdReplay(argv))) as { text: string; conntrack?: CtEntryJson[] };
      const mine = flattenCounters(parseRestore(doc.text, { family, counters: true }), true);
      for (const [key, kc] of kernel) {
        const mc = mine.get(key);
        tally.counters++;
        if (mc && mc.packets === kc.packets && mc.bytes === kc.bytes) tally.countersAgree++;
        else out.diffs.push(`[${engine}] ${key}: kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
      }
      const l3 = family === 'ip' ? 'ipv4' : 'ipv6';
      const modelCt = (doc.conntrack ?? []).filter((j) => j.l3proto === l3).map((j) => conntrackLine(j, true));
      const cmp = compareConntrack(kernelCt, modelCt);
      tally.conntrack += cmp.total;
      tally.conntrackAgree += cmp.agree;
      out.diffs.push(...cmp.diffs.map((d) => `[${engine}] conntrack ${d}`));
      if (cs.frames) {
        const { results, matcher } = replayTwoSided(snap, cap, engine, family);
        tally.frames += results.length;
        // identical, or but for fields the kernel fills itself (a checksum left to the device, a flow label)
        for (const x of results) {
          if (x.verdict === 'differs' || x.verdict === 'not-emitted') out.diffs.push(`[${engine}] frame ${x.frame} on ${x.iface} (${x.kind || '-'}): ${x.verdict} ${x.fields.join(', ')}`);
        }
        for (const x of matcher.unmatchedList()) out.diffs.push(`[${engine}] sent by nfvm only: ${x}`);
      }
    }
    rmSync(snap, { recursive: true, force: true });
  } finally {
    if (cs.teardown) nsSh(ns.node, cs.teardown);
  }
  return out;
}
