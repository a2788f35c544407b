/**
 * The node's IPv6 answers against the running kernel (Linux 6.18), for the
 * protocols a locally delivered packet may carry: ip6_protocol_deliver_rcu()
 * hands a protocol without a handler and without a raw socket an ICMPv6
 * parameter problem (unknown next header, pointing at the next-header field
 * that named it past the extension headers the kernel passes), UDP and
 * UDP-Lite without a socket get port unreachable, echo requests a reply; and
 * a packet forwarded back out of eth0 gets a redirect (ndisc_send_redirect:
 * target, its link-layer address, the quoted packet, both peers' limits). The
 * handlers come from the snapshot's protocols.txt (captureSnapshot derives
 * it from this kernel's configuration: no SCTP, AH or ESP here).
 *
 * A node namespace with eth0 2001:db8::1/64 (no DAD, no router
 * solicitations, MLD reports sent and settled before the rules and the
 * capture start), a sender namespace whose IPv6 is off (it stays silent),
 * permanent neighbours for every source. Frames are injected with
 * tcpreplay; `tcpdump -i any` in the node records both directions
 * (test/helpers/answers.ts); every counter of `ip6tables-legacy-save -c`
 * (OUTPUT and POSTROUTING included) and every frame the node sent must
 * agree with `nfvm` on the snapshot, but for the flow label the kernel
 * picks for its ICMPv6 errors (and the checksum of the stack's reset, which
 * the device completes). Then the same node with conntrack loaded, with the
 * NAT core loaded, with a multipath route, and with policy rules and
 * tables of their own (each case's comment says what it shows). Root, iproute2, ip6tables-legacy,
 * tcpreplay, tcpdump, python3 (the raw socket).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, kernelSkip, netnsAdd, netnsDel, nsSh, nsSnapshotRunner, run } from '../helpers/kernel.js';
import { answersAgree, kernelRun, pythonInNs } from '../helpers/answers.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import type { EngineKind } from '../../hooks/node.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const SKIP = kernelSkip('the node\'s IPv6 answers against the kernel', ['ip', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'tcpreplay', 'tcpdump', 'python3']);

const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const NS = { s: `nfvm-a6s-${id}`, n: `nfvm-a6n-${id}` };
const MAC = { sender: '02:00:00:00:00:01', eth0: '02:00:00:00:00:02' };
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-answers6-kern-'));
let raw: ChildProcess | undefined;

/** A source address of its own for each frame (their ICMPv6 buckets stay full). */
const SRC = (i: number) => `2001:db8::${(0x10 + i).toString(16)}`;
const SOURCES = 72;

const RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p 253
-A INPUT -p udp
-A FORWARD -d 2001:db8::78/128 -j DROP
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/1
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/0
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/2
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 129
-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 137
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -p ipv6-icmp
COMMIT
`;

/**
 * The same with conntrack loaded. A port unreachable for a UDP port with no
 * socket carries no conntrack (__udp6_lib_rcv lets go of it, nf_reset_ct,
 * before icmpv6_send): raw OUTPUT's CT --notrack makes it untracked, as it
 * does the echo reply (icmpv6_echo_reply attaches nothing). A time exceeded
 * keeps its packet's conntrack (nf_ct_attach in icmpv6_getfrag), on which
 * CT --notrack does nothing: RELATED.
 */
const CT_RULES = `${RULES}*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p ipv6-icmp -j CT --notrack
-A OUTPUT -p ipv6-icmp -m conntrack --ctstate UNTRACKED
-A OUTPUT -p ipv6-icmp -m conntrack --ctstate RELATED
COMMIT
`;

/**
 * The same with the NAT core loaded. A time exceeded and REJECT's error about
 * DNATed packets carry their packet's conntrack into nf_nat's hooks
 * (nf_nat_icmpv6_reply_translation); a redirect carries none
 * (ndisc_send_redirect attaches nothing, conntrack leaves it untracked).
 */
const NAT_RULES = `${RULES.replace('-A FORWARD -d 2001:db8::78/128 -j DROP\n', '-A FORWARD -d 2001:db8::78/128 -j DROP\n-A FORWARD -d 2001:db8:98::7/128 -p udp -j REJECT --reject-with icmp6-adm-prohibited\n-A FORWARD -d 2001:db8:98::7/128 -p tcp -j REJECT --reject-with tcp-reset\n')}*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 2001:db8:53::1/128 -p udp -m udp --dport 53 -j DNAT --to-destination 2001:db8::77
-A PREROUTING -d 2001:db8:80::1/128 -p udp -m udp --dport 53 -j DNAT --to-destination 2001:db8:98::5
-A PREROUTING -d 2001:db8:81::1/128 -j DNAT --to-destination 2001:db8:98::7
-A PREROUTING -d 2001:db8:90::1/128 -j DNAT --to-destination 2001:db8::1
-A PREROUTING -d 2001:db8::1/128 -p tcp -m tcp --dport 8082 -j REDIRECT --to-ports 2222
-A PREROUTING -d 2001:db8::1/128 -p udp -m udp --dport 8083 -j REDIRECT --to-ports 5353
-A POSTROUTING -o eth0 -p ipv6-icmp
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p ipv6-icmp -m conntrack --ctstate UNTRACKED
-A OUTPUT -p ipv6-icmp -m conntrack --ctstate RELATED
COMMIT
`;

/** The frames of the NAT case (sources after those of ctFrames()). */
function natFrames(): string[] {
  const S = (i: number) => `[${SRC(48 + i)}]`;
  return [
    `udp ${S(0)}:40200 > [2001:db8:53::1]:53 len 10`, // DNATed to 2001:db8::77, back out of eth0: a redirect
    `udp ${S(1)}:40201 > [2001:db8:80::1]:53 len 10 hl 1`, // DNATed, hop limit reached: a time exceeded about a first packet
    `udp ${S(2)}:40202 > [2001:db8:81::1]:53 len 10`, // DNATed, REJECTed in FORWARD
    `udp ${S(3)}:40203 > [2001:db8:80::1]:53 len 10`, // DNATed and forwarded
    `udp ${S(3)}:40203 > [2001:db8:80::1]:53 len 10 hl 1`, // the same connection, hop limit reached
    `tcp ${S(4)}:40204 > [2001:db8::1]:8082 syn`, // REDIRECTed to the closed port 2222: the stack's reset
    `udp ${S(5)}:40205 > [2001:db8::1]:8083 len 10`, // REDIRECTed to the closed port 5353: a port unreachable without conntrack
    `tcp ${S(6)}:40206 > [2001:db8::1]:2222 syn`, // the closed port itself: the stack's reset
    `tcp ${S(7)}:40207 > [2001:db8:81::1]:80 syn`, // DNATed, REJECTed in FORWARD with a reset
    `icmpv6 ${S(8)} > [2001:db8:90::1] echo-request id 9 seq 2 len 16`, // DNATed to the node: the echo reply leaves from 2001:db8:90::1
    `udp ${S(9)}:40208 > [2001:db8:90::1]:5353 len 10`, // and the port unreachable for a closed port
  ];
}

/** The frames of the conntrack case (sources of their own, after those of frames()). */
function ctFrames(): string[] {
  const S = (i: number) => `[${SRC(40 + i)}]`;
  return [
    `udp ${S(0)}:40100 > [2001:db8::1]:5353 len 10`, // no socket: a port unreachable without conntrack, untracked in raw OUTPUT
    `udp ${S(1)}:40101 > [2001:db8:98::5]:53 len 10 hl 1`, // a time exceeded with its packet's conntrack: RELATED
    `icmpv6 ${S(2)} > [2001:db8::1] echo-request id 9 seq 1 len 16`, // the echo reply: untracked
    `udp ${S(3)}:40102 > [2001:db8::1]:5353 len 10`,
  ];
}

/** The frames, in order (without their MACs): what each is for. */
function frames(): string[] {
  let i = 0;
  const S = () => `[${SRC(i++)}]`;
  const f: string[] = [];
  f.push(`icmpv6 ${S()} > [2001:db8::1] echo-request id 7 seq 1 len 16`); // echo reply
  f.push(`udp ${S()}:40000 > [2001:db8::1]:5353 len 10`); // port unreachable
  f.push(`ip6 proto 253 ${S()} > [2001:db8::1] len 16`); // no handler: parameter problem, pointer 6
  f.push(`ip6 proto 253 ${S()} > [2001:db8::1] dst`); // past a destination options header: pointer 40
  f.push(`ip6 proto 253 ${S()} > [2001:db8::1] hbh dst`); // past hop-by-hop and destination options: pointer 48
  f.push(`ip6 proto 253 ${S()} > [2001:db8::1] rt`); // past a routing header with no segments left: pointer 40
  f.push(`ip6 proto 253 ${S()} > [2001:db8::1] ah`); // AH has no handler here (no ah6): pointer 6
  f.push(`ip6 proto 132 ${S()} > [2001:db8::1] len 12`); // SCTP is not built in here: pointer 6
  f.push(`ip6 proto 254 ${S()} > [2001:db8::1] len 16`); // the raw socket of 254 takes it: nothing
  f.push(`ip6 proto 253 ${S()} > [ff02::1] len 16 dst-mac 33:33:00:00:00:01`); // multicast: nothing
  f.push(`udplite ${S()}:40001 > [2001:db8::1]:7000 len 20`); // UDP-Lite, no socket: port unreachable
  f.push(`udplite ${S()}:40002 > [2001:db8::1]:7000 cscov 12 len 20`); // partial coverage: port unreachable
  f.push(`udplite ${S()}:40003 > [2001:db8::1]:7000 cscov 2 len 20`); // coverage below the header: dropped
  // Hop-by-hop options (ipv6_parse_hopopts, before PREROUTING); `opt=T` makes the first extension header's first option one of type T.
  f.push(`udp ${S()}:40030 > [2001:db8::1]:5353 hbh len 0 len 10 opt=0x82`); // unknown: parameter problem, nothing counted in PREROUTING
  f.push(`udp ${S()}:40031 > [2001:db8::1]:5353 hbh len 0 len 10 opt=0x42`); // unknown, discard
  f.push(`udp ${S()}:40032 > [2001:db8::1]:5353 hbh len 1 len 10`); // 14 bytes of PadN
  f.push(`udp ${S()}:40033 > [2001:db8::1]:5353 hbh len 0 len 10 opt=0x05`); // a router alert of length 4
  f.push(`udp ${S()}:40034 > [2001:db8::1]:5353 hbh len 0 len 10 opt=0x02`); // unknown, skip: on to UDP, port unreachable
  // Extension headers after INPUT (ipv6_rthdr_rcv, ipv6_destopt_rcv).
  f.push(`tcp ${S()}:40020 > [2001:db8::1]:80 syn rt type 0 segsleft 1 addrs 2001:db8::9`); // segments left: parameter problem at its type
  f.push(`udp ${S()}:40021 > [2001:db8::1]:5353 rt type 0 segsleft 0 addrs 2001:db8::9 len 10`); // none left: on to UDP, port unreachable
  f.push(`udp ${S()}:40022 > [2001:db8::1]:5353 dst len 1 len 10`); // 14 bytes of PadN: dropped
  f.push(`udp ${S()}:40023 > [2001:db8::1]:5353 dst len 0 len 10 opt=0x02`); // unknown, skip: port unreachable
  f.push(`udp ${S()}:40024 > [2001:db8::1]:5353 dst len 0 len 10 opt=0x42`); // unknown, discard: nothing
  f.push(`udp ${S()}:40025 > [2001:db8::1]:5353 dst len 0 len 10 opt=0x82`); // unknown, parameter problem at the option
  f.push(`udp ${S()}:40026 > [2001:db8::1]:5353 dst len 0 len 10 opt=0xc2`); // unknown, parameter problem unless multicast
  f.push(`udp ${S()}:40027 > [ff02::1]:5353 dst len 0 len 10 opt=0xc2 dst-mac 33:33:00:00:00:01`); // to a multicast destination: nothing
  f.push(`udp ${S()}:40028 > [ff02::1]:5353 dst len 0 len 10 opt=0x82 dst-mac 33:33:00:00:00:01`); // action 2: the error goes even so
  // Forwarded back out of eth0 (ip6_forward → ndisc_send_redirect).
  f.push(`udp ${S()}:40010 > [2001:db8::77]:53 len 10`); // on-link: the target is the destination, with its link-layer address
  f.push(`udp ${S()}:40011 > [2001:db8::78]:53 len 10`); // no neighbour entry (FORWARD drops it): no target link-layer option
  f.push(`udp ${S()}:40012 > [2001:db8:99::5]:53 len 200`); // via the link-local gateway fe80::1: the target is the gateway
  f.push(`udp ${S()}:40013 > [2001:db8:98::5]:53 len 10`); // via a global gateway: no redirect
  f.push(`udp ${S()}:40016 > [2001:db8:98::5]:53 frag offset 0 mf ipid 7 hl 1 len 16`); // a first fragment, hop limit reached: time exceeded
  f.push(`udp ${S()} > [2001:db8:98::5] frag offset 8 ipid 8 hl 1 len 16`); // a later fragment: time exceeded as well (icmp6_send answers any)
  f.push(`udp [2001:db8::7]:40014 > [2001:db8::77]:53 len 10`); // the same source and destination twice: within both peers' burst of 6
  f.push(`udp [2001:db8::7]:40015 > [2001:db8::77]:53 len 10`);
  if (i > 40) throw new Error('more sources than the first case has (the conntrack case takes 40 on)');
  return f;
}

function topology(): void {
  for (const ns of Object.values(NS)) {
    const r = netnsAdd(ns);
    if (r.status !== 0) throw new Error(`ip netns add ${ns}: ${r.stderr}`);
  }
  nsSh(NS.s, 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set lo up');
  nsSh(NS.s, `ip link add veth0 address ${MAC.sender} type veth peer name eth0 netns ${NS.n}`);
  const neigh = Array.from({ length: SOURCES }, (_, i) => `ip -6 neigh replace ${SRC(i)} lladdr ${MAC.sender} dev eth0 nud permanent`).join('\n');
  nsSh(NS.n, `sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.router_solicitations=0
