/**
 * The MAC NAT targets: iptables `extensions/libebt_dnat.c`,
 * `libebt_snat.c`, `libebt_redirect.c`, kernel
 * `net/bridge/netfilter/ebt_dnat.c`, `ebt_snat.c`, `ebt_redirect.c`:
 * rewrite the destination MAC (nat PREROUTING/OUTPUT, broute), the source
 * MAC (nat POSTROUTING; with --snat-arp the ARP sender address too), or
 * set the destination to the input bridge port's own address (nat
 * PREROUTING, broute), then return their `--*-target` (default ACCEPT).
 */
import { fail } from '../../../core/errors.js';
import type { EbtVerdict } from '../../../core/ebt-ast.js';
import { formatMac } from '../../../core/addr.js';
import { NF_BR_BROUTING, NF_BR_LOCAL_OUT, NF_BR_POST_ROUTING, NF_BR_PRE_ROUTING } from '../../../core/netfilter.js';
import type { EbtModule, EbtParseContext } from '../types.js';
import { BRIDGE_LOWER_REFUSAL, BRIDGE_REFERENCE_REFUSAL, macOption, parseVerdict } from '../values.js';

interface MacNatData {
  mac: Uint8Array | undefined;
  target: EbtVerdict;
  /** snat --snat-arp. */
  arp: boolean;
}

/** The kernel's table/hook check of a builtin chain (user chains are checked where they are reached). */
function hookCheck(ctx: EbtParseContext, allowed: Partial<Record<string, number>>): string | undefined {
  if (ctx.hook < 0) return undefined;
  const mask = allowed[ctx.table];
  return mask !== undefined && mask & (1 << ctx.hook) ? undefined : 'Invalid argument';
}

export const dnat: EbtModule<MacNatData> = {
  kind: 'target',
  name: 'dnat',
  options: [
    { name: 'to-destination', arg: 1 },
    { name: 'to-dst', arg: 1 },
    { name: 'dnat-target', arg: 1 },
  ],
  tables: ['nat', 'broute'],
  init: () => ({ mac: undefined, target: 'ACCEPT', arp: false }),
  parse(d, opt, arg) {
    if (opt === 'dnat-target') d.target = parseVerdict(arg!, opt);
    else d.mac = macOption(arg!, 'destination MAC');
  },
  final(d) {
    if (!d.mac) fail('You must specify a value for --to-destination', 'option');
  },
  save: (d) => `--to-dst ${formatMac(d.mac!)} --dnat-target ${d.target}`,
  check: (_d, ctx) =>
    hookCheck(ctx, { nat: (1 << NF_BR_PRE_ROUTING) | (1 << NF_BR_LOCAL_OUT), broute: 1 << NF_BR_BROUTING }),
  verdictOf: (d) => d.target,
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};

export const snat: EbtModule<MacNatData> = {
  kind: 'target',
  name: 'snat',
  options: [
    { name: 'to-source', arg: 1 },
    { name: 'to-src', arg: 1 },
    { name: 'snat-target', arg: 1 },
    { name: 'snat-arp', arg: 0 },
  ],
  tables: ['nat'],
  init: () => ({ mac: undefined, target: 'ACCEPT', arp: false }),
  parse(d, opt, arg) {
    if (opt === 'snat-target') d.target = parseVerdict(arg!, opt);
    else if (opt === 'snat-arp') d.arp = true;
    else d.mac = macOption(arg!, 'source MAC');
  },
  final(d) {
    if (!d.mac) fail('You must specify a value for --to-source', 'option');
  },
  save: (d) => `--to-src ${formatMac(d.mac!)}${d.arp ? ' --snat-arp' : ''} --snat-target ${d.target}`,
  check: (_d, ctx) => hookCheck(ctx, { nat: 1 << NF_BR_POST_ROUTING }),
  verdictOf: (d) => d.target,
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};

export const redirect: EbtModule<MacNatData> = {
  kind: 'target',
  name: 'redirect',
  options: [{ name: 'redirect-target', arg: 1 }],
  tables: ['nat', 'broute'],
  init: () => ({ mac: undefined, target: 'ACCEPT', arp: false }),
  parse(d, _opt, arg) {
    d.target = parseVerdict(arg!, 'redirect-target');
  },
  save: (d) => (d.target === 'ACCEPT' ? '' : `--redirect-target ${d.target}`),
  check: (_d, ctx) => hookCheck(ctx, { nat: 1 << NF_BR_PRE_ROUTING, broute: 1 << NF_BR_BROUTING }),
  verdictOf: (d) => d.target,
  lower: BRIDGE_LOWER_REFUSAL,
  reference: BRIDGE_REFERENCE_REFUSAL,
};
