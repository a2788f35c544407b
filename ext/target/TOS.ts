/**
 * TOS target, revision 1: iptables `extensions/libxt_TOS.c`
 * (`tos_tg_parse`, `tos_tg_save`), kernel `net/netfilter/xt_DSCP.c`
 * (`tos_tg`, `.table` = mangle): `tos = (tos & ~mask) ^ value` on the IPv4
 * TOS byte or IPv6 traffic class. Every form is stored as the value/mask
 * pair and saved as `--set-tos value/mask`:
 *   --set-tos v[/m] → (v, m; 0xff by default, 0x3f for a symbolic name)
 *   --and-tos v → (0, ~v)   --or-tos v → (v, v)   --xor-tos v → (v, 0)
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { xtOptFcheck, xtOptFlags, type XtOptEntry } from '../xtopt.js';
import { parseTosMask, parseUintOpt } from '../numbers.js';
import { XT_CONTINUE, type TargetFn } from '../xt.js';
import { compatTargetFaces } from '../compat.js';
import { getDsfield, ipv4ChangeDsfield, ipv6ChangeDsfield } from '../dsfield.js';
import { NF_DROP } from '../../core/netfilter.js';
import type { Family } from '../../core/ast.js';

interface TosTargetData {
  value: number;
  mask: number;
}

const TABLE: readonly XtOptEntry[] = [
  { name: 'set-tos', id: 0, excl: 15 },
  { name: 'and-tos', id: 1, excl: 15 },
  { name: 'or-tos', id: 2, excl: 15 },
  { name: 'xor-tos', id: 3, excl: 15 },
];

const hex2 = (v: number): string => '0x' + v.toString(16).padStart(2, '0');

export const TOS: TargetModule<TosTargetData> = {
  kind: 'target',
  name: 'TOS',
  tables: ['mangle'],
  options: TABLE.map((o) => ({ name: o.name, arg: 1 as const })),
  init: () => ({ value: 0, mask: 0 }),
  parse(d, opt, arg) {
    if (opt === 'set-tos') {
      const r = parseTosMask(arg!, 0x3f);
      d.value = r.value;
      d.mask = r.mask;
      return;
    }
    const v = parseUintOpt(arg!, 0, 255, 'TOS', opt);
    if (opt === 'and-tos') {
      d.value = 0;
      d.mask = ~v & 0xff;
    } else if (opt === 'or-tos') {
      d.value = d.mask = v;
    } else {
      d.value = v;
      d.mask = 0;
    }
  },
  final(_d, seen) {
    const xflags = xtOptFlags(TABLE, seen);
    if (!xflags) fail('TOS: An action is required', 'option');
    xtOptFcheck('TOS', TABLE, xflags);
  },
  save: (d) => ` --set-tos ${hex2(d.value)}/${hex2(d.mask)}`,
  ...compatTargetFaces(tosTg, 1),
};


// --- reference semantics (xt_DSCP.c tos_tg / tos_tg6, kernel 6.18) ----------------------
/** tos_tg(): the DS field becomes (ds & ~mask) ^ value; IPv4 fixes its header checksum (ipv4_change_dsfield). */
function tosTg(info: TosTargetData, family: Family): TargetFn {
  return (par) => {
    const d = par.d;
    const orig = getDsfield(par, family);
    const nv = ((orig & ~info.mask) ^ info.value) & 0xff;
    if (orig !== nv) {
      // skb_ensure_writable(skb, sizeof(struct iphdr)), for IPv6 too
      if (par.end - par.nh < 20) return NF_DROP;
      if (family === 'ip') ipv4ChangeDsfield(d, par.nh, 0, nv);
      else ipv6ChangeDsfield(d, par.nh, 0, nv);
    }
    return XT_CONTINUE;
  };
}