sysctl -qw net.ipv6.conf.default.mldv1_unsolicited_report_interval=1 net.ipv6.conf.default.mldv2_unsolicited_report_interval=1
sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.router_solicitations=0
sysctl -qw net.ipv6.conf.eth0.mldv1_unsolicited_report_interval=1 net.ipv6.conf.eth0.mldv2_unsolicited_report_interval=1
sysctl -qw net.ipv4.conf.all.rp_filter=0
ip link set lo up
ip link set eth0 address ${MAC.eth0}
ip -6 addr add 2001:db8::1/64 dev eth0 nodad
ip link set eth0 up
${neigh}
ip -6 neigh replace 2001:db8::77 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 neigh replace 2001:db8::7 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 neigh replace 2001:db8::2 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 neigh replace fe80::1 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 route add 2001:db8:99::/64 via fe80::1 dev eth0
ip -6 route add 2001:db8:98::/64 via 2001:db8::2 dev eth0`);
  nsSh(NS.s, 'sysctl -qw net.ipv6.conf.veth0.disable_ipv6=1\nip link set veth0 up\niptables-legacy -P OUTPUT DROP 2>/dev/null || true');
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('ip', ['-n', NS.n, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' });
    if (r.stdout.includes('LOWER_UP')) break;
    spawnSync('sleep', ['0.1']);
  }
}

const RAW = `
import socket, time
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 254)
print('ready', flush=True)
time.sleep(600)
`;

/** The namespaces built anew (any of an earlier run deleted) with the node's raw socket. */
async function freshNode(): Promise<void> {
  if (raw?.pid) raw.kill('SIGKILL');
  for (const ns of Object.values(NS)) netnsDel(ns);
  topology();
  raw = await pythonInNs(NS.n, RAW);
  // the MLD reports of the groups eth0 joined when it came up go out before anything is counted
  await new Promise((r) => setTimeout(r, 1500));
}

describe.skipIf(SKIP)('the node\'s IPv6 answers against the kernel', () => {
  beforeAll(freshNode, 60_000);
  afterAll(() => {
    if (raw?.pid) raw.kill('SIGKILL');
    for (const ns of Object.values(NS)) netnsDel(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every counter (OUTPUT and POSTROUTING too) and every frame the node sends agree', async () => {
    const results = await agree('IPv6 answers against the kernel', RULES, frames(), 'snap');
    const kinds = results.map((x) => x.kind);
    expect(kinds.filter((k) => k === 'icmp6-unknown-header-type').length).toBe(6);
    expect(kinds.filter((k) => k === 'icmp6-port-unreachable').length).toBe(6);
    expect(kinds.filter((k) => k === 'icmp6-redirect').length).toBe(5);
    expect(kinds.filter((k) => k === 'icmp6-bad-header').length).toBe(1);
    expect(kinds.filter((k) => k === 'icmp6-unknown-option').length).toBe(4);
    expect(kinds.filter((k) => k === 'icmp6-time-exceeded').length).toBe(2);
  }, 120_000);

  it('with conntrack loaded: which answers carry their packet\'s conntrack', async () => {
    const results = await agree('IPv6 answers against the kernel, conntrack loaded', CT_RULES, ctFrames(), 'snap-ct');
    const kinds = results.map((x) => x.kind).sort();
    expect(kinds).toEqual(['icmp6-echo-reply', 'icmp6-port-unreachable', 'icmp6-port-unreachable', 'icmp6-time-exceeded']);
  }, 120_000);

  it('with the NAT core loaded: errors about DNATed packets, a redirect after DNAT', async () => {
    const results = await agree('IPv6 answers against the kernel, NAT loaded', NAT_RULES, natFrames(), 'snap-nat');
    expect(results.map((x) => x.kind).sort()).toEqual(['forwarded', 'forwarded', 'icmp6-adm-prohibited', 'icmp6-echo-reply', 'icmp6-port-unreachable', 'icmp6-port-unreachable', 'icmp6-redirect', 'icmp6-time-exceeded', 'icmp6-time-exceeded', 'tcp-reset', 'tcp-reset', 'tcp-reset']);
  }, 120_000);

  it('multipath: each forwarded packet by its hash, hash policies 0 and 1, weights', async () => {
    for (const policy of [0, 1]) {
      const setup = async () => {
        nsSh(NS.n, MP_SETUP(NS.s, policy));
        nsSh(NS.s, 'ip link set p2 up; ip link set p3 up');
        // the MLD reports of the groups eth2 and eth3 joined go out before anything is counted
        await new Promise((r) => setTimeout(r, 2500));
      };
      try {
        const results = await agree(`IPv6 multipath against the kernel, hash policy ${policy}`, MP_RULES, mpFrames(), `snap-mp${policy}`, setup);
        expect(results.filter((x) => x.kind === 'forwarded').length).toBe(24);
      } finally {
        nsSh(NS.n, 'ip -6 route del 2001:db8:f0::/48; ip link del eth2; ip link del eth3');
      }
    }
  }, 120_000);

  it('policy routing: selectors, prohibit/unreachable/blackhole, fall-through past a table without the route and a throw, suppress_prefixlength', async () => {
    const setup = async () => {
      nsSh(NS.n, POLICY_SETUP(NS.s));
      nsSh(NS.s, 'ip link set p2 up; ip link set p3 up');
      // the MLD reports of the groups eth2 and eth3 joined go out before anything is counted
      await new Promise((r) => setTimeout(r, 2500));
    };
    try {
      const results = await agree('IPv6 policy routing against the kernel', POLICY_RULES, policyFrames(), 'snap-rules', setup);
      expect(results.map((x) => x.kind).sort()).toEqual(['forwarded', 'forwarded', 'forwarded', 'forwarded', 'forwarded', 'icmp6-adm-prohibited', 'icmp6-adm-prohibited', 'icmp6-no-route', 'icmp6-port-unreachable']);
    } finally {
      nsSh(NS.n, 'ip -6 rule flush; ip -6 rule add pref 0 table local; ip -6 rule add pref 32766 table main; ip -6 route del default; ip link del eth2; ip link del eth3');
    }
  }, 120_000);
});

/** The nat and raw tables emptied: what the cases before loaded goes, counters and all. */
const EMPTY_NAT_RAW = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`;

