/**
 * Reassembly. IPv4: ip_defrag() for nf_defrag_ipv4 (conntrack's users, at
 * PREROUTING and LOCAL_OUT) and for ip_local_deliver (IP_DEFRAG_LOCAL_DELIVER).
 * IPv6 (defrag6): ipv6_frag_rcv() after INPUT and nf_ct_frag6_gather() for
 * nf_defrag_ipv6, with the same queue core (inet_fragment.c), keyed by
 * source, destination, ID, user and, for a link-local or multicast
 * destination, the input device; ip6frag_time (nf_conntrack_frag6_timeout
 * for nf_defrag_ipv6); the fragment header taken out of the datagram and
 * its next header put in its place. ipv6_frag_rcv answers a jumbogram or
 * cut fragment header, a first fragment without its upper-layer header
 * (code 3), a datagram past 65535 bytes and a non-final fragment not a
 * multiple of 8 long (the queue dropped) with a parameter problem.
 * nf_defrag_ipv6 lets a jumbogram, a truncated first fragment and the
 * non-final fragment (its queue dropped) through as they are, drops one past
 * 65535 bytes, and only drops the fragment (keeping the queue) where
 * ip6_frag_queue would drop the queue. A datagram made whole carries
 * frag_max_size (M_FRAG_MAX_SIZE) and, made by nf_defrag, ignore_df.
 *
 * Mirrors Linux 6.18, net/ipv4/ip_fragment.c and net/ipv4/inet_fragment.c:
 *   ip_find()                  a queue per (source, destination, ID, protocol, user), made by
 *                              the first fragment; it expires ipfrag_time seconds later, on the
 *                              packets' clock: checked before each packet (takeExpired), the
 *                              first fragment is handed back for ip_expire's ICMP time exceeded
 *                              (ip6frag_expire_frag_queue's, for ipv6_frag_rcv's queues and
 *                              nf_defrag_ipv6's alike: nf_conntrack_frag6_timeout for the latter)
 *   ip_frag_too_far()          more than ipfrag_max_dist fragments from the same source since
 *                              the queue's last one: the queue starts over (ip_frag_reinit)
 *   ip_frag_queue()            the end of the datagram from the last fragment (a later end or a
 *                              different one kills the queue), a non-final fragment's end cut to
 *                              a multiple of 8, an empty fragment kills it; a completed queue
 *                              leaves the table (ipq_kill), so a late copy starts a new one
 *   inet_frag_queue_insert()   runs of contiguous fragments: a fragment within a run is a
 *                              duplicate (dropped, the queue kept), one overlapping a run or
 *                              spanning two kills the queue (RFC 5722 as Linux applies it to IPv4)
 *   ip_frag_reasm()            once the first and last fragments are in and every byte is: the
 *                              first fragment's headers, tot_len, the ECN bits combined
 *                              (ip_frag_ecn_table: an ECT fragment with a not-ECT one kills it),
 *                              DF kept only when the largest fragment had it, the checksum;
 *                              more than 65535 bytes kills it
 *   ipfrag_high_thresh         no fragment queued while the held memory passes it (counted
 *                              here in frame bytes and a fixed overhead per fragment and per
 *                              queue, not the kernel's truesize; one pool for both families)
 */
import { F_FRAGMENTED, F_IGNORE_DF, M_FLAGS, M_FRAG_MAX_SIZE, M_IIF, M_LEN, M_NHOFF } from '../../vm/layout.js';
import { decodeNetwork, type Packet } from '../../vm/packet.js';
import type { IpOpts } from './ctx.js';
import { ipSendCheck } from './ipv4.js';
import { fragHdr6 } from './ipv6.js';
import type { Sysctls } from '../snapshot/sysctl.js';

/* enum ip_defrag_users */
export const IP_DEFRAG_LOCAL_DELIVER = 0;
export const IP_DEFRAG_CONNTRACK_IN = 2;
export const IP_DEFRAG_CONNTRACK_OUT = 3;

