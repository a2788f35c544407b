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
import { ebtVerdict, type EbtModule, type EbtParseContext } from '../types.js';
import { EBT_DROP } from '../../../core/netfilter.js';
import { M_BRIINAME, M_IIFNAME, M_PKTTYPE, PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST } from '../../../vm/layout.js';
import { ETH_P_ARP } from '../../../vm/packet.js';
import { ebtHeader, macEqual, metaName } from '../ref.js';
import { macOption, parseVerdict } from '../values.js';

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
  lower: { rev: 0 },
  /**
   * ebt_dnat_tg(): the new destination, and skb->pkt_type as the new address
   * makes it (broadcast / multicast, or host when it is the address of the
   * bridge (PREROUTING) or of the input device (BROUTING); LOCAL_OUT leaves it).
   */
  reference: {
    tg: (d, env) => {
      const mac = d.mac!;
      const v = ebtVerdict(d.target);
      return (p) => {
        p.d.set(mac, 0);
        if (mac[0]! & 1) {
          p.meta[M_PKTTYPE] = mac.every((b) => b === 0xff) ? PACKET_BROADCAST : PACKET_MULTICAST;
          return v;
        }
        const dev = p.hook === NF_BR_BROUTING ? metaName(p, M_IIFNAME) : p.hook === NF_BR_PRE_ROUTING ? metaName(p, M_BRIINAME) : '';
        if (dev === '') return v;
        const own = env.macOf(dev);
        p.meta[M_PKTTYPE] = own && macEqual(mac, 0, own) ? PACKET_HOST : PACKET_OTHERHOST;
        return v;
      };
    },
  },
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
  lower: { rev: 0 },
  /**
   * ebt_snat_tg(): the new source; with --snat-arp, the ARP sender hardware
   * address too when the ARP header says 6-byte addresses (a short ARP
   * header drops).
   */
  reference: {
    tg: (d) => {
      const mac = d.mac!;
      const v = ebtVerdict(d.target);
      return (p) => {
        p.d.set(mac, 6);
        if (d.arp && p.nh >= 2 && ((p.d[p.nh - 2]! << 8) | p.d[p.nh - 1]!) === ETH_P_ARP) {
          const at = ebtHeader(p, 0, 8);
          if (at < 0) return EBT_DROP;
          if (p.d[at + 4] !== 6) return v;
          if (ebtHeader(p, 8, 6) < 0) return EBT_DROP;
          p.d.set(mac, at + 8);
        }
        return v;
      };
    },
  },
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
  lower: { rev: 0 },
  /** ebt_redirect_tg(): the destination becomes the bridge's address (the input device's in BROUTING), pkt_type host. */
  reference: {
    tg: (d, env) => {
      const v = ebtVerdict(d.target);
      return (p) => {
        const own = env.macOf(p.hook === NF_BR_BROUTING ? metaName(p, M_IIFNAME) : metaName(p, M_BRIINAME));
        if (own) p.d.set(own, 0);
        p.meta[M_PKTTYPE] = PACKET_HOST;
        return v;
      };
    },
  },
};