/** eth2 (2001:db8:e2::1/64) and eth3 (2001:db8:e3::1/64), their peers in `peerNs`, a permanent neighbour on each. */
const VETHS = (peerNs: string) => `ip link add eth2 type veth peer name p2 netns ${peerNs}
ip link add eth3 type veth peer name p3 netns ${peerNs}
ip -6 addr add 2001:db8:e2::1/64 dev eth2 nodad
ip -6 addr add 2001:db8:e3::1/64 dev eth3 nodad
ip link set eth2 up
ip link set eth3 up
ip -6 neigh replace 2001:db8:e2::2 lladdr 02:00:00:00:00:e2 dev eth2 nud permanent
ip -6 neigh replace 2001:db8:e3::2 lladdr 02:00:00:00:00:e3 dev eth3 nud permanent`;

/**
 * A multipath route out of eth2 and eth3 (weights 1:3): each forwarded
 * packet's nexthop is the kernel's hash of it (rt6_multipath_hash keyed by
 * net.ipv4.fib_multipath_hash_seed; policy 0 the addresses, the flow label
 * and the next header, policy 1 the addresses, protocol and ports).
 */
const MP_SETUP = (peerNs: string, policy: number) => `${VETHS(peerNs)}
ip -6 route add 2001:db8:f0::/48 nexthop via 2001:db8:e2::2 dev eth2 weight 1 nexthop via 2001:db8:e3::2 dev eth3 weight 3
sysctl -qw net.ipv4.fib_multipath_hash_seed=24301 net.ipv6.fib_multipath_hash_policy=${policy}`;

