/**
 * mac match: net/netfilter/xt_mac.c mac_mt() (kernel 6.18).
 * skb->dev is the input device at the hooks mac may be used in
 * (PREROUTING, INPUT, FORWARD); it must be an Ethernet device with a MAC
 * header in front of the network header. Otherwise: no match, even inverted.
 */
import type { MacData } from '../../../ext/match/mac.js';
import { F_MAC_HEADER, M_FLAGS, M_IIF, M_IIFTYPE, M_MACOFF } from '../../../vm/layout.js';
import type { MatchFn } from '../../../ext/xt.js';

const ARPHRD_ETHER = 1;
const ETH_HLEN = 14;
const ETH_ALEN = 6;

export function mac(info: MacData): MatchFn {
  return (par) => {
    const m = par.meta;
    if (m[M_IIF] === 0 || m[M_IIFTYPE] !== ARPHRD_ETHER) return false;
    if (!(m[M_FLAGS]! & F_MAC_HEADER)) return false;
    const mh = m[M_MACOFF]!;
    if (mh + ETH_HLEN > par.nh) return false;
    let equal = true;
    for (let i = 0; i < ETH_ALEN; i++) if (par.d[mh + ETH_ALEN + i] !== info.srcaddr[i]) equal = false;
    return equal !== info.invert;
  };
}
