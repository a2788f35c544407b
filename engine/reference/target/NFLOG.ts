/**
 * NFLOG target: net/netfilter/xt_NFLOG.c nflog_tg() (kernel 6.18): hands the
 * packet to nfnetlink_log and continues; recorded as an event.
 */
import type { NflogData } from '../../../ext/target/NFLOG.js';
import { XT_CONTINUE, type TargetFn } from '../../../ext/xt.js';

export function NFLOG(info: NflogData): TargetFn {
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'NFLOG', chain: par.chain, rule: par.rule, group: info.group, prefix: info.prefix });
    return XT_CONTINUE;
  };
}
