/**
 * TCPOPTSTRIP target: iptables `extensions/libxt_TCPOPTSTRIP.c`, kernel
 * `net/netfilter/xt_TCPOPTSTRIP.c` (`struct xt_tcpoptstrip_target_info`, a
 * 256-bit map of TCP option kinds to remove).
 *
 * `--strip-options LIST`: comma-separated names (wscale, mss,
 * sack-permitted, sack, timestamp, md5) or numbers 2..255; each at most
 * once. Saved numerically in ascending order (` --strip-options 2,5,9`),
 * nothing when the map is empty. Kernel: `mangle` table, `-p tcp`.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { strtoulWhole } from '../numbers.js';

/** tcp_optionmap[] */
const TCP_OPTION_NAMES: ReadonlyMap<string, number> = new Map([
  ['wscale', 3],
  ['mss', 2],
  ['sack-permitted', 4],
  ['sack', 5],
  ['timestamp', 8],
  ['md5', 19],
]);

interface TcpoptstripData {
  /** The option kinds to strip, ascending. */
  options: number[];
}

export const TCPOPTSTRIP: TargetModule<TcpoptstripData> = {
  kind: 'target',
  name: 'TCPOPTSTRIP',
  tables: ['mangle'],
  proto: 6,
  options: [{ name: 'strip-options', arg: 1 }],
  init: () => ({ options: [] }),
  parse(d, _opt, arg) {
    for (const w of arg!.split(',')) {
      let option = TCP_OPTION_NAMES.get(w) ?? 0;
      if (option === 0) {
        const v = strtoulWhole(w, 0n, 255n);
        if (v === undefined) fail(`Bad TCP option value "${w}"`);
        option = Number(v);
      }
      if (option < 2) fail('Option value may not be 0 or 1');
      if (d.options.includes(option)) fail(`Option "${w}" already specified`);
      d.options.push(option);
    }
    d.options.sort((a, b) => a - b);
  },
  save: (d) => (d.options.length ? ` --strip-options ${d.options.join(',')}` : ''),
  lower: 'needs packet rewriting: the TCP options and checksum',
  reference: 'needs packet rewriting: the TCP options and checksum',
};

