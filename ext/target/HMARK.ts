/**
 * HMARK target: iptables `extensions/libxt_HMARK.c`, kernel
 * `net/netfilter/xt_HMARK.c` (`struct xt_hmark_info`): set the packet mark
 * to a hash of address/port/protocol fields, modulo `--hmark-mod`, plus
 * `--hmark-offset`.
 *
 *  - `--hmark-tuple LIST` of src, dst, sport, dport, proto, spi, ct (each a
 *    case-insensitive prefix of the keyword): full masks for the fields, or
 *    the conntrack tuple (ct). It counts as giving the matching fine-tuning
 *    option, so that option cannot follow it;
 *  - `--hmark-src-prefix`/`--hmark-dst-prefix` (prefix length or mask),
 *    `--hmark-sport-mask`/`--hmark-dport-mask`/`--hmark-proto-mask` (u16),
 *    `--hmark-spi-mask` (u32), `--hmark-sport`/`--hmark-dport` (u16) and
 *    `--hmark-spi` (u32) to OR in, `--hmark-rnd` (u32, mandatory),
 *    `--hmark-mod` (u32 >= 1, mandatory), `--hmark-offset` (u32).
 *
 * The port masks share storage with the SPI mask (a union), as do the port
 * and SPI values (kept here as the big-endian u32 of the wire's port or SPI
 * bytes, as XTOPT_NBO stores them). Saved in the fixed order of HMARK_save. Kernel
 * checkentry: a non-zero modulus, no SPI mask with port masks, no SPI value
 * with port values.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { maskToCidr, prefixMask } from '../../core/addr.js';
import { parsePlenMask } from '../hostmask.js';
import { compatTargetFaces } from '../compat.js';
import { IP6_FH_F_AUTH, IP6_FH_F_FRAG, XT_CONTINUE, ipv6FindHdrAt, type Ipv6HdrWalk, type TargetFn, type XtActionParam } from '../xt.js';
import { jhash3words } from '../../vm/jhash.js';
import { reciprocalScale } from '../../vm/expr/numgen.js';
import { M_CT_DIR, M_CT_ID, M_MARK } from '../../vm/layout.js';
import { CT_T_PORTS, CT_T_PROTO, CT_T_SRC } from '../../vm/ct-env.js';
import { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY } from '../../core/netfilter.js';

/** XT_HMARK_* bit numbers of `flags` (and the option ids of the x6 table). */
const enum HmarkBit {
  SADDR_MASK = 0,
  DADDR_MASK,
  SPI,
  SPI_MASK,
  SPORT,
  DPORT,
  SPORT_MASK,
  DPORT_MASK,
  PROTO_MASK,
  RND,
  MODULUS,
  OFFSET,
  CT,
  METHOD_L3,
  METHOD_L3_4,
}
const O_TYPE = 13;

interface HmarkData {
  /** Source address mask (4 or 16 bytes). */
  srcMask: Uint8Array;
  /** Destination address mask. */
  dstMask: Uint8Array;
  /** port_mask union: source port mask in the high 16 bits, destination in the low; or the SPI mask. */
  portMask: number;
  /** port_set union, laid out as portMask. */
  portSet: number;
  /** Protocol mask (u16). */
  protoMask: number;
  /** Hash seed. */
  hashrnd: number;
  /** Modulus (>= 1). */
  hmodulus: number;
  /** Offset added to the hash. */
  hoffset: number;
  /** 1 << HmarkBit for each field given. */
  flags: number;
  /** The x6 xflags (option ids seen, including the ones --hmark-tuple sets). */
  xflags: number;
}

const OPTS: ReadonlyArray<readonly [string, number]> = [
  ['hmark-tuple', O_TYPE],
  ['hmark-src-prefix', HmarkBit.SADDR_MASK],
  ['hmark-dst-prefix', HmarkBit.DADDR_MASK],
  ['hmark-sport-mask', HmarkBit.SPORT_MASK],
  ['hmark-dport-mask', HmarkBit.DPORT_MASK],
  ['hmark-spi-mask', HmarkBit.SPI_MASK],
  ['hmark-sport', HmarkBit.SPORT],
  ['hmark-dport', HmarkBit.DPORT],
  ['hmark-spi', HmarkBit.SPI],
  ['hmark-proto-mask', HmarkBit.PROTO_MASK],
  ['hmark-rnd', HmarkBit.RND],
  ['hmark-mod', HmarkBit.MODULUS],
  ['hmark-offset', HmarkBit.OFFSET],
];
const OPT_ID = new Map(OPTS);

