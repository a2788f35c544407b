/**
 * realm match (IPv4): iptables `extensions/libipt_realm.c`, kernel
 * `net/netfilter/xt_realm.c`: `(dst->tclassid & mask) == id`, the routing
 * realm of the packet's route. The kernel allows it from INPUT, FORWARD,
 * OUTPUT and POSTROUTING (`.hooks`), where the packet has a route.
 *
 * `--realm` takes `value[/mask]` (xtables_parse_val_mask: u32s in any C
 * base) or a name from /etc/iproute2/rt_realms; iptables-save prints the
 * name when the mask is full and the value has one. The realm comes from
 * the snapshot's routes and rules (`ip -j route` "flow", `ip -j rule`
 * "flow_from"/"flow_to").
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { MatchModule } from '../types.js';
import { parseValMask } from '../numbers.js';
import { compatMatchFaces } from '../compat.js';
import type { MatchFn } from '../xt.js';
import { M_RTCLASSID } from '../../vm/layout.js';

interface RealmData {
  id: number;
  mask: number;
  invert: boolean;
}

/** /etc/iproute2/rt_realms as iproute2 installs it. */
const REALM_NAMES: ReadonlyMap<string, number> = new Map([['cosmos', 0]]);

export const realm: MatchModule<RealmData> = {
  kind: 'match',
  name: 'realm',
  family: 'ip',
  hooks: (1 << Hook.POST_ROUTING) | (1 << Hook.FORWARD) | (1 << Hook.LOCAL_OUT) | (1 << Hook.LOCAL_IN),
  options: [{ name: 'realm', arg: 1, invert: true }],
  init: () => ({ id: 0, mask: 0, invert: false }),
  parse(d, _opt, arg, invert) {
    [d.id, d.mask] = parseValMask(arg!, 'realm', 'realm', REALM_NAMES);
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('realm')) fail('realm: option "--realm" must be specified', 'option');
  },
  save(d) {
    let v: string | undefined;
    if (d.mask !== 0xffffffff) v = `0x${d.id.toString(16)}/0x${d.mask.toString(16)}`;
    else for (const [name, id] of REALM_NAMES) if (id === d.id) v = name;
    return `${d.invert ? ' !' : ''} --realm ${v ?? `0x${d.id.toString(16)}`}`;
  },
  ...compatMatchFaces(realmMt),
};

// --- reference semantics (xt_realm.c realm_mt, kernel 6.18) -----------------------------
/*
 * (info->id == (dst->tclassid & info->mask)) ^ info->invert, the tclassid
 * the node's routing gave the packet (M_RTCLASSID: the snapshot's route and
 * rule realms as rt_set_nexthop() and the input route's local_input set them).
 * iptables-nft has no native expression for it and loads the xt match.
 */
function realmMt(info: RealmData): MatchFn {
  return (par) => (((par.meta[M_RTCLASSID]! & info.mask) >>> 0) === (info.id >>> 0)) !== info.invert;
}

