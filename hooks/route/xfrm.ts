/**
 * The IPsec security policy database (SPD) of a node without IPsec states:
 * what the kernel's xfrm policy checks drop before any transform could run.
 *
 * Mirrors (Linux 6.18):
 *   net/xfrm/xfrm_policy.c  xfrm_policy_match (family, if_id, mark, type, selector),
 *                           xfrm_policy_lookup (sub policies first, then main; the
 *                           lowest priority wins, ties to the policy inserted first),
 *                           __xfrm_policy_check (block: reject; allow: every template
 *                           must be found in the sec_path unless optional;
 *                           xfrm_in_fwd_icmp: a forwarded ICMP error no policy
 *                           selects takes the fwd policy of the flow it quotes),
 *                           xfrm_lookup_with_ifid / xfrm_expand_policies /
 *                           xfrm_tmpl_resolve_one (block: -EPERM; a required template
 *                           without a state: -EAGAIN, and with net.core.xfrm_larval_drop
 *                           -EREMOTE; optional templates without a state: untransformed)
 *   include/net/xfrm.h      __xfrm_check_nopolicy (no policy of the direction: the
 *                           default policy), __xfrm_check_dev_nopolicy (IPSKB_NOPOLICY),
 *                           xfrm_flowi_sport/dport (ICMP type and code, the GRE key's halves),
 *                           xfrm_route_forward
 *
 *   net/xfrm/xfrm_policy.c  __xfrm_decode_session / decode_session4 / decode_session6 over
 *                           net/core/flow_dissector.c __skb_flow_dissect (IPv6: hop-by-hop,
 *                           routing and destination options headers walked, a fragment header
 *                           ends it without ports; at most MAX_FLOW_DISSECT_HDRS headers)
 *   net/netfilter/nf_nat_proto.c nf_nat_ipv4_decode_session / nf_nat_ipv6_decode_session (the
 *                           checks see a NATed packet's addresses as its conntrack tuple has them)
 *
 * A node with states is not modelled here (no transform, no sec_path): its
 * packets could be encapsulated or decapsulated. Nor are socket policies
 * (setsockopt IP_XFRM_POLICY / IPV6_XFRM_POLICY: not in any dump) and
 * security contexts (refused).
 *
 * The policies come from `ip -s xfrm policy show` (each policy's index
 * orders equal priorities as the kernel's insertion order does) or from
 * `ip xfrm policy show` (newest first: the dump walks the list policies are
 * added to at its head); the defaults from `ip xfrm policy getdefault`.
 */
import { NfvmError } from '../../core/errors.js';
import { parseAddr, type IpAddr } from './addr.js';
import { M_END, M_MARK, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';

export const XFRM_POLICY_IN = 0;
export const XFRM_POLICY_OUT = 1;
export const XFRM_POLICY_FWD = 2;
const DIRS: Readonly<Record<string, number>> = { in: XFRM_POLICY_IN, out: XFRM_POLICY_OUT, fwd: XFRM_POLICY_FWD };
export const XFRM_DIR_NAMES = ['in', 'out', 'fwd'];

const IPPROTO_ICMP = 1, IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_GRE = 47, IPPROTO_SCTP = 132, IPPROTO_UDPLITE = 136, IPPROTO_ICMPV6 = 58;
/** The protocol names iproute2 prints for a selector (inet_proto_n2a: /etc/protocols), else the number. */
const PROTOS: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, ipip: 4, tcp: 6, egp: 8, pup: 12, udp: 17, idp: 22, tp: 29, dccp: 33, ipv6: 41, 'ipv6-route': 43, 'ipv6-frag': 44,
  rsvp: 46, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, mtp: 92, encap: 98, pim: 103, comp: 108, ipcomp: 108,
  l2tp: 115, sctp: 132, 'mobility-header': 135, ipv6mh: 135, udplite: 136, mpls: 137, ethernet: 143,
};

