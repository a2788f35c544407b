/**
 * The node model against the running kernel (6.18), in throwaway network
 * namespaces (root only; skipped with a message elsewhere):
 *  - `captureSnapshot` inside a namespace with a veth pair, addresses, policy
 *    rules, routes and iptables rules, read back with `readSnapshot`;
 *  - `fibLookup` against `ip route get` for a set of flows, the table of the
 *    answer included (without custom rules the local and main tables' one
 *    trie answers as main);
 *  - routes derived from addresses against what the kernel created;
 *  - the equal-priority hook rule: two nft base chains at output priority 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { captureSnapshot } from '../../hooks/snapshot/capture.js';
import { buildNode, readSnapshot } from '../../hooks/snapshot/read.js';
import { deriveRoutes4, fibLookup, formatAddr, RTN_NAMES, type Route } from '../../hooks/route/index.js';
import { tableName } from '../../hooks/route/types.js';
import { have, kernelSkip, skipBecause } from '../helpers/kernel.js';

const SKIP = kernelSkip('node snapshot against the kernel', ['ip', 'iptables-save']);

const ns = `nfvm-node-${process.pid}-${randomBytes(3).toString('hex')}`;
const sh = (cmd: string) => {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
};
const tmp = mkdtempSync(join(tmpdir(), 'nfvm-node-kern-'));

describe.skipIf(SKIP)('node snapshot against the kernel', () => {
  beforeAll(() => {
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    sh(`ip link set lo up
ip link add veth0 type veth peer name veth1
ip link set veth0 address 02:00:00:00:00:01
ip addr add 10.5.0.1/24 dev veth0
ip addr add 10.5.0.9/24 dev veth0
ip addr add 10.6.0.1/32 dev veth0
ip addr add 10.7.0.1/31 dev veth0
ip addr add 192.168.7.1/24 brd 192.168.7.255 dev veth1
ip link set veth0 up; ip link set veth1 up
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.conf.veth0.rp_filter=2
ip rule add fwmark 0x4000/0x4000 lookup 100 pref 100
ip rule add from 10.5.0.9 lookup 200 pref 200
ip rule add to 198.18.0.0/15 ipproto tcp dport 80 lookup 200 pref 210
ip rule add not to 10.0.0.0/8 fwmark 0x1 goto 400 pref 300
ip rule add fwmark 0x1 prohibit pref 350
ip rule add fwmark 0x2/0x3 suppress_prefixlength 0 lookup main pref 400
ip rule add to 203.0.113.66 unreachable pref 500
ip rule add to 203.0.113.67 blackhole pref 501
ip rule add nop pref 502
ip route add default via 10.5.0.254 dev veth0
ip route add default via 192.168.7.254 dev veth1 table 100
ip route add throw 10.8.0.0/16 table 100
ip route add 1.0.0.0/8 via 10.5.0.3 table 200
ip route add 198.18.0.0/15 via 10.5.0.4 table 200
ip route add 10.9.0.0/16 via 10.5.0.2 metric 50
ip route add 10.9.0.0/16 via 192.168.7.2 metric 20
ip route add 10.9.9.0/24 via 10.5.0.5
ip route add unreachable 10.11.0.0/16
ip route add prohibit 10.12.0.0/16
ip route add blackhole 10.13.0.0/16
ip route add 10.14.0.0/16 tos 0x10 via 10.5.0.6
iptables -A INPUT -s 10.5.0.0/24 -p tcp --dport 22 -j ACCEPT
iptables -P FORWARD DROP
ip6tables -A INPUT -p ipv6-icmp -j ACCEPT`);
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('captures atomically and reads back what was configured', () => {
    const dir = join(tmp, 'snap');
    const rep = captureSnapshot(dir, (argv) => {
      const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
      return { status: r.status === 255 && /No such file|not found/.test(r.stderr) ? undefined : r.status, stdout: r.stdout, stderr: r.stderr };
    });
    expect(rep.skipped).toEqual([]);
    expect(() => captureSnapshot(dir)).toThrow(/already exists/);
    const n = readSnapshot(dir);
    expect([...n.links.keys()].sort()).toEqual(['lo', 'veth0', 'veth1']);
    expect(n.link('veth0')).toMatchObject({ mac: '02:00:00:00:00:01', kind: 'veth', up: true, peer: 'veth1' });
    expect(n.addressesOf('veth0', 4).map((a) => `${formatAddr(a.local)}/${a.prefixlen}${a.secondary ? ' secondary' : ''}`)).toEqual([
      '10.5.0.1/24', '10.6.0.1/32', '10.7.0.1/31', '10.5.0.9/24 secondary',
    ]);
    expect(n.fib4.rules.map((r) => r.pref)).toEqual([0, 100, 200, 210, 300, 350, 400, 500, 501, 502, 32766, 32767]);
    expect(n.fib4.rules[1]).toMatchObject({ mark: 0x4000, markMask: 0x4000, table: 100 });
    expect(n.fib4.rules[3]).toMatchObject({ ipProto: 6, dport: [80, 80], dstLen: 15 });
    expect(n.fib4.rules[4]).toMatchObject({ invert: true, gotoTarget: 400, mark: 1, markMask: 0xffffffff });
    expect(n.fib4.rules[6]).toMatchObject({ suppressPrefixlen: 0, markMask: 3 });
    expect(n.sysctl.ipForward()).toBe(true);
    expect(n.sysctl.rpFilter('veth0')).toBe(2);
    expect(n.sysctl.rpFilter('veth1')).toBe(0);
    expect(n.iptables!.text).toContain('-A INPUT -s 10.5.0.0/24 -p tcp -m tcp --dport 22 -j ACCEPT');
    expect(n.iptables!.text).toContain(':FORWARD DROP');
    expect(n.ip6tables!.text).toContain('-A INPUT -p ipv6-icmp -j ACCEPT');
    expect(n.iptables!.backend).toMatch(/^(legacy|nft)$/);

    // Routes derived from the addresses equal the kernel's kernel-protocol routes.
    const derived = buildNode('', new Map([['ip-addr.json', readFileSync(join(dir, 'ip-addr.json'), 'utf8')], ['ip-link.json', readFileSync(join(dir, 'ip-link.json'), 'utf8')]]));
    const key = (q: Route) => `${q.table} ${RTN_NAMES[q.type]} ${formatAddr(q.dst)}/${q.plen} ${q.nexthops[0]?.dev} ${q.prefsrc ? formatAddr(q.prefsrc) : ''} ${q.scope}`;
    const dump = (x: typeof n, onlyKernel: boolean) => [...x.fib4.tables.values()].flatMap((t) => t.routes().filter((q) => !onlyKernel || q.protocol === 'kernel').map(key)).sort();
    expect(dump(derived, false)).toEqual(dump(n, true));
    // ... route for route as deriveRoutes4 lists them, before a FIB takes them: the kernel keeps no duplicate
    // (fib_table_insert refuses a perfect match; 192.168.7.1/24 brd 192.168.7.255 is its network's broadcast)
    const links = new Map([...n.links].map(([k, l]) => [k, { name: k, up: l.up, loopback: l.loopback }]));
    expect(deriveRoutes4(links, n.addresses).map(key).sort()).toEqual(dump(n, true));
  });

  it('fibLookup agrees with `ip route get`', () => {
    const n = readSnapshot(join(tmp, 'snap'));
    const flows: { dst: string; args?: string; flow?: object }[] = [
      { dst: '8.8.8.8' }, { dst: '8.8.8.8', args: 'mark 0x4000', flow: { mark: 0x4000 } }, { dst: '10.8.1.1', args: 'mark 0x4000', flow: { mark: 0x4000 } },
      { dst: '1.2.3.4', args: 'from 10.5.0.9', flow: { saddr: '10.5.0.9' } }, { dst: '10.5.0.77', args: 'from 10.5.0.9', flow: { saddr: '10.5.0.9' } },
      { dst: '198.18.1.1', args: 'ipproto tcp dport 80', flow: { proto: 6, dport: 80 } }, { dst: '198.18.1.1', args: 'ipproto tcp dport 81', flow: { proto: 6, dport: 81 } },
      { dst: '8.8.8.8', args: 'mark 0x1', flow: { mark: 1 } }, { dst: '10.5.0.7', args: 'mark 0x1', flow: { mark: 1 } },
      { dst: '8.8.8.8', args: 'mark 0x2', flow: { mark: 2 } }, { dst: '10.5.0.7', args: 'mark 0x6', flow: { mark: 6 } },
      { dst: '203.0.113.66' }, { dst: '203.0.113.67' }, { dst: '10.9.1.1' }, { dst: '10.9.9.9' }, { dst: '10.11.0.1' }, { dst: '10.12.0.1' },
      { dst: '10.13.0.1' }, { dst: '10.14.0.1' }, { dst: '10.14.0.1', args: 'tos 0x10', flow: { tos: 0x10 } }, { dst: '10.7.0.0' },
      { dst: '10.5.0.1' }, { dst: '10.5.0.255' }, { dst: '192.168.7.255' }, { dst: '127.1.2.3' }, { dst: '10.6.0.1' },
    ];
    for (const f of flows) {
      const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', `ip -j route get ${f.dst} ${f.args ?? ''}`], { encoding: 'utf8' });
      const kernel = r.status === 0 ? (() => {
        const j = JSON.parse(r.stdout)[0];
        return `${j.type ?? 'unicast'} ${j.gateway ?? '-'} ${j.type === 'local' ? '' : j.dev} table ${j.table ?? 'main'}`;
      })() : r.stderr.trim().replace(/^RTNETLINK answers: /, '');
      const m = fibLookup(n, { daddr: f.dst, ...f.flow });
      const ours = m.ok
        ? `${m.type} ${m.gateway ? formatAddr(m.gateway) : '-'} ${m.type === 'local' ? '' : m.dev} table ${tableName(m.table)}`
        : { unreachable: m.errno === 101 ? 'Network is unreachable' : 'No route to host', prohibit: 'Permission denied', blackhole: 'Invalid argument', noroute: 'Network is unreachable' }[m.error];
      expect(`${f.dst} ${f.args ?? ''}: ${ours}`).toBe(`${f.dst} ${f.args ?? ''}: ${kernel}`);
    }
  });

  it('the table of the answer without custom rules: the local and main tables are one trie, its answers main\'s (fib_lookup\'s res->table), local\'s again once a rule is added', () => {
    const ns2 = `${ns}-t`;
    const sh2 = (cmd: string) => {
      const r = spawnSync('ip', ['netns', 'exec', ns2, 'sh', '-c', cmd], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
      return r.stdout;
    };
    expect(spawnSync('ip', ['netns', 'add', ns2]).status).toBe(0);
    try {
      sh2(`ip link set lo up
ip link add va type veth peer name vb
ip addr add 10.9.0.1/24 dev va
ip link set va up; ip link set vb up`);
      const seen: string[] = [];
      for (const [tag, extra] of [['merged', ''], ['ruled', 'ip rule add from 1.2.3.4 lookup 100 pref 100']] as const) {
        if (extra) sh2(extra);
        const dir = join(tmp, `snap-${tag}`);
        captureSnapshot(dir, (argv) => {
          const r = spawnSync('ip', ['netns', 'exec', ns2, ...argv], { encoding: 'utf8' });
          return { status: r.status === 255 && /No such file|not found/.test(r.stderr) ? undefined : r.status, stdout: r.stdout, stderr: r.stderr };
        });
        const n = readSnapshot(dir);
        for (const dst of ['10.9.0.1', '127.0.0.1', '10.9.0.255', '10.9.0.7']) {
          const j = JSON.parse(sh2(`ip -j route get ${dst}`))[0];
          const m = fibLookup(n, { daddr: dst });
          const line = (type: string, table: string) => `${tag} ${dst}: ${type} table ${table}`;
          expect(m.ok && line(m.type, tableName(m.table))).toBe(line(j.type ?? 'unicast', j.table ?? 'main'));
          seen.push(`${tag} ${j.table ?? 'main'}`);
        }
      }
      // both ways of answering were met: main for local addresses in one trie, local with a rule
      expect(seen).toContain('merged main');
      expect(seen).toContain('ruled local');
    } finally {
      spawnSync('ip', ['netns', 'del', ns2]);
    }
  });

  it('equal priorities: the hook registered later runs first', (ctx) => {
    if (skipBecause('equal hook priorities in the kernel', have('nft') ? undefined : 'needs nft')) return ctx.skip();
    sh(`printf 'table ip t1 {\\n chain c {\\n type filter hook output priority 0; policy accept;\\n meta l4proto udp meta mark set 0x1\\n }\\n}\\ntable ip t2 {\\n chain c {\\n type filter hook output priority 0; policy accept;\\n meta l4proto udp meta mark 0 counter\\n }\\n}\\n' | nft -f -`);
    sh(`command -v bash >/dev/null && bash -c 'echo x > /dev/udp/127.0.0.1/9' || true`);
    expect(sh('nft list table ip t2')).toMatch(/meta mark 0x00000000 counter packets [1-9]/);
  });
});
