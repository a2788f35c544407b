/**
 * The UDP, UDP-Lite, ICMP, ICMPv6, SCTP, GRE and generic trackers against
 * their 6.18 sources: UDP unreplied / replied / stream (ASSURED only when a
 * packet comes more than 2 s after the first), ICMP queries and errors
 * RELATED through the quoted packet, ICMPv6 neighbour discovery untracked,
 * the SCTP association states with verification tags and CRC32c.
 */
import { describe, expect, it } from 'vitest';
import { NfConntrack } from '../../hooks/conntrack/core.js';
import { nfConntrackSysctl } from '../../hooks/conntrack/sysctl.js';
import { sctpState, SCTP_CONNTRACK_NAMES } from '../../hooks/conntrack/proto_sctp.js';
import {
  IPS_ASSURED, IPS_SEEN_REPLY, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_INVALID_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_RELATED_BIT,
  NF_CT_STATE_UNTRACKED_BIT,
} from '../../core/netfilter.js';
import { SYN, forward, ipPacket, sec } from '../helpers/ctpkt.js';

const table = (sys: Record<string, string> = {}) => new NfConntrack(nfConntrackSysctl(sys));
const left = (ct: NfConntrack, id: number) => Math.floor(ct.expires(id) / ct.sysctl.hz);

