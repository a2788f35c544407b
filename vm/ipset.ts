/**
 * The node's ipsets (net/netfilter/ipset/, Linux 6.18): every set type with
 * its extensions, and the kernel side of the `set` match and the `SET`
 * target (ip_set_test / ip_set_add / ip_set_del and each type's kadt), which
 * both engines call: iptables-nft lowers `-m set` and `-j SET` to the xt
 * compat expressions that run the same xt_set.c code.
 *
 *   hash:*      ip_set_hash_gen.h over an open-addressing table of int32 keys
 *               (IpSetTable); the net types keep, per net dimension, the
 *               prefix lengths present, most specific first (h->nets[]), and
 *               a packet is tested against each in turn (mtype_test_cidrs):
 *               one hash probe per prefix length, never a scan of the entries
 *   bitmap:*    ip_set_bitmap_gen.h: the element's id (offset in the range)
 *               is the table key
 *   list:set    ip_set_list_set.c: the member sets in order
 *
 * Extensions (ip_set.h): timeout on the node's clock (store.nowMs, set from
 * the packets' times; a snapshot's remaining timeouts count from its first
 * packet), counters, comment, skbinfo; nomatch entries of the net types.
 * Differences from the kernel, where it cannot be reproduced: entries are
 * kept and printed in insertion order (the kernel's order is its jhash with a
 * random initval), forceadd on a full set evicts the oldest entry (the kernel
 * evicts the first one of the new entry's bucket), and an expired entry
 * counts as gone at once (the kernel's garbage collector runs periodically).
 */
import { F_MAC_HEADER, M_FRAGOFF, M_IIFNAME, M_LEN, M_MACOFF, M_MARK, M_NFPROTO, M_NHOFF, M_OIFNAME, M_PRIORITY } from './layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC } from '../core/netfilter.js';
import type { Packet } from './packet.js';
import { M_FLAGS } from './layout.js';

/** What a dimension of a set type holds (the element's parts, in order). */
export const D_IP = 0;
export const D_NET = 1;
export const D_PORT = 2;
export const D_MARK = 3;
export const D_IFACE = 4;
export const D_MAC = 5;

export interface IpSetType {
  readonly name: string;
  /** Element parts, one per dimension (empty for list:set). */
  readonly dims: readonly number[];
  readonly kind: 'hash' | 'bitmap' | 'list';
  /** The type's family is NFPROTO_UNSPEC (hash:mac, bitmap:port, list:set): any packet family. */
  readonly anyFamily?: boolean;
  /** IPSET_TYPE_NOMATCH: entries may be `nomatch`. */
  readonly nomatch?: boolean;
  /** The net dimensions accept /0 (hash:net,net, hash:net,port,net). */
  readonly zeroCidr?: boolean;
}

/** Every set type of the kernel, by name. */
export const IPSET_TYPES: ReadonlyMap<string, IpSetType> = new Map(
  ([
    { name: 'hash:ip', dims: [D_IP], kind: 'hash' },
    { name: 'hash:net', dims: [D_NET], kind: 'hash', nomatch: true },
    { name: 'hash:ip,port', dims: [D_IP, D_PORT], kind: 'hash' },
    { name: 'hash:net,port', dims: [D_NET, D_PORT], kind: 'hash', nomatch: true },
    { name: 'hash:ip,port,ip', dims: [D_IP, D_PORT, D_IP], kind: 'hash' },
    { name: 'hash:ip,port,net', dims: [D_IP, D_PORT, D_NET], kind: 'hash', nomatch: true },
    { name: 'hash:ip,mark', dims: [D_IP, D_MARK], kind: 'hash' },
    { name: 'hash:ip,mac', dims: [D_IP, D_MAC], kind: 'hash' },
    { name: 'hash:net,port,net', dims: [D_NET, D_PORT, D_NET], kind: 'hash', nomatch: true, zeroCidr: true },
    { name: 'hash:net,net', dims: [D_NET, D_NET], kind: 'hash', nomatch: true, zeroCidr: true },
    { name: 'hash:net,iface', dims: [D_NET, D_IFACE], kind: 'hash', nomatch: true },
    { name: 'hash:mac', dims: [D_MAC], kind: 'hash', anyFamily: true },
    { name: 'bitmap:ip', dims: [D_IP], kind: 'bitmap' },
    { name: 'bitmap:ip,mac', dims: [D_IP, D_MAC], kind: 'bitmap' },
    { name: 'bitmap:port', dims: [D_PORT], kind: 'bitmap', anyFamily: true },
    { name: 'list:set', dims: [], kind: 'list', anyFamily: true },
  ] as IpSetType[]).map((t) => [t.name, Object.freeze(t)]),
);

/** Set-wide options of `ipset create` (what the kernel keeps of them). */
export interface IpSetOptions {
  /** NFPROTO_IPV4 or NFPROTO_IPV6 (hash types but hash:mac), NFPROTO_UNSPEC otherwise. */
  family: number;
  hashsize: number;
  maxelem: number;
  /** hash:ip netmask (prefix length), undefined when not given. */
  netmask: number | undefined;
  /** hash:ip,mark markmask. */
  markmask: number;
  /** Default timeout in seconds; undefined = no timeout extension. */
  timeout: number | undefined;
  counters: boolean;
  comment: boolean;
  skbinfo: boolean;
  forceadd: boolean;
  /** bitmap:ip range (host order) and netmask; bitmap:port range; list:set size. */
  first: number;
  last: number;
  size: number;
  /** bucketsize and initval as given (printed back; the kernel's hashing is not modelled). */
  bucketsize: number | undefined;
  initval: number | undefined;
}

export function defaultOptions(): IpSetOptions {
  return {
    family: NFPROTO_IPV4, hashsize: 1024, maxelem: 65536, netmask: undefined, markmask: 0xffffffff, timeout: undefined,
    counters: false, comment: false, skbinfo: false, forceadd: false, first: 0, last: 0, size: 8, bucketsize: undefined, initval: undefined,
  };
}

/** The extensions of an element being added (struct ip_set_ext); -1 = not given. */
export interface IpSetExt {
  /** Seconds; -1 = the set's default. */
  timeout: number;
  packets: number;
  bytes: number;
  comment: string | undefined;
  skbmark: number;
  skbmarkmask: number;
  skbprio: number;
  skbqueue: number;
  nomatch: boolean;
}

