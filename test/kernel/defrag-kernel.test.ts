/**
 * IPv4 reassembly (hooks/path/ip-frag.ts) against the kernel (Linux 6.18),
 * iptables legacy and nft, without conntrack (ip_local_deliver reassembles
 * what is for the node; forwarded fragments go through one by one) and with
 * it (nf_defrag_ipv4 reassembles before raw PREROUTING, for the node and
 * for forwarding). UDP datagrams from the sender (10.0.0.2) to the node
 * (10.0.0.1, a closed port: the node answers port unreachable, quoting the
 * datagram) and through it (10.9.0.8), fragmented: in order, out of order,
 * a duplicate (kept out), a duplicate within a run of two fragments, an
 * overlap and a fragment spanning two runs (the queue dropped), a missing
 * fragment, a non-final fragment not a multiple of 8 long (cut), a
 * fragment past a known end, ECN codepoints that go together (CE kept) and
 * that do not, DF on every fragment, a copy of a fragment after its
 * datagram is whole (a new queue), and a queue outlived by more than
 * ipfrag_max_dist fragments of the same source (it starts over). Rules
 * count each datagram by its IP ID in raw PREROUTING, INPUT, FORWARD and
 * POSTROUTING (packets and bytes: fragments or whole datagrams), and the
 * node's answers in OUTPUT; every counter is compared with `nfvm replay`
 * (both engines).
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkip, nsSh, replayCountersAgainstKernel, run, senderForwardingTopology, senderForwardingTopology6 } from '../helpers/kernel.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';

const TOOLS = ['ip', 'conntrack', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'ip6tables-legacy-restore', 'ip6tables-legacy-save', 'ip6tables-nft-restore', 'ip6tables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('IPv4 reassembly against the kernel', TOOLS);
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-defrag-'));
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const mac = (m: string) => m.split(':').map((x) => parseInt(x, 16));
const NODE = [10, 0, 0, 1];
const OTHER = [10, 9, 0, 8];

/** The IP payload of datagram `ipid`: a UDP header to port 9 and `n` bytes (UDP checksum 0). */
function udp(n: number): number[] {
  const len = 8 + n;
  return [0x13, 0x88, 0, 9, len >> 8, len & 255, 0, 0, ...Array.from({ length: n }, (_, i) => (i * 7 + 3) & 255)];
}

/** One fragment: bytes [from, to) of `payload` at offset `from`, MF as given. */
function frag(ipid: number, dst: number[], payload: number[], from: number, to: number, mf: boolean, o: { tos?: number; df?: boolean } = {}): Uint8Array {
  const body = payload.slice(from, to);
  const len = 20 + body.length;
  const fo = (from >> 3) | (mf ? 0x2000 : 0) | (o.df ? 0x4000 : 0);
  const h = [0x45, o.tos ?? 0, len >> 8, len & 255, ipid >> 8, ipid & 255, fo >> 8, fo & 255, 64, 17, 0, 0, 10, 0, 0, 2, ...dst];
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  h[10] = c >> 8;
  h[11] = c & 255;
  return Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 8, 0, ...h, ...body]);
}

type Shape = (ipid: number, dst: number[]) => Uint8Array[];
const P = udp(56); // 64 bytes of UDP
const BIG = udp(2952); // 2960 bytes of UDP
const SHAPES: Shape[] = [
  (i, d) => [frag(i, d, P, 0, 32, true), frag(i, d, P, 32, 64, false)],
  (i, d) => [frag(i, d, P, 48, 64, false), frag(i, d, P, 0, 24, true), frag(i, d, P, 24, 48, true)],
  (i, d) => [frag(i, d, P, 0, 32, true), frag(i, d, P, 0, 32, true), frag(i, d, P, 32, 64, false)],
  (i, d) => [frag(i, d, P, 0, 16, true), frag(i, d, P, 16, 32, true), frag(i, d, P, 8, 24, true), frag(i, d, P, 32, 64, false)],
  (i, d) => [frag(i, d, P, 0, 32, true), frag(i, d, P, 16, 48, true), frag(i, d, P, 48, 64, false)],
  (i, d) => [frag(i, d, P, 0, 16, true), frag(i, d, P, 32, 48, true), frag(i, d, P, 8, 40, true), frag(i, d, P, 16, 32, true), frag(i, d, P, 48, 64, false)],
  (i, d) => [frag(i, d, P, 0, 16, true), frag(i, d, P, 48, 64, false)],
  (i, d) => [frag(i, d, P, 0, 30, true), frag(i, d, P, 24, 64, false)],
  (i, d) => [frag(i, d, P, 32, 48, false), frag(i, d, P, 48, 64, true), frag(i, d, P, 0, 32, true)],
  (i, d) => [frag(i, d, P, 0, 32, true, { tos: 2 }), frag(i, d, P, 32, 64, false, { tos: 0 })],
  (i, d) => [frag(i, d, P, 0, 32, true, { tos: 2 }), frag(i, d, P, 32, 64, false, { tos: 3 })],
  (i, d) => [frag(i, d, P, 0, 32, true, { df: true }), frag(i, d, P, 32, 64, false, { df: true })],
  (i, d) => [frag(i, d, P, 0, 32, true), frag(i, d, P, 32, 64, false), frag(i, d, P, 32, 64, false)],
  // fragments of 1480 bytes with DF: whole, 2968 bytes, larger than the MTU of 1500 (ignore_df, frag_max_size)
  (i, d) => [frag(i, d, BIG, 0, 1480, true, { df: true }), frag(i, d, BIG, 1480, 2960, false, { df: true })],
];