describe('UDP', () => {
  const q = (sport = 5000) => ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport, dport: 53, payload: 20 });
  const r = (dport = 5000) => ipPacket('10.1.0.2', '10.0.0.2', { proto: 'udp', sport: 53, dport, payload: 40 });

  it('unreplied: NEW, 30 s, UNREPLIED; retransmissions stay NEW', () => {
    const ct = table();
    const a = forward(ct, q(), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(left(ct, a.id)).toBe(30);
    expect(forward(ct, q(), sec(5)).state).toBe(NF_CT_STATE_NEW_BIT);
    expect(ct.status[a.id]! & IPS_SEEN_REPLY).toBe(0);
  });

  it('replied within 2 s: ESTABLISHED with the unreplied timeout, not assured', () => {
    const ct = table();
    const a = forward(ct, q(), sec(1));
    const b = forward(ct, r(), sec(1.5));
    expect(b.state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    expect(b.dir).toBe(1);
    expect(ct.status[a.id]! & IPS_SEEN_REPLY).toBeTruthy();
    forward(ct, q(), sec(2.5));
    expect(ct.status[a.id]! & IPS_ASSURED).toBe(0);
    expect(left(ct, a.id)).toBe(30);
  });

  it('a stream: traffic both ways and a packet more than 2 s after the first is ASSURED with the stream timeout (120 s)', () => {
    const ct = table();
    const a = forward(ct, q(), sec(1));
    forward(ct, r(), sec(1.1));
    forward(ct, q(), sec(3.01));
    expect(ct.status[a.id]! & IPS_ASSURED).toBeTruthy();
    expect(left(ct, a.id)).toBe(120);
  });

  it('times out on virtual time: gone after 30 s, a later packet is NEW again', () => {
    const ct = table();
    const a = forward(ct, q(), sec(100));
    expect(ct.dump(sec(129.9))).toEqual([a.id]);
    const b = forward(ct, q(), sec(130.1));
    expect(b.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(ct.dump(sec(130.2)).length).toBe(1);
  });

  it('malformed length and bad checksums are INVALID; a zero checksum is none', () => {
    const ct = table();
    const bad = q();
    bad[20 + 5] = 200; // UDP length beyond the packet
    expect(forward(ct, bad, sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', payload: 8, badsum: true }), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', payload: 8, nosum: true }), sec(1)).state).toBe(NF_CT_STATE_NEW_BIT);
  });

  it('UDP-Lite: a reply assures at once (no two-second rule); a missing checksum is INVALID', () => {
    const ct = table();
    const a = forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udplite', sport: 7, dport: 8, payload: 10 }), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'udplite', sport: 8, dport: 7, payload: 10 }), sec(1.1));
    forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udplite', sport: 7, dport: 8, payload: 10 }), sec(1.2));
    expect(ct.status[a.id]! & IPS_ASSURED).toBeTruthy();
    expect(left(ct, a.id)).toBe(120);
    const nosum = ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udplite', sport: 9, dport: 8, payload: 10 });
    nosum[26] = nosum[27] = 0;
    expect(forward(ct, nosum, sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
  });
});

describe('ICMP', () => {
  it('echo request NEW, echo reply ESTABLISHED; a lone echo reply or an unknown type is INVALID', () => {
    const ct = table();
    const a = forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'icmp', type: 8, id: 77 }), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(left(ct, a.id)).toBe(30);
    const b = forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 0, id: 77 }), sec(1.1));
    expect(b.state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    expect(b.id).toBe(a.id);
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 0, id: 78 }), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 42 }), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 8, badsum: true }), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
  });

  it('an error quoting a packet of a known connection is RELATED (RELATED in the reply direction too); otherwise INVALID', () => {
    const ct = table();
    const udp = ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 5000, dport: 53, payload: 20 });
    const a = forward(ct, udp, sec(1));
    // Port unreachable from the server, quoting the query (IP header + 8 bytes).
    const unreach = ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 3, code: 3, inner: udp.slice(0, 28) });
    const e = forward(ct, unreach, sec(1.1));
    expect(e.state).toBe(NF_CT_STATE_RELATED_BIT);
    expect(e.id).toBe(a.id);
    expect(e.dir).toBe(1);
    // From a router on the way, quoting the client's packet: also RELATED.
    const ttl = forward(ct, ipPacket('10.9.9.9', '10.0.0.2', { proto: 'icmp', type: 11, inner: udp.slice(0, 28) }), sec(1.2));
    expect(ttl.state).toBe(NF_CT_STATE_RELATED_BIT);
    // The error does not make the connection replied.
    expect(ct.status[a.id]! & IPS_SEEN_REPLY).toBe(0);
    // An error to another destination than the connection's: INVALID (outer daddr != inner).
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.9', { proto: 'icmp', type: 3, code: 3, inner: udp.slice(0, 28) }), sec(1.3)).state).toBe(NF_CT_STATE_INVALID_BIT);
    // Quoting an unknown connection: INVALID.
    const other = ipPacket('10.0.0.2', '10.1.0.2', { proto: 'udp', sport: 5001, dport: 53, payload: 20 });
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'icmp', type: 3, code: 3, inner: other.slice(0, 28) }), sec(1.4)).state).toBe(NF_CT_STATE_INVALID_BIT);
  });

  it('ICMPv6: echo tracked, neighbour discovery untracked, errors RELATED', () => {
    const ct = table();
    const a = forward(ct, ipPacket('2001:db8::2', '2001:db8:1::2', { proto: 'icmpv6', type: 128, id: 9 }), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(forward(ct, ipPacket('2001:db8:1::2', '2001:db8::2', { proto: 'icmpv6', type: 129, id: 9 }), sec(1.1)).state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    const ns = forward(ct, ipPacket('fe80::1', 'ff02::1:ff00:2', { proto: 'icmpv6', type: 135, payload: 16 }, { ttl: 255 }), sec(1));
    expect(ns.state).toBe(NF_CT_STATE_UNTRACKED_BIT);
    const tcp = ipPacket('2001:db8::2', '2001:db8:1::2', { proto: 'tcp', flags: SYN, seq: 1 });
    forward(ct, tcp, sec(2));
    const big = forward(ct, ipPacket('2001:db8:1::2', '2001:db8::2', { proto: 'icmpv6', type: 2, inner: tcp }), sec(2.1));
    expect(big.state).toBe(NF_CT_STATE_RELATED_BIT);
  });
});