const IP_MF = 0x2000;
const IP_DF = 0x4000;
const IP_OFFSET = 0x1fff;
const INET_FRAG_FIRST_IN = 1;
const INET_FRAG_LAST_IN = 2;
/** What a queue itself is charged (inet_frag_alloc: an approximation of sizeof(struct ipq)). */
const QUEUE_OVERHEAD = 256;
/** Sources whose fragment count is kept before those without a queue are forgotten. */
const MAX_PEERS = 4096;
/** The per-fragment overhead added to its bytes for the memory limit (an approximation of skb truesize). */
const FRAG_OVERHEAD = 512;
/** ip_frag_ecn_table, indexed by the OR of 1 << (tos & 3) of every fragment: 0xff kills the queue. */
const ECN_TABLE = [0, 0, 0, 0xff, 0, 0xff, 0, 0xff, 0, 0xff, 3, 0xff, 3, 0xff, 3, 0xff];

/** ip_defrag()'s outcome. */
export const FRAG_DONE = 0;
export const FRAG_HELD = 1;
export const FRAG_DROPPED = 2;
/** defrag6(): not a fragment to reassemble, the packet goes on as it is. */
export const FRAG_ASIS = 3;
const NEXTHDR_FRAGMENT = 44;
/** fragHdr6()'s next-header offset. */
const PREV = new Int32Array(1);

interface Frag {
  offset: number;
  end: number;
  /** The fragment's payload (past its IP header). */
  data: Uint8Array;
}

interface Queue {
  flags: number;
  /** The datagram's payload length once known (or the highest end so far). */
  len: number;
  meat: number;
  /** Sorted by offset; `runs` says which are contiguous runs (start, end). */
  frags: Frag[];
  runs: { start: number; end: number }[];
  /** The end of the fragment queued last at the tail (fragments_tail). */
  tailEnd: number;
  /** The first fragment's frame up to the end of its IP header, and its network header offset. */
  head: Uint8Array | undefined;
  headNh: number;
  /** IPv6: the offset of the next-header byte naming the fragment header, and the fragment header's next header (the first fragment's). */
  nhoffset: number;
  nexthdr: number;
  /** IPv6: the first fragment's fragment header (the head as it came, for the expiry's ICMPv6). */
  fragHdr: Uint8Array;
  /** IPv4: the first fragment's compiled options (ip_local_deliver's queue). */
  opts: IpOpts | undefined;
  maxSize: number;
  maxDfSize: number;
  ecn: number;
  /** The input device of the last fragment (qp->iif), and whether the queue is IPv6's and a conntrack user's. */
  iif: number;
  v6: boolean;
  conntrack: boolean;
  expires: number;
  rid: number;
  mem: number;
}

/** A queue's first fragment when its timer ran out: the frame, its network header, the input device. */
export interface ExpiredHead {
  readonly frame: Uint8Array;
  readonly nh: number;
  readonly iif: number;
  readonly v6: boolean;
  /** A conntrack user's queue (IPv4 answers it only when the datagram was for the node). */
  readonly conntrack: boolean;
}
const NONE_EXPIRED: ExpiredHead[] = [];
const NO_BYTES = new Uint8Array(0);
/** At most this many expiries answered at one time (the rest are dropped silently). */
const MAX_EXPIRED = 64;

/** The reassembly queues of one node. */
export class IpFrags {
  private readonly queues = new Map<string, Queue>();
  /** inet_peer->rid: fragments seen per source. */
  private readonly rid = new Map<number | string, number>();
  private now = 0;
  private mem = 0;
  private readonly timeout: number;
  private readonly timeout6: number;
  private readonly timeoutCt6: number;
  private readonly maxDist: number;
  private readonly highThresh: number;
  /** Why the last fragment was dropped (FRAG_DROPPED). */
  why = '';

