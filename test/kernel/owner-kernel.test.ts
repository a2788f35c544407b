/**
 * The owner match against the kernel (Linux 6.18), both backends: counting
 * OUTPUT rules (-m owner with uid and gid ranges, inversions,
 * --socket-exists, --suppl-groups; a copy per protocol) in a node
 * namespace, then
 *  - UDP datagrams sent from the node by programs of several credentials
 *    (setpriv: fsuid, fsgid, supplementary groups; bash's /dev/udp);
 *  - frames injected from a sender that make the node answer: an ICMP port
 *    unreachable and an echo reply (the stack's ICMP socket, no file), a
 *    TCP reset from the stack (its control socket), a reset from REJECT
 *    (nf_send_reset: no socket);
 * and every OUTPUT counter of `iptables-*-save -c` compared with the node
 * model's on the namespace's snapshot, the datagrams traced as packet specs
 * `from local uid U gid G groups ...` and the frames replayed, both engines.
 *
 * Root with iproute2, both iptables backends, tcpreplay and setpriv;
 * skips with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ICMP_UNLIMITED, answerProbe, counterDiffs, flattenCounters, injectAndCount, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology, saveHeader } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay', 'setpriv', 'bash'];
const SKIP = kernelSkip('the owner match against the kernel', TOOLS);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-owner-'));

/** The owner tests, each a counting rule per protocol. */
const OWNER = [
  '--socket-exists', '! --socket-exists', '--uid-owner 0', '! --uid-owner 0', '--uid-owner 1000-1999',
  '! --uid-owner 1000-1999 --socket-exists', '--gid-owner 2000', '--gid-owner 3000 --suppl-groups',
  '! --gid-owner 3000 --suppl-groups', '! --gid-owner 2000 ! --uid-owner 0', '--uid-owner 1000 --gid-owner 3005 --suppl-groups',
  '! --uid-owner 1500 ! --gid-owner 3005', '--gid-owner 2500-3000',
];

/** Programs sending from the node: setpriv's credentials, the packet spec's, the payload length. */
const SENDERS: { setpriv: string; spec: string; len: number }[] = [
  { setpriv: '', spec: '', len: 8 },
  { setpriv: '--reuid=1000 --regid=2000 --clear-groups', spec: 'uid 1000 gid 2000', len: 9 },
  { setpriv: '--reuid=1500 --regid=2500 --groups=3000,3005', spec: 'uid 1500 gid 2500 groups 3000,3005', len: 10 },
  { setpriv: '--reuid=2500 --regid=3000 --clear-groups', spec: 'uid 2500 gid 3000', len: 11 },
  { setpriv: '--reuid=1000 --regid=65534 --groups=2000,3005', spec: 'uid 1000 gid 65534 groups 2000,3005', len: 12 },
  { setpriv: '--reuid=65534 --regid=65534 --groups=3005', spec: 'uid 65534 gid 65534 groups 3005', len: 13 },
];


const RULES = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -p tcp -m tcp --dport 7 -j REJECT --reject-with tcp-reset',
  ...['udp', 'icmp', 'tcp'].flatMap((p) => OWNER.map((o) => `-A OUTPUT -p ${p} -m owner ${o}`)),
  'COMMIT', ''].join('\n');

describe.skipIf(SKIP)('the owner match against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('every OUTPUT counter: programs of several credentials, the stack\'s answers, REJECT\'s reset (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap([17, 6, 6, 1].map((p, i) => ({ data: answerProbe(p, [9, 8, 7, 0][i]!, MAC) })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-os-${backend[0]}-${id}`, n: `nfvm-on-${backend[0]}-${id}` };
      const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
      try {
        senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
        // no ARP: the node knows the sender; ICMP answers are not rate limited
        nsSh(ns.n, `ip neigh replace 10.0.0.2 lladdr ${mac(MAC.sender)} dev eth0 nud permanent
${ICMP_UNLIMITED}`);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${RULES}`);
        for (const s of SENDERS) {
          const sh = `printf '${'x'.repeat(s.len)}' > /dev/udp/10.0.0.2/9`;
          const args = s.setpriv ? ['netns', 'exec', ns.n, 'setpriv', ...s.setpriv.split(' '), 'bash', '-c', sh] : ['netns', 'exec', ns.n, 'bash', '-c', sh];
          const r = await run('ip', args);
          if (r.code !== 0) throw new Error(`send ${s.setpriv}: ${r.stderr}`);
        }
        const kernel = await injectAndCount(ns, pcap, backend);
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          for (const s of SENDERS) {
            const pkt = specPacket(parseSpec(`udp 10.0.0.1:40000 > 10.0.0.2:9 len ${s.len} df from local ${s.spec}`));
            model.send(pkt);
          }
          replayCapture(model, pcap, 'eth0');
          const mine = flattenCounters(model.rulesetWithCounters()!, true);
          const wanted = new Map([...(kernel as Map<string, KernelCounter>)].filter(([key]) => key.includes('OUTPUT')));
          diffs.push(...counterDiffs(wanted, mine, tally).map((l) => `${backend} ${engine}${l}`));
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * (3 * OWNER.length + 1));
    expect(tally.nonzero).toBeGreaterThan(40);
  }, 120_000);
});
