/**
 * srh match (IPv6 Segment Routing Header), revision 1: iptables
 * `extensions/libip6t_srh.c` (`srh1_opts`, `srh1_save`), kernel
 * `net/ipv6/netfilter/ip6t_srh.c` (IPv6 only; checkentry refuses unknown
 * flag bits only).
 *
 * Each of next-hdr, hdr-len-{eq,gt,lt}, segs-left-{eq,gt,lt},
 * last-entry-{eq,gt,lt} takes a u8, `--srh-tag` a u16, and
 * `--srh-psid`/`--srh-nsid`/`--srh-lsid` an `addr[/mask]` (XTTYPE_HOSTMASK,
 * the address not masked); all invertible. The eq/gt/lt variants of one
 * field share the field (the last one given sets the value).
 */
import type { MatchModule } from '../types.js';
import { parseUintOpt } from '../numbers.js';
import { formatIPv6, maskToCidr } from '../../core/addr.js';
import { parseHostMask, type HostMask } from '../hostmask.js';
import { be16, headerPointer, type MatchFn, type XtActionParam } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { ipv6FindHdrTarget, ipv6Optlen, maskedAddrDiffers, type FindOut } from '../ipv6hdr.js';

/** The numeric options, in the order of their IP6T_SRH_* flag bits (and of srh1_save). */
const SRH_NUM_OPTS = [
  'srh-next-hdr',
  'srh-hdr-len-eq',
  'srh-hdr-len-gt',
  'srh-hdr-len-lt',
  'srh-segs-left-eq',
  'srh-segs-left-gt',
  'srh-segs-left-lt',
  'srh-last-entry-eq',
  'srh-last-entry-gt',
  'srh-last-entry-lt',
  'srh-tag',
] as const;
const SRH_SID_OPTS = ['srh-psid', 'srh-nsid', 'srh-lsid'] as const;

type Field = 'nextHdr' | 'hdrLen' | 'segsLeft' | 'lastEntry' | 'tag';
const FIELD_OF: Readonly<Record<(typeof SRH_NUM_OPTS)[number], Field>> = {
  'srh-next-hdr': 'nextHdr',
  'srh-hdr-len-eq': 'hdrLen',
  'srh-hdr-len-gt': 'hdrLen',
  'srh-hdr-len-lt': 'hdrLen',
  'srh-segs-left-eq': 'segsLeft',
  'srh-segs-left-gt': 'segsLeft',
  'srh-segs-left-lt': 'segsLeft',
  'srh-last-entry-eq': 'lastEntry',
  'srh-last-entry-gt': 'lastEntry',
  'srh-last-entry-lt': 'lastEntry',
  'srh-tag': 'tag',
};

interface SrhData {
  /** Header field values (struct ip6t_srh1 next_hdr, hdr_len, segs_left, last_entry, tag). */
  nextHdr: number;
  hdrLen: number;
  segsLeft: number;
  lastEntry: number;
  tag: number;
  /** The options given (mt_flags), by option name, with their inversion (mt_invflags). */
  given: Map<string, boolean>;
  /** Previous / next / last SID with mask. */
  psid: HostMask | undefined;
  nsid: HostMask | undefined;
  lsid: HostMask | undefined;
}

export const srh: MatchModule<SrhData> = {
  kind: 'match',
  name: 'srh',
  family: 'ip6',
  options: [...SRH_NUM_OPTS, ...SRH_SID_OPTS].map((name) => ({ name, arg: 1 as const, invert: true })),
  init: () => ({ nextHdr: 0, hdrLen: 0, segsLeft: 0, lastEntry: 0, tag: 0, given: new Map(), psid: undefined, nsid: undefined, lsid: undefined }),
  parse(d, opt, arg, invert, ctx) {
    if (opt === 'srh-psid' || opt === 'srh-nsid' || opt === 'srh-lsid') {
      const hm = parseHostMask(ctx.family, arg!, 'srh', opt);
      if (opt === 'srh-psid') d.psid = hm;
      else if (opt === 'srh-nsid') d.nsid = hm;
      else d.lsid = hm;
    } else {
      const field = FIELD_OF[opt as (typeof SRH_NUM_OPTS)[number]];
      d[field] = parseUintOpt(arg!, 0, field === 'tag' ? 0xffff : 0xff, 'srh', opt);
    }
    d.given.set(opt, invert);
  },
  save(d) {
    let s = '';
    for (const o of SRH_NUM_OPTS) {
      const inv = d.given.get(o);
      if (inv === undefined) continue;
      s += `${inv ? ' !' : ''} --${o} ${d[FIELD_OF[o]]}`;
    }
    for (const o of SRH_SID_OPTS) {
      const inv = d.given.get(o);
      const hm = o === 'srh-psid' ? d.psid : o === 'srh-nsid' ? d.nsid : d.lsid;
      if (inv === undefined || !hm) continue;
      const cidr = maskToCidr(hm.mask);
      // xtables_ip6mask_to_cidr() is -1 for a non-contiguous mask, printed with %u
      s += `${inv ? ' !' : ''} --${o} ${formatIPv6(hm.addr)}/${cidr < 0 ? 4294967295 : cidr}`;
    }
    return s;
  },
  ...compatMatchFaces(srh1Mt6, 1),
};