export function noExt(): IpSetExt {
  return { timeout: -1, packets: -1, bytes: -1, comment: undefined, skbmark: 0, skbmarkmask: 0, skbprio: 0, skbqueue: 0, nomatch: false };
}

/** ip_set_test/ip_set_add/ip_set_del cmdflags (include/uapi/linux/netfilter/ipset/ip_set.h). */
export const IPSET_FLAG_EXIST = 1 << 0;
export const IPSET_FLAG_RETURN_NOMATCH = 1 << 7;
export const IPSET_FLAG_MAP_SKBMARK = 1 << 8;
export const IPSET_FLAG_MAP_SKBPRIO = 1 << 9;
export const IPSET_FLAG_MAP_SKBQUEUE = 1 << 10;
export const IPSET_FLAG_SKIP_COUNTER_UPDATE = 1 << 11;
export const IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE = 1 << 12;
export const IPSET_FLAG_MATCH_COUNTERS = 1 << 13;
/** Dimension flags (xt_set_info.flags): bit 0 inverts, bit i is "dimension i from the source". */
export const IPSET_INV_MATCH = 1;

/** enum ip_set_counter_op */
export const IPSET_COUNTER_NONE = 0;
export const IPSET_COUNTER_EQ = 1;
export const IPSET_COUNTER_NE = 2;
export const IPSET_COUNTER_LT = 3;
export const IPSET_COUNTER_GT = 4;

const EEXIST = -1;
const ENOTEMPTY = -39;
const EINVAL = -22;
const EAGAIN = -11;

/** The counters of an element a match compared (mext), and the skbinfo it read. */
export class IpSetOpt {
  /** Number of dimensions given (xt_set_info.dim). */
  dim = 0;
  /** xt_set_info.flags: IPSET_INV_MATCH and the src bits. */
  flags = 0;
  cmdflags = 0;
  /** Seconds for additions; -1 = the set's default (IPSET_NO_TIMEOUT). */
  timeout = -1;
  packetsOp = 0;
  packets = 0;
  bytesOp = 0;
  bytes = 0;
  /** mext.skbinfo of the matched element. */
  skbmark = 0;
  skbmarkmask = 0;
  skbprio = 0;
  skbqueue = 0;
}

/**
 * Fixed-width int32 keys to element numbers: open addressing with linear
 * probing; each slot holds the element number and a copy of its key, so a
 * probe reads one cache line. Deleted slots are tombstones (-2) until the
 * next rebuild; -1 is empty.
 */
class IpSetTable {
  cap = 16;
  readonly stride: number;
  tab: Int32Array;
  used = 0;
  /** `kw` key words, taken from the start of each element's key in the keys array (`elemStride` words apart). */
  constructor(
    readonly kw: number,
    readonly elemStride = kw,
  ) {
    this.stride = kw + 1;
    this.tab = IpSetTable.empty(16, this.stride);
  }

  private static empty(cap: number, stride: number): Int32Array {
    const t = new Int32Array(cap * stride);
    for (let i = 0; i < cap; i++) t[i * stride] = -1;
    return t;
  }

  hash(k: Int32Array, at: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < this.kw; i++) {
      h = Math.imul(h ^ k[at + i]!, 0x01000193);
      h ^= h >>> 15;
    }
    return h;
  }

  /** The element whose key equals k[at..at+kw), or -1. */
  find(k: Int32Array, at: number): number {
    const kw = this.kw;
    const stride = this.stride;
    const tab = this.tab;
    const mask = this.cap - 1;
    let i = this.hash(k, at) & mask;
    for (;;) {
      const b = i * stride;
      const e = tab[b]!;
      if (e === -1) return -1;
      if (e >= 0) {
        let j = 0;
        while (j < kw && tab[b + 1 + j] === k[at + j]) j++;
        if (j === kw) return e;
      }
      i = (i + 1) & mask;
    }
  }

  /**
   * A multimap walk: the highest element other than `e` whose key equals
   * k[at..at+kw), or -1.
   */
  lastOther(k: Int32Array, at: number, e: number): number {
    const kw = this.kw;
    const stride = this.stride;
    const tab = this.tab;
    const mask = this.cap - 1;
    let best = -1;
    let i = this.hash(k, at) & mask;
    for (;;) {
      const b = i * stride;
      const o = tab[b]!;
      if (o === -1) return best;
      if (o >= 0 && o !== e && o > best) {
        let j = 0;
        while (j < kw && tab[b + 1 + j] === k[at + j]) j++;
        if (j === kw) best = o;
      }
      i = (i + 1) & mask;
    }
  }

  /** Adds element e whose key is keys[e * elemStride..]. */
  insert(keys: Int32Array, e: number): void {
    if ((this.used + 1) * 2 > this.cap) this.rebuild(this.cap * 2);
    this.put(keys, e * this.elemStride, e);
  }

  private put(src: Int32Array, at: number, e: number): void {
    const mask = this.cap - 1;
    const stride = this.stride;
    let i = this.hash(src, at) & mask;
    while (this.tab[i * stride]! >= 0) i = (i + 1) & mask;
    const b = i * stride;
    if (this.tab[b] === -1) this.used++;
    this.tab[b] = e;
    for (let j = 0; j < this.kw; j++) this.tab[b + 1 + j] = src[at + j]!;
  }

  remove(keys: Int32Array, e: number): void {
    const mask = this.cap - 1;
    let i = this.hash(keys, e * this.elemStride) & mask;
    while (this.tab[i * this.stride] !== e) i = (i + 1) & mask;
    this.tab[i * this.stride] = -2;
  }

  /** Rebuilds with `cap` slots: from the live elements (`live[e]` nonzero, keys in `keys`) when given, else from the table itself. */
  rebuild(cap: number, keys?: Int32Array, live?: Uint8Array, n = 0): void {
    const old = this.tab;
    const oldCap = this.cap;
    const stride = this.stride;
    this.cap = cap;
    this.tab = IpSetTable.empty(cap, stride);
    this.used = 0;
    if (keys && live) {
      for (let e = 0; e < n; e++) if (live[e]) this.put(keys, e * this.elemStride, e);
      return;
    }
    for (let i = 0; i < oldCap; i++) if (old[i * stride]! >= 0) this.put(old, i * stride + 1, old[i * stride]!);
  }
}

