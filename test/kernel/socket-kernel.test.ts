/**
 * The socket match against the kernel (Linux 6.18), both backends: a node
 * namespace whose program holds TCP listeners and UDP sockets bound to its
 * address or to the any address, IP_TRANSPARENT ones with a mark, and an
 * established TCP connection to the sender; counting mangle PREROUTING and
 * filter INPUT rules with -m socket, --nowildcard, --transparent and
 * --restore-skmark (then -m mark rules); frames injected with tcpreplay:
 * segments and datagrams to each socket and to closed ports, a segment of
 * the connection and one of an unknown connection, ICMP errors quoting
 * packets the node sent. Every counter of `iptables-*-save -c` is compared
 * with the node model's on the namespace's snapshot (ss.txt from `ss -H
 * -tuane --inet-sockopt`), both engines.
 *
 * The same node for TPROXY (IPv4, then IPv6): a fwmark policy rule delivering marked
 * packets locally, transparent and plain listeners, a transparent UDP
 * socket; TCP and UDP to non-local addresses redirected, to a
 * non-transparent listener and to no listener (dropped), a segment of the
 * transparent connection (its own socket, its mark); every PREROUTING,
 * INPUT and FORWARD counter compared.
 *
 * Root with iproute2, both iptables backends, tcpreplay, ss with
 * --inet-sockopt and /usr/bin/python3; skips with a message otherwise
 * (fails under CI).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { counterDiffs, flattenCounters, injectAndCount, kernelSkip, type KernelCounter, netnsDel, nsSh, nsSnapshotRunner, replayCapture, run, senderNodeTopology } from '../helpers/kernel.js';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { writePcap, LINKTYPE_ETHERNET } from '../../hooks/input/capture.js';
import { encodeSpec, inetChecksum, parseSpec } from '../../hooks/input/spec.js';

const PY = '/usr/bin/python3';
const TOOLS = ['ip', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'tcpreplay', 'ss'];
const SKIP = kernelSkip('the socket match against the kernel', TOOLS, () => {
  if (!existsSync(PY)) return `needs ${PY}`;
  const h = spawnSync('ss', ['--help'], { encoding: 'utf8' });
  return `${h.stdout}${h.stderr}`.includes('--inet-sockopt') ? undefined : 'needs ss with --inet-sockopt';
});
const MAC = { sender: '02:00:00:00:00:01', node: '02:00:00:00:00:02' };
const id = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-socket-'));

/** The node's program: its sockets, then it waits (killed at the end). */
const PROGRAM = `
import socket, time
SOL_IP, IP_TRANSPARENT, SO_MARK = 0, 19, 36
keep = []
def tcp(addr, port, transparent=False, mark=0, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if transparent: s.setsockopt(SOL_IP, IP_TRANSPARENT, 1)
    if mark: s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    s.bind((addr, port)); s.listen(); keep.append(s)
def udp(addr, port, transparent=False, mark=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if transparent: s.setsockopt(SOL_IP, IP_TRANSPARENT, 1)
    if mark: s.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
    s.bind((addr, port)); keep.append(s)
tcp('10.0.0.1', 80)
tcp('0.0.0.0', 81)
tcp('10.0.0.1', 82, transparent=True, mark=7)
tcp('0.0.0.0', 84, transparent=True, mark=8)
tcp('::', 83, family=socket.AF_INET6)
udp('10.0.0.1', 53)
udp('0.0.0.0', 54)
udp('10.0.0.1', 55, transparent=True, mark=9)
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c.setsockopt(SOL_IP, IP_TRANSPARENT, 1)
c.setsockopt(socket.SOL_SOCKET, SO_MARK, 5)
c.bind(('10.0.0.1', 45000)); c.connect(('10.0.0.2', 9000)); keep.append(c)
print('ready', flush=True)
time.sleep(60)
`;

/** The sender's listener for the node's connection. */
const PEER = `
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.0.0.2', 9000)); s.listen()
print('ready', flush=True)
s.settimeout(20); c, _ = s.accept()
time.sleep(60)
`;

