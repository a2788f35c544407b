/**
 * mac match: iptables `extensions/libxt_mac.c` (XTTYPE_ETHERMAC,
 * `xtopt_parse_ethermac`), kernel `net/netfilter/xt_mac.c`: the Ethernet
 * source address. The kernel allows it only from PREROUTING, INPUT and
 * FORWARD (`.hooks`), where the packet came in on an interface.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../util.js';
import { formatMac } from '../../core/addr.js';

export interface MacData {
  /** 6 bytes. */
  srcaddr: Uint8Array;
  invert: boolean;
}

/**
 * `xtopt_parse_ethermac()`: six `strtoul(.., 16)` fields separated by `:`,
 * each at most two characters long (an empty field is 0).
 */
function parseEthermac(s: string): Uint8Array {
  const out = new Uint8Array(6);
  let p = 0;
  for (let i = 0; i < 6; i++) {
    const r = strtoumax(s, 16, p);
    const end = r.end;
    const value = r.overflow ? 0xffn : r.value;
    if (end - p > 2) fail('Invalid MAC address specified.');
    if (i < 5 ? s[end] !== ':' : end !== s.length) fail('Invalid MAC address specified.');
    out[i] = Number(value & 0xffn);
    p = end + 1;
  }
  return out;
}

export const mac: MatchModule<MacData> = {
  kind: 'match',
  name: 'mac',
  options: [{ name: 'mac-source', arg: 1, invert: true }],
  hooks: (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD),
  init: () => ({ srcaddr: new Uint8Array(6), invert: false }),
  parse(d, _opt, arg, invert) {
    d.srcaddr = parseEthermac(arg!);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('mac-source')) fail('mac: option "--mac-source" must be specified', 'option');
  },
  save: (d) => `${d.invert ? ' !' : ''} --mac-source ${formatMac(d.srcaddr)}`,
};
