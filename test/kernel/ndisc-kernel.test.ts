/**
 * Neighbour solicitations and the node's advertisements (hooks/answer/
 * ndisc.ts) against the kernel (Linux 6.18), ip6tables legacy and nft.
 *
 * The node has eth0 (02:00:00:00:00:02; 2001:db8::1/64 and its link-local
 * fe80::ff:fe00:2), eth1 (2001:db8:1::1/64, its veth peer without IPv6), forwarding on (the R
 * flag, the subnet-router anycast 2001:db8::), no DAD, no router
 * solicitations, MLD reports done before the rules are loaded, and
 * permanent neighbour entries for the sources that are answered (so the
 * answers need no address resolution and the entries do not change). The
 * sender has IPv6 off. Injected from it: solicitations multicast and
 * unicast, with and without a source link-layer address option, for the
 * global, link-local and anycast addresses, DAD probes, and the ones
 * ndisc_rcv/ndisc_recv_ns drop (hop limit, code, short, a multicast target,
 * options of length 0, truncated or of the wrong size, another device's
 * address, a multicast solicitation without the option from a source with
 * no neighbour entry). Every counter but the builtin OUTPUT and POSTROUTING
 * policies (MLD reports may pass there) is compared with `nfvm replay`
 * (both engines): the rules count the advertisements by destination,
 * source, length, flags and hop limit in OUTPUT and POSTROUTING, and the
 * solicitations in PREROUTING and INPUT.
 *
 * Root with iproute2, both ip6tables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkip, netnsAdd, nsSh, replayCountersAgainstKernel } from '../helpers/kernel.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseIPv6 } from '../../hooks/route/addr.js';

const TOOLS = ['ip', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('neighbour discovery against the kernel', TOOLS);
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-ndisc-'));
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02' };
const mac = (m: string) => m.split(':').map((x) => parseInt(x, 16));
/** Sources the node has permanent neighbour entries for. */
const KNOWN = ['2001:db8::2', '2001:db8::3', '2001:db8::4', '2001:db8::6', 'fe80::1'];

function addr(s: string): number[] {
  const w = parseIPv6(s)!;
  return [...w].flatMap((x) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
}

/** An Ethernet frame with an IPv6 packet carrying ICMPv6 `icmp` (its checksum filled in). */
function frame(src: string, dst: string, icmp: number[], o: { hl?: number; dmac?: number[] } = {}): Uint8Array {
  const s = addr(src);
  const d = addr(dst);
  const body = [...icmp];
  const pseudo = [...s, ...d, 0, 0, body.length >> 8, body.length & 255, 0, 0, 0, 58];
  let sum = 0;
  const all = [...pseudo, ...body];
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  body[2] = c >> 8;
  body[3] = c & 255;
  const dmac = o.dmac ?? (d[0] === 0xff ? [0x33, 0x33, ...d.slice(12)] : mac(MAC.eth0));
  return Uint8Array.from([...dmac, ...mac(MAC.sender), 0x86, 0xdd, 0x60, 0, 0, 0, body.length >> 8, body.length & 255, 58, o.hl ?? 255, ...s, ...d, ...body]);
}

/** A solicitation for `target`: ICMPv6 type 135, code, then its options. */
const ns = (target: string, opts: number[] = [], code = 0) => [135, code, 0, 0, 0, 0, 0, 0, ...addr(target), ...opts];
const SLLAO = [1, 1, ...mac(MAC.sender)];
const snm = (low: string) => `ff02::1:ff${low}`;

const FRAMES: Uint8Array[] = [
  // answered
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', SLLAO)),
  frame('2001:db8::3', '2001:db8::1', ns('2001:db8::1')),
  frame('2001:db8::4', '2001:db8::1', ns('2001:db8::1', SLLAO)),
  frame('2001:db8::6', snm('00:1'), ns('2001:db8::1')),
  frame('fe80::1', snm('00:2'), ns('fe80::ff:fe00:2', SLLAO)),
  frame('::', snm('00:1'), ns('2001:db8::1')),
  frame('2001:db8::2', '2001:db8::', ns('2001:db8::', SLLAO)),
  frame('2001:db8::3', snm('00:1'), ns('2001:db8::1', [9, 1, 0, 0, 0, 0, 0, 0, ...SLLAO])),
  // dropped
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', SLLAO), { hl: 254 }),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', SLLAO, 1)),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1').slice(0, 20)),
  frame('2001:db8::2', snm('00:1'), ns('ff02::1', SLLAO)),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', [1, 0, 0, 0, 0, 0, 0, 0])),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', [1, 1, 0, 0])),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8::1', [1, 2, ...mac(MAC.sender), 0, 0, 0, 0, 0, 0, 0, 0])),
  frame('2001:db8::2', snm('00:1'), ns('2001:db8:1::1', SLLAO)),
  frame('2001:db8::9', snm('00:1'), ns('2001:db8::1')),
  frame('::', 'ff02::1', ns('2001:db8::1')),
  frame('::', snm('00:1'), ns('2001:db8::1', SLLAO)),
];

