/**
 * The stateful node on realistic flows: conntrack states at the tables,
 * DNAT/SNAT/MASQUERADE/REDIRECT bindings made once and applied to every
 * packet both ways, marks and connection marks, fwmark routing, NOTRACK and
 * zones, nf_conntrack_max, the conntrack sysctls of the snapshot, and a
 * packet spec's `ct` clause. The kernel comparison of the same behaviour is
 * test/kernel/stateful-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Conversation, Tcp, icmpError, ping, statefulModel, statefulNodeFiles, udp } from '../helpers/flows.js';
import { buildNode } from '../../hooks/snapshot/read.js';
import { buildNodeModel } from '../../hooks/node.js';
import { conntrackList } from '../../hooks/conntrack/index.js';
import { fateText } from '../../hooks/path/fate.js';
import { parseSpec } from '../../hooks/input/spec.js';
import { specInput } from '../../cli/model.js';
import { ipPacket } from '../helpers/ctpkt.js';

const T = (tables: string) => `${tables.trim()}\n`;
const FILTER_COUNT = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate NEW
-A FORWARD -m conntrack --ctstate ESTABLISHED
-A FORWARD -m conntrack --ctstate RELATED
COMMIT`;
const counts = (m: ReturnType<typeof statefulModel>, chain = 'FORWARD') => m.counters('filter')!.get(chain)!.rules.map((r) => r.packets);
const list = (c: Conversation) => conntrackList(c.model.conntrackTable!, c.t * 1e9);

describe('conntrack states through the tables', () => {
  it('a TCP handshake, data and close: NEW, then ESTABLISHED both ways; the table as conntrack -L shows it', () => {
    const m = statefulModel(T(FILTER_COUNT));
    const c = new Conversation(m);
    new Tcp(c, 'c', '10.0.0.2', 40001, '10.1.0.2', 80).handshake().data().sack().fin().sack().sfin().ack();
    expect(counts(m)).toEqual([0, 1, 8, 0]);
    expect(list(c)).toEqual(['tcp      6 120 TIME_WAIT src=10.0.0.2 dst=10.1.0.2 sport=40001 dport=80 src=10.1.0.2 dst=10.0.0.2 sport=80 dport=40001 [ASSURED] mark=0 use=1']);
  });

  it('an out-of-window segment is INVALID; an ICMP error quoting a forwarded packet is RELATED', () => {
    const m = statefulModel(T(FILTER_COUNT));
    const c = new Conversation(m);
    new Tcp(c, 'c', '10.0.0.2', 40002, '10.1.0.2', 80).handshake().wild();
    icmpError(c, udp(c, 'c', '10.0.0.3', 5000, '10.1.0.9', 161, 0));
    expect(counts(m)).toEqual([1, 2, 2, 1]);
  });
});

describe('NAT bindings', () => {
  const NAT = T(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.1.0.200/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.0.3:8080
-A PREROUTING -d 192.168.50.1/32 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 10.0.0.3:443
-A POSTROUTING -s 10.0.0.128/25 -o eth1 -j SNAT --to-source 10.1.0.100-10.1.0.120
-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/24 -j MASQUERADE
COMMIT
${FILTER_COUNT}`);

  it('DNAT: the chain runs for the first packet only; every packet both ways is rewritten', () => {
    const m = statefulModel(NAT);
    const c = new Conversation(m);
    const t = new Tcp(c, 'c', '10.0.0.2', 40010, '10.1.0.200', 80).syn();
    expect(c.frames.length).toBe(1);
    t.synack().ack().data().sack();
    expect(m.counters('nat')!.get('PREROUTING')!.rules.map((r) => r.packets)).toEqual([1, 0]);
    expect(list(c).map((l) => l.replace(/^tcp +6 \d+ /, ''))).toEqual(['ESTABLISHED src=10.0.0.2 dst=10.1.0.200 sport=40010 dport=80 src=10.1.0.3 dst=10.0.0.2 sport=8080 dport=40010 [ASSURED] mark=0 use=1']);
    // the reply was rewritten back to the address the client talked to
    const s = c.send('s', ipPacket('10.1.0.3', '10.0.0.2', { proto: 'tcp', sport: 8080, dport: 40010, flags: 0x10, seq: t.sseq, ack: t.cseq }));
    expect(s.out?.side).toBe('c');
    expect([...s.out!.ip.subarray(12, 16)].join('.')).toBe('10.1.0.200');
  });

  it('SNAT to a range keeps the source port when it is free; the null binding is made when no rule matched', () => {
    const m = statefulModel(NAT);
    const c = new Conversation(m);
    new Tcp(c, 'c', '10.0.0.130', 40011, '10.1.0.2', 80).handshake();
    new Tcp(c, 'c', '10.0.0.5', 40012, '10.1.0.2', 80).handshake();
    const l = list(c);
    expect(l[0]).toMatch(/^tcp {6}6 43\d{4} ESTABLISHED src=10\.0\.0\.130 dst=10\.1\.0\.2 sport=40011 dport=80 src=10\.1\.0\.2 dst=10\.1\.0\.1\d\d sport=80 dport=40011 \[ASSURED\]/);
    expect(l[1]).toMatch(/src=10\.0\.0\.5 dst=10\.1\.0\.2 sport=40012 dport=80 src=10\.1\.0\.2 dst=10\.0\.0\.5 sport=80 dport=40012 \[ASSURED\]/);
  });

  it('hairpin: a client DNATed to another client on the same side is masqueraded to the node', () => {
    const m = statefulModel(NAT);
    const c = new Conversation(m);
    new Tcp(c, 'c', '10.0.0.2', 40013, '192.168.50.1', 8443).handshake().data().sack();
    expect(list(c)[0]).toMatch(/^tcp {6}6 43\d{4} /);
    expect(list(c)[0].replace(/^tcp +6 \d+ /, '')).toBe('ESTABLISHED src=10.0.0.2 dst=192.168.50.1 sport=40013 dport=8443 src=10.0.0.3 dst=10.0.0.1 sport=443 dport=40013 [ASSURED] mark=0 use=1');
  });

  it('a source port clash is resolved by another port in the range', () => {
    const m = statefulModel(T(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -j SNAT --to-source 10.1.0.100
COMMIT`));
    const c = new Conversation(m);
    udp(c, 'c', '10.0.0.2', 5000, '10.1.0.2', 53);
    udp(c, 'c', '10.0.0.3', 5000, '10.1.0.2', 53);
    const ports = list(c).map((l) => /dst=10\.1\.0\.100 sport=53 dport=(\d+)/.exec(l)?.[1]);
    expect(ports[0]).toBe('5000');
    expect(Number(ports[1])).toBeGreaterThanOrEqual(1024);
    expect(ports[1]).not.toBe('5000');
  });
});

describe('marks, connection marks and fwmark routing', () => {
  it('CONNMARK --save-mark/--restore-mark with masks carry a mark to the reply; the mark picks the routing table', () => {
    const rules = T(`*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf
-A PREROUTING -s 10.0.0.2/32 -m conntrack --ctstate NEW -j MARK --set-xmark 0x1/0xff
-A PREROUTING -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -o eth0 -m connmark --mark 0x1
-A FORWARD -o eth1 -m connmark --mark 0x1
COMMIT`);
    const files = statefulNodeFiles(rules);
    files.set('ip-rule.json', JSON.stringify([
      { priority: 0, src: 'all', table: 'local' }, { priority: 100, src: 'all', fwmark: '0x1', table: '100' },
      { priority: 32766, src: 'all', table: 'main' }, { priority: 32767, src: 'all', table: 'default' },
    ]));
    const routes = JSON.parse(files.get('ip-route.json')!) as object[];
    routes.push({ dst: 'default', gateway: '10.0.0.3', dev: 'eth0', table: '100', flags: [] });
    files.set('ip-route.json', JSON.stringify(routes));
    const m = buildNodeModel(buildNode('', files));
    const c = new Conversation(m);
    // marked: routed by table 100 out of eth0; its reply (from the eth0 side) is restored to mark 1 too
    const s = udp(c, 'c', '10.0.0.2', 5000, '8.8.8.8', 53);
    expect(s.out?.side).toBe('c');
    udp(c, 'c', '10.0.0.4', 5001, '8.8.8.8', 53);
    expect(m.counters('filter')!.get('FORWARD')!.rules.map((r) => r.packets)).toEqual([2, 0]);
    expect(list(c).map((l) => / mark=(\d+)/.exec(l)![1])).toEqual(['1', '0']);
  });
});

describe('NOTRACK, zones and the table limit', () => {
  it('raw NOTRACK is UNTRACKED and leaves no entry; CT --zone keeps flows of the zone apart', () => {
    const m = statefulModel(T(`*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 9999 -j NOTRACK
-A PREROUTING -p udp -m udp --sport 9999 -j NOTRACK
-A PREROUTING -p udp -m udp --dport 7777 -j CT --zone 5
-A PREROUTING -p udp -m udp --sport 7777 -j CT --zone 5
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate UNTRACKED
-A FORWARD -m conntrack --ctstate ESTABLISHED
COMMIT`));
    const c = new Conversation(m);
    udp(c, 'c', '10.0.0.2', 5000, '10.1.0.2', 9999);
    udp(c, 'c', '10.0.0.2', 5001, '10.1.0.2', 7777);
    expect(counts(m)).toEqual([2, 1]);
    expect(list(c)).toEqual(['udp      17 30 src=10.0.0.2 dst=10.1.0.2 sport=5001 dport=7777 src=10.1.0.2 dst=10.0.0.2 sport=7777 dport=5001 mark=0 zone=5 use=1']);
  });

  it('nf_conntrack_max: the table full of assured connections drops a new one', () => {
    const m = statefulModel(T(FILTER_COUNT), 'vm', 'net.netfilter.nf_conntrack_max = 2\n');
    const c = new Conversation(m);
    new Tcp(c, 'c', '10.0.0.2', 40001, '10.1.0.2', 80).handshake();
    new Tcp(c, 'c', '10.0.0.2', 40002, '10.1.0.2', 80).handshake();
    const s = c.send('c', ipPacket('10.0.0.2', '10.1.0.2', { proto: 'tcp', sport: 40003, dport: 80 }));
    expect(s.fate).toMatchObject({ kind: 'dropped', reason: 'conntrack' });
    expect(fateText(s.fate)).toMatch(/nf_conntrack_max 2/);
  });

  it('a conntrack sysctl out of range is refused with its file and line', () => {
    expect(() => statefulModel(T(FILTER_COUNT), 'vm', 'net.netfilter.nf_conntrack_tcp_be_liberal = 7\n')).toThrow(/sysctl\.txt:4:1: net\.netfilter\.nf_conntrack_tcp_be_liberal: out of range/);
  });
});

describe('a packet spec\'s ct clause', () => {
  const m = statefulModel(T(FILTER_COUNT));
  m.setTrace(true);
  const trace = (spec: string) => {
    const p = parseSpec(spec);
    const { pkt, iif, ct } = specInput(m, p);
    return m.receive(pkt, iif, { ct });
  };
  it('ct established makes the connection (ESTABLISHED), ct reply its reply direction, ct invalid skips conntrack', () => {
    const before = counts(m);
    trace('tcp 10.0.0.2:41000 > 10.1.0.2:80 ct established iif eth0');
    trace('tcp 10.1.0.2:80 > 10.0.0.2:41000 ct established ct reply iif eth1');
    trace('udp 10.0.0.2:41001 > 10.1.0.2:53 ct invalid iif eth0');
    const after = counts(m);
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 0, 2, 0]);
  });
  it('ct related makes an expected connection; ct mark sets the conntrack\'s mark', () => {
    const before = counts(m);
    const r = trace('udp 10.0.0.2:41002 > 10.1.0.2:69 ct related ct mark 0x7 iif eth0');
    expect(r.steps.some((s) => s.kind === 'conntrack' && / RELATED, zone 0, mark 0x7/.test(s.text))).toBe(true);
    expect(counts(m).map((n, i) => n - before[i]!)).toEqual([0, 0, 0, 1]);
  });
});

describe('ICMP echo and errors through NAT', () => {
  it('an echo through MASQUERADE gets its id back; an error quoting a masqueraded packet is translated back', () => {
    const m = statefulModel(T(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -j MASQUERADE
COMMIT
${FILTER_COUNT}`));
    const c = new Conversation(m);
    const p = ping(c, 'c', '10.0.0.2', '10.1.0.2', 77);
    expect([...p.out!.ip.subarray(12, 16)].join('.')).toBe('10.1.0.1');
    const u = udp(c, 'c', '10.0.0.2', 6000, '10.1.0.9', 161, 0);
    icmpError(c, u);
    const last = c.send('s', ipPacket('10.1.0.9', '10.1.0.1', { proto: 'icmp', type: 3, code: 3, inner: u.out!.ip.slice(0, 28) }));
    expect(last.out?.side).toBe('c');
    expect([...last.out!.ip.subarray(16, 20)].join('.')).toBe('10.0.0.2');
    // the quoted packet is the client's original
    expect([...last.out!.ip.subarray(28 + 12, 28 + 16)].join('.')).toBe('10.0.0.2');
  });
});
