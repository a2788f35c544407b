/**
 * The osf match against the running kernel (Linux 6.18), with no
 * fingerprints loaded: nfnetlink_osf's lists are global to the kernel, not
 * per network namespace, so loading a pf.os here would change the
 * machine's own state; the matching itself is checked from the kernel
 * source in test/ext/osf.test.ts. What the kernel shows without
 * fingerprints: no rule matches, `! --genre` included (xt_osf stores the
 * invert flag and never reads it), `--log` too; nfvm with an empty pf.os
 * counts the same frames alike. The node of kernel-oracle.md
 * (replayTopology), SYNs with Linux-like and Windows-like options injected
 * with tcpreplay; every counter of `iptables-legacy-save -c` is compared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { counterDiffs, flattenCounters, kernelSkip, netnsDel, nsSnapshotRunner, replayCapture, replayTopology, run } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('osf against the kernel', TOOLS);
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { s: `nfvm-os-${id}`, n: `nfvm-on-${id}`, r: `nfvm-or-${id}` };
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02', eth1: '02:00:00:00:01:01', receiver: '02:00:00:00:01:02' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-osf-kern-'));

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m osf --genre Linux
-A INPUT -p tcp -m osf ! --genre Linux
-A INPUT -p tcp -m osf --genre Linux --ttl 2
-A INPUT -p tcp -m osf ! --genre Windows --log 0
-A INPUT -p tcp -m tcp --tcp-flags SYN SYN
-A FORWARD -p tcp -m osf ! --genre Linux --ttl 1
-A FORWARD -p tcp
COMMIT
`;

const FRAMES = [
  'tcp 10.0.0.2:40000 > 10.0.0.1:22 syn win 5840 df ttl 64 tcpopt mss=1460,sackok,ts,nop,wscale=7',
  'tcp 10.0.0.2:40001 > 10.0.0.1:22 syn win 65535 df ttl 128 tcpopt mss=1460,nop,wscale=8,nop,nop,sackok',
  'tcp 10.0.0.2:40002 > 10.1.0.2:80 syn win 5840 df ttl 64 tcpopt mss=1460,sackok,ts,nop,wscale=7',
  'tcp 10.0.0.2:40003 > 10.0.0.1:22 ack win 5840 df ttl 64',
];

describe.skipIf(SKIP)('osf against the kernel', () => {
  beforeAll(() => replayTopology(NS, MAC), 60_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('no fingerprints loaded: no osf rule matches (`!` and --log included), and nfvm with an empty pf.os counts alike', async () => {
    const restore = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-restore'], RULES);
    expect(restore.stderr).toBe('');
    const snap = join(tmp, 'node');
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    writeFileSync(join(snap, 'pf.os'), '# no fingerprints loaded\n');
    const pcap = join(tmp, 'syns.pcap');
    writeFileSync(pcap, writePcap(FRAMES.map((l, i) => ({ data: encodeSpec(parseSpec(`${l} ipid ${i + 1} iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.eth0}`)).data })), { linktype: LINKTYPE_ETHERNET }));
    const send = await run('ip', ['netns', 'exec', NS.s, 'tcpreplay', '-q', '--intf1=veth0', pcap]);
    expect(send.code, send.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const save = await run('ip', ['netns', 'exec', NS.n, 'iptables-legacy-save', '-c']);
    const kernel = flattenCounters(parseRestore(save.stdout, { counters: true }));
    // the frames arrived: two SYNs for this host, one forwarded
    expect(kernel.get('filter INPUT #5')?.packets).toBe(2n);
    expect(kernel.get('filter FORWARD #2')?.packets).toBe(1n);
    for (const engine of ['vm', 'reference'] as const) {
      const model = buildNodeModel(readSnapshot(snap), { engine });
      replayCapture(model, pcap, 'eth0');
      const tally = { counters: 0, agree: 0, nonzero: 0 };
      expect(counterDiffs(kernel, flattenCounters(model.rulesetWithCounters()!), tally), engine).toEqual([]);
      expect(tally.counters).toBeGreaterThan(8);
    }
  }, 120_000);
});
