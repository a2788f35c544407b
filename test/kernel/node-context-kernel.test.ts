/**
 * Node-context extensions against the kernel (Linux 6.18), both backends,
 * each case: rules loaded into a node namespace, generated frames injected
 * with tcpreplay, every compared rule's counters of `iptables-*-save -c`
 * equal to the node model's on the namespace's snapshot, both engines.
 *
 *  - NFQUEUE --queue-balance: a fresh namespace has no queue listener, so
 *    nf_queue() fails with -ESRCH for every queue nfqueue_hash() can pick;
 *    with --queue-bypass the packet goes on to the next hook entry (the
 *    mangle table's PREROUTING), without it the packet is dropped. Raw
 *    PREROUTING rules balance UDP with bypass (hash and CPU fanout) and TCP
 *    without; count-only mangle PREROUTING rules show which went on.
 *  - realm: routes carrying realms (`realm N`, `realms S/D`, on the nexthops
 *    of a multipath route), a reverse route with a realm (the source realm
 *    fib_validate_source() gives) and a policy rule with realms (the first
 *    packet through a nexthop, from the rule's sources, makes the route the
 *    nexthop caches, rule realms included, for the packets after it);
 *    frames from several sources to forwarded, local and unroutable
 *    destinations; mangle FORWARD, INPUT and POSTROUTING rules test the
 *    tclassid with masks and inversion.
 *
 *  - the local and main tables: without custom rules fib_lookup() looks
 *    both up as one trie (a more specific main route beats an AnyIP local
 *    range, a local route beats a main one of the same prefix), then the
 *    default table after no route or a throw route but not after an
 *    unreachable one; with a custom rule (one no frame matches) the rules
 *    are walked, the local table first. Frames to each case; mangle rules
 *    count them by destination where they go (INPUT, FORWARD), the
 *    node's ICMP errors by type (OUTPUT), and their destination's address
 *    type (addrtype LOCAL / UNICAST in PREROUTING: inet_addr_type looks
 *    the local table up, which shares the trie with main until a rule is
 *    added).
 *  - policy routing: rules with selectors, a goto, prohibit, unreachable
 *    and blackhole actions, tables without the route and a throw route
 *    (the walk goes on), suppress_prefixlength on main; mangle rules count
 *    each destination by the device it leaves from and the node's ICMP
 *    errors by type. The same rules in the reverse path check
 *    (fib_validate_source with rp_filter strict and loose; a fwmark rule,
 *    which it sees only with src_valid_mark).
 *  - multipath routes: the nexthop each forwarded frame's hash picks, with
 *    a hash seed set, hash policies 0, 1 and 3, unequal weights.
 *
 * Root with iproute2, both iptables backends and tcpreplay; skips with a
 * message otherwise (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { flattenCounters, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology, saveHeader } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { parseRestore } from '../../compiler/parse/restore.js';

const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay'];
const SKIP = kernelSkip('node-context extensions against the kernel', TOOLS);
const MAC = { sender: [2, 0, 0, 0, 0, 1], node: [2, 0, 0, 0, 0, 2] };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-nodectx-'));

function csum(b: number[]): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An IPv4 frame from `src` to `dst` with protocol `proto` (a TCP SYN or a UDP datagram from `port`). */
function frame(src: number[], dst: number[], proto: number, port: number): Uint8Array {
  const l4 = proto === 6
    ? [port >> 8, port & 255, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0]
    : [port >> 8, port & 255, 0, 53, 0, 8, 0, 0];
  const len = 20 + l4.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, 1, 0, 0, 64, proto, 0, 0, ...src, ...dst];
  const c = csum(ip);
  ip[10] = c >> 8;
  ip[11] = c & 255;
  return Uint8Array.from([...MAC.node, ...MAC.sender, 8, 0, ...ip, ...l4]);
}

/**
 * Loads `text` into a node namespace (after `setup`) under each backend,
 * sends `frames`, and compares the counters of the rules whose key matches
 * `keys` with the node model's, both engines. Returns the differences,
 * the number compared and the kernel counters not zero.
 */