  constructor(sysctl: Sysctls) {
    const n = (k: string, dflt: number) => {
      const v = sysctl.get(k);
      return v === undefined || !/^\d+$/.test(v.trim()) ? dflt : Number(v.trim());
    };
    this.timeout = n('net.ipv4.ipfrag_time', 30) * 1e9;
    this.timeout6 = n('net.ipv6.ip6frag_time', 60) * 1e9;
    this.timeoutCt6 = n('net.netfilter.nf_conntrack_frag6_timeout', 60) * 1e9;
    this.maxDist = n('net.ipv4.ipfrag_max_dist', 64);
    this.highThresh = n('net.ipv4.ipfrag_high_thresh', 4 * 1024 * 1024);
  }

  /** The queues as they are (for trace --all-branches, which replays a packet from the same state): the returned function puts them back. */
  checkpoint(): () => void {
    const copy = (q: Queue): Queue => ({ ...q, frags: q.frags.slice(), runs: q.runs.map((r) => ({ ...r })) });
    const queues = [...this.queues].map(([k, q]) => [k, copy(q)] as const);
    const rid = new Map(this.rid);
    const { mem, nextExpiry } = this;
    return () => {
      this.queues.clear();
      for (const [k, q] of queues) this.queues.set(k, copy(q));
      this.rid.clear();
      for (const [k, v] of rid) this.rid.set(k, v);
      this.mem = mem;
      this.nextExpiry = nextExpiry;
    };
  }

  setNow(nowNs: number): void {
    this.now = nowNs;
  }

  /** ip_defrag(): FRAG_DONE with `pkt` now the whole datagram, FRAG_HELD, or FRAG_DROPPED (this.why). */
  defrag(pkt: Packet, user: number, opts?: IpOpts): number {
    this.expire();
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const ihl = (d[nh]! & 0x0f) * 4;
    const saddr = ((d[nh + 12]! << 24) | (d[nh + 13]! << 16) | (d[nh + 14]! << 8) | d[nh + 15]!) >>> 0;
    const key = `${saddr}>${d[nh + 16]}.${d[nh + 17]}.${d[nh + 18]}.${d[nh + 19]}#${(d[nh + 4]! << 8) | d[nh + 5]!}/${d[nh + 9]}@${user}`;
    const q = this.find(key, saddr);
    if (q === undefined) return this.drop('the reassembly memory is over ipfrag_high_thresh (ip_find)');
    q.conntrack = user !== IP_DEFRAG_LOCAL_DELIVER;
    // ip_frag_too_far()
    const end0 = (this.rid.get(saddr) ?? 0) + 1;
    // the inet_peer entries go when unused: here, once there are many, those of sources without a queue
    if (this.rid.size >= MAX_PEERS && !this.rid.has(saddr)) this.prunePeers();
    this.rid.set(saddr, end0);
    if (this.maxDist > 0 && q.frags.length > 0 && end0 - q.rid > this.maxDist) this.reinit(q);
    q.rid = end0;
    const fo = (d[nh + 6]! << 8) | d[nh + 7]!;
    const offset = (fo & IP_OFFSET) << 3;
    let end = offset + m[M_LEN]! - ihl;
    if ((fo & IP_MF) !== 0) end &= ~7;
    const r = this.queue(key, q, offset, end, (fo & IP_MF) !== 0, d.subarray(nh + ihl, nh + ihl + Math.max(0, end - offset)), 1 << (d[nh + 1]! & 3), end - offset + ihl, (fo & IP_DF) !== 0);
    if (r !== FRAG_DONE) return r;
    q.iif = m[M_IIF]!;
    if (offset === 0) {
      q.head = d.slice(0, nh + ihl);
      q.headNh = nh;
      q.opts = opts;
    }
    if (q.flags === (INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN) && q.meat === q.len) return this.reasm(key, q, pkt);
    return FRAG_HELD;
  }

