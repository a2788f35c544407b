/**
 * `conntrack -L` as conntrack-tools 1.4.7 prints it (libnetfilter_conntrack
 * __snprintf_conntrack_default): the lines of ../shared/docs/ecosystem.md
 * §1.12 reproduced from packets, `-o extended`, IPv6 (inet_ntop), ICMP and
 * GRE fields, directional zones, counters (nf_conntrack_acct) and the JSON
 * form.
 */
import { describe, expect, it } from 'vitest';
import { NfConntrack } from '../../hooks/conntrack/core.js';
import { nfConntrackSysctl } from '../../hooks/conntrack/sysctl.js';
import { conntrackList, conntrackListJson, conntrackSummary } from '../../hooks/conntrack/print.js';
import { NfNat, NF_NAT_MANIP_DST, NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED, nfNatRangeFrom } from '../../hooks/nat/core.js';
import { nfNatFn } from '../../hooks/nat/proto.js';
import { NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING } from '../../core/netfilter.js';
import { ACK, SYN, forward, ipPacket, packet, sec } from '../helpers/ctpkt.js';

const table = (sys: Record<string, string> = {}) => new NfConntrack(nfConntrackSysctl(sys));

describe('conntrack -L', () => {
  it('reproduces the ecosystem.md capture: an assured loopback TCP connection and a DNATed UDP query', () => {
    const ct = table();
    const nat = new NfNat(ct);
    // TCP over lo: LOCAL_OUT conntrack, confirm at POST_ROUTING; the reply likewise.
    const local = (b: Uint8Array, t: number) => {
      const p = packet(b);
      ct.nfConntrackLocal(p, sec(t));
      nfNatFn(nat, p, NF_INET_LOCAL_OUT, 1);
      nfNatFn(nat, p, NF_INET_POST_ROUTING, 1);
      ct.nfConfirm(p, sec(t));
      ct.nfResetCt(p);
    };
    const c = (flags: number, seq: number, ack: number) => ipPacket('127.0.0.1', '127.0.0.1', { proto: 'tcp', sport: 36596, dport: 8080, flags, seq, ack });
    const s = (flags: number, seq: number, ack: number) => ipPacket('127.0.0.1', '127.0.0.1', { proto: 'tcp', sport: 8080, dport: 36596, flags, seq, ack });
    local(c(SYN, 1, 0), 10);
    local(s(SYN | ACK, 100, 2), 10);
    local(c(ACK, 2, 101), 10);
    // A DNS query DNATed from 10.96.0.10:53 to 127.0.0.1:5353 at LOCAL_OUT, never answered.
    const r = nfNatRangeFrom({ flags: NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED, minAddr: Uint8Array.of(127, 0, 0, 1), maxAddr: Uint8Array.of(127, 0, 0, 1), minPort: 5353, maxPort: 5353 });
    const q = packet(ipPacket('127.0.0.1', '10.96.0.10', { proto: 'udp', sport: 55781, dport: 53, payload: 30 }));
    ct.nfConntrackLocal(q, sec(11));
    nfNatFn(nat, q, NF_INET_LOCAL_OUT, 1, (p) => nat.xtNatTarget(p, r, NF_NAT_MANIP_DST));
    nfNatFn(nat, q, NF_INET_POST_ROUTING, 1);
    ct.nfConfirm(q, sec(11));
    ct.nfResetCt(q);
    const lines = conntrackList(ct, sec(11));
    expect(lines).toEqual([
      'tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=36596 dport=8080 src=127.0.0.1 dst=127.0.0.1 sport=8080 dport=36596 [ASSURED] mark=0 use=1',
      'udp      17 30 src=127.0.0.1 dst=10.96.0.10 sport=55781 dport=53 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5353 dport=55781 mark=0 use=1',
    ]);
    expect(conntrackSummary(lines.length)).toBe('conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.');
  });

  it('-o extended, IPv6 addresses as inet_ntop writes them, ICMPv6, GRE keys and another protocol', () => {
    const ct = table();
    forward(ct, ipPacket('2001:db8::2', '2001:db8:0:1::2', { proto: 'tcp', flags: SYN, seq: 1 }), sec(1));
    forward(ct, ipPacket('::ffff:10.0.0.1', '::1.2.3.4', { proto: 'icmpv6', type: 128, id: 5 }), sec(1));
    forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'gre', payload: 4 }), sec(1));
    forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 50, payload: 8 }), sec(1));
    expect(conntrackList(ct, sec(1), true)).toEqual([
      'ipv6     10 tcp      6 120 SYN_SENT src=2001:db8::2 dst=2001:db8:0:1::2 sport=40000 dport=80 [UNREPLIED] src=2001:db8:0:1::2 dst=2001:db8::2 sport=80 dport=40000 mark=0 use=1',
      'ipv6     10 icmpv6   58 30 src=::ffff:10.0.0.1 dst=::1.2.3.4 type=128 code=0 id=5 [UNREPLIED] src=::1.2.3.4 dst=::ffff:10.0.0.1 type=129 code=0 id=5 mark=0 use=1',
      'ipv4     2 gre      47 30 src=10.0.0.2 dst=10.1.0.2 srckey=0x0 dstkey=0x0 [UNREPLIED] src=10.1.0.2 dst=10.0.0.2 srckey=0x0 dstkey=0x0 mark=0 use=1',
      'ipv4     2 unknown  50 600 src=10.0.0.2 dst=10.1.0.2 [UNREPLIED] src=10.1.0.2 dst=10.0.0.2 mark=0 use=1',
    ]);
  });

  it('counters with nf_conntrack_acct, a reply-only zone, and the JSON form', () => {
    const ct = table({ 'net.netfilter.nf_conntrack_acct': '1' });
    const z = ct.nfCtTmplAlloc({ zoneId: 9, zoneDir: 2, zoneFromMark: false });
    const p = packet(ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 1, dport: 2, payload: 12 }));
    ct.nfCtSetTemplate(p, z);
    ct.nfConntrackIn(p, 0, sec(1));
    ct.nfConfirm(p, sec(1));
    ct.nfResetCt(p);
    forward(ct, ipPacket('10.0.0.2', '10.1.0.3', { proto: 'tcp', flags: SYN, seq: 9 }), sec(1));
    forward(ct, ipPacket('10.1.0.3', '10.0.0.2', { proto: 'tcp', sport: 80, dport: 40000, flags: SYN | ACK, seq: 50, ack: 10 }), sec(1));
    expect(conntrackList(ct, sec(1))).toEqual([
      'udp      17 30 src=10.0.0.2 dst=10.1.0.2 sport=1 dport=2 packets=1 bytes=40 [UNREPLIED] src=10.1.0.2 dst=10.0.0.2 sport=2 dport=1 zone-reply=9 packets=0 bytes=0 mark=0 use=1',
      'tcp      6 60 SYN_RECV src=10.0.0.2 dst=10.1.0.3 sport=40000 dport=80 packets=1 bytes=40 src=10.1.0.3 dst=10.0.0.2 sport=80 dport=40000 packets=1 bytes=40 mark=0 use=1',
    ]);
    const j = conntrackListJson(ct, sec(1));
    expect(j[1]).toEqual({
      l3proto: 'ipv4', l3num: 2, proto: 'tcp', protonum: 6, timeout: 60, state: 'SYN_RECV',
      original: { src: '10.0.0.2', dst: '10.1.0.3', sport: 40000, dport: 80 },
      reply: { src: '10.1.0.3', dst: '10.0.0.2', sport: 80, dport: 40000 },
      status: ['SEEN_REPLY', 'CONFIRMED'], mark: 0, use: 1,
      counters: { original: { packets: 1, bytes: 40 }, reply: { packets: 1, bytes: 40 } },
    });
  });
});