const PKT_MASK =
  (1 << HmarkBit.SADDR_MASK) | (1 << HmarkBit.DADDR_MASK) | (1 << HmarkBit.SPI_MASK) | (1 << HmarkBit.SPORT_MASK) |
  (1 << HmarkBit.DPORT_MASK) | (1 << HmarkBit.PROTO_MASK) | (1 << HmarkBit.SPORT) | (1 << HmarkBit.DPORT) | (1 << HmarkBit.SPI);

const TUPLE_WORDS = ['ct', 'src', 'dst', 'sport', 'dport', 'proto', 'spi'] as const;

function tupleWord(d: HmarkData, w: string): boolean {
  const lw = w.toLowerCase();
  const kw = TUPLE_WORDS.find((k) => k.startsWith(lw));
  if (!kw) return false;
  const set = (bit: number) => {
    d.flags |= 1 << bit;
    d.xflags |= 1 << bit;
  };
  switch (kw) {
    case 'ct':
      set(HmarkBit.CT);
      break;
    case 'src':
      d.srcMask.fill(0xff);
      set(HmarkBit.SADDR_MASK);
      break;
    case 'dst':
      d.dstMask.fill(0xff);
      set(HmarkBit.DADDR_MASK);
      break;
    case 'sport':
      d.portMask = ((d.portMask & 0xffff) | 0xffff0000) >>> 0;
      set(HmarkBit.SPORT_MASK);
      break;
    case 'dport':
      d.portMask = ((d.portMask & 0xffff0000) | 0xffff) >>> 0;
      set(HmarkBit.DPORT_MASK);
      break;
    case 'proto':
      d.protoMask = 0xffff;
      set(HmarkBit.PROTO_MASK);
      break;
    case 'spi':
      d.portMask = 0xffffffff;
      set(HmarkBit.SPI_MASK);
      break;
  }
  return true;
}

/**
 * XTTYPE_PLENMASK as iptables 1.8.9 stores it: the mask rebuilt from the
 * prefix length, which stays the full length for a value that is not a
 * contiguous mask (`33`, `255.0.255.0` give 32 for IPv4).
 */
function plen(family: 'ip' | 'ip6', a: string, opt: string): Uint8Array {
  const bytes = family === 'ip' ? 4 : 16;
  const cidr = maskToCidr(parsePlenMask(family, a, 'HMARK', opt));
  return prefixMask(cidr < 0 ? bytes * 8 : cidr, bytes);
}

const h = (v: number, w: number) => '0x' + v.toString(16).padStart(w, '0');

