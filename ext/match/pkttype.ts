/**
 * pkttype match: iptables `extensions/libxt_pkttype.c`, kernel
 * `net/netfilter/xt_pkttype.c` (no checkentry): the link-layer packet type
 * (skb->pkt_type, PACKET_HOST etc. of linux/if_packet.h).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';

export interface PkttypeData {
  /** PACKET_HOST 0, PACKET_BROADCAST 1, PACKET_MULTICAST 2, PACKET_OTHERHOST 3. */
  pkttype: number;
  invert: boolean;
}

/** supported_types[] in table order: the first name of a value is the one saved. */
export const PKTTYPES: ReadonlyArray<readonly [string, number]> = [
  ['unicast', 0],
  ['broadcast', 1],
  ['multicast', 2],
  ['otherhost', 3],
  ['bcast', 1],
  ['mcast', 2],
  ['host', 0],
];

export const pkttype: MatchModule<PkttypeData> = {
  kind: 'match',
  name: 'pkttype',
  options: [{ name: 'pkt-type', arg: 1, invert: true }],
  init: () => ({ pkttype: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    const t = PKTTYPES.find(([n]) => n.toLowerCase() === arg!.toLowerCase());
    if (!t) fail(`Bad packet type '${arg}'`);
    d.pkttype = t[1];
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('pkt-type')) fail('pkttype: option "--pkt-type" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --pkt-type ${PKTTYPES.find(([, v]) => v === d.pkttype)?.[0] ?? d.pkttype}`,
};
