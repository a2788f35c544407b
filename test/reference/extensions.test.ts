/**
 * The reference's matches and targets, one kernel function each, on
 * hand-built packets and rulesets parsed from iptables-save text.
 */
import { describe, expect, it } from 'vitest';
import {
  M_CT_DIR, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_FLAGS, M_MARK, M_PKTTYPE, F_NFTRACE, PACKET_BROADCAST,
  PACKET_LOOPBACK,
} from '../../vm/layout.js';
import { NF_ACCEPT, NF_DROP, NF_QUEUE } from '../../core/netfilter.js';
import { addr4, engine, eth, icmp6L, icmpL, ipv4, ipv6, packet, tcp, udp } from './helpers.js';

/** Verdict NF_QUEUE marks "the rule matched" in these tests. */
const HIT = NF_QUEUE;
const one = (rule: string, family: 'ip' | 'ip6' = 'ip', table: 'filter' | 'mangle' = 'filter', chain = 'INPUT') =>
  engine(table, `:${chain} ACCEPT [0:0]\n-A ${chain} ${rule} -j QUEUE`, { family });

describe('tcp / udp / multiport / icmp', () => {
  it('tcp ports, ranges, inverted forms, flags and --syn', () => {
    const p = (dport: number, flags = 0x02) => packet([ipv4(), tcp({ sport: 1000, dport, flags })]);
    expect(one('-p tcp --dport 22').run('INPUT', p(22))).toBe(HIT);
    expect(one('-p tcp --dport 20:30').run('INPUT', p(31))).toBe(NF_ACCEPT);
    expect(one('-p tcp ! --dport 22').run('INPUT', p(23))).toBe(HIT);
    expect(one('-p tcp --sport 1000 ! --dport 22').run('INPUT', p(22))).toBe(NF_ACCEPT);
    expect(one('-p tcp --syn').run('INPUT', p(1, 0x02))).toBe(HIT);
    expect(one('-p tcp --syn').run('INPUT', p(1, 0x12))).toBe(NF_ACCEPT);
    expect(one('-p tcp ! --syn').run('INPUT', p(1, 0x10))).toBe(HIT);
    expect(one('-p tcp --tcp-flags ALL NONE').run('INPUT', p(1, 0))).toBe(HIT);
  });

  it('tcp --tcp-option scans the options; a bad data offset hotdrops', () => {
    const withOpts = packet([ipv4(), tcp({ doff: 7 }), { ethertype: -1, ipproto: -1, build: (i: Uint8Array) => Uint8Array.from([1, 2, 4, 5, 0xb4, 0, 0, 0, ...i]) }]);
    expect(one('-p tcp --tcp-option 2').run('INPUT', withOpts)).toBe(HIT);
    expect(one('-p tcp --tcp-option 3').run('INPUT', withOpts)).toBe(NF_ACCEPT);
    expect(one('-p tcp ! --tcp-option 3').run('INPUT', withOpts)).toBe(HIT);
    expect(one('-p tcp --tcp-option 2').run('INPUT', packet([ipv4(), tcp({ doff: 4 })]))).toBe(NF_DROP);
    // options claimed beyond the packet: hotdrop
    expect(one('-p tcp --tcp-option 2').run('INPUT', packet([ipv4(), tcp({ doff: 15 })]))).toBe(NF_DROP);
  });

  it('udp and multiport (first element decides; either direction with --ports)', () => {
    const p = packet([ipv4(), udp({ sport: 5353, dport: 53 })]);
    expect(one('-p udp --sport 5353 --dport 53').run('INPUT', p)).toBe(HIT);
    expect(one('-p udp -m multiport --dports 1,50:60').run('INPUT', p)).toBe(HIT);
    expect(one('-p udp -m multiport ! --dports 1,50:60').run('INPUT', p)).toBe(NF_ACCEPT);
    expect(one('-p udp -m multiport --sports 53').run('INPUT', p)).toBe(NF_ACCEPT);
    expect(one('-p udp -m multiport --ports 5353').run('INPUT', p)).toBe(HIT);
  });

  it('icmp type/code and any; icmp6 has no any', () => {
    const echo = packet([ipv4(), icmpL(8, 0)]);
    expect(one('-p icmp --icmp-type echo-request').run('INPUT', echo)).toBe(HIT);
    expect(one('-p icmp --icmp-type 3/1').run('INPUT', echo)).toBe(NF_ACCEPT);
    expect(one('-p icmp ! --icmp-type 3').run('INPUT', echo)).toBe(HIT);
    expect(one('-p icmp --icmp-type any').run('INPUT', echo)).toBe(HIT);
    const e6 = packet([ipv6(), icmp6L(128, 0)]);
    expect(one('-p ipv6-icmp --icmpv6-type echo-request', 'ip6').run('INPUT', e6)).toBe(HIT);
    expect(one('-p ipv6-icmp --icmpv6-type 1', 'ip6').run('INPUT', e6)).toBe(NF_ACCEPT);
    expect(one('-p ipv6-icmp --icmpv6-type 128', 'ip6').run('INPUT', packet([ipv6(), icmp6L(128, 0, 7)]))).toBe(NF_DROP);
  });
});

