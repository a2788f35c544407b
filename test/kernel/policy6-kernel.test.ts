/**
 * The IPsec policy checks of a node without IPsec states on IPv6 against
 * the kernel (Linux 6.18), both backends and engines: no policy; policies
 * for other traffic (IPv4 ones selecting everything among them: a policy
 * matches its own family only); policies selecting the test's packets (a
 * fwd block before the hop limit check, an out template on a forwarded
 * flow: xfrm6_route_forward's larval drop, an in template on a delivered
 * flow: no reset, an out block on the ICMPv6 port unreachable, out
 * templates on the node's own answers and datagram: icmpv6_echo_reply's
 * xfrm_lookup fails before OUTPUT, the stack's reset and the datagram pass
 * OUTPUT into a blackhole, a fwd policy of the flow a forwarded ICMPv6 error
 * quotes: xfrm_in_fwd_icmp, a fwd policy with ports selecting a datagram
 * behind hop-by-hop and destination options headers but not a first
 * fragment: decode_session6); policies selecting destination-NATed packets
 * (the check sees them as they came in); none with the default policies
 * blocking; and the test's with net.ipv6.conf.eth0.disable_policy = 1.
 * `-m policy` rules of both directions in every chain count what passes;
 * every counter of `ip6tables-*-save -c`, OUTPUT and POSTROUTING
 * included, is compared with the node model's.
 *
 * Root with iproute2, both ip6tables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelSkip, policyCase, policyCountingRules, senderForwardingTopology6 } from '../helpers/kernel.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, parseSpec } from '../../hooks/input/spec.js';

const TOOLS = ['ip', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('IPv6 IPsec policies against the kernel', TOOLS);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-policy6-'));

const RULES = policyCountingRules('2001:db8:9::1');

/** Policies (no state) for traffic the test does not send, IPv4 ones for everything among them. */
const POLICIES = [
  'src 2001:db8:100::/48 dst 2001:db8:200::/48 dir out tmpl src 2001:db8:100::1 dst 2001:db8:200::1 proto esp mode tunnel',
  'src 2001:db8:200::/48 dst 2001:db8:100::/48 dir in tmpl src 2001:db8:200::1 dst 2001:db8:100::1 proto esp mode tunnel',
  'src 2001:db8::2/128 dst 2001:db8:9::/48 proto sctp dir fwd action block',
  'src 0.0.0.0/0 dst 0.0.0.0/0 dir in action block',
  'src 0.0.0.0/0 dst 0.0.0.0/0 dir fwd action block',
  'src 0.0.0.0/0 dst 0.0.0.0/0 dir out action block',
];

/** Policies selecting the test's packets (see the frames). */
const SELECTING = [
  'src 2001:db8::2/128 dst 2001:db8:9::7/128 proto udp dir fwd action block',
  'src 2001:db8::2/128 dst 2001:db8:9::8/128 dir out tmpl proto esp mode transport',
  'src 2001:db8::2/128 dst 2001:db8::1/128 proto tcp dport 22 dir in tmpl proto esp mode transport',
  'src 2001:db8::1/128 dst 2001:db8::2/128 proto ipv6-icmp type 1 dir out action block',
  'src 2001:db8::1/128 dst 2001:db8::2/128 proto ipv6-icmp type 129 dir out tmpl proto esp mode transport',
  'src 2001:db8::1/128 dst 2001:db8::2/128 proto tcp sport 23 dir out tmpl proto esp mode transport',
  'src 2001:db8::1/128 dst 2001:db8::2/128 proto udp dport 9 dir out tmpl proto esp mode transport',
  'src 2001:db8::2/128 dst 2001:db8:9::9/128 proto udp dport 53 dir fwd action block',
  'src 2001:db8::2/128 dst 2001:db8:9::10/128 proto udp dport 53 dir fwd action block',
];

/**
 * Frame 3 is destination NATed from 2001:db8:9::7 to 2001:db8:9::17 in
 * PREROUTING: a fwd policy blocking ::17 does not select it (the check sees
 * ::7, nf_nat_ipv6_decode_session); frame 4 to ::8 (NATed to ::18) is
 * blocked by the fwd policy of its own address.
 */
const NAT_RULES = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -d 2001:db8:9::7/128 -p udp -j DNAT --to-destination 2001:db8:9::17', '-A PREROUTING -d 2001:db8:9::8/128 -p tcp -j DNAT --to-destination 2001:db8:9::18',
  'COMMIT', ''].join('\n');
