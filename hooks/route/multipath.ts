/**
 * The nexthop of a multipath route a forwarded packet takes (Linux 6.18):
 * IPv4 ip_mkroute_input() → fib_multipath_hash(net, NULL, skb) →
 * fib_select_multipath(res, hash); IPv6 ip6_pol_route() →
 * fib6_select_path() → rt6_multipath_hash(net, fl6, skb, NULL), the same
 * seed (net.ipv4.fib_multipath_hash_seed) and upper bounds.
 *
 *   net/ipv4/route.c        fib_multipath_hash(), ip_multipath_l3_keys()
 *   include/net/ip_fib.h    fib_multipath_hash_construct_key(), fib_multipath_hash_from_keys()
 *   net/core/flow_dissector.c __flow_hash_consistentify(), __flow_hash_from_keys(), flow_keys_hash_length()
 *   lib/siphash.c           siphash() (SipHash-2-4)
 *   net/ipv4/fib_semantics.c fib_rebalance() (upper bounds), fib_select_multipath()
 *   net/ipv6/route.c        rt6_multipath_hash(), ip6_multipath_l3_keys(), fib6_select_path()
 *
 * The hash is SipHash-2-4 over bytes [8, 56) of a zeroed struct flow_keys
 * (x86_64 layout: ip_proto at 2, ports at 28, addresses at 36 and 40 of
 * the hashed bytes; IPv6 [8, 80), the flow label at 4, addresses at 36
 * and 52), keyed with net.ipv4.fib_multipath_hash_seed four
 * times over, after the source and destination are put in order (and the
 * ports, independently) as native little-endian words; low 32 bits, 0 → 1,
 * then >> 1. Policy 0 hashes the addresses (an ICMP error's quoted header's),
 * policy 1 the addresses, protocol and ports, policy 2 (no encapsulation
 * here) as 0, policy 3 the fields of fib_multipath_hash_fields (outer
 * fields, then jhash_2words with an inner hash of 0: nothing is
 * encapsulated). A nexthop takes the hashes up to its upper bound,
 * DIV_ROUND_CLOSEST((weight so far) << 31, total weight) - 1, dead
 * nexthops none; the first live nexthop whose bound holds the hash wins.
 *
 * A seed of 0 makes the kernel use a random key chosen at boot, which no
 * snapshot holds: nfvm then hashes with key 0, and the nexthop a flow
 * takes is the kernel's only by chance (the spread over nexthops is alike).
 * Not modelled: fib_multipath_use_neigh (nexthops whose neighbour entry
 * failed), a hash the packet already carries (policy 1's skb->l4_hash),
 * nexthop objects (`ip nexthop`).
 */
import type { FibResult, Route } from './types.js';
import { jhash2words } from '../../vm/jhash.js';

/** The words of one SipHash state: v0..v3 as (lo, hi) pairs, kept between calls (no allocation per packet). */
const v = new Int32Array(8);

function rotl(i: number, s: number): void {
  // rotate the 64-bit word at v[i] (lo), v[i + 1] (hi) left by s (0 < s < 64, s !== 32 handled by swap)
  const lo = v[i]!;
  const hi = v[i + 1]!;
  if (s === 32) {
    v[i] = hi;
    v[i + 1] = lo;
  } else if (s < 32) {
    v[i] = (lo << s) | (hi >>> (32 - s));
    v[i + 1] = (hi << s) | (lo >>> (32 - s));
  } else {
    const t = s - 32;
    v[i] = (hi << t) | (lo >>> (32 - t));
    v[i + 1] = (lo << t) | (hi >>> (32 - t));
  }
}

/** v[a] += v[b] (64-bit). */
function add(a: number, b: number): void {
  const lo = (v[a]! >>> 0) + (v[b]! >>> 0);
  v[a] = lo | 0;
  v[a + 1] = (v[a + 1]! + v[b + 1]! + (lo > 0xffffffff ? 1 : 0)) | 0;
}

/** v[a] ^= v[b] (64-bit). */
function xor(a: number, b: number): void {
  v[a] = v[a]! ^ v[b]!;
  v[a + 1] = v[a + 1]! ^ v[b + 1]!;
}

const V0 = 0;
const V1 = 2;
const V2 = 4;
const V3 = 6;

function sipround(): void {
  add(V0, V1); rotl(V1, 13); xor(V1, V0); rotl(V0, 32);
  add(V2, V3); rotl(V3, 16); xor(V3, V2);
  add(V0, V3); rotl(V3, 21); xor(V3, V0);
  add(V2, V1); rotl(V1, 17); xor(V1, V2); rotl(V2, 32);
}

