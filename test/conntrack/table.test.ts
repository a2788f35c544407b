/**
 * The table (nf_conntrack_core.c, 6.18): nf_conntrack_max with early drop,
 * unconfirmed conntracks dying with their packet, zones from CT templates,
 * NOTRACK, clash resolution at confirm, the connection mark write-back,
 * expiry and gc on virtual time; and the sysctls (nf_conntrack_standalone.c):
 * defaults, the proc handlers' parsing and range checks.
 */
import { describe, expect, it } from 'vitest';
import { NfConntrack, NF_CT_ZONE_DIR_ORIG } from '../../hooks/conntrack/core.js';
import { CtSysctlError, NfConntrackSysctl, nfConntrackSysctl } from '../../hooks/conntrack/sysctl.js';
import { conntrackList } from '../../hooks/conntrack/print.js';
import { IPS_ASSURED, IPS_CONFIRMED, IPS_NAT_CLASH, IPS_TEMPLATE, NF_CT_STATE_INVALID_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_UNTRACKED_BIT, NF_ACCEPT, NF_DROP, NF_INET_PRE_ROUTING } from '../../core/netfilter.js';
import { M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_MARK } from '../../vm/layout.js';
import { SYN, forward, ipPacket, packet, sec } from '../helpers/ctpkt.js';

const table = (sys: Record<string, string> = {}) => new NfConntrack(nfConntrackSysctl(sys));
const udp = (sport: number, dst = '10.1.0.2') => ipPacket('10.0.0.2', dst, { proto: 'udp', sport, dport: 53, payload: 4 });

