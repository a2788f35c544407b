/**
 * hbh and dst matches (IPv6 Hop-by-Hop and Destination Options headers):
 * iptables `extensions/libip6t_hbh.c` and `extensions/libip6t_dst.c`,
 * kernel `net/ipv6/netfilter/ip6t_hbh.c` (one file registers both, sharing
 * `struct ip6t_opts`; IPv6 only).
 *
 * `--hbh-len`/`--dst-len` (u32, invertible) and `--hbh-opts`/`--dst-opts
 * TYPE[:LEN][,TYPE[:LEN]...]` (at most IP6T_OPTS_OPTSNR = 16 entries; each
 * number read by strtoul in any C base and truncated to 8 bits). The
 * kernel refuses IP6T_OPTS_NSTRICT, which iptables never sets.
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { strtoumax } from '../numbers.js';
import { parseUintOptU32 } from './esp.js';
import type { MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { findExtHeader, ipv6Optlen, type FindOut } from '../ipv6hdr.js';

/** IP6T_OPTS_OPTSNR */
const OPTS_OPTSNR = 16;

interface OptsData {
  /** `--*-len`, when given. */
  hdrlen: number | undefined;
  /** IP6T_OPTS_INV_LEN */
  invLen: boolean;
  /**
   * `--*-opts`, when given: option types with a length, or `len`
   * undefined for "any length" (the kernel's 0xff low byte).
   */
  opts: Array<{ type: number; len: number | undefined }> | undefined;
}

/** parse_opts_num(): strtoul(s, &end, 0) with the extension's messages. */
function parseOptsNum(ext: string, s: string, what: string): number {
  const r = strtoumax(s, 0);
  if (r.end === 0) fail(`${ext}: no valid digits in ${what} \`${s}'`);
  if (r.overflow) fail(`${what} \`${s}' specified too big: would overflow`);
  if (s !== '' && r.end !== s.length) fail(`${ext}: error parsing ${what} \`${s}'`);
  return Number(r.value & 0xffn);
}

function parseOptions(ext: string, s: string): NonNullable<OptsData['opts']> {
  const parts = s.split(',');
  const out: NonNullable<OptsData['opts']> = [];
  for (let i = 0; i < parts.length; i++) {
    if (i === OPTS_OPTSNR) fail('too many addresses specified');
    const cp = parts[i]!;
    const colon = cp.indexOf(':');
    if (colon >= 0 && i === OPTS_OPTSNR - 1) fail('too many ports specified');
    const type = parseOptsNum(ext, colon >= 0 ? cp.slice(0, colon) : cp, 'opt');
    if (colon >= 0) {
      if (type === 0) fail(ext === 'hbh' ? 'PAD0 has not got length' : "PAD0 hasn't got length");
      const len = parseOptsNum(ext, cp.slice(colon + 1), 'length');
      out.push({ type, len: len === 0xff ? undefined : len });
    } else {
      out.push({ type, len: undefined });
    }
  }
  return out;
}

function makeOpts(name: 'hbh' | 'dst'): MatchModule<OptsData> {
  const lenOpt = `${name}-len`;
  const optsOpt = `${name}-opts`;
  return {
    kind: 'match',
    name,
    family: 'ip6',
    options: [
      { name: lenOpt, arg: 1, invert: true },
      { name: optsOpt, arg: 1 },
    ],
    init: () => ({ hdrlen: undefined, invLen: false, opts: undefined }),
    parse(d, opt, arg, invert) {
      if (opt === lenOpt) {
        d.hdrlen = parseUintOptU32(arg!, name, lenOpt);
        if (invert) d.invLen = true;
      } else {
        d.opts = parseOptions(name, arg!);
      }
    },
    save(d) {
      let s = '';
      if (d.hdrlen !== undefined) s += `${d.invLen ? ' !' : ''} --${lenOpt} ${d.hdrlen}`;
      if (d.opts) {
        s += ` --${optsOpt}`;
        s += d.opts.map((o, i) => `${i === 0 ? ' ' : ','}${o.type}${o.len === undefined ? '' : `:${o.len}`}`).join('');
      }
      return s;
    },
    ...compatMatchFaces((d: OptsData) => hbhMt6(d, name)),
  };
}

export const hbh = makeOpts('hbh');
export const dst = makeOpts('dst');


// --- reference semantics (ip6t_hbh.c hbh_mt6, kernel 6.18) ------------------------------
const NEXTHDR_HOP = 0;
const NEXTHDR_DEST = 60;
const findOut: FindOut = { offset: 0, fragoff: 0 };

/**
 * hbh_mt6(): the hop-by-hop (hbh) or destination options (dst) header found
 * by ipv6_find_hdr; its length ((hdrlen + 1) << 3) and, with `--*-opts`, the
 * options in order: each type, and its length byte unless "any length"
 * (0xff) or Pad1. A header longer than the packet does not match; options
 * running out before the list does not match either.
 */
function hbhMt6(info: OptsData, name: 'hbh' | 'dst'): MatchFn {
  const target = name === 'hbh' ? NEXTHDR_HOP : NEXTHDR_DEST;
  const opts = info.opts?.map((o) => ({ type: o.type, len: o.len ?? 0xff })) ?? [];
  return (par) => {
    const h = findExtHeader(par, target, 2, findOut);
    if (h < 0) return false;
    let ptr = findOut.offset;
    const d = par.d;
    const skbLen = par.end - par.nh;
    let hdrlen = ipv6Optlen(d[h + 1]!);
    if (skbLen - ptr < hdrlen) return false;
    const ret = info.hdrlen === undefined || (info.hdrlen === hdrlen) !== info.invLen;
    if (!info.opts) return ret;
    ptr += 2;
    hdrlen -= 2;
    let temp = 0;
    for (; temp < opts.length; temp++) {
      if (hdrlen < 1) break;
      if (ptr >= skbLen) break;
      const tp = d[par.nh + ptr]!;
      if (tp !== opts[temp]!.type) return false;
      let optlen: number;
      if (tp) {
        if (hdrlen < 2) break;
        if (ptr + 1 >= skbLen) break;
        const lp = d[par.nh + ptr + 1]!;
        const specLen = opts[temp]!.len;
        if (specLen !== 0xff && specLen !== lp) return false;
        optlen = lp + 2;
      } else optlen = 1;
      // ptr > skb->len - optlen in unsigned arithmetic
      if (((optlen <= skbLen && ptr > skbLen - optlen) || hdrlen < optlen) && temp < opts.length - 1) break;
      ptr += optlen;
      hdrlen -= optlen;
    }
    return temp === opts.length ? ret : false;
  };
}
