/**
 * The addrtype match against the kernel (Linux 6.18), both iptables
 * backends, both engines: a node namespace with two interfaces (eth0
 * 10.0.0.1/24 2001:db8:1::1/64, eth1 10.1.0.1/24 2001:db8:2::1/64), IPv6
 * forwarding on (the subnet-router anycast routes addrconf adds to the local
 * table), an `anycast` route added by hand, an IPv6 local range
 * (`local 2001:db8:77::/64 dev lo`: LOCAL by its route), an on-link prefix
 * route, routes via gateways and `unreachable` routes. Counting mangle rules (UDP only:
 * the node's own ND and MLD stay out) test every type, source and
 * destination, plain and inverted, with --limit-iface-in in PREROUTING,
 * INPUT and FORWARD, --limit-iface-out in FORWARD, OUTPUT and POSTROUTING,
 * and without a limit; UDP frames are injected on eth0 and on eth1 (to the
 * node's addresses, its broadcast, multicast, anycast, forwarded and
 * unroutable destinations, from its own and foreign sources) and datagrams
 * sent from the node (to itself, to lo, to neighbours on each interface).
 * Every rule counter of `iptables-*-save -c` / `ip6tables-*-save -c` is
 * compared with the node model's on the namespace's snapshot.
 *
 * Root with iproute2, both backends, tcpreplay and bash; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { counterDiffs, flattenCounters, kernelSkip, type KernelCounter, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, saveHeader } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec, specPacket } from '../../hooks/input/spec.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save',
  'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save', 'tcpreplay', 'bash'];
const SKIP = kernelSkip('the addrtype match against the kernel', TOOLS);
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-addrtype-'));
const MAC = { s0: '02:00:00:00:00:01', n0: '02:00:00:00:00:02', s1: '02:00:00:00:01:01', n1: '02:00:00:00:01:02' };

const NODE = `sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl -qw net.ipv6.conf.all.forwarding=1
for d in eth0 eth1; do sysctl -qw net.ipv4.conf.$d.rp_filter=0 net.ipv6.conf.$d.accept_dad=0 net.ipv6.conf.$d.forwarding=1; done
ip link set eth0 address ${MAC.n0}
ip link set eth1 address ${MAC.n1}
ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip -6 addr add 2001:db8:1::1/64 dev eth0 nodad
ip -6 addr add 2001:db8:2::1/64 dev eth1 nodad
ip link set eth0 up
ip link set eth1 up
ip neigh replace 10.0.0.2 lladdr ${MAC.s0} dev eth0 nud permanent
ip neigh replace 10.1.0.2 lladdr ${MAC.s1} dev eth1 nud permanent
ip -6 neigh replace 2001:db8:1::2 lladdr ${MAC.s0} dev eth0 nud permanent
ip -6 neigh replace 2001:db8:2::2 lladdr ${MAC.s1} dev eth1 nud permanent
ip -6 neigh replace 2001:db8:6::8 lladdr ${MAC.s1} dev eth1 nud permanent
ip route add 10.9.0.0/16 via 10.1.0.2
ip route add unreachable 10.99.0.0/16
ip -6 route add 2001:db8:9::/48 via 2001:db8:2::2
ip -6 route add 2001:db8:6::/64 dev eth1
ip -6 route add anycast 2001:db8:5::7 dev eth1
ip -6 route add unreachable 2001:db8:99::/48
ip -6 route add local 2001:db8:77::/64 dev lo`;

/** The node (NS.n) with eth0 and eth1, each a veth to the sender (NS.s: veth0, veth1), the sender silent. */
function topology(ns: { s: string; n: string }): void {
  for (const n of [ns.s, ns.n]) {
    const r = netnsAdd(n);
    if (r.status !== 0) throw new Error(`ip netns add ${n}: ${r.stderr}`);
  }
  nsSh(ns.s, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  nsSh(ns.n, 'sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; ip link set lo up');
  nsSh(ns.s, `ip link add veth0 address ${MAC.s0} type veth peer name eth0 netns ${ns.n}
ip link add veth1 address ${MAC.s1} type veth peer name eth1 netns ${ns.n}
ip link set veth0 up
ip link set veth1 up
iptables-legacy -P OUTPUT DROP`);
  nsSh(ns.n, NODE);
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', ns.n, '-o', 'link', 'show'], { encoding: 'utf8' });
    if ((r.stdout.match(/LOWER_UP/g) ?? []).length >= 3) break;
    spawnSync('sleep', ['0.1']);
  }
}