/** One set: its type, options, elements and extensions. */
export class IpSet {
  /** Words of an element key. */
  readonly kw: number;
  /** Word offset of each dimension's part in the key. */
  readonly at: readonly number[];
  /** Address words (1 for inet, 4 for inet6). */
  readonly aw: number;
  private readonly table: IpSetTable;
  /**
   * hash:net,iface: the elements by their net part alone (address and
   * prefix length), as the kernel's bucket holds every interface of one net
   * (HKEY_DATALEN leaves the name out): mtype_test_cidrs stops at the first
   * prefix length where such an element has another interface
   * (IP_SET_HASH_WITH_MULTI).
   */
  private readonly netIdx: IpSetTable | undefined;
  /** Elements, append-only between compactions: key words, flags, extensions. */
  keys: Int32Array;
  live: Uint8Array;
  nomatch: Uint8Array;
  /** Absolute expiry on the store clock (ms); Infinity = permanent. */
  expires: Float64Array;
  packets: Float64Array;
  bytes: Float64Array;
  skb: Int32Array;
  comments: (string | undefined)[] = [];
  /** bitmap:ip,mac: the element's MAC is filled (MAC_FILLED). */
  macFilled: Uint8Array;
  /**
   * bitmap:ip,mac with timeouts: the plain timeout (seconds) an element
   * without its MAC keeps; its timer starts when the MAC is filled
   * (bitmap_ipmac_add_timeout), and `ipset save` prints it as stored.
   */
  plain: Float64Array;
  n = 0;
  count = 0;
  /** list:set: member set indices, in order. */
  members: number[] = [];
  /** Net types: per net dimension, how many elements use each prefix length, and those present, most specific first. */
  readonly cidrCount: Int32Array[] = [];
  readonly cidrs: Int32Array[] = [];
  readonly cidrN: Int32Array;
  /** Scratch key of lookups. */
  private readonly k: Int32Array;
  private readonly k2: Int32Array;

  constructor(
    readonly name: string,
    readonly type: IpSetType,
    readonly opts: IpSetOptions,
  ) {
    this.aw = opts.family === NFPROTO_IPV6 ? 4 : 1;
    const at: number[] = [];
    let w = 0;
    for (const d of type.dims) {
      at.push(w);
      if (type.kind === 'bitmap') {
        w = 1;
        break;
      }
      w += d === D_IP ? this.aw : d === D_NET ? this.aw + 1 : d === D_IFACE ? 5 : d === D_MAC ? 2 : 1;
    }
    this.at = at;
    this.kw = Math.max(1, w);
    this.table = new IpSetTable(this.kw);
    this.netIdx = type.name === 'hash:net,iface' ? new IpSetTable(this.aw + 1, this.kw) : undefined;
    this.keys = new Int32Array(16 * this.kw);
    this.live = new Uint8Array(16);
    this.nomatch = new Uint8Array(16);
    this.expires = new Float64Array(16);
    this.packets = new Float64Array(16);
    this.bytes = new Float64Array(16);
    this.skb = new Int32Array(16 * 4);
    this.macFilled = new Uint8Array(16);
    this.plain = new Float64Array(16);
    this.k = new Int32Array(this.kw);
    this.k2 = new Int32Array(this.kw);
    const host = this.aw * 32;
    for (let i = 0; i < type.dims.length; i++) {
      if (type.dims[i] !== D_NET || type.kind !== 'hash') continue;
      this.cidrCount.push(new Int32Array(host + 1));
      this.cidrs.push(new Int32Array(host + 1));
    }
    this.cidrN = new Int32Array(this.cidrs.length);
  }

  get hostMask(): number {
    return this.aw * 32;
  }

  /** The dimensions the type needs (set->type->dimension). */
  get dimension(): number {
    return this.type.kind === 'list' ? 1 : this.type.dims.length;
  }

  /** Element e is present and not expired at `now`. */
  alive(e: number, now: number): boolean {
    return this.live[e] === 1 && !(this.expires[e]! < now);
  }

  /** The element of key `k`, or -1 (expired ones included). */
  findKey(k: Int32Array): number {
    return this.table.find(k, 0);
  }

  /**
   * hash:net,iface (hash_netiface4_data_equal counts `multi` for every entry
   * of the bucket with the same net, whatever its interface, and a match
   * that fails resets it): after testing `e` (-1: no entry has the packet's
   * interface) at this prefix length, whether entries of the same net with
   * another interface follow it in the bucket, which ends the walk over
   * prefix lengths. Bucket order is insertion order here.
   */
  multiStops(k: Int32Array, e: number): boolean {
    const o = this.netIdx!.lastOther(k, 0, e);
    return o >= 0 && o > e;
  }

  private grow(): void {
    const cap = this.live.length * 2;
    const g64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const g8 = (a: Uint8Array) => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    const keys = new Int32Array(cap * this.kw);
    keys.set(this.keys);
    this.keys = keys;
    const skb = new Int32Array(cap * 4);
    skb.set(this.skb);
    this.skb = skb;
    this.live = g8(this.live);
    this.nomatch = g8(this.nomatch);
    this.macFilled = g8(this.macFilled);
    this.plain = g64(this.plain);
    this.expires = g64(this.expires);
    this.packets = g64(this.packets);
    this.bytes = g64(this.bytes);
  }

  /** Drops deleted elements from the arrays (insertion order kept). */
  private compact(): void {
    let j = 0;
    const kw = this.kw;
    for (let e = 0; e < this.n; e++) {
      if (!this.live[e]) continue;
      if (j !== e) {
        this.keys.copyWithin(j * kw, e * kw, e * kw + kw);
        this.skb.copyWithin(j * 4, e * 4, e * 4 + 4);
        this.live[j] = 1;
        this.nomatch[j] = this.nomatch[e]!;
        this.macFilled[j] = this.macFilled[e]!;
        this.plain[j] = this.plain[e]!;
        this.expires[j] = this.expires[e]!;
        this.packets[j] = this.packets[e]!;
        this.bytes[j] = this.bytes[e]!;
        this.comments[j] = this.comments[e];
      }
      j++;
    }
    for (let e = j; e < this.n; e++) this.live[e] = 0;
    this.comments.length = j;
    this.n = j;
    let cap = 16;
    while (cap < j * 2 + 2) cap *= 2;
    this.table.rebuild(cap, this.keys, this.live, j);
    this.netIdx?.rebuild(cap, this.keys, this.live, j);
  }

