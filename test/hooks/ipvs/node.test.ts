/**
 * IPVS in the node's packet path (Linux 6.18 ip_vs_core.c ip_vs_in_hook /
 * ip_vs_out_hook, ip_vs_xmit.c): the hooks at their priorities (filter
 * INPUT before IPVS on LOCAL_IN), scheduling on the first packet, the
 * masquerade DNAT sent through OUTPUT and POSTROUTING with checksums the
 * receiver accepts, the un-NAT of the replies in FORWARD, direct routing
 * and IPIP tunnelling, ip_vs_leave's ICMP port unreachable, persistence,
 * the net.ipv4.vs.conntrack sysctl, and the counters of `ipvsadm -L -n
 * --stats` / the table of `ipvsadm -L -n -c`, ICMP errors about
 * connections (ip_vs_in_icmp / ip_vs_out_icmp). This machine has no IPVS
 * module: the sequences are the kernel source's.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildNode } from '../../../hooks/snapshot/read.js';
import { buildNodeModel, type NodeModel } from '../../../hooks/node.js';
import { parseSpec, inetChecksum, pseudoHeaderSum } from '../../../hooks/input/spec.js';
import { specInput } from '../../../cli/model.js';
import { formatIpvsStats } from '../../../hooks/ipvs/index.js';
import type { PathStep } from '../../../hooks/path/fate.js';
import { conntrackList } from '../../../hooks/conntrack/print.js';
import { NFPROTO_IPV4, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT } from '../../../core/netfilter.js';
import { Packet } from '../../../vm/packet.js';
import { loadFrame, LINKTYPE_RAW, type Frame } from '../../../hooks/input/capture.js';

const FIXTURE = join(import.meta.dirname, '../../path/fixtures/node');
const FILTER = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -d 192.168.50.1/32 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
`;
const RR = `-A -t 192.168.50.1:80 -s rr
-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 1
-a -t 192.168.50.1:80 -r 10.1.0.6:8080 -m -w 1
`;

function model(ipvsadm: string, over: Record<string, string> = {}): NodeModel {
  const files = new Map(readdirSync(FIXTURE).map((f) => [f, readFileSync(join(FIXTURE, f), 'utf8')]));
  files.set('iptables-save.txt', FILTER);
  files.set('ipvsadm-save.txt', ipvsadm);
  for (const [k, v] of Object.entries(over)) files.set(k, v);
  const m = buildNodeModel(buildNode('', files), {});
  m.recordEmitted = true;
  return m;
}

function go(m: NodeModel, spec: string, nowNs?: number) {
  m.setTrace(true);
  const s = parseSpec(spec);
  const { pkt, iif } = specInput(m, s);
  return m.receive(pkt, iif, nowNs === undefined ? {} : { now: nowNs });
}

const notes = (r: { steps: readonly PathStep[] }) => r.steps.map((s) => (s.kind === 'trace' ? `TRACE ${s.table}:${s.chain}` : s.text));

/** The IPv4 header and TCP/UDP checksums of an emitted packet verify. */
function checksumsOk(ip: Uint8Array): boolean {
  const ihl = (ip[0]! & 15) * 4;
  if (inetChecksum(ip, 0, ihl) !== 0) return false;
  const proto = ip[9]!;
  const l4 = ip.subarray(ihl);
  return inetChecksum(l4, 0, l4.length, pseudoHeaderSum(ip.subarray(12, 16), ip.subarray(16, 20), proto, l4.length)) === 0;
}

