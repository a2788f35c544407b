/**
 * connlimit match: libxt_connlimit.c (revision 1), kernel xt_connlimit.c:
 * count the connections of the (masked) source or destination address and
 * compare with the limit.
 *
 * `--connlimit-upto n` stores the inverted form of `--connlimit-above n`
 * (XT_CONNLIMIT_INVERT); `!` swaps them, so `! --connlimit-upto n` saves as
 * `--connlimit-above n`. The mask defaults to the full address (32/128).
 * No table/hook restriction.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { prefixMask } from '../../core/addr.js';
import { parsePlenMask } from '../hostmask.js';
import type { Family } from '../../core/ast.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import { be32, type MatchFn } from '../xt.js';
import type { XtState } from '../xtstate.js';
import { M_CPU } from '../../vm/layout.js';
import { CONNCOUNT_MAX_KEYLEN, NfConncountData } from '../conncount.js';
import { NO_CT_TABLE } from '../../vm/ct-env.js';

/** struct xt_connlimit_info, decoded. */
interface ConnlimitData {
  limit: number;
  /** XT_CONNLIMIT_INVERT: match when count <= limit (`--connlimit-upto`). */
  upto: boolean;
  /** XT_CONNLIMIT_DADDR: group by destination address instead of source. */
  daddr: boolean;
  /** Grouping mask, 4 or 16 bytes. */
  mask: Uint8Array;
}

/** count_bits4/count_bits6: prefix length as iptables prints it (from the highest zero bit). */
function connlimitMaskBits(mask: Uint8Array): number {
  let bits = 0;
  for (let w = 0; w < mask.length / 4; w++) {
    let v = ~((mask[4 * w]! << 24) | (mask[4 * w + 1]! << 16) | (mask[4 * w + 2]! << 8) | mask[4 * w + 3]!) >>> 0;
    while (v !== 0) {
      bits++;
      v >>>= 1;
    }
  }
  return mask.length * 8 - bits;
}

export const connlimit: MatchModule<ConnlimitData> = {
  kind: 'match',
  name: 'connlimit',
  options: [
    { name: 'connlimit-upto', arg: 1, invert: true },
    { name: 'connlimit-above', arg: 1, invert: true },
    { name: 'connlimit-mask', arg: 1 },
    { name: 'connlimit-saddr', arg: 0 },
    { name: 'connlimit-daddr', arg: 0 },
  ],
  init: (ctx) => ({ limit: 0, upto: false, daddr: false, mask: prefixMask(ctx.family === 'ip' ? 32 : 128, ctx.family === 'ip' ? 4 : 16) }),
  parse(d, opt, arg, invert, ctx) {
    switch (opt) {
      case 'connlimit-upto':
      case 'connlimit-above':
        d.limit = parseUintOpt(arg!, 0, 0xffffffff, 'connlimit', opt);
        d.upto = (opt === 'connlimit-upto') !== invert;
        return;
      case 'connlimit-mask':
        d.mask = parsePlenMask(ctx.family, arg!, 'connlimit', opt);
        return;
      case 'connlimit-saddr':
        d.daddr = false;
        return;
      case 'connlimit-daddr':
        d.daddr = true;
        return;
    }
  },
  final(_d, seen) {
    if (seen.has('connlimit-upto') && seen.has('connlimit-above')) {
      fail('connlimit: option "--connlimit-upto" cannot be used together with "--connlimit-above".', 'option');
    }
    if (seen.has('connlimit-saddr') && seen.has('connlimit-daddr')) {
      fail('connlimit: option "--connlimit-saddr" cannot be used together with "--connlimit-daddr".', 'option');
    }
    if (!seen.has('connlimit-upto') && !seen.has('connlimit-above')) {
      fail('You must specify "--connlimit-above" or "--connlimit-upto".', 'option');
    }
  },
  save: (d) =>
    ` --connlimit-${d.upto ? 'upto' : 'above'} ${d.limit} --connlimit-mask ${connlimitMaskBits(d.mask)} --connlimit-${d.daddr ? 'daddr' : 'saddr'}`,
  lower: (c, m) => lowerCompatMatch(c, m, () => connlimitMt(m.data as ConnlimitData, c.family, c.xtEnv().xt), 1),
  reference: (d, family, backend, e) => asNftCompat(connlimitMt(d, family, e.xt!), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
/**
 * connlimit_mt() (net/netfilter/xt_connlimit.c, kernel 6.18): the key is
 * the packet's source (or destination) address from the IP header, masked,
 * and the zone id of its conntrack or template (the default zone's 0
 * without one); nf_conncount_count_skb counts the key's connections with
 * the packet's own added (ext/conncount.ts, the rule's own data as
 * connlimit_mt_check allocates it). No count (no tuple): hotdrop. Matches
 * when the count is above the limit, or (--connlimit-upto) not above it.
 */
function connlimitMt(info: ConnlimitData, family: Family, xt: XtState): MatchFn {
  const v4 = family === 'ip';
  const keylen = v4 ? 2 : 5;
  const data = xt.ruleObject(new NfConncountData(keylen));
  const key = new Int32Array(CONNCOUNT_MAX_KEYLEN);
  const mask = new Int32Array(4);
  for (let i = 0; i < info.mask.length / 4; i++) mask[i] = be32(info.mask, 4 * i) | 0;
  const limit = info.limit;
  return (par) => {
    const ct = par.env.ct ?? NO_CT_TABLE;
    const d = par.d;
    const at = par.nh + (v4 ? (info.daddr ? 16 : 12) : info.daddr ? 24 : 8);
    const words = v4 ? 1 : 4;
    for (let i = 0; i < words; i++) key[i] = (be32(d, at + 4 * i) & mask[i]!) | 0;
    key[words] = ct.packetZone(par.pkt) & 0xffff;
    const n = data.count(ct, par.pkt, key, par.env.xt.jiffies() >>> 0, par.meta[M_CPU]!);
    if (n === 0) {
      par.hotdrop = true;
      return false;
    }
    return n > limit !== info.upto;
  };
}

