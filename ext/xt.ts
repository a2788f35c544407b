/**
 * What a match or target sees: the model of `struct xt_action_param`
 * (include/linux/netfilter/x_tables.h, kernel 6.18) plus the node facts the
 * model keeps outside the packet (local addresses, the seeded generator)
 * and the recorder of target actions.
 *
 * Offsets: `nh` and `end` are absolute frame offsets (the network header
 * and the end of the L3 data, i.e. skb->data and skb->data + skb->len);
 * `thoff` is relative to `nh`, as the kernel's par->thoff is relative to
 * skb->data at these hooks.
 */
import { NEXTHDR_AUTH, NEXTHDR_FRAGMENT, NEXTHDR_NONE, NEXTHDR_ROUTING, ipv6ExtHdr, type Packet } from '../vm/packet.js';
import type { NfCtEnv } from '../vm/ct-env.js';
import { XtState } from './xtstate.js';
import { Xorshift32 } from '../vm/random.js';
import type { EngineOptions } from './types.js';
import { IFNAMSIZ } from '../vm/layout.js';
import type { VmFib } from '../vm/program.js';

/** XT_CONTINUE: a target's "go on with the next rule" (0xFFFFFFFF). */
export const XT_CONTINUE = 0xffffffff;

/** Something a target did besides its verdict, recorded while tracing is on. */
export type TargetAction =
  | { kind: 'LOG'; chain: string; rule: number; level: number; prefix: string; logflags: number }
  | { kind: 'NFLOG'; chain: string; rule: number; group: number; prefix: string }
  | { kind: 'TRACE'; chain: string; rule: number }
  /** The reply REJECT asks for (nf_send_unreach / nf_send_reset); sending it is the node's business. */
  | { kind: 'REJECT'; chain: string; rule: number; with: string }
  /** A target whose effect lies outside the packet and the node model (an LED trigger, an audit record, an idle timer's restart), recorded. */
  | { kind: 'EFFECT'; chain: string; rule: number; target: string; what: string }
  /** A NAT target ran (its binding is the node's NAT core's, through XtEnv.ct); `verdict` is what it returned. */
  | { kind: 'NAT'; chain: string; rule: number; target: 'SNAT' | 'DNAT' | 'MASQUERADE' | 'REDIRECT' | 'NETMAP'; data: unknown; verdict: number };

/** Engine-wide state a match or target may consult. */
export interface XtEnv {
  family: 'ip' | 'ip6';
  rng: Xorshift32;
  localAddrs: readonly Uint8Array[];
  broadcastAddrs: readonly Uint8Array[];
  /** Recording of TargetActions (on with tracing). */
  recording: boolean;
  actions: TargetAction[];
  /** The rule whose REJECT ended the current run (TableEngine.lastReject), recorded with tracing off too. */
  reject: { chain: string; rule: number } | undefined;
  /** The node's conntrack table and NAT core (vm/ct-env.ts), null for an engine without a node. */
  ct: NfCtEnv | null;
  /** The clock and the per-namespace state of the rate and state matches (ext/xtstate.ts). */
  xt: XtState;
  /** The node's FIB (EngineOptions.fib), null for an engine without a node: every lookup fails. */
  fib: XtFib | null;
  /** The node's IPVS connection table (EngineOptions.ipvs), null without IPVS: no packet has a connection. */
  ipvs: XtIpvs | null;
  /** The node's nf_dup_ipv4 / nf_dup_ipv6 (EngineOptions.dup), null for an engine without a node: TEE's clone goes nowhere. */
  dup: XtDup | null;
  /** The node's icmp_send() / icmpv6_send() for a target's error (EngineOptions.icmp), null without a node: nothing is sent. */
  icmp: XtIcmp | null;
  /** The node's sockets (EngineOptions.sockets), null without a node: no packet finds one. */
  sockets: XtSockets | null;
}

/**
 * icmp_send() / icmpv6_send() as a target calls them on the packet it is
 * given (ip6t_NPT's parameter problem): the node sends the error once the
 * table's chain has returned (hooks/xt-icmp.ts), from the packet as the
 * target left it.
 */
export interface XtIcmp {
  icmpSend(pf: number, type: number, code: number, info: number): void;
}

/**
 * nf_dup_ipv4() / nf_dup_ipv6() as TEE reaches them (hooks/dup.ts
 * implements them over the node): a copy of the packet as it stands,
 * routed to the gateway and sent through ip_local_out / ip6_local_out.
 */
export interface XtDup {
  /**
   * Clones `pkt` at hook `hook` (NF_INET_*) for gateway `gw` (4 or 16
   * bytes), its route bound to device `oif` when the node has one of that
   * name ('' none); nothing while a clone is being sent (nf_skb_duplicated).
   * `what` names the rule for the trace.
   */
  dup(pkt: Packet, hook: number, gw: Uint8Array, oif: string, what: string): void;
}