/** The frames injected on each interface: sources × destinations, UDP to port 9. */
const FRAMES = {
  4: {
    src: ['10.0.0.2', '10.1.0.2', '10.1.0.1', '10.9.0.5'],
    // 127.255.255.255: lo's broadcast host route before its local 127/8
    dst: ['10.0.0.1', '10.1.0.1', '10.0.0.255', '10.1.0.255', '255.255.255.255', '224.0.0.9', '10.9.0.7', '127.0.0.1', '127.255.255.255', '127.9.9.9', '10.99.0.1'],
  },
  6: {
    src: ['2001:db8:1::2', '2001:db8:2::1', '::', '2001:db8:9::5'],
    dst: ['2001:db8:1::1', '2001:db8:2::1', '2001:db8:1::', '2001:db8:5::7', '2001:db8:6::', '2001:db8:6::8', '2001:db8:9::7', '2001:db8:99::1', '2001:db8:77::1', 'ff02::1', 'ff02::2', 'ff0e::9'],
  },
};

/** Datagrams the node sends: destination and the source address the kernel picks for it. */
const SENT = {
  4: [['10.0.0.2', '10.0.0.1'], ['10.1.0.2', '10.1.0.1'], ['10.9.0.7', '10.1.0.1'], ['10.0.0.1', '10.0.0.1'], ['10.1.0.1', '10.1.0.1'], ['127.0.0.1', '127.0.0.1']],
  6: [['2001:db8:1::2', '2001:db8:1::1'], ['2001:db8:2::2', '2001:db8:2::1'], ['2001:db8:9::7', '2001:db8:2::1'], ['2001:db8:6::8', '2001:db8:2::1'],
    ['2001:db8:1::1', '2001:db8:1::1'], ['2001:db8:2::1', '2001:db8:2::1'], ['::1', '::1']],
};

const TYPES = {
  4: ['UNICAST', 'LOCAL', 'BROADCAST', 'MULTICAST', 'LOCAL,BROADCAST'],
  6: ['UNICAST', 'LOCAL', 'ANYCAST', 'UNREACHABLE', 'MULTICAST', 'UNSPEC', 'LOCAL,ANYCAST', 'UNICAST,UNREACHABLE'],
};
const LIMITS: Record<string, string[]> = {
  PREROUTING: [' --limit-iface-in', ''], INPUT: [' --limit-iface-in', ''], FORWARD: [' --limit-iface-in', ' --limit-iface-out', ''],
  OUTPUT: [' --limit-iface-out', ''], POSTROUTING: [' --limit-iface-out', ''],
};

function rules(fam: 4 | 6): { text: string; count: number } {
  const lines = ['*mangle', ...Object.keys(LIMITS).map((c) => `:${c} ACCEPT [0:0]`)];
  for (const [chain, limits] of Object.entries(LIMITS)) {
    for (const limit of limits) {
      for (const t of TYPES[fam]) {
        for (const o of ['--src-type', '--dst-type']) {
          for (const inv of ['', '! ']) lines.push(`-A ${chain} -p udp -m addrtype ${inv}${o} ${t}${limit}`);
        }
      }
    }
  }
  return { text: [...lines, 'COMMIT', ''].join('\n'), count: lines.length - 6 };
}

