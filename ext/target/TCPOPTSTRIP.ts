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
import { XT_CONTINUE, headerPointer, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { inetProtoCsumReplace4 } from '../dsfield.js';
import { ipv6SkipExthdr, tcpOptlen } from './TCPMSS.js';
import { NF_DROP } from '../../core/netfilter.js';
import type { Family } from '../../core/ast.js';

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
  ...compatTargetFaces(tcpoptstripTg),
};


// --- reference semantics (xt_TCPOPTSTRIP.c, kernel 6.18) --------------------------------
/**
 * tcpoptstrip_mangle_packet(): each listed option is overwritten with NOPs,
 * byte by byte with the TCP checksum updated for each (as 16-bit words at
 * their even/odd position). A later fragment is left alone; a TCP header
 * cut short, or one whose options reach past the packet, drops it.
 */
function tcpoptstripTg(info: TcpoptstripData, family: Family): TargetFn {
  const strip = new Uint8Array(256);
  for (const o of info.options) strip[o] = 1;
  return (par) => {
    const d = par.d;
    const tcphoff = family === 'ip' ? (d[par.nh]! & 0x0f) * 4 : ipv6SkipExthdr(par);
    if (tcphoff < 0) return NF_DROP;
    if (par.fragoff !== 0) return XT_CONTINUE;
    const th = headerPointer(par, tcphoff, 20);
    if (th < 0) return NF_DROP;
    const tcpHdrlen = (d[th + 12]! >> 4) * 4;
    if (tcpHdrlen < 20) return NF_DROP;
    if (par.end - par.nh < tcphoff + tcpHdrlen) return NF_DROP;
    for (let i = 20, optl = 0; i < tcpHdrlen - 1; i += optl) {
      optl = tcpOptlen(d, th + i);
      if (i + optl > tcpHdrlen) break;
      if (!strip[d[th + i]!]) continue;
      for (let j = 0; j < optl; j++) {
        let o = d[th + i + j]!;
        let n = 1;
        if ((i + j) % 2 === 0) {
          o <<= 8;
          n <<= 8;
        }
        inetProtoCsumReplace4(d, th + 16, o, n);
      }
      d.fill(1, th + i, th + i + optl);
    }
    return XT_CONTINUE;
  };
}