/** One template (struct xfrm_tmpl) as far as a node without states needs it. */
export interface XfrmTmpl {
  readonly proto: string;
  readonly mode: string;
  /** level use (tmpl->optional). */
  readonly optional: boolean;
}

/** One policy (struct xfrm_policy). */
export interface XfrmPolicy {
  readonly family: 4 | 6;
  readonly dir: number;
  readonly src: IpAddr;
  readonly srcLen: number;
  readonly dst: IpAddr;
  readonly dstLen: number;
  /** 0: any. */
  readonly proto: number;
  readonly sport: number;
  readonly sportMask: number;
  readonly dport: number;
  readonly dportMask: number;
  /** The selector's device (sel->ifindex), '' for any. */
  readonly dev: string;
  readonly priority: number;
  /** ptype sub (XFRM_POLICY_TYPE_SUB). */
  readonly sub: boolean;
  /** action block (XFRM_POLICY_BLOCK). */
  readonly block: boolean;
  readonly markV: number;
  readonly markM: number;
  readonly ifId: number;
  /** flag icmp (XFRM_POLICY_ICMP). */
  readonly icmp: boolean;
  readonly tmpls: readonly XfrmTmpl[];
  /** Insertion order: a lower one was added first. */
  readonly order: number;
  /** The policy's selector line, for notes. */
  readonly text: string;
}

/** A flow as __xfrm_decode_session() fills it (struct flowi4 / flowi6 for the selector). */
export interface XfrmFlow {
  family: 4 | 6;
  saddr: Uint32Array;
  daddr: Uint32Array;
  proto: number;
  /** xfrm_flowi_sport() / xfrm_flowi_dport(): ports, ICMP type / code, the GRE key's halves, 0 otherwise. */
  sport: number;
  dport: number;
  /** flowi_oif's device name, '' for none. */
  oif: string;
  mark: number;
}

/** The node's SPD and the knobs its checks read. */
export class XfrmPolicies {
  /** The default policy of each direction: true for block (`ip xfrm policy getdefault`). */
  readonly defaultBlock: [boolean, boolean, boolean] = [false, false, false];
  /** net->xfrm.policy_count[dir]. */
  readonly count: [number, number, number] = [0, 0, 0];

  constructor(readonly policies: readonly XfrmPolicy[]) {
    for (const p of policies) this.count[p.dir]!++;
  }

  /** xfrm_policy_lookup_bytype(): the matching policy of one type with the lowest priority (then the first inserted), or undefined. */
  lookupType(fl: XfrmFlow, dir: number, sub: boolean): XfrmPolicy | undefined {
    let best: XfrmPolicy | undefined;
    for (const p of this.policies) {
      if (p.dir !== dir || p.sub !== sub || p.family !== fl.family || p.ifId !== 0 || ((fl.mark & p.markM) >>> 0) !== p.markV) continue;
      if (!selectorMatch(p, fl)) continue;
      if (!best || p.priority < best.priority || (p.priority === best.priority && p.order < best.order)) best = p;
    }
    return best;
  }

  /** xfrm_policy_lookup(): a sub policy first, then a main one. */
  lookup(fl: XfrmFlow, dir: number): XfrmPolicy | undefined {
    return this.lookupType(fl, dir, true) ?? this.lookupType(fl, dir, false);
  }

  /** The policies a lookup hands on: a sub policy that allows brings the main policy (of `mainDir`) after it. */
  private pols(fl: XfrmFlow, dir: number, mainDir: number): XfrmPolicy[] {
    const p = this.lookup(fl, dir);
    if (!p) return [];
    if (p.sub && !p.block) {
      const m = this.lookupType(fl, mainDir, false);
      if (m) return [p, m];
    }
    return [p];
  }

