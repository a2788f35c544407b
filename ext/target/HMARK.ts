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
 * and SPI values. Saved in the fixed order of HMARK_save. Kernel
 * checkentry: a non-zero modulus, no SPI mask with port masks, no SPI value
 * with port values.
 */
import { fail } from '../../core/errors.js';
import type { TargetModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { maskToCidr, prefixMask } from '../../core/addr.js';
import { parsePlenMask } from '../hostmask.js';

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
  lower: 'not modelled yet: the jhash of the flow tuple with the rule\'s --hmark-rnd (hmark_hash) and the conntrack tuples of --hmark-tuple ct',
  reference: 'not modelled yet: the jhash of the flow tuple with the rule\'s --hmark-rnd (hmark_hash) and the conntrack tuples of --hmark-tuple ct',
};

