/**
 * DNAT of a bridged frame to a neighbour on the same bridge, against the
 * running kernel (Linux 6.18, net/bridge/br_netfilter_hooks.c
 * br_nf_pre_routing_finish → br_nf_pre_routing_finish_bridge): on the
 * bridge node of ../shared/docs/kernel-oracle.md (br0 10.0.0.1/24 over eth0
 * and eth1, permanent neighbours and static fdb entries for both peers,
 * bridge-nf-call-iptables on, IP forwarding off), a TCP SYN to the bridge's
 * own address and MAC is DNATed to the peer behind eth1: the kernel routes
 * the new destination, finds it on br0 again, takes the neighbour's MAC as
 * the frame's destination MAC (neigh_hh_bridge: the source MAC stays) and
 * bridges it out of eth1. What the peer receives (tcpdump) is compared
 * with the frame `nfvm trace` and the node model send out of eth1, and the
 * iptables counters with a replay.
 *
 * Root with iproute2, bridge, iptables-legacy, tcpreplay and tcpdump;
 * skips with a message otherwise (fails under CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bridgeTopology, flattenCounters, kernelSkip, netnsDel, nsSnapshotRunner, run } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel, captureCt } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap } from '../../hooks/input/pcap.js';
import { LINKTYPE_ETHERNET, loadFrame, readCaptureFile } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { Packet, resetMeta } from '../../vm/packet.js';
import { formatMac } from '../../core/addr.js';

const TOOLS = ['ip', 'bridge', 'iptables-legacy-restore', 'iptables-legacy-save', 'tcpreplay', 'tcpdump'];
const SKIP = kernelSkip('bridged DNAT to a neighbour against the kernel', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { a: `nfvm-dna-${id}`, n: `nfvm-dnn-${id}`, b: `nfvm-dnb-${id}` };
const MAC = { a: '02:00:00:00:00:0a', b: '02:00:00:00:00:0b', br0: '02:00:00:00:00:fe', eth0: '02:00:00:00:01:00', eth1: '02:00:00:00:01:01' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-brdnat-'));

const RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -d 10.0.0.1 --dport 8080 -j DNAT --to-destination 10.0.0.3:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp
-A FORWARD -m physdev --physdev-in eth0 --physdev-out eth1 -p tcp --dport 80
-A FORWARD -p tcp
COMMIT
`;

const FRAME = `tcp 10.0.0.2:40000 > 10.0.0.1:8080 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.br0}`;

describe.skipIf(SKIP)('bridged DNAT to a neighbour against the kernel', () => {
  beforeAll(() => bridgeTopology(NS, MAC), 60_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Loads the rules with IP forwarding `fwd`, sends FRAME, returns what eth1's peer received and both sides' iptables counters. */
  async function oneCase(fwd: 0 | 1) {
    await run('ip', ['netns', 'exec', NS.n, 'sysctl', '-qw', `net.ipv4.ip_forward=${fwd}`]);
    const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], RULES);
    expect(restore.stderr).toBe('');
    await run('ip', ['netns', 'exec', NS.n, 'conntrack', '-F']);
    const snap = join(tmp, `snap-${fwd}`);
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    const pcap = join(tmp, 'in.pcap');
    writeFileSync(pcap, writePcap([{ data: encodeSpec(parseSpec(FRAME)).data }], { linktype: LINKTYPE_ETHERNET }));
    const got = join(tmp, `out-${fwd}.pcap`);
    const dump = spawn('ip', ['netns', 'exec', NS.b, 'tcpdump', '-i', 'veth0', '-Q', 'in', '-U', '-w', got, 'tcp'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    const send = await run('ip', ['netns', 'exec', NS.a, 'tcpreplay', '-q', '--intf1=veth0', pcap]);
    expect(send.code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    const kernelOut = [...readCaptureFile(got)].map((f) => Buffer.from(f.data).toString('hex'));
    const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
    const kernel = flattenCounters(parseRestore(save.stdout, { counters: true }), true);

    const model = buildNodeModel(readSnapshot(snap));
    const pkt = new Packet();
    resetMeta(pkt);
    loadFrame(pkt, [...readCaptureFile(pcap)][0]!);
    captureCt(model, pkt);
    const res = model.receive(pkt, 'eth0');
    const mine = flattenCounters(model.rulesetWithCounters()!, true);
    const counters = (m: Map<string, { packets: bigint; bytes: bigint }>) => [...kernel.keys()].map((k) => `${k} [${m.get(k)?.packets}:${m.get(k)?.bytes}]`);
    return { kernelOut, res, pkt, kernelCounters: counters(kernel), mine: counters(mine) };
  }

  it('with IP forwarding off: the new destination has no input route, the frame is dropped (no frame out, the DNAT rule counted only)', async () => {
    const c = await oneCase(0);
    expect(c.kernelOut).toEqual([]);
    expect(c.mine).toEqual(c.kernelCounters);
    expect(c.res.fate.kind).toBe('dropped');
  }, 60_000);

  it('with IP forwarding on: the destination MAC becomes the neighbour\'s, the source MAC stays, the frame is bridged out of eth1', async () => {
    const c = await oneCase(1);
    expect(c.kernelOut.length).toBe(1);
    const out = Buffer.from(c.kernelOut[0]!, 'hex');
    expect(formatMac(out.subarray(0, 6))).toBe(MAC.b);
    expect(formatMac(out.subarray(6, 12))).toBe(MAC.a);
    expect(c.mine).toEqual(c.kernelCounters);
    expect(c.res.fate).toMatchObject({ kind: 'bridged' });
    const f = c.res.fate;
    expect(f.kind === 'bridged' ? f.ports.map((p) => `${p.port} ${p.fate?.kind ?? 'out'}`) : []).toEqual(['eth1 out']);
    // the frame the model sent out of eth1 is the kernel's, byte for byte
    expect(Buffer.from(c.pkt.data.subarray(0, c.pkt.len)).toString('hex')).toBe(c.kernelOut[0]);
  }, 60_000);
});