  /**
   * __xfrm_policy_check() for a packet without a sec_path (dir IN or FWD):
   * undefined when it passes, else why it is rejected. `noPolicy`: the
   * input device's disable_policy (IPSKB_NOPOLICY).
   */
  check(fl: XfrmFlow, dir: number, noPolicy: boolean): string | undefined {
    if (this.count[dir] === 0 && !this.defaultBlock[dir]) return undefined;
    if (noPolicy) return undefined;
    // the main policy beside a sub one is looked up as XFRM_POLICY_IN, whatever the direction
    const pols = this.pols(fl, dir, XFRM_POLICY_IN);
    if (pols.length === 0) return this.defaultBlock[dir] ? `no ${XFRM_DIR_NAMES[dir]} policy and the default ${XFRM_DIR_NAMES[dir]} policy blocks` : undefined;
    return this.judge(pols, dir);
  }

  /** The rest of __xfrm_policy_check once its policies are found: a block one rejects; so does a required template (no sec_path). */
  judge(pols: readonly XfrmPolicy[], dir: number): string | undefined {
    const p = pols[0]!;
    if (p.block || pols.some((q) => q.block)) return `${XFRM_DIR_NAMES[dir]} policy "${p.text}" blocks`;
    const required = pols.flatMap((q) => q.tmpls).find((t) => !t.optional);
    if (required) return `${XFRM_DIR_NAMES[dir]} policy "${p.text}" requires ${required.proto} (${required.mode}) and the packet did not come through IPsec`;
    return undefined;
  }

  /**
   * xfrm_lookup() for dir OUT on a route whose device allows transforms:
   * 'pass' (no policy, or one whose templates are all optional: no state
   * needed), 'eperm' (a block policy, or none and the default blocks),
   * 'nostate' (a required template finds no state: -EAGAIN, and -EREMOTE
   * with larval drop). `loopback`: the route's device is a loopback
   * (the default policy does not apply to it). No flow: a route with
   * DST_NOXFRM, only the default policy.
   */
  lookupOut(fl: XfrmFlow | undefined, loopback: boolean): { verdict: 'pass' | 'eperm' | 'nostate'; policy: XfrmPolicy | undefined } {
    if (fl !== undefined && this.count[XFRM_POLICY_OUT] !== 0) {
      const pols = this.pols(fl, XFRM_POLICY_OUT, XFRM_POLICY_OUT);
      if (pols.length) {
        const p = pols[0]!;
        if (pols.some((q) => q.block)) return { verdict: 'eperm', policy: p };
        if (pols.some((q) => q.tmpls.some((t) => !t.optional))) return { verdict: 'nostate', policy: p };
        return { verdict: 'pass', policy: p };
      }
    }
    return { verdict: !loopback && this.defaultBlock[XFRM_POLICY_OUT] ? 'eperm' : 'pass', policy: undefined };
  }
}

/**
 * One node model's checks over the node's policies for one family: the
 * flow it fills and the NAT core's view (nf_nat_decode_session: the
 * addresses and ports of the conntrack's tuple in the packet's direction,
 * where NAT changed them), which the model sets when it tracks connections.
 */
export class XfrmCheck {
  natDecode: ((pkt: Packet, fl: XfrmFlow) => void) | undefined = undefined;
  private readonly fl: XfrmFlow;
  private readonly fl1: XfrmFlow;

  constructor(readonly db: XfrmPolicies, readonly family: 4 | 6 = 4) {
    this.fl = newXfrmFlow(family);
    this.fl1 = newXfrmFlow(family);
  }

  /** __xfrm_decode_session() of the packet (decode_session4 / decode_session6), flowi_oif `oif`. */
  decode(pkt: Packet, oif: string, reverse: boolean, fl: XfrmFlow): XfrmFlow {
    return this.family === 4 ? xfrmFlow4(pkt, oif, reverse, fl) : xfrmFlow6(pkt, oif, reverse, fl);
  }