const NAT_POLICIES = [
  'src 2001:db8::2/128 dst 2001:db8:9::17/128 proto udp dir fwd action block',
  'src 2001:db8::2/128 dst 2001:db8:9::8/128 proto tcp dir fwd action block',
  'src 2001:db8::2/128 dst 2001:db8:9::18/128 proto tcp dir out action block',
];

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
/** An ICMPv6 port unreachable from the sender to 2001:db8:9::9 (forwarded back out eth0) about a datagram [2001:db8:9::9]:53 > [2001:db8::2]:5000. */
function icmpErrorFrame(): Uint8Array {
  const quoted = encodeSpec(parseSpec('udp [2001:db8:9::9]:53 > [2001:db8::2]:5000 len 4')).data;
  // the error's frame with room for the quoted packet after the 8-byte ICMPv6 header, then the checksum again
  const d = encodeSpec(parseSpec(`icmpv6 2001:db8::2 > 2001:db8:9::9 type 1 code 4 len ${quoted.length} ${link}`)).data;
  d.set(quoted, d.length - quoted.length);
  const ip = 14;
  d[ip + 42] = 0;
  d[ip + 43] = 0;
  // the pseudo header (addresses, upper-layer length, next header 58) and the message
  let sum = (d.length - ip - 40) + 58;
  for (let i = ip + 8; i < ip + 40; i += 2) sum += (d[i]! << 8) | d[i + 1]!;
  for (let i = ip + 40; i < d.length; i += 2) sum += (d[i]! << 8) | (i + 1 < d.length ? d[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  d[ip + 42] = (~sum >> 8) & 255;
  d[ip + 43] = ~sum & 255;
  return d;
}

const FRAMES = [
  `udp [2001:db8::2]:5000 > [2001:db8::1]:9 len 4 ${link}`, `tcp [2001:db8::2]:5001 > [2001:db8::1]:22 syn ${link}`,
  `udp [2001:db8::2]:5002 > [2001:db8:9::7]:9 len 6 ${link}`, `tcp [2001:db8::2]:5003 > [2001:db8:9::8]:80 syn ${link}`,
  `icmpv6 2001:db8::2 > 2001:db8::1 echo-request ${link}`, `tcp [2001:db8::2]:5009 > [2001:db8::1]:23 syn ${link}`,
  `udp [2001:db8::2]:5010 > [2001:db8:9::10]:53 len 8 hbh dst len 1 ${link}`, `udp [2001:db8::2]:5011 > [2001:db8:9::10]:53 len 8 frag offset 0 mf ipid 9 ${link}`,
];

/**
 * The packets that pass FORWARD, OUTPUT and POSTROUTING per case. No
 * policy: frames 3, 4, 7, 8 and 9 forwarded; the datagram, the port
 * unreachable, two resets and the echo reply sent. Selecting: frame 8 (a
 * fragment: no ports for the policy) forwarded; the datagram and frame 6's
 * reset pass OUTPUT into a blackhole. NAT: conntrack's defrag holds frame
 * 8, frame 4 is blocked. Default block: nothing. disable_policy on eth0:
 * no fwd check (frames 3, 7, 8 and 9 forwarded) and no in check (the local
 * route of 2001:db8::1 has DST_NOPOLICY: frame 2's reset is sent); the out
 * lookups are as before.
 */
const PASSED: Record<string, number[]> = {
  'none': [5, 5, 10], 'other traffic': [5, 5, 10], 'the test\'s packets': [1, 2, 1], 'NATed packets': [3, 5, 8], 'none (default block)': [0, 0, 0],
  'the test\'s packets, disable_policy on eth0': [4, 3, 5],
};

describe.skipIf(SKIP)('IPv6 IPsec policies against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each([['none'], ['other traffic'], ['the test\'s packets'], ['NATed packets'], ['none (default block)'], ['the test\'s packets, disable_policy on eth0']] as const)('a node without IPsec states (policies selecting: %s): the policies drop what they select, every counter agrees (both engines, both backends)', async (which) => {
    const policies = which === 'none' || which === 'none (default block)' ? [] : which === 'other traffic' ? POLICIES : which === 'NATed packets' ? NAT_POLICIES : SELECTING;
    const setup = which.endsWith('disable_policy on eth0') ? 'sysctl -qw net.ipv6.conf.eth0.disable_policy=1' : undefined;
    const rules = which === 'NATed packets' ? `${RULES}${NAT_RULES}` : RULES;
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap([...FRAMES.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { data: icmpErrorFrame() }], { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const { diffs, kernel } = await policyCase({
      family: 'ip6', tag: `6${which.length % 10}${which[0]}-${id}`, tmp, policies, defaultBlock: which === 'none (default block)', rules, pcap, tally, setup,
      topology: (ns) => senderForwardingTopology6(ns, { sender: MAC.sender, eth0: MAC.node }), send: "printf 'xyz' > /dev/udp/2001:db8::2/9",
    });
    // what passed FORWARD, OUTPUT and POSTROUTING in the kernel (every rule counts every packet): the policies did drop
    for (const [backend, k] of kernel) expect(['filter FORWARD #1', 'filter OUTPUT #1', 'mangle POSTROUTING #1'].map((c) => Number(k.get(c)?.packets)), backend).toEqual(PASSED[which]);
    expect(diffs).toEqual([]);
    console.log(`IPv6 IPsec policies against the kernel (policies selecting ${which}, no state): ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel)`);
    expect(tally.nonzero).toBe({ 'none': 56, 'other traffic': 56, 'the test\'s packets': 56, 'NATed packets': 80, 'none (default block)': 20, 'the test\'s packets, disable_policy on eth0': 56 }[which]);
  }, 120_000);
});
