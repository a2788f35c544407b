/**
 * The connection tracking table and nf_conntrack_in / nf_conntrack_confirm.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_conntrack_core.c   the hash table (tuplehash[2] per conntrack), ____nf_conntrack_find,
 *                                       nf_conntrack_find_get, __nf_conntrack_alloc, early_drop,
 *                                       init_conntrack, resolve_normal_ct, nf_conntrack_handle_icmp,
 *                                       nf_conntrack_in, __nf_conntrack_confirm, nf_ct_resolve_clash(_harder),
 *                                       nf_conntrack_tuple_taken, __nf_ct_refresh_acct, nf_ct_delete
 *   net/netfilter/nf_conntrack_proto.c  nf_confirm, ipv4_conntrack_local (the hook functions)
 *   include/net/netfilter/nf_conntrack_zones.h  nf_ct_zone_id, nf_ct_zone_equal, nf_ct_zone_tmpl
 *   net/netfilter/xt_CT.c               the template a raw-table CT/NOTRACK rule attaches
 *
 * Storage is a struct of typed arrays indexed by the conntrack's number (its
 * slot, what M_CT_ID holds); each conntrack has two tuplehash nodes, node =
 * 2 * ct + dir, chained in one bucket array. Buckets are the namespace's
 * nf_conntrack_buckets; the hash is nfvm's own (seeded; the kernel's siphash
 * key is random per boot, so bucket order and early-drop victims cannot be
 * the kernel's anyway). Entries are freed through a free list: the lookup
 * path allocates nothing.
 *
 * Time: every call takes `now` in nanoseconds (a capture timestamp, any
 * origin); the table keeps jiffies = floor(now / (1e9 / HZ)) as a wrapping
 * u32, as the kernel's nfct_time_stamp, and compares with s32 differences.
 * An expired conntrack is treated as gone when a lookup, an early drop or a
 * dump meets it (the kernel's gc on lookup; `nfConntrackGc` is a full
 * gc_worker pass the caller may run).
 *
 * References: a conntrack lives while the table or a packet holds it
 * (ct_general.use). nfConntrackIn gives the packet a reference; the caller
 * returns it with nfResetCt when the packet leaves the model (delivered,
 * sent, dropped); an unconfirmed conntrack whose packet is dropped dies then.
 */