  /**
   * __xfrm_policy_check2() for a packet of the family (dir IN or FWD;
   * `oif`: skb_dst's device; `noPolicy`: IPSKB_NOPOLICY for IPv4, the
   * route's DST_NOPOLICY for IPv6). A forwarded ICMP error no policy
   * selects is checked against the fwd policy of the packet it quotes,
   * reversed (xfrm_in_fwd_icmp).
   */
  checkPacket(pkt: Packet, dir: number, oif: string, noPolicy: boolean): string | undefined {
    const db = this.db;
    if ((db.count[dir] === 0 && !db.defaultBlock[dir]) || noPolicy) return undefined;
    const fl = this.decode(pkt, oif, false, this.fl);
    this.natDecode?.(pkt, fl);
    if (dir === XFRM_POLICY_FWD && icmpErrPacket(fl) && db.lookup(fl, dir) === undefined) {
      const d = pkt.data;
      const nh = pkt.meta[M_NHOFF]!;
      const end = pkt.meta[M_END]!;
      // xfrm_icmp_flow_decode: past a fixed IP and ICMP header, the quoted header reversed, the outer flow's oif and mark, the NAT view
      const inner = this.family === 4 ? nh + (d[nh]! & 0x0f) * 4 + 8 : nh + 48;
      const ok = this.family === 4 ? inner + 20 <= end && d[inner]! >> 4 === 4 : inner + 40 <= end;
      if (ok) {
        const fl1 = this.family === 4 ? xfrmFlow4At(d, inner, end, fl.mark, oif, true, this.fl1) : xfrmFlow6At(d, inner, end, fl.mark, oif, true, this.fl1);
        this.natDecode?.(pkt, fl1);
        const p = db.lookup(fl1, XFRM_POLICY_FWD);
        if (p !== undefined) return db.judge(p.sub && !p.block ? [p, ...optional(db.lookupType(fl, XFRM_POLICY_IN, false))] : [p], dir);
      }
    }
    return db.check(fl, dir, false);
  }

  /** xfrm_decode_session() (no NAT view) and the OUT lookup (xfrm4_route_forward / xfrm6_route_forward). */
  lookupOutPacket(pkt: Packet, oif: string, loopback: boolean): { verdict: 'pass' | 'eperm' | 'nostate'; policy: XfrmPolicy | undefined } {
    return this.db.lookupOut(this.decode(pkt, oif, false, this.fl), loopback);
  }
}

/** icmp_err_packet(): ICMP destination unreachable or time exceeded; ICMPv6 destination unreachable, packet too big or time exceeded. */
function icmpErrPacket(fl: XfrmFlow): boolean {
  if (fl.family === 4) return fl.proto === IPPROTO_ICMP && (fl.sport === 3 || fl.sport === 11);
  return fl.proto === IPPROTO_ICMPV6 && fl.sport >= 1 && fl.sport <= 3;
}

function optional<T>(x: T | undefined): T[] {
  return x === undefined ? [] : [x];
}

/** addr4_match / addr_match: the first `len` bits of a and b agree. */
function prefixMatch(a: Uint32Array, b: Uint32Array, len: number): boolean {
  let i = 0;
  for (; len >= 32; len -= 32, i++) if (a[i] !== b[i]) return false;
  if (len === 0) return true;
  const mask = (-1 << (32 - len)) >>> 0;
  return ((a[i]! ^ b[i]!) & mask) === 0;
}

/** __xfrm4_selector_match / __xfrm6_selector_match. */
function selectorMatch(p: XfrmPolicy, fl: XfrmFlow): boolean {
  return prefixMatch(fl.daddr, p.dst.w, p.dstLen) && prefixMatch(fl.saddr, p.src.w, p.srcLen) &&
    ((fl.dport ^ p.dport) & p.dportMask) === 0 && ((fl.sport ^ p.sport) & p.sportMask) === 0 &&
    (p.proto === 0 || fl.proto === p.proto) && (p.dev === '' || fl.oif === p.dev);
}

/**
 * xfrm_flowi_sport() / xfrm_flowi_dport() into the flow: the ports of TCP,
 * UDP, UDP-Lite and SCTP, the ICMP or ICMPv6 type and code, the GRE key's
 * halves; 0 otherwise (the Mobility Header's type too: the flow dissector
 * does not read it). `reverse` swaps ports, not ICMP's type and code nor the
 * GRE key (decode_session4/6 set those after the swap).
 */