  private cidrAdd(key: Int32Array, delta: number): void {
    let ni = 0;
    for (let i = 0; i < this.type.dims.length; i++) {
      if (this.type.dims[i] !== D_NET) continue;
      const c = key[this.at[i]! + this.aw]!;
      const counts = this.cidrCount[ni]!;
      const before = counts[c]!;
      counts[c] = before + delta;
      if ((before === 0) !== (counts[c] === 0)) {
        // the prefix lengths present, most specific first (mtype_add_cidr / mtype_del_cidr)
        const list = this.cidrs[ni]!;
        let n = 0;
        for (let p = counts.length - 1; p >= 0; p--) if (counts[p]! > 0) list[n++] = p;
        this.cidrN[ni] = n;
      }
      ni++;
    }
  }

  /** The most specific prefix length of net dimension `ni` (INIT_CIDR: HOST_MASK when the set has none). */
  initCidr(ni: number): number {
    return this.cidrN[ni]! > 0 ? this.cidrs[ni]![0]! : this.hostMask;
  }

  /** Removes element e (its key leaves the table and the prefix counts). */
  private drop(e: number): void {
    this.table.remove(this.keys, e);
    this.netIdx?.remove(this.keys, e);
    this.live[e] = 0;
    this.count--;
    this.comments[e] = undefined;
    if (this.cidrs.length) this.cidrAdd(this.keys.subarray(e * this.kw, e * this.kw + this.kw), -1);
  }

  /**
   * Sets the extensions of element e (the add path, new or overwritten:
   * overwrite_extensions). `startStored`: a bitmap:ip,mac element got its
   * MAC (IPSET_ADD_START_STORED_TIMEOUT): a timeout equal to the set's
   * default (none given) takes the stored plain one.
   */
  private setExt(e: number, ext: IpSetExt, now: number, startStored = false): void {
    let t = ext.timeout >= 0 ? ext.timeout : this.opts.timeout ?? 0;
    if (startStored && t === this.opts.timeout) t = this.plain[e]!;
    if (this.type.name === 'bitmap:ip,mac' && this.opts.timeout !== undefined && !this.macFilled[e]) {
      // MAC not set yet: the plain value is stored, the timer does not run
      this.plain[e] = t;
      this.expires[e] = Infinity;
    } else this.expires[e] = this.opts.timeout !== undefined && t > 0 ? now + t * 1000 : Infinity;
    this.packets[e] = ext.packets >= 0 ? ext.packets : 0;
    this.bytes[e] = ext.bytes >= 0 ? ext.bytes : 0;
    this.comments[e] = this.opts.comment ? ext.comment : undefined;
    const s = e * 4;
    this.skb[s] = ext.skbmark;
    this.skb[s + 1] = ext.skbmarkmask;
    this.skb[s + 2] = ext.skbprio;
    this.skb[s + 3] = ext.skbqueue;
    this.nomatch[e] = ext.nomatch && this.type.nomatch ? 1 : 0;
  }

  /**
   * mtype_add: the element of key `k` (its extensions from `ext`). 0 when
   * added or overwritten, EEXIST when present and `exist` not given, or
   * IPSET_ERR_HASH_FULL (-2) when the set is full.
   */
  addKey(k: Int32Array, ext: IpSetExt, exist: boolean, now: number, macFill = false): number {
    let e = this.table.find(k, 0);
    if (e >= 0) {
      let expired = this.expires[e]! < now;
      let startStored = false;
      if (this.type.name === 'bitmap:ip,mac') {
        // bitmap_ipmac_do_add: an element without its MAC gets the packet's; a filled one only with --exist
        if (!this.macFilled[e] && macFill) {
          this.macFilled[e] = 1;
          this.writeMac(e);
          startStored = true;
        } else {
          // mtype_add reads an unfilled element's plain timeout as a jiffies time long past: expired
          if (!this.macFilled[e] && this.opts.timeout !== undefined) expired = true;
          if (!exist && !expired) return EEXIST;
          if (macFill) {
            this.macFilled[e] = 1;
            this.writeMac(e);
          } else if (expired) this.macFilled[e] = 0;
        }
      } else if (!exist && !expired) return EEXIST;
      this.setExt(e, ext, now, startStored);
      return 0;
    }
    if (this.type.kind === 'hash' && this.count >= this.opts.maxelem) {
      this.purgeExpired(now);
      if (this.count >= this.opts.maxelem) {
        if (!this.opts.forceadd) return -2;
        for (let o = 0; o < this.n; o++) if (this.live[o]) {
          this.drop(o);
          break;
        }
      }
    }
    if (this.n === this.live.length) {
      if (this.count * 2 < this.n) this.compact();
      else this.grow();
    }
    e = this.n++;
    this.keys.set(k.subarray(0, this.kw), e * this.kw);
    this.live[e] = 1;
    this.macFilled[e] = macFill ? 1 : 0;
    if (macFill) this.writeMac(e);
    this.count++;
    this.setExt(e, ext, now);
    this.table.insert(this.keys, e);
    this.netIdx?.insert(this.keys, e);
    if (this.cidrs.length) this.cidrAdd(k, 1);
    return 0;
  }

  /** bitmap:ip,mac keeps the MAC beside the id key (in the skb words' shadow: macs). */
  macs: Uint8Array = new Uint8Array(16 * 6);
  private pendingMac = new Uint8Array(6);
  setPendingMac(src: Uint8Array, at: number): void {
    this.pendingMac.set(src.subarray(at, at + 6));
  }
  private writeMac(e: number): void {
    if (this.macs.length < (e + 1) * 6) {
      const m = new Uint8Array(this.live.length * 6);
      m.set(this.macs);
      this.macs = m;
    }
    this.macs.set(this.pendingMac, e * 6);
  }

  /** mtype_del: EEXIST when absent or expired. */
  delKey(k: Int32Array, now: number): number {
    const e = this.table.find(k, 0);
    if (e < 0 || this.expires[e]! < now) return EEXIST;
    this.drop(e);
    return 0;
  }

  /** The garbage collector's work (mtype_gc): expired elements leave. */
  purgeExpired(now: number): void {
    if (this.opts.timeout === undefined) return;
    for (let e = 0; e < this.n; e++) if (this.live[e] && this.expires[e]! < now) this.drop(e);
  }

  /** The live elements at `now`, in insertion order. */
  elements(now: number): number[] {
    const out: number[] = [];
    for (let e = 0; e < this.n; e++) if (this.alive(e, now)) out.push(e);
    return out;
  }

