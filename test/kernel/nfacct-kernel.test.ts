/**
 * -m nfacct against the kernel (Linux 6.18), both backends: accounting
 * objects made with `nfacct add` and `nfacct restore` (no quota, a byte
 * quota, a packet quota, one reached exactly, one that starts with counts
 * of its own), counted into from several rules of mangle and filter in
 * every hook that takes them; frames injected from the sender (delivered
 * and forwarded, of several lengths) and a datagram the node sends. The
 * snapshot is captured from the namespace (its nfacct.txt is `nfacct
 * list`); every counter of `iptables-*-save -c` and the `nfacct list`
 * after the run are compared with the node model's, both engines.
 *
 * Root with iproute2, both iptables backends, nfacct and tcpreplay; skips
 * with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { injectAndCount, kernelSkip, netnsDel, nsSnapshotRunner, run, saveHeader, senderForwardingTopology, sentAndReplayed } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { nfacctList } from '../../ext/nfacct.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'nfacct', 'tcpreplay'];
const SKIP = kernelSkip('-m nfacct against the kernel', TOOLS);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-nfacct-'));

/** `nfacct restore` input: counts to start from, and quotas (its format takes no overquota field). */
const OBJECTS = [
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = all;',
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000300, mode = byte } = qb;',
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000002, mode = packet } = qp;',
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000, quota = 00000000000000000003, mode = packet } = qexact;',
  '{ pkts = 00000000000000000007, bytes = 00000000000000000900, quota = 00000000000000001000, mode = byte } = started;',
  '{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = unused;',
];

const RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -m nfacct --nfacct-name all',
  '-A PREROUTING -p tcp -m nfacct --nfacct-name started',
  '-A POSTROUTING -m nfacct --nfacct-name all',
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  // an object under its quota does not match: the DROP takes the udp datagrams only from the one past 300 bytes on
  '-A INPUT -p udp -m nfacct --nfacct-name qb -j DROP',
  '-A INPUT -p udp -m nfacct --nfacct-name qp',
  '-A INPUT -m nfacct --nfacct-name all -m nfacct --nfacct-name qp',
  '-A INPUT -p tcp -m nfacct --nfacct-name started -j ACCEPT',
  '-A FORWARD -m nfacct --nfacct-name qexact',
  '-A FORWARD -m nfacct --nfacct-name qexact -j ACCEPT',
  '-A OUTPUT -m nfacct --nfacct-name qb',
  'COMMIT', ''].join('\n');

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const FRAMES = [
  `udp 10.0.0.2:5000 > 10.0.0.1:9 len 40 ${link}`, `udp 10.0.0.2:5000 > 10.0.0.1:9 len 100 ${link}`,
  `tcp 10.0.0.2:5001 > 10.0.0.1:22 syn ${link}`, `udp 10.0.0.2:5000 > 10.0.0.1:9 len 12 ${link}`,
  `udp 10.0.0.2:5002 > 10.9.0.7:9 len 6 ${link}`, `udp 10.0.0.2:5000 > 10.0.0.1:9 len 130 ${link}`,
  `tcp 10.0.0.2:5003 > 10.9.0.8:80 syn ${link}`, `udp 10.0.0.2:5000 > 10.0.0.1:9 len 1 ${link}`,
  `tcp 10.0.0.2:5001 > 10.0.0.1:22 syn ${link}`, `udp 10.0.0.2:5004 > 10.9.0.9:53 len 33 ${link}`,
  `udp 10.0.0.2:5000 > 10.0.0.1:9 len 7 ${link}`,
];

describe.skipIf(SKIP)('-m nfacct against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('counts and quotas of the accounting objects, every hook (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap(FRAMES.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    let lists = 0;
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-as-${backend[0]}-${id}`, n: `nfvm-an-${backend[0]}-${id}` };
      try {
        // 10.9.0.0/16 is forwarded back out eth0 to the sender
        senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        const made = await run('ip', ['netns', 'exec', ns.n, 'nfacct', 'restore'], `${OBJECTS.join('\n')}\n`);
        expect(made.stderr + made.stdout).toBe('');
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        expect(existsSync(join(snap, 'nfacct.txt'))).toBe(true);
        writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${RULES}`);
        const sent = await run('ip', ['netns', 'exec', ns.n, 'bash', '-c', "printf 'xyz' > /dev/udp/10.0.0.2/9"]);
        if (sent.code !== 0) throw new Error(`send: ${sent.stderr}`);
        const kernel = await injectAndCount(ns, pcap, backend);
        const kernelList = (await run('ip', ['netns', 'exec', ns.n, 'nfacct', 'list'])).stdout;
        for (const engine of ['vm', 'reference'] as const) {
          const { model, diffs: d } = sentAndReplayed(snap, engine, pcap, kernel, tally, `${backend} ${engine}`);
          diffs.push(...d);
          const list = nfacctList(model.nfacct!);
          if (list !== kernelList) diffs.push(`${backend} ${engine} nfacct list:\n${list}kernel:\n${kernelList}`);
          else lists++;
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    console.log(`-m nfacct against the kernel: ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel), ${lists}/4 nfacct lists identical`);
    expect(tally.nonzero).toBeGreaterThan(2 * 2 * 8);
  }, 120_000);
});
