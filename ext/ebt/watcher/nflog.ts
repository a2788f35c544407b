/**
 * nflog watcher: iptables `extensions/libebt_nflog.c`, kernel
 * `net/bridge/netfilter/ebt_nflog.c`: passes the frame to nfnetlink_log
 * group `--nflog-group` and lets it go on.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { wholeNumber } from '../values.js';

/** EBT_NFLOG_PREFIX_SIZE. */
const PREFIX_SIZE = 64;

interface EbtNflogData {
  group: number;
  prefix: string;
  len: number;
  threshold: number;
}

export const nflog: EbtModule<EbtNflogData> = {
  kind: 'watcher',
  name: 'nflog',
  options: [
    { name: 'nflog-group', arg: 1 },
    { name: 'nflog-prefix', arg: 1 },
    { name: 'nflog-range', arg: 1 },
    { name: 'nflog-threshold', arg: 1 },
    { name: 'nflog', arg: 0 },
  ],
  init: () => ({ group: 1, prefix: '', len: 0, threshold: 1 }),
  parse(d, opt, arg) {
    const num = (): number => {
      const v = wholeNumber(arg!, 10);
      if (v === undefined || v === 0 && opt === 'nflog-range') fail(`--${opt} must be a number!`);
      return v;
    };
    switch (opt) {
      case 'nflog-group':
        d.group = num();
        return;
      case 'nflog-prefix':
        if (Buffer.byteLength(arg!) > PREFIX_SIZE - 1) fail('Prefix too long for nflog-prefix');
        d.prefix = arg!;
        return;
      case 'nflog-range':
        d.len = num();
        return;
      case 'nflog-threshold':
        d.threshold = num();
        return;
      default:
    }
  },
  save(d) {
    let s = '';
    if (d.prefix) s += ` --nflog-prefix "${d.prefix}"`;
    s += ` --nflog-group ${d.group}`;
    if (d.len) s += ` --nflog-range ${d.len}`;
    if (d.threshold !== 1) s += ` --nflog-threshold ${d.threshold}`;
    return s;
  },
  lower: { rev: 0 },
  // ebt_nflog_tg(): recorded, the packet goes on
  reference: {
    mt: (d) => (p) => {
      if (p.env.recording) p.env.actions.push({ kind: 'NFLOG', chain: p.chain, rule: p.rule, group: d.group, prefix: d.prefix });
      return true;
    },
  },
};
