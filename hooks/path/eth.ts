/**
 * eth_type_trans() (net/ethernet/eth.c, Linux 6.18): skb->pkt_type from the
 * destination MAC of a frame that arrived with an Ethernet header: the
 * device's own address → PACKET_HOST, all ones → PACKET_BROADCAST, the group
 * bit → PACKET_MULTICAST (33:33:.. for IPv6 too), anything else →
 * PACKET_OTHERHOST. Frames without a link header (SLL, raw IP) keep the
 * pkt_type they came with.
 */
import type { Link } from '../snapshot/node.js';
import {
  F_MAC_HEADER, M_FLAGS, M_MACOFF, M_PKTTYPE, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST,
} from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { parseMac } from '../../core/addr.js';

const macCache = new Map<string, Uint8Array>();
/** The device asked for last and its address bytes: frames arrive on few devices, most in a row on one. */
let lastMac = '';
let lastBytes: Uint8Array = new Uint8Array(0);
/** A link's MAC address as bytes, parsed once (empty when it is not an Ethernet address). */
function macBytes(mac: string): Uint8Array {
  if (mac === lastMac) return lastBytes;
  let b = macCache.get(mac);
  if (!b) {
    b = parseMac(mac) ?? new Uint8Array(0);
    if (macCache.size < 4096) macCache.set(mac, b);
  }
  lastMac = mac;
  lastBytes = b;
  return b;
}

export function ethTypeTrans(pkt: Packet, dev: Link): void {
  const m = pkt.meta;
  if ((m[M_FLAGS]! & F_MAC_HEADER) === 0 || dev.mac === '') return;
  const mac = m[M_MACOFF]!;
  const d = pkt.data;
  const own = macBytes(dev.mac);
  let same = own.length === 6;
  for (let i = 0; same && i < 6; i++) if (d[mac + i] !== own[i]) same = false;
  if (same) {
    m[M_PKTTYPE] = PACKET_HOST;
    return;
  }
  let bcast = true;
  for (let i = 0; bcast && i < 6; i++) if (d[mac + i] !== 0xff) bcast = false;
  m[M_PKTTYPE] = bcast ? PACKET_BROADCAST : (d[mac]! & 1) !== 0 ? PACKET_MULTICAST : PACKET_OTHERHOST;
}
