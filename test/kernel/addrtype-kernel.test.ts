/**
 * addrtype --limit-iface-in / --limit-iface-out against the kernel (Linux
 * 6.18), both backends: a node namespace with eth0 (10.0.0.1/24, the
 * sender's link) and eth1 (10.1.0.1/24, a veth whose peer stays in the
 * node); counting rules for every
 * type the local table gives (LOCAL, BROADCAST, UNICAST, MULTICAST) on the
 * source and the destination, inverted and not, with and without the
 * device limit, in mangle PREROUTING and filter INPUT (--limit-iface-in)
 * and in filter OUTPUT and mangle POSTROUTING (--limit-iface-out). Frames
 * from the sender to eth0's and eth1's addresses and broadcasts, 127.0.0.1,
 * 255.255.255.255 and a multicast group, some with the node's own addresses
 * as source; UDP datagrams the node sends from eth0's and eth1's addresses
 * out eth0 and eth1, and over lo. Every counter of `iptables-*-save -c` is
 * compared with the node model's on the namespace's snapshot, both engines.
 *
 * Root with iproute2, both iptables backends, tcpreplay and python3; skips
 * with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { counterDiffs, flattenCounters, injectAndCount, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec, specPacket } from '../../hooks/input/spec.js';

const PY = '/usr/bin/python3';
const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('addrtype --limit-iface-in/out against the kernel', TOOLS, () => (existsSync(PY) ? undefined : `needs ${PY}`));
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-addrtype-'));

const TYPES = ['LOCAL', 'BROADCAST', 'UNICAST', 'MULTICAST'];
/** The tests of one chain: every type of the source and the destination, inverted or not, with `limit` or without. */
function tests(chain: string, limit: string): string[] {
  const out: string[] = [];
  for (const dir of ['--src-type', '--dst-type']) {
    for (const t of TYPES) {
      out.push(`-A ${chain} -m addrtype ${dir} ${t} ${limit}`, `-A ${chain} -m addrtype ! ${dir} ${t} ${limit}`, `-A ${chain} -m addrtype ${dir} ${t}`);
    }
  }
  return out;
}

const RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...tests('PREROUTING', '--limit-iface-in'), ...tests('POSTROUTING', '--limit-iface-out'),
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...tests('INPUT', '--limit-iface-in'), ...tests('OUTPUT', '--limit-iface-out'),
  'COMMIT', ''].join('\n');

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const bcast = `iif eth0 src-mac ${MAC.sender} dst-mac ff:ff:ff:ff:ff:ff`;
const FRAMES = [
  `udp 10.0.0.2:5000 > 10.0.0.1:9 len 4 ${link}`, `udp 10.0.0.2:5001 > 10.1.0.1:9 len 5 ${link}`,
  `udp 10.0.0.2:5002 > 10.0.0.255:9 len 6 ${bcast}`, `udp 10.0.0.2:5003 > 10.1.0.255:9 len 7 ${bcast}`,
  `udp 10.0.0.2:5004 > 255.255.255.255:9 len 8 ${bcast}`, `udp 10.0.0.2:5005 > 224.0.0.9:9 len 9 iif eth0 src-mac ${MAC.sender} dst-mac 01:00:5e:00:00:09`,
  `udp 10.0.0.2:5006 > 127.0.0.1:9 len 10 ${link}`, `udp 10.0.0.1:5007 > 10.0.0.1:9 len 11 ${link}`, `udp 10.1.0.1:5008 > 10.0.0.1:9 len 12 ${link}`,
];
/** Datagrams the node sends: [source, destination], each from its own port. */
const SENDS: [string, string][] = [['10.0.0.1', '10.0.0.2'], ['10.1.0.1', '10.0.0.2'], ['10.1.0.1', '10.1.0.9'], ['10.0.0.1', '10.1.0.9'], ['127.0.0.1', '127.0.0.1']];

describe.skipIf(SKIP)('addrtype --limit-iface-in/out against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('every counter: each type of source and destination, on the device\'s own addresses and another\'s (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap(FRAMES.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
    const send = `import socket
for i, (s, d) in enumerate(${JSON.stringify(SENDS)}):
    k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    k.bind((s, 41000 + i)); k.sendto(b'x' * (3 + i), (d, 9)); k.close()
`;
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-as-${backend[0]}-${id}`, n: `nfvm-an-${backend[0]}-${id}` };
      try {
        senderNodeTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        // eth1: a veth with its own subnet; the node knows its neighbours (no ARP); martians are counted, not logged
        nsSh(ns.n, `ip link add eth1 type veth peer name eth1p
ip link set eth1p up
ip addr add 10.1.0.1/24 dev eth1
ip link set eth1 up
ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent
ip neigh replace 10.1.0.9 lladdr 02:00:00:00:00:09 dev eth1 nud permanent
sysctl -qw net.ipv4.conf.all.log_martians=0 net.ipv4.conf.eth1.rp_filter=0`);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `# Generated by iptables-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n${RULES}`);
        const sent = await run('ip', ['netns', 'exec', ns.n, PY, '-c', send]);
        if (sent.code !== 0) throw new Error(`send: ${sent.stderr}`);
        const kernel = await injectAndCount(ns, pcap, backend);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          SENDS.forEach(([s, d], i) => model.send(specPacket(parseSpec(`udp ${s}:${41000 + i} > ${d}:9 len ${3 + i} df from local`))));
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters()!, true);
          diffs.push(...counterDiffs(kernel as Map<string, KernelCounter>, mine, tally).map((l) => `${backend} ${engine}${l}`));
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    // the rules and the 8 builtin chains' policies, per backend and engine
    expect(tally.counters).toBe(2 * 2 * (4 * TYPES.length * 2 * 3 + 8));
    expect(tally.nonzero).toBeGreaterThan(100);
  }, 120_000);
});
