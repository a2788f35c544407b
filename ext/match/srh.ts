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
  lower: 'needs the segment routing header behind the IPv6 extension headers (ipv6_find_hdr)',
  reference: 'needs the segment routing header behind the IPv6 extension headers (ipv6_find_hdr)',
};