  /** A copy of the mutable state, for checkpoints. */
  save(): () => void {
    const s = {
      keys: this.keys.slice(), live: this.live.slice(), nomatch: this.nomatch.slice(), expires: this.expires.slice(),
      packets: this.packets.slice(), bytes: this.bytes.slice(), skb: this.skb.slice(), comments: this.comments.slice(),
      macFilled: this.macFilled.slice(), plain: this.plain.slice(), macs: this.macs.slice(), n: this.n, count: this.count, members: this.members.slice(),
      cidrCount: this.cidrCount.map((c) => c.slice()), cidrs: this.cidrs.map((c) => c.slice()), cidrN: this.cidrN.slice(),
    };
    return () => {
      this.keys = s.keys.slice();
      this.live = s.live.slice();
      this.nomatch = s.nomatch.slice();
      this.expires = s.expires.slice();
      this.packets = s.packets.slice();
      this.bytes = s.bytes.slice();
      this.skb = s.skb.slice();
      this.comments = s.comments.slice();
      this.macFilled = s.macFilled.slice();
      this.plain = s.plain.slice();
      this.macs = s.macs.slice();
      this.n = s.n;
      this.count = s.count;
      this.members = s.members.slice();
      s.cidrCount.forEach((c, i) => this.cidrCount[i]!.set(c));
      s.cidrs.forEach((c, i) => this.cidrs[i]!.set(c));
      this.cidrN.set(s.cidrN);
      let cap = 16;
      while (cap < this.n * 2 + 2) cap *= 2;
      this.table.rebuild(cap, this.keys, this.live, this.n);
      this.netIdx?.rebuild(cap, this.keys, this.live, this.n);
    };
  }

  /** The scratch keys (kadt fills them). */
  get scratch(): Int32Array {
    return this.k;
  }
  get scratch2(): Int32Array {
    return this.k2;
  }
}

/** ip_set_match_counter() */
function matchCounter(v: number, op: number, want: number): boolean {
  switch (op) {
    case IPSET_COUNTER_NONE:
      return true;
    case IPSET_COUNTER_EQ:
      return v === want;
    case IPSET_COUNTER_NE:
      return v !== want;
    case IPSET_COUNTER_LT:
      return v < want;
    case IPSET_COUNTER_GT:
      return v > want;
  }
  return false;
}

/**
 * The node's sets (the ip_set_net of a namespace) and their clock. Sets are
 * numbered in creation order (ip_set_id_t); rules refer to them by number.
 */
export class IpSetStore {
  readonly sets: IpSet[] = [];
  readonly byName = new Map<string, number>();
  /** The clock in ms (the first packet's time is 0). */
  nowMs = 0;
  private originNs: number | undefined;

  add(set: IpSet): number {
    const id = this.sets.length;
    this.sets.push(set);
    this.byName.set(set.name, id);
    return id;
  }

  index(name: string): number {
    return this.byName.get(name) ?? -1;
  }

  /** The packets' clock (ns, any origin): the snapshot's timeouts count from the first value given. */
  setNow(nowNs: number): void {
    if (this.originNs === undefined) this.originNs = nowNs;
    this.nowMs = Math.max(this.nowMs, (nowNs - this.originNs) / 1e6);
  }

  /** Saves every set's state; the returned function restores it. */
  checkpoint(): () => void {
    const r = this.sets.map((s) => s.save());
    const now = this.nowMs;
    const origin = this.originNs;
    return () => {
      for (const f of r) f();
      this.nowMs = now;
      this.originNs = origin;
    };
  }

  /**
   * ip_set_test(): 1 when the packet's tuple is in set `id`; the counters of
   * the element it hit are updated and compared as `opt` asks, its skbinfo
   * copied into `opt`.
   */
  test(id: number, pkt: Packet, opt: IpSetOpt): boolean {
    const set = this.sets[id]!;
    if (!this.fits(set, pkt, opt)) return false;
    let ret = this.kadt(set, pkt, opt, 0);
    if (ret === EAGAIN) {
      // the element must be completed (bitmap:ip,mac without its MAC): ADD is triggered
      this.kadt(set, pkt, opt, 1);
      ret = 1;
    } else if (opt.cmdflags & IPSET_FLAG_RETURN_NOMATCH && set.type.nomatch && (ret > 0 || ret === ENOTEMPTY)) {
      ret = -ret;
    }
    return ret > 0;
  }

  /** ip_set_add() from the SET target (errors are ignored by the target). */
  addPkt(id: number, pkt: Packet, opt: IpSetOpt): number {
    const set = this.sets[id]!;
    if (!this.fits(set, pkt, opt)) return EINVAL;
    return this.kadt(set, pkt, opt, 1);
  }

  /** ip_set_del() from the SET target. */
  delPkt(id: number, pkt: Packet, opt: IpSetOpt): number {
    const set = this.sets[id]!;
    if (!this.fits(set, pkt, opt)) return EINVAL;
    return this.kadt(set, pkt, opt, 2);
  }

  /** opt->dim >= set->type->dimension and the family matches (ip_set_test/add/del). */
  private fits(set: IpSet, pkt: Packet, opt: IpSetOpt): boolean {
    return opt.dim >= set.dimension && (set.type.anyFamily === true || set.opts.family === pkt.meta[M_NFPROTO] || set.opts.family === NFPROTO_UNSPEC);
  }

  /** ip_set_match_extensions(): timeout, counters (updated, then compared), skbinfo. */
  private matchExt(set: IpSet, e: number, pkt: Packet, opt: IpSetOpt, flags: number): boolean {
    if (set.expires[e]! < this.nowMs) return false;
    if (set.opts.counters) {
      if (!(flags & IPSET_FLAG_SKIP_COUNTER_UPDATE)) {
        set.packets[e]! += 1;
        set.bytes[e]! += pkt.meta[M_LEN]!;
      }
      if (flags & IPSET_FLAG_MATCH_COUNTERS && !(matchCounter(set.packets[e]!, opt.packetsOp, opt.packets) && matchCounter(set.bytes[e]!, opt.bytesOp, opt.bytes))) {
        return false;
      }
    }
    if (set.opts.skbinfo) {
      const s = e * 4;
      opt.skbmark = set.skb[s]!;
      opt.skbmarkmask = set.skb[s + 1]!;
      opt.skbprio = set.skb[s + 2]!;
      opt.skbqueue = set.skb[s + 3]!;
    }
    return true;
  }

  /** mtype_data_match(): 0 when the extensions do not match, ENOTEMPTY for a nomatch element, else 1. */
  private dataMatch(set: IpSet, e: number, pkt: Packet, opt: IpSetOpt, flags: number): number {
    if (!this.matchExt(set, e, pkt, opt, flags)) return 0;
    return set.nomatch[e] ? ENOTEMPTY : 1;
  }