function setFlowPorts(fl: XfrmFlow, proto: number, a: number, b: number, reverse: boolean): void {
  switch (proto) {
    case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_UDPLITE: case IPPROTO_SCTP:
      fl.sport = reverse ? b : a;
      fl.dport = reverse ? a : b;
      return;
    case IPPROTO_ICMP: case IPPROTO_ICMPV6: case IPPROTO_GRE:
      fl.sport = a;
      fl.dport = b;
      return;
    default:
      fl.sport = 0;
      fl.dport = 0;
  }
}

/**
 * The transport keys the flow dissector takes at `th` into the flow
 * (__skb_flow_dissect_ports, __skb_flow_dissect_icmp, __skb_flow_dissect_gre):
 * ports, the ICMP type and code (`icmp`: the ICMP protocol of the family),
 * the GRE key of a version 0 header with the key bit (after the checksum
 * when there is one); a header cut short gives 0.
 */
function setL4Keys(fl: XfrmFlow, d: Uint8Array, th: number, end: number, proto: number, icmp: number, reverse: boolean): void {
  let a = 0;
  let b = 0;
  if (proto === icmp) {
    if (th + 2 <= end) { a = d[th]!; b = d[th + 1]!; }
  } else if (proto === IPPROTO_GRE) {
    const flags = th + 4 <= end ? (d[th]! << 8) | d[th + 1]! : 0;
    const at = th + 4 + (flags & 0x8000 ? 4 : 0);
    if ((flags & 0x7) === 0 && flags & 0x2000 && at + 4 <= end) { a = (d[at]! << 8) | d[at + 1]!; b = (d[at + 2]! << 8) | d[at + 3]!; }
  } else if (proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6 && th + 4 <= end) {
    a = (d[th]! << 8) | d[th + 1]!;
    b = (d[th + 2]! << 8) | d[th + 3]!;
  }
  setFlowPorts(fl, proto, a, b, reverse);
}

/** A flow to fill (one per caller: no allocation per packet), with room for the family's addresses. */
export function newXfrmFlow(family: 4 | 6 = 4): XfrmFlow {
  const n = family === 4 ? 1 : 4;
  return { family, saddr: new Uint32Array(n), daddr: new Uint32Array(n), proto: 0, sport: 0, dport: 0, oif: '', mark: 0 };
}

/**
 * __xfrm_decode_session() of an IPv4 packet (decode_session4 over the flow
 * dissector's keys, stopping at a fragment): addresses, protocol, ports (or
 * ICMP type and code, or the GRE key), skb->mark; `reverse` swaps the
 * addresses and ports (not ICMP's type and code, not the GRE key).
 */
export function xfrmFlow4(pkt: Packet, oif: string, reverse: boolean, fl: XfrmFlow): XfrmFlow {
  const d = pkt.data;
  const nh = pkt.meta[M_NHOFF]!;
  return xfrmFlow4At(d, nh, pkt.meta[M_END]!, pkt.meta[M_MARK]! >>> 0, oif, reverse, fl);
}

/** xfrmFlow4() of the IPv4 header at `nh` of `d` (an ICMP error's quoted packet: its ports may be cut, `end` says where the data ends). */
export function xfrmFlow4At(d: Uint8Array, nh: number, end: number, mark: number, oif: string, reverse: boolean, fl: XfrmFlow): XfrmFlow {
  const src = ((d[nh + 12]! << 24) | (d[nh + 13]! << 16) | (d[nh + 14]! << 8) | d[nh + 15]!) >>> 0;
  const dst = ((d[nh + 16]! << 24) | (d[nh + 17]! << 16) | (d[nh + 18]! << 8) | d[nh + 19]!) >>> 0;
  const proto = d[nh + 9]!;
  const frag = (((d[nh + 6]! << 8) | d[nh + 7]!) & 0x3fff) !== 0;
  fl.family = 4;
  if (fl.saddr.length !== 1) fl.saddr = new Uint32Array(1);
  if (fl.daddr.length !== 1) fl.daddr = new Uint32Array(1);
  fl.saddr[0] = reverse ? dst : src;
  fl.daddr[0] = reverse ? src : dst;
  fl.proto = proto;
  if (frag) setFlowPorts(fl, proto, 0, 0, false);
  else setL4Keys(fl, d, nh + (d[nh]! & 0x0f) * 4, end, proto, IPPROTO_ICMP, reverse);
  fl.oif = oif;
  fl.mark = mark;
  return fl;
}

