/**
 * The socket match's data and lookups (the kernel comparison is
 * test/kernel/socket-kernel.test.ts):
 *  - ss.txt as `ss -H -tuane --inet-sockopt` prints it: connections in
 *    every TCP state with their peers, connected UDP sockets, fwmark, the
 *    inet-sockopt line's transparent, TCP sockets in no table;
 *  - the lookups of hooks/xt-socket.ts: a connection's four-tuple first
 *    (an AF_INET6 socket's IPv4 connection too), then the listeners; UDP
 *    by score (connected, device-bound, AF_INET first); IPv6;
 *  - the match on both engines over a snapshot with those sockets.
 */
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSs } from '../../hooks/snapshot/ss.js';
import { NodeXtSockets } from '../../hooks/xt-socket.js';
import { readSnapshot } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { parseSpec, specPacket } from '../../hooks/input/spec.js';
import { M_MARK } from '../../vm/layout.js';
import { NfvmError } from '../../core/errors.js';

const SS = `tcp   LISTEN    0      128          10.0.0.1:80          0.0.0.0:*     ino:11 sk:1 cgroup:unreachable:1 <->
	inet-sockopt: ( is_icsk mc_loop mc_all)
tcp   LISTEN    0      128           0.0.0.0:81          0.0.0.0:*     ino:12 sk:2 cgroup:unreachable:1 <->
tcp   LISTEN    0      128          10.0.0.1:82          0.0.0.0:*     ino:13 sk:3 fwmark:0x7 cgroup:unreachable:1 <->
	inet-sockopt: ( is_icsk mc_loop transparent mc_all)
tcp   UNCONN    0      0             0.0.0.0:86          0.0.0.0:*     ino:14 sk:4 <->
tcp   ESTAB     0      0            10.0.0.1:45000       10.0.0.2:9000  ino:15 sk:5 fwmark:0x5 <->
	inet-sockopt: ( is_icsk mc_loop transparent mc_all)
tcp   TIME-WAIT 0      0            10.0.0.1:45001       10.0.0.2:9001  timer:(timewait,59sec,0)
tcp   ESTAB     0      0     [::ffff:10.0.0.1]:22   [::ffff:10.0.0.9]:50000 ino:16 sk:6 <->
tcp   LISTEN    0      128                 *:83                *:*     ino:17 sk:7 v6only:0 <->
tcp   LISTEN    0      128              [::]:87             [::]:*     ino:18 sk:8 v6only:1 <->
udp   UNCONN    0      0            10.0.0.1:53          0.0.0.0:*     ino:19 sk:9 <->
udp   UNCONN    0      0             0.0.0.0:53          0.0.0.0:*     ino:20 sk:a <->
udp   ESTAB     0      0            10.0.0.1:53         10.0.0.7:5353  ino:21 sk:b fwmark:0x9 <->
	inet-sockopt: ( transparent)
udp   UNCONN    0      0         0.0.0.0%eth1:54          0.0.0.0:*     ino:22 sk:c <->
udp   UNCONN    0      0             0.0.0.0:54          0.0.0.0:*     ino:23 sk:d fwmark:0x3 <->
`;

const ip = (s: string) => [s.split('.').reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0)];

