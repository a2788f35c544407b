/**
 * iprange match: net/netfilter/xt_iprange.c iprange_mt4() / iprange_mt6() (kernel 6.18).
 * Addresses compare as unsigned big-endian numbers, bounds inclusive.
 */
import type { IprangeData, IpRange } from '../../../ext/match/iprange.js';
import type { MatchFn } from '../../../ext/xt.js';

/** memcmp-order comparison of `len` bytes of the packet at `at` with `b`. */
function cmpAddr(d: Uint8Array, at: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) if (d[at + i] !== b[i]) return d[at + i]! - b[i]!;
  return 0;
}

function outside(d: Uint8Array, at: number, r: IpRange): boolean {
  return cmpAddr(d, at, r.min) < 0 || cmpAddr(d, at, r.max) > 0;
}

export function iprange(info: IprangeData, family: 'ip' | 'ip6'): MatchFn {
  const saddr = family === 'ip' ? 12 : 8;
  const daddr = family === 'ip' ? 16 : 24;
  return (par) => {
    if (info.src && outside(par.d, par.nh + saddr, info.src) !== info.src.invert) return false;
    if (info.dst && outside(par.d, par.nh + daddr, info.dst) !== info.dst.invert) return false;
    return true;
  };
}
