/**
 * ip and ip6 matches: iptables `extensions/libebt_ip.c` and
 * `extensions/libebt_ip6.c`, kernel `net/bridge/netfilter/ebt_ip.c` and
 * `ebt_ip6.c`: fields of the IPv4/IPv6 header and the ports or ICMP type
 * behind it; the rule needs `-p IPv4` / `-p IPv6`.
 */
import { fail } from '../../../core/errors.js';
import type { EbtModule, EbtParam } from '../types.js';
import { ebtHeader } from '../ref.js';
import { NEXTHDR_AUTH, NEXTHDR_FRAGMENT, NEXTHDR_NONE, ipv6ExtHdr } from '../../../vm/packet.js';
import { ICMP_NAMES, ICMPV6_NAMES } from '../../match/icmp.js';
import { parsePortRange, parseProtocol } from '../../protocols.js';
import { protoNumberName } from '../../protocols.js';
import {
  formatIcmpTypeCode, formatIpMask, formatRange, parseIcmpTypeCode,
  parseIpMask, wholeNumber, type TypeName,
} from '../values.js';
import { hostMaskBytes, type HostMask } from '../../hostmask.js';

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
    lower: { rev: 0 },
    reference: {
      mt: (d) => {
        const src = d.src ? hostMaskBytes(d.src.v) : undefined;
        const dst = d.dst ? hostMaskBytes(d.dst.v) : undefined;
        return v6 ? (p: EbtParam) => ebtIp6Mt(d, src, dst, p) : (p: EbtParam) => ebtIpMt(d, src, dst, p);
      },
    },
  };
}

/** (a & m) != (b & m) over the address bytes at `at`. */
function maskedDiffers(dd: Uint8Array, at: number, am: HostMask): boolean {
  for (let i = 0; i < am.addr.length; i++) if (((dd[at + i]! ^ am.addr[i]!) & am.mask[i]!) !== 0) return true;
  return false;
}

const outside = (v: number, r: [number, number]) => v < r[0] || v > r[1];

/** The port / ICMP / IGMP part both matches share (the 4 bytes of `union pkthdr` at `at`). */
function l4Mt(d: IpData, dd: Uint8Array, at: number): boolean {
  if (d.dport && outside((dd[at + 2]! << 8) | dd[at + 3]!, d.dport.v) !== d.dport.inv) return false;
  if (d.sport && outside((dd[at]! << 8) | dd[at + 1]!, d.sport.v) !== d.sport.inv) return false;
  if (d.icmp && (outside(dd[at]!, d.icmp.v.type) || outside(dd[at + 1]!, d.icmp.v.code)) !== d.icmp.inv) return false;
  if (d.igmp && outside(dd[at]!, d.igmp.v) !== d.igmp.inv) return false;
  return true;
}

/** ebt_ip_mt() (net/bridge/netfilter/ebt_ip.c): the IPv4 header at skb->data, no version or checksum test; `src`, `dst`: d's addresses as bytes (hostMaskBytes). */
function ebtIpMt(d: IpData, src: HostMask | undefined, dst: HostMask | undefined, p: EbtParam): boolean {
  const ih = ebtHeader(p, 0, 20);
  if (ih < 0) return false;
  const dd = p.d;
  if (d.tos && (d.tos.v !== dd[ih + 1]) !== d.tos.inv) return false;
  if (d.src && maskedDiffers(dd, ih + 12, src!) !== d.src.inv) return false;
  if (d.dst && maskedDiffers(dd, ih + 16, dst!) !== d.dst.inv) return false;
  if (d.proto) {
    if ((d.proto.v !== dd[ih + 9]) !== d.proto.inv) return false;
    if (!(d.dport || d.sport || d.icmp || d.igmp)) return true;
    if (((dd[ih + 6]! << 8) | dd[ih + 7]!) & 0x1fff) return false;
    const at = ebtHeader(p, (dd[ih]! & 0x0f) * 4, 4);
    if (at < 0) return false;
    return l4Mt(d, dd, at);
  }
  return true;
}

/**
 * ipv6_skip_exthdr() (net/ipv6/exthdrs_core.c) from offset `start`: the
 * offset of the upper-layer header and its protocol, or -1.
 */
function ipv6SkipExthdr(p: EbtParam, start: number, out: { nexthdr: number }): number {
  let nexthdr = out.nexthdr;
  const dd = p.d;
  while (ipv6ExtHdr(nexthdr)) {
    if (nexthdr === NEXTHDR_NONE) return -1;
    const hp = ebtHeader(p, start, 2);
    if (hp < 0) return -1;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      const fp = ebtHeader(p, start + 2, 2);
      if (fp < 0) return -1;
      if (((dd[fp]! << 8) | dd[fp + 1]!) & ~0x7) break;
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) hdrlen = (dd[hp + 1]! + 2) << 2;
    else hdrlen = (dd[hp + 1]! + 1) << 3;
    nexthdr = dd[hp]!;
    start += hdrlen;
  }
  out.nexthdr = nexthdr;
  return start;
}

const skipOut = { nexthdr: 0 };

/** ebt_ip6_mt() (net/bridge/netfilter/ebt_ip6.c). */
function ebtIp6Mt(d: IpData, src: HostMask | undefined, dst: HostMask | undefined, p: EbtParam): boolean {
  const ih = ebtHeader(p, 0, 40);
  if (ih < 0) return false;
  const dd = p.d;
  if (d.tos && (d.tos.v !== ((((dd[ih]! << 8) | dd[ih + 1]!) >> 4) & 0xff)) !== d.tos.inv) return false;
  if ((d.src && maskedDiffers(dd, ih + 8, src!) !== d.src.inv) || (d.dst && maskedDiffers(dd, ih + 24, dst!) !== d.dst.inv)) {
    return false;
  }
  if (d.proto) {
    skipOut.nexthdr = dd[ih + 6]!;
    const off = ipv6SkipExthdr(p, 40, skipOut);
    if (off === -1) return false;
    if ((d.proto.v !== skipOut.nexthdr) !== d.proto.inv) return false;
    if (!(d.dport || d.sport || d.icmp)) return true;
    const at = ebtHeader(p, off, 4);
    if (at < 0) return false;
    return l4Mt(d, dd, at);
  }
  return true;
}

export const ip = ipModule('ip');
export const ip6 = ipModule('ip6');
