/**
 * socket match: libxt_socket.c (revision 3), kernel xt_socket.c: a local
 * socket matches the packet. Kernel `.hooks` = PREROUTING and INPUT.
 * The sockets are the snapshot's (ss.txt, `ss -H -tuane --inet-sockopt`:
 * connections, listeners, their marks and IP_TRANSPARENT); a snapshot
 * without ss.txt has none.
 */
import type { MatchModule } from '../types.js';
import type { MatchFn, XtActionParam, XtSock } from '../xt.js';
import { be16, be32, headerPointer, ipv6FindHdr } from '../xt.js';
import { compatMatchFaces } from '../compat.js';
import { ipv6SkipExthdrFrom } from '../ipv6hdr.js';
import { M_CT_ID, M_IIF, M_MARK, M_SK, M_SK_INDEX, SK_ASSIGNED } from '../../vm/layout.js';
import { CT_T_PORTS, CT_T_SRC, ctinfoOf } from '../../vm/ct-env.js';
import { IPS_SRC_NAT_DONE, IP_CT_DIR_ORIGINAL, IP_CT_ESTABLISHED_REPLY, IP_CT_RELATED_REPLY } from '../../core/netfilter.js';

/** struct xt_socket_mtinfo3 flags. */
interface SocketData {
  /** XT_SOCKET_TRANSPARENT: only transparent (IP_TRANSPARENT) sockets. */
  transparent: boolean;
  /** XT_SOCKET_NOWILDCARD: also sockets bound to the any address. */
  nowildcard: boolean;
  /** XT_SOCKET_RESTORESKMARK: copy the socket mark to the packet. */
  restoreSkmark: boolean;
}

export const socket: MatchModule<SocketData> = {
  kind: 'match',
  name: 'socket',
  options: [
    { name: 'transparent', arg: 0 },
    { name: 'nowildcard', arg: 0 },
    { name: 'restore-skmark', arg: 0 },
  ],
  hooks: (1 << 0) | (1 << 1),
  init: () => ({ transparent: false, nowildcard: false, restoreSkmark: false }),
  parse(d, opt) {
    if (opt === 'transparent') d.transparent = true;
    else if (opt === 'nowildcard') d.nowildcard = true;
    else d.restoreSkmark = true;
  },
  save: (d) => (d.transparent ? ' --transparent' : '') + (d.nowildcard ? ' --nowildcard' : '') + (d.restoreSkmark ? ' --restore-skmark' : ''),
  ...compatMatchFaces(socketMt),
};

// --- reference semantics (xt_socket.c socket_match(), nf_socket_ipv4.c / nf_socket_ipv6.c, kernel 6.18) ---
/** The lookup key the slow lookups build: remote (s) and local (d) addresses and ports. */
const key = { saddr: new Uint32Array(4), daddr: new Uint32Array(4), sport: 0, dport: 0, proto: 0 };
const fragOut = { fragoff: 0 };
const skipOut = { nexthdr: 0 };

/** The key from the packet's bytes: addresses of `n` words at `sAt` and `dAt`, ports at `spAt` and `dpAt`. */
function setKey(d: Uint8Array, proto: number, n: number, sAt: number, dAt: number, spAt: number, dpAt: number): void {
  key.proto = proto;
  for (let i = 0; i < n; i++) {
    key.saddr[i] = be32(d, sAt + 4 * i);
    key.daddr[i] = be32(d, dAt + 4 * i);
  }
  key.sport = be16(d, spAt);
  key.dport = be16(d, dpAt);
}

/**
 * nf_sk_lookup_slow_v4(): TCP and UDP by their headers (at ip_hdrlen, as
 * the kernel reads them, fragment or not); an ICMP error by the packet it
 * quotes (extract_icmp4_fields(): the quoted packet was ours, its source
 * is the local side); the reply of an SNATed connection with the
 * original source (the socket's own address and port).
 */