/** An IPVS connection as the ipvs match reads it (struct ip_vs_conn). */
export interface XtIpvsConn {
  /** 4 or 16 bytes. */
  readonly vaddr: Uint8Array;
  readonly vport: number;
  /** cp->flags: the forwarding method in IP_VS_CONN_F_FWD_MASK. */
  readonly flags: number;
  /** cp->control (the persistence template), null when none. */
  readonly control: { readonly vport: number } | null;
}

/** The node's IPVS as the ipvs match reaches it (hooks/ipvs implements it). */
export interface XtIpvs {
  /**
   * pp->conn_out_get() over the packet's headers read inversely
   * (ip_vs_fill_iph_skb(..., inverse=true)): the connection whose client
   * is the packet's source and whose real server is its destination (the
   * request as IPVS sent it) or, from a real server, none. undefined when
   * there is none or the protocol has no IPVS handler.
   */
  connOutGetInverse(pkt: Packet, family: 'ip' | 'ip6'): XtIpvsConn | undefined;
}

/** A socket nf_sk_lookup_slow_v4/v6 found, as xt_socket reads it. */
export interface XtSock {
  /** sk_fullsock(): neither a TIME-WAIT nor a request socket. */
  readonly full: boolean;
  /** Bound to the any address (inet_rcv_saddr 0, sk_v6_rcv_saddr ::). */
  readonly wildcard: boolean;
  /** inet_sk_transparent(): IP_TRANSPARENT. */
  readonly transparent: boolean;
  /** sk_mark. */
  readonly mark: number;
  /** A TIME-WAIT socket. */
  readonly timeWait: boolean;
  /** The socket's number in the node's table (M_SK_INDEX of a packet TPROXY gives it). */
  readonly index: number;
  /** sock_cgroup_ptr(): its cgroup v2 number (vm/cgroup.ts cgroupId; ss's `cgroup:`, the root when ss printed none). */
  readonly cgroup: number;
}

/** The node's sockets as xt_socket reaches them (hooks/xt-socket.ts implements it over the snapshot's ss.txt). */
export interface XtSockets {
  /**
   * nf_socket_get_sock_v4/v6(): the socket a TCP segment (inet_lookup:
   * the established hash, then the listeners) or UDP datagram
   * (udp4_lib_lookup / udp6_lib_lookup) from saddr:sport to daddr:dport,
   * arriving on device `ifindex`, reaches; undefined for none. Addresses
   * as host-order words (1 for IPv4, 4 for IPv6).
   */
  lookup(family: 4 | 6, proto: number, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, ifindex: number): XtSock | undefined;
  /**
   * nf_tproxy_get_sock_v4() / nf_tproxy_get_sock_v6(): with `established`,
   * a TCP connection (inet_lookup_established) or a connected UDP socket
   * bound to an address; otherwise a TCP listener (inet_lookup_listener /
   * inet6_lookup_listener, wildcard ones included) or an unconnected UDP
   * socket. Addresses as host-order words (1 for IPv4, 4 for IPv6).
   */
  tproxyLookup(family: 4 | 6, proto: number, saddr: ArrayLike<number>, sport: number, daddr: ArrayLike<number>, dport: number, ifindex: number, established: boolean): XtSock | undefined;
  /** Socket number `index` (a packet's M_SK_INDEX). */
  byIndex(index: number): XtSock | undefined;
  /** nf_tproxy_laddr4(): the first address of device `ifindex` that is not secondary, 0 for none. */
  primaryAddr4(ifindex: number): number;
  /**
   * nf_tproxy_laddr6(): the first address in device `ifindex`'s list (the
   * order `ip -j addr` dumps it in) that is neither tentative nor
   * deprecated, into `out` (4 host-order words); false for none.
   */
  firstAddr6(ifindex: number, out: Uint32Array): boolean;
}