describe('conntrack table', () => {
  it('nf_conntrack_max: a full table evicts a non-assured entry of the bucket range, else drops the packet', () => {
    // One bucket: early_drop scans it (and 7 more, the same one) and finds every entry.
    const ct = table({ 'net.netfilter.nf_conntrack_max': '3', 'net.netfilter.nf_conntrack_buckets': '1' });
    const ids = [1, 2, 3].map((p) => forward(ct, udp(p), sec(1)).id);
    expect(ct.count).toBe(3);
    // Assure all three: a reply, then a packet more than 2 s later.
    for (const p of [1, 2, 3]) forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'udp', sport: 53, dport: p, payload: 4 }), sec(1.1));
    for (const p of [1, 2, 3]) forward(ct, udp(p), sec(4));
    for (const id of ids) expect(ct.status[id]! & IPS_ASSURED).toBeTruthy();
    const full = forward(ct, udp(4), sec(5));
    expect(full.verdict).toBe(NF_DROP);
    expect(full.state).toBe(NF_CT_STATE_INVALID_BIT);
    expect(ct.stats.drop).toBe(1);
    expect(ct.count).toBe(3);
    // A non-assured entry can be evicted: the table takes the new one.
    const ct2 = table({ 'net.netfilter.nf_conntrack_max': '2', 'net.netfilter.nf_conntrack_buckets': '1' });
    forward(ct2, udp(1), sec(1));
    forward(ct2, udp(2), sec(1));
    const third = forward(ct2, udp(3), sec(1));
    expect(third.verdict).toBe(NF_ACCEPT);
    expect(ct2.stats.earlyDrop).toBe(2); // early_drop_list evicts every candidate of the bucket it stops at
    expect(ct2.dump(sec(1)).length).toBe(1);
  });

  it('an unconfirmed conntrack dies with its dropped packet; a confirmed one stays', () => {
    const ct = table();
    const p = packet(udp(1));
    ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1));
    expect(ct.count).toBe(1);
    expect(ct.unconfirmedCount()).toBe(1);
    ct.nfResetCt(p); // dropped by a filter rule before confirm
    expect(ct.count).toBe(0);
    expect(forward(ct, udp(1), sec(2)).state).toBe(NF_CT_STATE_NEW_BIT);
    expect(ct.count).toBe(1);
    expect(ct.unconfirmedCount()).toBe(0);
  });

  it('CT --zone: the same tuple in two zones is two conntracks; zone-orig only keys the original direction', () => {
    const ct = table();
    const z5 = ct.nfCtTmplAlloc({ zoneId: 5, zoneDir: 3, zoneFromMark: false });
    const run = (bytes: Uint8Array, tmpl?: number, mark = 0) => {
      const p = packet(bytes);
      p.meta[M_MARK] = mark;
      if (tmpl !== undefined) {
        ct.nfCtSetTemplate(p, tmpl);
        expect(p.meta[M_CT_STATE]).toBe(NF_CT_STATE_NEW_BIT);
        expect(p.meta[M_CT_STATUS]).toBe(IPS_TEMPLATE | IPS_CONFIRMED);
      }
      ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1));
      ct.nfConfirm(p, sec(1));
      const id = p.meta[M_CT_ID]!;
      ct.nfResetCt(p);
      return id;
    };
    const a = run(udp(1));
    const b = run(udp(1), z5);
    expect(b).not.toBe(a);
    expect(run(udp(1), z5)).toBe(b);
    expect(conntrackList(ct, sec(1))[1]).toMatch(/ mark=0 zone=5 use=1$/);
    const zm = ct.nfCtTmplAlloc({ zoneId: 0, zoneDir: NF_CT_ZONE_DIR_ORIG, zoneFromMark: true });
    const c = run(udp(2), zm, 0x10007);
    expect(ct.zoneId[c]).toBe(7);
    expect(conntrackList(ct, sec(1))[2]).toMatch(/sport=2 dport=53 zone-orig=7 \[UNREPLIED\]/);
  });

  it('NOTRACK: untracked, ignored by conntrack; a template or untracked mark is not overwritten', () => {
    const ct = table();
    const p = packet(udp(1));
    ct.nfCtSetUntracked(p);
    expect(p.meta[M_CT_STATE]).toBe(NF_CT_STATE_UNTRACKED_BIT);
    expect(ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1))).toBe(NF_ACCEPT);
    expect(p.meta[M_CT_STATE]).toBe(NF_CT_STATE_UNTRACKED_BIT);
    expect(p.meta[M_CT_ID]).toBe(-1);
    ct.nfCtSetTemplate(p, ct.nfCtTmplAlloc({ zoneId: 1, zoneDir: 3, zoneFromMark: false }));
    expect(p.meta[M_CT_STATE]).toBe(NF_CT_STATE_UNTRACKED_BIT);
    expect(ct.count).toBe(0);
  });

  it('confirm clash: two unconfirmed UDP conntracks of one flow merge; for TCP the second packet is dropped', () => {
    const ct = table();
    const p1 = packet(udp(1)), p2 = packet(udp(1));
    ct.nfConntrackIn(p1, NF_INET_PRE_ROUTING, sec(1));
    ct.nfConntrackIn(p2, NF_INET_PRE_ROUTING, sec(1));
    expect(p1.meta[M_CT_ID]).not.toBe(p2.meta[M_CT_ID]);
    expect(ct.nfConfirm(p1, sec(1))).toBe(NF_ACCEPT);
    expect(ct.nfConfirm(p2, sec(1))).toBe(NF_ACCEPT);
    expect(p2.meta[M_CT_ID]).toBe(p1.meta[M_CT_ID]); // the packet now belongs to the winner
    expect(ct.stats.clashResolve).toBe(1);
    ct.nfResetCt(p1);
    ct.nfResetCt(p2);
    expect(ct.count).toBe(1);
    const syn = ipPacket('10.0.0.2', '10.1.0.2', { proto: 'tcp', flags: SYN, seq: 1 });
    const t1 = packet(syn), t2 = packet(syn);
    ct.nfConntrackIn(t1, NF_INET_PRE_ROUTING, sec(1));
    ct.nfConntrackIn(t2, NF_INET_PRE_ROUTING, sec(1));
    expect(ct.nfConfirm(t1, sec(1))).toBe(NF_ACCEPT);
    expect(ct.nfConfirm(t2, sec(1))).toBe(NF_DROP);
    ct.nfResetCt(t1);
    ct.nfResetCt(t2);
    expect(ct.count).toBe(2);
    expect(ct.stats.insertFailed).toBe(1);
  });

  it('a clash in the original direction only (a different reply, as after NAT) goes in by its reply tuple with a 1 s fixed timeout', () => {
    const ct = table();
    const p1 = packet(udp(1)), p2 = packet(udp(1));
    ct.nfConntrackIn(p1, NF_INET_PRE_ROUTING, sec(1));
    ct.nfConntrackIn(p2, NF_INET_PRE_ROUTING, sec(1));
    // p2's conntrack got a different reply tuple (what a DNAT binding does).
    const e2 = p2.meta[M_CT_ID]!;
    const reply = ct.tuples.slice((2 * e2 + 1) * 10, (2 * e2 + 2) * 10);
    reply[0] = 0x0a010063; // replies come from 10.1.0.99
    ct.alterReply(e2, reply, 0);
    expect(ct.nfConfirm(p1, sec(1))).toBe(NF_ACCEPT);
    expect(ct.nfConfirm(p2, sec(1))).toBe(NF_ACCEPT);
    expect(ct.status[e2]! & IPS_NAT_CLASH).toBeTruthy();
    ct.nfResetCt(p1);
    ct.nfResetCt(p2);
    expect(conntrackList(ct, sec(1)).length).toBe(1); // the stand-in is not listed
    // Its reply finds it; it expires after one second.
    expect(forward(ct, ipPacket('10.1.0.99', '10.0.0.2', { proto: 'udp', sport: 53, dport: 1, payload: 4 }), sec(1.5)).id).toBe(e2);
    // Expired at 2 s: the same packet later starts a connection of its own.
    expect(forward(ct, ipPacket('10.1.0.99', '10.0.0.2', { proto: 'udp', sport: 53, dport: 1, payload: 4 }), sec(2.5)).state).toBe(NF_CT_STATE_NEW_BIT);
  });

  it('the connection mark: written back from M_CT_MARK, loaded into every later packet of the connection', () => {
    const ct = table();
    const p = packet(udp(1));
    ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1));
    p.meta[M_CT_MARK] = 0x42; // CONNMARK --set-mark 0x42 in mangle PREROUTING
    ct.nfCtMarkStore(p);
    ct.nfConfirm(p, sec(1));
    ct.nfResetCt(p);
    expect(forward(ct, ipPacket('10.1.0.2', '10.0.0.2', { proto: 'udp', sport: 53, dport: 1, payload: 4 }), sec(2)).mark).toBe(0x42);
    expect(conntrackList(ct, sec(2))[0]).toMatch(/ mark=66 use=1$/);
  });

  it('expiry on virtual time: an expired conntrack met by a lookup is gone; gc removes the rest', () => {
    const ct = table();
    const a = forward(ct, udp(1), sec(10));
    forward(ct, udp(2), sec(10));
    const later = forward(ct, udp(1), sec(41));
    expect(later.state).toBe(NF_CT_STATE_NEW_BIT); // a fresh conntrack (its slot may be the old one's)
    expect(ct.born[later.id]).toBeGreaterThan(ct.born[a.id === later.id ? -1 : a.id] ?? 0);
    expect(ct.count).toBe(2); // udp(2) expired but not met yet
    expect(ct.nfConntrackGc(sec(41))).toBe(1);
    expect(ct.count).toBe(1);
  });

  it('the clock wraps like jiffies: a capture at epoch nanoseconds still expires entries', () => {
    const ct = table();
    const t0 = 1.7e18;
    const a = forward(ct, udp(1), t0);
    expect(Math.floor(ct.expires(a.id) / ct.sysctl.hz)).toBe(30);
    expect(ct.dump(t0 + sec(29))).toEqual([a.id]);
    expect(ct.dump(t0 + sec(31))).toEqual([]);
  });

  it('loopback: a packet that already has a conntrack keeps it', () => {
    const ct = table();
    const p = packet(ipPacket('10.0.0.2', '10.1.0.2', { proto: 'tcp', flags: SYN, seq: 1 }));
    ct.nfConntrackIn(p, 3, sec(1));
    const id = p.meta[M_CT_ID];
    expect(ct.nfConntrackIn(p, NF_INET_PRE_ROUTING, sec(1))).toBe(NF_ACCEPT);
    expect(p.meta[M_CT_ID]).toBe(id);
    expect(ct.use[id!]).toBe(1);
  });
});

