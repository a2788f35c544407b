/**
 * `-j CT --timeout` against the kernel (Linux 6.18), both backends:
 * cttimeout policies made with `nfct add timeout` (TCP, UDP, ICMP and the
 * generic tracker's, some states changed from the namespace's defaults) given by raw-table CT
 * rules to the conntracks their templates make; frames injected from the
 * sender (forwarded and delivered, TCP SYNs the node resets, UDP datagrams
 * it answers with port unreachables, SCTP INITs and a HEARTBEAT, flows no
 * rule gives a policy). The SCTP policy's HEARTBEAT_SENT, which nfct can
 * neither set nor print, is the namespace's sysctl when the policy is made
 * (45 s here, not the default 30 s). The
 * snapshot is captured from the namespace (nfct-timeout.txt is `nfct list
 * timeout`); `nfvm replay` (both engines) is compared with `conntrack -L
 * -o extended` line by line (timeouts within a few seconds: the kernel
 * lists after the frames, the model at the last one) and with every
 * counter of `iptables-*-save -c`. Both sides refuse a policy of another
 * protocol than the rule's, and a `--timeout` rule without `-p`.
 *
 * Root with iproute2, both iptables backends, nfct, conntrack and
 * tcpreplay; skips with a message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { compareConntrack, counterDiffs, flattenCounters, injectAndCount, kernelSkip, netnsDel, nsSnapshotRunner, run, saveHeader, senderForwardingTopology } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { conntrackLine, type CtEntryJson } from '../../hooks/conntrack/print.js';
import { parseRestore } from '../../compiler/parse/restore.js';
import { cmdReplay } from '../../cli/replay.js';
import { outputText } from '../../cli/io.js';
import { ipPacket } from '../helpers/ctpkt.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'nfct', 'conntrack', 'tcpreplay'];
const SKIP = kernelSkip('-j CT --timeout against the kernel', TOOLS);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-cttimeout-'));

const POLICIES = [
  'tcp1 inet tcp syn_sent 77 established 50 close 33',
  'udp1 inet udp unreplied 9 replied 40',
  'icmp1 inet icmp timeout 11',
  'gen1 inet generic timeout 21',
  'sctp1 inet sctp closed 17 established 71',
];

const RULES = ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A PREROUTING -p tcp -j CT --timeout tcp1',
  '-A PREROUTING -p udp -m udp --dport 53 -j CT --timeout udp1',
  '-A PREROUTING -p icmp -j CT --timeout icmp1',
  '-A PREROUTING -p 99 -j CT --timeout gen1',
  '-A PREROUTING -p sctp -m sctp --dport 3868 -j CT --timeout sctp1',
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -m conntrack --ctstate NEW', '-A FORWARD -m conntrack --ctstate NEW', '-A OUTPUT -m conntrack --ctstate RELATED',
  'COMMIT', ''].join('\n');

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const FRAMES = [
  `tcp 10.0.0.2:5001 > 10.9.0.8:80 syn ${link}`,
  `tcp 10.0.0.2:5002 > 10.0.0.1:22 syn ${link}`,
  `udp 10.0.0.2:5003 > 10.9.0.9:53 len 10 ${link}`,
  `udp 10.0.0.2:5004 > 10.9.0.9:54 len 10 ${link}`,
  `udp 10.0.0.2:5005 > 10.0.0.1:53 len 10 ${link}`,
  `icmp 10.0.0.2 > 10.9.0.7 echo-request id 7 seq 1 ${link}`,
  `ip proto 99 10.0.0.2 > 10.9.0.6 len 20 ${link}`,
  `ip proto 98 10.0.0.2 > 10.9.0.6 len 20 ${link}`,
];

// SCTP chunks (ctpkt.ts): INIT makes a CLOSED conntrack, a HEARTBEAT outside an association a HEARTBEAT_SENT one
const initv = (tag: number) => [tag >>> 24, (tag >>> 16) & 255, (tag >>> 8) & 255, tag & 255, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1];
const SCTP: Uint8Array[] = [
  ipPacket('10.0.0.2', '10.9.0.8', { proto: 'sctp', sport: 5010, dport: 3868, vtag: 0, chunks: [[1, 0, initv(0x1111)]] }),
  ipPacket('10.0.0.2', '10.9.0.8', { proto: 'sctp', sport: 5011, dport: 3868, vtag: 0x5555, chunks: [[4, 0, [0, 1, 0, 8, 1, 2, 3, 4]]] }),
  ipPacket('10.0.0.2', '10.9.0.8', { proto: 'sctp', sport: 5012, dport: 3869, vtag: 0, chunks: [[1, 0, initv(0x2222)]] }),
  ipPacket('10.0.0.2', '10.9.0.8', { proto: 'sctp', sport: 5013, dport: 3869, vtag: 0x6666, chunks: [[4, 0, [0, 1, 0, 8, 1, 2, 3, 4]]] }),
].map((ip) => {
  const f = new Uint8Array(14 + ip.length);
  f.set(MAC.node.split(':').map((x) => parseInt(x, 16)), 0);
  f.set(MAC.sender.split(':').map((x) => parseInt(x, 16)), 6);
  f[12] = 0x08;
  f.set(ip, 14);
  return f;
});

describe.skipIf(SKIP)('-j CT --timeout against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the conntracks of a template with a timeout policy take its timeouts (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    const frames = [...FRAMES.map((s) => encodeSpec(parseSpec(s)).data), ...SCTP];
    writeFileSync(pcap, writePcap(frames.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    let lines = 0;
    let linesAgree = 0;
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-ts-${backend[0]}-${id}`, n: `nfvm-tn-${backend[0]}-${id}` };
      try {
        senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        expect((await run('ip', ['netns', 'exec', ns.n, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_sctp_timeout_heartbeat_sent=45'])).code).toBe(0);
        for (const p of POLICIES) {
          const made = await run('ip', ['netns', 'exec', ns.n, 'nfct', 'add', 'timeout', ...p.split(' ')]);
          expect(made.stderr + made.stdout, p).toBe('');
        }
        // nf_ct_set_timeout(): a policy of another protocol than the rule's is refused (EINVAL)
        const wrong = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j CT --timeout tcp1\nCOMMIT\n');
        expect(wrong.code).not.toBe(0);
        // xt_ct_set_timeout(): no protocol, no policy (whatever the policy's tracker)
        const noProto = '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j CT --timeout gen1\nCOMMIT\n';
        expect((await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], noProto)).code).not.toBe(0);
        expect(() => parseRestore(`${saveHeader(backend)}${noProto}`, { file: 'r' })).toThrow(/xt_CT: You must specify a L4 protocol and not use inversions on it/);
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        expect(existsSync(join(snap, 'nfct-timeout.txt'))).toBe(true);
        writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${RULES}`);
        const kernel = await injectAndCount(ns, pcap, backend);
        const list = (await run('ip', ['netns', 'exec', ns.n, 'conntrack', '-L', '-o', 'extended'])).stdout.split('\n').filter((l) => l.trim());
        expect(() => parseRestore(`${saveHeader(backend)}*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p udp -j CT --timeout tcp1\nCOMMIT\n`, {
          file: 'r', objects: { ctTimeouts: new Set(['tcp1']), ctTimeoutProtos: new Map([['tcp1', [2, 6] as const]]) },
        })).toThrow(/xt_CT: Timeout policy `tcp1' can only be used by L4 protocol number 6 \(EINVAL\)/);
        for (const engine of ['vm', 'reference'] as const) {
          const doc = JSON.parse(outputText(cmdReplay([snap, '--pcap', pcap, '--iface', 'eth0', '--json', '--engine', engine]))) as { text: string; conntrack?: CtEntryJson[] };
          const mine = flattenCounters(parseRestore(doc.text, { counters: true }), true);
          diffs.push(...counterDiffs(kernel, mine, tally).map((l) => `${backend} ${engine}${l}`));
          const cmp = compareConntrack(list, (doc.conntrack ?? []).map((j) => conntrackLine(j, true)));
          lines += cmp.total;
          linesAgree += cmp.agree;
          diffs.push(...cmp.diffs.map((d) => `${backend} ${engine} conntrack ${d}`));
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    console.log(`-j CT --timeout against the kernel: ${linesAgree}/${lines} conntrack lines agree, ${tally.agree}/${tally.counters} counters (${tally.nonzero} non-zero in the kernel)`);
    // per backend and engine: every frame's conntrack but the SYN the node resets (tcp_packet kills a conntrack whose only reply is a RST)
    expect(lines).toBe(2 * 2 * (frames.length - 1));
  }, 120_000);
});