/** MAX_FLOW_DISSECT_HDRS: the headers the flow dissector walks before it stops. */
const MAX_FLOW_DISSECT_HDRS = 15;
const NEXTHDR_HOP = 0, NEXTHDR_ROUTING = 43, NEXTHDR_FRAGMENT = 44, NEXTHDR_DEST = 60;

/** __xfrm_decode_session() of an IPv6 packet (decode_session6): see xfrmFlow6At. */
export function xfrmFlow6(pkt: Packet, oif: string, reverse: boolean, fl: XfrmFlow): XfrmFlow {
  return xfrmFlow6At(pkt.data, pkt.meta[M_NHOFF]!, pkt.meta[M_END]!, pkt.meta[M_MARK]! >>> 0, oif, reverse, fl);
}

/**
 * decode_session6() of the IPv6 header at `nh` of `d` over the flow
 * dissector's keys: the addresses; the extension headers walked
 * (hop-by-hop, routing, destination options) to the protocol; a fragment
 * header gives the protocol after it and no ports (first fragment or not);
 * a header cut short leaves the protocol where the walk stopped, without
 * ports; after MAX_FLOW_DISSECT_HDRS headers the walk stops with the ports
 * of the protocol reached but no ICMPv6 type or GRE key. `reverse` swaps
 * addresses and ports (not the ICMPv6 type and code, not the GRE key).
 */
export function xfrmFlow6At(d: Uint8Array, nh: number, end: number, mark: number, oif: string, reverse: boolean, fl: XfrmFlow): XfrmFlow {
  fl.family = 6;
  if (fl.saddr.length !== 4) fl.saddr = new Uint32Array(4);
  if (fl.daddr.length !== 4) fl.daddr = new Uint32Array(4);
  const s = reverse ? fl.daddr : fl.saddr;
  const t = reverse ? fl.saddr : fl.daddr;
  for (let i = 0; i < 4; i++) {
    const o = nh + 8 + 4 * i;
    s[i] = ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
    t[i] = ((d[o + 16]! << 24) | (d[o + 17]! << 16) | (d[o + 18]! << 8) | d[o + 19]!) >>> 0;
  }
  let proto = d[nh + 6]!;
  let off = nh + 40;
  let ports = true;
  let capped = false;
  for (let n = 1; ; n++) {
    if (proto === NEXTHDR_HOP || proto === NEXTHDR_ROUTING || proto === NEXTHDR_DEST) {
      if (off + 2 > end) { ports = false; break; }
      proto = d[off]!;
      off += (d[off + 1]! + 1) << 3;
    } else if (proto === NEXTHDR_FRAGMENT) {
      ports = false;
      if (off + 8 <= end) proto = d[off]!;
      break;
    } else break;
    if (n >= MAX_FLOW_DISSECT_HDRS) { capped = true; break; }
  }
  fl.proto = proto;
  if (!ports) setFlowPorts(fl, proto, 0, 0, false);
  else setL4Keys(fl, d, off, end, proto, capped ? -1 : IPPROTO_ICMPV6, reverse);
  if (capped && (proto === IPPROTO_ICMPV6 || proto === IPPROTO_GRE)) setFlowPorts(fl, proto, 0, 0, false);
  fl.oif = oif;
  fl.mark = mark;
  return fl;
}

