/**
 * The two views of a bridged frame's metadata: the bridge hooks' (ebtables,
 * nf_tables bridge) and the IP hooks' and IP stack's (br_netfilter hands the
 * frame to them). The kernel keeps one skb whose protocol, network header
 * and length br_netfilter adjusts on the way (nf_bridge_pull_encap_header,
 * br_validate_ipv4's trim, skb->protocol = ETH_P_IP); nfvm decodes the
 * frame again for the side it enters.
 */
import { M_PKTTYPE } from '../../vm/layout.js';
import { LINKTYPE_ETHERNET, decodeBridgeFrame, decodePacket, type Packet } from '../../vm/packet.js';

/**
 * The frame as the bridge hooks see it (decodeBridgeFrame: NFPROTO_BRIDGE,
 * skb->len from the network header, the VLAN tag accelerated), its
 * pkt_type kept: what the bridge decided stands.
 */
export function bridgeView(pkt: Packet): void {
  const t = pkt.meta[M_PKTTYPE]!;
  decodeBridgeFrame(pkt);
  pkt.meta[M_PKTTYPE] = t;
}

/** The frame as the IP hooks and the IP stack see it (decodePacket: the IP header validated, skb->len the IP length), its pkt_type kept. */
export function ipView(pkt: Packet): void {
  const t = pkt.meta[M_PKTTYPE]!;
  decodePacket(pkt, LINKTYPE_ETHERNET);
  pkt.meta[M_PKTTYPE] = t;
}