import { IPS_ASSURED, IPS_CONFIRMED, IPS_DYING, IPS_EXPECTED, IPS_FIXED_TIMEOUT, IPS_HELPER, IPS_NAT_CLASH, IPS_NAT_MASK, IPS_SEEN_REPLY, IPS_SEQ_ADJUST, IPS_SRC_NAT_DONE, IPS_TEMPLATE, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY, IP_CT_IS_REPLY, IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY, NF_CT_STATE_INVALID_BIT, NF_CT_STATE_NEW_BIT, NF_CT_STATE_UNTRACKED_BIT, nfCtStateBit, NFPROTO_IPV4, NFPROTO_IPV6, NF_ACCEPT, NF_DROP, NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING, NF_REPEAT } from '../../core/netfilter.js';
import { M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS, M_END, M_MARK, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { CT_HELPER_FTP, CT_HELPER_TFTP, ctinfoOf } from '../../vm/ct-env.js';
import { Xorshift32 } from '../../vm/random.js';
import { HZ, NfConntrackSysctl, TCP_CONNTRACK_ESTABLISHED } from './sysctl.js';
import {
  IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, T_DST, T_PORTS, T_PROTO,
  TUPLE_WORDS, getL4proto, l4, nfCtGetTuple, nfCtInvertTuple,
} from './tuple.js';
import { P_TCP_STATE, nfConntrackTcpPacket } from './proto_tcp.js';
import { nfConntrackUdpPacket, nfConntrackUdplitePacket } from './proto_udp.js';
import { nfConntrackIcmpPacket, nfConntrackIcmpv4Error } from './proto_icmp.js';
import { nfConntrackIcmpv6Packet, nfConntrackIcmpv6Error } from './proto_icmpv6.js';
import { nfConntrackSctpPacket } from './proto_sctp.js';
import { nfConntrackGrePacket } from './proto_gre.js';
import { NfCtExpectTable, nfCtExpectInit, type ExpectPolicy, type Expectation } from './expect.js';
import { FTP_EXP_POLICY, FtpMaster, ftpHelp, type FtpType } from './helper_ftp.js';
import { SEQADJ_WORDS, nfCtSeqAdjust } from './seqadj.js';
import { TFTP_EXP_POLICY, tftpExpectation } from './helper_tftp.js';

/** Words of per-protocol state (ct->proto) per conntrack; see the proto_*.ts files for the layout. */
export const PROTO_WORDS = 24;

// include/uapi/linux/netfilter/nf_conntrack_tuple_common.h, nf_conntrack_zones_common.h
export const NF_CT_ZONE_DIR_ORIG = 1 << IP_CT_DIR_ORIGINAL;
export const NF_CT_ZONE_DIR_REPL = 1 << IP_CT_DIR_REPLY;
export const NF_CT_DEFAULT_ZONE_DIR = NF_CT_ZONE_DIR_ORIG | NF_CT_ZONE_DIR_REPL;
export const NF_CT_DEFAULT_ZONE_ID = 0;

const NF_CT_EVICTION_RANGE = 8;
export const MIN_CHAINLEN = 50;
const MAX_CHAINLEN = 80 - MIN_CHAINLEN;
/** Bound on conntracks the model will hold (memory), whatever nf_conntrack_max says. */
const CT_CAPACITY_LIMIT = 1 << 24;
/** The room of a new table: most models (a trace, each node nfvm diff and fuzz build) hold a few conntracks. */
const CT_START = 256;
/**
 * The most conntracks the table makes room for when it first outgrows
 * CT_START (nf_conntrack_max's default, 262144, fits): a replay's table
 * does not copy itself again as it fills, and the room not yet used costs
 * no memory (nothing past `fresh` is written). Made at the first growth,
 * not at the start, since such arrays count against the JavaScript heap's
 * budget and make it collect: thousands of models (nfvm diff) each making
 * this room at the start ran ten times slower.
 */
const CT_RESERVE = 1 << 20;
/**
 * A hash node (struct nf_conntrack_tuple_hash's hnnode), NODE_WORDS words in
 * `nodes` per node (2 * ct + dir): the next and previous node of its chain
 * (-1: none; NOT_LINKED for a node in no chain) and the hash it was placed
 * by (its bucket is bucketOf(hash)). The conntrack's timeout (ct->timeout)
 * is the last word of its original node: the two nodes of a conntrack are
 * 32 consecutive bytes, so that a chain walk, which checks each node's
 * conntrack for expiry, reads one block per node it passes.
 */
const NODE_WORDS = 4;
/** Words 0 and 1, as hlistAddHead and hlistDel read them (so too NAT_NEXT and NAT_PREV). */
const N_NEXT = 0;
const N_PREV = 1;
const N_HASH = 2;
/** Word of ct->timeout in the conntrack's block (2 * NODE_WORDS words from 2 * ct * NODE_WORDS). */
const CT_TIMEOUT = 3;
/** N_PREV of a node that is in no chain. */
const NOT_LINKED = -2;
/** N_NEXT of a node that was never in one (hlist_nulls_add_fake, a fresh conntrack). */
const UNHASHED = -2;
/** Per-conntrack extension bits (nf_ct_ext): accounting was on at creation. */
const EXT_ACCT = 1;
/** ... labels were in use at creation (nf_ct_labels_ext_add: net->ct.labels_used). */
const EXT_LABELS = 2;
/** 32-bit words of nf_conn_labels (NF_CT_LABELS_MAX_SIZE, 128 bits). */
const LABEL_WORDS = 4;

/** alloc() result when the table is full and nothing could be evicted (-ENOMEM: the packet is dropped). */
const CT_ENOMEM = -2;

/** The template a raw-table CT rule attaches (nf_ct_tmpl_alloc + xt_ct_tg_check). */
export interface NfCtTemplate {
  readonly zoneId: number;
  readonly zoneDir: number;
  /** CT --zone mark: the zone id is the packet mark's low 16 bits (NF_CT_FLAG_MARK). */
  readonly zoneFromMark: boolean;
  /** CT --helper: the helper's number (the caller's names, 0 none), given to the conntracks made from the template. */
  readonly helper?: number;
  /** CT --timeout: the policy's number in NfConntrack.timeoutPolicies (0 none), given to the conntracks made from the template. */
  readonly timeout?: number;
}

/** nf_conntrack stat counters (/proc/net/stat/nf_conntrack). */
export interface NfConntrackStats {
  found: number;
  invalid: number;
  insert: number;
  insertFailed: number;
  drop: number;
  earlyDrop: number;
  error: number;
  clashResolve: number;
  chaintoolong: number;
}

export interface NfConntrackOptions {
  /** Seed of the table hash and of the kernel's get_random_* draws (default 1). */
  seed?: number;
  /** The random source to draw from (a node's one source, vm/random.ts); default: one seeded from `seed`. */
  rng?: Xorshift32;
}

/** A conntrack's links in its NAT bysource chain, NAT_WORDS words in `natLinks`: the next and previous conntrack, the bucket (-1: in none). */
const NAT_WORDS = 4;
const NAT_NEXT = 0;
const NAT_PREV = 1;
const NAT_BUCKET = 2;

/**
 * hlist_add_head(): record `x` of a chain list (records of `stride` words
 * in `links`, word 0 the next record and word 1 the previous one, -1 at
 * either end; the conntrack hash nodes and the NAT bysource links) at the
 * head of chain `bucket`.
 */
function hlistAddHead(links: Int32Array, stride: number, head: Int32Array, bucket: number, x: number): void {
  const next = head[bucket]!;
  links[x * stride] = next;
  links[x * stride + 1] = -1;
  if (next >= 0) links[next * stride + 1] = x;
  head[bucket] = x;
}

/** hlist_del(): record `x` out of chain `bucket` in constant time; its own next is left as it was, for a walk standing on it. */
function hlistDel(links: Int32Array, stride: number, head: Int32Array, bucket: number, x: number): void {
  const next = links[x * stride]!;
  const prev = links[x * stride + 1]!;
  if (prev < 0) head[bucket] = next;
  else links[prev * stride] = next;
  if (next >= 0) links[next * stride + 1] = prev;
}

/** One murmur3 round of a word into the hash. */
function mix(h: number, w: number): number {
  let k = Math.imul(w, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  let r = h ^ Math.imul(k, 0x1b873593);
  r = (r << 13) | (r >>> 19);
  return (Math.imul(r, 5) + 0xe6546b64) | 0;
}

/** The number of jiffies at `now` nanoseconds, as a wrapping s32 (nfct_time_stamp). */
export function jiffiesAt(nowNs: number, hz = HZ): number {
  return Math.floor(nowNs / (1e9 / hz)) | 0;
}

export { ctinfoOf };

export class NfConntrack {
  readonly sysctl: NfConntrackSysctl;
  readonly rng: Xorshift32;
  readonly stats: NfConntrackStats = { found: 0, invalid: 0, insert: 0, insertFailed: 0, drop: 0, earlyDrop: 0, error: 0, clashResolve: 0, chaintoolong: 0 };
  /** The clock of the current call, in jiffies (nfct_time_stamp). */
  jiffies = 0;
  /** cnet->count: conntracks allocated (unconfirmed ones included). */
  count = 0;

  readonly nbuckets: number;
  /** nbuckets - 1 when it is a power of two, else -1. */
  private readonly bucketMask: number;
  readonly head: Int32Array;
  readonly seed: number;
  cap = 0;
  tuples = new Int32Array(0);
  /** The hash nodes, NODE_WORDS words each (N_NEXT...). */
  nodes = new Int32Array(0);
  status = new Int32Array(0);
  mark = new Int32Array(0);
  zoneId = new Int32Array(0);
  zoneDir = new Uint8Array(0);
  use = new Int32Array(0);
  inUse = new Uint8Array(0);
  ext = new Uint8Array(0);
  /** nfct_help(ct)->helper: the helper's number (NfCtTemplate.helper), 0 none. */
  helper = new Uint8Array(0);
  /** nf_conn_timeout: the cttimeout policy's number (NfCtTemplate.timeout), 0 none. */
  timeoutPolicy = new Uint8Array(0);
  /** ct->master: the conntrack that expected this one (it holds a reference to it), -1 none. */
  master = new Int32Array(0);
  /** The expectations the helpers made (nf_conntrack_expect.c). */
  readonly expect: NfCtExpectTable;
  /** The FTP helper's data of each control connection (struct nf_ct_ftp_master), made at its first packet with payload. */
  private readonly ftp = new Map<number, FtpMaster>();
  /** nf_conn_seqadj: SEQADJ_WORDS words per conntrack (hooks/conntrack/seqadj.ts). */
  seqadj = new Int32Array(0);
  /**
   * nf_nat_ftp_hook: the NAT core's FTP helper (hooks/nat/ftp.ts), set when
   * NAT is loaded; the FTP helper hands it the announcements of NATed
   * control connections.
   */
  natFtpHook: ((pkt: Packet, hook: number, e: number, ctinfo: number, type: FtpType, thoff: number, matchoff: number, matchlen: number, exp: Expectation, policy: ExpectPolicy) => number) | undefined;
  /** Why nf_confirm's helper or sequence adjustment dropped the last packet it dropped (nf_ct_helper_log's words), for the fate; taken by its reader. */
  confirmDropWhy: string | undefined;
  /** The expectation the last helper call made (for a traced packet's note), undefined when it made none; taken by its reader. */
  lastExpectation: Expectation | undefined;
  /** exp->expectfn (nf_nat_follow_master), called for a new conntrack that met an expectation the NAT helper made. */
  expectFollow: ((e: number, exp: Expectation) => void) | undefined;
  /**
   * The node's cttimeout policies by number (index 0 unused): each the
   * tracker's timeout array in jiffies (hooks/conntrack/timeout.ts), read by
   * nfCtTimeoutLookup() instead of the sysctls.
   */
  timeoutPolicies: readonly (Int32Array | undefined)[] = [];
  /** hash_conntrack_raw of the original tuple, saved at allocation for the confirm (the kernel stashes it in hnnode.pprev). */
  origHash = new Int32Array(0);
  proto = new Int32Array(0);
  /** nf_conn_labels: LABEL_WORDS words per conntrack, bit b in word b >> 5. */
  labels = new Int32Array(0);
  /** net->ct.labels_used: a connlabel rule is loaded (nf_connlabels_get), so new conntracks get the labels extension. */
  labelsUsed = false;
  /** packets, bytes for ORIGINAL then REPLY (nf_conn_acct). */
  acct = new Float64Array(0);
  /** nf_conn_nat.masq_index (0: none). */
  masqIndex = new Int32Array(0);
  /** NAT bysource chains (nf_nat_bysource): each conntrack's links (NAT_WORDS words: next, previous, bucket; -1 when not in a chain). */
  natLinks = new Int32Array(0);
  readonly natHead: Int32Array;
  /** The freed slots, linked through use[] (the most recently freed first). */
  private freeHead = -1;
  /** Slots 0..fresh-1 have been handed out at least once; alloc() takes a freed slot first, then slot `fresh`. */
  private fresh = 0;
  /** Creation order of the live conntracks (for dumps): a counter per slot. */
  born = new Float64Array(0);
  /**
   * The birth number of the last conntrack made (born[] orders the
   * listing). A replay split over workers sets it from the frame's number
   * in the capture before each frame, so that the workers' listings merge
   * in the order one table would list them.
   */
  births = 0;
  /** The most conntracks the table has held at once (count's high-water mark). */
  peak = 0;
  /**
   * Draws of the random source for the chain length limit
   * (__nf_conntrack_confirm), and the longest hash chain a confirm made:
   * while it stays far below MIN_CHAINLEN the draws decide nothing.
   */
  chainDraws = 0;
  longestChain = 0;

  private readonly templates: NfCtTemplate[] = [];
  /** Scratch tuples: [0] the packet's, [1] an inverse, [2] ICMP inner, [3] caller scratch. */
  readonly scratch = new Int32Array(4 * TUPLE_WORDS);

  constructor(sysctl: NfConntrackSysctl = new NfConntrackSysctl(), o: NfConntrackOptions = {}) {
    this.sysctl = sysctl;
    this.seed = (o.seed ?? 1) | 0;
    this.rng = o.rng ?? new Xorshift32(this.seed ^ 0x6e66766d);
    this.nbuckets = sysctl.buckets;
    this.bucketMask = (this.nbuckets & (this.nbuckets - 1)) === 0 ? this.nbuckets - 1 : -1;
    this.head = new Int32Array(this.nbuckets).fill(-1);
    this.natHead = new Int32Array(this.nbuckets).fill(-1);
    this.expect = new NfCtExpectTable(this.nbuckets);
    this.grow(CT_START);
  }

  /** Sets the clock of this call (see the header). */
  setNow(nowNs: number): void {
    this.jiffies = jiffiesAt(nowNs, this.sysctl.hz);
  }

  // -------------------------------------------------------------------------
  // Storage

  /**
   * Makes room for `n` conntracks (at least twice the present room). The
   * arrays are zero-filled and nothing past `fresh` is written here: a slot
   * is first written when alloc() hands it out, so the memory of room not
   * yet used costs nothing (the pages are the system's until touched).
   */
  private grow(n: number): void {
    const cap = Math.max(n, this.cap * 2);
    const g32 = (a: Int32Array, k = 1) => { const b = new Int32Array(cap * k); b.set(a); return b; };
    const g8 = (a: Uint8Array) => { const b = new Uint8Array(cap); b.set(a); return b; };
    this.tuples = g32(this.tuples, 2 * TUPLE_WORDS);
    this.nodes = g32(this.nodes, 2 * NODE_WORDS);
    this.status = g32(this.status);
    this.mark = g32(this.mark);
    this.zoneId = g32(this.zoneId);
    this.zoneDir = g8(this.zoneDir);
    this.use = g32(this.use);
    this.inUse = g8(this.inUse);
    this.ext = g8(this.ext);
    this.helper = g8(this.helper);
    this.timeoutPolicy = g8(this.timeoutPolicy);
    this.master = g32(this.master);
    this.seqadj = g32(this.seqadj, SEQADJ_WORDS);
    this.origHash = g32(this.origHash);
    this.proto = g32(this.proto, PROTO_WORDS);
    this.labels = g32(this.labels, LABEL_WORDS);
    this.masqIndex = g32(this.masqIndex);
    this.natLinks = g32(this.natLinks, NAT_WORDS);
    const acct = new Float64Array(cap * 4);
    acct.set(this.acct);
    this.acct = acct;
    const born = new Float64Array(cap);
    born.set(this.born);
    this.born = born;
    this.cap = cap;
  }

  /** Word offset of the tuple of node (2 * ct + dir). */
  tupleAt(node: number): number {
    return node * TUPLE_WORDS;
  }

  /** hash_conntrack_raw(): nfvm's hash of a tuple and a zone id (murmur3 mixing; an IPv4 tuple's zero address words are skipped). */
  hashTuple(t: Int32Array, o: number, zoneId: number): number {
    let h = this.seed ^ zoneId;
    if (t[o + T_PROTO]! >>> 8 === NFPROTO_IPV4) {
      h = mix(mix(mix(mix(h, t[o]!), t[o + T_DST]!), t[o + T_PORTS]!), t[o + T_PROTO]!);
    } else {
      for (let i = 0; i < TUPLE_WORDS; i++) h = mix(h, t[o + i]!);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The bucket of a hash: the low bits for a power-of-two table (the default 262144), else scaled as reciprocal_scale does. */
  bucketOf(hash: number): number {
    return this.bucketMask >= 0 ? hash & this.bucketMask : Math.floor(((hash >>> 0) / 4294967296) * this.nbuckets);
  }

  /** nf_ct_zone_id(nf_ct_zone(ct), dir) */
  ctZoneId(e: number, dir: number): number {
    return this.zoneDir[e]! & (1 << dir) ? this.zoneId[e]! : NF_CT_DEFAULT_ZONE_ID;
  }

  isConfirmed(e: number): boolean {
    return (this.status[e]! & IPS_CONFIRMED) !== 0;
  }

  /** nf_ct_is_expired(): (s32)(timeout - now) <= 0 */
  isExpired(e: number): boolean {
    return ((this.nodes[2 * e * NODE_WORDS + CT_TIMEOUT]! - this.jiffies) | 0) <= 0;
  }

  /** ct->timeout: jiffies when confirmed (the expiry), a length of time before (nf_ct_refresh). */
  ctTimeout(e: number): number {
    return this.nodes[2 * e * NODE_WORDS + CT_TIMEOUT]!;
  }

  setCtTimeout(e: number, v: number): void {
    this.nodes[2 * e * NODE_WORDS + CT_TIMEOUT] = v;
  }

  /** nf_ct_expires() in jiffies. */
  expires(e: number): number {
    const d = (this.ctTimeout(e) - this.jiffies) | 0;
    return d > 0 ? d : 0;
  }

  /**
   * False when node n cannot be keyEqual() to a key whose hash, `hash`, was
   * made with zone id `zHash`: a node that is equal to the key was placed by
   * hashTuple(key, its zone id for its direction), so when that zone id is
   * zHash its hash is `hash`. A prefilter only: the tuple is not read.
   */
  private mayEqual(n: number, hash: number, zHash: number, zoneId: number, zoneDir: number): boolean {
    const want = zoneDir & (1 << (n & 1)) ? zoneId : NF_CT_DEFAULT_ZONE_ID;
    return want !== zHash || this.nodes[n * NODE_WORDS + N_HASH] === hash;
  }

  /** nf_ct_key_equal(): node's tuple equals t, zones agree for the node's direction, the conntrack is confirmed. */
  private keyEqual(node: number, t: Int32Array, o: number, zoneId: number, zoneDir: number): boolean {
    const tu = this.tuples;
    const at = node * TUPLE_WORDS;
    for (let i = 0; i < TUPLE_WORDS; i++) if (tu[at + i] !== t[o + i]) return false;
    const e = node >> 1;
    const dir = node & 1;
    const want = zoneDir & (1 << dir) ? zoneId : NF_CT_DEFAULT_ZONE_ID;
    return this.ctZoneId(e, dir) === want && (this.status[e]! & IPS_CONFIRMED) !== 0;
  }

  /** Puts a node at the head of the chain of its hash (hlist_nulls_add_head_rcu). */
  private link(node: number, hash: number): void {
    this.nodes[node * NODE_WORDS + N_HASH] = hash;
    hlistAddHead(this.nodes, NODE_WORDS, this.head, this.bucketOf(hash), node);
  }

  /** Unlinks a node; its next pointer is kept so a walk standing on it carries on (hlist_nulls_del_rcu). */
  private unlink(node: number): void {
    const nodes = this.nodes;
    const at = node * NODE_WORDS;
    // (a node never linked, fake-added included, is NOT_LINKED too)
    if (nodes[at + N_PREV] === NOT_LINKED) return;
    hlistDel(nodes, NODE_WORDS, this.head, this.bucketOf(nodes[at + N_HASH]!), node);
    nodes[at + N_PREV] = NOT_LINKED;
  }

  /**
   * The hash chains' own consistency, for tests (undefined when they hold):
   * every node a bucket's chain reaches is there once, placed by the hash of
   * its tuple in its zone id for its direction, with its previous node
   * behind it; every linked node is of a confirmed conntrack in use and not
   * dying; every confirmed live conntrack is linked by its reply node (and,
   * but for a clash loser, hlist_nulls_add_fake, by its original one); the
   * NAT bysource chains hold each conntrack once, in its own bucket.
   */
  checkChains(): string | undefined {
    const nodes = this.nodes;
    const seen = new Set<number>();
    for (let b = 0; b < this.nbuckets; b++) {
      let prev = -1;
      for (let n = this.head[b]!; n >= 0; prev = n, n = nodes[n * NODE_WORDS + N_NEXT]!) {
        const at = n * NODE_WORDS;
        const e = n >> 1;
        if (seen.has(n)) return `node ${n} twice in the chains`;
        seen.add(n);
        if (nodes[at + N_PREV] !== prev) return `node ${n} in bucket ${b}: previous ${nodes[at + N_PREV]}, not ${prev}`;
        if (this.bucketOf(nodes[at + N_HASH]!) !== b) return `node ${n} in bucket ${b}, its hash's is ${this.bucketOf(nodes[at + N_HASH]!)}`;
        if (nodes[at + N_HASH] !== this.hashTuple(this.tuples, n * TUPLE_WORDS, this.ctZoneId(e, n & 1))) return `node ${n}: its hash is not its tuple's`;
        if (!this.inUse[e] || !this.isConfirmed(e) || this.status[e]! & IPS_DYING) return `node ${n} linked, its conntrack not in use, unconfirmed or dying`;
      }
    }
    for (let e = 0; e < this.fresh; e++) {
      const live = this.inUse[e] && this.isConfirmed(e) && !(this.status[e]! & IPS_DYING);
      for (const n of [2 * e, 2 * e + 1]) {
        const linked = nodes[n * NODE_WORDS + N_PREV] !== NOT_LINKED;
        if (linked !== seen.has(n)) return `node ${n}: marked ${linked ? 'linked' : 'unlinked'}, ${seen.has(n) ? 'in' : 'not in'} a chain`;
        const fake = (n & 1) === 0 && nodes[n * NODE_WORDS + N_NEXT] === UNHASHED;
        if (live && !linked && !fake) return `conntrack ${e} is live, its node ${n} in no chain`;
      }
    }
    const natSeen = new Set<number>();
    for (let b = 0; b < this.nbuckets; b++) {
      let prev = -1;
      for (let e = this.natHead[b]!; e >= 0; prev = e, e = this.natLinks[e * NAT_WORDS + NAT_NEXT]!) {
        if (natSeen.has(e)) return `conntrack ${e} twice in the bysource chains`;
        natSeen.add(e);
        if (this.natLinks[e * NAT_WORDS + NAT_PREV] !== prev || this.natLinks[e * NAT_WORDS + NAT_BUCKET] !== b) return `conntrack ${e} in bysource bucket ${b}: links do not say so`;
        if (!this.inUse[e]) return `conntrack ${e} in a bysource chain, not in use`;
      }
    }
    for (let e = 0; e < this.fresh; e++) {
      if ((this.natLinks[e * NAT_WORDS + NAT_BUCKET]! >= 0) !== natSeen.has(e)) return `conntrack ${e}: bysource bucket ${this.natLinks[e * NAT_WORDS + NAT_BUCKET]}, ${natSeen.has(e) ? 'in' : 'not in'} a chain`;
    }
    return undefined;
  }

  // -------------------------------------------------------------------------
  // Lookup

  /**
   * ____nf_conntrack_find(): the node whose tuple equals t[o..] in zone
   * (zoneId, zoneDir), or -1, searched in the chain of `hash`, the key's
   * hash made with zone id `zHash`. Expired conntracks met on the way are
   * killed.
   */
  find(t: Int32Array, o: number, zoneId: number, zoneDir: number, hash: number, zHash: number): number {
    for (let n = this.head[this.bucketOf(hash)]!; n >= 0; ) {
      const next = this.nodes[n * NODE_WORDS + N_NEXT]!;
      if (this.live(n) && this.mayEqual(n, hash, zHash, zoneId, zoneDir) && this.keyEqual(n, t, o, zoneId, zoneDir)) return n;
      n = next;
    }
    return -1;
  }

  /**
   * A chain walk meets node n: false for an unlinked node, and for an
   * expired conntrack (killed on the way). A node in a chain is of a live
   * conntrack: nf_ct_delete sets IPS_DYING as it unlinks both nodes, and the
   * table's reference keeps the slot in use while they are linked.
   */
  private live(n: number): boolean {
    const e = n >> 1;
    if (this.nodes[n * NODE_WORDS + N_PREV] === NOT_LINKED) return false;
    if (this.isExpired(e)) {
      this.gcExpired(e);
      return false;
    }
    return true;
  }

  /** nf_conntrack_find_get() without the reference: the node in either zone direction, or -1. */
  findGet(t: Int32Array, o: number, zoneId: number, zoneDir: number): number {
    const zid = zoneDir & NF_CT_ZONE_DIR_ORIG ? zoneId : NF_CT_DEFAULT_ZONE_ID;
    let n = this.find(t, o, zoneId, zoneDir, this.hashTuple(t, o, zid), zid);
    if (n >= 0) return n;
    const rid = zoneDir & NF_CT_ZONE_DIR_REPL ? zoneId : NF_CT_DEFAULT_ZONE_ID;
    if (rid !== zid) n = this.find(t, o, zoneId, zoneDir, this.hashTuple(t, o, rid), rid);
    return n;
  }

  /** nf_ct_gc_expired() */
  private gcExpired(e: number): void {
    if (this.isConfirmed(e) && !(this.status[e]! & IPS_DYING)) this.nfCtDelete(e);
  }

  /**
   * nf_conntrack_tuple_taken(): another confirmed conntrack answers to
   * tuple t[o..] (a reply tuple), other than `ignored` and than a conntrack
   * with the same original tuple (left to clash resolution).
   */
  nfConntrackTupleTaken(t: Int32Array, o: number, ignored: number): boolean {
    const zid = this.zoneId[ignored]!, zdir = this.zoneDir[ignored]!;
    const zHash = this.ctZoneId(ignored, IP_CT_DIR_REPLY);
    const hash = this.hashTuple(t, o, zHash);
    for (let n = this.head[this.bucketOf(hash)]!; n >= 0; ) {
      const next = this.nodes[n * NODE_WORDS + N_NEXT]!;
      const e = n >> 1;
      if (e === ignored || !this.live(n)) {
        n = next;
        continue;
      }
      if (this.mayEqual(n, hash, zHash, zid, zdir) && this.keyEqual(n, t, o, zid, zdir)) {
        if (this.origTuplesEqual(e, ignored) && this.ctZoneId(e, IP_CT_DIR_ORIGINAL) === this.ctZoneId(ignored, IP_CT_DIR_ORIGINAL)) {
          n = next;
          continue;
        }
        this.stats.found++;
        return true;
      }
      n = next;
    }
    return false;
  }

  private origTuplesEqual(a: number, b: number): boolean {
    const tu = this.tuples;
    const ao = 2 * a * TUPLE_WORDS, bo = 2 * b * TUPLE_WORDS;
    for (let i = 0; i < TUPLE_WORDS; i++) if (tu[ao + i] !== tu[bo + i]) return false;
    return true;
  }

  private nodeTuplesEqual(na: number, nb: number): boolean {
    const tu = this.tuples;
    const ao = na * TUPLE_WORDS, bo = nb * TUPLE_WORDS;
    for (let i = 0; i < TUPLE_WORDS; i++) if (tu[ao + i] !== tu[bo + i]) return false;
    return true;
  }

  // -------------------------------------------------------------------------
  // Life cycle

  /** __nf_conntrack_alloc(): a conntrack slot for tuple/repl, or CT_ENOMEM when the table is full and nothing could be evicted. */
  private alloc(t: Int32Array, o: number, r: Int32Array, ro: number, zoneId: number, zoneDir: number, hash: number): number {
    const max = this.sysctl.max;
    const count = ++this.count;
    if (count > this.peak) this.peak = count;
    if (max && count > max) {
      if (!this.earlyDrop(hash)) {
        this.count--;
        return CT_ENOMEM;
      }
    }
    let e = this.freeHead;
    if (e >= 0) this.freeHead = this.use[e]!;
    else {
      if (this.fresh === this.cap) {
        if (this.cap >= CT_CAPACITY_LIMIT) {
          this.count--;
          return CT_ENOMEM;
        }
        // the first growth: room for nf_conntrack_max conntracks, up to CT_RESERVE
        const max = this.sysctl.max;
        this.grow(this.cap === CT_START && max > 0 ? Math.min(max, CT_RESERVE) : this.cap * 2);
      }
      e = this.fresh++;
    }
    this.inUse[e] = 1;
    this.use[e] = 0;
    this.status[e] = 0;
    this.setCtTimeout(e, 0);
    this.mark[e] = 0;
    this.zoneId[e] = zoneId;
    this.zoneDir[e] = zoneDir;
    const ext = (this.sysctl.acct ? EXT_ACCT : 0) | (this.labelsUsed ? EXT_LABELS : 0);
    this.ext[e] = ext;
    // the extensions' words are read only where ext says they exist: a slot without them is not written
    if (ext & EXT_LABELS) this.labels.fill(0, e * LABEL_WORDS, (e + 1) * LABEL_WORDS);
    if (ext & EXT_ACCT) this.acct.fill(0, e * 4, e * 4 + 4);
    this.helper[e] = 0;
    this.timeoutPolicy[e] = 0;
    this.master[e] = -1;
    this.seqadj.fill(0, e * SEQADJ_WORDS, (e + 1) * SEQADJ_WORDS);
    this.origHash[e] = hash;
    this.masqIndex[e] = 0;
    this.natLinks[e * NAT_WORDS + NAT_BUCKET] = -1;
    this.born[e] = ++this.births;
    this.proto.fill(0, e * PROTO_WORDS, (e + 1) * PROTO_WORDS);
    const tu = this.tuples;
    const oo = 2 * e * TUPLE_WORDS;
    for (let i = 0; i < TUPLE_WORDS; i++) {
      tu[oo + i] = t[o + i]!;
      tu[oo + TUPLE_WORDS + i] = r[ro + i]!;
    }
    const at = 2 * e * NODE_WORDS;
    this.nodes[at + N_NEXT] = UNHASHED;
    this.nodes[at + N_PREV] = NOT_LINKED;
    this.nodes[at + NODE_WORDS + N_NEXT] = UNHASHED;
    this.nodes[at + NODE_WORDS + N_PREV] = NOT_LINKED;
    return e;
  }

  /** nf_conntrack_free(): back to the free list; a SNATed conntrack leaves the bysource hash (nf_nat_cleanup_conntrack). */
  private free(e: number): void {
    if (this.status[e]! & IPS_SRC_NAT_DONE) this.natBysourceRemove(e);
    if (this.helper[e]) this.ftp.delete(e);
    this.inUse[e] = 0;
    this.status[e] = 0;
    this.count--;
    this.use[e] = this.freeHead;
    this.freeHead = e;
    // destroy_conntrack(): the reference to the master goes
    const m = this.master[e]!;
    if (m >= 0) {
      this.master[e] = -1;
      this.nfCtPut(m);
    }
  }

  /** nf_ct_put(): drops one reference; the last one frees the conntrack. */
  nfCtPut(e: number): void {
    if (--this.use[e]! <= 0) this.free(e);
  }

  /**
   * nf_ct_delete() / nf_ct_kill(): out of the table (IPS_DYING); freed when
   * the last packet holding it lets go. False when it was already dying.
   */
  nfCtDelete(e: number): boolean {
    const st = this.status[e]!;
    if (st & IPS_DYING) return false;
    this.status[e] = st | IPS_DYING;
    if (st & IPS_CONFIRMED) {
      this.unlink(2 * e);
      this.unlink(2 * e + 1);
      // clean_from_lists(): its pending expectations go
      if (this.expect.size) this.expect.removeOf(e);
      this.nfCtPut(e);
    }
    return true;
  }

  /**
   * early_drop(): evicts the non-assured conntracks of the first of
   * NF_CT_EVICTION_RANGE buckets from `hash` that has any; true when one went.
   */
  private earlyDrop(hash: number): boolean {
    let bucket = 0;
    for (let i = 0; i < NF_CT_EVICTION_RANGE; i++) {
      bucket = i === 0 ? this.bucketOf(hash) : (bucket + 1) % this.nbuckets;
      let drops = 0;
      let n = this.head[bucket]!;
      while (n >= 0) {
        const next = this.nodes[n * NODE_WORDS + N_NEXT]!;
        const e = n >> 1;
        if (this.nodes[n * NODE_WORDS + N_PREV] !== NOT_LINKED) {
          if (this.isExpired(e)) this.gcExpired(e);
          else if (!(this.status[e]! & (IPS_ASSURED | IPS_DYING)) && this.isConfirmed(e) && this.nfCtDelete(e)) drops++;
        }
        n = next;
      }
      if (drops) {
        this.stats.earlyDrop += drops;
        return true;
      }
    }
    return false;
  }

  /** A full gc_worker pass at `now`: every expired confirmed conntrack is removed. Returns how many went. */
  nfConntrackGc(nowNs: number): number {
    this.setNow(nowNs);
    let n = 0;
    for (let e = 0; e < this.fresh; e++) {
      if (this.inUse[e] && this.isConfirmed(e) && !(this.status[e]! & IPS_DYING) && this.isExpired(e)) {
        this.nfCtDelete(e);
        n++;
      }
    }
    return n;
  }

  /** nf_conntrack_alter_reply(): NAT changes the reply tuple of an unconfirmed conntrack. */
  alterReply(e: number, t: Int32Array, o: number): void {
    const at = (2 * e + 1) * TUPLE_WORDS;
    for (let i = 0; i < TUPLE_WORDS; i++) this.tuples[at + i] = t[o + i]!;
  }

  /** Adds a conntrack to a NAT bysource chain (nf_nat_setup_info, SRC manip). */
  natBysourceAdd(e: number, bucket: number): void {
    this.natLinks[e * NAT_WORDS + NAT_BUCKET] = bucket;
    hlistAddHead(this.natLinks, NAT_WORDS, this.natHead, bucket, e);
  }

  /** The conntrack after `e` in its bysource chain, -1 at the end. */
  natNextOf(e: number): number {
    return this.natLinks[e * NAT_WORDS + NAT_NEXT]!;
  }

  /** Out of the bysource chain (hlist_del_rcu): constant time, through the previous conntrack. */
  private natBysourceRemove(e: number): void {
    const at = e * NAT_WORDS + NAT_BUCKET;
    const bucket = this.natLinks[at]!;
    if (bucket < 0) return;
    hlistDel(this.natLinks, NAT_WORDS, this.natHead, bucket, e);
    this.natLinks[at] = -1;
  }

  /**
   * __nf_ct_refresh_acct(): a new timeout of `extra` jiffies from now (from
   * confirmation while unconfirmed), unless IPS_FIXED_TIMEOUT; accounting.
   */
  nfCtRefreshAcct(e: number, ctinfo: number, len: number, extra: number): void {
    if (!(this.status[e]! & IPS_FIXED_TIMEOUT)) this.setCtTimeout(e, this.isConfirmed(e) ? (extra + this.jiffies) | 0 : extra);
    this.acctAdd(e, ctinfo, len);
  }

  /** nf_conn_acct of `e`: packets or bytes of direction `dir`, -1 without the extension. */
  acctCounter(e: number, dir: number, bytes: boolean): number {
    if (!(this.ext[e]! & EXT_ACCT)) return -1;
    return this.acct[e * 4 + (dir ? 2 : 0) + (bytes ? 1 : 0)]!;
  }

  acctAdd(e: number, ctinfo: number, len: number): void {
    if (!(this.ext[e]! & EXT_ACCT)) return;
    const at = e * 4 + (ctinfo >= IP_CT_IS_REPLY ? 2 : 0);
    this.acct[at]!++;
    this.acct[at + 1] = this.acct[at + 1]! + len;
  }

  /** nf_ct_kill_acct() */
  nfCtKillAcct(e: number, ctinfo: number, len: number): boolean {
    this.acctAdd(e, ctinfo, len);
    return this.nfCtDelete(e);
  }

  // -------------------------------------------------------------------------
  // Templates (xt_CT) and the packet's conntrack fields

  /** nf_ct_tmpl_alloc(): a template for CT --zone (made once per rule at load time); its number for nfCtSetTemplate. */
  /** Label bit `bit` (0-127) of the conntrack: 0 or 1, -1 when it has no labels extension (nf_ct_labels_find). */
  labelBit(e: number, bit: number): number {
    if (!(this.ext[e]! & EXT_LABELS)) return -1;
    return (this.labels[e * LABEL_WORDS + (bit >> 5)]! >>> (bit & 31)) & 1;
  }

  /** Sets label bit `bit` of a conntrack that has the labels extension (test_and_set_bit on nf_conn_labels). */
  labelSet(e: number, bit: number): void {
    if (this.ext[e]! & EXT_LABELS) this.labels[e * LABEL_WORDS + (bit >> 5)]! |= 1 << (bit & 31);
  }

  /** The label words of a conntrack (LABEL_WORDS, bit b in word b >> 5), undefined without the extension. */
  labelWords(e: number): Int32Array | undefined {
    return this.ext[e]! & EXT_LABELS ? this.labels.subarray(e * LABEL_WORDS, (e + 1) * LABEL_WORDS) : undefined;
  }

  /** nf_ct_timeout_lookup(): the timeouts of the conntrack's cttimeout policy, undefined without one (the tracker then reads the sysctls). */
  nfCtTimeoutLookup(e: number): Int32Array | undefined {
    const p = this.timeoutPolicy[e]!;
    return p === 0 ? undefined : this.timeoutPolicies[p];
  }

  /** The template of number `tmpl` (nfCtTmplAlloc's). */
  template(tmpl: number): NfCtTemplate {
    return this.templates[tmpl]!;
  }

  nfCtTmplAlloc(t: NfCtTemplate): number {
    this.templates.push({ ...t });
    return this.templates.length - 1;
  }

  /** The packet has no skb->_nfct: no conntrack, template or untracked mark yet. */
  private static noNfct(m: Int32Array): boolean {
    return m[M_CT_ID] === -1 && !(m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT);
  }

  /**
   * xt_ct_target() with a template: attaches it unless the packet already has
   * an nfct. Seen from rules as ctstate NEW, status TEMPLATE|CONFIRMED.
   */
  nfCtSetTemplate(pkt: Packet, tmpl: number): void {
    const m = pkt.meta;
    if (!NfConntrack.noNfct(m)) return;
    m[M_CT_ID] = -2 - tmpl;
    m[M_CT_STATE] = NF_CT_STATE_NEW_BIT;
    m[M_CT_DIR] = IP_CT_DIR_ORIGINAL;
    m[M_CT_STATUS] = IPS_TEMPLATE | IPS_CONFIRMED;
    m[M_CT_MARK] = 0;
  }

  /** NOTRACK / CT --notrack (notrack_tg): marks the packet untracked unless it already has an nfct. */
  nfCtSetUntracked(pkt: Packet): void {
    const m = pkt.meta;
    if (!NfConntrack.noNfct(m)) return;
    setNoCt(m, true);
  }

  /** nf_ct_set(skb, ct, ctinfo): the packet's conntrack words. */
  setPacketCt(m: Int32Array, e: number, ctinfo: number): void {
    m[M_CT_ID] = e;
    m[M_CT_STATE] = nfCtStateBit(ctinfo);
    m[M_CT_DIR] = ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
    m[M_CT_STATUS] = this.status[e]!;
    m[M_CT_MARK] = this.mark[e]!;
  }

  /**
   * CONNMARK/ct mark write-back: stores the packet's M_CT_MARK into its
   * conntrack (ct->mark). The kernel's targets write ct->mark directly, so
   * the next reader (a later rule, hook or packet) sees it; call this after
   * every table that may have changed M_CT_MARK, before another packet of
   * the connection is looked up. A template or no conntrack has no mark.
   */
  nfCtMarkStore(pkt: Packet): void {
    const e = pkt.meta[M_CT_ID]!;
    if (e >= 0) this.mark[e] = pkt.meta[M_CT_MARK]!;
  }

  /** Refreshes the packet's M_CT_STATUS / M_CT_MARK from its conntrack. */
  syncPacket(pkt: Packet): void {
    const e = pkt.meta[M_CT_ID]!;
    if (e >= 0) {
      pkt.meta[M_CT_STATUS] = this.status[e]!;
      pkt.meta[M_CT_MARK] = this.mark[e]!;
    }
  }

  /**
   * nf_reset_ct() / the skb's death: the packet lets go of its conntrack
   * (an unconfirmed one is freed) and of its template.
   */
  nfResetCt(pkt: Packet): void {
    const m = pkt.meta;
    const e = m[M_CT_ID]!;
    if (e >= 0) this.nfCtPut(e);
    m[M_CT_ID] = -1;
    m[M_CT_STATE] = 0;
    m[M_CT_DIR] = -1;
    m[M_CT_STATUS] = 0;
    m[M_CT_MARK] = 0;
  }

  /**
   * Saves the whole table (entries, chains, counters, templates, the clock);
   * the returned function puts it back as it was (trace --all-branches runs
   * every branch from one state).
   */
  checkpoint(): () => void {
    const self = this as unknown as Record<string, unknown>;
    const saved: [string, unknown][] = [];
    for (const [k, v] of Object.entries(self)) {
      if (ArrayBuffer.isView(v)) saved.push([k, (v as Int32Array).slice()]);
      else if (typeof v === 'number' || typeof v === 'boolean') saved.push([k, v]);
      else if (Array.isArray(v)) saved.push([k, v.slice()]);
    }
    const stats = { ...this.stats };
    return () => {
      for (const [k, v] of saved) self[k] = ArrayBuffer.isView(v) ? (v as Int32Array).slice() : Array.isArray(v) ? v.slice() : v;
      Object.assign(this.stats, stats);
    };
  }

  /** nf_conntrack_get() for a clone of `from` (TEE, REJECT's nf_conntrack_attach): another reference. */
  nfConntrackGet(e: number): void {
    if (e >= 0) this.use[e]!++;
  }

  // -------------------------------------------------------------------------
  // nf_conntrack_in

  /**
   * nf_conntrack_in() at PRE_ROUTING or LOCAL_OUT (NF_IP_PRI_CONNTRACK, -200;
   * for LOCAL_OUT call nfConntrackLocal). Reads the packet bytes, M_NHOFF,
   * M_END, M_NFPROTO, M_MARK (zone from mark) and the nfct words; writes
   * M_CT_ID, M_CT_STATE, M_CT_DIR, M_CT_STATUS, M_CT_MARK. Returns NF_ACCEPT,
   * or NF_DROP when the table is full (or a TCP reopen could not kill the old
   * conntrack). `nowNs` sets the clock first; without it, the clock is the
   * last setNow()'s (a caller that keeps it current passes no double per
   * packet: a number that is not a small integer is boxed on each call).
   */
  nfConntrackIn(pkt: Packet, hook: number, nowNs?: number): number {
    const m = pkt.meta;
    if (nowNs !== undefined) this.setNow(nowNs);
    let tmpl = -1;
    const id = m[M_CT_ID]!;
    if (id >= 0 || (id === -1 && m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT)) return NF_ACCEPT; // loopback or untracked
    if (id <= -2) tmpl = -2 - id;
    m[M_CT_ID] = -1;
    const pf = m[M_NFPROTO]!;
    const d = pkt.data;
    const nh = m[M_NHOFF]!;
    const end = m[M_END]!;
    const dataoff = getL4proto(d, nh, end, pf);
    const protonum = l4.protonum;
    // The packet's zone: the template's (nf_ct_zone_tmpl) or the default.
    let zoneId = NF_CT_DEFAULT_ZONE_ID, zoneDir = NF_CT_DEFAULT_ZONE_DIR;
    if (tmpl >= 0) {
      const t = this.templates[tmpl]!;
      zoneId = t.zoneFromMark ? m[M_MARK]! & 0xffff : t.zoneId;
      zoneDir = t.zoneDir;
    }
    if (dataoff <= 0) {
      this.stats.invalid++;
      setNoCt(m, false);
      return NF_ACCEPT;
    }
    if (protonum === IPPROTO_ICMP || protonum === IPPROTO_ICMPV6) {
      let ret = NF_ACCEPT;
      if (pf === NFPROTO_IPV4 && protonum === IPPROTO_ICMP) ret = nfConntrackIcmpv4Error(this, pkt, dataoff, hook, zoneId, zoneDir);
      else if (pf === NFPROTO_IPV6 && protonum === IPPROTO_ICMPV6) ret = nfConntrackIcmpv6Error(this, pkt, dataoff, hook, zoneId, zoneDir);
      if (ret <= 0) {
        this.stats.error++;
        if (m[M_CT_ID]! < 0 && !(m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT)) setNoCt(m, false);
        return -ret;
      }
      // The ICMP tracker may have assigned a conntrack (RELATED) or marked it untracked.
      if (m[M_CT_ID]! >= 0 || m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT) return NF_ACCEPT;
    }
    for (;;) {
      // resolve_normal_ct()
      const t = this.scratch;
      if (!nfCtGetTuple(d, nh, dataoff, end, pf, protonum, t, 0)) {
        this.stats.invalid++;
        setNoCt(m, false);
        return NF_ACCEPT;
      }
      const zid = zoneDir & NF_CT_ZONE_DIR_ORIG ? zoneId : NF_CT_DEFAULT_ZONE_ID;
      const hash = this.hashTuple(t, 0, zid);
      let node = this.find(t, 0, zoneId, zoneDir, hash, zid);
      if (node < 0) {
        const rid = zoneDir & NF_CT_ZONE_DIR_REPL ? zoneId : NF_CT_DEFAULT_ZONE_ID;
        if (rid !== zid) node = this.find(t, 0, zoneId, zoneDir, this.hashTuple(t, 0, rid), rid);
      }
      let e: number;
      let ctinfo: number;
      if (node < 0) {
        // init_conntrack()
        if (!nfCtInvertTuple(t, 0, t, TUPLE_WORDS)) {
          this.stats.invalid++;
          setNoCt(m, false);
          return NF_ACCEPT;
        }
        e = this.alloc(t, 0, t, TUPLE_WORDS, zoneId, zoneDir, hash);
        if (e === CT_ENOMEM) {
          this.stats.drop++;
          setNoCt(m, false);
          return NF_DROP;
        }
        this.use[e] = 1;
        // an expected connection (nf_ct_find_expectation): its master, and the master's mark
        const x = this.expect.size ? this.expect.find(t, 0, zoneId, this.jiffies, (mm) => this.isConfirmed(mm) && !(this.status[mm]! & IPS_DYING)) : undefined;
        if (x) {
          this.status[e]! |= IPS_EXPECTED;
          this.master[e] = x.master;
          this.use[x.master]!++;
          this.mark[e] = this.mark[x.master]!;
          if (x.follow) this.expectFollow?.(e, x);
        } else {
          // __nf_ct_try_assign_helper(): the template's helper.
          const h = tmpl >= 0 ? this.templates[tmpl]!.helper ?? 0 : 0;
          if (h) {
            this.helper[e] = h;
            this.status[e]! |= IPS_HELPER;
          }
        }
        // nf_ct_timeout_ext_add(): the template's timeout policy
        if (tmpl >= 0) this.timeoutPolicy[e] = this.templates[tmpl]!.timeout ?? 0;
        ctinfo = x ? IP_CT_RELATED : IP_CT_NEW;
      } else {
        e = node >> 1;
        this.use[e]!++;
        if (node & 1) ctinfo = IP_CT_ESTABLISHED_REPLY;
        else {
          const st = this.status[e]!;
          ctinfo = st & IPS_SEEN_REPLY ? IP_CT_ESTABLISHED : st & IPS_EXPECTED ? IP_CT_RELATED : IP_CT_NEW;
        }
      }
      const ret = this.handlePacket(e, pkt, dataoff, ctinfo, hook, protonum);
      if (ret <= 0) {
        this.nfCtPut(e);
        if (ret === -NF_REPEAT) continue;
        this.stats.invalid++;
        if (ret === NF_DROP) this.stats.drop++;
        setNoCt(m, false);
        return -ret;
      }
      if (ctinfo === IP_CT_ESTABLISHED_REPLY) this.status[e]! |= IPS_SEEN_REPLY;
      this.setPacketCt(m, e, ctinfo);
      return NF_ACCEPT;
    }
  }

  /** ipv4_conntrack_local(): LOCAL_OUT; a fragment (IP_NODEFRAG) skips conntrack and loses its template. */
  nfConntrackLocal(pkt: Packet, nowNs?: number): number {
    const m = pkt.meta;
    if (m[M_NFPROTO] === NFPROTO_IPV4) {
      const nh = m[M_NHOFF]!;
      const d = pkt.data;
      if (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x3fff) {
        if (m[M_CT_ID]! <= -2) setNoCt(m, false);
        return NF_ACCEPT;
      }
    }
    return this.nfConntrackIn(pkt, 3 /* NF_INET_LOCAL_OUT */, nowNs);
  }

  /** nf_conntrack_handle_packet(): the protocol tracker's verdict (> 0 accept, <= 0 the negated verdict, -NF_REPEAT retry). */
  private handlePacket(e: number, pkt: Packet, dataoff: number, ctinfo: number, hook: number, protonum: number): number {
    switch (protonum) {
      case IPPROTO_TCP: return nfConntrackTcpPacket(this, e, pkt, dataoff, ctinfo, hook);
      case IPPROTO_UDP: return nfConntrackUdpPacket(this, e, pkt, dataoff, ctinfo, hook);
      case IPPROTO_ICMP: return nfConntrackIcmpPacket(this, e, pkt, ctinfo);
      case IPPROTO_ICMPV6: return nfConntrackIcmpv6Packet(this, e, pkt, ctinfo);
      case IPPROTO_UDPLITE: return nfConntrackUdplitePacket(this, e, pkt, dataoff, ctinfo, hook);
      case IPPROTO_SCTP: return nfConntrackSctpPacket(this, e, pkt, dataoff, ctinfo, hook);
      case IPPROTO_GRE: return nfConntrackGrePacket(this, e, pkt, ctinfo);
      default:
        // generic_packet(): the cttimeout policy's one value (a generic tracker's: nf_ct_set_timeout), else the sysctl
        this.nfCtRefreshAcct(e, ctinfo, pkt.meta[M_END]! - pkt.meta[M_NHOFF]!, this.nfCtTimeoutLookup(e)?.[0] ?? this.sysctl.genericTimeout);
        return NF_ACCEPT;
    }
  }

  /**
   * nf_conntrack_inet_error(): an ICMP error whose inner packet t belongs to
   * a known connection becomes RELATED (RELATED_REPLY in the reply
   * direction) to it, when the outer destination is that direction's
   * destination. Returns NF_ACCEPT with the conntrack set, or -NF_ACCEPT.
   */
  inetError(pkt: Packet, innerNh: number, zoneId: number, zoneDir: number): number {
    const m = pkt.meta;
    const d = pkt.data;
    const pf = m[M_NFPROTO]!;
    const end = m[M_END]!;
    const s = this.scratch;
    const o = 2 * TUPLE_WORDS;
    // nf_ct_get_tuplepr() on the inner header
    const protoff = getL4proto(d, innerNh, end, pf);
    if (protoff <= 0) return -NF_ACCEPT;
    if (!nfCtGetTuple(d, innerNh, protoff, end, pf, l4.protonum, s, o)) return -NF_ACCEPT;
    if (!nfCtInvertTuple(s, o, s, o + TUPLE_WORDS)) return -NF_ACCEPT;
    const node = this.findGet(s, o + TUPLE_WORDS, zoneId, zoneDir);
    if (node < 0) return -NF_ACCEPT;
    const e = node >> 1;
    const dir = node & 1;
    // The outer destination must be this direction's destination.
    const ta = node * TUPLE_WORDS + T_DST;
    const nh = m[M_NHOFF]!;
    if (pf === NFPROTO_IPV4) {
      const daddr = (d[nh + 16]! << 24) | (d[nh + 17]! << 16) | (d[nh + 18]! << 8) | d[nh + 19]!;
      if (this.tuples[ta] !== daddr) return -NF_ACCEPT;
    } else {
      for (let i = 0; i < 4; i++) {
        const at = nh + 24 + 4 * i;
        if (this.tuples[ta + i] !== ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!)) return -NF_ACCEPT;
      }
    }
    this.use[e]!++;
    this.setPacketCt(m, e, dir === IP_CT_DIR_REPLY ? IP_CT_RELATED + IP_CT_IS_REPLY : IP_CT_RELATED);
    return NF_ACCEPT;
  }

  // -------------------------------------------------------------------------
  // Confirmation

  /**
   * nf_confirm() at POST_ROUTING and LOCAL_IN (NF_IP_PRI_CONNTRACK_CONFIRM,
   * INT_MAX; IPv6: NF_IP6_PRI_LAST, LOCAL_IN LAST - 1): the conntrack's
   * helper sees the packet (the FTP helper: helper_ftp.ts), a connection a
   * NAT helper resized has its sequence numbers adjusted (seqadj.ts), then a
   * new conntrack enters the table. Returns NF_ACCEPT or NF_DROP (the
   * helper's, the adjustment's, or a clash that cannot be resolved).
   */
  nfConfirm(pkt: Packet, nowNs?: number, hook = NF_INET_POST_ROUTING): number {
    const m = pkt.meta;
    const e = m[M_CT_ID]!;
    if (e < 0) return NF_ACCEPT;
    // the helpers whose help() is modelled; the others' is nothing here
    const h = this.helper[e]!;
    const helper = h === CT_HELPER_FTP || h === CT_HELPER_TFTP ? h : 0;
    // nf_is_loopback_packet() is not told apart: a NATed FTP connection over lo is adjusted both ways
    const seqadjNeeded = (this.status[e]! & IPS_SEQ_ADJUST) !== 0;
    if (helper || seqadjNeeded) {
      if (nowNs !== undefined) this.setNow(nowNs);
      const v = this.helpAndAdjust(pkt, hook, e, helper, seqadjNeeded);
      if (v !== NF_ACCEPT) return v;
    }
    if (this.isConfirmed(e)) return NF_ACCEPT;
    if (nowNs !== undefined) this.setNow(nowNs);
    return this.nfConntrackConfirm(pkt, e);
  }

  /** nf_confirm()'s middle: the helper's help() (the FTP helper's), then nf_ct_seq_adjust(). NF_ACCEPT or the verdict. */
  private helpAndAdjust(pkt: Packet, hook: number, e: number, helper: number, seqadjNeeded: boolean): number {
    const m = pkt.meta;
    const ctinfo = ctinfoOf(m);
    // helper->help() do not expect ICMP packets
    if (ctinfo === IP_CT_RELATED_REPLY || ctinfo < 0) return NF_ACCEPT;
    const d = pkt.data;
    const pf = m[M_NFPROTO]!;
    const end = m[M_END]!;
    const thoff = getL4proto(d, m[M_NHOFF]!, end, pf);
    // ipv6_skip_exthdr() to a later fragment: confirmed as it is
    if (thoff <= 0 || l4.fragOff !== 0) return NF_ACCEPT;
    if (helper === CT_HELPER_FTP && l4.protonum === IPPROTO_TCP && (ctinfo === IP_CT_ESTABLISHED || ctinfo === IP_CT_ESTABLISHED_REPLY) && thoff + 20 <= end) {
      const v = this.ftpHelp(pkt, hook, e, ctinfo, thoff, pf);
      if (v !== NF_ACCEPT) {
        this.confirmDropWhy ??= 'the FTP helper dropped it (nf_conntrack_ftp)';
        return v;
      }
    } else if (helper === CT_HELPER_TFTP && l4.protonum === IPPROTO_UDP) {
      const v = this.tftpHelp(pkt, e, thoff, pf);
      if (v !== NF_ACCEPT) return v;
    }
    if (seqadjNeeded && l4.protonum === IPPROTO_TCP && thoff + 20 <= end) {
      if (!nfCtSeqAdjust(this, e, ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL, d, thoff, end)) {
        this.stats.drop++;
        this.confirmDropWhy = 'a TCP option cut short, which sequence adjustment cannot read (nf_ct_seq_adjust)';
        return NF_DROP;
      }
    }
    return NF_ACCEPT;
  }

  /** tftp_help() on a UDP packet of conntrack `e`: a request expects the transfer (nf_nat_tftp on a NATed one). */
  private tftpHelp(pkt: Packet, e: number, thoff: number, pf: number): number {
    const t = tftpExpectation(pkt.data, thoff, pkt.meta[M_END]!, this.tuples, e, pf);
    if (!t) return NF_ACCEPT;
    const exp = nfCtExpectInit(t, e, this.zoneId[e]!);
    if (this.status[e]! & IPS_NAT_MASK && this.expectFollow) {
      // nf_nat_tftp: the client's port before NAT, the connection coming in the reply's direction, NATed as its master
      exp.savedPort = this.tuples[2 * e * TUPLE_WORDS + T_PORTS]! >>> 16;
      exp.dir = IP_CT_DIR_REPLY;
      exp.follow = true;
    }
    return this.expectRelated(exp, TFTP_EXP_POLICY, 'the TFTP helper dropped it: cannot add expectation (nf_conntrack_tftp)');
  }

  /** nf_ct_expect_related() of a helper's expectation: NF_ACCEPT, or NF_DROP with `why` when it cannot be added ("cannot add expectation"). */
  private expectRelated(exp: Expectation, policy: ExpectPolicy, why: string): number {
    if (this.expect.related(exp, policy, this.jiffies, this.sysctl.hz) === 0) {
      this.lastExpectation = exp;
      return NF_ACCEPT;
    }
    this.confirmDropWhy = why;
    return NF_DROP;
  }

  /** The FTP helper's help() on a packet of control connection `e` (established: both ways seen). */
  private ftpHelp(pkt: Packet, hook: number, e: number, ctinfo: number, thoff: number, pf: number): number {
    let info = this.ftp.get(e);
    if (!info) {
      info = new FtpMaster();
      this.ftp.set(e, info);
    }
    const dir = ctinfo === IP_CT_ESTABLISHED ? IP_CT_DIR_ORIGINAL : IP_CT_DIR_REPLY;
    const r = ftpHelp(pkt.data, thoff, pkt.meta[M_END]!, info, this.tuples, e, dir, pf);
    if (r.log) this.confirmDropWhy = `the FTP helper dropped it: ${r.log} (nf_conntrack_ftp)`;
    if (!r.expect) return r.verdict;
    const exp = nfCtExpectInit(r.expect, e, this.zoneId[e]!);
    // a NATed control connection: nf_nat_ftp rewrites the announcement and registers the expectation
    if (this.status[e]! & IPS_NAT_MASK && this.natFtpHook) {
      const v = this.natFtpHook(pkt, hook, e, ctinfo, r.type!, thoff, r.matchoff!, r.matchlen!, exp, FTP_EXP_POLICY);
      if (v === NF_ACCEPT) this.lastExpectation = exp;
      return v;
    }
    // "cannot add expectation": best to drop the packet now
    return this.expectRelated(exp, FTP_EXP_POLICY, 'the FTP helper dropped it: cannot add expectation (nf_conntrack_ftp)');
  }

  /** __nf_conntrack_confirm() */
  private nfConntrackConfirm(pkt: Packet, e: number): number {
    const m = pkt.meta;
    if (m[M_CT_DIR] !== IP_CT_DIR_ORIGINAL) return NF_ACCEPT;
    if (this.status[e]! & IPS_DYING) {
      this.stats.insertFailed++;
      return NF_DROP;
    }
    const tu = this.tuples;
    const origNode = 2 * e, replyNode = 2 * e + 1;
    // the raw hashes (the nodes keep them), each made with the zone id of its direction
    const origZ = this.ctZoneId(e, IP_CT_DIR_ORIGINAL), replyZ = this.ctZoneId(e, IP_CT_DIR_REPLY);
    const hash = this.origHash[e]!;
    const replyHash = this.hashTuple(tu, replyNode * TUPLE_WORDS, replyZ);
    const zid = this.zoneId[e]!, zdir = this.zoneDir[e]!;
    const maxChainlen = MIN_CHAINLEN + ((this.rng.draw() >>> 0) % MAX_CHAINLEN);
    this.chainDraws++;
    const nodes = this.nodes;
    let chainlen = 0;
    for (let n = this.head[this.bucketOf(hash)]!; n >= 0; n = nodes[n * NODE_WORDS + N_NEXT]!) {
      if (this.mayEqual(n, hash, origZ, zid, zdir) && this.keyEqual(n, tu, origNode * TUPLE_WORDS, zid, zdir)) return this.nfCtResolveClash(pkt, e, n, replyHash);
      if (chainlen++ > maxChainlen) return this.chainTooLong();
    }
    const origLen = chainlen;
    chainlen = 0;
    for (let n = this.head[this.bucketOf(replyHash)]!; n >= 0; n = nodes[n * NODE_WORDS + N_NEXT]!) {
      if (this.mayEqual(n, replyHash, replyZ, zid, zdir) && this.keyEqual(n, tu, replyNode * TUPLE_WORDS, zid, zdir)) return this.nfCtResolveClash(pkt, e, n, replyHash);
      if (chainlen++ > maxChainlen) return this.chainTooLong();
    }
    const longest = Math.max(origLen, chainlen) + 1;
    if (longest > this.longestChain) this.longestChain = longest;
    this.insert(e, hash, replyHash);
    m[M_CT_STATUS] = this.status[e]!;
    return NF_ACCEPT;
  }

  /** __nf_conntrack_hash_insert() and what confirmation sets: the timeout counts from now, the table holds a reference. */
  private insert(e: number, hash: number, replyHash: number): void {
    this.setCtTimeout(e, (this.ctTimeout(e) + this.jiffies) | 0);
    this.use[e]!++;
    this.link(2 * e, hash);
    this.link(2 * e + 1, replyHash);
    this.status[e]! |= IPS_CONFIRMED;
    this.stats.insert++;
  }

  /**
   * Not the kernel's: a connection as a packet spec's `ct` clause describes
   * it (`nfvm trace`), made before the packet meets nf_conntrack_in.
   * `established` / `related`: the conntrack of the packet's tuple (its
   * reply tuple with `reply`), confirmed, with IPS_SEEN_REPLY (TCP: state
   * ESTABLISHED, IPS_ASSURED; the window is picked up from the next packet
   * as after a mid-stream start) or IPS_EXPECTED, made when the table has
   * none and given those bits when it has one; `new`: an existing conntrack
   * of the tuple goes, so the packet starts a connection. Returns the
   * conntrack, or -1 (none, or a packet conntrack cannot track).
   */
  nfCtPreset(pkt: Packet, state: 'new' | 'established' | 'related', reply: boolean, nowNs: number): number {
    const m = pkt.meta;
    this.setNow(nowNs);
    const id = m[M_CT_ID]!;
    if (id >= 0 || (id === -1 && m[M_CT_STATE]! & NF_CT_STATE_UNTRACKED_BIT)) return -1;
    let zoneId = NF_CT_DEFAULT_ZONE_ID, zoneDir = NF_CT_DEFAULT_ZONE_DIR;
    if (id <= -2) {
      const tp = this.templates[-2 - id]!;
      zoneId = tp.zoneFromMark ? m[M_MARK]! & 0xffff : tp.zoneId;
      zoneDir = tp.zoneDir;
    }
    const pf = m[M_NFPROTO]!;
    const dataoff = getL4proto(pkt.data, m[M_NHOFF]!, m[M_END]!, pf);
    if (dataoff <= 0) return -1;
    const t = this.scratch;
    const W = TUPLE_WORDS;
    if (!nfCtGetTuple(pkt.data, m[M_NHOFF]!, dataoff, m[M_END]!, pf, l4.protonum, t, 0)) return -1;
    const node = this.findGet(t, 0, zoneId, zoneDir);
    if (state === 'new') {
      if (node >= 0) this.nfCtDelete(node >> 1);
      return -1;
    }
    let e: number;
    if (node >= 0) e = node >> 1;
    else {
      // The conntrack's original tuple: the packet's, or its inverse for a reply.
      if (!nfCtInvertTuple(t, 0, t, W)) return -1;
      const oo = reply ? W : 0, ro = reply ? 0 : W;
      const zid = zoneDir & NF_CT_ZONE_DIR_ORIG ? zoneId : NF_CT_DEFAULT_ZONE_ID;
      const hash = this.hashTuple(t, oo, zid);
      e = this.alloc(t, oo, t, ro, zoneId, zoneDir, hash);
      if (e === CT_ENOMEM) return -1;
      this.use[e] = 0;
      const proto = t[T_PROTO]! & 0xff;
      const sc = this.sysctl;
      this.setCtTimeout(e, proto === IPPROTO_TCP ? sc.tcpTimeouts[TCP_CONNTRACK_ESTABLISHED]! : proto === IPPROTO_UDP || proto === IPPROTO_UDPLITE
        ? sc.udpTimeouts[state === 'established' ? 1 : 0]! : proto === IPPROTO_ICMP ? sc.icmpTimeout : proto === IPPROTO_ICMPV6 ? sc.icmpv6Timeout
        : sc.genericTimeout);
      this.insert(e, hash, this.hashTuple(this.tuples, (2 * e + 1) * W, this.ctZoneId(e, IP_CT_DIR_REPLY)));
    }
    if (state === 'established') {
      this.status[e]! |= IPS_SEEN_REPLY;
      if ((this.tuples[2 * e * W + T_PROTO]! & 0xff) === IPPROTO_TCP && this.proto[e * PROTO_WORDS + P_TCP_STATE]! < TCP_CONNTRACK_ESTABLISHED) {
        this.proto[e * PROTO_WORDS + P_TCP_STATE] = TCP_CONNTRACK_ESTABLISHED;
        this.status[e]! |= IPS_ASSURED;
      }
    } else if (!(this.status[e]! & IPS_SEEN_REPLY)) this.status[e]! |= IPS_EXPECTED;
    return e;
  }

  private chainTooLong(): number {
    this.stats.chaintoolong++;
    this.stats.insertFailed++;
    return NF_DROP;
  }

  /** nf_ct_resolve_clash(): `loser` (the packet's, unconfirmed) met node `h` of a conntrack already in the table. */
  private nfCtResolveClash(pkt: Packet, loser: number, h: number, replyHash: number): number {
    const winner = h >> 1;
    if (l4protoAllowClash(this.tuples[h * TUPLE_WORDS + T_PROTO]! & 0xff)) {
      if (this.resolveClashMerge(pkt, loser, winner) === NF_ACCEPT) return NF_ACCEPT;
      if (this.resolveClashHarder(pkt, loser, replyHash) === NF_ACCEPT) return NF_ACCEPT;
    }
    this.stats.drop++;
    this.stats.insertFailed++;
    return NF_DROP;
  }

  /** __nf_ct_resolve_clash(): the same flow (nf_ct_can_merge): the packet moves to the winner, the loser dies. */
  private resolveClashMerge(pkt: Packet, loser: number, winner: number): number {
    const match =
      (this.origTuplesEqual(winner, loser) && this.nodeTuplesEqual(2 * winner + 1, 2 * loser + 1) &&
        this.ctZoneId(winner, 0) === this.ctZoneId(loser, 0) && this.ctZoneId(winner, 1) === this.ctZoneId(loser, 1)) ||
      (this.nodeTuplesEqual(2 * winner, 2 * loser + 1) && this.nodeTuplesEqual(2 * winner + 1, 2 * loser) &&
        this.ctZoneId(winner, 0) === this.ctZoneId(loser, 1) && this.ctZoneId(winner, 1) === this.ctZoneId(loser, 0));
    if (!match) return NF_DROP;
    const m = pkt.meta;
    const ctinfo = ctinfoOf(m);
    this.use[winner]!++;
    // nf_ct_acct_merge(): the loser's bytes of this direction.
    if (this.ext[winner]! & EXT_ACCT && this.ext[loser]! & EXT_ACCT) {
      const dirAt = ctinfo >= IP_CT_IS_REPLY ? 2 : 0;
      const at = winner * 4 + dirAt;
      this.acct[at]!++;
      this.acct[at + 1] = this.acct[at + 1]! + this.acct[loser * 4 + dirAt + 1]!;
    }
    this.nfCtPut(loser);
    this.setPacketCt(m, winner, ctinfo);
    this.stats.clashResolve++;
    return NF_ACCEPT;
  }

  /**
   * nf_ct_resolve_clash_harder(): the clash is in the original direction
   * only: the loser goes into the table by its reply tuple alone, with a 1 s
   * fixed timeout and IPS_NAT_CLASH (never assured, not shown by dumps).
   */
  private resolveClashHarder(pkt: Packet, loser: number, replyHash: number): number {
    const tu = this.tuples;
    const zid = this.zoneId[loser]!, zdir = this.zoneDir[loser]!;
    const replyZ = this.ctZoneId(loser, IP_CT_DIR_REPLY);
    for (let n = this.head[this.bucketOf(replyHash)]!; n >= 0; n = this.nodes[n * NODE_WORDS + N_NEXT]!) {
      if (this.mayEqual(n, replyHash, replyZ, zid, zdir) && this.keyEqual(n, tu, (2 * loser + 1) * TUPLE_WORDS, zid, zdir)) return this.resolveClashMerge(pkt, loser, n >> 1);
    }
    this.setCtTimeout(loser, (this.jiffies + this.sysctl.hz) | 0);
    this.status[loser]! |= IPS_FIXED_TIMEOUT | IPS_NAT_CLASH;
    this.use[loser]!++;
    this.nodes[2 * loser * NODE_WORDS + N_NEXT] = UNHASHED; // hlist_nulls_add_fake
    this.link(2 * loser + 1, replyHash);
    this.status[loser]! |= IPS_CONFIRMED;
    this.stats.clashResolve++;
    pkt.meta[M_CT_STATUS] = this.status[loser]!;
    return NF_ACCEPT;
  }

  // -------------------------------------------------------------------------
  // Dumps

  /**
   * The conntracks `conntrack -L` lists at `now` (ctnetlink_dump_table):
   * confirmed, not dying, not expired (an expired one met here is evicted),
   * not a NAT-clash stand-in; in creation order (the kernel's order is the
   * random hash order).
   */
  dump(nowNs: number): number[] {
    this.setNow(nowNs);
    const out: number[] = [];
    for (let e = 0; e < this.fresh; e++) {
      if (!this.inUse[e] || !this.isConfirmed(e) || this.status[e]! & IPS_DYING) continue;
      if (this.isExpired(e)) {
        this.nfCtDelete(e);
        continue;
      }
      if (this.status[e]! & IPS_NAT_CLASH) continue;
      out.push(e);
    }
    return out.sort((a, b) => this.born[a]! - this.born[b]!);
  }

  /** Whether the NAT status bits say the packet's addresses are rewritten (IPS_NAT_MASK). */
  natted(e: number): boolean {
    return (this.status[e]! & IPS_NAT_MASK) !== 0;
  }

  /** Live conntracks not yet confirmed (held by packets in flight). */
  unconfirmedCount(): number {
    let n = 0;
    for (let e = 0; e < this.fresh; e++) if (this.inUse[e] && !this.isConfirmed(e)) n++;
    return n;
  }
}

/** l4proto->allow_clash: UDP, UDP-Lite, GRE. */
export function l4protoAllowClash(protonum: number): boolean {
  return protonum === IPPROTO_UDP || protonum === IPPROTO_UDPLITE || protonum === IPPROTO_GRE;
}

/** The packet's conntrack words for "no conntrack": INVALID, or UNTRACKED. */
export function setNoCt(m: Int32Array, untracked: boolean): void {
  m[M_CT_ID] = -1;
  m[M_CT_STATE] = untracked ? NF_CT_STATE_UNTRACKED_BIT : NF_CT_STATE_INVALID_BIT;
  m[M_CT_DIR] = -1;
  m[M_CT_STATUS] = 0;
  m[M_CT_MARK] = 0;
}

/** Whether checksums are verified for this packet: nf_conntrack_checksum on, at PRE_ROUTING. */
export function checksumHook(ct: NfConntrack, hook: number): boolean {
  return ct.sysctl.checksum !== 0 && hook === NF_INET_PRE_ROUTING;
}