  /** inet_frag_find(): the queue of `key`, made when there is none (undefined: over the memory limit). */
  private find(key: string, src: number | string, timeout = this.timeout): Queue | undefined {
    // inet_frag_find(): nothing at all once the held memory is past the high threshold
    if (this.mem > this.highThresh) return undefined;
    let q = this.queues.get(key);
    if (q === undefined) {
      q = { flags: 0, len: 0, meat: 0, frags: [], runs: [], tailEnd: -1, head: undefined, headNh: 0, nhoffset: 0, nexthdr: 0, fragHdr: NO_BYTES, opts: undefined, maxSize: 0, maxDfSize: 0, ecn: 0, iif: 0, v6: false, conntrack: false, expires: this.now + timeout, rid: this.rid.get(src) ?? 0, mem: 0 };
      this.queues.set(key, q);
      if (q.expires < this.nextExpiry) this.nextExpiry = q.expires;
      // inet_frag_alloc(): the queue's own size is charged
      q.mem = QUEUE_OVERHEAD;
      this.mem += QUEUE_OVERHEAD;
    }
    return q;
  }

  /**
   * ip_frag_queue() / ip6_frag_queue() past their own checks: the end, the
   * insertion into the runs, the accounting. FRAG_DONE here means queued
   * (the caller completes the datagram when it is whole).
   */
  private queue(key: string, q: Queue, offset: number, end: number, mf: boolean, payload: Uint8Array, ecn: number, fragsize: number, df: boolean, keep = false): number {
    // ip_frag_queue / ip6_frag_queue kill the queue here (discard_qp); nf_ct_frag6_queue only drops the fragment (`keep`)
    const bad = (why: string) => (keep ? this.drop(why) : this.kill(key, q, why));
    if (!mf) {
      if (end < q.len || (q.flags & INET_FRAG_LAST_IN && end !== q.len)) return bad('a last fragment that ends before data already queued, or a second different end');
      q.flags |= INET_FRAG_LAST_IN;
      q.len = end;
    } else if (end > q.len) {
      if (q.flags & INET_FRAG_LAST_IN) return bad('a fragment past the datagram\'s end');
      q.len = end;
    }
    if (end === offset) return bad('an empty fragment');
    // inet_frag_queue_insert()
    let run = -1;
    if (q.runs.length === 0) q.runs.push({ start: offset, end });
    else if (q.tailEnd < end) {
      if (offset < q.tailEnd) return this.kill(key, q, 'overlapping fragments');
      const last = q.runs.findIndex((r) => r.end === q.tailEnd);
      if (offset === q.tailEnd && last >= 0) q.runs[last]!.end = end;
      else q.runs.push({ start: offset, end });
    } else {
      for (const r of q.runs) if (end > r.start && offset < r.end) run = offset >= r.start && end <= r.end ? 1 : 2;
      if (run === 1) return this.drop('a duplicate fragment');
      if (run === 2) return this.kill(key, q, 'overlapping fragments');
      q.runs.push({ start: offset, end });
    }
    if (q.tailEnd < end) q.tailEnd = end;
    q.runs.sort((a, b) => a.start - b.start);
    let i = q.frags.length;
    while (i > 0 && q.frags[i - 1]!.offset > offset) i--;
    q.frags.splice(i, 0, { offset, end, data: payload.slice() });
    q.meat += end - offset;
    const cost = fragsize + FRAG_OVERHEAD;
    q.mem += cost;
    this.mem += cost;
    q.ecn |= ecn;
    if (offset === 0) q.flags |= INET_FRAG_FIRST_IN;
    if (fragsize > q.maxSize) q.maxSize = fragsize;
    if (df && fragsize > q.maxDfSize) q.maxDfSize = fragsize;
    return FRAG_DONE;
  }

  /** The ICMPv6 parameter problem ipv6_frag_rcv sends about the fragment dropped last (code, pointer), if any. */
  paramProblem: { code: number; pointer: number } | undefined;

