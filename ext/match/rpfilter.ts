/**
 * rpfilter match: libxt_rpfilter.c, kernel ipt_rpfilter.c / ip6t_rpfilter.c:
 * reverse-path lookup of the source address. Kernel `.hooks` = PREROUTING;
 * checkentry accepts only the raw and mangle tables.
 */
import type { MatchModule } from '../types.js';
import type { Family } from '../../core/ast.js';
import { asNftCompat, lowerCompatMatch } from '../compat.js';
import type { MatchFn } from '../xt.js';
import { M_IIF, M_IIFTYPE, M_MARK, M_PKTTYPE, PACKET_LOOPBACK } from '../../vm/layout.js';
import { RTN_LOCAL, RTN_UNICAST } from '../../vm/expr/index.js';

/** XT_RPFILTER_* flags. */
interface RpfilterData {
  /** XT_RPFILTER_LOOSE: any interface may reach the source. */
  loose: boolean;
  /** XT_RPFILTER_VALID_MARK: use the packet mark in the lookup. */
  validmark: boolean;
  /** XT_RPFILTER_ACCEPT_LOCAL: accept local source addresses. */
  acceptLocal: boolean;
  /** XT_RPFILTER_INVERT: match packets that fail the check. */
  invert: boolean;
}

export const rpfilter: MatchModule<RpfilterData> = {
  kind: 'match',
  name: 'rpfilter',
  options: [
    { name: 'loose', arg: 0 },
    { name: 'validmark', arg: 0 },
    { name: 'accept-local', arg: 0 },
    { name: 'invert', arg: 0 },
  ],
  hooks: 1 << 0,
  init: () => ({ loose: false, validmark: false, acceptLocal: false, invert: false }),
  parse(d, opt) {
    if (opt === 'loose') d.loose = true;
    else if (opt === 'validmark') d.validmark = true;
    else if (opt === 'accept-local') d.acceptLocal = true;
    else d.invert = true;
  },
  save: (d) => (d.loose ? ' --loose' : '') + (d.validmark ? ' --validmark' : '') + (d.acceptLocal ? ' --accept-local' : '') + (d.invert ? ' --invert' : ''),
  check(_d, ctx) {
    if (ctx.table !== 'raw' && ctx.table !== 'mangle') {
      return `${ctx.family === 'ip' ? 'ipt' : 'ip6t'}_rpfilter: only valid in 'raw' or 'mangle' table, not '${ctx.table}'`;
    }
    return undefined;
  },
  lower: (c, m) => lowerCompatMatch(c, m, () => rpfilterMt(m.data as RpfilterData, c.family)),
  reference: (d, family, backend) => asNftCompat(rpfilterMt(d, family), backend),
};

// --- reference semantics (--engine reference; the VM runs it through nft_compat) ---
const ARPHRD_LOOPBACK = 772;
const RTN_ANYCAST = 4;

/**
 * rpfilter_mt() (net/ipv4/netfilter/ipt_rpfilter.c, net/ipv6/netfilter/
 * ip6t_rpfilter.c, kernel 6.18): a looped-back packet passes; an IPv4
 * packet from 0.0.0.0 to 255.255.255.255 or 224.0.0.0/24 (DHCP) and an
 * IPv6 packet from :: pass; otherwise the source is looked up as a
 * destination from lo (the packet's destination as source when it is a
 * unicast one, the mark with --validmark, the DSCP), through the node's
 * FIB and policy rules (XtEnv.fib): a unicast route whose nexthop uses the
 * input device passes (any device with --loose), a local route only with
 * --accept-local; IPv6 anycast and reject routes fail, other IPv6 routes
 * pass when their device is the input device. --invert inverts. Without a
 * node there is no FIB: every lookup fails.
 */
function rpfilterMt(info: RpfilterData, family: Family): MatchFn {
  const v6 = family === 'ip6';
  return (par) => {
    const m = par.meta;
    const d = par.d;
    const nh = par.nh;
    if (m[M_PKTTYPE] === PACKET_LOOPBACK || m[M_IIFTYPE] === ARPHRD_LOOPBACK) return !info.invert;
    const mark = info.validmark ? m[M_MARK]! : 0;
    const fib = par.env.fib;
    let r: number;
    if (!v6) {
      const d0 = d[nh + 16]!;
      const lbcast = (d0 & d[nh + 17]! & d[nh + 18]! & d[nh + 19]!) === 0xff;
      // ipv4_is_zeronet() (include/linux/in.h): addr == 0 since 5.3, not 0.0.0.0/8
      const sZero = (d[nh + 12]! | d[nh + 13]! | d[nh + 14]! | d[nh + 15]!) === 0;
      const dZero = (d0 | d[nh + 17]! | d[nh + 18]! | d[nh + 19]!) === 0;
      if (sZero && (lbcast || (d0 === 224 && d[nh + 17] === 0 && d[nh + 18] === 0))) return !info.invert;
      // rpfilter_get_saddr(): no source for a multicast, limited broadcast or zeronet destination
      const noSaddr = (d0 & 0xf0) === 0xe0 || lbcast || dZero;
      r = fib ? fib.rpLookup(d, 4, nh + 12, noSaddr ? -1 : nh + 16, mark, d[nh + 1]! & 0xfc, 0, m[M_IIF]!) : -1;
      if (r < 0) return info.invert;
      const type = r >> 1;
      if (type !== RTN_UNICAST && (type !== RTN_LOCAL || !info.acceptLocal)) return info.invert;
    } else {
      let any = true;
      for (let i = 8; i < 24; i++) if (d[nh + i] !== 0) any = false;
      if (any) return !info.invert;
      // ipv6_addr_type(daddr) & IPV6_ADDR_UNICAST: neither multicast nor ::
      let dAny = true;
      for (let i = 24; i < 40; i++) if (d[nh + i] !== 0) dAny = false;
      const unicast = d[nh + 24] !== 0xff && !dAny;
      r = fib ? fib.rpLookup(d, 16, nh + 8, unicast ? nh + 24 : -1, mark, 0, d[nh + 6]!, m[M_IIF]!) : -1;
      if (r < 0) return info.invert;
      const type = r >> 1;
      if (type === RTN_ANYCAST) return info.invert;
      if (type === RTN_LOCAL) return info.acceptLocal !== info.invert;
    }
    return ((r & 1) === 1 || info.loose) !== info.invert;
  };
}

