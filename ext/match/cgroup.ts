/**
 * cgroup match: iptables `extensions/libxt_cgroup.c` (revision 2, the one
 * iptables 1.8.9 loads), kernel `net/netfilter/xt_cgroup.c`
 * (`cgroup_mt_check_v2`, `.hooks` LOCAL_IN, LOCAL_OUT and POSTROUTING):
 * the cgroup v2 path (`--path`, matched recursively) or the net_cls class id
 * (`--cgroup`) of the packet's socket. The kernel refuses a rule giving both
 * or neither, and a path that does not exist on the node
 * (cgroup_get_from_path: ENOENT, or ENOTDIR for a file), checked against
 * the snapshot's cgroup2.txt when it has one (any path otherwise).
 * iptables-save prints `--path` as a saved string and `--cgroup` in
 * decimal, each after its `!`. iptables-nft loads it as a compat match.
 */
import { Hook } from '../../core/ast.js';
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { M_SK, M_SK_CGROUP, M_SK_CLASSID, M_SK_INDEX, SK_ASSIGNED, SK_NONE } from '../../vm/layout.js';
import { cgroupCanonical, cgroupId, cgroupIsDescendant } from '../../vm/cgroup.js';
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
  check(d, ctx) {
    if (d.path !== undefined && d.classid !== undefined) return 'xt_cgroup: both path and classid specified (EINVAL)';
    if (d.path === undefined && d.classid === undefined) return 'xt_cgroup: no path or classid specified (EINVAL)';
    const tree = ctx.objects?.cgroups;
    if (d.path !== undefined && tree && !tree.has(cgroupCanonical(d.path))) return 'xt_cgroup: invalid path, errno=-2 (EINVAL)';
    return undefined;
  },
  ...compatMatchFaces(cgroupMt),
};

/**
 * cgroup_mt_v1() (revision 2 shares it) over skb->sk as the packet carries
 * it: no socket, or not sk_fullsock() (a TIME-WAIT socket TPROXY gave the
 * packet) → false; with a path, cgroup_is_descendant(sock_cgroup_ptr(),
 * ancestor) ^ invert_path; otherwise (classid == sock_cgroup_classid()) ^
 * invert_classid. The model has one network namespace: the socket's is
 * always the rule's (the net_eq() test).
 */
function cgroupMt(d: CgroupData): MatchFn {
  const path = d.path !== undefined;
  const ancestor = path ? cgroupId(d.path!) : 0;
  const inv = path ? d.invPath : d.invClassid;
  const classid = path ? 0 : d.classid! | 0;
  return (par) => {
    const m = par.meta;
    const sk = m[M_SK]!;
    if (sk === SK_NONE) return false;
    if (sk === SK_ASSIGNED && !(par.env.sockets?.byIndex(m[M_SK_INDEX]!)?.full ?? false)) return false;
    return (path ? cgroupIsDescendant(m[M_SK_CGROUP]!, ancestor) : m[M_SK_CLASSID] === classid) !== inv;
  };
}