describe('IPVS in the node', () => {
  it('registers ip_vs_ops4 at the kernel priorities: filter INPUT runs before ip_vs_in_hook on LOCAL_IN', () => {
    const m = model(RR);
    const names = (hook: number) => m.registry.entries(NFPROTO_IPV4, hook).map((e) => `${e.name}@${e.priority}`);
    expect(names(NF_INET_LOCAL_IN).filter((n) => /ip_vs|filter/.test(n))).toEqual(['iptable_filter@0', 'ip_vs_out_hook@98', 'ip_vs_in_hook@99']);
    expect(names(NF_INET_LOCAL_OUT).filter((n) => n.startsWith('ip_vs'))).toEqual(['ip_vs_out_hook@-99', 'ip_vs_in_hook@-98']);
    expect(names(NF_INET_FORWARD).filter((n) => n.startsWith('ip_vs'))).toEqual(['ip_vs_forward_icmp@99', 'ip_vs_out_hook@100']);
  });

  it('masquerade: schedules the SYN, DNATs it out eth1 through OUTPUT, un-NATs the reply in FORWARD', () => {
    const m = model(RR);
    const r = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    const n = notes(r);
    const input = n.indexOf('TRACE filter:INPUT');
    const sched = n.findIndex((t) => t.startsWith('ipvs: TCP 10.0.0.2:40000 > 192.168.50.1:80 matches service TCP 192.168.50.1:80 (rr): scheduled to rs 10.1.0.6:8080'));
    expect(input).toBeGreaterThanOrEqual(0);
    expect(sched).toBeGreaterThan(input);
    expect(n.indexOf('TRACE filter:OUTPUT')).toBeGreaterThan(sched);
    expect(r.fate).toMatchObject({ kind: 'forwarded', dev: 'eth1', dst: '10.1.0.6' });
    expect(r.fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
    const out = r.emitted![0]!.packet;
    expect([...out.subarray(16, 20)]).toEqual([10, 1, 0, 6]);
    expect((out[22]! << 8) | out[23]!).toBe(8080);
    expect(checksumsOk(out)).toBe(true);
    // The second client goes to the other real server (rr from the list head: the last -a first).
    expect(go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 syn iif eth0').fate.nat).toEqual(['IPVS DNAT to 10.1.0.5:8080']);
    const back = go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack iif eth1');
    expect(back.fate).toMatchObject({ kind: 'forwarded', dev: 'eth0', dst: '10.0.0.2' });
    expect(back.fate.nat).toEqual(['IPVS un-NAT: source 10.1.0.6:8080 to 192.168.50.1:80']);
    const rep = back.emitted![0]!.packet;
    expect([...rep.subarray(12, 16)]).toEqual([192, 168, 50, 1]);
    expect((rep[20]! << 8) | rep[21]!).toBe(80);
    expect(checksumsOk(rep)).toBe(true);
    // The client's ACK finds the connection (no scheduling) in SYN_RECV (the SYN-ACK of OUTPUT keeps it there) and makes it ESTABLISHED.
    const ack = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack iif eth0');
    expect(notes(ack)).toContain('ipvs: TCP 10.0.0.2:40000 > 192.168.50.1:80: connection 10.0.0.2:40000 > 192.168.50.1:80 > 10.1.0.6:8080 (state SYN_RECV)');
    expect(ack.fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
    expect(m.ipvs!.connList()).toBe(
      'IPVS connection entries\npro expire state       source             virtual            destination\n'
      // ipvsadm.c print_conn: "%-3s %-6s %-11s %-18s %-18s %s"
      + 'TCP 15:00  ESTABLISHED 10.0.0.2:40000     192.168.50.1:80    10.1.0.6:8080\n'
      + 'TCP 01:00  SYN_RECV    10.0.0.3:40000     192.168.50.1:80    10.1.0.5:8080\n');
    expect(formatIpvsStats(m.ipvs!.services)).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n'
      + 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n'
      + 'TCP  192.168.50.1:80                     2        3        1      120       40\n'
      + '  -> 10.1.0.5:8080                       1        1        0       40        0\n'
      + '  -> 10.1.0.6:8080                       1        2        1       80       40\n');
  });

  it('a local client: ip_vs_in_hook on OUTPUT schedules it and sends it through OUTPUT again', () => {
    const m = model(RR);
    m.setTrace(true);
    const s = parseSpec('tcp 10.1.0.1:40000 > 192.168.50.1:80 syn from local');
    const { pkt } = specInput(m, s);
    const r = m.send(pkt, s.oif);
    expect(notes(r).some((t) => t.startsWith('ipvs: TCP 10.1.0.1:40000 > 192.168.50.1:80 matches service'))).toBe(true);
    expect(r.fate).toMatchObject({ kind: 'sent', dev: 'eth1', dst: '10.1.0.6' });
    expect(r.fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
  });

  it('a TCP packet that is not a SYN and finds no connection is not scheduled: it goes on to the local stack', () => {
    const m = model(RR);
    const r = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack iif eth0');
    expect(notes(r).some((t) => t.startsWith('ipvs:'))).toBe(false);
    expect(r.fate.kind).toBe('delivered');
    expect(m.ipvs!.services[0]!.conns).toBe(0);
  });

  it('weight 0 real servers are skipped; with none left ip_vs_leave answers ICMP port unreachable and drops', () => {
    const m = model('-A -t 192.168.50.1:80 -s wrr\n-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 0\n-a -t 192.168.50.1:80 -r 10.1.0.6:8080 -m -w 2\n-A -u 192.168.50.1:53 -s rr\n-a -u 192.168.50.1:53 -r 10.1.0.5:53 -m -w 0\n');
    for (let p = 40000; p < 40004; p++) expect(go(m, `tcp 10.0.0.2:${p} > 192.168.50.1:80 syn iif eth0`).fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
    const r = go(m, 'udp 10.0.0.2:5000 > 192.168.50.1:53 iif eth0');
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ipvs' });
    expect(r.answers.map((a) => a.kind)).toEqual(['icmp-port-unreachable']);
    expect(r.answers[0]!.fate).toMatchObject({ kind: 'sent', dev: 'eth0' });
  });

  it('persistence with a netmask: clients of one /24 stick to the real server their template chose', () => {
    const m = model('-A -t 192.168.50.1:80 -s rr -p 300 -M 255.255.255.0\n-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 1\n-a -t 192.168.50.1:80 -r 10.1.0.6:8080 -m -w 1\n');
    const to = (src: string, port: number) => go(m, `tcp ${src}:${port} > 192.168.50.1:80 syn iif eth0`).fate.nat![0];
    expect(to('10.0.0.2', 1000)).toBe('IPVS DNAT to 10.1.0.6:8080');
    expect(to('10.0.0.3', 1001)).toBe('IPVS DNAT to 10.1.0.6:8080');
    expect(to('10.0.0.2', 1002)).toBe('IPVS DNAT to 10.1.0.6:8080');
    // The template of a TCP service carries IPPROTO_TCP (ip_vs_sched_persist: IPPROTO_IP only for fwmark services).
    expect(m.ipvs!.connList()).toContain('TCP 05:00  NONE        10.0.0.0:0         192.168.50.1:80    10.1.0.6:8080');
  });

  it('fwmark services schedule by the packet mark (mangle PREROUTING MARK)', () => {
    const m = model('-A -f 1 -s rr\n-a -f 1 -r 10.1.0.7:0 -m -w 1\n', {
      'iptables-save.txt': FILTER.replace('COMMIT', 'COMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -d 192.168.50.1/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT'),
    });
    const r = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:443 syn iif eth0');
    expect(notes(r).some((t) => t.includes('matches service FWM 1 (rr): scheduled to rs 10.1.0.7:443'))).toBe(true);
    expect(r.fate.nat).toEqual(['IPVS DNAT to 10.1.0.7:443']);
  });

  it('direct routing keeps the packet and sends it to the real server as next hop; tunnelling wraps it in IPIP', () => {
    const dr = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.1.0.5 -g -w 1\n');
    const r = go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    expect(r.fate).toMatchObject({ kind: 'forwarded', dev: 'eth1', via: '10.1.0.5', dst: '192.168.50.1' });
    expect([...r.emitted![0]!.packet.subarray(16, 20)]).toEqual([192, 168, 50, 1]);
    const tun = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.9.0.5 -i -w 1\n');
    const t = go(tun, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    expect(t.fate).toMatchObject({ kind: 'forwarded', dev: 'eth1', via: '10.1.0.2', dst: '10.9.0.5' });
    const ip = t.emitted![0]!.packet;
    expect(ip[9]).toBe(4);
    expect([...ip.subarray(12, 20)]).toEqual([10, 1, 0, 1, 10, 9, 0, 5]);
    expect(inetChecksum(ip, 0, 20)).toBe(0);
    expect([...ip.subarray(20 + 16, 20 + 20)]).toEqual([192, 168, 50, 1]);
  });

  it('net.ipv4.vs.conntrack=1: the request keeps its conntrack, whose reply tuple comes from the real server', () => {
    const m = model(RR, { 'sysctl.txt': readFileSync(join(FIXTURE, 'sysctl.txt'), 'utf8') + 'net.ipv4.vs.conntrack = 1\n' });
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    const ct = conntrackList(m.conntrackTable!, 0).join('\n');
    expect(ct).toMatch(/src=10\.0\.0\.2 dst=192\.168\.50\.1 sport=40000 dport=80 .*src=10\.1\.0\.6 dst=10\.0\.0\.2 sport=8080 dport=40000/);
    const back = go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack iif eth1');
    expect(notes(back).some((t) => t.startsWith('ipv4_conntrack_in: ESTABLISHED'))).toBe(true);
    expect(back.fate.nat).toEqual(['IPVS un-NAT: source 10.1.0.6:8080 to 192.168.50.1:80']);
  });

  it('a checkpoint taken before any packet restores the services as built (trace --all-branches runs each branch from it)', () => {
    const m = model(RR);
    const restore = m.checkpoint()!;
    expect(go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0').fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
    // Past a packet, IPVS cannot save its state: no checkpoint.
    expect(m.checkpoint()).toBeUndefined();
    restore();
    expect(m.ipvs!.connList().split('\n').filter((l) => l.startsWith('TCP'))).toEqual([]);
    expect(go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 syn iif eth0').fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
  });

  it('conn_reuse_mode: a SYN on a TIME_WAIT connection is scheduled anew; the timers run on virtual time', () => {
    const m = model(RR);
    const s = 1e9;
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0', 0);
    go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack iif eth1', s);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 fin,ack iif eth0', 2 * s);
    go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 fin,ack iif eth1', 3 * s);
    expect(m.ipvs!.connList()).toContain('TCP 02:00  TIME_WAIT');
    const again = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0', 4 * s);
    expect(notes(again).some((t) => t.includes('expired for the new connection (conn_reuse_mode)'))).toBe(true);
    expect(again.fate.nat).toEqual(['IPVS DNAT to 10.1.0.5:8080']);
    // 15 minutes later the ESTABLISHED-less SYN_RECV entry has run out.
    m.setNow(4 * s + 61 * s);
    expect(m.ipvs!.connList().split('\n').filter((l) => l.startsWith('TCP'))).toEqual([]);
  });

  it('conn_reuse_mode with net.ipv4.vs.conntrack=1: a SYN that reopened the closed conntrack (a new, unconfirmed one) is scheduled anew, not dropped', () => {
    const m = model(RR, { 'sysctl.txt': readFileSync(join(FIXTURE, 'sysctl.txt'), 'utf8') + 'net.ipv4.vs.conntrack = 1\n' });
    const s = 1e9;
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn seq 1000 iif eth0', 0);
    go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack seq 5000 ackseq 1001 iif eth1', s);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack seq 1001 ackseq 5001 iif eth0', 2 * s);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 fin,ack seq 1001 ackseq 5001 iif eth0', 3 * s);
    go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 fin,ack seq 5001 ackseq 1002 iif eth1', 4 * s);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack seq 1002 ackseq 5002 iif eth0', 5 * s);
    expect(m.ipvs!.connList()).toContain('TIME_WAIT   10.0.0.2:40000');
    const again = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn seq 90000 iif eth0', 9 * s);
    const n = notes(again);
    expect(n.some((t) => t.includes('expired for the new connection (conn_reuse_mode)'))).toBe(true);
    expect(again.fate.nat).toEqual(['IPVS DNAT to 10.1.0.5:8080']);
    // The new connection's conntrack expects its replies from the new real server.
    expect(conntrackList(m.conntrackTable!, 9).join('\n')).toMatch(/SYN_SENT .*src=10\.0\.0\.2 dst=192\.168\.50\.1 sport=40000 dport=80 .*src=10\.1\.0\.5 dst=10\.0\.0\.2 sport=8080/);
  });

  it('net.ipv4.vs.conntrack=1: when the IPVS connection runs out, its conntrack goes with it (ip_vs_conn_drop_conntrack), at that time and not at the next lookup', () => {
    const m = model(RR, { 'sysctl.txt': readFileSync(join(FIXTURE, 'sysctl.txt'), 'utf8') + 'net.ipv4.vs.conntrack = 1\n' });
    const s = 1e9;
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn seq 1000 iif eth0', 0);
    go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack seq 5000 ackseq 1001 iif eth1', s);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack seq 1001 ackseq 5001 iif eth0', 2 * s);
    const est = (now: number) => conntrackList(m.conntrackTable!, now).filter((l) => l.includes('src=10.0.0.2 ')).length;
    expect(m.ipvs!.connList()).toContain('TCP 15:00  ESTABLISHED');
    expect(est(2)).toBe(1);
    // 15 minutes after the last packet the IPVS connection runs out; another client's packet at 16 minutes runs the timers.
    go(m, 'tcp 10.0.0.9:40001 > 192.168.50.1:80 syn iif eth0', (2 + 16 * 60) * s);
    expect(m.ipvs!.connList()).not.toContain('10.0.0.2:40000');
    expect(est(2 + 16 * 60)).toBe(0);
  });

  it('a local client with a loopback source is not sent to a real server off the node (crosses_local_route_boundary)', () => {
    const m = model('-A -t 127.0.0.1:30338 -s rr\n-a -t 127.0.0.1:30338 -r 10.1.0.5:8080 -m -w 1\n');
    m.setTrace(true);
    const s = parseSpec('tcp 127.0.0.1:40000 > 127.0.0.1:30338 syn from local');
    const { pkt } = specInput(m, s);
    const r = m.send(pkt, s.oif);
    expect(r.fate).toMatchObject({ kind: 'dropped', reason: 'ipvs' });
    expect(r.fate.kind === 'dropped' && r.fate.detail).toContain('crosses_local_route_boundary');
  });

  it('a tunnel to a real server on the node itself: the packet goes on to the node (ip_vs_tunnel_xmit, local)', () => {
    const m = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 192.168.50.1 -i -w 1\n');
    const r = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    expect(notes(r)).toContain('ipvs: tunnel to 192.168.50.1: the real server is this node, the packet goes on');
    expect(r.fate.kind).not.toBe('dropped');
  });

  it('an FTP service takes TCP to unprivileged ports of its address (ip_vs_service_find, ftpsvc_counter); persistence sends them to the control connection\'s server', () => {
    const m = model('-A -t 192.168.50.1:21 -s rr -p 60\n-a -t 192.168.50.1:21 -r 10.1.0.5 -m -w 1\n-a -t 192.168.50.1:21 -r 10.1.0.6 -m -w 1\n');
    expect(go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:21 syn iif eth0').fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:21']);
    expect(go(m, 'tcp 10.0.0.2:40001 > 192.168.50.1:30000 syn iif eth0').fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:30000']);
    // a privileged port other than 20 is not the FTP service's: the packet goes on to the node
    expect(go(m, 'tcp 10.0.0.2:40002 > 192.168.50.1:22 syn iif eth0').fate.nat ?? []).toEqual([]);
  });

  it('a template that saw its connection answered is ASSURED in `ipvsadm -L -n -c` (ip_vs_control_assure_ct)', () => {
    const m = model('-A -t 192.168.50.1:80 -s rr -p 300\n-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 1\n');
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0', 0);
    expect(m.ipvs!.connList()).toMatch(/TCP 05:00  NONE/);
    go(m, 'tcp 10.1.0.5:8080 > 10.0.0.2:40000 syn,ack iif eth1', 1e9);
    go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack iif eth0', 2e9);
    expect(m.ipvs!.connList()).toMatch(/TCP 04:58  ASSURED/);
  });

  it('net.ipv4.vs.conntrack=1: a reply whose conntrack had gone makes the new one expect the client at the virtual address (ip_vs_update_conntrack, outin 0)', () => {
    const m = model('-A -u 192.168.50.1:53 -s rr\n-a -u 192.168.50.1:53 -r 10.1.0.5:53 -m -w 1\n', { 'sysctl.txt': readFileSync(join(FIXTURE, 'sysctl.txt'), 'utf8') + 'net.ipv4.vs.conntrack = 1\n' });
    const s = 1e9;
    go(m, 'udp 10.0.0.2:5353 > 192.168.50.1:53 iif eth0', 0);
    // conntrack's UDP entry (30 s unreplied) runs out; the IPVS connection (300 s) lives on
    const rep = go(m, 'udp 10.1.0.5:53 > 10.0.0.2:5353 iif eth1', 60 * s);
    expect(rep.fate.nat).toEqual(['IPVS un-NAT: source 10.1.0.5:53 to 192.168.50.1:53']);
    expect(conntrackList(m.conntrackTable!, 60).join('\n')).toMatch(/src=10\.1\.0\.5 dst=10\.0\.0\.2 sport=53 dport=5353 .*src=10\.0\.0\.2 dst=192\.168\.50\.1 sport=5353 dport=53/);
    // the client's next datagram is that conntrack's reply, and goes to the real server
    const again = go(m, 'udp 10.0.0.2:5353 > 192.168.50.1:53 iif eth0', 61 * s);
    expect(again.fate).toMatchObject({ kind: 'forwarded', dst: '10.1.0.5' });
  });

  it('the real server\'s route must take the packet: DF and too long is answered fragmentation needed (ensure_mtu_is_adequate, a tunnel 20 bytes short)', () => {
    const tun = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.9.0.5 -i -w 1\n');
    // 1500 bytes fit eth1's MTU, not the 1480 an IPIP header leaves
    const big = go(tun, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn len 1460 df iif eth0');
    expect(big.fate).toMatchObject({ kind: 'dropped', reason: 'ipvs' });
    expect(notes(big)).toContain('ipvs: 1500 bytes exceed the MTU 1480 of the way to the real server by eth1 (__ip_vs_get_out_rt: ensure_mtu_is_adequate, ICMP fragmentation needed sent)');
    const err = big.emitted!.map((e) => e.packet).find((p) => p[9] === 1)!;
    expect([err[20], err[21], (err[26]! << 8) | err[27]!]).toEqual([3, 4, 1480]);
    // without DF it is tunnelled (and fragmented on the way out)
    expect(go(tun, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 syn len 1460 iif eth0').fate.kind).toBe('forwarded');
    // masquerade: the route's full MTU
    const m = model(RR);
    expect(go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn len 1460 df iif eth0').fate.kind).toBe('forwarded');
  });

  it('a client port 20 (active FTP data) is never scheduled: the packet goes on to the node (ip_vs_schedule, FTPDATA)', () => {
    const m = model(RR);
    const r = go(m, 'tcp 10.0.0.2:20 > 192.168.50.1:80 syn iif eth0');
    expect(notes(r)).toContain('ipvs: TCP 10.0.0.2:20 > 192.168.50.1:80: not scheduled (ip_vs_schedule: client port 20, FTPDATA)');
    expect(r.fate.nat ?? []).toEqual([]);
    expect(m.ipvs!.connList().split('\n').filter((l) => l.startsWith('TCP'))).toEqual([]);
  });

  it('a connection in SYN_RECV counts as active (tcp_state_active): lc sends the next client to the server without a half-open one', () => {
    const m = model('-A -t 192.168.50.1:80 -s lc\n-a -t 192.168.50.1:80 -r 10.1.0.5:8080 -m -w 1\n-a -t 192.168.50.1:80 -r 10.1.0.6:8080 -m -w 1\n');
    const s = 1e9;
    // The first SYN goes to the list head (10.1.0.6) and leaves its connection half-open (SYN_RECV).
    expect(go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0', 0).fate.nat).toEqual(['IPVS DNAT to 10.1.0.6:8080']);
    // A second connection, to 10.1.0.5, is established and then closed by its client (CLOSE_WAIT, inactive).
    const m2 = go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 syn iif eth0', s);
    expect(m2.fate.nat).toEqual(['IPVS DNAT to 10.1.0.5:8080']);
    go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 ack iif eth0', s);
    go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 fin,ack iif eth0', 2 * s);
    expect(m.ipvs!.connList()).toContain('CLOSE_WAIT  10.0.0.3:40000');
    // ActiveConn / InActConn as `ipvsadm -L -n` shows them
    const conns = (last: number) => m.ipvs!.services[0]!.dests.find((d) => d.addr[3] === last)!;
    expect([conns(6).activeconns, conns(6).inactconns, conns(5).activeconns, conns(5).inactconns]).toEqual([1, 0, 0, 1]);
    // lc: 10.1.0.6 has 1 active (overhead 256), 10.1.0.5 1 inactive (1): 10.1.0.5. Were SYN_RECV inactive, both
    // would be at 1 and the list head, 10.1.0.6, would win.
    expect(go(m, 'tcp 10.0.0.4:40000 > 192.168.50.1:80 syn iif eth0', 3 * s).fate.nat).toEqual(['IPVS DNAT to 10.1.0.5:8080']);
  });

  it('direct routing: connections start without output (IP_VS_CONN_F_NOOUTPUT), so a client FIN moves ESTABLISHED to FIN_WAIT by the INPUT-ONLY row', () => {
    const dr = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.1.0.5 -g -w 1\n');
    const s = 1e9;
    go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0', 0);
    go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 ack iif eth0', s);
    expect(dr.ipvs!.connList()).toContain('TCP 15:00  ESTABLISHED 10.0.0.2:40000');
    go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 fin,ack iif eth0', 2 * s);
    expect(dr.ipvs!.connList()).toContain('TCP 02:00  FIN_WAIT    10.0.0.2:40000');
  });

  it('the real server is one hop further: the TTL goes down by one, and a packet with TTL 1 is answered ICMP time exceeded and dropped (decrement_ttl)', () => {
    const m = model(RR);
    const r = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn ttl 64 iif eth0');
    const out = r.emitted![0]!.packet;
    expect(out[8]).toBe(63);
    expect(checksumsOk(out)).toBe(true);
    const dr = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.1.0.5 -g -w 1\n');
    const d = go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn ttl 9 iif eth0').emitted![0]!.packet;
    expect(d[8]).toBe(8);
    expect(inetChecksum(d, 0, 20)).toBe(0);
    const t1 = go(m, 'tcp 10.0.0.3:40000 > 192.168.50.1:80 syn ttl 1 iif eth0');
    expect(t1.fate).toMatchObject({ kind: 'dropped', reason: 'ipvs' });
    expect(notes(t1).some((t) => t.includes('TTL 1 exceeded on the way to real server 10.1.0.5 (__ip_vs_get_out_rt: decrement_ttl, ICMP time exceeded sent)'))).toBe(true);
    const err = t1.emitted!.map((e) => e.packet).find((p) => p[9] === 1)!;
    expect([err[20], err[21]]).toEqual([11, 0]);
    expect([...err.subarray(16, 20)]).toEqual([10, 0, 0, 3]);
  });
});

/** An IPv4 packet from raw parts, its header checksum made. */
function ipv4(src: readonly number[], dst: readonly number[], proto: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  b[0] = 0x45;
  b[2] = b.length >> 8;
  b[3] = b.length & 255;
  b[8] = 64;
  b[9] = proto;
  b.set(src, 12);
  b.set(dst, 16);
  const c = inetChecksum(b, 0, 20);
  b[10] = c >> 8;
  b[11] = c & 255;
  b.set(payload, 20);
  return b;
}

/** An ICMP error (icmp_send's layout): type, code, checksum, 4 unused bytes, then the offending packet's IP header and 8 bytes. */
function icmpError(src: readonly number[], dst: readonly number[], type: number, code: number, offending: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + 28);
  icmp[0] = type;
  icmp[1] = code;
  icmp.set(offending.subarray(0, 28), 8);
  const c = inetChecksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 255;
  return ipv4(src, dst, 1, icmp);
}

function receiveRaw(m: NodeModel, data: Uint8Array, iif: string) {
  m.setTrace(true);
  const pkt = new Packet();
  loadFrame(pkt, { data, origLen: data.length, tsSec: 0, tsNsec: 0, linktype: LINKTYPE_RAW, ifId: 0, ifName: '', section: 0, offset: 0, flags: 0, comment: '' } as Frame);
  return m.receive(pkt, iif, {});
}

describe('ICMP errors about IPVS connections (ip_vs_core.c ip_vs_in_icmp / ip_vs_out_icmp, ip_vs_xmit.c ip_vs_icmp_xmit, ip_vs_nat_icmp)', () => {
  /** A masqueraded connection 10.0.0.2:40000 > 192.168.50.1:80 > 10.1.0.6:8080: the request as sent to the real server, the reply as sent to the client. */
  function masqConn() {
    const m = model(RR);
    const req = go(m, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0').emitted![0]!.packet.slice();
    const rep = go(m, 'tcp 10.1.0.6:8080 > 10.0.0.2:40000 syn,ack iif eth1').emitted![0]!.packet.slice();
    return { m, req, rep };
  }
  const svcStats = (m: NodeModel) => formatIpvsStats(m.ipvs!.services).split('\n')[3]!.trim().split(/\s+/).slice(2).map(Number);

  it('ip_vs_in_icmp: an error from the client side about a reply is related by the reversed embedded header and masqueraded to the real server', () => {
    const { m, rep } = masqConn();
    const before = svcStats(m);
    // A router by the client: host unreachable about the reply 192.168.50.1:80 > 10.0.0.2:40000.
    const r = receiveRaw(m, icmpError([10, 0, 0, 254], [192, 168, 50, 1], 3, 1, rep), 'eth0');
    expect(notes(r).some((t) => t.startsWith('ipvs: ICMP error about TCP 192.168.50.1:80 > 10.0.0.2:40000: connection 10.0.0.2:40000 > 192.168.50.1:80 > 10.1.0.6:8080 (ip_vs_in_icmp)'))).toBe(true);
    expect(r.fate).toMatchObject({ kind: 'forwarded', dev: 'eth1', dst: '10.1.0.6' });
    expect(r.fate.nat).toEqual(['IPVS DNAT of an ICMP error to 10.1.0.6:8080']);
    const out = r.emitted![0]!.packet;
    // ip_vs_nat_icmp(inout 0): the outer destination and the embedded source and source port become the real server's.
    expect([...out.subarray(12, 20)]).toEqual([10, 0, 0, 254, 10, 1, 0, 6]);
    expect([...out.subarray(28 + 12, 28 + 20)]).toEqual([10, 1, 0, 6, 10, 0, 0, 2]);
    expect((out[48]! << 8) | out[49]!).toBe(8080);
    expect(inetChecksum(out, 0, 20)).toBe(0);
    expect(inetChecksum(out, 28, 48)).toBe(0);
    expect(inetChecksum(out, 20, out.length)).toBe(0);
    // ip_vs_in_stats(): one more incoming packet on the service, no new connection.
    const after = svcStats(m);
    expect(after[0]).toBe(before[0]);
    expect(after[1]).toBe(before[1]! + 1);
  });

  it('ip_vs_out_icmp: an error from the real server side about a request is un-NATed to the virtual address on FORWARD', () => {
    const { m, req } = masqConn();
    const before = svcStats(m);
    // The real server's stack: port unreachable about the request 10.0.0.2:40000 > 10.1.0.6:8080.
    const r = receiveRaw(m, icmpError([10, 1, 0, 6], [10, 0, 0, 2], 3, 3, req), 'eth1');
    expect(notes(r).some((t) => t.startsWith('ipvs: ICMP error about TCP 10.0.0.2:40000 > 10.1.0.6:8080: connection 10.0.0.2:40000 > 192.168.50.1:80 > 10.1.0.6:8080 (ip_vs_out_icmp)'))).toBe(true);
    expect(r.fate).toMatchObject({ kind: 'forwarded', dev: 'eth0', dst: '10.0.0.2' });
    const out = r.emitted![0]!.packet;
    // ip_vs_nat_icmp(inout 1): the outer source and the embedded destination and its port become the virtual service's.
    expect([...out.subarray(12, 20)]).toEqual([192, 168, 50, 1, 10, 0, 0, 2]);
    expect([...out.subarray(28 + 12, 28 + 20)]).toEqual([10, 0, 0, 2, 192, 168, 50, 1]);
    expect((out[50]! << 8) | out[51]!).toBe(80);
    expect(inetChecksum(out, 0, 20)).toBe(0);
    expect(inetChecksum(out, 28, 48)).toBe(0);
    expect(inetChecksum(out, 20, out.length)).toBe(0);
    expect(svcStats(m)[2]).toBe(before[2]! + 1);
  });

  it('a bad ICMP checksum drops the error (ip_vs_checksum_complete); an error about no connection and an echo request pass untouched', () => {
    const { m, rep } = masqConn();
    const bad = icmpError([10, 0, 0, 254], [192, 168, 50, 1], 3, 1, rep);
    bad[22]! ^= 0xff;
    expect(receiveRaw(m, bad, 'eth0').fate).toMatchObject({ kind: 'dropped', reason: 'ipvs' });
    // Another client port: no connection, the error goes on to the local stack.
    const other = rep.slice();
    other[22] = 0x11;
    const r = receiveRaw(m, icmpError([10, 0, 0, 254], [192, 168, 50, 1], 3, 1, other), 'eth0');
    expect(r.fate.kind).toBe('delivered');
    expect(notes(r).some((t) => t.startsWith('ipvs:'))).toBe(false);
    // Not an error (ICMP_ECHO): *related = 0, and no TCP/UDP/SCTP header to schedule: it goes on.
    expect(go(m, 'icmp 10.0.0.2 > 192.168.50.1 echo-request iif eth0').fate.kind).toBe('delivered');
  });

  it('direct routing: an error from the client side goes to the real server unchanged, as the requests do (cp->packet_xmit)', () => {
    const dr = model('-A -t 192.168.50.1:80 -s rr\n-a -t 192.168.50.1:80 -r 10.1.0.5 -g -w 1\n');
    go(dr, 'tcp 10.0.0.2:40000 > 192.168.50.1:80 syn iif eth0');
    // The real server answers the client itself (not through the node); the client side's error about that reply reaches the VIP.
    const reply = ipv4([192, 168, 50, 1], [10, 0, 0, 2], 6, Uint8Array.of(0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xfa, 0xf0, 0, 0, 0, 0));
    const err = icmpError([10, 0, 0, 254], [192, 168, 50, 1], 11, 0, reply);
    const r = receiveRaw(dr, err, 'eth0');
    expect(r.fate).toMatchObject({ kind: 'forwarded', dev: 'eth1', via: '10.1.0.5', dst: '192.168.50.1' });
    const out = r.emitted![0]!.packet;
    expect([...out.subarray(12, 20)]).toEqual([...err.subarray(12, 20)]);
    expect([...out.subarray(20)]).toEqual([...err.subarray(20)]);
  });
});
