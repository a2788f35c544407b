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
import { parseSpiRange, parseUintOptU32, type SpiRange } from './esp.js';

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
  lower: 'needs the routing header behind the IPv6 extension headers (ipv6_find_hdr)',
  reference: 'needs the routing header behind the IPv6 extension headers (ipv6_find_hdr)',
};

