/**
 * dscp match: net/netfilter/xt_dscp.c dscp_mt() / dscp_mt6() (kernel 6.18).
 */
import type { DscpData } from '../../../ext/match/dscp.js';
import type { MatchFn } from '../../../ext/xt.js';
import { getDsfield } from './dsfield.js';

/** XT_DSCP_SHIFT */
const DSCP_SHIFT = 2;

export function dscp(info: DscpData, family: 'ip' | 'ip6'): MatchFn {
  return (par) => (getDsfield(par, family) >> DSCP_SHIFT === info.dscp) !== info.invert;
}
