/**
 * NETMAP target: iptables `extensions/libipt_NETMAP.c` and
 * `extensions/libip6t_NETMAP.c`; kernel `net/netfilter/xt_NETMAP.c`.
 *
 * `--to ADDR[/MASK]` (XTTYPE_HOSTMASK, mandatory) maps a whole network:
 * the kernel range is `[addr & mask, (addr & mask) | ~mask]` with
 * NF_NAT_RANGE_MAP_IPS. iptables-save prints the first address and the
 * prefix length (always, `/32` or `/128` included), or the dotted mask when
 * it is not contiguous.
 *
 * Kernel: `nat` table only, any of its hooks (PREROUTING, INPUT, OUTPUT,
 * POSTROUTING); checkentry needs MAP_IPS (IPv4: and one range).
 */
import { fail } from '../../core/errors.js';
import { Hook } from '../../core/ast.js';
import type { Family } from '../../core/ast.js';
import type { TargetModule } from '../types.js';
import { formatAddr, maskToCidr } from '../../core/addr.js';
import { parseHostMask } from '../hostmask.js';
import { NF_NAT_RANGE } from './NAT.js';
import { NF_ACCEPT } from '../../core/netfilter.js';
import { NAT_NETMAP, emitNat } from '../../vm/expr/index.js';
import type { TargetFn } from '../xt.js';

interface NetmapData {
  /** NF_NAT_RANGE_MAP_IPS once `--to` is given. */
  flags: number;
  /** First address of the mapped network (address & mask). */
  minAddr: Uint8Array;
  /** Last address (minAddr | ~mask). */
  maxAddr: Uint8Array;
}

const NAT_HOOKS = (1 << Hook.PRE_ROUTING) | (1 << Hook.LOCAL_IN) | (1 << Hook.LOCAL_OUT) | (1 << Hook.POST_ROUTING);

function makeNetmap(family: Family): TargetModule<NetmapData> {
  const bytes = family === 'ip' ? 4 : 16;
  return {
    kind: 'target',
    name: 'NETMAP',
    family,
    options: [{ name: 'to', arg: 1 }],
    tables: ['nat'],
    hooks: NAT_HOOKS,
    init: () => ({ flags: 0, minAddr: new Uint8Array(bytes), maxAddr: new Uint8Array(bytes) }),
    parse(d, _opt, arg) {
      const hm = parseHostMask(family, arg!, 'NETMAP', 'to');
      d.flags |= NF_NAT_RANGE.MAP_IPS;
      for (let i = 0; i < bytes; i++) {
        d.minAddr[i] = hm.addr[i]! & hm.mask[i]!;
        d.maxAddr[i] = d.minAddr[i]! | (~hm.mask[i]! & 0xff);
      }
    },
    final(_d, seen) {
      if (!seen.has('to')) fail('NETMAP: option "--to" must be specified', 'option');
    },
    save(d) {
      const mask = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) mask[i] = ~(d.minAddr[i]! ^ d.maxAddr[i]!) & 0xff;
      const bits = maskToCidr(mask);
      return ` --to ${formatAddr(family, d.minAddr)}/${bits >= 0 ? bits : formatAddr(family, mask)}`;
    },
    check(d) {
      if (!(d.flags & NF_NAT_RANGE.MAP_IPS)) return 'xt_NETMAP: bad MAP_IPS';
      return undefined;
    },
    lower: (c, t) => emitNat(c.b, NAT_NETMAP, { flags: t.data.flags, minAddr: t.data.minAddr, maxAddr: t.data.maxAddr }),
    reference: (d) => netmapTg(d, bytes),
  };
}

/**
 * netmap_tg4 / netmap_tg6 (net/netfilter/xt_NETMAP.c, kernel 6.18): the
 * address maps into the network keeping the host part, through the node's
 * NAT core (XtEnv.ct); without one the target accepts with no binding.
 */
function netmapTg(d: NetmapData, alen: number): TargetFn {
  return (par) => {
    const ct = par.env.ct;
    const v = ct === null ? NF_ACCEPT : ct.natTarget(par.pkt, par.hook, NAT_NETMAP, d.flags, d.minAddr, 0, d.maxAddr, 0, alen, 0, 0, 0);
    if (par.env.recording) par.env.actions.push({ kind: 'NAT', chain: par.chain, rule: par.rule, target: 'NETMAP', data: d, verdict: v });
    return v;
  };
}

export const NETMAP4 = makeNetmap('ip');
export const NETMAP6 = makeNetmap('ip6');

