/**
 * The neighbour a packet leaves for (neigh_resolve_output(): IPv4
 * ip_finish_output2() → ip_neigh_for_gw(), IPv6 ip6_finish_output2()): the
 * link-layer address of the next hop, the gateway or the destination
 * itself, on a device that resolves addresses (not loopback, not NOARP).
 *
 * nfvm does not model resolution (README, "Answers of the node"): a
 * packet leaves as if its next hop were resolved. Where the snapshot has
 * the neighbour table (ip-neigh.json) and it holds no usable entry for the
 * next hop, a trace says what the kernel does instead: it creates the
 * entry or starts a FAILED one again (__neigh_event_send(): INCOMPLETE),
 * queues the packet, sends ARP requests (arp_solicit()) or neighbour
 * solicitations (ndisc_solicit()), up to mcast_solicit of them
 * retrans_time apart, and when none is answered drops what it queued with
 * an ICMP host unreachable (arp_error_report()) or ICMPv6 address
 * unreachable (ndisc_error_report()).
 */
import type { Node } from '../snapshot/node.js';
import { NUD_VALID } from '../snapshot/bridge.js';
import { addrEqual, parseAddr } from '../route/addr.js';

/**
 * The note for a unicast packet sent out of `dev` to next hop `nexthop`
 * (ip's text of an address) when the snapshot's neighbour table has no
 * usable entry for it; undefined when it has one, when the device resolves
 * no addresses, or when the snapshot has no neighbour table.
 */
export function unresolvedNeighbour(node: Node, dev: string, nexthop: string): string | undefined {
  const table = node.bridge.neighTable;
  const link = node.links.get(dev);
  const want = parseAddr(nexthop);
  if (!table || !link || !want || link.loopback || link.flags.includes('NOARP')) return undefined;
  // the same address however ip wrote it (addrEqual: an IPv4 address is one word, an IPv6 one four)
  const row = table.find((r) => r.dev === dev && addrEqual(parseAddr(r.dst)?.w ?? [], want.w));
  if (row?.mac && row.state.some((s) => NUD_VALID.has(s))) return undefined;
  const v6 = nexthop.includes(':');
  const had = row ? `its entry is ${row.state.join(',') || 'without a state'} in ip-neigh.json` : 'ip-neigh.json has no entry for it';
  return `neigh_resolve_output: next hop ${nexthop} on ${dev}: ${had}; the kernel holds the packet and sends ${v6 ? 'neighbour solicitations' : 'ARP requests'} for it (mcast_solicit of them, retrans_time apart), and drops it with ${v6 ? 'ICMPv6 address unreachable' : 'ICMP host unreachable'} when none is answered; nfvm sends it on as if resolved (neighbour resolution is not modelled)`;
}