  /**
   * ipv6_frag_rcv() (user 'local', after INPUT) or nf_ct_frag6_gather()
   * (users 'in' and 'out', nf_defrag_ipv6 at PREROUTING and LOCAL_OUT) for
   * a packet that arrived on ifindex `iif`: FRAG_DONE with `pkt` now the
   * whole datagram (the fragment header taken out), FRAG_HELD, FRAG_DROPPED
   * (this.why, this.paramProblem), or FRAG_ASIS: not a fragment to
   * reassemble, the packet goes on as it is.
   */
  defrag6(pkt: Packet, user: 'local' | 'in' | 'out', iif: number): number {
    this.expire();
    this.paramProblem = undefined;
    const local = user === 'local';
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const end = nh + m[M_LEN]!;
    // the extension headers before the fragment header (find_prev_fhdr / the input loop)
    const fh = fragHdr6(d, nh, end, PREV);
    if (fh < 0) return FRAG_ASIS;
    const prev = PREV[0]!;
    const plen = (d[nh + 4]! << 8) | d[nh + 5]!;
    const problem = (code: number, pointer: number, why: string): number => {
      if (local) this.paramProblem = { code, pointer };
      return this.drop(why);
    };
    if (plen === 0) return local ? problem(0, fh - nh, 'a jumbogram with a fragment header') : FRAG_ASIS;
    // find_prev_fhdr(): headers running past the end leave the packet as it is
    if (!local && fh > end) return FRAG_ASIS;
    if (fh + 8 > end) return local ? problem(0, fh - nh, 'a cut fragment header') : this.drop('a cut fragment header');
    const fo = (d[fh + 2]! << 8) | d[fh + 3]!;
    // an atomic fragment: ipv6_frag_rcv passes it as it is (IP6SKB_FRAGMENTED); nf_ct_frag6_gather queues it, whole at once
    if ((fo & 0xfff9) === 0 && local) {
      m[M_FLAGS] = m[M_FLAGS]! | F_FRAGMENTED;
      return FRAG_ASIS;
    }
    const offset = fo & 0xfff8;
    const mf = (fo & 1) !== 0;
    if (offset === 0 && thdrTruncated6(d, d[fh]!, fh + 8, end)) {
      return local ? problem(3, 0, 'a first fragment without its whole upper-layer header (RFC 8200 4.5)') : FRAG_ASIS;
    }
    const fend = offset + (plen - (fh + 8 - (nh + 40)));
    const hex = (a: number) => Array.from(d.subarray(a, a + 16), (b) => b.toString(16).padStart(2, '0')).join('');
    const daddr0 = d[nh + 24]!;
    const scoped = daddr0 === 0xff || (daddr0 === 0xfe && (d[nh + 25]! & 0xc0) === 0x80);
    const key = `${hex(nh + 8)}>${hex(nh + 24)}#${(d[fh + 4]! << 24) | (d[fh + 5]! << 16) | (d[fh + 6]! << 8) | d[fh + 7]!}@${user}%${scoped ? iif : 0}`;
    const q = this.find(key, key, local ? this.timeout6 : this.timeoutCt6);
    if (q === undefined) return this.drop('the reassembly memory is over ip6frag_high_thresh');
    q.iif = iif;
    q.v6 = true;
    q.conntrack = !local;
    if (fend > 65535) {
      if (!local) return this.drop('a fragment past 65535 bytes');
      this.kill(key, q, 'a fragment past 65535 bytes');
      return problem(0, fh + 2 - nh, this.why);
    }
    if (mf && (fend & 7) !== 0) {
      this.kill(key, q, 'a non-final fragment not a multiple of 8 bytes long');
      return local ? problem(0, 4, this.why) : FRAG_ASIS;
    }
    const r = this.queue(key, q, offset, fend, mf, d.subarray(fh + 8, fh + 8 + Math.max(0, fend - offset)), 1 << ((d[nh + 1]! >> 4) & 3), fh + 8 - nh + fend - offset, false, !local);
    if (r !== FRAG_DONE) return !local && this.why === 'a duplicate fragment' ? FRAG_HELD : r;
    if (offset === 0) {
      q.head = d.slice(0, fh);
      q.headNh = nh;
      q.nhoffset = prev;
      q.nexthdr = d[fh]!;
      q.fragHdr = d.slice(fh, fh + 8);
    }
    if (q.flags === (INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN) && q.meat === q.len) return this.reasm6(key, q, pkt);
    return FRAG_HELD;
  }