describe('header matches', () => {
  it('mark, iprange, length, ttl, hl', () => {
    expect(one('-m mark --mark 0x4000/0x4000').run('INPUT', packet([ipv4(), tcp()], { mark: 0x4001 }))).toBe(HIT);
    expect(one('-m mark ! --mark 0x1').run('INPUT', packet([ipv4(), tcp()], { mark: 1 }))).toBe(NF_ACCEPT);
    expect(one('-m iprange --src-range 10.0.0.0-10.0.0.1').run('INPUT', packet([ipv4({ src: '10.0.0.1' }), tcp()]))).toBe(HIT);
    expect(one('-m iprange ! --dst-range 10.0.0.3-10.0.0.9').run('INPUT', packet([ipv4({ dst: '10.0.0.2' }), tcp()]))).toBe(HIT);
    expect(one('-m iprange --src-range 2001:db8::-2001:db8::1', 'ip6').run('INPUT', packet([ipv6({ src: '2001:db8::2' }), tcp()]))).toBe(NF_ACCEPT);
    expect(one('-m length --length 40').run('INPUT', packet([ipv4(), tcp()]))).toBe(HIT);
    expect(one('-m length --length 60:100', 'ip6').run('INPUT', packet([ipv6(), tcp()]))).toBe(HIT);
    expect(one('-m ttl --ttl-lt 65').run('INPUT', packet([ipv4({ ttl: 64 }), tcp()]))).toBe(HIT);
    expect(one('-m ttl ! --ttl-eq 64').run('INPUT', packet([ipv4({ ttl: 64 }), tcp()]))).toBe(NF_ACCEPT);
    expect(one('-m hl --hl-eq 64', 'ip6').run('INPUT', packet([ipv6(), tcp()]))).toBe(HIT);
  });

  it('tos, dscp, ecn (IPv4 and IPv6 traffic class)', () => {
    const v4 = packet([ipv4(), tcp({ flags: 0x40 | 0x02 })]);
    v4.data[1] = 0xb8 | 0x01; // EF, ECT(1)
    expect(one('-m dscp --dscp 0x2e').run('INPUT', v4)).toBe(HIT);
    expect(one('-m tos --tos 0xb8/0xfc').run('INPUT', v4)).toBe(HIT);
    expect(one('-m ecn --ecn-ip-ect 1').run('INPUT', v4)).toBe(HIT);
    expect(one('-p tcp -m ecn --ecn-tcp-ece').run('INPUT', v4)).toBe(HIT);
    expect(one('-p tcp -m ecn ! --ecn-tcp-ece').run('INPUT', v4)).toBe(NF_ACCEPT);
    const v6 = packet([ipv6(), tcp()]);
    v6.data[0] = 0x6b; // traffic class 0xb8 across bytes 0-1
    v6.data[1] = 0x80;
    expect(one('-m dscp --dscp-class EF', 'ip6').run('INPUT', v6)).toBe(HIT);
  });

  it('pkttype (loopback remapped) and mac', () => {
    const b = packet([ipv4(), tcp()]);
    b.meta[M_PKTTYPE] = PACKET_BROADCAST;
    expect(one('-m pkttype --pkt-type broadcast').run('INPUT', b)).toBe(HIT);
    const lo = packet([ipv4({ dst: '224.0.0.1' }), udp()]);
    lo.meta[M_PKTTYPE] = PACKET_LOOPBACK;
    expect(one('-m pkttype --pkt-type multicast').run('INPUT', lo)).toBe(HIT);
    const m = packet([eth({ src: [2, 0, 0, 0, 0, 9] }), ipv4(), tcp()], { iif: [2, 'eth0'] });
    expect(one('-m mac --mac-source 02:00:00:00:00:09').run('INPUT', m)).toBe(HIT);
    expect(one('-m mac ! --mac-source 02:00:00:00:00:09').run('INPUT', m)).toBe(NF_ACCEPT);
    // no link header: no match even inverted
    expect(one('-m mac ! --mac-source 02:00:00:00:00:09').run('INPUT', packet([ipv4(), tcp()], { iif: [2, 'eth0'] }))).toBe(NF_ACCEPT);
  });

  it('comment always matches', () => {
    expect(one('-m comment --comment "x y"').run('INPUT', packet([ipv4(), tcp()]))).toBe(HIT);
  });
});

