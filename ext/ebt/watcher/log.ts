/**
 * log watcher: iptables `extensions/libebt_log.c`, kernel
 * `net/bridge/netfilter/ebt_log.c`: logs the frame (and its IP, IPv6 or
 * ARP header with --log-ip/--log-ip6/--log-arp) and lets it go on.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { wholeNumber } from '../values.js';

/** eight_priority[] of libebt_log.c, indexed by level. */
const LEVELS = ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'];
/** sizeof(ebt_log_info.prefix) (EBT_LOG_PREFIX_SIZE). */
const PREFIX_SIZE = 30;
const EBT_LOG_IP = 1;
const EBT_LOG_ARP = 2;
const EBT_LOG_IP6 = 8;

interface EbtLogData {
  level: number;
  prefix: string;
  bitmask: number;
}

export const log: EbtModule<EbtLogData> = {
  kind: 'watcher',
  name: 'log',
  options: [
    { name: 'log-prefix', arg: 1 },
    { name: 'log-level', arg: 1 },
    { name: 'log-arp', arg: 0 },
    { name: 'log-ip', arg: 0 },
    { name: 'log', arg: 0 },
    { name: 'log-ip6', arg: 0 },
  ],
  init: () => ({ level: 5, prefix: '', bitmask: 0 }),
  parse(d, opt, arg) {
    switch (opt) {
      case 'log-prefix':
        if (Buffer.byteLength(arg!) > PREFIX_SIZE - 1) fail('Prefix too long');
        if (arg!.includes('"')) fail('Use of \\" is not allowed in the prefix');
        d.prefix = arg!;
        return;
      case 'log-level': {
        const n = wholeNumber(arg!, 16);
        const v = n !== undefined && n <= 7 ? n : LEVELS.indexOf(arg!);
        if (v < 0) fail('Problem with the log-level');
        d.level = v;
        return;
      }
      case 'log-arp':
        d.bitmask |= EBT_LOG_ARP;
        return;
      case 'log-ip':
        d.bitmask |= EBT_LOG_IP;
        return;
      case 'log-ip6':
        d.bitmask |= EBT_LOG_IP6;
        return;
      default:
    }
  },
  save(d) {
    let s = ` --log-level ${LEVELS[d.level]}`;
    if (d.prefix) s += ` --log-prefix "${d.prefix}"`;
    if (d.bitmask & EBT_LOG_IP) s += ' --log-ip';
    if (d.bitmask & EBT_LOG_ARP) s += ' --log-arp';
    if (d.bitmask & EBT_LOG_IP6) s += ' --log-ip6';
    return s;
  },
  lower: { rev: 0 },
  // ebt_log_tg(): the log line is the node's to print; the watcher records it
  reference: {
    mt: (d) => (p) => {
      if (p.env.recording) p.env.actions.push({ kind: 'LOG', chain: p.chain, rule: p.rule, level: d.level, prefix: d.prefix, logflags: d.bitmask });
      return true;
    },
  },
};