/**
 * siphash(data, len, key) for a key whose two 64-bit words are both
 * (seed << 32 | seed), over `words` little-endian 32-bit words (an even
 * number: whole 64-bit blocks, no tail); the low 32 bits of the result.
 */
export function siphashSeeded(words: Int32Array, n: number, seed: number): number {
  const k = seed | 0;
  // v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom", v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes"
  v[0] = 0x70736575 ^ k; v[1] = 0x736f6d65 ^ k;
  v[2] = 0x6e646f6d ^ k; v[3] = 0x646f7261 ^ k;
  v[4] = 0x6e657261 ^ k; v[5] = 0x6c796765 ^ k;
  v[6] = 0x79746573 ^ k; v[7] = 0x74656462 ^ k;
  for (let i = 0; i < n; i += 2) {
    const mlo = words[i]!;
    const mhi = words[i + 1]!;
    v[6] = v[6]! ^ mlo; v[7] = v[7]! ^ mhi;
    sipround(); sipround();
    v[0] = v[0]! ^ mlo; v[1] = v[1]! ^ mhi;
  }
  // b = len << 56: the byte count in the top byte
  const bhi = (n * 4) << 24;
  v[7] = v[7]! ^ bhi;
  sipround(); sipround();
  v[1] = v[1]! ^ bhi;
  v[4] = v[4]! ^ 0xff;
  sipround(); sipround(); sipround(); sipround();
  return (v[0]! ^ v[2]! ^ v[4]! ^ v[6]!) >>> 0;
}

/** The hashed bytes of an IPv4 struct flow_keys as 12 little-endian words (48 bytes), filled for each packet. */
const keys = new Int32Array(12);

/** FIB_MULTIPATH_HASH_FIELD_* (include/net/ip_fib.h). */
export const MP_SRC_IP = 0x1;
export const MP_DST_IP = 0x2;
export const MP_IP_PROTO = 0x4;
export const MP_FLOWLABEL = 0x8;
export const MP_SRC_PORT = 0x10;
export const MP_DST_PORT = 0x20;

/** A little-endian word of 4 bytes of `d` from `at`. */
function le32(d: Uint8Array, at: number): number {
  return d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16) | (d[at + 3]! << 24);
}

/**
 * fib_multipath_hash(net, NULL, skb) of the IPv4 packet in `d` (header at
 * `nh`, `len` bytes of it): the 31-bit hash, for `policy` with `fields`
 * (policy 3) and `seed`.
 */
export function fibMultipathHash4(d: Uint8Array, nh: number, len: number, policy: number, fields: number, seed: number): number {
  const ihl = (d[nh]! & 0x0f) * 4;
  const proto = d[nh + 9]!;
  const frag = ((d[nh + 6]! << 8) | d[nh + 7]!) & 0x3fff;
  const end = nh + len;
  let src = nh + 12;
  let dst = nh + 16;
  let want = MP_SRC_IP | MP_DST_IP;
  if (policy === 1) want = MP_SRC_IP | MP_DST_IP | MP_IP_PROTO | MP_SRC_PORT | MP_DST_PORT;
  else if (policy === 3) want = fields;
  else if (policy === 0 && proto === 1 && (frag & 0x1fff) === 0 && nh + ihl + 8 + 20 <= end) {
    // ip_multipath_l3_keys(): an ICMP error is hashed by the header it quotes
    const type = d[nh + ihl]!;
    if (type === 3 || type === 4 || type === 5 || type === 11 || type === 12) {
      src = nh + ihl + 8 + 12;
      dst = nh + ihl + 8 + 16;
    }
  }
  if (policy === 3 && (want & (MP_SRC_IP | MP_DST_IP | MP_IP_PROTO | MP_SRC_PORT | MP_DST_PORT)) === 0) return jhash2words(0, 0, 0) >>> 1;
  keys.fill(0);
  if (want & MP_IP_PROTO) keys[0] = proto << 16;
  keys[7] = portsWord(d, hasPorts(proto) && frag === 0 && nh + ihl + 4 <= end ? nh + ihl : -1, want);
  let sa = want & MP_SRC_IP ? le32(d, src) : 0;
  let da = want & MP_DST_IP ? le32(d, dst) : 0;
  // __flow_hash_consistentify(): the addresses in order as native words
  if (da >>> 0 < sa >>> 0) {
    const t = sa;
    sa = da;
    da = t;
  }
  keys[9] = sa;
  keys[10] = da;
  return hashKeys(keys, 12, policy, seed);
}