  /** The type's kadt for test (0), add (1) or del (2). */
  private kadt(set: IpSet, pkt: Packet, opt: IpSetOpt, adt: number): number {
    if (set.type.kind === 'list') return this.listKadt(set, pkt, opt, adt);
    const k = set.scratch;
    const r = fillKey(set, pkt, opt.flags, k, adt === 0);
    if (r !== 0) return r;
    const now = this.nowMs;
    if (adt === 1) return set.addKey(k, this.kext(set, pkt, opt), (opt.cmdflags & IPSET_FLAG_EXIST) !== 0, now, set.type.name === 'bitmap:ip,mac' && macOk);
    if (adt === 2) return set.delKey(k, now);
    if (set.type.name === 'bitmap:ip,mac') {
      // bitmap_ipmac_do_test
      const e = set.findKey(k);
      if (e < 0) return 0;
      if (set.expires[e]! < now) return 0;
      if (!set.macFilled[e]) return EAGAIN;
      if (!macEqual(set.macs, e * 6, pkt.data, macAt)) return 0;
      return this.matchExt(set, e, pkt, opt, opt.cmdflags) ? 1 : 0;
    }
    if (set.cidrs.length === 0) {
      const e = set.findKey(k);
      if (e < 0) return 0;
      return this.dataMatch(set, e, pkt, opt, opt.cmdflags);
    }
    return this.testCidrs(set, k, pkt, opt);
  }

  /** mtype_test_cidrs(): each prefix length present, most specific first (both dimensions of the two-net types). */
  private testCidrs(set: IpSet, orig: Int32Array, pkt: Packet, opt: IpSetOpt): number {
    const k = set.scratch2;
    const dims = set.type.dims;
    let n0 = -1;
    let n1 = -1;
    for (let i = 0; i < dims.length; i++) if (dims[i] === D_NET) {
      if (n0 < 0) n0 = i;
      else n1 = i;
    }
    const aw = set.aw;
    const c0 = set.cidrs[0]!;
    const len0 = set.cidrN[0]!;
    const kw = set.kw;
    const multi = set.type.name === 'hash:net,iface';
    for (let j = 0; j < len0; j++) {
      for (let w = 0; w < kw; w++) k[w] = orig[w]!;
      maskNet(k, set.at[n0]!, aw, c0[j]!);
      if (n1 < 0) {
        const e = set.findKey(k);
        if (e >= 0) {
          const ret = this.dataMatch(set, e, pkt, opt, opt.cmdflags);
          if (ret !== 0) return ret;
        }
        // ip_set_hash_netiface.c: IP_SET_HASH_WITH_MULTI
        if (multi && set.multiStops(k, e)) return 0;
        continue;
      }
      const c1 = set.cidrs[1]!;
      const len1 = set.cidrN[1]!;
      for (let m = 0; m < len1; m++) {
        for (let w = 0; w <= aw; w++) k[set.at[n1]! + w] = orig[set.at[n1]! + w]!;
        maskNet(k, set.at[n1]!, aw, c1[m]!);
        const e = set.findKey(k);
        if (e < 0) continue;
        const ret = this.dataMatch(set, e, pkt, opt, opt.cmdflags);
        if (ret !== 0) return ret;
      }
    }
    return 0;
  }

  /** struct ip_set_ext of a kernel add (IP_SET_INIT_KEXT): one packet of skb->len bytes, the target's timeout. */
  private kext(set: IpSet, pkt: Packet, opt: IpSetOpt): IpSetExt {
    const x = this.ext;
    x.timeout = opt.timeout >= 0 && set.opts.timeout !== undefined ? Math.min(opt.timeout, IPSET_MAX_TIMEOUT) : -1;
    x.packets = 1;
    x.bytes = pkt.meta[M_LEN]!;
    return x;
  }
  private readonly ext: IpSetExt = noExt();

  /** list_set_ktest / list_set_kadd / list_set_kdel */
  private listKadt(set: IpSet, pkt: Packet, opt: IpSetOpt, adt: number): number {
    const now = this.nowMs;
    if (adt === 0) {
      const cmdflags = opt.cmdflags;
      // Don't lookup sub-counters at all
      opt.cmdflags &= ~IPSET_FLAG_MATCH_COUNTERS;
      if (opt.cmdflags & IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE) opt.cmdflags |= IPSET_FLAG_SKIP_COUNTER_UPDATE;
      let ret = 0;
      for (let i = 0; i < set.members.length; i++) {
        const e = set.members[i]!;
        if (set.expires[e]! < now) continue;
        if (!this.test(set.keys[e * set.kw]!, pkt, opt)) continue;
        if (this.matchExt(set, e, pkt, opt, cmdflags)) {
          ret = 1;
          break;
        }
      }
      opt.cmdflags = cmdflags;
      return ret;
    }
    for (let i = 0; i < set.members.length; i++) {
      const e = set.members[i]!;
      if (set.expires[e]! < now) continue;
      const r = adt === 1 ? this.addPkt(set.keys[e * set.kw]!, pkt, opt) : this.delPkt(set.keys[e * set.kw]!, pkt, opt);
      if (r === 0) return 0;
    }
    return 0;
  }
}

/** IPSET_MAX_TIMEOUT: (UINT_MAX >> 1) / MSEC_PER_SEC */
export const IPSET_MAX_TIMEOUT = Math.floor(0x7fffffff / 1000);

/** The frame offset of the MAC the last fillKey read (bitmap:ip,mac), and whether it had one. */
let macAt = 0;
let macOk = false;