const NA = '-p ipv6-icmp -m icmp6 --icmpv6-type 136';
const COUNT = (chain: string) => [
  `-A ${chain} ${NA} -d 2001:db8::2/128`, `-A ${chain} ${NA} -d 2001:db8::3/128`, `-A ${chain} ${NA} -d 2001:db8::4/128`,
  `-A ${chain} ${NA} -d 2001:db8::6/128`, `-A ${chain} ${NA} -d fe80::1/128`, `-A ${chain} ${NA} -d ff02::1/128`,
  `-A ${chain} ${NA} -s 2001:db8::1/128`, `-A ${chain} ${NA} -s fe80::ff:fe00:2/128`, `-A ${chain} ${NA} -s 2001:db8::/128`,
  `-A ${chain} ${NA} -m length --length 72`, `-A ${chain} ${NA} -m length --length 64`, `-A ${chain} ${NA} -m hl --hl-eq 255`,
  `-A ${chain} ${NA} -m u32 --u32 "44>>24=0xe0"`, `-A ${chain} ${NA} -m u32 --u32 "44>>24=0xc0"`, `-A ${chain} ${NA} -m u32 --u32 "44>>24=0xa0"`,
  `-A ${chain} ${NA} -o eth0`, `-A ${chain} -p ipv6-icmp -m icmp6 --icmpv6-type 135`,
];
const RULES = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135', '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m pkttype --pkt-type multicast',
  ...COUNT('OUTPUT'), 'COMMIT',
  '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -p ipv6-icmp -m icmp6 --icmpv6-type 135', ...COUNT('POSTROUTING'), 'COMMIT', ''].join('\n');


/** The node with IPv6 on eth0 and eth1, the sender silent (IPv6 off), MLD reports done before the rules. */
function topology(NS: { s: string; n: string }): void {
  for (const n of [NS.s, NS.n]) if (netnsAdd(n).status !== 0) throw new Error(`ip netns add ${n}`);
  nsSh(NS.s, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  nsSh(NS.n, `sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
sysctl -qw net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
sysctl -qw net.ipv6.conf.all.mldv2_unsolicited_report_interval=1 net.ipv6.conf.default.mldv2_unsolicited_report_interval=1
sysctl -qw net.ipv6.conf.all.mldv1_unsolicited_report_interval=1 net.ipv6.conf.default.mldv1_unsolicited_report_interval=1
ip link set lo up`);
  nsSh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}`);
  nsSh(NS.n, `ip link set eth0 address ${MAC.eth0}
ip link add eth1 type veth peer name eth1p
sysctl -qw net.ipv6.conf.eth1p.disable_ipv6=1; ip link set eth1p up
ip addr add 2001:db8::1/64 dev eth0
ip addr add 2001:db8:1::1/64 dev eth1
ip link set eth0 up; ip link set eth1 up
${KNOWN.map((a) => `ip -6 neigh replace ${a} lladdr ${MAC.sender} dev eth0 nud permanent`).join('\n')}`);
  nsSh(NS.s, 'sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1; ip link set veth0 up');
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', '-6', 'addr', 'show'], { encoding: 'utf8' });
    if (!/tentative/.test(r.stdout) && /fe80::ff:fe00:2/.test(r.stdout)) break;
    spawnSync('sleep', ['0.1']);
  }
  spawnSync('sleep', ['1']); // the MLD reports of the new addresses
}

describe.skipIf(SKIP)('neighbour discovery against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the node answers solicitations as the kernel does (every counter, both backends and engines)', async () => {
    const pcap = join(tmp, 'ns.pcap');
    writeFileSync(pcap, writePcap(FRAMES.map((data, i) => ({ data, tsSec: 100, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const diffs: string[] = [];
    let answers = 0;
    await replayCountersAgainstKernel({
      tag: 'nd', family: 'ip6', rules: RULES, pcap, tmp, tally, diffs, quietPolicies: true, topology, seen: (doc) => { answers = doc.summary.answers.sent; },
    });
    console.log(`neighbour discovery against the kernel: ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel), ${answers} advertisements`);
    expect(diffs).toEqual([]);
    expect(answers).toBe(8);
  }, 120_000);
});
