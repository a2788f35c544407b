/**
 * -m policy and the IPsec policies against the kernel (Linux 6.18) on a
 * node without IPsec states, both backends: no policy, policies that select
 * other traffic, policies that select the test's packets (a fwd block, an
 * out policy with a required template on a forwarded flow, an in one on a
 * delivered flow, one on the node's own datagrams, an out block for ICMP,
 * a fwd policy of the flow a forwarded ICMP error quotes), policies that
 * select destination-NATed packets, and none with the default policies
 * blocking (`ip xfrm policy setdefault`). With no state no
 * packet has a sec_path or an xfrm bundle, so policy_mt() answers `--pol
 * none` true and `--pol ipsec` false whatever the elements ask; what the
 * policies drop never reaches the later chains. Counting rules of both
 * directions and both kinds, with elements, `--strict` and `--next`, in
 * every chain that takes them; frames injected from the sender (delivered
 * and forwarded) and datagrams the node sends. Every counter of
 * `iptables-*-save -c`, OUTPUT and POSTROUTING included, is compared with
 * the node model's, both engines.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { kernelSkip, policyCase, policyCountingRules, senderForwardingTopology } from '../helpers/kernel.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, inetChecksum, parseSpec } from '../../hooks/input/spec.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('-m policy against the kernel', TOOLS);
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-policy-'));

const RULES = policyCountingRules('10.9.0.1');

/** IPsec policies (no state) for traffic the test does not send: in, out (templates) and fwd (block). */
const POLICIES = [
  'src 192.0.2.0/24 dst 198.51.100.0/24 dir out tmpl src 192.0.2.1 dst 198.51.100.1 proto esp mode tunnel',
  'src 198.51.100.0/24 dst 192.0.2.0/24 dir in tmpl src 198.51.100.1 dst 192.0.2.1 proto esp mode tunnel level use',
  'src 192.0.2.0/24 dst 198.51.100.0/24 dir fwd action block',
];

/**
 * Policies that select the test's own packets (no state anywhere): a fwd
 * block policy (frame 3 never reaches FORWARD), an out policy with a
 * required template on a forwarded flow (frame 4: xfrm4_route_forward's
 * larval drop), an in policy with a required template (frame 2 passes INPUT,
 * then tcp_v4_rcv drops it: no reset), an out policy with a required
 * template for the node's own datagrams (the datagram passes OUTPUT into a
 * blackhole: no POSTROUTING) and an out block policy for ICMP (frame 1's port
 * unreachable is not sent).
 */
const SELECTING = [
  'src 10.0.0.2/32 dst 10.9.0.7/32 proto udp dir fwd action block',
  'src 10.0.0.2/32 dst 10.9.0.8/32 dir out tmpl proto esp mode transport',
  'src 10.0.0.2/32 dst 10.0.0.1/32 proto tcp dport 22 dir in tmpl proto esp mode transport',
  'src 10.0.0.1/32 dst 10.0.0.2/32 proto udp dir out tmpl proto esp mode transport',
  'src 10.0.0.1/32 dst 10.0.0.2/32 proto icmp dir out priority 5 action block',
  'src 10.0.0.2/32 dst 10.9.0.9/32 proto udp dport 53 dir fwd action block',
];

/**
 * The policy check sees a NATed packet as it came in (nf_nat_decode_session):
 * frame 3 is destination NATed from 10.9.0.7 to 10.9.0.17 in PREROUTING, and
 * a fwd policy blocking 10.9.0.17 does not select it (one blocking 10.9.0.7
 * would); frame 4 to 10.9.0.18 is blocked by the fwd policy of its own
 * address, and its out policy (xfrm4_route_forward decodes the packet as it
 * is) is the one of the new address.
 */
const NAT_RULES = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -d 10.9.0.7/32 -p udp -j DNAT --to-destination 10.9.0.17', '-A PREROUTING -d 10.9.0.8/32 -p tcp -j DNAT --to-destination 10.9.0.18',
  'COMMIT', ''].join('\n');