/** The node's routing as the node-context matches reach it (hooks/ implements it over the snapshot's routes and rules). */
export interface XtFib extends VmFib {
  /**
   * match_lookup_rt6() (net/netfilter/xt_addrtype.c) for the IPv6 address
   * at d[at] and the device of ifindex `ifindex` (0: none): the
   * XT_ADDRTYPE_* bits LOCAL (with a device and LOCAL in `mask`:
   * nf_ipv6_chk_addr on that device; without one: the route's RTF_LOCAL),
   * ANYCAST (ipv6_anycast_destination) and UNREACHABLE (no route, or a
   * reject route).
   */
  matchLookupRt6(d: Uint8Array, at: number, ifindex: number, mask: number): number;
  /**
   * An IPv6 local route wider than a host (`ip -6 route add local
   * 2001:db8::/64 dev lo`): LOCAL without a device is then the route's
   * RTF_LOCAL (matchLookupRt6), not only a listed address.
   */
  readonly localRanges6: boolean;
  /**
   * The reverse-path lookup of rpfilter_lookup_reverse (IPv4: fib_lookup
   * with FIB_LOOKUP_IGNORE_LINKSTATE; IPv6: ip6_route_lookup) of a flow
   * from the lo device: destination the `alen`-byte address at d[dAt],
   * source the one at d[sAt] (sAt -1: none), the mark, the TOS byte
   * (IPv4) and the L4 protocol (IPv6 rules). Returns -1 when the lookup
   * fails, else the route's RTN_* type << 1 | 1 when one of its nexthops
   * uses the device of ifindex `ifindex` (fib_info_nh_uses_dev; IPv6: the
   * route's device).
   */
  rpLookup(d: Uint8Array, alen: number, dAt: number, sAt: number, mark: number, tos: number, proto: number, ifindex: number): number;
  /** The MTU of the device of ifindex `ifindex` (dst_mtu of a route through it: route mtu metrics are not in the model), 0 when unknown. */
  devMtu(ifindex: number): number;
  /**
   * tcpmss_reverse_mtu(): the MTU of the output route (nf_route, no source,
   * no mark) to the `alen`-byte address at d[at]; 0xffffffff when there is
   * no route.
   */
  reverseMtu(d: Uint8Array, alen: number, at: number): number;
}

/** The XtEnv of an engine built with `o` (its own generator and XtState when the node gives none). */
export function newXtEnv(family: 'ip' | 'ip6', o: EngineOptions): XtEnv {
  return {
    family,
    rng: o.random ?? new Xorshift32(o.seed ?? 1),
    localAddrs: o.localAddrs ?? [],
    broadcastAddrs: o.broadcastAddrs ?? [],
    recording: false,
    actions: [],
    reject: undefined,
    ct: o.ct ?? null,
    xt: o.xt ?? new XtState(),
    fib: o.fib ?? null,
    ipvs: o.ipvs ?? null,
    dup: o.dup ?? null,
    icmp: o.icmp ?? null,
    sockets: o.sockets ?? null,
  };
}

export interface XtActionParam {
  pkt: Packet;
  /** pkt.data */
  d: Uint8Array;
  /** pkt.meta */
  meta: Int32Array;
  /** state->hook (NF_INET_*). */
  hook: number;
  nh: number;
  end: number;
  /** par->thoff, relative to nh. */
  thoff: number;
  /** par->fragoff: IPv4 the 13-bit offset field (8-byte units), IPv6 bytes. */
  fragoff: number;
  hotdrop: boolean;
  env: XtEnv;
  /** The rule being evaluated (for recorded actions). */
  chain: string;
  rule: number;
}

export type MatchFn = (par: XtActionParam) => boolean;
/** Returns XT_CONTINUE or a netfilter verdict (unsigned). */
export type TargetFn = (par: XtActionParam) => number;

/**
 * skb_header_pointer(skb, off, len) != NULL: the absolute frame offset of
 * `len` bytes at `off` from the network header, or -1 when they lie past
 * the end of the packet.
 */
export function headerPointer(par: XtActionParam, off: number, len: number): number {
  const at = par.nh + off;
  return off < 0 || at + len > par.end ? -1 : at;
}

export function be16(d: Uint8Array, at: number): number {
  return (d[at]! << 8) | d[at + 1]!;
}

/**
 * The upper-layer header of `len` bytes at par->thoff as the single-header
 * matches read it (esp, ipcomp, sctp, dccp, mh): -1 on a later fragment,
 * or -1 with a hotdrop when it is cut short.
 */
export function l4Header(par: XtActionParam, len: number): number {
  if (par.fragoff !== 0) return -1;
  const h = headerPointer(par, par.thoff, len);
  if (h < 0) par.hotdrop = true;
  return h;
}

/** The byte at absolute offset `at` when it lies within the packet data, else 0 (a read past the end the model cannot know). */
export function byteOr0(par: XtActionParam, at: number): number {
  return at < par.end ? par.d[at]! : 0;
}

/** The big-endian u32 at `at`. */
export function be32(d: Uint8Array, at: number): number {
  return ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
}

/** ipv6_find_hdr() flags: a fragment header was crossed (out) / stop at AH (in). */
export const IP6_FH_F_FRAG = 1 << 0;
export const IP6_FH_F_AUTH = 1 << 1;

/** The walk state of ipv6FindHdrAt: the offset reached, the IP6_FH_F_* flags, the fragment offset. */
export interface Ipv6HdrWalk {
  off: number;
  flags: number;
  fragoff: number;
}