// --- reference semantics (ip6t_srh.c srh1_mt6, kernel 6.18) -----------------------------
const findOut: FindOut = { offset: 0, fragoff: 0 };
const IPV6_SRCRT_TYPE_4 = 4;

/**
 * srh1_mt6(): the routing header found by ipv6_find_hdr must be a segment
 * routing header (type 4) within the packet, with segments left <= last
 * entry; then each given test (XOR its inversion): next header, header
 * length, segments left, last entry (eq/gt/lt), tag, and the previous, next
 * and last SID under their masks (a missing SID does not match).
 */
function srh1Mt6(info: SrhData): MatchFn {
  const g = info.given;
  const field = (opt: string, v: number, want: number, cmp: (a: number, b: number) => boolean): boolean => {
    const inv = g.get(opt);
    return inv === undefined || cmp(v, want) !== inv;
  };
  const eq = (a: number, b: number) => a === b;
  const gt = (a: number, b: number) => a > b;
  const lt = (a: number, b: number) => a < b;
  const sid = (par: XtActionParam, off: number, hm: HostMask, inv: boolean): boolean => {
    const at = headerPointer(par, off, 16);
    if (at < 0) return false;
    return maskedAddrDiffers(par.d, at, hm.mask, hm.addr) === inv;
  };
  return (par) => {
    if (ipv6FindHdrTarget(par, 43, findOut) < 0) return false;
    const srhoff = findOut.offset;
    const h = headerPointer(par, srhoff, 8);
    if (h < 0) return false;
    const d = par.d;
    const hdrlen = ipv6Optlen(d[h + 1]!);
    if (par.end - par.nh - srhoff < hdrlen) return false;
    if (d[h + 2] !== IPV6_SRCRT_TYPE_4) return false;
    const segsLeft = d[h + 3]!;
    const firstSeg = d[h + 4]!;
    if (segsLeft > firstSeg) return false;
    if (!field('srh-next-hdr', d[h]!, info.nextHdr, eq)) return false;
    if (!field('srh-hdr-len-eq', d[h + 1]!, info.hdrLen, eq)) return false;
    if (!field('srh-hdr-len-gt', d[h + 1]!, info.hdrLen, gt)) return false;
    if (!field('srh-hdr-len-lt', d[h + 1]!, info.hdrLen, lt)) return false;
    if (!field('srh-segs-left-eq', segsLeft, info.segsLeft, eq)) return false;
    if (!field('srh-segs-left-gt', segsLeft, info.segsLeft, gt)) return false;
    if (!field('srh-segs-left-lt', segsLeft, info.segsLeft, lt)) return false;
    if (!field('srh-last-entry-eq', firstSeg, info.lastEntry, eq)) return false;
    if (!field('srh-last-entry-gt', firstSeg, info.lastEntry, gt)) return false;
    if (!field('srh-last-entry-lt', firstSeg, info.lastEntry, lt)) return false;
    if (!field('srh-tag', be16(d, h + 6), info.tag, eq)) return false;
    const ip = g.get('srh-psid');
    if (ip !== undefined && info.psid) {
      if (segsLeft === firstSeg) return false;
      if (!sid(par, srhoff + 8 + (segsLeft + 1) * 16, info.psid, ip)) return false;
    }
    const inn = g.get('srh-nsid');
    if (inn !== undefined && info.nsid) {
      if (segsLeft === 0) return false;
      if (!sid(par, srhoff + 8 + (segsLeft - 1) * 16, info.nsid, inn)) return false;
    }
    const il = g.get('srh-lsid');
    if (il !== undefined && info.lsid && !sid(par, srhoff + 8, info.lsid, il)) return false;
    return true;
  };
}