describe('SCTP', () => {
  const INIT = 1, INIT_ACK = 2, COOKIE_ECHO = 10, COOKIE_ACK = 11, DATA = 0, SHUTDOWN = 7, SHUTDOWN_ACK = 8, SHUTDOWN_COMPLETE = 14;
  const initv = (tag: number) => [tag >>> 24, (tag >>> 16) & 255, (tag >>> 8) & 255, tag & 255, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1];
  const c2s = (vtag: number, chunks: Array<[number, number, number[]]>, badsum = false) =>
    ipPacket('10.0.0.2', '10.1.0.2', { proto: 'sctp', sport: 4000, dport: 5000, vtag, chunks, badsum });
  const s2c = (vtag: number, chunks: Array<[number, number, number[]]>) => ipPacket('10.1.0.2', '10.0.0.2', { proto: 'sctp', sport: 5000, dport: 4000, vtag, chunks });
  const st = (ct: NfConntrack, id: number) => SCTP_CONNTRACK_NAMES[sctpState(ct, id)];

  it('INIT, INIT_ACK, COOKIE_ECHO, COOKIE_ACK: ESTABLISHED and ASSURED (210 s); a wrong tag is INVALID; shutdown to CLOSED', () => {
    const ct = table();
    const a = forward(ct, c2s(0, [[INIT, 0, initv(0x1111)]]), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(st(ct, a.id)).toBe('CLOSED');
    expect(left(ct, a.id)).toBe(10);
    forward(ct, s2c(0x1111, [[INIT_ACK, 0, initv(0x2222)]]), sec(1.1));
    expect(st(ct, a.id)).toBe('COOKIE_WAIT');
    forward(ct, c2s(0x2222, [[COOKIE_ECHO, 0, [1, 2, 3, 4]]]), sec(1.2));
    expect(st(ct, a.id)).toBe('COOKIE_ECHOED');
    forward(ct, s2c(0x1111, [[COOKIE_ACK, 0, []]]), sec(1.3));
    expect(st(ct, a.id)).toBe('ESTABLISHED');
    expect(ct.status[a.id]! & IPS_ASSURED).toBeTruthy();
    expect(left(ct, a.id)).toBe(210);
    expect(forward(ct, c2s(0x2222, [[DATA, 3, new Array(16).fill(0)]]), sec(2)).state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
    expect(forward(ct, c2s(0x9999, [[DATA, 3, new Array(16).fill(0)]]), sec(2)).state).toBe(NF_CT_STATE_INVALID_BIT);
    forward(ct, c2s(0x2222, [[SHUTDOWN, 0, [0, 0, 0, 0]]]), sec(3));
    expect(st(ct, a.id)).toBe('SHUTDOWN_SENT');
    forward(ct, s2c(0x1111, [[SHUTDOWN_ACK, 0, []]]), sec(3.1));
    expect(st(ct, a.id)).toBe('SHUTDOWN_ACK_SENT');
    forward(ct, c2s(0x2222, [[SHUTDOWN_COMPLETE, 0, []]]), sec(3.2));
    expect(st(ct, a.id)).toBe('CLOSED');
  });

  it('a bad CRC32c at PRE_ROUTING, an INIT with a tag, and an OOTB ABORT are INVALID', () => {
    const ct = table();
    expect(forward(ct, c2s(0, [[INIT, 0, initv(1)]], true), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, c2s(5, [[INIT, 0, initv(1)]]), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(forward(ct, c2s(5, [[6, 0, []]]), sec(1)).state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(ct.count).toBe(0);
  });
});

describe('GRE and generic protocols', () => {
  it('GRE: unreplied 30 s, then the stream timeout 180 s and ASSURED once replied', () => {
    const ct = table();
    const a = forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'gre', payload: 20 }), sec(1));
    expect(left(ct, a.id)).toBe(30);
    forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'gre', payload: 20 }), sec(1.1));
    forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 'gre', payload: 20 }), sec(1.2));
    expect(ct.status[a.id]! & IPS_ASSURED).toBeTruthy();
    expect(left(ct, a.id)).toBe(180);
  });

  it('another protocol: one conntrack per address pair, nf_conntrack_generic_timeout (600 s)', () => {
    const ct = table({ 'net.netfilter.nf_conntrack_generic_timeout': '100' });
    const a = forward(ct, ipPacket('10.0.0.2', '10.1.0.2', { proto: 50, payload: 20 }), sec(1));
    expect(a.state).toBe(NF_CT_STATE_NEW_BIT);
    expect(left(ct, a.id)).toBe(100);
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 50, payload: 20 }), sec(2)).state).toBe(NF_CT_STATE_ESTABLISHED_BIT);
  });
});
