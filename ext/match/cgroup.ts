/**
 * cgroup match: iptables `extensions/libxt_cgroup.c` (revision 2, the one
 * iptables 1.8.9 loads), kernel `net/netfilter/xt_cgroup.c`
 * (`cgroup_mt_check_v2`, `.hooks` LOCAL_IN, LOCAL_OUT and POSTROUTING):
 * the cgroup v2 path (`--path`, matched recursively) or the net_cls class id
 * (`--cgroup`) of the packet's socket. The kernel refuses a rule giving both
 * or neither, and a path that does not exist on the node (nfvm cannot
 * check that: the snapshot holds no cgroup tree). iptables-save prints
 * `--path` as a saved string and `--cgroup` in decimal, each after its `!`.
 */
import { Hook } from '../../core/ast.js';
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { saveString } from '../save.js';

interface CgroupData {
  /** --path (has_path, invert_path). */
  path: string | undefined;
  invPath: boolean;
  /** --cgroup (has_classid, invert_classid). */
  classid: number | undefined;
  invClassid: boolean;
}

/** XT_CGROUP_PATH_MAX of revision 2. */
const PATH_MAX = 512;
const NEEDS = 'needs the cgroup of the packet\'s socket (sk_cgroup_ptr / net_cls classid): the snapshot holds no sockets\' cgroups';

export const cgroup: MatchModule<CgroupData> = {
  kind: 'match',
  name: 'cgroup',
  hooks: (1 << Hook.LOCAL_IN) | (1 << Hook.LOCAL_OUT) | (1 << Hook.POST_ROUTING),
  options: [
    { name: 'path', arg: 1, invert: true },
    { name: 'cgroup', arg: 1, invert: true },
  ],
  init: () => ({ path: undefined, invPath: false, classid: undefined, invClassid: false }),
  parse(d, opt, arg, invert) {
    if (opt === 'path') {
      if (Buffer.byteLength(arg!) >= PATH_MAX) fail(`cgroup: argument to "--path" is too long (max ${PATH_MAX - 1})`);
      d.path = arg!;
      d.invPath = invert;
    } else {
      d.classid = parseUintOpt(arg!, 0, 0xffffffff, 'cgroup', opt);
      d.invClassid = invert;
    }
  },
  save(d) {
    let s = '';
    if (d.path !== undefined) s += ` ${d.invPath ? '! ' : ''}--path ${saveString(d.path)}`;
    if (d.classid !== undefined) s += ` ${d.invClassid ? '! ' : ''}--cgroup ${d.classid}`;
    return s;
  },
  check(d) {
    if (d.path !== undefined && d.classid !== undefined) return 'xt_cgroup: both path and classid specified (EINVAL)';
    if (d.path === undefined && d.classid === undefined) return 'xt_cgroup: no path or classid specified (EINVAL)';
    return undefined;
  },
  lower: NEEDS,
  reference: NEEDS,
};
