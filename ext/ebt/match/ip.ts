/**
 * ip and ip6 matches: iptables `extensions/libebt_ip.c` and
 * `extensions/libebt_ip6.c`, kernel `net/bridge/netfilter/ebt_ip.c` and
 * `ebt_ip6.c`: fields of the IPv4/IPv6 header and the ports or ICMP type
 * behind it; the rule needs `-p IPv4` / `-p IPv6`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule } from '../types.js';
import { ICMP_NAMES, ICMPV6_NAMES } from '../../match/icmp.js';
import { parsePortRange, parseProtocol } from '../../protocols.js';
import { protoNumberName } from '../../protocols.js';
import {
  BRIDGE_LOWER_REFUSAL, BRIDGE_REFERENCE_REFUSAL, formatIcmpTypeCode, formatIpMask, formatRange, parseIcmpTypeCode,
  parseIpMask, wholeNumber, type TypeName,
} from '../values.js';

/** igmp_types[] of libebt_ip.c. */
const IGMP_TYPES: readonly TypeName[] = [
  ['membership-query', 0x11, 0, 0],
  ['membership-report-v1', 0x12, 0, 0],
  ['membership-report-v2', 0x16, 0, 0],
  ['leave-group', 0x17, 0, 0],
  ['membership-report-v3', 0x22, 0, 0],
];

interface Field<T> {
  v: T;
  inv: boolean;
}

interface IpData {
  src?: Field<{ addr: Uint8Array; mask: Uint8Array }>;
  dst?: Field<{ addr: Uint8Array; mask: Uint8Array }>;
  tos?: Field<number>;
  proto?: Field<number>;
  sport?: Field<[number, number]>;
  dport?: Field<[number, number]>;
  icmp?: Field<{ type: [number, number]; code: [number, number] }>;
  igmp?: Field<[number, number]>;
}

const PORT_PROTOS = [6, 17, 33, 132];

function ipModule(family: 'ip' | 'ip6'): EbtModule<IpData> {
  const p = family === 'ip' ? 'ip' : 'ip6';
  const v6 = family === 'ip6';
  const opts = (names: string[], field: keyof IpData) => names.map((n) => ({ n, field }));
  const table = [
    ...opts([`${p}-source`, `${p}-src`], 'src'),
    ...opts([`${p}-destination`, `${p}-dst`], 'dst'),
    ...opts([v6 ? 'ip6-tclass' : 'ip-tos'], 'tos'),
    ...opts([`${p}-protocol`, `${p}-proto`], 'proto'),
    ...opts([`${p}-source-port`, `${p}-sport`], 'sport'),
    ...opts([`${p}-destination-port`, `${p}-dport`], 'dport'),
    ...opts([`${p}-icmp-type`], 'icmp'),
    ...(v6 ? [] : opts(['ip-igmp-type'], 'igmp')),
  ];
  const fieldOf = new Map(table.map((t) => [t.n, t.field]));
  return {
    kind: 'match',
    name: p,
    options: table.map((t) => ({ name: t.n, arg: 1, invert: true })),
    init: () => ({}),
    parse(d, opt, arg, inv) {
      const a = arg!;
      switch (fieldOf.get(opt)) {
        case 'src':
          d.src = { v: parseIpMask(family, a), inv };
          return;
        case 'dst':
          d.dst = { v: parseIpMask(family, a), inv };
          return;
        case 'tos': {
          const v = wholeNumber(a, 16);
          if (v === undefined || v > 0xff) fail(v6 ? 'Problem with specified IPv6 traffic class' : 'Problem with specified IP tos');
          d.tos = { v, inv };
          return;
        }
        case 'proto':
          d.proto = { v: parseProtocol(a), inv };
          return;
        case 'sport':
          d.sport = { v: parsePortRange(a), inv };
          return;
        case 'dport':
          d.dport = { v: parsePortRange(a), inv };
          return;
        case 'icmp':
          d.icmp = { v: parseIcmpTypeCode(v6 ? ICMPV6_NAMES : ICMP_NAMES, a, v6 ? 'ICMPv6' : 'ICMP'), inv };
          return;
        default:
          d.igmp = { v: parseIcmpTypeCode(IGMP_TYPES, a, 'IGMP').type, inv };
      }
    },
    final(d, _seen, ctx) {
      const r = ctx.rule;
      if (r.anyProto || r.is8023 || r.ethproto !== (v6 ? 0x86dd : 0x0800) || r.invProto) {
        fail(v6 ? 'For IPv6 filtering the protocol must be specified as IPv6' : 'For IP filtering the protocol must be specified as IPv4', 'check');
      }
      const proto = d.proto && !d.proto.inv ? d.proto.v : -1;
      if ((d.sport || d.dport) && !PORT_PROTOS.includes(proto)) {
        fail('For port filtering the IP protocol must be either 6 (tcp), 17 (udp), 33 (dccp) or 132 (sctp)', 'check');
      }
      if (d.icmp && proto !== (v6 ? 58 : 1)) {
        fail(v6 ? 'For ipv6-icmp filtering the IP protocol must be 58 (ipv6-icmp)' : 'For ICMP filtering the IP protocol must be 1 (icmp)', 'check');
      }
      if (d.igmp && proto !== 2) fail('For IGMP filtering the IP protocol must be 2 (igmp)', 'check');
    },
    save(d) {
      const f = <T>(x: Field<T> | undefined, opt: string, text: (v: T) => string) =>
        x ? `${x.inv ? ' !' : ''} --${p}-${opt} ${text(x.v)}` : '';
      const hex2 = (v: number) => `0x${v.toString(16).toUpperCase().padStart(2, '0')}`;
      return (
        f(d.src, 'src', (v) => formatIpMask(family, v)) +
        f(d.dst, 'dst', (v) => formatIpMask(family, v)) +
        f(d.tos, v6 ? 'tclass' : 'tos', hex2) +
        f(d.proto, 'proto', (v) => protoNumberName(v) ?? String(v)) +
        f(d.sport, 'sport', formatRange) +
        f(d.dport, 'dport', formatRange) +
        f(d.icmp, 'icmp-type', (v) => formatIcmpTypeCode(v6 ? ICMPV6_NAMES : ICMP_NAMES, v.type, v.code)) +
        f(d.igmp, 'igmp-type', (v) => formatIcmpTypeCode(IGMP_TYPES, v, undefined))
      );
    },
    lower: BRIDGE_LOWER_REFUSAL,
    reference: BRIDGE_REFERENCE_REFUSAL,
  };
}

export const ip = ipModule('ip');
export const ip6 = ipModule('ip6');