/** `ip xfrm policy getdefault` ("Default policies:\n in:  accept\n fwd: accept\n out: accept"). */
export function parseXfrmDefaults(text: string, file: string, into: XfrmPolicies): void {
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(in|out|fwd):\s*(accept|block)\s*$/.exec(line);
    if (m) into.defaultBlock[DIRS[m[1]!]!] = m[2] === 'block';
    else if (line.trim() !== '' && !/^Default policies:/.test(line)) throw new NfvmError('syntax', `unexpected line in ip xfrm policy getdefault output: ${line.trim()}`, file, { line: i + 1, col: 1 }, line.trim());
  });
}

interface Building {
  family: 4 | 6; dir: number; src: IpAddr; srcLen: number; dst: IpAddr; dstLen: number; proto: number;
  sport: number; sportMask: number; dport: number; dportMask: number; dev: string; priority: number; sub: boolean; block: boolean;
  markV: number; markM: number; ifId: number; icmp: boolean; tmpls: XfrmTmpl[]; index: number; text: string; line: number;
  socket: boolean;
}

/** `ip [-s] xfrm policy show` output. Socket policies (not in the global lookup) are left out. */
export function parseXfrmPolicies(text: string, file: string): XfrmPolicy[] {
  const out: Building[] = [];
  let cur: Building | undefined;
  let tmpl: { proto: string; mode: string; optional: boolean } | undefined;
  const err = (line: number, msg: string, word?: string): never => {
    throw new NfvmError('syntax', msg, file, { line, col: 1 }, word);
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNo = i + 1;
    if (raw.trim() === '') continue;
    const w = raw.trim().split(/\s+/);
    if (!/^\s/.test(raw)) {
      if (w[0] !== 'src') err(lineNo, `a policy starts with its selector (src ...), not "${w[0]}"`, w[0]);
      cur = selectorLine(w, lineNo, raw.trim(), err);
      out.push(cur);
      tmpl = undefined;
      continue;
    }
    if (!cur) err(lineNo, 'an indented line before the first policy');
    const c = cur!;
    const ind = /^\t\t|^ {16}/.test(raw) ? 2 : 1;
    if (ind === 2 && tmpl) {
      for (let k = 0; k < w.length; k++) {
        if (w[k] === 'proto') tmpl.proto = w[++k] ?? '';
        else if (w[k] === 'mode') tmpl.mode = w[++k] ?? '';
        else if (w[k] === 'level') tmpl.optional = w[++k] === 'use';
      }
      continue;
    }
    if (w[0] === 'dir' || w[0] === 'socket') {
      if (w[0] === 'socket') c.socket = true;
      const d = DIRS[w[1] ?? ''];
      if (d === undefined) err(lineNo, `unknown policy direction "${w[1]}"`, w[1]);
      c.dir = d!;
      for (let k = 2; k < w.length; k++) {
        const v = w[k + 1];
        switch (w[k]) {
          case 'action': c.block = v === 'block'; if (v !== 'block' && v !== 'allow') err(lineNo, `unknown policy action "${v}"`, v); k++; break;
          case 'index': c.index = num(v, lineNo, err); k++; break;
          case 'priority': c.priority = num(v, lineNo, err); k++; break;
          case 'ptype': c.sub = v === 'sub'; if (v !== 'sub' && v !== 'main') err(lineNo, `unknown policy type "${v}"`, v); k++; break;
          case 'share': k++; break;
          case 'flag':
            for (k++; k < w.length && !w[k]!.startsWith('('); k++) if (w[k] === 'icmp') c.icmp = true;
            break;
          default:
            if (w[k]!.startsWith('(')) break;
            err(lineNo, `unknown word "${w[k]}" in a policy's dir line`, w[k]);
        }
      }
    } else if (w[0] === 'mark') {
      const m = /^(0x[0-9a-f]+|\d+)\/(0x[0-9a-f]+|\d+)$/i.exec(w[1] ?? '');
      if (!m) err(lineNo, `bad mark "${w[1]}"`, w[1]);
      c.markV = Number(m![1]) >>> 0;
      c.markM = Number(m![2]) >>> 0;
    } else if (w[0] === 'if_id') {
      c.ifId = num(w[1], lineNo, err);
    } else if (w[0] === 'tmpl') {
      tmpl = { proto: '', mode: '', optional: false };
      c.tmpls.push(tmpl);
    } else if (w[0] === 'security') {
      err(lineNo, 'a policy with a security context (an LSM decides its lookup) is not modelled', 'security');
    }
    // lifetime, limit, expire, current counts (ip -s): nothing the checks read
  }
  // insertion order: by index when ip -s printed it, else the dump's (newest first)
  const withIndex = out.every((b) => b.index >= 0);
  return out.filter((b) => !b.socket).map((b, i) => ({
    family: b.family, dir: b.dir, src: b.src, srcLen: b.srcLen, dst: b.dst, dstLen: b.dstLen, proto: b.proto,
    sport: b.sport, sportMask: b.sportMask, dport: b.dport, dportMask: b.dportMask, dev: b.dev, priority: b.priority, sub: b.sub,
    block: b.block, markV: b.markV, markM: b.markM, ifId: b.ifId, icmp: b.icmp, tmpls: b.tmpls,
    order: withIndex ? b.index >>> 3 : out.length - i, text: b.text,
  }));
}