/** TCP, UDP, UDP-Lite, SCTP, DCCP and ESP (its SPI): the flow dissector's "ports" are the first 4 bytes past the header. */
function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33 || proto === 50;
}

/** The flow keys' ports word: the ports at `th` (-1: none) that `want` asks for, in order (__flow_hash_consistentify: native words). */
function portsWord(d: Uint8Array, th: number, want: number): number {
  let sp = th >= 0 && (want & MP_SRC_PORT) ? d[th]! | (d[th + 1]! << 8) : 0;
  let dp = th >= 0 && (want & MP_DST_PORT) ? d[th + 2]! | (d[th + 3]! << 8) : 0;
  if (dp < sp) {
    const t = sp;
    sp = dp;
    dp = t;
  }
  return sp | (dp << 16);
}

/** __flow_hash_from_keys() of the first `n` words of `k` (0 → 1), policy 3's jhash_2words with no inner hash (nothing encapsulated), >> 1. */
function hashKeys(k: Int32Array, n: number, policy: number, seed: number): number {
  let h = siphashSeeded(k, n, seed);
  if (h === 0) h = 1;
  if (policy === 3) h = jhash2words(h, 0, 0);
  return h >>> 1;
}

/**
 * fib_select_multipath() for a forwarded packet (no source preference):
 * the index of the first live nexthop whose upper bound holds `hash`
 * (fib_rebalance(): weights of the live nexthops; a dead one, or a
 * link-down one with ignore_routes_with_linkdown, holds none), or `dflt`
 * when none does.
 */
export function selectNexthop(route: Route, hash: number, ignoreLinkdown: (dev: string) => boolean, dflt: number): number {
  const nhs = route.nexthops;
  let total = 0;
  for (const nh of nhs) if (live(nh.flags, nh.dev, ignoreLinkdown)) total += nh.weight;
  if (total === 0) return dflt;
  let w = 0;
  for (let i = 0; i < nhs.length; i++) {
    const nh = nhs[i]!;
    if (!live(nh.flags, nh.dev, ignoreLinkdown)) continue;
    w += nh.weight;
    // DIV_ROUND_CLOSEST_ULL((u64)w << 31, total) - 1: exact in doubles (w << 31 < 2^53)
    const bound = Math.floor((w * 0x80000000 + Math.floor(total / 2)) / total) - 1;
    if (hash <= bound) return i;
  }
  return dflt;
}

function live(flags: readonly string[], dev: string, ignoreLinkdown: (dev: string) => boolean): boolean {
  return !flags.includes('dead') && !(flags.includes('linkdown') && ignoreLinkdown(dev));
}

/** The hashed bytes of an IPv6 struct flow_keys as 18 little-endian words (72 bytes). */
const keys6 = new Int32Array(18);

/**
 * rt6_multipath_hash(net, fl6, skb, NULL) of the IPv6 packet in `d` (header
 * at `nh`, `len` bytes; `l4` its transport protocol past the extension
 * headers and `th` its offset, -1 when not reached): the 31-bit hash.
 * Policy 0 (ip6_multipath_l3_keys): the addresses, the flow label as the
 * header holds it and the first next header, an ICMPv6 error's quoted
 * header's; 1: addresses, protocol and ports; 2: as the dissector gives
 * them, the flow label in host order; 3: the fields asked for.
 */