describe('ss.txt with connections, marks and IP_TRANSPARENT', () => {
  const t = parseSs(SS, 'ss.txt');

  it('listeners apart from connections; a TCP socket neither bound nor listening in neither', () => {
    expect(t.sockets.map((s) => s.text)).toEqual(['tcp 10.0.0.1:80', 'tcp 0.0.0.0:81', 'tcp 10.0.0.1:82', 'tcp *:83', 'tcp [::]:87', 'udp 10.0.0.1:53', 'udp 0.0.0.0:53', 'udp 0.0.0.0%eth1:54', 'udp 0.0.0.0:54']);
    expect(t.connected.map((s) => `${s.text} ${s.state} ${s.peer?.port}`)).toEqual([
      'tcp 10.0.0.1:45000 ESTAB 9000', 'tcp 10.0.0.1:45001 TIME-WAIT 9001', 'tcp [::ffff:10.0.0.1]:22 ESTAB 50000', 'udp 10.0.0.1:53 ESTAB 5353',
    ]);
    expect(t.sockets.map((s) => [s.mark, s.transparent])).toEqual([[0, false], [0, false], [7, true], [0, false], [0, false], [0, false], [0, false], [0, false], [3, false]]);
    expect(t.connected.map((s) => [s.mark, s.transparent])).toEqual([[5, true], [0, false], [0, false], [9, true]]);
  });

  it('refuses a bad peer and an inet-sockopt line before any socket, at their column', () => {
    expect(() => parseSs('tcp ESTAB 0 0 10.0.0.1:22 10.0.0.x:5\n', 'ss.txt')).toThrow(/ss\.txt:1:27: bad peer address "10\.0\.0\.x"/);
    expect(() => parseSs('\tinet-sockopt: ( transparent)\n', 'ss.txt')).toThrow(NfvmError);
  });

  it('the lookups: the connection first, then the listeners; UDP by score', () => {
    const node = { sockets: t, linksByIndex: new Map([[2, { name: 'eth0' }], [3, { name: 'eth1' }]]) };
    const x = new NodeXtSockets(node as never);
    // the connection's four-tuple
    expect(x.lookup(4, 6, ip('10.0.0.2'), 9000, ip('10.0.0.1'), 45000, 2)).toMatchObject({ full: true, wildcard: false, transparent: true, mark: 5, timeWait: false });
    expect(x.lookup(4, 6, ip('10.0.0.2'), 9001, ip('10.0.0.1'), 45001, 2)).toMatchObject({ full: false, wildcard: false, transparent: false, mark: 0, timeWait: true });
    expect(x.lookup(4, 6, ip('10.0.0.2'), 9002, ip('10.0.0.1'), 45000, 2)).toBeUndefined();
    // an AF_INET6 socket's IPv4 connection
    expect(x.lookup(4, 6, ip('10.0.0.9'), 50000, ip('10.0.0.1'), 22, 2)).toBeDefined();
    // listeners: bound, wildcard, dual-stack `*`, v6only never for IPv4
    expect(x.lookup(4, 6, ip('10.0.0.2'), 1, ip('10.0.0.1'), 80, 2)?.wildcard).toBe(false);
    expect(x.lookup(4, 6, ip('10.0.0.2'), 1, ip('10.0.0.1'), 81, 2)?.wildcard).toBe(true);
    expect(x.lookup(4, 6, ip('10.0.0.2'), 1, ip('10.0.0.1'), 83, 2)?.wildcard).toBe(true);
    expect(x.lookup(4, 6, ip('10.0.0.2'), 1, ip('10.0.0.1'), 87, 2)).toBeUndefined();
    expect(x.lookup(4, 6, ip('10.0.0.2'), 1, ip('10.0.0.1'), 86, 2)).toBeUndefined();
    // UDP: the connected socket for its peer, else the bound one, else the wildcard one
    expect(x.lookup(4, 17, ip('10.0.0.7'), 5353, ip('10.0.0.1'), 53, 2)?.mark).toBe(9);
    expect(x.lookup(4, 17, ip('10.0.0.8'), 5353, ip('10.0.0.1'), 53, 2)).toMatchObject({ full: true, wildcard: false, transparent: false, mark: 0 });
    expect(x.lookup(4, 17, ip('10.0.0.8'), 5353, ip('192.168.50.1'), 53, 2)?.wildcard).toBe(true);
    // a device-bound socket only on its device, and preferred there
    expect(x.lookup(4, 17, ip('10.1.0.2'), 1, ip('10.1.0.1'), 54, 3)?.mark).toBe(0);
    expect(x.lookup(4, 17, ip('10.0.0.2'), 1, ip('10.0.0.1'), 54, 2)?.mark).toBe(3);
    // IPv6: the dual-stack listener and the v6only one; not the IPv4 ones
    expect(x.lookup(6, 6, [0x20010db8, 0, 0, 2], 1, [0x20010db8, 0, 0, 1], 83, 2)).toBeDefined();
    expect(x.lookup(6, 6, [0x20010db8, 0, 0, 2], 1, [0x20010db8, 0, 0, 1], 87, 2)).toBeDefined();
    expect(x.lookup(6, 6, [0x20010db8, 0, 0, 2], 1, [0x20010db8, 0, 0, 1], 81, 2)).toBeUndefined();
  });
});

