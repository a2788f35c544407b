/**
 * The DS field (TOS / traffic class byte) as include/net/dsfield.h reads it:
 * ipv4_get_dsfield() is the TOS byte, ipv6_get_dsfield() the traffic class
 * spread over the first two header bytes.
 */
import type { XtActionParam } from '../../../ext/xt.js';

export function getDsfield(par: XtActionParam, family: 'ip' | 'ip6'): number {
  const d = par.d;
  const nh = par.nh;
  return family === 'ip' ? d[nh + 1]! : (((d[nh]! << 8) | d[nh + 1]!) >> 4) & 0xff;
}
