/**
 * TEE target: iptables `extensions/libxt_TEE.c` (revision 1), kernel
 * `net/netfilter/xt_TEE.c` (`struct xt_tee_tginfo`): clone the packet and
 * route the copy via a gateway.
 *
 *  - `--gateway ADDR` (XTTYPE_HOST, mandatory): an address of the rule's family;
 *  - `--oif NAME`: output interface (char[16]: longer names are cut to 15).
 *
 * Saved as ` --gateway ADDR[ --oif NAME]`. No table/hook restriction in the
 * kernel; checkentry refuses the all-zero gateway and an unterminated oif.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { formatAddr } from '../../core/addr.js';
import { parseHost } from '../hostmask.js';

interface TeeData {
  /** Gateway address bytes (4 or 16), undefined until given. */
  gw: Uint8Array | undefined;
  /** Output interface name ('' for none), at most 15 bytes. */
  oif: string;
}

const IFNAMSIZ = 16;

export const TEE: TargetModule<TeeData> = {
  kind: 'target',
  name: 'TEE',
  options: [
    { name: 'gateway', arg: 1 },
    { name: 'oif', arg: 1 },
  ],
  init: () => ({ gw: undefined, oif: '' }),
  parse(d, opt, arg, _inv, ctx) {
    if (opt === 'gateway') d.gw = parseHost(ctx.family, arg!);
    else d.oif = Buffer.from(arg!, 'utf8').subarray(0, IFNAMSIZ - 1).toString('utf8');
  },
  final(_d, seen) {
    if (!seen.has('gateway')) fail('TEE: option "--gateway" must be specified', 'option');
  },
  save(d, ctx) {
    let s = ` --gateway ${formatAddr(ctx.family, d.gw ?? new Uint8Array(ctx.family === 'ip' ? 4 : 16))}`;
    if (d.oif !== '') s += ` --oif ${d.oif}`;
    return s;
  },
  check(d) {
    if (!d.gw || d.gw.every((b) => b === 0)) return 'xt_TEE: gateway address is all zeros';
    return undefined;
  },
  lower: 'sends a clone out to the gateway (nf_dup_ipv4/ipv6): the engines cannot emit a second packet, and what becomes of the clone is the gateway\'s',
  reference: 'sends a clone out to the gateway (nf_dup_ipv4/ipv6): the engines cannot emit a second packet, and what becomes of the clone is the gateway\'s',
};

