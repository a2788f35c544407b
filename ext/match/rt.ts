/**
 * rt match (IPv6 routing header): iptables `extensions/libip6t_rt.c`,
 * kernel `net/ipv6/netfilter/ip6t_rt.c` (IPv6 only).
 *
 * `--rt-type` (u32), `--rt-segsleft lo[:hi]` (XTTYPE_UINT32RC), `--rt-len`
 * (u32), and for type 0 `--rt-0-res`, `--rt-0-addrs ADDR[,ADDR...]` (at
 * most IP6T_RT_HOPS = 16) and `--rt-0-not-strict`. The kernel refuses the
 * type-0 options without `--rt-type 0` (iptables already checks the order).
 */
import { fail } from '../../core/errors.js';
import type { MatchModule } from '../types.js';
import { formatIPv6, parseIPv6 } from '../../core/addr.js';
import { parseSpiRange, parseUintOptU32, spiMatch, type SpiRange } from './esp.js';
import { headerPointer, type MatchFn } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { findExtHeader, ipv6Optlen, type FindOut } from '../ipv6hdr.js';
import { NEXTHDR_ROUTING } from '../../vm/packet.js';

/** IP6T_RT_HOPS */
const RT_HOPS = 16;

interface RtData {
  /** `--rt-type`, when given. */
  rtType: number | undefined;
  invType: boolean;
  /** Segments Left range; [0, 0xffffffff] when not given. */
  segsleft: SpiRange;
  invSegs: boolean;
  /** `--rt-len`, when given. */
  hdrlen: number | undefined;
  invLen: boolean;
  /** IP6T_RT_RES: the reserved field must be zero (type 0). */
  res: boolean;
  /** IP6T_RT_FST: the type-0 address list (16-byte addresses), or undefined. */
  addrs: Uint8Array[] | undefined;
  /** IP6T_RT_FST_NSTRICT: the address list is not strict. */
  notStrict: boolean;
}

function parseAddrs(s: string): Uint8Array[] {
  const parts = s.split(',');
  const out: Uint8Array[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (i === RT_HOPS) fail('too many addresses specified');
    const a = parseIPv6(parts[i]!);
    if (!a) fail(`bad address: ${parts[i]}`);
    out.push(a);
  }
  return out;
}

function type0(d: RtData): boolean {
  return d.rtType === 0 && !d.invType;
}

export const rt: MatchModule<RtData> = {
  kind: 'match',
  name: 'rt',
  family: 'ip6',
  options: [
    { name: 'rt-type', arg: 1, invert: true },
    { name: 'rt-segsleft', arg: 1, invert: true },
    { name: 'rt-len', arg: 1, invert: true },
    { name: 'rt-0-res', arg: 0 },
    { name: 'rt-0-addrs', arg: 1 },
    { name: 'rt-0-not-strict', arg: 0 },
  ],
  init: () => ({ rtType: undefined, invType: false, segsleft: [0, 0xffffffff], invSegs: false, hdrlen: undefined, invLen: false, res: false, addrs: undefined, notStrict: false }),
  parse(d, opt, arg, invert) {
    switch (opt) {
      case 'rt-type':
        d.rtType = parseUintOptU32(arg!, 'rt', 'rt-type');
        if (invert) d.invType = true;
        return;
      case 'rt-segsleft':
        d.segsleft = parseSpiRange(arg!, 'rt', 'rt-segsleft');
        if (invert) d.invSegs = true;
        return;
      case 'rt-len':
        d.hdrlen = parseUintOptU32(arg!, 'rt', 'rt-len');
        if (invert) d.invLen = true;
        return;
      case 'rt-0-res':
        if (!type0(d)) fail("`--rt-type 0' required before `--rt-0-res'");
        d.res = true;
        return;
      case 'rt-0-addrs':
        if (!type0(d)) fail("`--rt-type 0' required before `--rt-0-addrs'");
        d.addrs = parseAddrs(arg!);
        return;
      case 'rt-0-not-strict':
        if (!d.addrs) fail("`--rt-0-addr ...' required before `--rt-0-not-strict'");
        d.notStrict = true;
        return;
    }
  },
  save(d) {
    let s = '';
    if (d.rtType !== undefined) s += `${d.invType ? ' !' : ''} --rt-type ${d.rtType}`;
    // rt_save: 1.8.13 also prints an inverted full range
    const [lo, hi] = d.segsleft;
    if (!(lo === 0 && hi === 0xffffffff && !d.invSegs)) s += `${d.invSegs ? ' !' : ''} --rt-segsleft ${lo === hi ? lo : `${lo}:${hi}`}`;
    if (d.hdrlen !== undefined) s += `${d.invLen ? ' !' : ''} --rt-len ${d.hdrlen}`;
    if (d.res) s += ' --rt-0-res';
    if (d.addrs) s += ' --rt-0-addrs ' + d.addrs.map((a) => formatIPv6(a)).join(',');
    if (d.notStrict) s += ' --rt-0-not-strict';
    return s;
  },
  check(d) {
    if ((d.res || d.addrs || d.notStrict) && !type0(d)) return "ip6t_rt: `--rt-type 0' required before `--rt-0-*'";
    return undefined;
  },
  ...compatMatchFaces(rtMt6),
};