function frames(fam: 4 | 6, dstMac: string, srcMac: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const b = (a: string) => (fam === 6 ? `[${a}]` : a);
  for (const s of FRAMES[fam].src) {
    for (const d of FRAMES[fam].dst) out.push(encodeSpec(parseSpec(`udp ${b(s)}:4000 > ${b(d)}:9 len 4 src-mac ${srcMac} dst-mac ${dstMac}`)).data);
  }
  return out;
}

describe.skipIf(SKIP)('the addrtype match against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('every type, source and destination, inverted, with --limit-iface-in/out and without, both families: every rule counter (both engines, both backends)', async () => {
    const pcaps = {
      eth0: join(tmp, 'eth0.pcap'),
      eth1: join(tmp, 'eth1.pcap'),
    };
    writeFileSync(pcaps.eth0, writePcap([...frames(4, MAC.n0, MAC.s0), ...frames(6, MAC.n0, MAC.s0)].map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    writeFileSync(pcaps.eth1, writePcap([...frames(4, MAC.n1, MAC.s1), ...frames(6, MAC.n1, MAC.s1)].map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    const r4 = rules(4);
    const r6 = rules(6);
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-as-${backend[0]}-${id}`, n: `nfvm-an-${backend[0]}-${id}` };
      try {
        topology(ns);
        for (const [fam, r] of [['', r4], ['6', r6]] as const) {
          const load = await run('ip', ['netns', 'exec', ns.n, `ip${fam}tables-${backend}-restore`], r.text);
          expect(load.stderr, r.text).toBe('');
        }
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        const header = `${saveHeader(backend)}`;
        writeFileSync(join(snap, 'iptables-save.txt'), header + r4.text);
        writeFileSync(join(snap, 'ip6tables-save.txt'), header + r6.text);
        for (const [iface, veth] of [['eth0', 'veth0'], ['eth1', 'veth1']] as const) {
          const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', `--intf1=${veth}`, pcaps[iface]]);
          if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
        }
        for (const fam of [4, 6] as const) {
          for (const [d] of SENT[fam]) {
            const s = await run('ip', ['netns', 'exec', ns.n, 'bash', '-c', `printf x > /dev/udp/${d}/9`]);
            if (s.code !== 0) throw new Error(`send to ${d}: ${s.stderr}`);
          }
        }
        await new Promise((res) => setTimeout(res, 300));
        const kernel = new Map<string, KernelCounter>();
        for (const fam of ['', '6']) {
          const save = await run('ip', ['netns', 'exec', ns.n, `ip${fam}tables-${backend}-save`, '-c']);
          const rs = parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true, family: fam ? 'ip6' : 'ip' });
          // the rules count UDP only; the policies count the node's own ND, MLD and ICMP errors too
          for (const [k, v] of flattenCounters(rs, true)) if (!k.endsWith('policy')) kernel.set(`ip${fam} ${k}`, v);
        }
        for (const engine of ['vm', 'reference'] as const) {
          const model = buildNodeModel(readSnapshot(snap), { engine });
          replayCapture(model, pcaps.eth0, 'eth0');
          replayCapture(model, pcaps.eth1, 'eth1');
          for (const fam of [4, 6] as const) {
            for (const [d, s] of SENT[fam]) {
              const b = (a: string) => (fam === 6 ? `[${a}]` : a);
              model.send(specPacket(parseSpec(`udp ${b(s)}:40000 > ${b(d)}:9 len 1 from local`)));
            }
          }
          const mine = new Map<string, KernelCounter>();
          for (const [fam, rs] of [['', model.rulesetWithCounters('ip')], ['6', model.rulesetWithCounters('ip6')]] as const) {
            if (rs) for (const [k, v] of flattenCounters(rs, true)) mine.set(`ip${fam} ${k}`, v);
          }
          diffs.push(...counterDiffs(kernel, mine, tally).map((l) => `${backend} ${engine}${l}`));
        }
      } finally {
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    console.log(`addrtype against the kernel: ${tally.agree}/${tally.counters} rule counters agree (${tally.nonzero} nonzero)`);
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * (r4.count + r6.count));
    expect(tally.nonzero).toBeGreaterThan(200);
  }, 600_000);
});