describe('conntrack metadata', () => {
  const ct = (state: number, dir: number, status = 0, mark = 0) => {
    const p = packet([ipv4(), tcp()]);
    p.meta[M_CT_STATE] = state;
    p.meta[M_CT_DIR] = dir;
    p.meta[M_CT_STATUS] = status;
    p.meta[M_CT_MARK] = mark;
    return p;
  };
  it('--ctstate / --state, INVALID and UNTRACKED without an entry, SNAT/DNAT from the status', () => {
    expect(one('-m conntrack --ctstate RELATED,ESTABLISHED').run('INPUT', ct(2, 1))).toBe(HIT);
    expect(one('-m state --state NEW').run('INPUT', ct(8, 0))).toBe(HIT);
    expect(one('-m conntrack --ctstate INVALID').run('INPUT', ct(1, -1))).toBe(HIT);
    expect(one('-m conntrack --ctstate UNTRACKED').run('INPUT', ct(64, -1))).toBe(HIT);
    expect(one('-m conntrack ! --ctstate NEW').run('INPUT', ct(64, -1))).toBe(HIT);
    expect(one('-m conntrack --ctstate DNAT').run('INPUT', ct(8, 0, 0x20))).toBe(HIT);
  });
  it('--ctdir and --ctstatus need an entry', () => {
    expect(one('-m conntrack --ctdir REPLY').run('INPUT', ct(2, 1))).toBe(HIT);
    expect(one('-m conntrack --ctdir ORIGINAL').run('INPUT', ct(2, 1))).toBe(NF_ACCEPT);
    expect(one('-m conntrack --ctstatus ASSURED').run('INPUT', ct(2, 0, 4))).toBe(HIT);
    expect(one('-m conntrack ! --ctstatus ASSURED').run('INPUT', ct(1, -1))).toBe(NF_ACCEPT);
  });
  it('connmark match and CONNMARK save/restore', () => {
    expect(one('-m connmark --mark 0x5/0xf').run('INPUT', ct(2, 0, 0, 0x15))).toBe(HIT);
    expect(one('-m connmark ! --mark 0x5').run('INPUT', ct(1, -1))).toBe(NF_ACCEPT);
    const e = engine('mangle', [
      ':PREROUTING ACCEPT [0:0]',
      '-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff',
      '-A PREROUTING -j MARK --or-mark 0x100',
      '-A PREROUTING -j CONNMARK --save-mark --nfmask 0xf00 --ctmask 0xf00',
    ].join('\n'));
    const p = ct(2, 0, 0, 0xab);
    p.meta[M_MARK] = 0x7000;
    expect(e.run('PREROUTING', p)).toBe(NF_ACCEPT);
    expect(p.meta[M_MARK]).toBe(0x71ab);
    expect(p.meta[M_CT_MARK]).toBe(0x1ab);
    const none = ct(1, -1);
    e.run('PREROUTING', none);
    expect(none.meta[M_CT_MARK]).toBe(0);
    expect(none.meta[M_MARK]).toBe(0x100);
  });
});