// --- reference semantics (ip6t_rt.c rt_mt6, kernel 6.18) --------------------------------
const findOut: FindOut = { offset: 0, fragoff: 0 };

function addrAt(d: Uint8Array, at: number, a: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (d[at + i] !== a[i]) return false;
  return true;
}

/**
 * rt_mt6(): the routing header found by ipv6_find_hdr: segments left, length,
 * type; with --rt-0-res the 32-bit reserved word is zero; with --rt-0-addrs
 * the type-0 address list (strict: exactly the list; not strict: the list
 * in order among the header's addresses).
 */
function rtMt6(info: RtData): MatchFn {
  const addrs = info.addrs ?? [];
  return (par) => {
    const h = findExtHeader(par, NEXTHDR_ROUTING, 4, findOut);
    if (h < 0) return false;
    const ptr = findOut.offset;
    const d = par.d;
    const hdrlen = ipv6Optlen(d[h + 1]!);
    if (par.end - par.nh - ptr < hdrlen) return false;
    let ret = spiMatch(info.segsleft, d[h + 3]!, info.invSegs)
      && (info.hdrlen === undefined || (info.hdrlen === hdrlen) !== info.invLen)
      && (info.rtType === undefined || (info.rtType === d[h + 2]!) !== info.invType);
    if (ret && info.res) {
      const rp = headerPointer(par, ptr + 4, 4);
      if (rp < 0) {
        par.hotdrop = true;
        return false;
      }
      ret = (d[rp]! | d[rp + 1]! | d[rp + 2]! | d[rp + 3]!) === 0;
    }
    if (!info.addrs) return ret;
    const n = Math.floor((hdrlen - 8) / 16);
    if (addrs.length > n) return false;
    if (info.notStrict) {
      let i = 0;
      for (let temp = 0; temp < n; temp++) {
        const ap = headerPointer(par, ptr + 8 + temp * 16, 16);
        if (ap < 0) {
          par.hotdrop = true;
          return false;
        }
        if (addrAt(d, ap, addrs[i]!)) i++;
        if (i === addrs.length) break;
      }
      return i === addrs.length ? ret : false;
    }
    let temp = 0;
    for (; temp < addrs.length; temp++) {
      const ap = headerPointer(par, ptr + 8 + temp * 16, 16);
      if (ap < 0) {
        par.hotdrop = true;
        return false;
      }
      if (!addrAt(d, ap, addrs[temp]!)) break;
    }
    return temp === addrs.length && temp === n ? ret : false;
  };
}
