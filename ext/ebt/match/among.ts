/**
 * among match: iptables `extensions/libebt_among.c` (ebtables-nft: an
 * anonymous set of `ether_addr` or `ether_addr . ipv4_addr` elements),
 * kernel `net/bridge/netfilter/ebt_among.c`: the source or destination MAC
 * (and, for `MAC=IP` pairs, the IPv4/ARP address) is one of a list.
 */
import { fail } from '../../../core/errors.js';
import { etherAton, etherNtoa, formatIPv4, parseIPv4 } from '../../../core/addr.js';
import type { EbtModule, EbtParam, EbtParseContext } from '../types.js';
import { ebtHeader } from '../ref.js';
import { M_PROTOCOL } from '../../../vm/layout.js';

/** One list element: 6 MAC bytes and, for a pair, 4 IPv4 bytes. */
interface AmongPair {
  mac: Uint8Array;
  ip: Uint8Array | undefined;
}

interface AmongList {
  pairs: AmongPair[];
  invert: boolean;
}

interface AmongData {
  dst: AmongList | undefined;
  src: AmongList | undefined;
}

/** Upper bound on the elements of one list (the input is untrusted). */
const MAX_PAIRS = 65536;

/** parse_nft_among_pair(): `mac[=ip]`, comma separated; set semantics (sorted, duplicates once). */
function parseList(text: string): AmongPair[] {
  const out = new Map<string, AmongPair>();
  for (const item of text.trim().split(',')) {
    const eq = item.indexOf('=');
    const macText = eq < 0 ? item : item.slice(0, eq);
    let ip: Uint8Array | undefined;
    if (eq >= 0) {
      ip = parseIPv4(item.slice(eq + 1));
      if (!ip) fail(`Invalid IP address '${item.slice(eq + 1)}'`);
    }
    const mac = etherAton(macText);
    if (!mac) fail(`Invalid MAC address '${macText}'`);
    const key = Buffer.concat([mac, ip ?? new Uint8Array(4)]).toString('hex');
    out.set(key, { mac, ip });
    if (out.size > MAX_PAIRS) fail('too many among elements');
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
}

function listFrom(opt: string, arg: string, ctx: EbtParseContext): string {
  if (!opt.endsWith('-file')) return arg;
  if (!ctx.readFile) fail(`--${opt}: no file may be read here`);
  return ctx.readFile(arg);
}

const formatList = (l: AmongList): string =>
  l.pairs.map((p) => etherNtoa(p.mac) + (p.ip ? `=${formatIPv4(p.ip)}` : '')).join(',');

export const among: EbtModule<AmongData> = {
  kind: 'match',
  name: 'among',
  options: [
    { name: 'among-dst', arg: 1, invert: true },
    { name: 'among-src', arg: 1, invert: true },
    { name: 'among-dst-file', arg: 1, invert: true },
    { name: 'among-src-file', arg: 1, invert: true },
  ],
  init: () => ({ dst: undefined, src: undefined }),
  parse(d, opt, arg, invert, ctx) {
    const dst = opt.startsWith('among-dst');
    if ((dst ? d.dst : d.src) !== undefined) fail(`--among-${dst ? 'dst' : 'src'} may be given once`, 'option');
    const list = { pairs: parseList(listFrom(opt, arg!, ctx)), invert };
    if (dst) d.dst = list;
    else d.src = list;
  },
  save(d) {
    let s = '';
    if (d.dst) s += `${d.dst.invert ? ' !' : ''} --among-dst ${formatList(d.dst)}`;
    if (d.src) s += `${d.src.invert ? ' !' : ''} --among-src ${formatList(d.src)}`;
    return s;
  },
  lower: 'ebtables-nft lowers among to an anonymous set lookup (interval and concatenated with the IPv4 address for MAC=IP pairs); nfvm does not lower it yet',
  reference: { mt: (d, env) => (env.backend === 'legacy' ? (p) => ebtAmongMt(d, p) : (p) => nftAmongMt(d, p)) },
};

const ipOf = (ip: Uint8Array | undefined): number => (ip ? ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0 : 0);
const be32 = (dd: Uint8Array, at: number): number => ((dd[at]! << 24) | (dd[at + 1]! << 16) | (dd[at + 2]! << 8) | dd[at + 3]!) >>> 0;

/** ebt_mac_wormhash_contains(): the MAC with no IP, or with this IP when the frame has one (`ip` != 0). */
function wormhashContains(l: AmongList, dd: Uint8Array, at: number, ip: number): boolean {
  for (const pr of l.pairs) {
    let same = true;
    for (let i = 0; i < 6; i++) if (dd[at + i] !== pr.mac[i]) same = false;
    if (!same) continue;
    const pip = ipOf(pr.ip);
    if (pip === 0 || (ip !== 0 && pip === ip)) return true;
  }
  return false;
}

/**
 * get_ip_src() / get_ip_dst(): the IPv4 source/destination, or the ARP
 * sender/target protocol address, 0 for other frames; -1 when the header
 * is short (the match fails).
 */
function frameIp(p: EbtParam, dst: boolean): number {
  const proto = p.nh >= 2 ? (p.d[p.nh - 2]! << 8) | p.d[p.nh - 1]! : 0;
  if (proto === 0x0800) {
    const ih = ebtHeader(p, 0, 20);
    return ih < 0 ? -1 : be32(p.d, ih + (dst ? 16 : 12));
  }
  if (proto === 0x0806) {
    const ah = ebtHeader(p, 0, 8);
    if (ah < 0 || p.d[ah + 5] !== 4 || p.d[ah + 4] !== 6) return -1;
    const bp = ebtHeader(p, dst ? 8 + 12 + 4 : 8 + 6, 4);
    return bp < 0 ? -1 : be32(p.d, bp);
  }
  return 0;
}

/** ebt_among_mt() (net/bridge/netfilter/ebt_among.c). */
function ebtAmongMt(d: AmongData, p: EbtParam): boolean {
  if (d.src) {
    const ip = frameIp(p, false);
    if (ip < 0) return false;
    if (wormhashContains(d.src, p.d, 6, ip) === d.src.invert) return false;
  }
  if (d.dst) {
    const ip = frameIp(p, true);
    if (ip < 0) return false;
    if (wormhashContains(d.dst, p.d, 0, ip) === d.dst.invert) return false;
  }
  return true;
}

/**
 * What ebtables-nft loads instead (add_nft_among(), iptables 1.8.9): with a
 * `MAC=IP` pair in either list, `meta protocol` must be IPv4; each list is a
 * lookup of the MAC (at link header +6 / +0), concatenated with the IPv4
 * source/destination (network header +12 / +16) when the list has pairs, in
 * an interval set where a MAC without IP covers every address.
 */
function nftAmongMt(d: AmongData, p: EbtParam): boolean {
  const hasIp = (l: AmongList | undefined) => l !== undefined && l.pairs.some((x) => x.ip !== undefined);
  if ((hasIp(d.src) || hasIp(d.dst)) && p.meta[M_PROTOCOL] !== 0x0800) return false;
  for (const [l, macAt, ipOff] of [[d.src, 6, 12], [d.dst, 0, 16]] as const) {
    if (!l) continue;
    let ip = -1;
    if (hasIp(l)) {
      const at = ebtHeader(p, ipOff, 4);
      if (at < 0) return false; // the payload load breaks
      ip = be32(p.d, at);
    }
    let found = false;
    for (const pr of l.pairs) {
      let same = true;
      for (let i = 0; i < 6; i++) if (p.d[macAt + i] !== pr.mac[i]) same = false;
      if (same && (ip < 0 || pr.ip === undefined || ipOf(pr.ip) === ip)) {
        found = true;
        break;
      }
    }
    if (found === l.invert) return false;
  }
  return true;
}
