/**
 * `nfvm diff` confirmed by the running kernel (Linux 6.18). On the node of
 * ../shared/docs/kernel-oracle.md (test/helpers/kernel.ts replayTopology:
 * eth0 10.0.0.1/24 + 192.168.50.1/32, eth1 10.1.0.1/24, forwarding on),
 * a host-and-router ruleset and five planted changes to it (a swapped rule
 * order, a widened prefix, a moved port-range edge, a changed mark mask, a
 * widened source range) are compared by `nfvm diff --snapshot` on the
 * node's own snapshot. Each difference it reports whose packets can be put
 * on the wire (they arrive on eth0 or eth1, carry no skb mark, no
 * conntrack state, are not sent by the node itself) is sent into the
 * kernel with the OLD ruleset and again with the NEW one: every counter of
 * `iptables-legacy-save -c` must be what nfvm's replay of the same frames
 * gives on each side, and where nfvm says the fate differs the kernel's
 * counters of the two sides differ too.
 *
 * The builtin OUTPUT and POSTROUTING chains are left out of the comparison
 * (the node's answers pass there; kernel-oracle.md). Root with iproute2,
 * iptables-legacy and tcpreplay; skips with a message otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { counterDiffs, flattenCounters, kernelSkip, netnsDel, nsSnapshotRunner, replayCapture, replayTopology, run, type KernelCounter } from '../helpers/kernel.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('nfvm diff confirmed by the kernel', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { s: `nfvm-ds-${id}`, n: `nfvm-dn-${id}`, r: `nfvm-dr-${id}` };
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02', eth1: '02:00:00:00:01:01', receiver: '02:00:00:00:01:02' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-diff-kern-'));

const OLD = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -s 10.0.0.3/32 -j MARK --set-xmark 0x3/0xff
-A PREROUTING -s 10.1.0.5/32 -j MARK --set-xmark 0x2/0xff
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:TCP-IN - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A INPUT -p tcp -j TCP-IN
-A INPUT -s 10.0.0.0/25 -p udp -m udp --dport 53 -j ACCEPT
-A FORWARD -m mark --mark 0x1/0x1 -j DROP
-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -d 8.8.8.8/32 -i eth0 -o eth1 -j DROP
-A FORWARD -i eth0 -o eth1 -j ACCEPT
-A FORWARD -i eth1 -o eth0 -p udp -j ACCEPT
-A TCP-IN -s 10.0.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT
-A TCP-IN -p tcp -m tcp --dport 1000:2000 -j ACCEPT
-A TCP-IN -p tcp -m tcp --dport 80 -j DROP
COMMIT
`;

/** `text` with `from` replaced by `to` (which must occur exactly once). */
function plant(from: string, to: string): string {
  expect(OLD.split(from).length, `planted change: "${from}" occurs once`).toBe(2);
  return OLD.replace(from, to);
}

const CHANGES: { name: string; text: () => string }[] = [
  { name: 'a swapped rule order', text: () => plant('-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 443 -j ACCEPT\n-A FORWARD -d 8.8.8.8/32 -i eth0 -o eth1 -j DROP\n', '-A FORWARD -d 8.8.8.8/32 -i eth0 -o eth1 -j DROP\n-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 443 -j ACCEPT\n') },
  { name: 'a widened prefix', text: () => plant('-s 10.0.0.2/32 -p tcp', '-s 10.0.0.2/31 -p tcp') },
  { name: 'a moved port-range edge', text: () => plant('--dport 1000:2000', '--dport 1001:2000') },
  { name: 'a changed mark mask', text: () => plant('--mark 0x1/0x1', '--mark 0x2/0x2') },
  { name: 'a widened source range', text: () => plant('-s 10.0.0.0/25 -p udp', '-s 10.0.0.0/24 -p udp') },
];

interface DiffJson { differences: { packets: string[]; differs: string[] }[] }

/**
 * A packet the wire can carry into the node: arriving on a port, no skb mark, no conntrack clause, not the node's own.
 * Not from a subnet's broadcast address either: the kernel loops the node's answer to such a source (an ICMP
 * error sent to 10.0.0.255) back in through PREROUTING and INPUT (ip_mc_output → dev_loopback_xmit), which
 * nfvm does not model yet.
 */
const injectable = (p: string) => / iif eth[01]$/.test(p) && !/ (mark|ct|from) /.test(p) && !/^\S+ (10\.0\.0|10\.1\.0)\.255[: ]/.test(p);

/** The frame of a spec line: the MACs of the wire it arrives on, a fresh IP id. */
function frame(spec: string, ipid: number): { iface: string; data: Uint8Array } {
  const iface = spec.endsWith('iif eth1') ? 'eth1' : 'eth0';
  const macs = iface === 'eth0' ? `src-mac ${MAC.sender} dst-mac ${MAC.eth0}` : `src-mac ${MAC.receiver} dst-mac ${MAC.eth1}`;
  return { iface, data: encodeSpec(parseSpec(`${spec} ipid ${ipid} ${macs}`)).data };
}

let cli = '';
let ipid = 1;