  /** ip6_frag_reasm() / nf_ct_frag6_reasm(): the unfragmentable part of the first fragment, its next header in place of the fragment header, the payloads. */
  private reasm6(key: string, q: Queue, pkt: Packet): number {
    const head = q.head!;
    const nh = q.headNh;
    const plen = head.length - nh - 40 + q.len;
    if (plen > 65535) return this.kill(key, q, `a datagram of ${plen} payload bytes (over 65535)`);
    const ecn = ECN_TABLE[q.ecn]!;
    if (ecn === 0xff) return this.kill(key, q, 'fragments with ECN codepoints that do not go together');
    if (head.length + q.len > pkt.data.length) return this.kill(key, q, 'a datagram larger than the packet buffer');
    const d = pkt.data;
    d.set(head, 0);
    d[q.nhoffset] = q.nexthdr;
    for (const f of q.frags) d.set(f.data, head.length + f.offset);
    d[nh + 4] = plen >>> 8;
    d[nh + 5] = plen & 0xff;
    d[nh + 1] = d[nh + 1]! | (ecn << 4);
    pkt.len = head.length + q.len;
    pkt.meta[M_NHOFF] = nh;
    decodeNetwork(pkt);
    // IP6SKB_FRAGMENTED; IP6CB(skb)->frag_max_size, the largest fragment (40 + its payload_len); nf_ct_frag6_reasm: ignore_df
    pkt.meta[M_FLAGS] = pkt.meta[M_FLAGS]! | F_FRAGMENTED | (q.conntrack ? F_IGNORE_DF : 0);
    pkt.meta[M_FRAG_MAX_SIZE] = q.maxSize;
    this.remove(key, q);
    return FRAG_DONE;
  }

  /** ip_frag_reasm(): the datagram into `pkt`. */
  private reasm(key: string, q: Queue, pkt: Packet): number {
    const head = q.head!;
    const nh = q.headNh;
    const ihl = head.length - nh;
    const len = ihl + q.len;
    if (len > 65535) return this.kill(key, q, `a datagram of ${len} bytes (over 65535)`);
    const ecn = ECN_TABLE[q.ecn]!;
    if (ecn === 0xff) return this.kill(key, q, 'fragments with ECN codepoints that do not go together');
    if (nh + len > pkt.data.length) return this.kill(key, q, 'a datagram larger than the packet buffer');
    const d = pkt.data;
    d.set(head, 0);
    for (const f of q.frags) d.set(f.data, nh + ihl + f.offset);
    d[nh + 2] = len >>> 8;
    d[nh + 3] = len & 0xff;
    d[nh + 1] = d[nh + 1]! | ecn;
    const df = q.maxDfSize === q.maxSize;
    d[nh + 6] = df ? IP_DF >> 8 : 0;
    d[nh + 7] = 0;
    ipSendCheck(d, nh);
    pkt.len = nh + len;
    pkt.meta[M_NHOFF] = nh;
    decodeNetwork(pkt);
    // IPCB(skb)->frag_max_size; nf_ct_ipv4_gather_frags: ignore_df
    pkt.meta[M_FRAG_MAX_SIZE] = Math.max(q.maxSize, q.maxDfSize);
    if (q.conntrack) pkt.meta[M_FLAGS] = pkt.meta[M_FLAGS]! | F_IGNORE_DF;
    this.lastOpts = q.opts;
    // ipq_kill(): the queue leaves the table (a later fragment of the same key starts a new one)
    this.remove(key, q);
    return FRAG_DONE;
  }

  /** The IPv4 options of the datagram reassembled last: its first fragment's, as compiled on receive (skb_morph keeps the head's IPCB). */
  lastOpts: IpOpts | undefined;

  private drop(why: string): number {
    this.why = why;
    return FRAG_DROPPED;
  }

  /** inet_frag_kill(): the queue and its fragments go; so does this fragment. */
  private kill(key: string, q: Queue, why: string): number {
    this.remove(key, q);
    return this.drop(`${why}: the queue is dropped`);
  }

  private release(q: Queue): void {
    this.mem -= q.mem - QUEUE_OVERHEAD;
    q.mem = QUEUE_OVERHEAD;
    q.frags = [];
  }