describe('the socket match over a snapshot', () => {
  it('counts and restores marks as the lookups say, both engines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-socket-'));
    try {
      cpSync(join(__dirname, '..', 'path', 'fixtures', 'node'), dir, { recursive: true });
      writeFileSync(join(dir, 'ss.txt'), SS);
      writeFileSync(join(dir, 'iptables-save.txt'), ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
        '-A PREROUTING -m socket', '-A PREROUTING -m socket --nowildcard', '-A PREROUTING -m socket --transparent --restore-skmark', 'COMMIT', ''].join('\n'));
      const specs = ['tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack', 'tcp 10.0.0.2:1 > 10.0.0.1:80 syn', 'tcp 10.0.0.2:1 > 10.0.0.1:81 syn', 'tcp 10.0.0.2:1 > 10.0.0.1:82 syn', 'udp 10.0.0.7:5353 > 10.0.0.1:53', 'udp 10.0.0.8:1 > 10.0.0.1:99'];
      const counts: string[] = [];
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(dir), { engine });
        const marks: number[] = [];
        for (const s of specs) {
          const pkt = specPacket(parseSpec(`${s} iif eth0`));
          model.receive(pkt, 'eth0');
          marks.push(pkt.meta[M_MARK]!);
        }
        const c = model.rulesetWithCounters()!.tables.get('mangle')!.chains.get('PREROUTING')!.rules.map((r) => Number(r.counters!.packets));
        counts.push(JSON.stringify([c, marks]));
      }
      expect(new Set(counts).size).toBe(1);
      expect(JSON.parse(counts[0]!)).toEqual([[4, 5, 3], [5, 0, 0, 7, 9, 0]]);
      // the node's stack: a segment of a connection and a datagram from a connected socket's peer
      // reach their sockets (no reset, no port unreachable); a port bound but not listening resets
      const model = buildNodeModel(readSnapshot(dir), {});
      const answers = (spec: string) => model.receive(specPacket(parseSpec(`${spec} iif eth0`)), 'eth0').answers.map((a) => a.kind);
      expect(answers('tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack')).toEqual([]);
      expect(answers('tcp 10.0.0.2:9009 > 10.0.0.1:45000 ack')).toEqual(['tcp-reset']);
      expect(answers('udp 10.0.0.7:5353 > 10.0.0.1:53')).toEqual([]);
      expect(answers('tcp 10.0.0.2:1 > 10.0.0.1:86 syn')).toEqual(['tcp-reset']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TPROXY over a snapshot', () => {
  it('gives a transparent socket the packet and its mark, drops without one; the socket match and the stack see the socket, both engines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfvm-tproxy-'));
    try {
      cpSync(join(__dirname, '..', 'path', 'fixtures', 'node'), dir, { recursive: true });
      writeFileSync(join(dir, 'ss.txt'), SS);
      writeFileSync(join(dir, 'iptables-save.txt'), ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
        // --on-ip 0.0.0.0: eth0's first primary address, 10.0.0.1
        '-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 82 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
        '-A PREROUTING -p tcp -m tcp --dport 81 -j TPROXY --on-port 81 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
        '-A PREROUTING -p tcp -m tcp --sport 9000 -j TPROXY --on-port 1 --on-ip 0.0.0.0 --tproxy-mark 0x10/0x10',
        '-A INPUT -m socket', 'COMMIT', ''].join('\n'));
      const specs = ['tcp 10.0.0.2:1 > 10.0.0.1:80 syn', 'tcp 10.0.0.2:1 > 10.0.0.1:81 syn', 'tcp 10.0.0.2:9000 > 10.0.0.1:45000 ack'];
      const runs: string[] = [];
      for (const engine of ['vm', 'reference'] as const) {
        const model = buildNodeModel(readSnapshot(dir), { engine });
        const out = specs.map((s) => {
          const pkt = specPacket(parseSpec(`${s} iif eth0`));
          const r = model.receive(pkt, 'eth0');
          return [r.fate.kind, r.fate.kind === 'delivered' ? r.fate.socket : '', pkt.meta[M_MARK], r.answers.length];
        });
        const c = model.rulesetWithCounters()!.tables.get('mangle')!;
        runs.push(JSON.stringify([out, c.chains.get('PREROUTING')!.rules.map((r) => Number(r.counters!.packets)), c.chains.get('INPUT')!.rules.map((r) => Number(r.counters!.packets))]));
      }
      expect(new Set(runs).size).toBe(1);
      expect(JSON.parse(runs[0]!)).toEqual([
        [['delivered', 'tcp 10.0.0.1:82', 1, 0], ['dropped', '', 0, 0], ['delivered', 'tcp 10.0.0.1:45000', 0x10, 0]],
        [1, 1, 1],
        [2],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