const link = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const SPECS = [
  'tcp 10.0.0.2:40000 > 10.0.0.1:80 syn', 'tcp 10.0.0.2:40001 > 10.0.0.1:81 syn', 'tcp 10.0.0.2:40002 > 10.0.0.1:82 syn',
  'tcp 10.0.0.2:40003 > 10.0.0.1:83 syn', 'tcp 10.0.0.2:40004 > 10.0.0.1:84 syn', 'tcp 10.0.0.2:40005 > 10.0.0.1:85 syn',
  'tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack seq 7 ackseq 9', 'tcp 10.0.0.2:9001 > 10.0.0.1:45000 ack',
  'udp 10.0.0.2:5000 > 10.0.0.1:53 len 4', 'udp 10.0.0.2:5001 > 10.0.0.1:54 len 5', 'udp 10.0.0.2:5002 > 10.0.0.1:55 len 6',
  'udp 10.0.0.2:5003 > 10.0.0.1:56 len 7',
].map((s) => `${s} ${link}`);

/** An ICMP error (type 3 code 1) from the sender quoting a packet the node sent: `proto` from 10.0.0.1:`lport` to 10.0.0.2:`rport`. */
function icmpError(proto: number, lport: number, rport: number): Uint8Array {
  const mac = (m: string) => m.split(':').map((x) => parseInt(x, 16));
  const inner = [0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, lport >> 8, lport & 255, rport >> 8, rport & 255, 0, 0, 0, 0];
  const icmp = [3, 1, 0, 0, 0, 0, 0, 0, ...inner];
  const c = inetChecksum(Uint8Array.from(icmp), 0, icmp.length, 0);
  icmp[2] = c >> 8;
  icmp[3] = c & 255;
  const len = 20 + icmp.length;
  const ip = [0x45, 0, len >> 8, len & 255, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
  const ic = inetChecksum(Uint8Array.from(ip), 0, 20, 0);
  ip[10] = ic >> 8;
  ip[11] = ic & 255;
  return Uint8Array.from([...mac(MAC.node), ...mac(MAC.sender), 8, 0, ...ip, ...icmp]);
}

const TESTS = ['', '--nowildcard', '--transparent', '--transparent --nowildcard'];
const RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  ...['tcp', 'udp', 'icmp'].flatMap((p) => TESTS.map((t) => `-A PREROUTING -p ${p} -m socket ${t}`.trimEnd())),
  '-A PREROUTING -m socket --restore-skmark', '-A PREROUTING -m socket --transparent --restore-skmark',
  ...[5, 7, 8, 9].map((m) => `-A PREROUTING -m mark --mark ${m}`),
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  ...TESTS.map((t) => `-A INPUT -m socket ${t}`.trimEnd()),
  'COMMIT', ''].join('\n');

/** Starts `code` under python3 in `ns`; resolves once it printed `ready`. */
function program(ns: string, code: string): Promise<ReturnType<typeof spawn>> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, PY, '-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(p);
    });
    p.on('exit', (c) => reject(new Error(`python3 in ${ns} exited ${c}: ${err}`)));
  });
}

// the connection's mark stays clear of the fwmark rules (0x1, 0x2), which would route its own packets to lo
const TPROXY_PROGRAM = PROGRAM.replace('SO_MARK, 5)', 'SO_MARK, 4)').replace("print('ready', flush=True)", `tcp('0.0.0.0', 8080, transparent=True)
tcp('0.0.0.0', 8081)
udp('0.0.0.0', 5353, transparent=True)
print('ready', flush=True)`);

const TPROXY_RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 8080 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --dport 81 -j TPROXY --on-port 8081 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --dport 82 -j TPROXY --on-port 8090 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p udp -m udp --dport 53 -j TPROXY --on-port 5353 --on-ip 10.0.0.1 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --sport 9000 -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x2/0x2',
  '-A PREROUTING -p tcp', '-A PREROUTING -p udp',
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -m mark --mark 0x1/0x1', '-A INPUT -m mark --mark 0x2/0x2', '-A INPUT -p tcp', '-A INPUT -p udp', '-A INPUT -m socket', '-A INPUT -m socket --transparent', '-A FORWARD',
  'COMMIT', ''].join('\n');

