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
import { headerPointer, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { ipv6Authlen, ipv6Optlen } from '../ipv6hdr.js';

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
  ...compatMatchFaces(ipv6headerMt6),
};


// --- reference semantics (ip6t_ipv6header.c ipv6header_mt6, kernel 6.18) ----------------
const MASK_HOPOPTS = 0x80;
const MASK_DSTOPTS = 0x40;
const MASK_ROUTING = 0x20;
const MASK_FRAGMENT = 0x10;
const MASK_AH = 0x08;
const MASK_ESP = 0x04;
const MASK_NONE = 0x02;
const MASK_PROTO = 0x01;

/** nf_ip6_ext_hdr(): the extension headers and ESP. */
function nfIp6ExtHdr(n: number): boolean {
  return n === 0 || n === 43 || n === 44 || n === 50 || n === 51 || n === 59 || n === 60;
}

/**
 * ipv6header_mt6(): walks the whole chain collecting a bit per header kind
 * (ESP and no-next-header end it; MASK_PROTO when an upper-layer protocol
 * follows), then compares: soft mode, the named headers present (XOR the
 * inversion); hard mode, exactly the named set (or not, inverted).
 */
function ipv6headerMt6(info: Ipv6headerData): MatchFn {
  const invflags = info.invert ? 0xff : 0;
  return (par) => {
    const d = par.d;
    const skbLen = par.end - par.nh;
    let nexthdr = d[par.nh + 6]!;
    let ptr = 40;
    let len = skbLen - ptr;
    let temp = 0;
    while (nfIp6ExtHdr(nexthdr)) {
      if (nexthdr === 59) {
        temp |= MASK_NONE;
        break;
      }
      if (len < 2) return false;
      if (nexthdr === 50) {
        temp |= MASK_ESP;
        break;
      }
      const hp = headerPointer(par, ptr, 2);
      if (hp < 0) {
        par.hotdrop = true;
        return false;
      }
      const hdrlen = nexthdr === 44 ? 8 : nexthdr === 51 ? ipv6Authlen(d[hp + 1]!) : ipv6Optlen(d[hp + 1]!);
      if (nexthdr === 0) temp |= MASK_HOPOPTS;
      else if (nexthdr === 43) temp |= MASK_ROUTING;
      else if (nexthdr === 44) temp |= MASK_FRAGMENT;
      else if (nexthdr === 51) temp |= MASK_AH;
      else temp |= MASK_DSTOPTS;
      nexthdr = d[hp]!;
      len -= hdrlen;
      ptr += hdrlen;
      if (ptr > skbLen) break;
    }
    if (nexthdr !== 59 && nexthdr !== 50) temp |= MASK_PROTO;
    if (info.soft) return ((temp ^ info.matchflags ^ invflags) & info.matchflags) === 0;
    return info.invert ? temp !== info.matchflags : temp === info.matchflags;
  };
}
