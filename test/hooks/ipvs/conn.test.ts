/**
 * The IPVS connection table on virtual time (Linux 6.18 ip_vs_conn.c,
 * ip_vs_proto_tcp.c set_tcp_state / tcp_states[] / tcp_timeouts[],
 * ip_vs_core.c ip_vs_sched_persist and the conn_reuse_mode /
 * expire_nodest_conn checks of ip_vs_in_hook), on a kube-proxy IPVS-mode
 * ClusterIP service with three endpoints.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runs } from '../../helpers/runs.js';
import {
  buildServices, parseIpvsadmSave, IpvsConnTable, IP_VS_DIR_INPUT, IP_VS_DIR_OUTPUT, TH_ACK, TH_FIN, TH_SYN,
  IP_VS_TCP_S_SYN_RECV, IP_VS_TCP_S_ESTABLISHED, IP_VS_TCP_S_CLOSE_WAIT, IP_VS_TCP_S_TIME_WAIT, IP_VS_TCP_S_CLOSE, IP_VS_TCP_S_FIN_WAIT,
  IP_VS_CONN_F_NFCT, TH_RST, type IpvsConn, type SchedPacket,
} from '../../../hooks/ipvs/index.js';
import { formatIPv4, parseIPv4 } from '../../../core/addr.js';

const HZ = 250;
const KUBE = `-A -t 10.96.45.7:80 -s rr
-a -t 10.96.45.7:80 -r 10.244.1.5:8080 -m -w 1
-a -t 10.96.45.7:80 -r 10.244.1.6:8080 -m -w 1
-a -t 10.96.45.7:80 -r 10.244.2.9:8080 -m -w 1
-A -t 10.96.45.8:80 -s rr -p 300 -M 255.255.255.0
-a -t 10.96.45.8:80 -r 10.244.1.5:8080 -m -w 1
-a -t 10.96.45.8:80 -r 10.244.1.6:8080 -m -w 1
-A -u 10.96.0.10:53 -s rr
-a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1
`;

const syn = (saddr: string, sport: number, daddr = '10.96.45.7', dport = 80, protocol = 6): SchedPacket => ({
  family: 4, saddr: parseIPv4(saddr)!, sport, daddr: parseIPv4(daddr)!, dport, protocol,
});

describe('IPVS connections', () => {
  it('masquerade to the three endpoints in rr order, the TCP states and counters of set_tcp_state', () => {
    const [svc] = buildServices(parseIpvsadmSave(KUBE, 't'));
    const t = new IpvsConnTable({}, HZ);
    // Kernel list: 10.244.2.9, 10.244.1.6, 10.244.1.5 (list_add_rcu at the head).
    const conns = [40001, 40002, 40003, 40004].map((p) => t.schedule(svc!, syn('192.168.1.10', p), 0)!);
    expect(conns.map((c) => `${formatIPv4(c.daddr)}:${c.dport}`)).toEqual(['10.244.2.9:8080', '10.244.1.6:8080', '10.244.1.5:8080', '10.244.2.9:8080']);
    const cp = conns[0]!;
    const d = cp.dest!;
    // ip_vs_bind_dest: __ip_vs_update_dest set IP_VS_CONN_F_INACTIVE in the dest's conn_flags.
    expect([d.activeconns, d.inactconns]).toEqual([0, 2]);
    expect(cp.timeout).toBe(3 * HZ); // ip_vs_conn_new
    // The SYN itself (INPUT syn): sNO -> sSR, timeout tcp_timeouts[SYN_RECV] = 60 s.
    t.stateTransition(cp, IP_VS_DIR_INPUT, TH_SYN, 0);
    expect([cp.state, cp.timeout]).toEqual([IP_VS_TCP_S_SYN_RECV, 60 * HZ]);
    // SYN-ACK from the real server (OUTPUT, syn row): sSR -> sSR.
    t.stateTransition(cp, IP_VS_DIR_OUTPUT, TH_SYN | TH_ACK, 1);
    expect(cp.state).toBe(IP_VS_TCP_S_SYN_RECV);
    // The client's ACK (INPUT ack): sSR -> sES: active now; 15 min.
    t.stateTransition(cp, IP_VS_DIR_INPUT, TH_ACK, 2);
    expect([cp.state, cp.timeout, d.activeconns, d.inactconns]).toEqual([IP_VS_TCP_S_ESTABLISHED, 900 * HZ, 1, 1]);
    // The reply direction finds the connection by (daddr, dport, caddr, cport).
    expect(t.outGet(6, d.addr, 8080, parseIPv4('192.168.1.10')!, 40001, 3)).toBe(cp);
    // The client's FIN (INPUT fin): sES -> sCW, inactive again, 60 s.
    t.stateTransition(cp, IP_VS_DIR_INPUT, TH_FIN | TH_ACK, 4);
    expect([cp.state, cp.timeout, d.activeconns, d.inactconns]).toEqual([IP_VS_TCP_S_CLOSE_WAIT, 60 * HZ, 0, 2]);
    // The timer: alive one jiffy before, gone at expires.
    const vip = parseIPv4('10.96.45.7')!;
    const c = parseIPv4('192.168.1.10')!;
    expect(t.inGet(6, c, 40001, vip, 80, 4 + 60 * HZ - 1)).toBe(cp);
    expect(t.inGet(6, c, 40001, vip, 80, 4 + 60 * HZ)).toBeUndefined();
    expect(d.inactconns).toBe(1); // the fourth connection, not yet expired (3 s from 0)
    t.expireDue(3 * HZ);
    expect([...t.entries()].length).toBe(0);
    expect(svc!.conns).toBe(4);
  });

  it('persistence: one template per client /24, persistconns, the template outlives its connections', () => {
    const svc = buildServices(parseIpvsadmSave(KUBE, 't'))[1]!;
    const t = new IpvsConnTable({}, HZ);
    const a = t.schedule(svc, syn('192.168.1.10', 1000, '10.96.45.8'), 0)!;
    const b = t.schedule(svc, syn('192.168.1.99', 2000, '10.96.45.8'), 0)!; // same /24: the template's dest, not rr's next
    const c = t.schedule(svc, syn('192.168.2.10', 3000, '10.96.45.8'), 0)!; // another /24: rr moves on
    expect(b.dest).toBe(a.dest);
    expect(c.dest).not.toBe(a.dest);
    expect(a.dest!.persistconns).toBe(1);
    expect(a.control).toBe(b.control);
    expect(a.control!.nControl).toBe(2);
    // The connections expire after 3 s; the template (300 s) is then free to expire at 300 s after its last refresh.
    t.expireDue(3 * HZ);
    expect([...t.entries()].filter((e) => !e.template).length).toBe(0);
    expect(a.control!.nControl).toBe(0);
    t.expireDue(300 * HZ - 1);
    expect(a.dest!.persistconns).toBe(1);
    t.expireDue(300 * HZ);
    expect(a.dest!.persistconns).toBe(0);
    expect([...t.entries()].length).toBe(0);
  });

  it('conn_reuse_mode: a SYN meeting TIME_WAIT or CLOSE is scheduled anew; expire_nodest_conn: a quiesced dest', () => {
    const svc = buildServices(parseIpvsadmSave(KUBE, 't'))[0]!;
    for (const state of [IP_VS_TCP_S_TIME_WAIT, IP_VS_TCP_S_CLOSE]) {
      const t = new IpvsConnTable({}, HZ);
      const cp = t.schedule(svc, syn('192.168.1.10', 5000), 0)!;
      cp.state = state;
      expect(t.reuseCheck(cp, 1, false)).toBeNull(); // conn_reuse_mode 1, no conntrack: expire, reschedule
      expect([...t.entries()].length).toBe(0);
    }
    const t0 = new IpvsConnTable({ conn_reuse_mode: 0 }, HZ);
    const cp0 = t0.schedule(svc, syn('192.168.1.10', 5000), 0)!;
    cp0.state = IP_VS_TCP_S_TIME_WAIT;
    expect(t0.reuseCheck(cp0, 1, false)).toBe(cp0);
    // Not in TIME_WAIT or CLOSE: kept.
    const tf = new IpvsConnTable({}, HZ);
    const cpf = tf.schedule(svc, syn('192.168.1.10', 5000), 0)!;
    cpf.state = IP_VS_TCP_S_FIN_WAIT;
    expect(tf.reuseCheck(cpf, 1, false)).toBe(cpf);
    // net.ipv4.vs.conntrack=1 and the SYN's conntrack confirmed: it keeps the old NAT, NF_DROP.
    const tc = new IpvsConnTable({ conntrack: 1 }, HZ);
    const cpc = tc.schedule(svc, syn('192.168.1.10', 5000), 0)!;
    cpc.state = IP_VS_TCP_S_TIME_WAIT;
    expect(tc.reuseCheck(cpc, 1, true)).toBe('drop');
    expect(cpc.flags & IP_VS_CONN_F_NFCT).toBe(IP_VS_CONN_F_NFCT);
    // The SYN reopened the conntrack (a new, unconfirmed one: ip_vs_conn_uses_old_conntrack false):
    // rescheduled, and the old connection lets go of conntrack (IP_VS_CONN_F_NFCT cleared).
    const tu = new IpvsConnTable({ conntrack: 1 }, HZ);
    const cpu = tu.schedule(svc, syn('192.168.1.10', 5000), 0)!;
    cpu.state = IP_VS_TCP_S_TIME_WAIT;
    expect(tu.reuseCheck(cpu, 1, false)).toBeNull();
    expect(cpu.flags & IP_VS_CONN_F_NFCT).toBe(0);
    const tn = new IpvsConnTable({ expire_nodest_conn: 1 }, HZ);
    const cpn = tn.schedule(svc, syn('192.168.1.10', 6000), 0)!;
    cpn.state = IP_VS_TCP_S_ESTABLISHED;
    expect(tn.reuseCheck(cpn, 1, false)).toBe(cpn);
    cpn.dest!.weight = 0;
    expect(tn.reuseCheck(cpn, 1, false)).toBeNull();
  });

  it('a persistence template is refreshed only by the connections it takes; one still in control waits 60 s at a time (expire_later)', () => {
    const svc = buildServices(parseIpvsadmSave(KUBE, 't'))[1]!;
    const t = new IpvsConnTable({}, HZ);
    // The node runs the timers due at each packet's time.
    const at = (sec: number) => {
      t.expireDue(sec * HZ);
      return sec * HZ;
    };
    const a = t.schedule(svc, syn('192.168.1.10', 1000, '10.96.45.8'), at(0))!;
    const tpl = a.control!;
    // The connection's packets every 60 s until 360 s keep it ESTABLISHED; they do not refresh the template.
    for (let sec = 0; sec <= 360; sec += 60) t.stateTransition(a, IP_VS_DIR_INPUT, TH_ACK, at(sec));
    expect(tpl.expires).toBe(420 * HZ); // 300 s from its creation, then 60 s at a time (at 300 and 360 s) while the connection lives
    // The client closes at 400 s: TIME_WAIT, 120 s.
    t.stateTransition(a, IP_VS_DIR_INPUT, TH_FIN | TH_ACK, at(400));
    t.stateTransition(a, IP_VS_DIR_OUTPUT, TH_FIN | TH_ACK, at(400));
    expect(a.state).toBe(IP_VS_TCP_S_TIME_WAIT);
    at(530); // the connection ran out at 520 s; the template waits for its own timer (540 s)
    expect([...t.entries()]).toEqual([tpl]);
    at(541);
    expect(t.size).toBe(0);
    // At 600 s the same client is scheduled afresh: rr moves on from the dest the template had.
    const b = t.schedule(svc, syn('192.168.1.10', 1001, '10.96.45.8'), at(600))!;
    expect(b.dest).not.toBe(a.dest);
  });

  it('the timers run without a lookup: a closed connection leaves its dest\'s counters when it runs out, before the next schedule (lc)', () => {
    const svc = buildServices(parseIpvsadmSave(KUBE.replace('-A -t 10.96.45.7:80 -s rr', '-A -t 10.96.45.7:80 -s lc'), 't'))[0]!;
    const t = new IpvsConnTable({}, HZ);
    const a = t.schedule(svc, syn('192.168.1.10', 1000), 0)!; // the list head, 10.244.2.9
    t.stateTransition(a, IP_VS_DIR_INPUT, TH_SYN, 0);
    t.stateTransition(a, IP_VS_DIR_OUTPUT, TH_SYN | TH_ACK, 0);
    t.stateTransition(a, IP_VS_DIR_INPUT, TH_FIN | TH_ACK, HZ);
    t.stateTransition(a, IP_VS_DIR_OUTPUT, TH_FIN | TH_ACK, HZ);
    expect(a.state).toBe(IP_VS_TCP_S_TIME_WAIT); // inactive, gone at 121 s
    const b = t.schedule(svc, syn('192.168.1.11', 1000), HZ)!; // 10.244.2.9 has one inactive: the next, 10.244.1.6
    expect(formatIPv4(b.daddr)).toBe('10.244.1.6');
    t.stateTransition(b, IP_VS_DIR_INPUT, TH_SYN, HZ); // SYN_RECV: active, for 60 s
    t.expireDue(200 * HZ); // both have run out
    expect([a.dest!.inactconns, b.dest!.activeconns, b.dest!.inactconns]).toEqual([0, 0, 0]);
    // All idle again: the list head.
    expect(formatIPv4(t.schedule(svc, syn('192.168.1.12', 1000), 200 * HZ)!.daddr)).toBe('10.244.2.9');
  });

  it('the timers: after expireDue(now) the table holds exactly the connections whose timer runs out after now, whatever moved their deadlines', () => {
    const cfg = parseIpvsadmSave(KUBE, 't');
    const flags = [TH_SYN, TH_SYN | TH_ACK, TH_ACK, TH_FIN | TH_ACK, TH_RST];
    fc.assert(fc.property(
      fc.array(fc.record({ dt: fc.integer({ min: 0, max: 400 * HZ }), pick: fc.nat(), flag: fc.nat(), out: fc.boolean(), open: fc.boolean() }), { maxLength: 60 }),
      (steps) => {
        const [tcp, , udp] = buildServices(cfg);
        const t = new IpvsConnTable({}, HZ);
        const mine: IpvsConn[] = [];
        let now = 0;
        let port = 1000;
        for (const st of steps) {
          now += st.dt;
          t.expireDue(now);
          const live = mine.filter((c) => c.slot >= 0);
          expect(live.every((c) => ((c.expires - now) | 0) > 0)).toBe(true);
          expect(t.size).toBe(live.length);
          const n = live.length;
          if (st.open || n === 0) {
            const isUdp = (st.pick & 1) === 1;
            const cp = t.schedule(isUdp ? udp! : tcp!, syn('192.168.1.10', port++, isUdp ? '10.96.0.10' : '10.96.45.7', isUdp ? 53 : 80, isUdp ? 17 : 6), now)!;
            mine.push(cp);
          } else {
            const cp = live[st.pick % n]!;
            t.stateTransition(cp, st.out ? IP_VS_DIR_OUTPUT : IP_VS_DIR_INPUT, flags[st.flag % flags.length]!, now);
          }
        }
        // the counters the schedulers read are those of the connections left
        const dests = new Set(mine.map((c) => c.dest!));
        for (const d of dests) {
          const left = mine.filter((c) => c.slot >= 0 && c.dest === d);
          expect(d.activeconns + d.inactconns).toBe(left.length);
        }
      },
    ), { numRuns: runs(300) });
  });

  it('a persistent fwmark service sends each connection to the port it came for; a connection lookup never finds a template', () => {
    const svc = buildServices(parseIpvsadmSave('-A -f 7 -s rr -p 60\n-a -f 7 -r 10.244.1.5:8080 -m -w 1\n', 't'))[0]!;
    const t = new IpvsConnTable({}, HZ);
    // ip_vs_sched_persist: dport is the packet's unless it is the service's own port (0 for a fwmark service)
    const cp = t.schedule(svc, syn('192.168.1.10', 1000, '10.96.45.9', 443), 0)!;
    expect(cp.dport).toBe(443);
    const tpl = cp.control!;
    expect([tpl.cport, tpl.vport, tpl.protocol]).toEqual([0, 0, 0]);
    // A /32-netmask template of a port service has the client's address; a packet from port 0 is not its connection.
    const p32 = buildServices(parseIpvsadmSave('-A -t 10.96.45.8:80 -s rr -p 60 -M 255.255.255.255\n-a -t 10.96.45.8:80 -r 10.244.1.5:8080 -m -w 1\n', 't'))[0]!;
    const t2 = new IpvsConnTable({}, HZ);
    const c2 = t2.schedule(p32, syn('192.168.1.10', 1000, '10.96.45.8'), 0)!;
    const vip = parseIPv4('10.96.45.8')!;
    expect(t2.inGet(6, parseIPv4('192.168.1.10')!, 0, vip, 80, 1)).toBeUndefined();
    expect(t2.inGet(6, parseIPv4('192.168.1.10')!, 0, vip, 80, 1, true)).toBe(c2.control);
  });

  it('UDP: inactive, 300 s from the last packet', () => {
    const svc = buildServices(parseIpvsadmSave(KUBE, 't'))[2]!;
    const t = new IpvsConnTable({}, HZ);
    const cp = t.schedule(svc, syn('10.244.1.5', 33333, '10.96.0.10', 53, 17), 0)!;
    t.stateTransition(cp, IP_VS_DIR_INPUT, 0, 0);
    expect([cp.dest!.activeconns, cp.dest!.inactconns, cp.timeout]).toEqual([0, 1, 300 * HZ]);
    expect(IpvsConnTable.format(cp, 0, HZ)).toBe('UDP 05:00  UDP         10.244.1.5:33333   10.96.0.10:53      10.244.0.3:53');
  });
});

describe('the connection table as a hash (ip_vs_conn_hashkey: protocol, client address and port)', () => {
  it('finds each of 20,000 connections from both sides, as the table grows and as they expire', () => {
    const [svc, , udp] = buildServices(parseIpvsadmSave(KUBE, 't'));
    const t = new IpvsConnTable({}, HZ);
    const cli = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const conns = Array.from({ length: 20_000 }, (_, i) => t.schedule(i & 1 ? udp! : svc!, syn(cli(i >> 3), 1024 + (i & 7), i & 1 ? '10.96.0.10' : '10.96.45.7', i & 1 ? 53 : 80, i & 1 ? 17 : 6), 0)!);
    expect(t.size).toBe(20_000);
    const vip = (i: number) => parseIPv4(i & 1 ? '10.96.0.10' : '10.96.45.7')!;
    for (let i = 0; i < conns.length; i += 97) {
      const cp = conns[i]!;
      expect(t.inGet(i & 1 ? 17 : 6, parseIPv4(cli(i >> 3))!, 1024 + (i & 7), vip(i), i & 1 ? 53 : 80, 1)).toBe(cp);
      expect(t.outGet(i & 1 ? 17 : 6, cp.daddr, cp.dport, parseIPv4(cli(i >> 3))!, 1024 + (i & 7), 1)).toBe(cp);
      // Another protocol, port or virtual address is another connection.
      expect(t.inGet(i & 1 ? 6 : 17, parseIPv4(cli(i >> 3))!, 1024 + (i & 7), vip(i), i & 1 ? 53 : 80, 1)).toBeUndefined();
      expect(t.inGet(i & 1 ? 17 : 6, parseIPv4(cli(i >> 3))!, 1024 + (i & 7), vip(i + 1), i & 1 ? 53 : 80, 1)).toBeUndefined();
    }
    // Half of them run out (the new-connection timeout of 3 s): the others are still found, the freed slots reused.
    for (let i = 0; i < conns.length; i += 2) t.expire(conns[i]!, 0);
    expect(t.size).toBe(10_000);
    expect(t.inGet(6, parseIPv4(cli(0))!, 1024, vip(0), 80, 1)).toBeUndefined();
    expect(t.inGet(17, parseIPv4(cli(0))!, 1025, vip(1), 53, 1)).toBe(conns[1]);
    const again = t.schedule(svc!, syn(cli(0), 1024), 1)!;
    expect(t.inGet(6, parseIPv4(cli(0))!, 1024, vip(0), 80, 2)).toBe(again);
    expect(t.entries().at(-1)).toBe(again);
    // The timers: every connection left runs out 3 s after it was made.
    t.expireDue(3 * HZ + 1);
    expect(t.size).toBe(0);
  });
});

describe('ipvsadm -L -n --stats', () => {
  it('prints the services and real servers with their counters, sorted as ipvsadm sorts', async () => {
    const { formatIpvsStats, largeNum } = await import('../../../hooks/ipvs/index.js');
    const services = buildServices(parseIpvsadmSave(KUBE, 't'));
    const t = new IpvsConnTable({}, HZ);
    for (const p of [1, 2, 3, 4]) t.schedule(services[0]!, syn('192.168.1.10', p), 0);
    expect(formatIpvsStats(services)).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
      '  -> RemoteAddress:Port\n' +
      'TCP  10.96.45.7:80                       4        0        0        0        0\n' +
      '  -> 10.244.1.5:8080                     1        0        0        0        0\n' +
      '  -> 10.244.1.6:8080                     1        0        0        0        0\n' +
      '  -> 10.244.2.9:8080                     2        0        0        0        0\n' +
      'TCP  10.96.45.8:80                       0        0        0        0        0\n' +
      '  -> 10.244.1.5:8080                     0        0        0        0        0\n' +
      '  -> 10.244.1.6:8080                     0        0        0        0        0\n' +
      'UDP  10.96.0.10:53                       0        0        0        0        0\n' +
      '  -> 10.244.0.3:53                       0        0        0        0        0\n');
    expect([largeNum(99999999), largeNum(123456789), largeNum(5e9)]).toEqual([' 99999999', '  123456K', '    5000M']);
  });
});
