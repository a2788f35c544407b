/**
 * The ebtables evaluator (engine/reference/ebtables.ts): ebt_do_table over
 * rules parsed from ebtables-save text and frames as the bridge hooks see them.
 */
import { describe, expect, it } from 'vitest';
import { parseEbtRestore } from '../../compiler/ebt/restore.js';
import { ebtReferenceTable } from '../../engine/reference/ebtables.js';
import { NF_ACCEPT, NF_DROP } from '../../core/netfilter.js';
import { Packet, decodeBridgeFrame, setBridgePort, setDevice } from '../../vm/packet.js';
import { M_MARK, M_PKTTYPE, PACKET_HOST, PACKET_OTHERHOST } from '../../vm/layout.js';

const A = [0x02, 0, 0, 0, 0, 0x0a];
const B = [0x02, 0, 0, 0, 0, 0x0b];

function frame(dst: number[], src: number[], type: number, payload: number[], vlan?: number): number[] {
  const tag = vlan === undefined ? [] : [0x81, 0x00, vlan >> 8, vlan & 0xff];
  return [...dst, ...src, ...tag, type >> 8, type & 0xff, ...payload];
}

function ipv4(proto: number, src: number[], dst: number[], l4: number[]): number[] {
  const len = 20 + l4.length;
  return [0x45, 0, len >> 8, len & 0xff, 0, 0, 0x40, 0, 64, proto, 0, 0, ...src, ...dst, ...l4];
}

function bridged(bytes: number[], iif = 'eth0', oif = 'eth1'): Packet {
  const p = new Packet(2048).setFrame(bytes);
  setDevice(p, 'in', 3, iif);
  setDevice(p, 'out', 4, oif);
  setBridgePort(p, 'in', 'br0');
  setBridgePort(p, 'out', 'br0');
  decodeBridgeFrame(p);
  return p;
}

const udp = ipv4(17, [10, 0, 0, 2], [10, 0, 0, 3], [0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);

describe('ebt_do_table', () => {
  it('counts rules and the policy with skb->len, jumps and returns, user-chain policy', () => {
    const rs = parseEbtRestore(`*filter
:INPUT ACCEPT
:FORWARD DROP
:OUTPUT ACCEPT
:U RETURN
:V ACCEPT
-A FORWARD -p IPv4 -j U
-A FORWARD -p ARP -j V
-A FORWARD -s 02:00:00:00:00:0b -j ACCEPT
-A U -p IPv4 --ip-proto udp --ip-dport 53 -j mark --mark-set 0x7 --mark-target CONTINUE
-A U -i eth1 -j DROP
`);
    const t = ebtReferenceTable(rs, 'filter');
    const p = bridged(frame(B, A, 0x0800, udp));
    expect(t.run('FORWARD', p)).toBe(NF_DROP); // U returns, not ARP, source is A: policy DROP
    expect(p.meta[M_MARK]).toBe(7);
    const c = t.counters();
    expect(c.get('FORWARD')!.rules.map((r) => r.packets)).toEqual([1, 0, 0]);
    expect(c.get('FORWARD')!.rules[0]!.bytes).toBe(udp.length);
    expect(c.get('U')!.rules.map((r) => r.packets)).toEqual([1, 0]);
    expect(c.get('FORWARD')!.policy).toEqual({ packets: 1, bytes: udp.length });
    const arp = bridged(frame(B, A, 0x0806, new Array(28).fill(0)));
    expect(t.run('FORWARD', arp)).toBe(NF_ACCEPT); // V's policy ACCEPT
    expect(t.run('FORWARD', bridged(frame(A, B, 0x0800, udp), 'eth1', 'eth0'))).toBe(NF_DROP); // U: -i eth1 DROP
  });

  it('-p 802_1Q sees an accelerated tag; --vlan-id reads it; LENGTH matches 802.3 frames', () => {
    const rs = parseEbtRestore(`*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
-A FORWARD -p 802_1Q --vlan-id 10 --vlan-encap IPv4
-A FORWARD -p IPv4
-A FORWARD -p LENGTH --802_3-sap 0x42
-A FORWARD -p ! LENGTH
`);
    const t = ebtReferenceTable(rs, 'filter');
    t.run('FORWARD', bridged(frame(B, A, 0x0800, udp, 10)));
    t.run('FORWARD', bridged(frame(B, A, 0x0800, udp)));
    t.run('FORWARD', bridged(frame(B, A, 38, [0x42, 0x42, 0x03, ...new Array(35).fill(0)])));
    expect(t.counters().get('FORWARD')!.rules.map((r) => r.packets)).toEqual([1, 1, 1, 2]);
    expect(t.counters().get('FORWARD')!.rules[0]!.bytes).toBe(udp.length);
  });

  it('--logical-in with +, inverted interfaces, masked MACs, pkttype', () => {
    const rs = parseEbtRestore(`*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
-A FORWARD --logical-in br+ -i ! eth1 -d 02:00:00:00:00:00/ff:ff:ff:ff:ff:00
-A FORWARD --pkttype-type otherhost
-A FORWARD --logical-out ! br0
`);
    const t = ebtReferenceTable(rs, 'filter');
    const p = bridged(frame(B, A, 0x0800, udp));
    p.meta[M_PKTTYPE] = PACKET_OTHERHOST;
    t.run('FORWARD', p);
    const q = bridged(frame(B, A, 0x0800, udp), 'eth1', 'eth0');
    q.meta[M_PKTTYPE] = PACKET_HOST;
    t.run('FORWARD', q);
    expect(t.counters().get('FORWARD')!.rules.map((r) => r.packets)).toEqual([1, 1, 0]);
  });

  it('dnat rewrites the destination and pkt_type from the bridge address; refuses nothing it models', () => {
    const rs = parseEbtRestore(`*nat
:PREROUTING ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
-A PREROUTING -p IPv4 -j dnat --to-dst 02:00:00:00:00:0c --dnat-target CONTINUE
-A PREROUTING -d 02:00:00:00:00:0c -j DROP
`);
    const t = ebtReferenceTable(rs, 'nat', { macOf: (n) => (n === 'br0' ? new Uint8Array([2, 0, 0, 0, 0, 0x0c]) : undefined) });
    const p = bridged(frame(B, A, 0x0800, udp));
    expect(t.run('PREROUTING', p)).toBe(NF_DROP);
    expect([...p.data.subarray(0, 6)]).toEqual([2, 0, 0, 0, 0, 0x0c]);
    expect(p.meta[M_PKTTYPE]).toBe(PACKET_HOST);
  });
});
