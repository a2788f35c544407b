/**
 * arpreply target: iptables `extensions/libebt_arpreply.c`, kernel
 * `net/bridge/netfilter/ebt_arpreply.c`: answers an ARP request with
 * `--arpreply-mac` as the requested address, then returns
 * `--arpreply-target` (default DROP). nat PREROUTING only, `-p ARP`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtVerdict } from '../../../core/ebt-ast.js';
import { formatMac } from '../../../core/addr.js';
import { EBT_CONTINUE, EBT_DROP, NF_BR_PRE_ROUTING } from '../../../core/netfilter.js';
import { ebtHeader } from '../ref.js';
import { ebtVerdict, type EbtModule } from '../types.js';
import { macOption, parseVerdict } from '../values.js';

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
  lower: { rev: 0 },
  /**
   * ebt_arpreply_tg(): an IPv4-over-Ethernet ARP request is answered with
   * `--arpreply-mac` (arp_send() on the input device: recorded, the node
   * sends it) and the target's verdict returned; anything else continues;
   * a truncated header drops.
   */
  reference: {
    tg: (d) => {
      const v = ebtVerdict(d.target);
      return (p) => {
        const at = ebtHeader(p, 0, 8);
        if (at < 0) return EBT_DROP;
        const dd = p.d;
        const op = (dd[at + 6]! << 8) | dd[at + 7]!;
        const pro = (dd[at + 2]! << 8) | dd[at + 3]!;
        if (op !== 1 || dd[at + 4] !== 6 || pro !== 0x0800 || dd[at + 5] !== 4) return EBT_CONTINUE;
        if (ebtHeader(p, 8, 6) < 0 || ebtHeader(p, 14, 4) < 0 || ebtHeader(p, 24, 4) < 0) return EBT_DROP;
        if (p.env.recording) {
          p.env.actions.push({ kind: 'EFFECT', chain: p.chain, rule: p.rule, target: 'arpreply', what: `ARP reply ${formatMac(d.mac)}` });
        }
        return v;
      };
    },
  },
};
