/**
 * pkttype match: net/netfilter/xt_pkttype.c pkttype_mt() (kernel 6.18).
 */
import type { PkttypeData } from '../../../ext/match/pkttype.js';
import { M_PKTTYPE, PACKET_BROADCAST, PACKET_LOOPBACK, PACKET_MULTICAST } from '../../../vm/layout.js';
import type { MatchFn } from '../../../ext/xt.js';

export function pkttype(info: PkttypeData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => {
    const pt = par.meta[M_PKTTYPE]!;
    let type: number;
    if (pt !== PACKET_LOOPBACK) type = pt;
    else if (family === 'ip' && (par.d[par.nh + 16]! & 0xf0) === 0xe0) type = PACKET_MULTICAST;
    else if (family === 'ip6') type = PACKET_MULTICAST;
    else type = PACKET_BROADCAST;
    return (type === info.pkttype) !== info.invert;
  };
}