describe('targets', () => {
  it('MARK forms', () => {
    const e = engine('mangle', ':PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x1/0xff\n-A PREROUTING -j MARK --and-mark 0xffff00ff\n-A PREROUTING -j MARK --xor-mark 0x80000000');
    const p = packet([ipv4(), tcp()], { mark: 0x1234 });
    e.run('PREROUTING', p);
    expect(p.meta[M_MARK]! >>> 0).toBe(0x80000001);
  });

  it('LOG, NFLOG, TRACE continue and are recorded; TRACE sets nf_trace', () => {
    const e = engine('raw', ':PREROUTING ACCEPT [0:0]\n-A PREROUTING -j TRACE\n-A PREROUTING -j LOG --log-prefix "in: "\n-A PREROUTING -j NFLOG --nflog-group 5\n-A PREROUTING -j DROP');
    e.setTrace(true);
    const p = packet([ipv4(), tcp()]);
    expect(e.run('PREROUTING', p)).toBe(NF_DROP);
    expect(p.meta[M_FLAGS]! & F_NFTRACE).toBe(F_NFTRACE);
    expect(e.takeActions().map((a) => a.kind)).toEqual(['TRACE', 'LOG', 'NFLOG']);
  });

  it('REJECT drops and records the reply, IPv4 and IPv6', () => {
    const e = engine('filter', ':INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j REJECT --reject-with tcp-reset');
    e.setTrace(true);
    expect(e.run('INPUT', packet([ipv4(), tcp()]))).toBe(NF_DROP);
    expect(e.takeActions()).toEqual([{ kind: 'REJECT', chain: 'INPUT', rule: 1, with: 'tcp-reset' }]);
    const f = engine('filter', ':INPUT ACCEPT [0:0]\n-A INPUT -j REJECT', { family: 'ip6' });
    f.setTrace(true);
    expect(f.run('INPUT', packet([ipv6(), tcp()]))).toBe(NF_DROP);
    expect(f.takeActions()).toEqual([{ kind: 'REJECT', chain: 'INPUT', rule: 1, with: 'icmp6-port-unreachable' }]);
  });
});

describe('statistic', () => {
  it('nth: --every 3 --packet 0 matches packets 1, 4, 7; --packet 2 matches 3, 6', () => {
    for (const [pk, want] of [[0, [1, 4, 7]], [2, [3, 6]]] as const) {
      const e = one(`-m statistic --mode nth --every 3 --packet ${pk}`);
      const hits: number[] = [];
      for (let i = 1; i <= 7; i++) if (e.run('INPUT', packet([ipv4(), tcp()])) === HIT) hits.push(i);
      expect(hits).toEqual(want);
    }
  });

  it('random: reproducible for a seed, different across seeds, about p', () => {
    const run = (seed: number) => {
      const e = engine('filter', ':INPUT ACCEPT [0:0]\n-A INPUT -m statistic --mode random --probability 0.25 -j QUEUE', { seed });
      let s = '';
      for (let i = 0; i < 400; i++) s += e.run('INPUT', packet([ipv4(), tcp()])) === HIT ? '1' : '0';
      return s;
    };
    expect(run(7)).toBe(run(7));
    expect(run(7)).not.toBe(run(8));
    const ones = [...run(7)].filter((c) => c === '1').length;
    expect(ones).toBeGreaterThan(60);
    expect(ones).toBeLessThan(140);
    expect(one('-m statistic --mode random --probability 1').run('INPUT', packet([ipv4(), tcp()]))).toBe(HIT);
    expect(one('-m statistic --mode random ! --probability 1').run('INPUT', packet([ipv4(), tcp()]))).toBe(NF_ACCEPT);
  });
});

