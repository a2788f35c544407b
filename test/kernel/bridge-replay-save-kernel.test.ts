/**
 * `nfvm replay SNAPSHOT --pcap FILE --save ebtables` (the bundled command)
 * against `ebtables-nft-save -c` after the same frames: the bridge node of
 * ../shared/docs/kernel-oracle.md (br0 10.0.0.1/24 over eth0 and eth1,
 * silent peers, static fdb entries and permanent neighbours,
 * bridge-nf-call-iptables on), ebtables-nft rules in filter and nat (nat
 * made first: the dump still lists filter first), user chains with their
 * own policies, a RETURN in a base chain, frames bridged both ways, to the
 * node, broadcast and to an unknown unicast MAC, injected with tcpreplay.
 * The printed text, the comment lines aside, is the kernel's tool's.
 *
 * Root with iproute2, bridge, ebtables-nft, iptables-legacy and tcpreplay;
 * skips with a message otherwise (fails under CI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bridgeTopology, kernelSkip, netnsDel, nsSh, nsSnapshotRunner, run } from '../helpers/kernel.js';
import { buildCli, runCli } from '../helpers/cli.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap } from '../../hooks/input/pcap.js';
import { writePcapng } from '../../hooks/input/pcapng.js';
import { LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';

const TOOLS = ['ip', 'bridge', 'ebtables-nft', 'ebtables-nft-save', 'iptables-legacy', 'tcpreplay'];
const SKIP = kernelSkip('replay --save ebtables against ebtables-save -c', TOOLS);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { a: `nfvm-rsa-${id}`, n: `nfvm-rsn-${id}`, b: `nfvm-rsb-${id}` };
const MAC = { a: '02:00:00:00:00:0a', b: '02:00:00:00:00:0b', br0: '02:00:00:00:00:fe', eth0: '02:00:00:00:01:00', eth1: '02:00:00:00:01:01' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-ebt-save-'));

/** ebtables commands, in the order they are given (the nat table is made before filter). */
const EBTABLES = [
  'ebtables-nft -t nat -A PREROUTING -p IPv4 --ip-proto udp -j mark --mark-set 0x5 --mark-target CONTINUE',
  'ebtables-nft -t nat -A PREROUTING -d Broadcast',
  'ebtables-nft -t nat -A POSTROUTING -o eth1',
  'ebtables-nft -t nat -A POSTROUTING -p IPv4 --ip-proto icmp',
  'ebtables-nft -N guests -P RETURN',
  'ebtables-nft -N sink -P DROP',
  'ebtables-nft -P FORWARD DROP',
  'ebtables-nft -A INPUT -p IPv4 --ip-proto udp -j ACCEPT',
  'ebtables-nft -A INPUT -d 02:00:00:00:00:fe',
  'ebtables-nft -A FORWARD -p IPv4 --ip-proto icmp -j RETURN',
  'ebtables-nft -A FORWARD -p IPv4 --ip-proto icmp -j ACCEPT',
  'ebtables-nft -A FORWARD -i eth0 -j guests',
  'ebtables-nft -A FORWARD -p IPv4 --ip-dst 10.0.0.99 -j sink',
  'ebtables-nft -A FORWARD -j ACCEPT',
  'ebtables-nft -A OUTPUT -p IPv4 --ip-proto icmp',
  'ebtables-nft -A guests -p IPv4 --ip-proto tcp --ip-dport 22 -j sink',
  'ebtables-nft -A guests --mark 0x5 -j RETURN',
  'ebtables-nft -A guests -p IPv4 --ip-proto tcp -j ACCEPT',
  'ebtables-nft -A sink -p IPv4 --ip-proto tcp -j ACCEPT',
];

