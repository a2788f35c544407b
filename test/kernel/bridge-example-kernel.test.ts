/**
 * The README's container-bridge example against the running kernel: a
 * Docker-style host in a namespace (eth0 192.168.1.10/24 to a client,
 * bridge docker0 172.17.0.1/16 with the container's port vethc1,
 * bridge-nf-call-iptables on, the container's port 80 published on 8080
 * with DNAT and MASQUERADE, ebtables-nft anti-spoofing rules), the client's
 * SYN to the published port and the container's SYN-ACK injected with
 * tcpreplay (client and container silent). The packet the host forwards out
 * of docker0 goes through br_dev_xmit and the bridge's ebtables OUTPUT and
 * POSTROUTING; the answer comes in through the bridge, ebtables and
 * br_netfilter first. `nfvm replay --save ebtables` and `--save iptables`
 * on a snapshot taken before the frames give the kernel's counters after
 * them, every one.
 *
 * docker0 is made with mcast_snooping 0 (kernel-oracle.md's bridge): with
 * snooping on, the bridge joins the all-snoopers group 224.0.0.106
 * (br_multicast_join_snoopers, net/bridge/br_multicast.c) and the IGMPv3
 * report for it leaves through vethc1 (ebtables nat POSTROUTING, 40 bytes)
 * at a random delay after the bridge comes up: counted or not depending on
 * whether it falls after the rules are loaded. The node's own spontaneous
 * traffic is not something a replay of two frames can see.
 *
 * Root with iproute2, bridge, ebtables-nft, iptables-legacy and tcpreplay;
 * skips with a message otherwise (fails under CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, kernelSkip, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, run } from '../helpers/kernel.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap } from '../../hooks/input/pcap.js';
import { writePcapng } from '../../hooks/input/pcapng.js';
import { LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'bridge', 'ebtables-nft', 'ebtables-nft-save', 'iptables-legacy-restore', 'iptables-legacy-save', 'tcpreplay'];
const SKIP = kernelSkip('the container-bridge example against the kernel', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { h: `nfvm-exh-${id}`, o: `nfvm-exo-${id}`, c: `nfvm-exc-${id}` };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-brex-k-'));

const IPTABLES = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m physdev --physdev-in vethc1
-A POSTROUTING -o docker0 -m physdev --physdev-is-out
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
`;

const EBTABLES = [
  'ebtables-nft -t nat -A PREROUTING -i vethc1 -s ! 02:42:ac:11:00:02 -j DROP',
  'ebtables-nft -t nat -A POSTROUTING -o vethc1 -p IPv4',
  'ebtables-nft -A FORWARD -i vethc1 -s ! 02:42:ac:11:00:02 -j DROP',
  'ebtables-nft -A INPUT -i vethc1 -p IPv4 --ip-src ! 172.17.0.2 -j DROP',
  'ebtables-nft -A INPUT -i vethc1 -p IPv4 --ip-proto tcp',
  'ebtables-nft -A OUTPUT -o vethc1 -p IPv4 --ip-proto tcp -j ACCEPT',
];

const SYN = 'tcp 192.168.1.20:40000 > 192.168.1.10:8080 syn iif eth0 src-mac 52:54:00:aa:bb:cc dst-mac 52:54:00:12:34:56';
const SYNACK = 'tcp 172.17.0.2:80 > 192.168.1.20:40000 syn,ack seq 1000000 ackseq 2 iif vethc1 src-mac 02:42:ac:11:00:02 dst-mac 02:42:7a:1e:00:01';

let cli = '';

describe.skipIf(SKIP)('the container-bridge example against the kernel', () => {
  beforeAll(async () => {
    cli = await buildCli();
    for (const ns of Object.values(NS)) {
      const r = netnsAdd(ns);
      if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
      nsSh(ns, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
    }
    nsSh(NS.h, `ip link add eth0 address 52:54:00:12:34:56 type veth peer name eth0 netns ${NS.o}
ip link add docker0 address 02:42:7a:1e:00:01 type bridge mcast_snooping 0
ip link add vethc1 address 7e:11:22:33:44:55 type veth peer name eth0 netns ${NS.c}
ip link set vethc1 master docker0
ip addr add 192.168.1.10/24 dev eth0
ip addr add 172.17.0.1/16 dev docker0
ip link set eth0 up; ip link set docker0 up; ip link set vethc1 up
ip route add default via 192.168.1.1
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
bridge fdb replace 02:42:ac:11:00:02 dev vethc1 master static
ip neigh replace 172.17.0.2 lladdr 02:42:ac:11:00:02 dev docker0 nud permanent
ip neigh replace 192.168.1.20 lladdr 52:54:00:aa:bb:cc dev eth0 nud permanent
ip neigh replace 192.168.1.1 lladdr 52:54:00:00:00:01 dev eth0 nud permanent`);
    // the client and the container stay silent (no RST to the SYN-ACK, none to the SYN)
    nsSh(NS.o, 'ip link set eth0 address 52:54:00:aa:bb:cc; ip addr add 192.168.1.20/24 dev eth0; ip link set eth0 up; iptables-legacy -P OUTPUT DROP');
    nsSh(NS.c, 'ip link set eth0 address 02:42:ac:11:00:02; ip addr add 172.17.0.2/16 dev eth0; ip link set eth0 up; ip route add default via 172.17.0.1; iptables-legacy -P OUTPUT DROP');
    for (let i = 0; i < 100; i++) {
      const l = await run('ip', ['netns', 'exec', NS.h, 'bridge', 'link', 'show']);
      if (l.stdout.includes('state forwarding')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every ebtables and iptables counter agrees after the SYN to the published port and the container\'s SYN-ACK', async () => {
    const restore = await run('ip', ['netns', 'exec', NS.h, 'iptables-legacy-restore'], IPTABLES);
    expect(restore.stderr).toBe('');
    nsSh(NS.h, EBTABLES.join('\n'));
    const snap = join(tmp, 'snap');
    captureSnapshot(snap, nsSnapshotRunner(NS.h));
    for (const [ns, spec] of [[NS.o, SYN], [NS.c, SYNACK]] as const) {
      const file = join(tmp, `${ns}.pcap`);
      writeFileSync(file, writePcap([{ data: encodeSpec(parseSpec(spec)).data }], { linktype: LINKTYPE_ETHERNET }));
      const send = await run('ip', ['netns', 'exec', ns, 'tcpreplay', '-q', '--intf1=eth0', file]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const pcapng = join(tmp, 'both.pcapng');
    writeFileSync(pcapng, writePcapng([SYN, SYNACK].map((s, i) => ({ data: encodeSpec(parseSpec(s)).data, ifId: i, tsSec: 1, tsNsec: i * 1_000_000 })), {
      interfaces: [{ name: 'eth0', linktype: LINKTYPE_ETHERNET }, { name: 'vethc1', linktype: LINKTYPE_ETHERNET }],
    }));

    const ebKernel = await run('ip', ['netns', 'exec', NS.h, 'ebtables-nft-save', '-c']);
    const ebMine = runCli(cli, ['replay', snap, '--pcap', pcapng, '--save', 'ebtables']);
    expect(ebMine.err).toBe('');
    // ebtables-nft 1.8.9 prints `--opt ! value`, nfvm (as 1.8.13) `! --opt value`
    const body = (t: string) => t.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/ (--?[A-Za-z0-9_-]+) ! /g, ' ! $1 ')).join('\n');
    expect(body(ebMine.out)).toBe(body(ebKernel.stdout));
    const moved = body(ebKernel.stdout).split('\n').filter((l) => /^\[[1-9]/.test(l));
    // OUTPUT and nat POSTROUTING (the forwarded SYN out of docker0), filter INPUT (the SYN-ACK up to docker0)
    expect(moved.length).toBe(3);

    const ipKernel = flattenCounters(parseRestore((await run('ip', ['netns', 'exec', NS.h, 'iptables-legacy-save', '-c'])).stdout, { counters: true }), true);
    const ipMine = runCli(cli, ['replay', snap, '--pcap', pcapng]);
    expect(ipMine.err).toBe('');
    const mine = flattenCounters(parseRestore(ipMine.out, { counters: true }), true);
    const diffs = [...ipKernel].filter(([k, c]) => mine.get(k)?.packets !== c.packets || mine.get(k)?.bytes !== c.bytes)
      .map(([k, c]) => `${k}: kernel [${c.packets}:${c.bytes}] nfvm [${mine.get(k)?.packets}:${mine.get(k)?.bytes}]`);
    expect(diffs).toEqual([]);
    const nonzero = [...ipKernel.values()].filter((c) => c.packets > 0n).length;
    expect(nonzero).toBeGreaterThan(8);
    console.log(`container-bridge example: ${moved.length} ebtables rules and ${nonzero} iptables counters moved, ${ipKernel.size} iptables and every ebtables counter agree`);
  }, 60_000);
});