describe('nf_conntrack sysctls', () => {
  it('defaults are the kernel\'s, in jiffies at HZ 250', () => {
    const s = new NfConntrackSysctl();
    expect(s.hz).toBe(250);
    expect(s.tcpTimeouts[3]).toBe(432000 * 250);
    expect(s.udpTimeouts[1]).toBe(120 * 250);
    expect([s.max, s.checksum, s.tcpLoose, s.tcpBeLiberal, s.tcpMaxRetrans]).toEqual([262144, 1, 1, 0, 3]);
  });

  it('parses as the proc handlers do and refuses what they refuse, naming the key', () => {
    const s = nfConntrackSysctl({
      'net.netfilter.nf_conntrack_tcp_timeout_established': '0x10',
      'net.netfilter.nf_conntrack_udp_timeout': ' 010 ',
      'net.netfilter.nf_conntrack_max': '100',
      'net.ipv4.ip_forward': '1',
      'net.netfilter.nf_conntrack_frag6_timeout': '60',
    });
    expect(s.tcpTimeouts[3]).toBe(16 * 250);
    expect(s.udpTimeouts[0]).toBe(8 * 250);
    expect(s.max).toBe(100);
    const refused = (k: string, v: string) => {
      try {
        nfConntrackSysctl({ [k]: v });
      } catch (e) {
        expect(e).toBeInstanceOf(CtSysctlError);
        expect((e as CtSysctlError).key).toBe(k);
        return (e as CtSysctlError).reason;
      }
      return 'accepted';
    };
    expect(refused('net.netfilter.nf_conntrack_checksum', '2')).toMatch(/out of range 0\.\.1/);
    expect(refused('net.netfilter.nf_conntrack_tcp_loose', '-1')).toMatch(/negative/);
    expect(refused('net.netfilter.nf_conntrack_max', '-1')).toMatch(/out of range/);
    expect(refused('net.netfilter.nf_conntrack_udp_timeout', '8589935')).toMatch(/at most 8589934 seconds/);
    expect(refused('net.netfilter.nf_conntrack_udp_timeout', 'ten')).toMatch(/not a number/);
    expect(refused('net.netfilter.nf_conntrack_tcp_max_retrans', '256')).toMatch(/0\.\.255/);
    expect(refused('net.netfilter.nf_conntrack_udp_timeout', '-5')).toBe('accepted'); // proc_dointvec_jiffies takes negatives
  });
});
