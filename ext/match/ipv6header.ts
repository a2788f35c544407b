/**
 * ipv6header match: iptables `extensions/libip6t_ipv6header.c`, kernel
 * `net/ipv6/netfilter/ip6t_ipv6header.c` (IPv6 only).
 *
 * `[!] --header LIST` (mandatory) names extension headers by
 * /etc/protocols name (getprotobyname: `hopopt`, `ipv6-route`, `ah`, ...),
 * by the extension's own short names (`hop`, `dst`, `route`, `frag`,
 * `auth`, `esp`, `none`, `prot`, `hop-by-hop`, `protocol`) or by number
 * (`0`, `60`, `43`, `44`, `51`, `50`, `59`, `255`); `--soft` matches when
 * the packet contains at least those headers. Saved with the
 * /etc/protocols names (`hop-by-hop` and `protocol` for 0 and 255, which
 * getprotobynumber does not give).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { parseProtocol } from '../protocols.js';

interface Ipv6headerData {
  /** MASK_* bits of the headers named (MASK_HOPOPTS 0x80 ... MASK_PROTO 0x01). */
  matchflags: number;
  /** The kernel's invflags: 0xff when `! --header`. */
  invert: boolean;
  /** `--soft` (modeflag 0xff). */
  soft: boolean;
}

/** chain_flags[]: header protocol → mask bit, in print order. */
const HEADER_FLAGS: ReadonlyArray<readonly [proto: number, flag: number, saveName: string]> = [
  [0, 0x80, 'hop-by-hop'],
  [60, 0x40, 'ipv6-opts'],
  [43, 0x20, 'ipv6-route'],
  [44, 0x10, 'ipv6-frag'],
  [51, 0x08, 'ah'],
  [50, 0x04, 'esp'],
  [59, 0x02, 'ipv6-nonxt'],
  [255, 0x01, 'protocol'],
];

/** The /etc/protocols (netbase) names and aliases of those headers, as getprotobyname takes them. */
const ETC_NAMES: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  ip: 0, IP: 0, hopopt: 0, HOPOPT: 0, 'ipv6-route': 43, 'IPv6-Route': 43, 'ipv6-frag': 44, 'IPv6-Frag': 44,
  esp: 50, 'IPSEC-ESP': 50, ah: 51, 'IPSEC-AH': 51, 'ipv6-nonxt': 59, 'IPv6-NoNxt': 59, 'ipv6-opts': 60, 'IPv6-Opts': 60,
});

/** chain_protos[] of libip6t_ipv6header.c (strcmp, case-sensitive). */
const OWN_NAMES: Readonly<Record<string, number>> = Object.assign(Object.create(null), {
  'hop-by-hop': 0, protocol: 255, hop: 0, dst: 60, route: 43, frag: 44, auth: 51, esp: 50, none: 59, prot: 255,
  '0': 0, '60': 60, '43': 43, '44': 44, '51': 51, '50': 50, '59': 59, '255': 255,
});

/** Names libxtables knows but /etc/protocols does not. */
const NOT_ETC: ReadonlySet<string> = new Set(['all', 'icmpv6', 'mh', 'ipv6-mh']);

function nameToProto(s: string): number {
  const etc = ETC_NAMES[s];
  if (etc !== undefined) return etc;
  // another /etc/protocols name (getprotobyname is case-sensitive on names)
  if (/^[a-z][a-z0-9.-]*$/.test(s) && !NOT_ETC.has(s)) {
    try {
      return parseProtocol(s);
    } catch {
      /* not a protocol name */
    }
  }
  const own = OWN_NAMES[s];
  if (own !== undefined) return own;
  return fail(`unknown header \`${s}' specified`);
}

function parseHeader(s: string): number {
  let ret = 0;
  for (const tok of s.split(',')) {
    if (tok === '') continue; // strtok skips empty fields
    const proto = nameToProto(tok);
    const f = HEADER_FLAGS.find(([p]) => p === proto);
    if (!f) fail(`unknown header \`${proto}' specified`);
    ret |= f[1];
  }
  return ret;
}

export const ipv6header: MatchModule<Ipv6headerData> = {
  kind: 'match',
  name: 'ipv6header',
  family: 'ip6',
  options: [
    { name: 'header', arg: 1, invert: true },
    { name: 'soft', arg: 0 },
  ],
  init: () => ({ matchflags: 0, invert: false, soft: false }),
  parse(d, opt, arg, invert) {
    if (opt === 'soft') {
      d.soft = true;
      return;
    }
    d.matchflags = parseHeader(arg!);
    if (!d.matchflags) fail('ip6t_ipv6header: cannot parse header names');
    if (invert) d.invert = true;
  },
  final(_d, seen) {
    if (!seen.has('header')) fail('ipv6header: option "--header" must be specified', 'option');
  },
  save(d) {
    const names = HEADER_FLAGS.filter(([, f]) => d.matchflags & f).map(([, , n]) => n);
    return `${d.invert ? ' !' : ''} --header ${names.length ? names.join(',') : 'NONE'}${d.soft ? ' --soft' : ''}`;
  },
  lower: 'needs the walk over the whole IPv6 extension header chain (ipv6header_mt6)',
  reference: 'needs the walk over the whole IPv6 extension header chain (ipv6header_mt6)',
};

