/**
 * TRACE target: iptables `extensions/libxt_TRACE.c` (no options); kernel
 * `net/netfilter/xt_TRACE.c`: `.table = "raw"`, sets `skb->nf_trace` and
 * continues (XT_CONTINUE). iptables-save prints plain `-j TRACE`.
 */
import type { TargetModule } from '../types.js';

/** TRACE carries no data. */
export type TraceData = Record<string, never>;

export const TRACE: TargetModule<TraceData> = {
  kind: 'target',
  name: 'TRACE',
  options: [],
  tables: ['raw'],
  init: () => ({}),
  parse() {},
  save: () => '',
};