  /** The queue leaves the table with everything it held. */
  private remove(key: string, q: Queue): void {
    this.mem -= q.mem;
    q.mem = 0;
    q.frags = [];
    this.queues.delete(key);
  }

  private prunePeers(): void {
    const live = new Set<number | string>();
    for (const k of this.queues.keys()) live.add(Number(k.slice(0, k.indexOf('>'))));
    for (const k of this.rid.keys()) if (!live.has(k)) this.rid.delete(k);
  }

  /** ip_frag_reinit(): the fragments go, the queue starts over with a new timer. */
  private reinit(q: Queue): void {
    this.release(q);
    q.flags = 0;
    q.len = 0;
    q.meat = 0;
    q.runs = [];
    q.tailEnd = -1;
    q.head = undefined;
    q.nhoffset = 0;
    q.nexthdr = 0;
    q.fragHdr = NO_BYTES;
    q.ecn = 0;
    q.expires = this.now + this.timeout;
    if (q.expires < this.nextExpiry) this.nextExpiry = q.expires;
  }

  /** The earliest timer of a queue (a scan before it finds nothing). */
  private nextExpiry = Infinity;

  /** The queues whose timer ran out (ip_expire) go. */
  private expire(): void {
    if (this.now < this.nextExpiry) return;
    let next = Infinity;
    for (const [k, q] of this.queues) {
      if (q.expires > this.now) {
        if (q.expires < next) next = q.expires;
        continue;
      }
      // ip_expire() / ip6frag_expire_frag_queue(): the first fragment, when it came, for the ICMP time exceeded
      const first = q.flags & INET_FRAG_FIRST_IN ? q.frags[0] : undefined;
      if (first !== undefined && first.offset === 0 && q.head !== undefined && this.expired.length < MAX_EXPIRED) {
        const frame = new Uint8Array(q.head.length + q.fragHdr.length + first.data.length);
        frame.set(q.head, 0);
        frame.set(q.fragHdr, q.head.length);
        frame.set(first.data, q.head.length + q.fragHdr.length);
        this.expired.push({ frame, nh: q.headNh, iif: q.iif, v6: q.v6, conntrack: q.conntrack });
      }
      this.remove(k, q);
    }
    this.nextExpiry = next;
  }

  /** The first fragments of the queues whose timer ran out since the last call, for their ICMP time exceeded. */
  takeExpired(): ExpiredHead[] {
    // no queue, nothing to expire (a replay of whole datagrams reads no clock here)
    if (this.queues.size !== 0) this.expire();
    if (this.expired.length === 0) return NONE_EXPIRED;
    const out = this.expired;
    this.expired = [];
    return out;
  }

  private expired: ExpiredHead[] = [];
}

/**
 * ipv6frag_thdr_truncated() for a first fragment (RFC 8200 4.5): whether the
 * headers after the fragment header stop before a whole upper-layer header
 * (TCP 20, UDP 8, ICMPv6 8 bytes, anything else 1).
 */
export function thdrTruncated6(d: Uint8Array, next: number, off: number, end: number): boolean {
  // ipv6_skip_exthdr(): an unreadable extension header or NEXTHDR_NONE → -1 → not truncated.
  for (let n = 0; n < 16 && (next === 0 || next === 43 || next === 60 || next === 51 || next === NEXTHDR_FRAGMENT || next === 59); n++) {
    if (next === 59) return false;
    if (off + 2 > end) return false;
    let len: number;
    if (next === NEXTHDR_FRAGMENT) {
      if (off + 4 > end) return false;
      if ((((d[off + 2]! << 8) | d[off + 3]!) & 0xfff8) !== 0) return false;
      len = 8;
    } else len = next === 51 ? (d[off + 1]! + 2) << 2 : (d[off + 1]! + 1) << 3;
    next = d[off]!;
    off += len;
  }
  const need = next === 6 ? 20 : next === 17 || next === 58 ? 8 : 1;
  return off + need > end;
}
