/**
 * udp match: net/netfilter/xt_tcpudp.c udp_mt() (kernel 6.18).
 */
import type { UdpData } from '../../../ext/match/tcpudp.js';
import { be16, headerPointer, type MatchFn } from '../../../ext/xt.js';
import { portMatch } from './tcp.js';

/** sizeof(struct udphdr) */
const UDPHDR_LEN = 8;

export function udp(info: UdpData): MatchFn {
  return (par) => {
    if (par.fragoff !== 0) return false;
    const uh = headerPointer(par, par.thoff, UDPHDR_LEN);
    if (uh < 0) {
      par.hotdrop = true;
      return false;
    }
    return (
      portMatch(info.spts[0], info.spts[1], be16(par.d, uh), info.invSpt) &&
      portMatch(info.dpts[0], info.dpts[1], be16(par.d, uh + 2), info.invDpt)
    );
  };
}