/** The multipath case's frames: 24 flows from six sources, with flow labels and ports of their own. */
function mpFrames(): string[] {
  return Array.from({ length: 24 }, (_, i) => `${i % 3 === 0 ? 'tcp' : 'udp'} [${SRC(66 + (i % 6))}]:${2000 + i * 37} > [2001:db8:f0::${(i + 1).toString(16)}]:${i % 3 === 0 ? '80 syn' : '53 len 10'} flowlabel ${(i * 4099) & 0xfffff}`);
}

/** RULES with a count of each multipath flow by the device it leaves from; the nat and raw tables of the cases before emptied. */
const MP_RULES = `${RULES.replace('-A POSTROUTING -o eth0 -p ipv6-icmp\n', `-A POSTROUTING -o eth0 -p ipv6-icmp\n${Array.from({ length: 24 }, (_, i) => ['eth2', 'eth3'].map((o) => `-A POSTROUTING -d 2001:db8:f0::${(i + 1).toString(16)}/128 -o ${o}\n`).join('')).join('')}`)}${EMPTY_NAT_RAW}`;

/**
 * Policy routing of forwarded packets, each table by its own device: main's
 * default via 2001:db8::77 back out of eth0 (no redirect: its target is
 * neither link-local nor the destination), table 100 eth2, table 200 eth3
 * (their peers in the sender namespace, where IPv6 is off). A rule `from
 * 2001:db8::1 ipproto ipv6-icmp` sends the node's ICMPv6 errors out of eth2
 * (table 150): their route lookup has that source, the destination of a
 * packet to the node, and for a packet to elsewhere the input device's
 * address (icmp6_send when the route back has no preferred source; IPv4's
 * icmp_send looks such a route up without a source). Back to a network
 * whose route has one (2001:db8:e3::1), the lookup has no source: the rule
 * `from 2001:db8:e3::1` does not take it, though the error leaves from
 * that address. To that route's prefix address (its subnet-router anycast
 * address) no error is sent.
 */