async function compare(tag: string, setup: string, text: string, frames: Uint8Array[], keys: RegExp, name: (key: string) => string): Promise<{ diffs: string[]; compared: number; nonzero: number }> {
  const pcap = join(tmp, `frames-${tag}.pcap`);
  writeFileSync(pcap, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
  const out = { diffs: [] as string[], compared: 0, nonzero: 0 };
  for (const backend of ['legacy', 'nft'] as const) {
    const ns = { s: `nfvm-ks-${tag}${backend[0]}-${id}`, n: `nfvm-kn-${tag}${backend[0]}-${id}` };
    const mac = (m: number[]) => m.map((x) => x.toString(16).padStart(2, '0')).join(':');
    try {
      senderNodeTopology(ns, { sender: mac(MAC.sender), eth0: mac(MAC.node) });
      if (setup) nsSh(ns.n, setup);
      const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], text);
      expect(load.stderr, text).toBe('');
      const snap = join(tmp, `snap-${tag}-${backend}`);
      captureSnapshot(snap, nsSnapshotRunner(ns.n));
      writeFileSync(join(snap, 'iptables-save.txt'), `${saveHeader(backend)}${text}`);
      const send = await run('ip', ['netns', 'exec', ns.s, 'tcpreplay', '-q', '-t', '--intf1=veth0', pcap]);
      if (send.code !== 0) throw new Error(`tcpreplay: ${send.stderr}`);
      await new Promise((r) => setTimeout(r, 300));
      const save = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-save`, '-c']);
      const kernel = flattenCounters(parseRestore(save.stdout.replace(/^# Warning.*\n/gm, ''), { counters: true }));
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(snap), { engine });
        replayCapture(model, pcap, 'eth0');
        const mine = flattenCounters(model.rulesetWithCounters()!);
        for (const [key, kc] of kernel as Map<string, KernelCounter>) {
          if (!keys.test(key)) continue;
          out.compared++;
          if (kc.packets > 0n) out.nonzero++;
          const mc = mine.get(key);
          if (!mc || mc.packets !== kc.packets || mc.bytes !== kc.bytes) out.diffs.push(`${backend} ${engine} ${key} (${name(key)}): kernel [${kc.packets}:${kc.bytes}] nfvm ${mc ? `[${mc.packets}:${mc.bytes}]` : 'missing'}`);
        }
      }
    } finally {
      netnsDel(ns.s);
      netnsDel(ns.n);
    }
  }
  return out;
}

const CHAINS = (table: string) => (table === 'raw' ? ['PREROUTING', 'OUTPUT'] : ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']).map((c) => `:${c} ACCEPT [0:0]`);

const RAW = [
  '-p udp --dport 53 -s 10.0.0.0/24 -j NFQUEUE --queue-balance 0:3 --queue-bypass',
  '-p udp -j NFQUEUE --queue-balance 7:12 --queue-bypass --queue-cpu-fanout',
  '-p tcp -j NFQUEUE --queue-balance 2:5',
];
const MANGLE = ['-p udp -s 10.0.0.0/24', '-p udp', '-p tcp'];

const SOURCES = [[172, 16, 3, 3], [10, 0, 0, 2], [192, 168, 1, 1], [10, 9, 9, 9]];
const DESTS = [[10, 8, 1, 1], [10, 7, 1, 1], [10, 6, 0, 1], [10, 5, 0, 9], [10, 0, 0, 1], [10, 5, 0, 1]];
const TESTS = ['--realm 5', '--realm 4', '--realm 0x30004', '--realm 0x90000/0xffff0000', '! --realm 0', '--realm 0x6/0xffff', '--realm 0x20000/0xffff0000', '--realm 7', '--realm 0'];
/** Forwarding on, eth1 10.5.0.1/24 (its peer up), 10.5.0.2 a permanent neighbour there. */
const ETH1 = `sysctl -qw net.ipv4.ip_forward=1
ip link add eth1 type veth peer name eth1p
ip link set eth1 up
ip link set eth1p up
ip addr add 10.5.0.1/24 dev eth1
ip neigh replace 10.5.0.2 lladdr 02:00:00:00:00:09 dev eth1 nud permanent`;
const SETUP = `${ETH1}
ip neigh replace 10.5.0.3 lladdr 02:00:00:00:00:0a dev eth1 nud permanent
ip route add 10.8.0.0/16 via 10.5.0.2 realm 5
ip route add 10.7.0.0/16 via 10.5.0.2 realms 3/4
ip route add 10.6.0.0/16 nexthop via 10.5.0.2 realm 7 nexthop via 10.5.0.3 realm 7
ip route add 192.168.0.0/16 via 10.0.0.2 realm 9
ip rule add from 172.16.0.0/12 to 10.8.0.0/15 realms 2/6 table main pref 100`;

/** Frames to an AnyIP range and a more specific main route, equal prefixes, unreachable and throw routes before the default table, a local route in main. */
const FIB_DESTS = [[192, 168, 5, 7], [192, 168, 6, 7], [192, 168, 7, 7], [10, 50, 1, 1], [10, 60, 1, 1], [10, 0, 0, 1], [10, 70, 0, 1], [10, 80, 1, 1]];
const FIB_SETUP = `${ETH1}
ip route add local 192.168.0.0/16 dev lo
ip route add 192.168.5.0/24 via 10.5.0.2
ip route add 192.168.7.0/24 via 10.5.0.2
ip route add local 192.168.7.0/24 dev lo
ip route add unreachable 10.50.0.0/16
ip route add 10.50.0.0/16 via 10.5.0.2 table default
ip route add throw 10.60.0.0/16
ip route add 10.60.0.0/16 via 10.5.0.2 table default
ip route add 10.70.0.0/16 via 10.5.0.2 table default
ip route add local 10.80.0.0/16 dev lo table main`;
const FIB_RULES = (() => {
  const d = (a: number[]) => a.join('.');
  return ['*mangle', ...CHAINS('mangle'),
    ...FIB_DESTS.flatMap((a) => ['LOCAL', 'UNICAST'].map((t) => `-A PREROUTING -d ${d(a)}/32 -m addrtype --dst-type ${t}`)),
    ...['INPUT', 'FORWARD'].flatMap((c) => FIB_DESTS.map((a) => `-A ${c} -d ${d(a)}/32`)),
    '-A OUTPUT -p icmp -m icmp --icmp-type 3/1', '-A OUTPUT -p icmp -m icmp --icmp-type 3/3', '-A OUTPUT -p icmp',
    'COMMIT', ''].join('\n');
})();

/**
 * Policy routing of forwarded frames: rules with selectors (iif, source,
 * ipproto, dport, `not`), a goto, prohibit/unreachable/blackhole actions,
 * a table without a route for the destination and a throw route (the walk
 * falls through to the next rule), suppress_prefixlength 0 on main (its
 * default route is passed over, its connected routes are not). Each table
 * leaves by its own device: main eth1, 100 eth2, 200 eth3. The node's ICMP
 * errors meet a rule `from 10.0.0.1 ipproto icmp` (table 150, out of eth1):
 * icmp_route_lookup's flow has that source only for an error about a packet
 * to the node (the port unreachable); about a packet to elsewhere its
 * source is 0 (the route picks one), the rule does not match, and the error
 * leaves by eth0.
 */
const POLICY_SETUP = `${ETH1}
ip link add eth2 type veth peer name eth2p
ip link set eth2 up
ip link set eth2p up
ip addr add 10.6.0.1/24 dev eth2
ip neigh replace 10.6.0.2 lladdr 02:00:00:00:00:0b dev eth2 nud permanent
ip link add eth3 type veth peer name eth3p
ip link set eth3 up
ip link set eth3p up
ip addr add 10.7.0.1/24 dev eth3
ip neigh replace 10.7.0.2 lladdr 02:00:00:00:00:0c dev eth3 nud permanent
ip neigh replace 10.5.0.9 lladdr 02:00:00:00:00:0d dev eth1 nud permanent
ip route add default via 10.5.0.2
ip route add 10.20.0.0/16 via 10.6.0.2 table 100
ip route add throw 10.21.0.0/16 table 100
ip route add default via 10.7.0.2 table 200
ip route add 10.0.0.0/24 via 10.5.0.2 table 150
ip rule add from 10.0.0.1 ipproto icmp table 150 pref 40
ip rule add to 10.50.0.0/16 prohibit pref 50
ip rule add to 10.51.0.0/16 unreachable pref 51
ip rule add to 10.52.0.0/16 blackhole pref 52
ip rule add to 10.70.0.0/16 goto 300 pref 60
ip rule add from 10.0.0.0/24 iif eth0 ipproto udp dport 53 table 100 pref 100
ip rule add table main suppress_prefixlength 0 pref 200
ip rule add not to 10.80.0.0/16 table 200 pref 300`;
/** [destination, protocol]: UDP to port 53, TCP to port 80. */
const POLICY_FRAMES: [number[], number][] = [
  [[10, 20, 1, 1], 17], [[10, 20, 1, 1], 6], [[10, 21, 1, 1], 17], [[10, 5, 0, 9], 17], [[10, 50, 1, 1], 17], [[10, 51, 1, 1], 17],
  [[10, 52, 1, 1], 17], [[10, 70, 1, 1], 17], [[10, 80, 1, 1], 17], [[10, 80, 1, 1], 6], [[10, 90, 1, 1], 6],
  [[10, 0, 0, 1], 17],
];
const POLICY_RULES = (() => {
  const d = (a: number[]) => a.join('.');
  const dests = [...new Set(POLICY_FRAMES.map(([a]) => d(a)))];
  return ['*mangle', ...CHAINS('mangle'),
    ...dests.flatMap((a) => [`-A FORWARD -d ${a}/32`, ...['eth1', 'eth2', 'eth3'].map((o) => `-A POSTROUTING -d ${a}/32 -o ${o}`)]),
    '-A OUTPUT -p icmp -m icmp --icmp-type 3/13', '-A OUTPUT -p icmp -m icmp --icmp-type 3/0', '-A OUTPUT -p icmp -m icmp --icmp-type 3/3', '-A OUTPUT -p icmp',
    ...['eth0', 'eth1'].flatMap((o) => [`-A POSTROUTING -p icmp -o ${o} -m icmp --icmp-type 3/3`, `-A POSTROUTING -p icmp -o ${o}`]),
    'COMMIT', ''].join('\n');
})();

/**
 * Multipath routes out of eth1 and eth2 (weights 1:1 and 1:3): each
 * forwarded frame's nexthop is the kernel's hash of it
 * (fib_multipath_hash, SipHash keyed by fib_multipath_hash_seed; policy 0
 * the addresses, policy 1 the addresses, protocol and ports, policy 3 the
 * fields of fib_multipath_hash_fields: 53 is the source address, the
 * protocol and both ports).
 */
const MP_SETUP = (policy: number) => `${ETH1}
ip link add eth2 type veth peer name eth2p
ip link set eth2 up
ip link set eth2p up
ip addr add 10.6.0.1/24 dev eth2
ip neigh replace 10.6.0.2 lladdr 02:00:00:00:00:0b dev eth2 nud permanent
ip route add 10.30.0.0/16 nexthop via 10.5.0.2 dev eth1 nexthop via 10.6.0.2 dev eth2
ip route add 10.31.0.0/16 nexthop via 10.5.0.2 dev eth1 weight 1 nexthop via 10.6.0.2 dev eth2 weight 3
sysctl -qw net.ipv4.fib_multipath_hash_seed=24301 net.ipv4.fib_multipath_hash_policy=${policy} net.ipv4.fib_multipath_hash_fields=53`;
const MP_FRAMES: [number[], number[], number, number][] = Array.from({ length: 48 }, (_, i) => [
  [10, 0, i % 5, 2 + (i % 7)], [10, 30 + (i % 2), i, 1 + (i % 3)], i % 3 === 0 ? 6 : 17, 1024 + i * 97,
]);
const MP_RULES = (() => {
  const d = (a: number[]) => a.join('.');
  return ['*mangle', ...CHAINS('mangle'), ...MP_FRAMES.flatMap(([, dst]) => ['eth1', 'eth2'].map((o) => `-A POSTROUTING -d ${d(dst)}/32 -o ${o}`)), 'COMMIT', ''].join('\n');
})();

describe.skipIf(SKIP)('node-context extensions against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('NFQUEUE --queue-balance: bypass and drop after a balanced queue, every rule\'s counters (both engines, both backends)', async () => {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 24; i++) frames.push(frame([i % 3 === 0 ? 192 : 10, i % 3 === 0 ? 168 : 0, 0, 2 + i], [10, 0, 0, 1], i % 4 === 3 ? 6 : 17, 1024 + i * 7));
    const text = ['*raw', ...CHAINS('raw'), ...RAW.map((r) => `-A PREROUTING ${r}`), 'COMMIT',
      '*mangle', ...CHAINS('mangle'), ...MANGLE.map((r) => `-A PREROUTING ${r}`), 'COMMIT', ''].join('\n');
    const t = await compare('q', '', text, frames, /^(raw|mangle) PREROUTING #/, (k) => k);
    console.log(`NFQUEUE --queue-balance against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${t.nonzero} nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(4);
  }, 300_000);

  it('realm: routes, reverse routes and rules with realms, every rule\'s counters (both engines, both backends)', async () => {
    const frames: Uint8Array[] = [];
    for (const [i, s] of SOURCES.entries()) for (const [j, d] of DESTS.entries()) frames.push(frame(s, d, 17, 1000 + i * 10 + j));
    const text = ['*mangle', ...CHAINS('mangle'), ...['FORWARD', 'INPUT', 'POSTROUTING'].flatMap((c) => TESTS.map((x) => `-A ${c} -m realm ${x}`)), 'COMMIT', ''].join('\n');
    const t = await compare('r', SETUP, text, frames, /^mangle (FORWARD|INPUT|POSTROUTING) #/, (k) => TESTS[(Number(k.split('#')[1]) - 1) % TESTS.length]!);
    console.log(`realm against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${t.nonzero} nonzero)`);
    expect(t.diffs).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(8);
  }, 300_000);

  it('the local and main tables looked up as one trie without custom rules, walked by the rules with one (both engines, both backends)', async () => {
    const frames = FIB_DESTS.map((d, i) => frame([10, 0, 0, 2], d, 17, 2000 + i));
    const name = (k: string) => k;
    const merged = await compare('m', FIB_SETUP, FIB_RULES, frames, /^mangle (PREROUTING|INPUT|FORWARD|OUTPUT) #/, name);
    const ruled = await compare('u', `${FIB_SETUP}\nip rule add from 172.16.0.0/12 lookup main pref 100`, FIB_RULES, frames, /^mangle (PREROUTING|INPUT|FORWARD|OUTPUT) #/, name);
    console.log(`local and main tables against the kernel: without custom rules ${merged.compared - merged.diffs.length}/${merged.compared} rule counters agree (${merged.nonzero} nonzero), with one ${ruled.compared - ruled.diffs.length}/${ruled.compared} (${ruled.nonzero} nonzero)`);
    expect([...merged.diffs, ...ruled.diffs]).toEqual([]);
    expect(merged.nonzero).toBeGreaterThan(6);
    expect(ruled.nonzero).toBeGreaterThan(6);
  }, 300_000);

  it('policy routing: selectors, goto, prohibit/unreachable/blackhole, fall-through past a table without the route and a throw, suppress_prefixlength (both engines, both backends)', async () => {
    const frames = POLICY_FRAMES.map(([d, proto], i) => frame([10, 0, 0, 2], d, proto, 3000 + i));
    const t = await compare('p', POLICY_SETUP, POLICY_RULES, frames, /^mangle (FORWARD|POSTROUTING|OUTPUT) #/, (k) => k);
    // with icmp_errors_use_inbound_ifaddr the errors' flow has eth0's address: the rule takes them out of eth1
    const inbound = await compare('pi', `${POLICY_SETUP}\nsysctl -qw net.ipv4.icmp_errors_use_inbound_ifaddr=1`, POLICY_RULES, frames, /^mangle (FORWARD|POSTROUTING|OUTPUT) #/, (k) => k);
    console.log(`policy routing against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${t.nonzero} nonzero); with icmp_errors_use_inbound_ifaddr ${inbound.compared - inbound.diffs.length}/${inbound.compared} (${inbound.nonzero} nonzero)`);
    expect([...t.diffs, ...inbound.diffs]).toEqual([]);
    expect(t.nonzero).toBeGreaterThan(12);
    expect(inbound.nonzero).toBeGreaterThan(12);
  }, 300_000);

  it('multipath routes: the nexthop of each forwarded frame by its hash, policies 0, 1 and 3, weights (both engines, both backends)', async () => {
    const frames = MP_FRAMES.map(([s, d, proto, port]) => frame(s, d, proto, port));
    const out: string[] = [];
    for (const policy of [0, 1, 3]) {
      const t = await compare(`mp${policy}`, MP_SETUP(policy), MP_RULES, frames, /^mangle POSTROUTING #/, (k) => k);
      console.log(`multipath, fib_multipath_hash_policy ${policy}, against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${t.nonzero} nonzero)`);
      out.push(...t.diffs);
      expect(t.nonzero).toBe(4 * MP_FRAMES.length);
    }
    expect(out).toEqual([]);
  }, 300_000);

  it('policy routing in the reverse path check: rp_filter strict and loose, a fwmark rule with and without src_valid_mark (both engines, both backends)', async () => {
    const sources = [[10, 0, 0, 2], [10, 20, 5, 5], [10, 5, 0, 77], [172, 16, 1, 1], [10, 80, 3, 3]];
    const frames = sources.flatMap((s, i) => [frame(s, [10, 20, 1, 1], 17, 4000 + i), frame(s, [10, 90, 1, 1], 6, 4100 + i)]);
    const d = (a: number[]) => a.join('.');
    // 10.0.0.2's frames are marked 0x5, which a rule sends to table 150 (10.0.0.0/24 via eth1): with src_valid_mark the
    // reverse path check sees the mark and refuses them, without it they pass
    const text = ['*mangle', ...CHAINS('mangle'), '-A PREROUTING -s 10.0.0.2/32 -j MARK --set-xmark 0x5/0xffffffff',
      ...sources.flatMap((s) => [`-A PREROUTING -s ${d(s)}/32`, `-A FORWARD -s ${d(s)}/32`]), 'COMMIT', ''].join('\n');
    const out: string[] = [];
    const nonzero: number[] = [];
    for (const [tag, mode, validMark] of [['s', 1, 0], ['l', 2, 0], ['v', 1, 1]] as const) {
      const setup = `${POLICY_SETUP}\nip rule add fwmark 0x5 table 150 pref 45\nsysctl -qw net.ipv4.conf.all.rp_filter=${mode} net.ipv4.conf.eth0.rp_filter=${mode} net.ipv4.conf.eth0.src_valid_mark=${validMark}`;
      const t = await compare(`rp${tag}`, setup, text, frames, /^mangle (PREROUTING|FORWARD) #/, (k) => k);
      console.log(`policy routing, rp_filter=${mode}, src_valid_mark=${validMark}, against the kernel: ${t.compared - t.diffs.length}/${t.compared} rule counters agree (${t.nonzero} nonzero)`);
      out.push(...t.diffs);
      nonzero.push(t.nonzero);
      expect(t.nonzero).toBeGreaterThan(8);
    }
    expect(out).toEqual([]);
    expect(nonzero[2]).toBeLessThan(nonzero[0]!);
  }, 300_000);
});
