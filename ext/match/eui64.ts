/**
 * eui64 match: iptables `extensions/libip6t_eui64.c`, kernel
 * `net/ipv6/netfilter/ip6t_eui64.c`.
 *
 * No options: it compares the EUI-64 interface identifier of the IPv6
 * source address with the packet's source MAC address, so the kernel
 * allows it only where a MAC header exists (`.hooks` PREROUTING, INPUT,
 * FORWARD), IPv6 only.
 */
import { Hook } from '../../core/ast.js';
import type { MatchModule } from '../types.js';

/** eui64 has no match data. */
type Eui64Data = Record<string, never>;

export const eui64: MatchModule<Eui64Data> = {
  kind: 'match',
  name: 'eui64',
  family: 'ip6',
  hooks: (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD),
  options: [],
  init: () => ({}),
  parse() {},
  save: () => '',
  lower: 'needs the source MAC turned into an EUI-64 interface identifier (ip6t_eui64)',
  reference: 'needs the source MAC turned into an EUI-64 interface identifier (ip6t_eui64)',
};