const TPROXY_SPECS = [
  'tcp 10.0.0.2:40000 > 10.9.9.9:80 syn', 'tcp 10.0.0.2:40001 > 10.9.9.9:80 syn', 'tcp 10.0.0.2:40002 > 10.9.9.9:81 syn', 'tcp 10.0.0.2:40003 > 10.9.9.9:82 syn',
  'udp 10.0.0.2:5000 > 10.9.9.9:53 len 9', 'udp 10.0.0.2:5001 > 10.0.0.1:53 len 3', 'tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack seq 7 ackseq 9',
  'tcp 10.0.0.2:40004 > 10.0.0.1:22 syn',
].map((s) => `${s} ${link}`);

/**
 * IPv6 TPROXY: eth0 holds 2001:db8::1, then 2001:db8::a, then 2001:db8::b
 * deprecated (preferred_lft 0), and its link-local address. The kernel lists a
 * device's addresses global before link-local, the newest first, so ::b
 * heads the list and nf_tproxy_laddr6 skips it (deprecated) for ::a. The
 * program listens transparently on [::a]:8080, plainly on [::1]:8080 and
 * [::b]:8083, transparently on [::]:8082, UDP on [::]:5353.
 */
const TPROXY6_PROGRAM = `
import socket, time
SOL_IPV6, IPV6_TRANSPARENT = 41, 75
keep = []
def tcp(addr, port, transparent=False):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if transparent: s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
    s.bind((addr, port)); s.listen(); keep.append(s)
def udp(addr, port, transparent=False):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if transparent: s.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
    s.bind((addr, port)); keep.append(s)
tcp('2001:db8::a', 8080, transparent=True)
tcp('2001:db8::1', 8080)
tcp('2001:db8::b', 8083, transparent=True)
tcp('::', 8082, transparent=True)
tcp('::', 8084)
udp('::', 5353, transparent=True)
print('ready', flush=True)
time.sleep(60)
`;

const TPROXY6_RULES = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  // --on-ip ::: the first usable address of eth0, 2001:db8::a (transparent)
  '-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 8080 --on-ip :: --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --dport 81 -j TPROXY --on-port 8080 --on-ip 2001:db8::1 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --dport 82 -j TPROXY --on-port 8082 --on-ip :: --tproxy-mark 0x1/0x1',
  // the deprecated ::b is not chosen: [::a]:8083 has no listener
  '-A PREROUTING -p tcp -m tcp --dport 83 -j TPROXY --on-port 8083 --on-ip :: --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp -m tcp --dport 84 -j TPROXY --on-port 8084 --on-ip :: --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p udp -m udp --dport 53 -j TPROXY --on-port 5353 --on-ip 2001:db8::1 --tproxy-mark 0x1/0x1',
  '-A PREROUTING -p tcp', '-A PREROUTING -p udp',
  'COMMIT', '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]',
  '-A INPUT -m mark --mark 0x1/0x1', '-A INPUT -p tcp', '-A INPUT -p udp', '-A INPUT -m socket', '-A INPUT -m socket --transparent',
  ...[80, 81, 82, 83, 84].map((p) => `-A INPUT -p tcp -m tcp --dport ${p}`), '-A FORWARD',
  'COMMIT', ''].join('\n');

const link6 = `iif eth0 src-mac ${MAC.sender} dst-mac ${MAC.node}`;
const TPROXY6_SPECS = [
  'tcp [2001:db8::2]:40000 > [2001:db8:9::9]:80 syn', 'tcp [2001:db8::2]:40001 > [2001:db8:9::9]:81 syn', 'tcp [2001:db8::2]:40002 > [2001:db8:9::9]:82 syn',
  'tcp [2001:db8::2]:40003 > [2001:db8:9::9]:83 syn', 'tcp [2001:db8::2]:40004 > [2001:db8:9::9]:84 syn', 'udp [2001:db8::2]:5000 > [2001:db8:9::9]:53 len 9',
  'tcp [2001:db8::2]:40005 > [2001:db8::1]:22 syn',
].map((s) => `${s} ${link6}`);

/**
 * Writes `rules` as the snapshot's iptables-save.txt (ip6tables-save.txt),
 * injects the capture into the node namespace and compares the kernel's
 * counters whose key matches `keys` with the node model's, both engines,
 * into `diffs` and `tally`.
 */
