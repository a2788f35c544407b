/**
 * physdev match: libxt_physdev.c, kernel xt_physdev.c (physdev_mt): the
 * bridge ports a bridged packet enters/leaves by, from br_netfilter's
 * nf_bridge_info (the packet metadata's M_BRNF, M_PHYSINNAME,
 * M_PHYSOUTNAME; hooks/bridge/br-netfilter.ts fills them). Kernel
 * checkentry refuses `--physdev-out`/`--physdev-is-out` without a
 * non-inverted `--physdev-is-bridged` in a rule reachable from OUTPUT.
 * iptables-nft loads it through nft_compat (no nf_tables expression).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { compatMatchFaces } from '../compat.js';
import { ifnameDiffers, parseInterface, type MatchFn } from '../xt.js';
import { BRNF_PHYSOUT, BRNF_PRESENT, M_BRNF, M_PHYSINNAME, M_PHYSOUTNAME } from '../../vm/layout.js';

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
  pure: true,
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
  ...compatMatchFaces(physdevMt),
};

/** physdev_mt() */
function physdevMt(d: PhysdevData): MatchFn {
  const bm = d.bitmask;
  const inv = d.invert;
  const given = (bit: number) => (bm & bit) !== 0;
  const pin = parseInterface(d.physindev);
  const pout = parseInterface(d.physoutdev);
  // Not a bridged packet: a match only when every option given is inverted.
  const unbridged = (bm & ~inv) === 0;
  return (par) => {
    const brnf = par.meta[M_BRNF]!;
    if ((brnf & BRNF_PRESENT) === 0) return unbridged;
    const outdev = (brnf & BRNF_PHYSOUT) !== 0;
    // "This only makes sense in the FORWARD and POSTROUTING chains"
    if (given(PHYSDEV.BRIDGED) && outdev === ((inv & PHYSDEV.BRIDGED) !== 0)) return false;
    // physinif is set for every nf_bridge_info of a received frame
    const indev = true;
    if ((given(PHYSDEV.ISIN) && indev === ((inv & PHYSDEV.ISIN) !== 0)) || (given(PHYSDEV.ISOUT) && outdev === ((inv & PHYSDEV.ISOUT) !== 0))) return false;
    const mb = par.pkt.metaBytes;
    if (given(PHYSDEV.IN) && ifnameDiffers(mb, M_PHYSINNAME, pin.name, pin.mask) === ((inv & PHYSDEV.IN) === 0)) return false;
    if (!given(PHYSDEV.OUT)) return true;
    if (!outdev) return false;
    return ifnameDiffers(mb, M_PHYSOUTNAME, pout.name, pout.mask) === ((inv & PHYSDEV.OUT) !== 0);
  };
}