const FRAMES: Uint8Array[] = [];
const IDS: number[] = [];
SHAPES.forEach((s, k) => {
  for (const [j, dst] of [NODE, OTHER].entries()) {
    const ipid = 100 + 2 * k + j;
    IDS.push(ipid);
    FRAMES.push(...s(ipid, dst));
  }
});
// ip_frag_too_far(): a queue, then 65 other fragments from the source, then the rest of the queue
IDS.push(300);
FRAMES.push(frag(300, NODE, P, 0, 32, true));
for (let k = 0; k < 65; k++) FRAMES.push(frag(400 + k, OTHER, P, 0, 32, true));
FRAMES.push(frag(300, NODE, P, 32, 64, false));

/**
 * A counting rule per datagram, by IP ID. In POSTROUTING the node's own ICMP
 * errors pass too, their IDs drawn by __ip_select_ident() from a keyed hash
 * and a random step: six of them once took IDs 105 to 110. They are left to
 * the ICMP rule after these.
 */
const byId = (chain: string) => IDS.map((i) => `-A ${chain}${chain === 'POSTROUTING' ? ' ! -p icmp' : ''} -m u32 --u32 "4>>16=${i}"`);

/**
 * What the ruleset loads besides its counting rules, by a rule no frame
 * meets (TCP to port 1): nothing; conntrack (with nf_defrag, nf_ct_netns_get:
 * the conntrack match); nothing again for CT --notrack and NOTRACK
 * (xt_ct_tg_check returns before taking conntrack); nf_defrag alone for
 * socket and TPROXY (nf_defrag_ipv4_enable / nf_defrag_ipv6_enable).
 */
const LOADERS = ['none', 'conntrack', 'CT --notrack', 'NOTRACK', 'socket', 'TPROXY'] as const;
type Loader = (typeof LOADERS)[number];
const TCP1 = '-p tcp -m tcp --dport 1';

/**
 * The frames of `pcap` sent to the node, then its conntrack entries counted
 * (`conntrack -L`: none where nothing registered conntrack) into `counts`;
 * `seen` counts those of each replay (its JSON has no conntrack without it).
 */