/** The frames, by the port they enter on: bridged both ways, to the node (a closed UDP port draws an ICMP error out of br0), broadcast, unknown unicast. */
const FRAMES: { port: 'eth0' | 'eth1'; line: string }[] = [
  { port: 'eth0', line: `udp 10.0.0.2:1000 > 10.0.0.3:53 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}` },
  { port: 'eth0', line: `tcp 10.0.0.2:40000 > 10.0.0.3:22 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}` },
  { port: 'eth0', line: `tcp 10.0.0.2:40001 > 10.0.0.3:80 syn iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}` },
  { port: 'eth0', line: `icmp 10.0.0.2 > 10.0.0.3 echo-request iif eth0 src-mac ${MAC.a} dst-mac ${MAC.b}` },
  { port: 'eth0', line: `udp 10.0.0.2:1001 > 10.0.0.1:9999 iif eth0 src-mac ${MAC.a} dst-mac ${MAC.br0}` },
  { port: 'eth0', line: `udp 10.0.0.2:1002 > 10.0.0.255:9 iif eth0 src-mac ${MAC.a} dst-mac ff:ff:ff:ff:ff:ff` },
  { port: 'eth0', line: `tcp 10.0.0.2:40002 > 10.0.0.99:443 syn iif eth0 src-mac ${MAC.a} dst-mac 02:00:00:00:00:99` },
  { port: 'eth1', line: `udp 10.0.0.3:53 > 10.0.0.2:1000 iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}` },
  { port: 'eth1', line: `tcp 10.0.0.3:22 > 10.0.0.2:40000 syn,ack iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}` },
  { port: 'eth1', line: `icmp 10.0.0.3 > 10.0.0.2 echo-request iif eth1 src-mac ${MAC.b} dst-mac ${MAC.a}` },
];

/** The dump without its `#` comment lines (they carry the tool's name and the time). */
const body = (text: string) => text.split('\n').filter((l) => !l.startsWith('#')).join('\n');

let cli = '';

describe.skipIf(SKIP)('replay --save ebtables against ebtables-save -c', () => {
  beforeAll(async () => {
    cli = await buildCli();
    bridgeTopology(NS, MAC);
  }, 120_000);
  afterAll(() => {
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('prints the bridge tables with the counters the kernel shows after the same frames', async () => {
    nsSh(NS.n, EBTABLES.join('\n'));
    const snap = join(tmp, 'snap');
    captureSnapshot(snap, nsSnapshotRunner(NS.n));
    const pcapng = join(tmp, 'frames.pcapng');
    const data = FRAMES.map((f) => ({ data: encodeSpec(parseSpec(f.line)).data, ifId: f.port === 'eth0' ? 0 : 1, tsSec: 1 }));
    writeFileSync(pcapng, writePcapng(data, { interfaces: [{ name: 'eth0', linktype: LINKTYPE_ETHERNET }, { name: 'eth1', linktype: LINKTYPE_ETHERNET }] }));
    for (const port of ['eth0', 'eth1'] as const) {
      const file = join(tmp, `${port}.pcap`);
      writeFileSync(file, writePcap(data.filter((d) => d.ifId === (port === 'eth0' ? 0 : 1)), { linktype: LINKTYPE_ETHERNET }));
      const send = await run('ip', ['netns', 'exec', port === 'eth0' ? NS.a : NS.b, 'tcpreplay', '-q', '-t', '--intf1=veth0', file]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 300));
    const kernel = await run('ip', ['netns', 'exec', NS.n, 'ebtables-nft-save', '-c']);
    expect(kernel.code).toBe(0);
    const mine = runCli(cli, ['replay', snap, '--pcap', pcapng, '--save', 'ebtables']);
    expect(mine.err).toBe('');
    expect(mine.code).toBe(0);
    expect(mine.out).toMatch(/^# Generated by nfvm save v\S+ \(ebtables\)\n\*filter\n/);
    expect(body(mine.out)).toBe(body(kernel.stdout));
    // the frames moved counters in both tables and in OUTPUT / POSTROUTING (the node's ICMP error)
    const moved = body(kernel.stdout).split('\n').filter((l) => /^\[[1-9]/.test(l));
    expect(moved.length).toBeGreaterThanOrEqual(8);
    console.log(`replay --save ebtables: ${moved.length} rules with non-zero counters, text equal to ebtables-nft-save -c`);
    // the base chain's RETURN ends in the FORWARD policy (DROP): the ACCEPT after it saw nothing
    expect(kernel.stdout).toMatch(/\[2:\d+\] -A FORWARD -p IPv4 --ip-proto icmp -j RETURN\n\[0:0\] -A FORWARD -p IPv4 --ip-proto icmp -j ACCEPT\n/);
  }, 120_000);
});