async function compareEngines(snap: string, rules: string, pcap: string, ns: { s: string; n: string }, backend: 'legacy' | 'nft', keys: RegExp, diffs: string[], tally: { counters: number; agree: number; nonzero: number }, family: 'ip' | 'ip6' = 'ip'): Promise<void> {
  const tool = family === 'ip6' ? 'ip6tables' : 'iptables';
  writeFileSync(join(snap, `${tool}-save.txt`), `# Generated by ${tool}-${backend === 'nft' ? 'nft-' : ''}save v1.8.9${backend === 'nft' ? ' (nf_tables)' : ''}\n${rules}`);
  const kernel = await injectAndCount(ns, pcap, backend, family);
  const wanted = new Map([...(kernel as Map<string, KernelCounter>)].filter(([key]) => keys.test(key)));
  for (const engine of ['vm', 'reference'] as const) {
    const model = buildNodeModel(readSnapshot(snap), { engine });
    replayCapture(model, pcap, 'eth0');
    const mine = flattenCounters(model.rulesetWithCounters(family)!, true);
    diffs.push(...counterDiffs(wanted, mine, tally).map((l) => `${backend} ${engine}${l}`));
  }
}

describe.skipIf(SKIP)('the socket match against the kernel', () => {
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('every counter: listeners bound and wildcard, transparent and marked, a connection, ICMP errors (both engines, both backends)', async () => {
    const pcap = join(tmp, 'frames.pcap');
    const frames = [...SPECS.map((s) => encodeSpec(parseSpec(s)).data), icmpError(6, 80, 40000), icmpError(17, 55, 5002), icmpError(6, 45000, 9000), icmpError(17, 57, 5000)];
    writeFileSync(pcap, writePcap(frames.map((data) => ({ data })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-ss-${backend[0]}-${id}`, n: `nfvm-sn-${backend[0]}-${id}` };
      const procs: ReturnType<typeof spawn>[] = [];
      try {
        senderNodeTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        nsSh(ns.n, `ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent`);
        nsSh(ns.s, `ip neigh replace 10.0.0.1 lladdr ${MAC.node} dev veth0 nud permanent
iptables-legacy -I OUTPUT -p tcp --sport 9000 -j ACCEPT`);
        procs.push(await program(ns.s, PEER));
      } catch (e) {
        for (const p of procs) p.kill('SIGKILL');
        netnsDel(ns.s);
        netnsDel(ns.n);
        throw e;
      }
      try {
        procs.push(await program(ns.n, PROGRAM));
        // the connection is up: the sender goes silent again
        nsSh(ns.s, 'iptables-legacy -D OUTPUT -p tcp --sport 9000 -j ACCEPT');
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], RULES);
        expect(load.stderr, RULES).toBe('');
        const snap = join(tmp, `snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        const ss = readFileSync(join(snap, 'ss.txt'), 'utf8');
        expect(ss).toMatch(/ESTAB .*10\.0\.0\.1:45000 +10\.0\.0\.2:9000/);
        expect(ss).toContain('transparent');
        await compareEngines(snap, RULES, pcap, ns, backend, /PREROUTING #|INPUT #/, diffs, tally);
      } finally {
        for (const p of procs) p.kill('SIGKILL');
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * (3 * TESTS.length + 2 + 4 + TESTS.length));
    expect(tally.nonzero).toBeGreaterThan(30);
  }, 120_000);
  it('TPROXY: redirected to transparent listeners, a connection\'s own socket, drops without one (both engines, both backends)', async () => {
    const pcap = join(tmp, 'tproxy.pcap');
    writeFileSync(pcap, writePcap(TPROXY_SPECS.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-ts-${backend[0]}-${id}`, n: `nfvm-tn-${backend[0]}-${id}` };
      const procs: ReturnType<typeof spawn>[] = [];
      try {
        senderNodeTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        nsSh(ns.n, `ip neigh replace 10.0.0.2 lladdr ${MAC.sender} dev eth0 nud permanent
ip rule add fwmark 0x1/0x1 lookup 100 pref 100
ip rule add fwmark 0x2/0x2 lookup 100 pref 101
ip route add local 0.0.0.0/0 dev lo table 100`);
        nsSh(ns.s, `ip neigh replace 10.0.0.1 lladdr ${MAC.node} dev veth0 nud permanent
iptables-legacy -I OUTPUT -p tcp --sport 9000 -j ACCEPT`);
        procs.push(await program(ns.s, PEER));
        procs.push(await program(ns.n, TPROXY_PROGRAM));
        nsSh(ns.s, 'iptables-legacy -D OUTPUT -p tcp --sport 9000 -j ACCEPT');
        const load = await run('ip', ['netns', 'exec', ns.n, `iptables-${backend}-restore`], TPROXY_RULES);
        expect(load.stderr, TPROXY_RULES).toBe('');
        const snap = join(tmp, `tsnap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        await compareEngines(snap, TPROXY_RULES, pcap, ns, backend, /PREROUTING #|INPUT #|FORWARD #/, diffs, tally);
      } finally {
        for (const p of procs) p.kill('SIGKILL');
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    expect(tally.nonzero).toBeGreaterThan(20);
  }, 120_000);

  it('IPv6 TPROXY: --on-ip :: takes the input device\'s first address neither tentative nor deprecated, in ip -j addr\'s order (both engines, both backends)', async () => {
    const pcap = join(tmp, 'tproxy6.pcap');
    writeFileSync(pcap, writePcap(TPROXY6_SPECS.map((s) => ({ data: encodeSpec(parseSpec(s)).data })), { linktype: LINKTYPE_ETHERNET }));
    const diffs: string[] = [];
    const tally = { counters: 0, agree: 0, nonzero: 0 };
    for (const backend of ['legacy', 'nft'] as const) {
      const ns = { s: `nfvm-t6s-${backend[0]}-${id}`, n: `nfvm-t6n-${backend[0]}-${id}` };
      const procs: ReturnType<typeof spawn>[] = [];
      try {
        senderNodeTopology(ns, { sender: MAC.sender, eth0: MAC.node });
        nsSh(ns.n, `sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0
sysctl -qw net.ipv6.conf.eth0.addr_gen_mode=1 net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.disable_ipv6=0
ip -6 addr add 2001:db8::1/64 dev eth0 nodad
ip -6 addr add 2001:db8::a/64 dev eth0 nodad
ip -6 addr add 2001:db8::b/64 dev eth0 nodad preferred_lft 0
ip -6 neigh replace 2001:db8::2 lladdr ${MAC.sender} dev eth0 nud permanent
ip -6 rule add fwmark 0x1/0x1 lookup 100 pref 100
ip -6 route add local ::/0 dev lo table 100`);
        procs.push(await program(ns.n, TPROXY6_PROGRAM));
        const load = await run('ip', ['netns', 'exec', ns.n, `ip6tables-${backend}-restore`], TPROXY6_RULES);
        expect(load.stderr, TPROXY6_RULES).toBe('');
        const snap = join(tmp, `t6snap-${backend}`);
        captureSnapshot(snap, nsSnapshotRunner(ns.n));
        // the kernel's list order, newest global address first: ::b (deprecated), ::a, ::1
        const addrs = (JSON.parse(readFileSync(join(snap, 'ip-addr.json'), 'utf8')) as { ifname: string; addr_info: { family: string; local: string; deprecated?: boolean }[] }[])
          .find((l) => l.ifname === 'eth0')!.addr_info.filter((a) => a.family === 'inet6');
        expect(addrs.slice(0, 3).map((a) => [a.local, a.deprecated === true])).toEqual([['2001:db8::b', true], ['2001:db8::a', false], ['2001:db8::1', false]]);
        await compareEngines(snap, TPROXY6_RULES, pcap, ns, backend, /PREROUTING #|INPUT #|FORWARD #/, diffs, tally, 'ip6');
      } finally {
        for (const p of procs) p.kill('SIGKILL');
        netnsDel(ns.s);
        netnsDel(ns.n);
      }
    }
    expect(diffs).toEqual([]);
    expect(tally.counters).toBe(2 * 2 * (8 + 11));
    expect(tally.nonzero).toBeGreaterThan(20);
  }, 120_000);
});