const NAT_POLICIES = [
  'src 10.0.0.2/32 dst 10.9.0.17/32 proto udp dir fwd action block',
  'src 10.0.0.2/32 dst 10.9.0.8/32 proto tcp dir fwd action block',
  'src 10.0.0.2/32 dst 10.9.0.18/32 proto tcp dir out action block',
];

/**
 * Frame 5: a port unreachable from the sender to 10.9.0.9 (forwarded back
 * out eth0) about a datagram 10.9.0.9:53 > 10.0.0.2:5000. No policy selects
 * it; the fwd policy of the datagram's flow reversed does (xfrm_in_fwd_icmp).
 */
function icmpErrorFrame(): Uint8Array {
  const ip = (src: number[], dst: number[], proto: number, len: number): number[] => {
    const h = [0x45, 0, len >> 8, len & 255, 0, 1, 0, 0, 64, proto, 0, 0, ...src, ...dst];
    const c = inetChecksum(Uint8Array.from(h));
    h[10] = c >> 8;
    h[11] = c & 255;
    return h;
  };
  const quoted = [...ip([10, 9, 0, 9], [10, 0, 0, 2], 17, 32), 0, 53, 0x13, 0x88, 0, 12, 0, 0];
  const icmp = [3, 3, 0, 0, 0, 0, 0, 0, ...quoted];
  const c = inetChecksum(Uint8Array.from(icmp));
  icmp[2] = c >> 8;
  icmp[3] = c & 255;
  const mac = (m: string): number[] => m.split(':').map((x) => parseInt(x, 16));
  return Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 8, 0, ...ip([10, 0, 0, 2], [10, 9, 0, 9], 1, 20 + icmp.length), ...icmp]);
}

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const FRAMES = [
  `udp 10.0.0.2:5000 > 10.0.0.1:9 len 4 ${link}`, `tcp 10.0.0.2:5001 > 10.0.0.1:22 syn ${link}`,
  `udp 10.0.0.2:5002 > 10.9.0.7:9 len 6 ${link}`, `tcp 10.0.0.2:5003 > 10.9.0.8:80 syn ${link}`,
];

describe.skipIf(SKIP)('-m policy against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each([['none'], ['other traffic'], ['the test\'s packets'], ['NATed packets'], ['none (default block)']] as const)('a node without IPsec states (policies selecting: %s): --pol none matches, --pol ipsec does not, in every chain; the policies drop what they select (both engines, both backends)', async (which) => {
    const policies = which === 'none' || which === 'none (default block)' ? [] : which === 'other traffic' ? POLICIES : which === 'NATed packets' ? NAT_POLICIES : SELECTING;
    const rules = which === 'NATed packets' ? `${RULES}${NAT_RULES}` : RULES;
    const pcap = join(tmp, 'frames.pcap');
    writeFileSync(pcap, writePcap([...FRAMES.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { data: icmpErrorFrame() }], { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    // 10.9.0.0/16 is forwarded back out eth0 to the sender
    const { diffs } = await policyCase({
      family: 'ip', tag: `${which.length % 10}${which[0]}-${id}`, tmp, policies, defaultBlock: which === 'none (default block)', rules, pcap, tally,
      topology: (ns) => senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node }), send: "printf 'xyz' > /dev/udp/10.0.0.2/9",
    });
    expect(diffs).toEqual([]);
    console.log(`-m policy against the kernel (policies selecting ${which}, no state): ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel)`);
    // per backend and engine: the 6 `--pol none` rules (chains and directions) and the policies of PREROUTING, INPUT and FORWARD
    // (the `--pol none` rules of FORWARD see none of the test's forwarded frames when the policies drop them)
    expect(tally.nonzero).toBe(2 * 2 * { 'none': 14, 'other traffic': 14, 'the test\'s packets': 8, 'NATed packets': 20, 'none (default block)': 5 }[which]);
  }, 120_000);
});
