/**
 * LOG target: net/netfilter/xt_LOG.c log_tg() (kernel 6.18): logs and
 * continues. The reference records the event (level, prefix, flags); the
 * syslog line itself is not produced here.
 */
import type { LogData } from '../../../ext/target/LOG.js';
import { XT_CONTINUE, type TargetFn } from '../../../ext/xt.js';

export function LOG(info: LogData): TargetFn {
  return (par) => {
    if (par.env.recording) par.env.actions.push({ kind: 'LOG', chain: par.chain, rule: par.rule, level: info.level, prefix: info.prefix, logflags: info.logflags });
    return XT_CONTINUE;
  };
}
