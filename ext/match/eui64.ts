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
import { be16, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { F_MAC_HEADER, M_FLAGS, M_MACOFF } from '../../vm/layout.js';

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
  ...compatMatchFaces(() => eui64Mt6),
};


// --- reference semantics (ip6t_eui64.c eui64_mt6, kernel 6.18) --------------------------
/**
 * eui64_mt6(): the source address's interface identifier is the modified
 * EUI-64 of the Ethernet source MAC (ff:fe in the middle, the U/L bit
 * flipped). Without a MAC header a later fragment hotdrops; a packet
 * without one never matches here (the kernel would read whatever lies
 * before the network header).
 */
const eui64Mt6: MatchFn = (par) => {
  const m = par.meta;
  const hasMac = (m[M_FLAGS]! & F_MAC_HEADER) !== 0 && m[M_MACOFF]! + 14 <= par.nh;
  if (!hasMac) {
    if (par.fragoff !== 0) par.hotdrop = true;
    return false;
  }
  const d = par.d;
  if (be16(d, par.nh - 2) !== 0x86dd || d[par.nh]! >> 4 !== 6) return false;
  const mac = m[M_MACOFF]! + 6;
  const id = par.nh + 16;
  return d[id] === (d[mac]! ^ 0x02) && d[id + 1] === d[mac + 1] && d[id + 2] === d[mac + 2] && d[id + 3] === 0xff
    && d[id + 4] === 0xfe && d[id + 5] === d[mac + 3] && d[id + 6] === d[mac + 4] && d[id + 7] === d[mac + 5];
};