function num(v: string | undefined, line: number, err: (line: number, msg: string, word?: string) => never): number {
  if (v === undefined || !/^(0x[0-9a-f]+|\d+)$/i.test(v)) return err(line, `expected a number, not "${v ?? ''}"`, v);
  return Number(v) >>> 0;
}

function selectorLine(w: string[], line: number, text: string, err: (line: number, msg: string, word?: string) => never): Building {
  const prefix = (s: string | undefined): [IpAddr, number] => {
    const [a, l] = (s ?? '').split('/');
    const addr = parseAddr(a ?? '');
    if (!addr) return err(line, `bad address "${s ?? ''}"`, s);
    const max = addr.family === 4 ? 32 : 128;
    const len = l === undefined ? max : Number(l);
    if (!/^\d+$/.test(l ?? String(max)) || len > max) return err(line, `bad prefix length in "${s}"`, s);
    return [addr, len];
  };
  const [src, srcLen] = prefix(w[1]);
  if (w[2] !== 'dst') err(line, `expected dst, not "${w[2] ?? ''}"`, w[2]);
  const [dst, dstLen] = prefix(w[3]);
  if (src.family !== dst.family) err(line, 'the selector mixes address families');
  const b: Building = {
    family: src.family, dir: -1, src, srcLen, dst, dstLen, proto: 0, sport: 0, sportMask: 0, dport: 0, dportMask: 0, dev: '',
    priority: 0, sub: false, block: false, markV: 0, markM: 0, ifId: 0, icmp: false, tmpls: [], index: -1, text, line, socket: false,
  };
  for (let k = 4; k < w.length; k++) {
    const v = w[k + 1];
    switch (w[k]) {
      case 'proto': {
        const p = v !== undefined && /^\d+$/.test(v) ? Number(v) : PROTOS[v ?? ''];
        if (p === undefined || p > 255) err(line, `unknown protocol "${v}"`, v);
        b.proto = p!;
        k++;
        break;
      }
      case 'sport': case 'type': b.sport = num(v, line, err); b.sportMask = 0xffff; k++; break;
      case 'dport': case 'code': b.dport = num(v, line, err); b.dportMask = 0xffff; k++; break;
      case 'key': {
        const key = num(v, line, err);
        b.sport = key >>> 16;
        b.dport = key & 0xffff;
        b.sportMask = b.dportMask = 0xffff;
        k++;
        break;
      }
      case 'dev': b.dev = v ?? ''; k++; break;
      case 'uid': k++; break;
      default: err(line, `unknown word "${w[k]}" in a policy selector`, w[k]);
    }
  }
  return b;
}