export const HMARK: TargetModule<HmarkData> = {
  kind: 'target',
  name: 'HMARK',
  options: OPTS.map(([name]) => ({ name, arg: 1 as const })),
  init: (ctx) => {
    const n = ctx.family === 'ip' ? 4 : 16;
    return {
      srcMask: new Uint8Array(n), dstMask: new Uint8Array(n), portMask: 0, portSet: 0, protoMask: 0,
      hashrnd: 0, hmodulus: 0, hoffset: 0, flags: 0, xflags: 0,
    };
  },
  parse(d, opt, arg, _inv, ctx) {
    const id = OPT_ID.get(opt)!;
    if (d.xflags & (1 << id)) fail(`HMARK: option "--${opt}" can only be used once.`, 'option');
    d.xflags |= 1 << id;
    const a = arg!;
    const u16 = () => parseUintOpt(a, 0, 0xffff, 'HMARK', opt);
    const u32 = (min = 0) => parseUintOpt(a, min, 0xffffffff, 'HMARK', opt);
    switch (id) {
      case O_TYPE: {
        const parts = a.split(',');
        for (let i = 0; i < parts.length - 1; i++) {
          if (parts[i] === '' || !tupleWord(d, parts[i]!)) fail(`Bad type "${parts.slice(i).join(',')}"`);
        }
        const last = parts[parts.length - 1]!;
        if (last === '') fail('"--hmark-tuple" requires a list of types with no spaces, e.g. src,dst,sport,dport,proto');
        if (!tupleWord(d, last)) fail(`Bad type "${last}"`);
        return;
      }
      case HmarkBit.SADDR_MASK:
        d.srcMask = plen(ctx.family, a, opt);
        break;
      case HmarkBit.DADDR_MASK:
        d.dstMask = plen(ctx.family, a, opt);
        break;
      case HmarkBit.SPORT_MASK:
        d.portMask = ((d.portMask & 0xffff) | (u16() << 16)) >>> 0;
        break;
      case HmarkBit.DPORT_MASK:
        d.portMask = ((d.portMask & 0xffff0000) | u16()) >>> 0;
        break;
      case HmarkBit.SPI_MASK:
        d.portMask = u32();
        break;
      case HmarkBit.SPORT:
        d.portSet = ((d.portSet & 0xffff) | (u16() << 16)) >>> 0;
        break;
      case HmarkBit.DPORT:
        d.portSet = ((d.portSet & 0xffff0000) | u16()) >>> 0;
        break;
      case HmarkBit.SPI:
        d.portSet = u32();
        break;
      case HmarkBit.PROTO_MASK:
        d.protoMask = u16();
        break;
      case HmarkBit.RND:
        d.hashrnd = u32();
        break;
      case HmarkBit.MODULUS:
        d.hmodulus = u32(1);
        break;
      case HmarkBit.OFFSET:
        d.hoffset = u32();
        break;
    }
    d.flags |= 1 << id;
  },
  final(d) {
    const x = d.xflags;
    if (!(x & (1 << HmarkBit.MODULUS))) fail('HMARK: option "--hmark-mod" must be specified', 'option');
    if (!(x & (1 << HmarkBit.RND))) fail('--hmark-rnd is mandatory', 'option');
    if (x & (1 << HmarkBit.SPI_MASK) && x & ((1 << HmarkBit.SPORT_MASK) | (1 << HmarkBit.DPORT_MASK))) {
      fail('you cannot use --hmark-spi-mask and --hmark-?port-mask,at the same time', 'option');
    }
    if (!(x & PKT_MASK) && !(x & (1 << HmarkBit.CT))) fail('you have to specify --hmark-tuple at least', 'option');
  },
  save(d) {
    const f = (b: number) => (d.flags & (1 << b)) !== 0;
    let s = '';
    if (f(HmarkBit.SADDR_MASK)) s += ` --hmark-src-prefix ${maskToCidr(d.srcMask)}`;
    if (f(HmarkBit.DADDR_MASK)) s += ` --hmark-dst-prefix ${maskToCidr(d.dstMask)}`;
    if (f(HmarkBit.SPORT_MASK)) s += ` --hmark-sport-mask ${h(d.portMask >>> 16, 4)}`;
    if (f(HmarkBit.DPORT_MASK)) s += ` --hmark-dport-mask ${h(d.portMask & 0xffff, 4)}`;
    if (f(HmarkBit.SPI_MASK)) s += ` --hmark-spi-mask ${h(d.portMask, 8)}`;
    if (f(HmarkBit.SPORT)) s += ` --hmark-sport ${h(d.portSet >>> 16, 4)}`;
    if (f(HmarkBit.DPORT)) s += ` --hmark-dport ${h(d.portSet & 0xffff, 4)}`;
    if (f(HmarkBit.SPI)) s += ` --hmark-spi ${h(d.portSet, 8)}`;
    if (f(HmarkBit.PROTO_MASK)) s += ` --hmark-proto-mask ${h(d.protoMask, 2)}`;
    if (f(HmarkBit.RND)) s += ` --hmark-rnd ${h(d.hashrnd, 8)}`;
    if (f(HmarkBit.MODULUS)) s += ` --hmark-mod ${d.hmodulus}`;
    if (f(HmarkBit.OFFSET)) s += ` --hmark-offset ${d.hoffset}`;
    if (f(HmarkBit.CT)) s += ' --hmark-tuple ct';
    return s;
  },
  check(d) {
    const f = (b: number) => (d.flags & (1 << b)) !== 0;
    if (d.hmodulus === 0) return 'xt_HMARK: invalid hash modulus';
    if (d.protoMask && f(HmarkBit.METHOD_L3)) return 'xt_HMARK: proto mask must be zero with L3 mode';
    if (f(HmarkBit.SPI_MASK) && (f(HmarkBit.SPORT_MASK) || f(HmarkBit.DPORT_MASK))) {
      return "xt_HMARK: spi-mask and port-mask can't be combined";
    }
    if (f(HmarkBit.SPI) && (f(HmarkBit.SPORT) || f(HmarkBit.DPORT))) return "xt_HMARK: spi-set and port-set can't be combined";
    return undefined;
  },
  ...compatTargetFaces(hmarkTg),
};