/** The counters the kernel shows after `frames` with `rules` loaded, and the ones nfvm's replay gives on the same node. */
async function bothSides(snap: string, rules: string, frames: { iface: string; data: Uint8Array }[]): Promise<{ kernel: Map<string, KernelCounter>; nfvm: Map<string, KernelCounter>; text: Map<string, string> }> {
  const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], rules);
  if (restore.code !== 0) throw new Error(`iptables-legacy-restore: ${restore.stderr}`);
  const dir = mkdtempSync(join(tmp, 'side-'));
  for (const f of readdirSync(snap)) if (f !== 'iptables-save.txt') copyFileSync(join(snap, f), join(dir, f));
  writeFileSync(join(dir, 'iptables-save.txt'), rules);
  const model = buildNodeModel(readSnapshot(dir));
  for (const [i, f] of frames.entries()) {
    const pcap = join(dir, `f${i}.pcap`);
    writeFileSync(pcap, writePcap([{ data: f.data }], { linktype: LINKTYPE_ETHERNET }));
    const send = await run('ip', ['netns', 'exec', f.iface === 'eth0' ? NS.s : NS.r, 'tcpreplay', '-q', '--intf1=veth0', pcap]);
    if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
    await new Promise((r) => setTimeout(r, 150));
    replayCapture(model, pcap, f.iface);
  }
  await new Promise((r) => setTimeout(r, 150));
  const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
  rmSync(dir, { recursive: true, force: true });
  return { kernel: flattenCounters(parseRestore(save.stdout, { counters: true })), nfvm: flattenCounters(model.rulesetWithCounters()!), text: byText(save.stdout) };
}

/**
 * The kernel's counters by rule text (`table -A CHAIN ...`, and each
 * policy), left out the builtin OUTPUT and POSTROUTING chains: a swap
 * moves rules, so the same place counts another rule on each side.
 */
function byText(save: string): Map<string, string> {
  const out = new Map<string, string>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    const pol = /^:(\S+) (\S+) (\[\d+:\d+\])$/.exec(line);
    if (pol && pol[2] !== '-' && pol[1] !== 'OUTPUT' && pol[1] !== 'POSTROUTING') out.set(`${table} policy ${pol[1]}`, pol[3]!);
    const rule = /^(\[\d+:\d+\]) (-A (\S+) .*)$/.exec(line);
    if (rule && rule[3] !== 'OUTPUT' && rule[3] !== 'POSTROUTING') out.set(`${table} ${rule[2]}`, `${out.get(`${table} ${rule[2]}`) ?? ''}${rule[1]}`);
  }
  return out;
}

/** Whether the two sides' counters, by rule text, show a difference (a rule only one side has counts as 0 on the other). */
function differ(a: Map<string, string>, b: Map<string, string>): boolean {
  const zero = (v: string | undefined) => v === undefined || /^(\[0:0\])+$/.test(v);
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (zero(a.get(k)) && zero(b.get(k))) continue;
    if (a.get(k) !== b.get(k)) return true;
  }
  return false;
}

describe.skipIf(SKIP)('nfvm diff confirmed by the kernel', () => {
  let snap = '';
  beforeAll(async () => {
    replayTopology(NS, MAC);
    cli = await buildCli();
    snap = join(tmp, 'node');
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
  }, 120_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every wire-borne difference nfvm diff reports for five planted changes: nfvm counts each side as the kernel does, and a differing fate shows in the kernel', async () => {
    const oldFile = join(tmp, 'old.rules');
    writeFileSync(oldFile, OLD);
    const failures: string[] = [];
    let confirmed = 0;
    let fates = 0;
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const change of CHANGES) {
      const newText = change.text();
      const newFile = join(tmp, 'new.rules');
      writeFileSync(newFile, newText);
      // enough differences that those the wire can carry (no mark or ct clause) are among them
      const r = runCli(cli, ['diff', oldFile, newFile, '--snapshot', snap, '--packets', '400', '--max', '40', '--json']);
      expect(r.err, change.name).toBe('');
      const doc = JSON.parse(r.out) as DiffJson;
      expect(r.code, change.name).toBe(doc.differences.length ? 1 : 0);
      const wire = doc.differences.filter((d) => d.packets.every(injectable));
      expect(wire.length, `${change.name}: a difference the wire can carry`).toBeGreaterThan(0);
      let fateHere = 0;
      for (const d of wire.slice(0, 4)) {
        const frames = d.packets.map((p) => frame(p, ipid++));
        const o = await bothSides(snap, OLD, frames);
        const n = await bothSides(snap, newText, frames);
        const diffs = [...counterDiffs(o.kernel, o.nfvm, tally).map((l) => `OLD${l}`), ...counterDiffs(n.kernel, n.nfvm, tally).map((l) => `NEW${l}`)];
        const fate = d.differs.includes('fate');
        if (fate) {
          fates++;
          fateHere++;
          if (!differ(o.text, n.text)) diffs.push('  nfvm says the fate differs, the kernel counts both sides alike');
        }
        if (diffs.length) failures.push(`${change.name}: ${d.packets.join(' then ')} (${d.differs.join(', ')})\n${diffs.join('\n')}`);
        else confirmed++;
      }
      expect(fateHere, `${change.name}: a difference in fate among those sent`).toBeGreaterThan(0);
    }
    console.log(`nfvm diff against the kernel: ${confirmed}/${confirmed + failures.length} differences confirmed (${fates} in fate), ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel)`);
    expect(failures.slice(0, 3).join('\n\n')).toBe('');
  }, 300_000);
});