/**
 * ipv6_find_hdr(skb, &offset, -1, &fragoff, &flags)
 * (net/ipv6/exthdrs_core.c) over d[nh .. end): from the IPv6 header at
 * nh + start0 (a non-zero start0 must hold an IPv6 header, else -EBADMSG),
 * walks the extension headers to the upper-layer protocol: AH is skipped by
 * its length unless IP6_FH_F_AUTH is in `w.flags`, crossing a fragment
 * header adds IP6_FH_F_FRAG. Returns the protocol with `w.off` at its
 * header; a non-first fragment returns its next header with `w.fragoff`
 * set and `w.off` unchanged; -1 for -EBADMSG / -ENOENT.
 */
export function ipv6FindHdrAt(d: Uint8Array, nh: number, end: number, start0: number, w: Ipv6HdrWalk): number {
  w.fragoff = 0;
  if (start0 !== 0 && (nh + start0 + 40 > end || d[nh + start0]! >> 4 !== 6)) return -1;
  let start = start0 + 40;
  let nexthdr = d[nh + start0 + 6]!;
  for (;;) {
    if (!ipv6ExtHdr(nexthdr) || nexthdr === NEXTHDR_NONE) break;
    if (nh + start + 2 > end) return -1;
    if (nexthdr === NEXTHDR_ROUTING && nh + start + 4 > end) return -1;
    let hdrlen: number;
    if (nexthdr === NEXTHDR_FRAGMENT) {
      w.flags |= IP6_FH_F_FRAG;
      if (nh + start + 4 > end) return -1;
      const fo = ((d[nh + start + 2]! << 8) | d[nh + start + 3]!) & ~0x7;
      if (fo) {
        const next = d[nh + start]!;
        if (!ipv6ExtHdr(next) || next === NEXTHDR_NONE) {
          w.fragoff = fo;
          return next;
        }
        return -1;
      }
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR_AUTH) {
      if (w.flags & IP6_FH_F_AUTH) break;
      hdrlen = (d[nh + start + 1]! + 2) << 2;
    } else hdrlen = (d[nh + start + 1]! + 1) << 3;
    nexthdr = d[nh + start]!;
    start += hdrlen;
  }
  w.off = start;
  return nexthdr;
}

const findWalk: Ipv6HdrWalk = { off: 0, flags: 0, fragoff: 0 };

/**
 * ipv6_find_hdr(skb, &thoff, -1, &fragoff, NULL): ipv6FindHdrAt from the
 * packet's header, AH skipped (with `stopAtAuth`, IP6_FH_F_AUTH as
 * nf_tables' pktinfo: AH is the protocol). Sets par.thoff (not for a non-first
 * fragment, whose byte offset goes to out.fragoff) and returns the
 * protocol, or -1.
 */
export function ipv6FindHdr(par: XtActionParam, out: { fragoff: number }, stopAtAuth = false): number {
  findWalk.flags = stopAtAuth ? IP6_FH_F_AUTH : 0;
  const r = ipv6FindHdrAt(par.d, par.nh, par.end, 0, findWalk);
  out.fragoff = r < 0 ? 0 : findWalk.fragoff;
  if (r >= 0 && findWalk.fragoff === 0) par.thoff = findWalk.off;
  return r;
}

/** Thrown by a factory; the engine adds the file and position. */
export class NotModelled extends Error {
  /** @param message the whole refusal when it is not "semantics not modelled yet" (iptables' own, e.g. "Set foo doesn't exist.") */
  constructor(readonly what: string, message?: string) {
    super(message ?? `${what}: semantics not modelled yet`);
  }
}

/** xtables_parse_interface(): the name as stored and the mask of the bytes compared. */
export function parseInterface(arg: string): { name: Uint8Array; mask: Uint8Array } {
  const name = new Uint8Array(IFNAMSIZ);
  const mask = new Uint8Array(IFNAMSIZ);
  for (let i = 0; i < arg.length && i < IFNAMSIZ; i++) name[i] = arg.charCodeAt(i) & 0xff;
  if (arg.length === 0) return { name, mask };
  if (arg.endsWith('+')) mask.fill(0xff, 0, arg.length - 1); // the `+` stays in the name, unmasked
  else mask.fill(0xff, 0, Math.min(arg.length + 1, IFNAMSIZ)); // the NUL is compared too
  return { name, mask };
}

/** ifname_compare_aligned() != 0: some masked byte differs. */
export function ifnameDiffers(meta: Uint8Array, word: number, name: Uint8Array, mask: Uint8Array): boolean {
  const at = word * 4;
  for (let i = 0; i < IFNAMSIZ; i++) if ((meta[at + i]! ^ name[i]!) & mask[i]!) return true;
  return false;
}