function lookupV4(par: XtActionParam): XtSock | undefined {
  const d = par.d;
  const nh = par.nh;
  const ihl = (d[nh]! & 0x0f) * 4;
  const proto = d[nh + 9]!;
  if (proto === 17 || proto === 6) {
    if (headerPointer(par, ihl, proto === 17 ? 8 : 20) < 0) return undefined;
    setKey(d, proto, 1, nh + 12, nh + 16, nh + ihl, nh + ihl + 2);
  } else if (proto === 1) {
    const ic = headerPointer(par, ihl, 8);
    if (ic < 0) return undefined;
    const type = d[ic]!;
    // icmp_is_err()
    if (type !== 3 && type !== 4 && type !== 5 && type !== 11 && type !== 12) return undefined;
    const in4 = headerPointer(par, ihl + 8, 20);
    if (in4 < 0) return undefined;
    const ip = d[in4 + 9]!;
    if (ip !== 6 && ip !== 17) return undefined;
    const ports = headerPointer(par, ihl + 8 + (d[in4]! & 0x0f) * 4, 4);
    if (ports < 0) return undefined;
    setKey(d, ip, 1, in4 + 16, in4 + 12, ports + 2, ports);
  } else return undefined;
  const m = par.meta;
  const id = m[M_CT_ID]!;
  const ct = par.env.ct;
  if (id >= 0 && ct) {
    const ctinfo = ctinfoOf(m);
    if (((proto !== 1 && ctinfo === IP_CT_ESTABLISHED_REPLY) || (proto === 1 && ctinfo === IP_CT_RELATED_REPLY)) && (ct.status(id) & IPS_SRC_NAT_DONE) !== 0) {
      key.daddr[0] = ct.tupleWord(id, IP_CT_DIR_ORIGINAL, CT_T_SRC) >>> 0;
      key.dport = ct.tupleWord(id, IP_CT_DIR_ORIGINAL, CT_T_PORTS) >>> 16;
    }
  }
  return par.env.sockets?.lookup(4, key.proto, key.saddr.subarray(0, 1), key.sport, key.daddr.subarray(0, 1), key.dport, m[M_IIF]!);
}

/**
 * nf_sk_lookup_slow_v6(): the upper layer by ipv6_find_hdr(); TCP and UDP
 * by their headers; an ICMPv6 error (not an informational message) by the
 * packet it quotes, past its extension headers (extract_icmp6_fields()).
 */
function lookupV6(par: XtActionParam): XtSock | undefined {
  const d = par.d;
  const nh = par.nh;
  const thoff0 = par.thoff;
  const tproto = ipv6FindHdr(par, fragOut);
  // ipv6_find_hdr(skb, &thoff, -1, NULL, NULL) leaves thoff 0 for a later fragment: the kernel reads from the IPv6 header
  const thoff = fragOut.fragoff !== 0 ? 0 : par.thoff;
  par.thoff = thoff0;
  if (tproto < 0) return undefined;
  if (tproto === 17 || tproto === 6) {
    if (headerPointer(par, thoff, tproto === 17 ? 8 : 20) < 0) return undefined;
    setKey(d, tproto, 4, nh + 8, nh + 24, nh + thoff, nh + thoff + 2);
  } else if (tproto === 58) {
    const ic = headerPointer(par, thoff, 8);
    if (ic < 0 || (d[ic]! & 0x80) !== 0) return undefined;
    const in6 = headerPointer(par, thoff + 8, 40);
    if (in6 < 0) return undefined;
    skipOut.nexthdr = d[in6 + 6]!;
    const inner = ipv6SkipExthdrFrom(par, thoff + 8 + 40, skipOut);
    if (inner < 0 || (skipOut.nexthdr !== 6 && skipOut.nexthdr !== 17)) return undefined;
    const ports = headerPointer(par, inner, 4);
    if (ports < 0) return undefined;
    setKey(d, skipOut.nexthdr, 4, in6 + 24, in6 + 8, ports + 2, ports);
  } else return undefined;
  return par.env.sockets?.lookup(6, key.proto, key.saddr, key.sport, key.daddr, key.dport, par.meta[M_IIF]!);
}

/**
 * socket_match() / socket_mt6_v1_v2_v3(): the packet's socket (a packet
 * from the wire has none before the lookup; early demux is not modelled);
 * one bound to the any address does not count unless --nowildcard, a
 * non-transparent one not with --transparent; --restore-skmark copies a
 * counted full socket's mark to the packet.
 */
function socketMt(info: SocketData): MatchFn {
  return (par) => {
    const m = par.meta;
    // skb->sk first: the socket TPROXY gave the packet
    const sk = m[M_SK] === SK_ASSIGNED ? par.env.sockets?.byIndex(m[M_SK_INDEX]!) : par.env.family === 'ip6' ? lookupV6(par) : lookupV4(par);
    if (!sk) return false;
    const wildcard = !info.nowildcard && sk.full && sk.wildcard;
    const transparent = info.transparent ? sk.transparent : true;
    if (info.restoreSkmark && !wildcard && transparent && sk.full) m[M_MARK] = sk.mark | 0;
    return !wildcard && transparent;
  };
}

