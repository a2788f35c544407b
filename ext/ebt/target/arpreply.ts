/**
 * arpreply target: iptables `extensions/libebt_arpreply.c`, kernel
 * `net/bridge/netfilter/ebt_arpreply.c`: answers an ARP request with
 * `--arpreply-mac` as the requested address, then returns
 * `--arpreply-target` (default DROP). nat PREROUTING only, `-p ARP`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtVerdict } from '../../../core/ebt-ast.js';
import { formatMac } from '../../../core/addr.js';
import { NF_BR_PRE_ROUTING } from '../../../core/netfilter.js';
import type { EbtModule } from '../types.js';
import { BRIDGE_LOWER_REFUSAL, BRIDGE_REFERENCE_REFUSAL, macOption, parseVerdict } from '../values.js';

interface ArpreplyData {
  mac: Uint8Array;
  target: EbtVerdict;
}

export const arpreply: EbtModule<ArpreplyData> = {
  kind: 'target',
  name: 'arpreply',
  options: [
    { name: 'arpreply-mac', arg: 1 },
    { name: 'arpreply-target', arg: 1 },
  ],
  tables: ['nat'],
  init: () => ({ mac: new Uint8Array(6), target: 'DROP' }),
  parse(d, opt, arg) {
    if (opt === 'arpreply-target') d.target = parseVerdict(arg!, opt);
    else d.mac = macOption(arg!, 'arpreply MAC');
  },
  final(_d, _seen, ctx) {
    const r = ctx.rule;
    if (r.anyProto || r.is8023 || r.ethproto !== 0x0806 || r.invProto) {
      fail('For ARP replying the protocol must be specified as ARP', 'check');
    }
    if (ctx.hook >= 0 && ctx.hook !== NF_BR_PRE_ROUTING) fail('Arpreply only allowed in PREROUTING', 'check');
  },
  save: (d) => `--arpreply-mac ${formatMac(d.mac)}${d.target === 'DROP' ? '' : ` --arpreply-target ${d.target}`}`,
  verdictOf: (d) => d.target,
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};