describe('addrtype and a kube-proxy NodePort path', () => {
  const NAT = `
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-ABC - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-SEP-2 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-EXT-ABC -m comment --comment "masquerade traffic for default/web external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-ABC -j KUBE-SVC-ABC
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web" -m tcp --dport 30080 -j KUBE-EXT-ABC
-A KUBE-SEP-1 -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-2 -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.2.7:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-ABC -m comment --comment "default/web -> 10.244.1.5:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-1
-A KUBE-SVC-ABC -m comment --comment "default/web -> 10.244.2.7:8080" -j KUBE-SEP-2`;

  it('a packet to a local address and the node port is marked and DNATed', () => {
    const e = engine('nat', NAT, { localAddrs: [addr4('192.168.0.10'), addr4('127.0.0.1')], seed: 3 });
    e.setTrace(true);
    const p = packet([ipv4({ src: '203.0.113.5', dst: '192.168.0.10' }), tcp({ dport: 30080 })]);
    expect(e.run('PREROUTING', p)).toBe(NF_ACCEPT);
    expect(p.meta[M_MARK]).toBe(0x4000);
    const acts = e.takeActions();
    expect(acts).toHaveLength(1);
    expect(acts[0]).toMatchObject({ kind: 'NAT', target: 'DNAT' });
    const chains = e.takeTrace().map((t) => `${t.chain}:${t.rule}`);
    expect(chains.slice(0, 7)).toEqual(['PREROUTING:1', 'KUBE-SERVICES:2', 'KUBE-NODEPORTS:1', 'KUBE-EXT-ABC:1', 'KUBE-MARK-MASQ:1', 'KUBE-MARK-MASQ:2', 'KUBE-EXT-ABC:2']);
    const c = e.counters();
    expect(c.get('KUBE-NODEPORTS')!.rules[0]!.packets).toBe(1);
  });

  it('a packet to a remote address, or to 127/8 via the lo route, is classified as the kernel does', () => {
    const e = engine('nat', NAT, { localAddrs: [addr4('192.168.0.10'), addr4('127.0.0.1')] });
    const remote = packet([ipv4({ dst: '192.168.0.11' }), tcp({ dport: 30080 })]);
    expect(e.run('PREROUTING', remote)).toBe(NF_ACCEPT);
    expect(remote.meta[M_MARK]).toBe(0);
    const loop = packet([ipv4({ dst: '127.0.0.53' }), tcp({ dport: 30080 })]);
    e.run('PREROUTING', loop);
    expect(loop.meta[M_MARK]).toBe(0x4000);
  });

  it('addrtype types and inversion; BROADCAST for 0.0.0.0 and 255.255.255.255, MULTICAST for 224/4', () => {
    const opts = { localAddrs: [addr4('10.0.0.2')], broadcastAddrs: [addr4('10.0.0.255')] };
    const e = (r: string) => engine('filter', `:INPUT ACCEPT [0:0]\n-A INPUT ${r} -j QUEUE`, opts);
    const to = (dst: string) => packet([ipv4({ dst }), udp()]);
    expect(e('-m addrtype --dst-type LOCAL').run('INPUT', to('10.0.0.2'))).toBe(HIT);
    expect(e('-m addrtype ! --dst-type LOCAL').run('INPUT', to('10.0.0.3'))).toBe(HIT);
    expect(e('-m addrtype --dst-type BROADCAST').run('INPUT', to('10.0.0.255'))).toBe(HIT);
    expect(e('-m addrtype --dst-type BROADCAST').run('INPUT', to('255.255.255.255'))).toBe(HIT);
    expect(e('-m addrtype --dst-type MULTICAST').run('INPUT', to('239.1.1.1'))).toBe(HIT);
    expect(e('-m addrtype --src-type UNICAST --dst-type LOCAL').run('INPUT', to('10.0.0.2'))).toBe(HIT);
    const six = engine('filter', ':INPUT ACCEPT [0:0]\n-A INPUT -m addrtype --dst-type LOCAL -j QUEUE', { family: 'ip6', localAddrs: [Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2])] });
    expect(six.run('INPUT', packet([ipv6({ dst: '2001:db8::2' }), udp()]))).toBe(HIT);
    expect(six.run('INPUT', packet([ipv6({ dst: '2001:db8::3' }), udp()]))).toBe(NF_ACCEPT);
  });
});