const POLICY_SETUP = (peerNs: string) => `${VETHS(peerNs)}
ip -6 route add default via 2001:db8::77 dev eth0
ip -6 route add 2001:db8:a0::/48 via 2001:db8:e2::2 dev eth2 table 100
ip -6 route add throw 2001:db8:a1::/48 table 100
ip -6 route add default via 2001:db8:e3::2 dev eth3 table 200
ip -6 route add 2001:db8::/64 via 2001:db8:e2::2 dev eth2 table 150
ip -6 rule add from 2001:db8::1 ipproto ipv6-icmp table 150 pref 40
ip -6 route add 2001:db8::50/124 dev eth0 src 2001:db8:e3::1
ip -6 rule add from 2001:db8:e3::1 table 150 pref 41
ip -6 rule add to 2001:db8:b0::/48 prohibit pref 50
ip -6 rule add to 2001:db8:b1::/48 unreachable pref 51
ip -6 rule add to 2001:db8:b2::/48 blackhole pref 52
ip -6 rule add from 2001:db8::/64 iif eth0 ipproto udp dport 53 table 100 pref 100
ip -6 rule add table main suppress_prefixlength 0 pref 200
ip -6 rule add not to 2001:db8:c0::/48 table 200 pref 300`;

/** RULES with a count of what leaves by each device; the nat and raw tables of the cases before emptied. */
const POLICY_RULES = `${RULES.replace('-A POSTROUTING -o eth0 -p ipv6-icmp\n', '-A POSTROUTING -o eth0 -p ipv6-icmp\n-A POSTROUTING -o eth0 ! -p ipv6-icmp\n-A POSTROUTING -o eth2\n-A POSTROUTING -o eth3\n')}${EMPTY_NAT_RAW}`;

