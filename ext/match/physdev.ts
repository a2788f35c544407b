/**
 * physdev match: libxt_physdev.c, kernel xt_physdev.c: the bridge ports a
 * bridged packet enters/leaves by. Kernel checkentry refuses
 * `--physdev-out`/`--physdev-is-out` without a non-inverted
 * `--physdev-is-bridged` in a rule reachable from OUTPUT.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';

/** XT_PHYSDEV_OP_* bits. */
const PHYSDEV = { IN: 1, OUT: 2, BRIDGED: 4, ISIN: 8, ISOUT: 16 } as const;

/** struct xt_physdev_info, decoded. */
interface PhysdevData {
  /** Bridge port names; a trailing `+` is a prefix wildcard. */
  physindev: string;
  physoutdev: string;
  /** PHYSDEV bits given and inverted. */
  bitmask: number;
  invert: number;
}

/** xtables_parse_interface(): the name length limit. */
function iface(name: string, ctx: { warn(m: string): void }): string {
  if (name.length + 1 > 16) fail(`interface name \`${name}' must be shorter than IFNAMSIZ (15)`);
  if (!name.endsWith('+') && /[/ ]/.test(name)) {
    ctx.warn(`Warning: weird character in interface \`${name}' ('/' and ' ' are not allowed by the kernel).`);
  }
  return name;
}

export const physdev: MatchModule<PhysdevData> = {
  kind: 'match',
  name: 'physdev',
  options: [
    { name: 'physdev-in', arg: 1, invert: true },
    { name: 'physdev-out', arg: 1, invert: true },
    { name: 'physdev-is-in', arg: 0, invert: true },
    { name: 'physdev-is-out', arg: 0, invert: true },
    { name: 'physdev-is-bridged', arg: 0, invert: true },
  ],
  init: () => ({ physindev: '', physoutdev: '', bitmask: 0, invert: 0 }),
  parse(d, opt, arg, invert, ctx) {
    let bit: number;
    switch (opt) {
      case 'physdev-in':
        d.physindev = iface(arg!, ctx);
        bit = PHYSDEV.IN;
        break;
      case 'physdev-out':
        d.physoutdev = iface(arg!, ctx);
        bit = PHYSDEV.OUT;
        break;
      case 'physdev-is-in':
        bit = PHYSDEV.ISIN;
        break;
      case 'physdev-is-out':
        bit = PHYSDEV.ISOUT;
        break;
      default:
        bit = PHYSDEV.BRIDGED;
    }
    d.bitmask |= bit;
    if (invert) d.invert |= bit;
  },
  final(d) {
    if (d.bitmask === 0) fail('PHYSDEV: no physdev option specified', 'option');
  },
  save(d) {
    const item = (bit: number, text: string) => (d.bitmask & bit ? `${d.invert & bit ? ' !' : ''} ${text}` : '');
    return (
      item(PHYSDEV.ISIN, '--physdev-is-in') +
      item(PHYSDEV.IN, `--physdev-in ${d.physindev}`) +
      item(PHYSDEV.ISOUT, '--physdev-is-out') +
      item(PHYSDEV.OUT, `--physdev-out ${d.physoutdev}`) +
      item(PHYSDEV.BRIDGED, '--physdev-is-bridged')
    );
  },
  check(d, ctx) {
    if (
      d.bitmask & (PHYSDEV.OUT | PHYSDEV.ISOUT) &&
      (!(d.bitmask & PHYSDEV.BRIDGED) || d.invert & PHYSDEV.BRIDGED) &&
      ctx.hookMask & (1 << 3)
    ) {
      return 'xt_physdev: --physdev-out and --physdev-is-out only supported in the FORWARD and POSTROUTING chains with bridged traffic';
    }
    return undefined;
  },
  lower: 'needs the bridge ports of a bridged packet (br_netfilter nf_bridge_info)',
  reference: 'needs the bridge ports of a bridged packet (br_netfilter nf_bridge_info)',
};

