/**
 * NAT: bindings in the conntrack (nf_nat_core), packet rewriting and the
 * NAT hook function (nf_nat_proto), and the targets' address choices
 * (MASQUERADE, REDIRECT, NETMAP). How the hooks call them is described in
 * hooks/conntrack/index.ts.
 */
export {
  NfNat, NfNatRange2, nfNatRangeFrom, nfNatRangeSet, jhash2, reciprocalScale, hook2manip, NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_NETMAP, NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_OFFSET, NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_RANDOM_ALL,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED, NAT_DROP_WHY,
} from './core.js';
export type { NatRangeSource } from './core.js';
export { nfNatFn } from './proto.js';
export { inetSelectAddr, ipv6DevGetSaddr, nfNatMasqueradeIpv4, nfNatMasqueradeIpv6, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from './masquerade.js';
export type { Inet6Ifaddr, InIfaddr } from './masquerade.js';
export { nfNatRedirectIpv4, nfNatRedirectIpv6 } from './redirect.js';
export type { RedirectIfaddr6 } from './redirect.js';
export { nfNatNetmap } from './netmap.js';