/** The frames of the policy routing case (sources after those of natFrames()). */
function policyFrames(): string[] {
  const S = (i: number) => `[${SRC(56 + i)}]`;
  return [
    `udp ${S(0)}:40300 > [2001:db8:a0::1]:53 len 10`, // pref 100: table 100
    `tcp ${S(1)}:40301 > [2001:db8:a0::1]:80 syn`, // not UDP: main's default suppressed, table 200
    `udp ${S(2)}:40302 > [2001:db8:a1::1]:53 len 10`, // table 100 throws: on to table 200
    `udp ${S(3)}:40303 > [2001:db8:b0::1]:53 len 10`, // prohibit: administratively prohibited
    `udp ${S(4)}:40304 > [2001:db8:b1::1]:53 len 10`, // unreachable: no route
    `udp ${S(5)}:40305 > [2001:db8:b2::1]:53 len 10`, // blackhole: nothing
    `udp ${S(6)}:40306 > [2001:db8:c0::1]:53 len 10`, // no rule takes it before main, whose default is not suppressed there
    `udp ${S(7)}:40307 > [2001:db8:98::5]:53 len 10`, // main's /64 outlives the suppression
    `udp ${S(8)}:40308 > [2001:db8::1]:5353 len 10`, // to the node: a port unreachable, out of eth2 as well
    `udp [${SRC(65)}]:40309 > [2001:db8:b0::1]:53 len 10`, // prohibited, from a network whose route has a preferred source: no source in the lookup, out of eth0
    `udp [${SRC(64)}]:40310 > [2001:db8:b0::1]:53 len 10`, // from 2001:db8::50, the subnet-router anycast address of that route: no error (icmpv6_route_lookup)
  ];
}

/** `specs` sent 2 ms apart to the node loaded with `rules`: every counter and every frame it sent, kernel and nfvm (both engines); the vm's results. */
async function agree(label: string, rules: string, specs: readonly string[], snapName: string, setup?: () => Promise<void>): Promise<ReturnType<typeof answersAgree>['results']> {
  const pcap = join(tmp, 'in.pcap');
  writeFileSync(pcap, writePcap(specs.map((line, k) => {
    const opt = /\s*opt=(0x[0-9a-f]+)/.exec(line);
    const s = opt ? line.replace(opt[0], '') : line;
    const data = encodeSpec(parseSpec(`${s} iif eth0 src-mac ${MAC.sender}${s.includes('dst-mac') ? '' : ` dst-mac ${MAC.eth0}`}`)).data;
    // the options header follows the IPv6 header: its first option (PadN of 4) becomes option T of 4 zero bytes
    if (opt) data[14 + 40 + 2] = Number(opt[1]);
    return { data, tsSec: 1000, tsNsec: k * 2_000_000 };
  }), { linktype: LINKTYPE_ETHERNET }));
  const cap = join(tmp, 'node.pcap');
  // the case's own `setup` in every run's namespaces
  const snap = await kernelRun(label, { node: NS.n, sender: NS.s }, pcap, cap, specs.length, freshNode, async (attempt) => {
    if (setup) await setup();
    const restore = await run('ip', ['netns', 'exec', NS.n, 'ip6tables-legacy-restore'], rules);
    expect(restore.code, restore.stderr).toBe(0);
    const dir = join(tmp, attempt > 1 ? `${snapName}-${attempt}` : snapName);
    captureSnapshot(dir, nsSnapshotRunner(NS.n));
    return dir;
  });
  const save = await run('ip', ['netns', 'exec', NS.n, 'ip6tables-legacy-save', '-c']);
  const kernel = flattenCounters(parseRestore(save.stdout, { counters: true, family: 'ip6' }), true);
  let vm: ReturnType<typeof answersAgree>['results'] = [];
  for (const engine of ['vm', 'reference'] as EngineKind[]) {
    const { results } = answersAgree(label, kernel, snap, cap, engine, 'ip6');
    // the flow label the kernel picks; the stack's reset's checksum, which the device completes (CHECKSUM_PARTIAL)
    for (const x of results.filter((r) => r.verdict === 'kernel-fields')) expect(x.kind === 'tcp-reset' ? ['ip6.flowlabel', 'tcp.check'] : ['ip6.flowlabel'], `frame ${x.frame} (${x.kind})`).toEqual(expect.arrayContaining(x.fields));
    if (engine === 'vm') vm = results;
  }
  return vm;
}