function macEqual(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 6; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Keeps the first `cidr` bits of the address at k[at..at+aw) and stores the prefix length after it. */
export function maskNet(k: Int32Array, at: number, aw: number, cidr: number): void {
  for (let w = 0; w < aw; w++) {
    const bits = cidr - w * 32;
    k[at + w] = bits >= 32 ? k[at + w]! : bits <= 0 ? 0 : k[at + w]! & (-1 << (32 - bits));
  }
  k[at + aw] = cidr;
}

function rd32(d: Uint8Array, at: number): number {
  return (d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!;
}

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

/**
 * ip_set_get_ip4_port / ip_set_get_ip6_port (ip_set_getport.c): the
 * protocol << 16 | port of the packet (ICMP: type << 8 | code), or -1 when
 * the port is not available (a later fragment, a truncated header).
 */
export function packetPort(pkt: Packet, src: boolean): number {
  const m = pkt.meta;
  const d = pkt.data;
  const nh = m[M_NHOFF]!;
  const end = nh + m[M_LEN]!;
  let proto: number;
  let off: number;
  if (m[M_NFPROTO] === NFPROTO_IPV4) {
    proto = d[nh + 9]!;
    if (proto <= 0) return -1;
    off = nh + (d[nh]! & 15) * 4;
    if (m[M_FRAGOFF]! !== 0) {
      if (proto === IPPROTO_TCP || proto === IPPROTO_SCTP || proto === IPPROTO_UDP || proto === IPPROTO_UDPLITE || proto === IPPROTO_ICMP) return -1;
      return proto << 16;
    }
  } else {
    const r = ip6Transport(pkt);
    if (r < 0) return -1;
    proto = r >>> 24;
    off = r & 0xffffff;
  }
  switch (proto) {
    case IPPROTO_TCP:
    case IPPROTO_SCTP:
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE: {
      const need = proto === IPPROTO_TCP ? 20 : proto === IPPROTO_SCTP ? 12 : 8;
      if (off + need > end) return -1;
      const p = src ? (d[off]! << 8) | d[off + 1]! : (d[off + 2]! << 8) | d[off + 3]!;
      return (proto << 16) | p;
    }
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      if (proto !== (m[M_NFPROTO] === NFPROTO_IPV4 ? IPPROTO_ICMP : IPPROTO_ICMPV6)) break;
      if (off + 8 > end) return -1;
      return (proto << 16) | (d[off]! << 8) | d[off + 1]!;
  }
  return proto << 16;
}

/**
 * ipv6_skip_exthdr() from the fixed header: the transport protocol << 24 |
 * its frame offset, or -1 (no transport header found, or a fragment other
 * than the first: `frag_off & htons(~0x7)`).
 */
function ip6Transport(pkt: Packet): number {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  const end = nh + pkt.meta[M_LEN]!;
  let nexthdr = d[nh + 6]!;
  let off = nh + 40;
  for (let i = 0; i < 32; i++) {
    if (nexthdr !== 0 && nexthdr !== 43 && nexthdr !== 44 && nexthdr !== 51 && nexthdr !== 60) break;
    if (off + 8 > end) return -1;
    if (nexthdr === 44) {
      const fo = (d[off + 2]! << 8) | d[off + 3]!;
      if (fo & ~7) return -1;
      nexthdr = d[off]!;
      off += 8;
      continue;
    }
    const len = nexthdr === 51 ? (d[off + 1]! + 2) * 4 : (d[off + 1]! + 1) * 8;
    nexthdr = d[off]!;
    off += len;
  }
  if (nexthdr === 59 || off > end) return -1;
  return (nexthdr << 24) | off;
}

/** The packet's address (src or dst) into k[at..]. */
function readAddr(pkt: Packet, src: boolean, k: Int32Array, at: number, aw: number): void {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  if (aw === 1) k[at] = rd32(d, nh + (src ? 12 : 16));
  else for (let w = 0; w < 4; w++) k[at + w] = rd32(d, nh + (src ? 8 : 24) + 4 * w);
}

/**
 * The type's kadt key from the packet: each dimension from the source or the
 * destination as `flags` says (bit i for dimension i). Returns 0, or the
 * kernel's error for a packet that has no such tuple (-EINVAL,
 * -IPSET_ERR_BITMAP_RANGE): the test then fails, the add/del does nothing.
 * For net dimensions a test uses the full address (prefix HOST_MASK, then
 * mtype_test_cidrs), an add or del the set's most specific prefix.
 */
function fillKey(set: IpSet, pkt: Packet, flags: number, k: Int32Array, test: boolean): number {
  const dims = set.type.dims;
  const m = pkt.meta;
  const aw = set.aw;
  macOk = false;
  if (set.type.kind === 'bitmap') {
    const src = (flags & 2) !== 0;
    if (set.type.name === 'bitmap:port') {
      const p = packetPort(pkt, src);
      if (p < 0) return EINVAL;
      const proto = p >>> 16;
      if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return EINVAL;
      const port = p & 0xffff;
      if (port < set.opts.first || port > set.opts.last) return -3;
      k[0] = port - set.opts.first;
      return 0;
    }
    const ip = rd32(pkt.data, m[M_NHOFF]! + (src ? 12 : 16)) >>> 0;
    if (ip < set.opts.first || ip > set.opts.last) return -3;
    const nm = set.opts.netmask ?? 32;
    const hostmask = nm === 0 ? 0 : (-1 << (32 - nm)) >>> 0;
    k[0] = Math.floor((((ip & hostmask) >>> 0) - set.opts.first) / 2 ** (32 - nm));
    if (set.type.name === 'bitmap:ip,mac') {
      // the MAC header must lie before the network header (skb_mac_header + ETH_HLEN <= skb->data)
      if (!(m[M_FLAGS]! & F_MAC_HEADER) || m[M_MACOFF]! + 14 > m[M_NHOFF]!) return EINVAL;
      const at = m[M_MACOFF]! + (flags & 4 ? 6 : 0);
      if (zeroMac(pkt.data, at)) return EINVAL;
      macAt = at;
      macOk = true;
      set.setPendingMac(pkt.data, at);
    }
    return 0;
  }
  let ni = 0;
  for (let i = 0; i < dims.length; i++) {
    const src = (flags & (1 << (i + 1))) !== 0;
    const at = set.at[i]!;
    switch (dims[i]) {
      case D_IP: {
        readAddr(pkt, src, k, at, aw);
        if (set.type.name === 'hash:ip') {
          if (set.opts.netmask !== undefined) maskNet(k, at, aw, set.opts.netmask);
          let zero = true;
          for (let w = 0; w < aw; w++) if (k[at + w] !== 0) zero = false;
          if (zero) return EINVAL;
        }
        break;
      }
      case D_NET:
        readAddr(pkt, src, k, at, aw);
        maskNet(k, at, aw, test ? set.hostMask : set.initCidr(ni));
        ni++;
        break;
      case D_PORT: {
        const p = packetPort(pkt, src);
        if (p < 0) return EINVAL;
        k[at] = p;
        break;
      }
      case D_MARK:
        k[at] = m[M_MARK]! & set.opts.markmask;
        break;
      case D_IFACE: {
        // the input device for src, the output device for dst; none: -EINVAL
        const w = src ? M_IIFNAME : M_OIFNAME;
        if (m[w] === 0 && ((m[w]! & 0xff) === 0)) return EINVAL;
        for (let j = 0; j < 4; j++) k[at + j] = m[w + j]!;
        k[at + 4] = 0;
        break;
      }
      case D_MAC: {
        if (!(m[M_FLAGS]! & F_MAC_HEADER) || m[M_MACOFF]! + 14 > m[M_NHOFF]!) return EINVAL;
        // hash:mac reads the source MAC for src; hash:ip,mac its MAC dimension likewise
        const mat = m[M_MACOFF]! + (src ? 6 : 0);
        if (zeroMac(pkt.data, mat)) return EINVAL;
        const d = pkt.data;
        k[at] = rd32(d, mat);
        k[at + 1] = (d[mat + 4]! << 8) | d[mat + 5]!;
        break;
      }
    }
  }
  return 0;
}

function zeroMac(d: Uint8Array, at: number): boolean {
  for (let i = 0; i < 6; i++) if (d[at + i] !== 0) return false;
  return true;
}

/**
 * The SET target's --map-set: the skbinfo of the element found, applied as
 * set_target_v3 does (mark = (mark & ~mask) ^ value; priority; the queue
 * mapping is not observable here and is left alone).
 */
export function applySkbinfo(pkt: Packet, opt: IpSetOpt): void {
  const m = pkt.meta;
  if (opt.cmdflags & IPSET_FLAG_MAP_SKBMARK) m[M_MARK] = (m[M_MARK]! & ~opt.skbmarkmask) ^ opt.skbmark;
  if (opt.cmdflags & IPSET_FLAG_MAP_SKBPRIO) m[M_PRIORITY] = opt.skbprio;
}

/**
 * The words of an xt_set match or SET target as both engines hold them
 * (struct xt_set_info_match_v4 / xt_set_info_target_v3 with the set names
 * resolved to the store's indices; -1 = no set):
 */
export const XS_MATCH = 0; // match set index
export const XS_MATCH_FLAGS = 1; // IPSET_INV_MATCH | src bits
export const XS_MATCH_DIM = 2;
export const XS_FLAGS = 3; // match: info->flags (RETURN_NOMATCH, SKIP_*); target: EXIST | MAP_*
export const XS_PACKETS_OP = 4;
export const XS_PACKETS_HI = 5;
export const XS_PACKETS_LO = 6;
export const XS_BYTES_OP = 7;
export const XS_BYTES_HI = 8;
export const XS_BYTES_LO = 9;
export const XS_ADD = 10;
export const XS_ADD_FLAGS = 11;
export const XS_ADD_DIM = 12;
export const XS_DEL = 13;
export const XS_DEL_FLAGS = 14;
export const XS_DEL_DIM = 15;
export const XS_MAP = 16;
export const XS_MAP_FLAGS = 17;
export const XS_MAP_DIM = 18;
export const XS_TIMEOUT = 19; // seconds, -1 = the set's default
export const XS_WORDS = 20;

/** Checks the set indices of xt_set words against a store: a reason, or null. */
export function validateXtSet(w: Int32Array, at: number, nsets: number): string | null {
  for (const i of [XS_MATCH, XS_ADD, XS_DEL, XS_MAP]) {
    const id = w[at + i]!;
    if (id < -1 || id >= nsets) return `set index ${id} does not exist (-ENOENT)`;
    if (id >= 0 && (w[at + i + 2]! < 0 || w[at + i + 2]! > 6)) return 'set dimension over the limit';
  }
  return null;
}

function u64(w: Int32Array, at: number): number {
  return (w[at]! >>> 0) * 0x100000000 + (w[at + 1]! >>> 0);
}

/** set_match_v4(): the match's result. */
export function xtSetMatch(store: IpSetStore, w: Int32Array, at: number, pkt: Packet, opt: IpSetOpt): boolean {
  const flags = w[at + XS_MATCH_FLAGS]!;
  opt.dim = w[at + XS_MATCH_DIM]!;
  opt.flags = flags;
  opt.cmdflags = w[at + XS_FLAGS]!;
  opt.timeout = -1;
  opt.packetsOp = w[at + XS_PACKETS_OP]!;
  opt.packets = u64(w, at + XS_PACKETS_HI);
  opt.bytesOp = w[at + XS_BYTES_OP]!;
  opt.bytes = u64(w, at + XS_BYTES_HI);
  if (opt.packetsOp !== IPSET_COUNTER_NONE || opt.bytesOp !== IPSET_COUNTER_NONE) opt.cmdflags |= IPSET_FLAG_MATCH_COUNTERS;
  return store.test(w[at + XS_MATCH]!, pkt, opt) !== ((flags & IPSET_INV_MATCH) !== 0);
}

/** set_target_v3(): add, delete, map; the target always continues. */
export function xtSetTarget(store: IpSetStore, w: Int32Array, at: number, pkt: Packet, opt: IpSetOpt): void {
  const tflags = w[at + XS_FLAGS]!;
  const add = w[at + XS_ADD]!;
  if (add >= 0) {
    resetOpt(opt, w[at + XS_ADD_DIM]!, w[at + XS_ADD_FLAGS]!, tflags);
    opt.timeout = w[at + XS_TIMEOUT]!;
    store.addPkt(add, pkt, opt);
  }
  const del = w[at + XS_DEL]!;
  if (del >= 0) {
    resetOpt(opt, w[at + XS_DEL_DIM]!, w[at + XS_DEL_FLAGS]!, 0);
    store.delPkt(del, pkt, opt);
  }
  const map = w[at + XS_MAP]!;
  if (map >= 0) {
    const mflags = w[at + XS_MAP_FLAGS]!;
    resetOpt(opt, w[at + XS_MAP_DIM]!, mflags, tflags & (IPSET_FLAG_MAP_SKBMARK | IPSET_FLAG_MAP_SKBPRIO | IPSET_FLAG_MAP_SKBQUEUE));
    opt.skbmark = opt.skbmarkmask = opt.skbprio = opt.skbqueue = 0;
    if (store.test(map, pkt, opt) !== ((mflags & IPSET_INV_MATCH) !== 0)) applySkbinfo(pkt, opt);
  }
}

function resetOpt(opt: IpSetOpt, dim: number, flags: number, cmdflags: number): void {
  opt.dim = dim;
  opt.flags = flags;
  opt.cmdflags = cmdflags;
  opt.timeout = -1;
  opt.packetsOp = 0;
  opt.bytesOp = 0;
}
