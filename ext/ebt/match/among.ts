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
import {
  M_PROTOCOL, NFT_CMP_EQ, NFT_META_PROTOCOL, NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER, NFT_REG32_02, NFT_REG_1,
  NFT_SET_ANONYMOUS, NFT_SET_CONSTANT, NFT_SET_INTERVAL,
} from '../../../vm/layout.js';
import type { ProgramBuilder } from '../../../vm/builder.js';
import { NftSet } from '../../../vm/set.js';
import { emitCmp, emitLookup, emitMetaGet, emitPayload } from '../../../vm/expr/index.js';

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
  lower: { rev: 0, native: (b, d) => lowerAmong(b, d) },
  reference: { mt: (d, env) => (env.backend === 'legacy' ? (p) => ebtAmongMt(d, p) : (p) => nftAmongMt(d, p)) },
};

/** The anonymous sets already added to a program (nf_tables names them `__set%d` per table). */
const anonSets = new WeakMap<ProgramBuilder, number>();

const hasIp = (l: AmongList | undefined): boolean => l !== undefined && l.pairs.some((x) => x.ip !== undefined);

/**
 * add_nft_among() / __add_nft_among() (iptables 1.8.9 iptables/nft.c): with
 * a `MAC=IP` pair in either list `meta load protocol` + `cmp eq` IPv4; per
 * list (source first) an anonymous set of struct nft_among_pair keys (the
 * MAC, 2 bytes of padding, the IPv4 address when the list has pairs, then
 * an interval set where a MAC alone spans 0.0.0.0-255.255.255.255), the
 * MAC loaded into reg 1 and the address into reg 10 (the next 32-bit slot
 * after the padded MAC), then `lookup reg 1 set __setN` (0x1: `!`).
 */
function lowerAmong(b: ProgramBuilder, d: AmongData): void {
  if (hasIp(d.src) || hasIp(d.dst)) {
    emitMetaGet(b, NFT_REG_1, NFT_META_PROTOCOL);
    emitCmp(b, NFT_CMP_EQ, NFT_REG_1, [0x08, 0x00]);
  }
  for (const [l, macAt, ipAt] of [[d.src, 6, 12], [d.dst, 0, 16]] as const) {
    if (!l) continue;
    const ip = hasIp(l);
    const n = anonSets.get(b) ?? 0;
    anonSets.set(b, n + 1);
    const set = new NftSet(`__set${n}`, ip ? 12 : 6, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | (ip ? NFT_SET_INTERVAL : 0));
    for (const pr of l.pairs) {
      if (!ip) {
        set.add(pr.mac);
        continue;
      }
      const from = new Uint8Array(12);
      from.set(pr.mac);
      const to = from.slice();
      if (pr.ip) {
        from.set(pr.ip, 8);
        to.set(pr.ip, 8);
      } else to.fill(0xff, 8);
      set.addRange(from, to);
    }
    b.addSet(set);
    emitPayload(b, NFT_REG_1, NFT_PAYLOAD_LL_HEADER, macAt, 6);
    if (ip) emitPayload(b, NFT_REG32_02, NFT_PAYLOAD_NETWORK_HEADER, ipAt, 4);
    emitLookup(b, NFT_REG_1, set.name, l.invert, true);
  }
}

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
