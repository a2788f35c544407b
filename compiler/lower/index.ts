/**
 * The lowering table: match name → lowering function (one module per file,
 * as nftables' netlink_linearize / iptables-nft's nft.c dispatch). A match
 * that is not here is refused with "match X: semantics not modelled yet".
 */
import type { MatchNode } from '../../core/ast.js';
import type { LowerCtx } from './ctx.js';
import { lowerTcp, lowerUdp } from './tcpudp.js';
import { lowerIcmp } from './icmp.js';
import { lowerMultiport } from './multiport.js';
import { lowerConnmark, lowerMark } from './mark.js';
import { lowerLimit } from './limit.js';
import { lowerDscp, lowerEcn, lowerIprange, lowerLength, lowerMac, lowerPkttype, lowerTos, lowerTtl } from './header.js';
import { lowerAddrtype } from './addrtype.js';
import { lowerStatistic } from './statistic.js';
import { lowerConntrack } from './conntrack.js';

export type MatchLowering = (c: LowerCtx, m: MatchNode) => void;

export const MATCH_LOWERING: Readonly<Record<string, MatchLowering>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, MatchLowering>, {
    tcp: lowerTcp,
    udp: lowerUdp,
    icmp: lowerIcmp,
    icmp6: lowerIcmp,
    multiport: lowerMultiport,
    mark: lowerMark,
    connmark: lowerConnmark,
    limit: lowerLimit,
    iprange: lowerIprange,
    length: lowerLength,
    ttl: lowerTtl,
    hl: lowerTtl,
    tos: lowerTos,
    dscp: lowerDscp,
    ecn: lowerEcn,
    mac: lowerMac,
    pkttype: lowerPkttype,
    addrtype: lowerAddrtype,
    statistic: lowerStatistic,
    conntrack: lowerConntrack,
    state: lowerConntrack,
    comment: () => {},
  }),
);

export { LowerCtx } from './ctx.js';
export { type Backend } from '../../core/netfilter.js';
export { lowerIpPart } from './ippart.js';
export { lowerTarget } from './targets.js';
export { limitRate } from './limit.js';
