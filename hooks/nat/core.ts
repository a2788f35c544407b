/**
 * The NAT core: bindings made once per connection and manip type, applied to
 * every packet of the connection in both directions.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_nat_core.c  hash_by_src, nf_nat_used_tuple(_new, _harder), nf_nat_may_kill,
 *                                nf_seq_has_advanced, nf_nat_inet_in_range, l4proto_in_range,
 *                                nf_in_range, same_src, find_appropriate_src, find_best_ips_proto
 *                                (jhash2), nf_nat_l4proto_unique_tuple, get_unique_tuple,
 *                                nf_nat_setup_info, __nf_nat_alloc_null_binding, nf_nat_packet,
 *                                nf_nat_oif_changed, nf_nat_inet_fn
 *   net/netfilter/xt_nat.c       xt_nat_convert_range (a target's range as struct nf_nat_range2)
 *   include/linux/jhash.h        jhash2
 *
 * Randomness: where the kernel draws get_random_u16() (the first port tried
 * by nf_nat_l4proto_unique_tuple for every SNAT, and for DNAT with
 * --random/--random-fully) and get_random_u32_below() (the confirm chain
 * limit), nfvm draws from the node's one seeded xorshift32 (vm/random.ts,
 * NfConntrackOptions.rng): the same seed, packets and order give the same
 * ports. The kernel's choice is random, so tests compare what it guarantees
 * (in range, unique) rather than the value. find_best_ips_proto is
 * deterministic in the kernel (jhash2 of the addresses) and is reproduced
 * bit for bit.
 */
import { IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_DYING, IPS_FIXED_TIMEOUT, IPS_HW_OFFLOAD, IPS_NAT_MASK, IPS_OFFLOAD, IPS_SEQ_ADJUST, IPS_SRC_NAT, IPS_SRC_NAT_DONE, IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY, IP_CT_IS_REPLY, IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY, NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_POST_ROUTING } from '../../core/netfilter.js';
import { M_CT_ID, M_CT_STATUS, M_END, M_NFPROTO, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { forceU32 as raw, jhash2 } from '../../vm/jhash.js';
import { reciprocalScale } from '../../vm/expr/numgen.js';
import { ctinfoOf, l4protoAllowClash, NF_CT_DEFAULT_ZONE_DIR, type NfConntrack } from '../conntrack/core.js';
import { tcpSeenEnd, tcpState } from '../conntrack/proto_tcp.js';
import { TCP_CONNTRACK_SYN_SENT, TCP_CONNTRACK_TIME_WAIT } from '../conntrack/sysctl.js';
import {
  IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, T_DST, T_PORTS, T_PROTO,
  T_SRC, TUPLE_WORDS, nfCtInvertTuple, tupleEqual,
} from '../conntrack/tuple.js';
import { NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, hook2manip, nfNatManipPkt } from './proto.js';

export { NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, hook2manip };

// include/uapi/linux/netfilter/nf_nat.h
export const NF_NAT_RANGE_MAP_IPS = 1 << 0;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1;
export const NF_NAT_RANGE_PROTO_RANDOM = 1 << 2;
export const NF_NAT_RANGE_PERSISTENT = 1 << 3;
export const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 4;
export const NF_NAT_RANGE_PROTO_OFFSET = 1 << 5;
export const NF_NAT_RANGE_NETMAP = 1 << 6;
export const NF_NAT_RANGE_PROTO_RANDOM_ALL = NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY;

const NF_NAT_MAX_ATTEMPTS = 128;
const NF_NAT_HARDER_THRESH = NF_NAT_MAX_ATTEMPTS / 4;

/** struct nf_nat_range2 with addresses as host-order words (IPv4 in word 0) and the proto parts as numbers. */
export class NfNatRange2 {
  flags = 0;
  readonly minAddr = new Int32Array(4);
  readonly maxAddr = new Int32Array(4);
  /** min_proto / max_proto / base_proto: a port, or an ICMP id. */
  minProto = 0;
  maxProto = 0;
  baseProto = 0;
}

/** A range as the iptables targets carry it (compiler NatRangeData / NetmapData): addresses as 4 or 16 bytes. */
export interface NatRangeSource {
  readonly flags: number;
  readonly minAddr: Uint8Array;
  readonly maxAddr: Uint8Array;
  readonly minPort?: number;
  readonly maxPort?: number;
  readonly basePort?: number;
}

function bytesToWords(b: Uint8Array, at: number, len: number, w: Int32Array): void {
  w.fill(0);
  for (let i = 0; i + 3 < len && i < 16; i += 4) w[i >> 2] = (b[at + i]! << 24) | (b[at + i + 1]! << 16) | (b[at + i + 2]! << 8) | b[at + i + 3]!;
}

/** The target's data as struct nf_nat_range2 (xt_nat_convert_range for the IPv4 layout: no base). Made once per rule. */
export function nfNatRangeFrom(src: NatRangeSource): NfNatRange2 {
  const r = new NfNatRange2();
  nfNatRangeSet(r, src.flags, src.minAddr, 0, src.maxAddr, 0, src.minAddr.length, src.minPort ?? 0, src.maxPort ?? 0, src.basePort ?? 0);
  return r;
}

/** Fills `r` from a range as the engines hand it over (vm/ct-env.ts NfCtEnv.natTarget): `alen` address bytes at min[minAt] and max[maxAt]. */
export function nfNatRangeSet(r: NfNatRange2, flags: number, min: Uint8Array, minAt: number, max: Uint8Array, maxAt: number, alen: number,
  minProto: number, maxProto: number, baseProto: number): void {
  r.flags = flags;
  bytesToWords(min, minAt, alen, r.minAddr);
  bytesToWords(max, maxAt, alen, r.maxAddr);
  r.minProto = minProto;
  r.maxProto = maxProto;
  r.baseProto = baseProto;
}

export { jhash2 };

export { reciprocalScale };

/** Why the NAT core itself (not a rule's target) dropped a packet: NfNat.dropped, for the fate's words. */
export const enum NatDrop {
  NONE,
  /** nf_nat_setup_info() on a conntrack whose binding for that manip type is already made. */
  BOUND,
  /** nf_nat_oif_changed(): a MASQUERADEd connection leaving by another interface than the one it was bound on. */
  OIF,
  /** nf_nat_icmp_reply_translation(): an ICMP error too short, with a bad checksum, or whose quoted packet cannot be rewritten. */
  ICMP,
  /** nf_nat_icmp_reply_translation(): a redirect about a NATed (or not yet fully bound) connection. */
  ICMP_REDIRECT,
  /** nf_nat_manip_pkt(): a header it cannot rewrite (truncated). */
  MANIP,
}

/** NatDrop's words. */
export const NAT_DROP_WHY: Readonly<Record<NatDrop, string>> = {
  [NatDrop.NONE]: 'for a reason nfvm does not name',
  [NatDrop.BOUND]: 'its binding for that direction was already made',
  [NatDrop.OIF]: 'a MASQUERADEd connection leaving by another interface than the one it was bound on',
  [NatDrop.ICMP]: 'an ICMP error too short, with a bad checksum, or whose quoted packet it cannot rewrite',
  [NatDrop.ICMP_REDIRECT]: 'an ICMP redirect about a connection NATed or not yet bound both ways, which nf_nat drops lest the hosts talk past its translation',
  [NatDrop.MANIP]: 'a header it cannot rewrite',
};

// Scratch tuple slots in NfNat.t.
const CURR = 0, NEW = TUPLE_WORDS, TMP = 2 * TUPLE_WORDS, TMP2 = 3 * TUPLE_WORDS;

export class NfNat {
  readonly ct: NfConntrack;
  /** Scratch tuples (no allocation per connection). */
  readonly t = new Int32Array(4 * TUPLE_WORDS);
  private readonly hashKey = new Int32Array(8);
  /** Set by nfNatFn: the packet's destination (PRE_ROUTING) changed, or a LOCAL_OUT packet needs ip_route_me_harder. */
  rerouteNeeded = false;
  /** Why the NAT core dropped the packet, set where it drops (NONE at the start of each nfNatFn): read when its hook returned NF_DROP. */
  dropped = NatDrop.NONE;

  constructor(ct: NfConntrack) {
    this.ct = ct;
  }

  /** get_random_u16() from the seeded generator. */
  private randomU16(): number {
    return this.ct.rng.draw() & 0xffff;
  }

  /** nf_nat_initialized(): the manip type's binding is set up. */
  nfNatInitialized(e: number, maniptype: number): boolean {
    return (this.ct.status[e]! & (maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT_DONE : IPS_DST_NAT_DONE)) !== 0;
  }

  /** hash_by_src(): the original source (address, port/id, l3num), protonum and the zone when it holds both ways. */
  private hashBySrc(e: number, t: Int32Array, o: number): number {
    const k = this.hashKey;
    for (let i = 0; i < 4; i++) k[i] = t[o + T_SRC + i]!;
    k[4] = t[o + T_PORTS]! >>> 16;
    k[5] = t[o + T_PROTO]!;
    k[6] = this.ct.zoneDir[e] === NF_CT_DEFAULT_ZONE_DIR ? this.ct.zoneId[e]! : 0;
    k[7] = 0;
    return this.ct.bucketOf(jhash2(k, 8, this.ct.seed));
  }

  /** nf_nat_used_tuple(): the reply of tuple t[o..] is taken by another conntrack. */
  private usedTuple(t: Int32Array, o: number, e: number): boolean {
    nfCtInvertTuple(t, o, this.t, TMP2);
    return this.ct.nfConntrackTupleTaken(this.t, TMP2, e);
  }

  /** nf_nat_used_tuple_new(): as usedTuple, but a (rare) reverse clash of two un-NATed conntracks is left to clash resolution. */
  private usedTupleNew(t: Int32Array, o: number, e: number): boolean {
    const ct = this.ct;
    if (!this.usedTuple(t, o, e)) return false;
    if (!l4protoAllowClash(t[o + T_PROTO]! & 0xff)) return true;
    const usesNat = IPS_NAT_MASK | IPS_SEQ_ADJUST;
    if (ct.status[e]! & usesNat) return true;
    let node = ct.findGet(t, o, ct.zoneId[e]!, ct.zoneDir[e]!);
    if (node < 0) {
      nfCtInvertTuple(t, o, this.t, TMP2);
      node = ct.findGet(this.t, TMP2, ct.zoneId[e]!, ct.zoneDir[e]!);
      if (node < 0) return false; // the clashing entry went away
    }
    if ((node & 1) !== IP_CT_DIR_REPLY) return true;
    const other = node >> 1;
    if (ct.status[other]! & usesNat) return true;
    const tu = ct.tuples;
    return !(tupleEqual(tu, 2 * other * TUPLE_WORDS, tu, (2 * e + 1) * TUPLE_WORDS) && tupleEqual(tu, (2 * other + 1) * TUPLE_WORDS, tu, 2 * e * TUPLE_WORDS));
  }

  /**
   * nf_nat_used_tuple_harder(): in the last NF_NAT_HARDER_THRESH attempts
   * for a TCP SYN, a colliding SNATed conntrack in TIME_WAIT whose sequence
   * numbers the new one has passed is evicted.
   */
  private usedTupleHarder(t: Int32Array, o: number, e: number, attemptsLeft: number): boolean {
    const ct = this.ct;
    nfCtInvertTuple(t, o, this.t, TMP2);
    if (attemptsLeft > NF_NAT_HARDER_THRESH || (t[o + T_PROTO]! & 0xff) !== IPPROTO_TCP || tcpState(ct, e) !== TCP_CONNTRACK_SYN_SENT) {
      return ct.nfConntrackTupleTaken(this.t, TMP2, e);
    }
    const node = ct.findGet(this.t, TMP2, ct.zoneId[e]!, ct.zoneDir[e]!);
    if (node < 0) return false;
    const other = node >> 1;
    if ((node & 1) === IP_CT_DIR_ORIGINAL || other === e) return true;
    const flags = ct.status[other]!;
    // nf_nat_may_kill(): TIME_WAIT or later, not fixed or dying, SNATed.
    if (tcpState(ct, other) < TCP_CONNTRACK_TIME_WAIT || flags & (IPS_FIXED_TIMEOUT | IPS_DYING) || !(flags & IPS_SRC_NAT)) return true;
    // nf_seq_has_advanced()
    if (((tcpSeenEnd(ct, e, 0) - tcpSeenEnd(ct, other, 0)) | 0) <= 0) return true;
    if (ct.nfCtDelete(other)) return (flags & (IPS_OFFLOAD | IPS_HW_OFFLOAD)) !== 0;
    return true;
  }

  /** nf_in_range(): source address in the range (MAP_IPS) and source port/id in the proto range (PROTO_SPECIFIED). */
  private nfInRange(t: Int32Array, o: number, r: NfNatRange2): boolean {
    if (r.flags & NF_NAT_RANGE_MAP_IPS && !inetInRange(t, o + T_SRC, r)) return false;
    if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) return true;
    return l4protoInRange(t, o, NF_NAT_MANIP_SRC, r.minProto, r.maxProto);
  }

  /** find_appropriate_src(): an existing SNAT of the same source whose mapping fits the range; the result in t[NEW]. */
  private findAppropriateSrc(e: number, orig: number, r: NfNatRange2): boolean {
    const ct = this.ct;
    const t = this.t;
    const tu = ct.tuples;
    const proto = t[orig + T_PROTO]!;
    const sport = t[orig + T_PORTS]! >>> 16;
    for (let c = ct.natHead[this.hashBySrc(e, t, orig)]!; c >= 0; c = ct.natNextOf(c)) {
      const co = 2 * c * TUPLE_WORDS;
      // same_src() and the zone in the original direction
      if ((tu[co + T_PROTO]! & 0xff) !== (proto & 0xff) || tu[co + T_PORTS]! >>> 16 !== sport) continue;
      if (tu[co] !== t[orig] || tu[co + 1] !== t[orig + 1] || tu[co + 2] !== t[orig + 2] || tu[co + 3] !== t[orig + 3]) continue;
      if (ct.ctZoneId(c, IP_CT_DIR_ORIGINAL) !== ct.ctZoneId(e, IP_CT_DIR_ORIGINAL)) continue;
      // Copy the source part from that conntrack's reply tuple.
      nfCtInvertTuple(tu, (2 * c + 1) * TUPLE_WORDS, t, NEW);
      for (let i = 0; i < 4; i++) t[NEW + T_DST + i] = t[orig + T_DST + i]!;
      t[NEW + T_PORTS] = (t[NEW + T_PORTS]! & 0xffff0000) | (t[orig + T_PORTS]! & 0xffff);
      t[NEW + T_PROTO] = (t[NEW + T_PROTO]! & 0xff00) | (proto & 0xff);
      if (this.nfInRange(t, NEW, r)) return true;
    }
    return false;
  }

  /** find_best_ips_proto(): the address in the range chosen by jhash2 of the source (and destination unless --persistent). */
  private findBestIpsProto(e: number, o: number, r: NfNatRange2, maniptype: number): void {
    if (!(r.flags & NF_NAT_RANGE_MAP_IPS)) return;
    const t = this.t;
    const at = o + (maniptype === NF_NAT_MANIP_SRC ? T_SRC : T_DST);
    let same = true;
    for (let i = 0; i < 4; i++) if (r.minAddr[i] !== r.maxAddr[i]) same = false;
    if (same) {
      for (let i = 0; i < 4; i++) t[at + i] = r.minAddr[i]!;
      return;
    }
    const max = (t[o + T_PROTO]! >>> 8) === NFPROTO_IPV4 ? 0 : 3;
    const k = this.hashKey;
    for (let i = 0; i < 4; i++) k[i] = raw(t[o + T_SRC + i]!);
    const persistent = (r.flags & NF_NAT_RANGE_PERSISTENT) !== 0;
    let j = jhash2(k, 4, persistent ? 0 : (raw(t[o + T_DST + max]!) ^ this.ct.zoneId[e]!) | 0);
    let fullRange = false;
    for (let i = 0; i <= max; i++) {
      let minip: number, dist: number;
      if (!fullRange) {
        minip = r.minAddr[i]! >>> 0;
        dist = ((r.maxAddr[i]! >>> 0) - minip + 1) >>> 0;
      } else {
        minip = 0;
        dist = 0xffffffff;
      }
      t[at + i] = (minip + reciprocalScale(j, dist)) | 0;
      if (t[at + i] !== r.maxAddr[i]) fullRange = true;
      if (!persistent) j = (j ^ raw(t[o + T_DST + i]!)) >>> 0;
    }
  }

  /** nf_nat_l4proto_unique_tuple(): a port (or ICMP id) in the range that makes t[o..] unique, starting at a random offset. */
  private l4protoUniqueTuple(o: number, r: NfNatRange2, maniptype: number, e: number): void {
    const t = this.t;
    const protonum = t[o + T_PROTO]! & 0xff;
    // The 16-bit key: true for the high half of T_PORTS (source port, ICMP id), false for the low half.
    let high: boolean;
    let min: number, rangeSize: number;
    if (protonum === IPPROTO_ICMP || protonum === IPPROTO_ICMPV6) {
      high = true;
      if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
        min = 0;
        rangeSize = 65536;
      } else {
        min = r.minProto;
        rangeSize = r.maxProto - r.minProto + 1;
      }
    } else if (protonum === IPPROTO_GRE) {
      return; // no PPTP master conntrack in the model: GRE tuples are not changed
    } else if (protonum === IPPROTO_UDP || protonum === IPPROTO_UDPLITE || protonum === IPPROTO_TCP || protonum === IPPROTO_SCTP) {
      high = maniptype === NF_NAT_MANIP_SRC;
      if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
        if (maniptype === NF_NAT_MANIP_DST) return; // a destination port is not changed without a range
        const port = high ? t[o + T_PORTS]! >>> 16 : t[o + T_PORTS]! & 0xffff;
        if (port < 1024) {
          // Loose convention: below 512 is credential passing.
          if (port < 512) {
            min = 1;
            rangeSize = 511;
          } else {
            min = 600;
            rangeSize = 1023 - 600 + 1;
          }
        } else {
          min = 1024;
          rangeSize = 65535 - 1024 + 1;
        }
      } else {
        // swap(max, min) when the range is given backwards
        min = Math.min(r.minProto, r.maxProto);
        rangeSize = Math.max(r.minProto, r.maxProto) - min + 1;
      }
    } else return;
    let off: number;
    if (r.flags & NF_NAT_RANGE_PROTO_OFFSET) off = ((high ? t[o + T_PORTS]! >>> 16 : t[o + T_PORTS]! & 0xffff) - r.baseProto) & 0xffff;
    else if (r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL || maniptype !== NF_NAT_MANIP_DST) off = this.randomU16();
    else off = 0;
    let attempts = Math.min(rangeSize, NF_NAT_MAX_ATTEMPTS);
    for (;;) {
      for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
        const v = (min + (off % rangeSize)) & 0xffff;
        t[o + T_PORTS] = high ? (t[o + T_PORTS]! & 0xffff) | (v << 16) : (t[o + T_PORTS]! & 0xffff0000) | v;
        if (!this.usedTupleHarder(t, o, e, attempts - i)) return;
      }
      if (attempts >= rangeSize || attempts < 16) return;
      attempts = attempts >>> 1;
      off = this.randomU16();
    }
  }

  /** get_unique_tuple(): t[NEW] from t[CURR] (the current tuple) mapped into the range, unique if possible. */
  private getUniqueTuple(r: NfNatRange2, e: number, maniptype: number): void {
    const t = this.t;
    // 1) For SNAT: keep the original tuple if it fits and is unique, else reuse the mapping of the same source.
    if (maniptype === NF_NAT_MANIP_SRC && !(r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
      if (this.nfInRange(t, CURR, r)) {
        if (!this.usedTupleNew(t, CURR, e)) {
          t.copyWithin(NEW, CURR, CURR + TUPLE_WORDS);
          return;
        }
      } else if (this.findAppropriateSrc(e, CURR, r)) {
        if (!this.usedTuple(t, NEW, e)) return;
      }
    }
    // 2) The address in the range.
    t.copyWithin(NEW, CURR, CURR + TUPLE_WORDS);
    this.findBestIpsProto(e, NEW, r, maniptype);
    // 3) The port, only if not already in range and unique.
    if (!(r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) {
      if (r.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
        if (!(r.flags & NF_NAT_RANGE_PROTO_OFFSET) && l4protoInRange(t, NEW, maniptype, r.minProto, r.maxProto) &&
          (r.minProto === r.maxProto || !this.usedTuple(t, NEW, e))) return;
      } else if (!this.usedTuple(t, NEW, e)) return;
    }
    this.l4protoUniqueTuple(NEW, r, maniptype, e);
  }

  /**
   * nf_nat_setup_info(): binds the unconfirmed conntrack `e` for the manip
   * type from the range: its reply tuple is changed so replies are
   * recognised, IPS_SRC_NAT/IPS_DST_NAT when something changed, and
   * IPS_*_NAT_DONE. A confirmed conntrack is left alone (NF_ACCEPT).
   */
  nfNatSetupInfo(e: number, r: NfNatRange2, maniptype: number): number {
    const ct = this.ct;
    if (ct.isConfirmed(e)) return NF_ACCEPT;
    if (this.nfNatInitialized(e, maniptype)) {
      this.dropped = NatDrop.BOUND;
      return NF_DROP;
    }
    const t = this.t;
    // What we have looks like the inverse of the reply.
    nfCtInvertTuple(ct.tuples, (2 * e + 1) * TUPLE_WORDS, t, CURR);
    this.getUniqueTuple(r, e, maniptype);
    if (!tupleEqual(t, NEW, t, CURR)) {
      nfCtInvertTuple(t, NEW, t, TMP);
      ct.alterReply(e, t, TMP);
      ct.status[e]! |= maniptype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
    }
    if (maniptype === NF_NAT_MANIP_SRC) ct.natBysourceAdd(e, this.hashBySrc(e, ct.tuples, 2 * e * TUPLE_WORDS));
    ct.status[e]! |= maniptype === NF_NAT_MANIP_DST ? IPS_DST_NAT_DONE : IPS_SRC_NAT_DONE;
    return NF_ACCEPT;
  }

  /**
   * The SNAT/DNAT target (xt_snat_target/xt_dnat_target): nf_nat_setup_info
   * for the packet's conntrack. Keeps the packet's M_CT_STATUS current.
   */
  xtNatTarget(pkt: Packet, r: NfNatRange2, maniptype: number): number {
    const e = pkt.meta[M_CT_ID]!;
    if (e < 0) return NF_ACCEPT;
    const v = this.nfNatSetupInfo(e, r, maniptype);
    pkt.meta[M_CT_STATUS] = this.ct.status[e]!;
    return v;
  }

  /**
   * The range the address-choosing targets (MASQUERADE, REDIRECT, NETMAP)
   * hand nf_nat_setup_info: one address (host-order words, IPv4 in word 0),
   * the rule's flags with MAP_IPS, its proto range. Keeps M_CT_STATUS current.
   */
  setupToAddress(pkt: Packet, e: number, rule: NfNatRange2, addr: ArrayLike<number>, maniptype: number): number {
    const r = addrRange;
    r.flags = rule.flags | NF_NAT_RANGE_MAP_IPS;
    for (let i = 0; i < 4; i++) {
      r.minAddr[i] = (addr[i] ?? 0) | 0;
      r.maxAddr[i] = (addr[i] ?? 0) | 0;
    }
    r.minProto = rule.minProto;
    r.maxProto = rule.maxProto;
    r.baseProto = 0;
    const v = this.nfNatSetupInfo(e, r, maniptype);
    pkt.meta[M_CT_STATUS] = this.ct.status[e]!;
    return v;
  }

  /** __nf_nat_alloc_null_binding(): the identity mapping for the manip type (the port may still move to stay unique). */
  nfNatAllocNullBinding(e: number, hook: number): number {
    const manip = hook2manip(hook);
    const r = nullRange;
    r.flags = NF_NAT_RANGE_MAP_IPS;
    const at = (2 * e + 1) * TUPLE_WORDS + (manip === NF_NAT_MANIP_SRC ? T_DST : T_SRC);
    for (let i = 0; i < 4; i++) {
      r.minAddr[i] = this.ct.tuples[at + i]!;
      r.maxAddr[i] = r.minAddr[i]!;
    }
    return this.nfNatSetupInfo(e, r, manip);
  }

  /** nf_nat_packet(): rewrites the packet when the binding of this hook's manip type (inverted for replies) changed something. */
  nfNatPacket(pkt: Packet, e: number, ctinfo: number, hook: number): number {
    const mtype = hook2manip(hook);
    const dir = ctinfo >= IP_CT_IS_REPLY ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
    let statusbit = mtype === NF_NAT_MANIP_SRC ? IPS_SRC_NAT : IPS_DST_NAT;
    if (dir === IP_CT_DIR_REPLY) statusbit ^= IPS_NAT_MASK;
    if (this.ct.status[e]! & statusbit) return nfNatManipPkt(this, pkt, e, mtype, dir);
    return NF_ACCEPT;
  }

  /**
   * nf_nat_inet_fn(): for the first packet of a connection (NEW, RELATED)
   * whose manip type is not bound yet, runs `lookup` (the nat table's chain
   * for this hook: its SNAT/DNAT/... targets call the setup functions); a
   * verdict other than NF_ACCEPT is returned as is; no binding after it
   * means the null binding. Then applies the binding (nf_nat_packet). A
   * MASQUERADEd connection leaving by another interface than it was bound to
   * is killed and dropped.
   */
  nfNatInetFn(pkt: Packet, hook: number, outIfindex: number, lookup?: (pkt: Packet) => number): number {
    const ct = this.ct;
    const m = pkt.meta;
    const e = m[M_CT_ID]!;
    if (e < 0) return NF_ACCEPT;
    const ctinfo = ctinfoOf(m);
    const maniptype = hook2manip(hook);
    if (ctinfo === IP_CT_NEW || ctinfo === IP_CT_RELATED || ctinfo === IP_CT_RELATED_REPLY) {
      if (!this.nfNatInitialized(e, maniptype)) {
        if (lookup) {
          const ret = lookup(pkt);
          if (ret !== NF_ACCEPT) return ret;
        }
        if (!this.nfNatInitialized(e, maniptype)) {
          const ret = this.nfNatAllocNullBinding(e, hook);
          m[M_CT_STATUS] = ct.status[e]!;
          if (ret !== NF_ACCEPT) return ret;
        }
      } else if (this.oifChanged(e, hook, ctinfo, outIfindex)) return this.oifKill(pkt, e, ctinfo);
    } else if (ctinfo === IP_CT_ESTABLISHED || ctinfo === IP_CT_ESTABLISHED_REPLY) {
      if (this.oifChanged(e, hook, ctinfo, outIfindex)) return this.oifKill(pkt, e, ctinfo);
    }
    m[M_CT_STATUS] = ct.status[e]!;
    return this.nfNatPacket(pkt, e, ctinfo, hook);
  }

  /** nf_nat_oif_changed() */
  private oifChanged(e: number, hook: number, ctinfo: number, outIfindex: number): boolean {
    const mi = this.ct.masqIndex[e]!;
    return mi !== 0 && hook === NF_INET_POST_ROUTING && ctinfo < IP_CT_IS_REPLY && mi !== outIfindex;
  }

  private oifKill(pkt: Packet, e: number, ctinfo: number): number {
    this.ct.nfCtKillAcct(e, ctinfo, pkt.meta[M_END]! - pkt.meta[M_NHOFF]!);
    pkt.meta[M_CT_STATUS] = this.ct.status[e]!;
    this.dropped = NatDrop.OIF;
    return NF_DROP;
  }

  /** The packet's address family (for the proto code). */
  familyOf(pkt: Packet): number {
    return pkt.meta[M_NFPROTO]!;
  }
}

const nullRange = new NfNatRange2();
const addrRange = new NfNatRange2();

/** nf_nat_inet_in_range(): the tuple's source address (words at `at`) between min_addr and max_addr. */
function inetInRange(t: Int32Array, at: number, r: NfNatRange2): boolean {
  for (let i = 0; i < 4; i++) {
    const v = t[at + i]! >>> 0, lo = r.minAddr[i]! >>> 0;
    if (v !== lo) {
      if (v < lo) return false;
      break;
    }
  }
  for (let i = 0; i < 4; i++) {
    const v = t[at + i]! >>> 0, hi = r.maxAddr[i]! >>> 0;
    if (v !== hi) return v < hi;
  }
  return true;
}

/** l4proto_in_range(): the manipulable part (ICMP id, or the source/destination port) between min and max. */
function l4protoInRange(t: Int32Array, o: number, maniptype: number, min: number, max: number): boolean {
  const protonum = t[o + T_PROTO]! & 0xff;
  const ports = t[o + T_PORTS]!;
  switch (protonum) {
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: {
      const id = ports >>> 16;
      return id >= min && id <= max;
    }
    case IPPROTO_GRE:
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
    case IPPROTO_SCTP: {
      const port = maniptype === NF_NAT_MANIP_SRC ? ports >>> 16 : ports & 0xffff;
      return port >= min && port <= max;
    }
    default:
      return true;
  }
}