export function rt6MultipathHash(d: Uint8Array, nh: number, len: number, l4: number, th: number, frag: boolean, policy: number, fields: number, seed: number): number {
  const end = nh + len;
  let ip = nh;
  let proto = d[nh + 6]!;
  if (policy === 0 && proto === 58 && nh + 40 + 8 + 40 <= end) {
    const type = d[nh + 40]!;
    if (type >= 1 && type <= 4) {
      ip = nh + 48;
      proto = d[ip + 6]!;
    }
  }
  let want = MP_SRC_IP | MP_DST_IP | MP_IP_PROTO | MP_FLOWLABEL;
  let labelHost = false;
  if (policy === 1) {
    want = MP_SRC_IP | MP_DST_IP | MP_IP_PROTO | MP_SRC_PORT | MP_DST_PORT;
    proto = l4 < 0 ? proto : l4;
  } else if (policy === 2) {
    labelHost = true;
    proto = l4 < 0 ? proto : l4;
  } else if (policy === 3) {
    want = fields;
    labelHost = true;
    proto = l4 < 0 ? proto : l4;
  }
  if (policy === 3 && (want & (MP_SRC_IP | MP_DST_IP | MP_IP_PROTO | MP_FLOWLABEL | MP_SRC_PORT | MP_DST_PORT)) === 0) return jhash2words(0, 0, 0) >>> 1;
  keys6.fill(0);
  if (want & MP_IP_PROTO) keys6[0] = proto << 16;
  if (want & MP_FLOWLABEL) {
    const label = ((d[ip + 1]! & 0x0f) << 16) | (d[ip + 2]! << 8) | d[ip + 3]!;
    // raw __be32 (ip6_flowlabel): the header's bytes as they are; the dissector's: the number in host order
    keys6[1] = labelHost ? label : ((d[ip + 1]! & 0x0f) << 8) | (d[ip + 2]! << 16) | (d[ip + 3]! << 24);
  }
  keys6[7] = portsWord(d, (policy === 1 || policy === 3) && th >= 0 && !frag && hasPorts(l4) && th + 4 <= end ? th : -1, want);
  // __flow_hash_consistentify(): the addresses by memcmp (an address not hashed is zeros)
  const srcOn = (want & MP_SRC_IP) !== 0;
  const dstOn = (want & MP_DST_IP) !== 0;
  let swap = false;
  for (let i = 0; i < 16; i++) {
    const a = dstOn ? d[ip + 24 + i]! : 0;
    const b = srcOn ? d[ip + 8 + i]! : 0;
    if (a !== b) {
      swap = a < b;
      break;
    }
  }
  const srcAt = ip + 8;
  const dstAt = ip + 24;
  for (let w = 0; w < 4; w++) {
    const s = srcOn ? le32(d, srcAt + 4 * w) : 0;
    const t = dstOn ? le32(d, dstAt + 4 * w) : 0;
    keys6[9 + w] = swap ? t : s;
    keys6[13 + w] = swap ? s : t;
  }
  return hashKeys(keys6, 18, policy, seed);
}

/** The sysctls of the hash: net.ipv{4,6}.fib_multipath_hash_policy and _fields; net.ipv4.fib_multipath_hash_seed for both families. */
export class MultipathConf {
  readonly policy: number;
  readonly fields: number;
  readonly seed: number;
  /** A nexthop through a device without carrier is passed over (ignore_routes_with_linkdown). */
  private readonly ignoreLinkdown: (dev: string) => boolean;
  constructor(sysctl: { num(key: string): number; devConf(family: 4 | 6, dev: string, name: string): number }, family: 4 | 6) {
    const n = (k: string, dflt: number) => {
      const x = sysctl.num(k);
      return Number.isNaN(x) ? dflt : x;
    };
    this.policy = n(`net.ipv${family}.fib_multipath_hash_policy`, 0);
    this.fields = n(`net.ipv${family}.fib_multipath_hash_fields`, 7);
    this.seed = n('net.ipv4.fib_multipath_hash_seed', 0);
    this.ignoreLinkdown = (dev) => sysctl.devConf(family, dev, 'ignore_routes_with_linkdown') !== 0;
  }

  /** fib_select_multipath() / fib6_select_path(): the nexthop of `res`'s route the packet's hash picks. */
  select(res: FibResult & { ok: true }, hash: number): number {
    return selectNexthop(res.route, hash, this.ignoreLinkdown, nexthopIndex(res));
  }

  /** The trace's note of the choice. */
  note(hash: number, k: number, of: number): string {
    const seed = this.seed === 0 ? ' (fib_multipath_hash_seed 0: the kernel hashes with a key random per boot, nfvm with 0)' : '';
    return `multipath: hash ${hash} (policy ${this.policy}) picks nexthop ${k + 1} of ${of}${seed}`;
  }
}

/** The index of the nexthop `res` went through in its route (fib_table_lookup's first usable one). */
export function nexthopIndex(res: FibResult & { ok: true }): number {
  const nhs = res.route.nexthops;
  let i = 0;
  while (i < nhs.length - 1 && !(nhs[i]!.dev === res.dev && nhs[i]!.gateway === res.gateway)) i++;
  return i;
}

/** A route of the FIB has several nexthops (the forwarded packets' routes then depend on their hash). */
export function hasMultipath(fib: { readonly tables: ReadonlyMap<number, { routes(): readonly Route[] }> }): boolean {
  for (const t of fib.tables.values()) if (t.routes().some((r) => r.nexthops.length > 1)) return true;
  return false;
}