function conntrackCounts(pcap: string, family: 'ipv4' | 'ipv6', counts: { kernel: number[]; nfvm: number[] }) {
  return {
    inject: async (ns: { s: string; n: string }): Promise<void> => {
      const r = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
      if (r.code !== 0) throw new Error(`tcpreplay: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 300));
      const l = await run('ip', ['netns', 'exec', ns.n, 'conntrack', '-L', '-f', family]);
      counts.kernel.push(l.stdout.split('\n').filter((x) => x !== '').length);
    },
    seen: (doc: object): void => {
      counts.nfvm.push((doc as { conntrack?: unknown[] }).conntrack?.length ?? 0);
    },
  };
}
function loaderRules(l: Loader): { raw: string[]; mangle: string[]; filter: string[] } {
  const none = { raw: [], mangle: [], filter: [] };
  switch (l) {
    case 'none': return none;
    case 'conntrack': return { ...none, filter: ['-A FORWARD -m conntrack --ctstate NEW', '-A INPUT -m conntrack --ctstate NEW'] };
    case 'CT --notrack': return { ...none, raw: [`-A OUTPUT ${TCP1} -j CT --notrack`] };
    case 'NOTRACK': return { ...none, raw: [`-A OUTPUT ${TCP1} -j NOTRACK`] };
    case 'socket': return { ...none, mangle: [`-A PREROUTING ${TCP1} -m socket`] };
    case 'TPROXY': return { ...none, mangle: [`-A PREROUTING ${TCP1} -j TPROXY --on-port 1 --tproxy-mark 0x1/0x1`] };
  }
}

const rules = (l: Loader) => ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...byId('PREROUTING'), ...loaderRules(l).raw, 'COMMIT',
  '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...loaderRules(l).mangle, ...byId('INPUT'), ...byId('POSTROUTING'), '-A POSTROUTING -p icmp', 'COMMIT',
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...byId('FORWARD'), '-A FORWARD -m u32 --u32 "1&0x3=0x3"', '-A FORWARD -m u32 --u32 "6&0x7FFF=0x4000"',
  ...loaderRules(l).filter,
  '-A OUTPUT -p icmp -m icmp --icmp-type 3/3', 'COMMIT', ''].join('\n');


// ---------------------------------------------------------------------------
// IPv6: the node 2001:db8::1 on eth0, 2001:db8:9::/48 routed back out of it (senderForwardingTopology6)

const A6 = (last: number[]) => [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(10).fill(0), ...last];
const SRC6 = A6([0, 2]);
const NODE6 = A6([0, 1]);
const OTHER6 = [0x20, 0x01, 0x0d, 0xb8, 0, 9, ...Array<number>(9).fill(0), 8];

/** One IPv6 fragment: flow label `fl` (the datagram's mark for the rules), `pre` extension headers (next header values chained), the fragment header (ID 7 + fl), payload bytes [from, to). */
function frag6(fl: number, dst: number[], payload: number[], from: number, to: number, mf: boolean, o: { tc?: number; pre?: number[]; nexthdr?: number } = {}): Uint8Array {
  const body = payload.slice(from, to);
  const pre = o.pre ?? [];
  const fh = [o.nexthdr ?? 17, 0, (from >> 8) & 0xff, (from & 0xf8) | (mf ? 1 : 0), 0, 0, 0, 7 + (fl & 0xff)];
  const rest = [...pre, ...fh, ...body];
  const tc = o.tc ?? 0;
  const first = pre.length ? 60 : 44;
  const h = [0x60 | (tc >> 4), ((tc & 15) << 4) | ((fl >> 16) & 15), (fl >> 8) & 255, fl & 255, rest.length >> 8, rest.length & 255, first, 64, ...SRC6, ...dst];
  return Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 0x86, 0xdd, ...h, ...rest]);
}
/** A destination options header (8 bytes, PadN) naming the fragment header next. */
const DST_OPTS = [44, 0, 1, 4, 0, 0, 0, 0];

type Shape6 = (fl: number, dst: number[]) => Uint8Array[];
const SHAPES6: Shape6[] = [
  (f, d) => [frag6(f, d, P, 0, 32, true), frag6(f, d, P, 32, 64, false)],
  (f, d) => [frag6(f, d, P, 48, 64, false), frag6(f, d, P, 0, 24, true), frag6(f, d, P, 24, 48, true)],
  (f, d) => [frag6(f, d, P, 0, 32, true), frag6(f, d, P, 0, 32, true), frag6(f, d, P, 32, 64, false)],
  (f, d) => [frag6(f, d, P, 0, 32, true), frag6(f, d, P, 16, 48, true), frag6(f, d, P, 48, 64, false)],
  (f, d) => [frag6(f, d, P, 0, 16, true), frag6(f, d, P, 48, 64, false)],
  (f, d) => [frag6(f, d, P, 0, 30, true), frag6(f, d, P, 24, 64, false)],
  (f, d) => [frag6(f, d, P, 0, 4, true), frag6(f, d, P, 8, 64, false)],
  (f, d) => [frag6(f, d, P, 0, 32, true, { pre: DST_OPTS }), frag6(f, d, P, 32, 64, false, { pre: DST_OPTS })],
  (f, d) => [frag6(f, d, P, 0, 32, true, { tc: 2 }), frag6(f, d, P, 32, 64, false, { tc: 0 })],
  (f, d) => [frag6(f, d, P, 0, 64, false)],
  // a non-final fragment not a multiple of 8 long, then the fragments that complete the datagram
  (f, d) => [frag6(f, d, P, 0, 16, true), frag6(f, d, P, 16, 20, true), frag6(f, d, P, 16, 64, false)],
  // a fragment past the end once the last is in, then the first
  (f, d) => [frag6(f, d, P, 32, 48, false), frag6(f, d, P, 48, 64, true), frag6(f, d, P, 0, 32, true)],
  // an empty fragment between two halves
  (f, d) => [frag6(f, d, P, 0, 32, true), frag6(f, d, P, 32, 32, true), frag6(f, d, P, 32, 64, false)],
  // fragments of 1496 bytes: whole, 2936 bytes, larger than the MTU of 1500 (frag_max_size 1496: no packet too big)
  (f, d) => [frag6(f, d, BIG, 0, 1448, true), frag6(f, d, BIG, 1448, 2896, false)],
];
const FRAMES6: Uint8Array[] = [];
const FLS: number[] = [];
SHAPES6.forEach((s, k) => {
  for (const [j, dst] of [NODE6, OTHER6].entries()) {
    const fl = 0x100 + 2 * k + j;
    FLS.push(fl);
    FRAMES6.push(...s(fl, dst));
  }
});
/** A counting rule per datagram, by flow label; in POSTROUTING not the node's ICMPv6 errors, whose automatic flow labels are hashes (see byId). */
const byFl = (chain: string) => FLS.map((f) => `-A ${chain}${chain === 'POSTROUTING' ? ' ! -p ipv6-icmp' : ''} -m u32 --u32 "0&0xFFFFF=${f}"`);
const rules6 = (l: Loader) => ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...byFl('PREROUTING'), ...loaderRules(l).raw, 'COMMIT',
  '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...loaderRules(l).mangle, ...byFl('INPUT'), ...byFl('POSTROUTING'), 'COMMIT',
  '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...byFl('FORWARD'), ...loaderRules(l).filter,
  '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4', '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/0', '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/3',
  '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/0 -m u32 --u32 "44=4"', '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4/0 -m u32 --u32 "44=42"',
  '-A OUTPUT -p ipv6-icmp -m icmp6 ! --icmpv6-type 143', 'COMMIT', ''].join('\n');

// ---------------------------------------------------------------------------
// A queue's timer (ipfrag_time, ip6frag_time, nf_conntrack_frag6_timeout set to 1 s): first fragments that never complete, to the
// node and through it, and a later fragment alone; 2 s later a datagram to the node's closed port.

const EXPIRY4 = [frag(500, NODE, P, 0, 32, true), frag(501, OTHER, P, 0, 32, true), frag(502, NODE, P, 32, 48, true)];
const TRIGGER4 = frag(503, NODE, udp(8), 0, 16, false);
const EXPIRY6 = [frag6(0x500, NODE6, P, 0, 32, true), frag6(0x501, OTHER6, P, 0, 32, true), frag6(0x502, NODE6, P, 32, 48, true)];
const TRIGGER6 = frag6(0x503, NODE6, udp(8), 0, 16, false);
const expiryRules = (six: boolean, conntrack: boolean) => ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...(conntrack ? ['-A INPUT -m conntrack --ctstate NEW'] : []),
  ...(six
    ? ['-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 3/1', '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4', '-A OUTPUT -p ipv6-icmp -m icmp6 ! --icmpv6-type 143']
    : ['-A OUTPUT -p icmp -m icmp --icmp-type 11/1', '-A OUTPUT -p icmp -m icmp --icmp-type 3/3', '-A OUTPUT -p icmp']),
  'COMMIT', ''].join('\n');

describe.skipIf(SKIP)('IPv4 reassembly against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each(LOADERS.map((l, i) => [l, i] as const))('fragments are reassembled as the kernel does them (loaded: %s; every counter, both backends and engines)', async (loader, li) => {
    const pcap = join(tmp, `frags-${li}.pcap`);
    writeFileSync(pcap, writePcap(FRAMES.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const diffs: string[] = [];
    const ct = { kernel: [] as number[], nfvm: [] as number[] };
    await replayCountersAgainstKernel({
      tag: `df${li}`, family: 'ip', rules: rules(loader), pcap, tmp, tally, diffs, ...conntrackCounts(pcap, 'ipv4', ct),
      topology: (ns) => senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node }),
    });
    console.log(`IPv4 reassembly against the kernel (loaded: ${loader}): ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel), conntrack entries kernel ${ct.kernel.join('/')} nfvm ${ct.nfvm.join('/')}`);
    expect(diffs).toEqual([]);
    // conntrack only where a rule took it: the kernel's entries, and nfvm's (both backends, both engines)
    expect(new Set([...ct.kernel, ...ct.nfvm]).size).toBe(1);
    expect(ct.kernel[0]! > 0).toBe(loader === 'conntrack');
  }, 120_000);

  it.each(LOADERS.map((l, i) => [l, i] as const))('IPv6 fragments are reassembled as the kernel does them (loaded: %s; every counter, both backends and engines)', async (loader, li) => {
    const pcap = join(tmp, `frags6-${li}.pcap`);
    writeFileSync(pcap, writePcap(FRAMES6.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const diffs: string[] = [];
    const ct = { kernel: [] as number[], nfvm: [] as number[] };
    await replayCountersAgainstKernel({
      tag: `d6${li}`, family: 'ip6', rules: rules6(loader), pcap, tmp, tally, diffs, quietPolicies: true, ...conntrackCounts(pcap, 'ipv6', ct),
      topology: (ns) => senderForwardingTopology6(ns, { sender: MAC.sender, eth0: MAC.node }),
    });
    console.log(`IPv6 reassembly against the kernel (loaded: ${loader}): ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel), conntrack entries kernel ${ct.kernel.join('/')} nfvm ${ct.nfvm.join('/')}`);
    expect(diffs).toEqual([]);
    expect(new Set([...ct.kernel, ...ct.nfvm]).size).toBe(1);
    expect(ct.kernel[0]! > 0).toBe(loader === 'conntrack');
  }, 120_000);

  it.each([[false, false], [false, true], [true, false], [true, true]])('a queue whose timer runs out answers with time exceeded as the kernel does (IPv6 %s, conntrack %s)', async (six, conntrack) => {
    const frames = six ? EXPIRY6 : EXPIRY4;
    const trigger = six ? TRIGGER6 : TRIGGER4;
    const pcap = join(tmp, `expiry-${six}-${conntrack}.pcap`);
    writeFileSync(pcap, writePcap([...frames.map((data, i) => ({ data, tsSec: 1000, tsNsec: i * 1000 })), { data: trigger, tsSec: 1002, tsNsec: 0 }], { linktype: LINKTYPE_ETHERNET }));
    const first = join(tmp, `expiry-${six}-${conntrack}-a.pcap`);
    const second = join(tmp, `expiry-${six}-${conntrack}-b.pcap`);
    writeFileSync(first, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    writeFileSync(second, writePcap([{ data: trigger }], { linktype: LINKTYPE_ETHERNET }));
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    const diffs: string[] = [];
    let sent = 0;
    await replayCountersAgainstKernel({
      tag: `ex${six ? '6' : '4'}${conntrack ? 'c' : ''}`, family: six ? 'ip6' : 'ip', rules: expiryRules(six, conntrack), pcap, tmp, tally, diffs, quietPolicies: six,
      topology: (ns) => {
        if (six) senderForwardingTopology6(ns, { sender: MAC.sender, eth0: MAC.node });
        else senderForwardingTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        nsSh(ns.n, six ? 'sysctl -qw net.ipv6.ip6frag_time=1 net.netfilter.nf_conntrack_frag6_timeout=1' : 'sysctl -qw net.ipv4.ipfrag_time=1');
      },
      inject: async (ns) => {
        for (const [i, f] of [first, second].entries()) {
          if (i) await new Promise((r) => setTimeout(r, 2000));
          const r = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', f]);
          if (r.code !== 0) throw new Error(`tcpreplay: ${r.stderr}`);
        }
      },
      seen: (doc) => { sent = Math.max(sent, doc.summary.answers.sent); },
    });
    console.log(`reassembly timeout against the kernel (IPv6 ${six}, conntrack ${conntrack}): ${tally.agree}/${tally.counters} counters agree (${tally.nonzero} non-zero in the kernel), ${sent} answers`);
    expect(diffs).toEqual([]);
    expect(tally.nonzero).toBeGreaterThan(0);
  }, 120_000);
});