// --- reference semantics (net/netfilter/xt_HMARK.c, Linux 6.18) -----------------------------

const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const AF_INET = 2;
const AF_INET6 = 10;
/** NR_ICMP_TYPES: the highest ICMP type get_inner_hdr looks at. */
const NR_ICMP_TYPES = 18;
/** struct hmark_tuple: src/dst as host-order words (ntohl of the masked __be32), uports.v32, proto. */
interface HmarkTuple {
  src: number;
  dst: number;
  ports: number;
  proto: number;
}

/** The big-endian u32 of the 4 bytes at absolute `at`. */
function word(d: Uint8Array, at: number): number {
  return (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!;
}

/** A `bytes`-long mask as its big-endian words. */
function maskWords(m: Uint8Array): Int32Array {
  const w = new Int32Array(m.length / 4);
  for (let i = 0; i < w.length; i++) w[i] = word(m, 4 * i);
  return w;
}

/** hmark_swap_ports(): the masked and set ports (BE u32 of the wire bytes), the larger port in the high half. */
function swapPorts(b32: number, mask: number, set: number): number {
  const hp = (b32 & mask) | set;
  const src = hp >>> 16;
  const dst = hp & 0xffff;
  return dst > src ? ((dst << 16) | src) >>> 0 : ((src << 16) | dst) >>> 0;
}

/** proto_ports_offset(): where the ports (or SPI) lie in the L4 header, -1 for a protocol without. */
function protoPortsOffset(proto: number): number {
  switch (proto) {
    case 6: case 17: case 33: case 50: case 132: case 136:
      return 0;
    case 51:
      return 4;
    default:
      return -1;
  }
}

function hmarkTg(info: HmarkData, family: 'ip' | 'ip6'): TargetFn {
  const src = maskWords(info.srcMask);
  const dst = maskWords(info.dstMask);
  const words = src.length;
  const l3 = (info.flags & (1 << HmarkBit.METHOD_L3)) !== 0;
  const ctMode = (info.flags & (1 << HmarkBit.CT)) !== 0;
  const portMask = info.portMask | 0;
  const portSet = info.portSet | 0;
  const t: HmarkTuple = { src: 0, dst: 0, ports: 0, proto: 0 };
  const w6: Ipv6HdrWalk = { off: 0, flags: 0, fragoff: 0 };

  /** hmark_addr6_mask() / the IPv4 AND: the masked words XORed, of the address at absolute `at`. */
  const addr = (d: Uint8Array, at: number, m: Int32Array): number => {
    let x = 0;
    for (let i = 0; i < words; i++) x ^= word(d, at + 4 * i) & m[i]!;
    return x >>> 0;
  };

  /** hmark_set_tuple_ports(): the ports (or SPI) at nh-relative `l4`, when they are within the packet. */
  const setPorts = (par: XtActionParam, l4: number): void => {
    const protoff = protoPortsOffset(t.proto);
    if (protoff < 0) return;
    const at = par.nh + l4 + protoff;
    if (at + 4 > par.end) return;
    t.ports = swapPorts(word(par.d, at), portMask, portSet);
  };

  /** hmark_ct_set_htuple(): -1 without a conntrack. */
  const fromCt = (par: XtActionParam): number => {
    const m = par.meta;
    if (m[M_CT_DIR]! < 0) return -1;
    const id = m[M_CT_ID]!;
    const ct = par.env.ct;
    const tw = (dir: number, w: number) => (id >= 0 && ct !== null ? ct.tupleWord(id, dir, w) : 0);
    const l3num = tw(IP_CT_DIR_ORIGINAL, CT_T_PROTO) >>> 8;
    const n = l3num === AF_INET ? 1 : l3num === AF_INET6 ? 4 : 0;
    let s = 0;
    let r = 0;
    for (let i = 0; i < n; i++) {
      s ^= tw(IP_CT_DIR_ORIGINAL, CT_T_SRC + i) & src[i]!;
      r ^= tw(IP_CT_DIR_REPLY, CT_T_SRC + i) & dst[i]!;
    }
    t.src = s >>> 0;
    t.dst = r >>> 0;
    if (l3) return 0;
    t.proto = tw(IP_CT_DIR_ORIGINAL, CT_T_PROTO) & 0xff;
    if (t.proto !== IPPROTO_ICMP) {
      const b32 = (tw(IP_CT_DIR_ORIGINAL, CT_T_PORTS) & 0xffff0000) | (tw(IP_CT_DIR_REPLY, CT_T_PORTS) >>> 16);
      t.ports = swapPorts(b32, portMask, portSet);
    }
    return 0;
  };

  /** hmark_pkt_set_htuple_ipv4(). */
  const fromPkt4 = (par: XtActionParam): number => {
    const d = par.d;
    let ip = par.nh;
    if (d[ip + 9] === IPPROTO_ICMP) {
      // get_inner_hdr(): an ICMP error hashes the header it quotes
      const ic = ip + (d[ip]! & 0x0f) * 4;
      if (ic + 8 <= par.end) {
        const type = d[ic]!;
        if (type <= NR_ICMP_TYPES && (type === 3 || type === 4 || type === 11 || type === 12 || type === 5)) {
          ip = ic + 8;
          if (ip + 20 > par.end) return -1;
        }
      }
    }
    t.src = addr(d, ip + 12, src);
    t.dst = addr(d, ip + 16, dst);
    if (l3) return 0;
    t.proto = d[ip + 9]!;
    if (t.proto === IPPROTO_ICMP) return 0;
    // a fragment (MF or an offset) carries no ports the hash could rely on
    if (((d[ip + 6]! << 8) | d[ip + 7]!) & 0x3fff) return 0;
    setPorts(par, ip - par.nh + (d[ip]! & 0x0f) * 4);
    return 0;
  };

  /** hmark_pkt_set_htuple_ipv6(). */
  const fromPkt6 = (par: XtActionParam): number => {
    const d = par.d;
    w6.flags = IP6_FH_F_AUTH;
    let nexthdr = ipv6FindHdrAt(par.d, par.nh, par.end, 0, w6);
    if (nexthdr < 0) return 0;
    let ip = par.nh;
    if (!(w6.flags & IP6_FH_F_FRAG) && nexthdr === IPPROTO_ICMPV6) {
      // get_inner6_hdr(): an ICMPv6 error hashes the header it quotes
      const ic = par.nh + w6.off;
      if (ic + 8 <= par.end && d[ic]! !== 0 && d[ic]! < 128) {
        const inner = w6.off + 8;
        if (par.nh + inner + 40 > par.end) return -1;
        ip = par.nh + inner;
        w6.flags = IP6_FH_F_AUTH;
        nexthdr = ipv6FindHdrAt(par.d, par.nh, par.end, inner, w6);
        if (nexthdr < 0) return -1;
      }
    }
    t.src = addr(d, ip + 8, src);
    t.dst = addr(d, ip + 24, dst);
    if (l3) return 0;
    t.proto = nexthdr;
    if (t.proto === IPPROTO_ICMPV6) return 0;
    if (w6.flags & IP6_FH_F_FRAG) return 0;
    setPorts(par, w6.off);
    return 0;
  };

  const fromPkt = family === 'ip' ? fromPkt4 : fromPkt6;
  return (par) => {
    t.src = 0;
    t.dst = 0;
    t.ports = 0;
    t.proto = 0;
    if ((ctMode ? fromCt(par) : fromPkt(par)) < 0) return XT_CONTINUE;
    // hmark_hash(): endian independent, the smaller address first
    let a = t.src;
    let b = t.dst;
    if (b < a) {
      a = t.dst;
      b = t.src;
    }
    const hash = (jhash3words(a, b, t.ports, info.hashrnd) ^ (t.proto & info.protoMask)) >>> 0;
    par.meta[M_MARK] = (reciprocalScale(hash, info.hmodulus) + info.hoffset) | 0;
    return XT_CONTINUE;
  };
}
