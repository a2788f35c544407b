/**
 * devgroup match: iptables `extensions/libxt_devgroup.c`
 * (`xtables_parse_val_mask` with the names of /etc/iproute2/group), kernel
 * `net/netfilter/xt_devgroup.c` (`devgroup_mt_checkentry`): the device
 * group of the input (`--src-group`) and/or output (`--dst-group`)
 * interface. The kernel allows --src-group only from PREROUTING, INPUT and
 * FORWARD, and --dst-group only from FORWARD, OUTPUT and POSTROUTING.
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { parseValMask } from '../numbers.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { M_IIFGROUP, M_OIFGROUP } from '../../vm/layout.js';

interface DevgroupSide {
  group: number;
  mask: number;
  invert: boolean;
}

interface DevgroupData {
  /** XT_DEVGROUP_MATCH_SRC (with XT_DEVGROUP_INVERT_SRC) */
  src: DevgroupSide | undefined;
  /** XT_DEVGROUP_MATCH_DST (with XT_DEVGROUP_INVERT_DST) */
  dst: DevgroupSide | undefined;
}

/**
 * /etc/iproute2/group as iproute2 installs it: iptables accepts these names
 * and iptables-save prints them for a group with the full mask.
 */
const DEVGROUP_NAMES: ReadonlyMap<string, number> = new Map([['default', 0]]);

function groupToString(g: DevgroupSide): string {
  if (g.mask !== 0xffffffff) return `0x${g.group.toString(16)}/0x${g.mask.toString(16)}`;
  for (const [name, id] of DEVGROUP_NAMES) if (id === g.group) return name;
  return `0x${g.group.toString(16)}`;
}

const IN_HOOKS = (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.FORWARD);
const OUT_HOOKS = (1 << Hook.FORWARD) | (1 << Hook.LOCAL_OUT) | (1 << Hook.POST_ROUTING);

export const devgroup: MatchModule<DevgroupData> = {
  kind: 'match',
  name: 'devgroup',
  options: [
    { name: 'src-group', arg: 1, invert: true },
    { name: 'dst-group', arg: 1, invert: true },
  ],
  init: () => ({ src: undefined, dst: undefined }),
  parse(d, opt, arg, invert) {
    const [group, mask] = parseValMask(arg!, 'devgroup', opt, DEVGROUP_NAMES);
    const side: DevgroupSide = { group, mask, invert };
    if (opt === 'src-group') d.src = side;
    else d.dst = side;
  },
  final(d) {
    if (!d.src && !d.dst) fail("devgroup match: You must specify either '--src-group' or '--dst-group'", 'option');
  },
  save(d) {
    let s = '';
    if (d.src) s += `${d.src.invert ? ' !' : ''} --src-group ${groupToString(d.src)}`;
    if (d.dst) s += `${d.dst.invert ? ' !' : ''} --dst-group ${groupToString(d.dst)}`;
    return s;
  },
  check(d, ctx) {
    if (d.src && ctx.hookMask & ~IN_HOOKS) return 'xt_devgroup: --src-group is only valid from PREROUTING, INPUT and FORWARD';
    if (d.dst && ctx.hookMask & ~OUT_HOOKS) return 'xt_devgroup: --dst-group is only valid from FORWARD, OUTPUT and POSTROUTING';
    return undefined;
  },
  ...compatMatchFaces(devgroupMt),
};


// --- reference semantics (xt_devgroup.c devgroup_mt, kernel 6.18) -----------------------
/** devgroup_mt(): the input / output device's group (from `ip -d link`) under the mask, XOR each inversion. */
function devgroupMt(info: DevgroupData): MatchFn {
  const test = (side: DevgroupSide | undefined, group: number) => !side || (((side.group ^ group) & side.mask) === 0) !== side.invert;
  return (par) => test(info.src, par.meta[M_IIFGROUP]!) && test(info.dst, par.meta[M_OIFGROUP]!);
}
