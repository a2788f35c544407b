/**
 * The node's own stack as the packet path meets it (path/ctx.ts Stack):
 * the transport protocols a locally delivered packet reaches, and the
 * packets the stack sends in answer (ICMP errors and echo replies, TCP
 * resets, what REJECT sends). Answers are queued on the packet's context
 * and sent after its fate through ip_local_out (hooks/node.ts), so they
 * cross OUTPUT and POSTROUTING like any locally generated packet.
 *
 * Mirrors Linux 6.18:
 *   net/ipv4/tcp_ipv4.c tcp_v4_rcv(), net/ipv6/tcp_ipv6.c tcp_v6_rcv(): PACKET_HOST only, a whole
 *                     header, a good checksum; the listening socket (sockets.ts); a listener
 *                     resets an ACK, drops a RST, answers a SYN (the SYN-ACK is not modelled);
 *                     without a socket, a reset (tcp.ts)
 *   net/ipv4/udp.c __udp4_lib_rcv(), net/ipv6/udp.c __udp6_lib_rcv(): the length and checksum
 *                     (IPv6: a zero checksum is refused); broadcast and multicast go to the
 *                     sockets of the port or nowhere; unicast without a socket: port unreachable
 *   net/ipv4/icmp.c icmp_rcv(), net/ipv6/icmp.c icmpv6_rcv(): the checksum; broadcast echo
 *                     requests ignored under icmp_echo_ignore_broadcasts; echo requests answered
 *                     unless icmp_echo_ignore_all / echo_ignore_all
 */
import { F_L4PROTO, M_FLAGS, M_FRAGOFF, M_L4PROTO, M_LEN, M_NHOFF, M_PKTTYPE, M_SK, M_SK_INDEX, M_THOFF, PACKET_HOST, SK_ASSIGNED } from '../../vm/layout.js';
import { NFPROTO_IPV4, NFPROTO_IPV6 } from '../../core/netfilter.js';
import { NEXTHDR_FRAGMENT, NEXTHDR_ROUTING, type Packet } from '../../vm/packet.js';
import type { Xorshift32 } from '../../vm/random.js';
import type { Link, Node } from '../snapshot/node.js';
import type { Cast, PathCtx, RejectReply, Stack } from '../path/ctx.js';
import { u32 } from '../path/ipv4.js';
import { words, wordsInto } from '../path/ipv6.js';
import { nfChecksum } from '../conntrack/checksum.js';
import { IPPROTO_UDPLITE } from '../conntrack/tuple.js';
import { inetChecksum, pseudoHeaderSum } from '../input/spec.js';
import { AnswerEnv, MAX_ANSWER_DEPTH, type AnswerState } from './env.js';
import { icmpEcho, icmpSend, icmpTimestamp, ipError, ipRtSendRedirect } from './icmp.js';
import { icmp6Send, icmpv6EchoReply, ip6PktDrop, ndiscSendRedirect } from './icmp6.js';
import { nfSendUnreach4, nfSendUnreach6 } from './reject.js';
import { NDISC_NEIGHBOUR_SOLICITATION, ndiscRecvNs } from './ndisc.js';
import { ipForwardOptions, ipRcvOptions } from './ip-options.js';
import { lookupConnection, lookupListener } from './sockets.js';
import { rawSocketFor, socketAt, type ListenSocket } from '../snapshot/ss.js';
import { nfSendReset4, nfSendReset6, tcpRcvOk, tcpV4SendReset, tcpV6SendReset } from './tcp.js';
import {
  ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_PARAMETERPROB, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH, ICMPV6_DEST_UNREACH, ICMPV6_ECHO_REQUEST, ICMPV6_PARAMPROB, ICMPV6_PORT_UNREACH,
  ICMPV6_HDR_FIELD, ICMPV6_UNK_NEXTHDR, ICMPV6_UNK_OPTION, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
} from './wire.js';

/** NEXTHDR_DEST: destination options. */
const NEXTHDR_DEST = 60;
/** The hop-by-hop options ip6_parse_tlv() knows (include/uapi/linux/in6.h). */
const IPV6_TLV_ROUTERALERT = 5;
const IPV6_TLV_CALIPSO = 7;
const IPV6_TLV_IOAM = 49;
const IPV6_TLV_JUMBO = 194;

const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;
const TH_ACK = 0x10;
const ICMP_TIMESTAMP = 13;
const ICMP_ADDRESS = 17;
const ICMP_ADDRESSREPLY = 18;

/** What the transport made of a locally delivered packet (the caller reads it before the next packet: a socket's is one object, reused). */
export interface TransportResult {
  /** The socket it reached, as ss printed it (`tcp 0.0.0.0:22`). */
  socket: string | undefined;
  /** What happened at the transport, for the fate ('' when there is nothing to say). */
  note: string;
}

const NOTHING: TransportResult = { socket: undefined, note: '' };

export class NodeStack implements Stack {
  readonly env: AnswerEnv;
  /** ip6_parse_tlv()'s limits, read on first use. */
  private tlvLimits: TlvLimits | undefined;
  /** A packet looked for a socket and the snapshot has no ss.txt (every port closed). */
  noSocketTableUsed = false;
  /** The result of a packet a socket took, filled again for each (took()). */
  private readonly taken: TransportResult = { socket: undefined, note: '' };
  /** The note of a segment of each connection's socket, made once. */
  private readonly connNotes = new WeakMap<ListenSocket, string>();
  /** The addresses of the packet lookup() is for, in reused words (the socket lookups keep neither). */
  private readonly lookupDaddr = new Uint32Array(4);
  private readonly lookupSaddr = new Uint32Array(4);
  private readonly lookupDaddr4 = new Uint32Array(1);
  private readonly lookupSaddr4 = new Uint32Array(1);

  constructor(
    readonly node: Node,
    rng: Xorshift32,
  ) {
    this.env = new AnswerEnv(node, rng);
  }

  setNow(nowNs: number): void {
    this.env.setNow(nowNs);
  }

  save(): AnswerState {
    return this.env.save();
  }

  restore(s: AnswerState): void {
    this.env.restore(s);
  }

  private answers(ctx: PathCtx): boolean {
    return ctx.depth < MAX_ANSWER_DEPTH;
  }

  /** A socket took the packet: the one result object, filled (read by the caller before the next packet). */
  private took(socket: string, note: string): TransportResult {
    const r = this.taken;
    r.socket = socket;
    r.note = note;
    return r;
  }

  transportRcv(pf: number, pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx): TransportResult {
    const m = pkt.meta;
    if ((m[M_FLAGS]! & F_L4PROTO) === 0 || m[M_FRAGOFF] !== 0) return NOTHING;
    // IPv6: the extension headers first; IP6CB(skb)->nhoff once they are passed (IPv4: its protocol field)
    let nhoff = 9;
    if (pf === NFPROTO_IPV6) {
      const ext = this.ip6Exthdrs(pkt, dev, ctx);
      if (typeof ext !== 'number') return ext;
      nhoff = ext;
    }
    const proto = m[M_L4PROTO]!;
    if (proto === IPPROTO_TCP) return this.tcpRcv(pf, pkt, dev, ctx);
    if (proto === IPPROTO_UDP) return this.udpRcv(pf, pkt, dev, cast, ctx);
    // udplite_rcv / udplitev6_rcv: registered by every kernel (protocols.ts), unless the snapshot's protocols.txt says otherwise
    if (proto === IPPROTO_UDPLITE && (this.node.protocols === undefined || (pf === NFPROTO_IPV4 ? this.node.protocols.v4 : this.node.protocols.v6)[proto])) {
      return this.udpRcv(pf, pkt, dev, cast, ctx, true);
    }
    if (proto === IPPROTO_ICMP && pf === NFPROTO_IPV4) return this.icmpRcv(pkt, dev, cast, ctx);
    if (proto === IPPROTO_ICMPV6 && pf === NFPROTO_IPV6) return this.icmpv6Rcv(pkt, dev, ctx);
    return this.otherProtocol(pf, pkt, dev, proto, nhoff, ctx);
  }

  /**
   * ip6_protocol_deliver_rcu()'s extension header handlers before the
   * upper layer (net/ipv6/exthdrs.c; the hop-by-hop header was ipv6_rcv's):
   * an atomic fragment's header passes (ipv6_frag_rcv);
   * ipv6_rthdr_rcv() drops a routing header to a multicast destination or
   * in a frame not for this host, drops segment routing (type 4, 3) without
   * seg6_enabled / rpl_seg_enabled, passes one with no segments left and
   * answers any other with ICMPv6 parameter problem (erroneous header field,
   * at its type: this kernel has no Mobile IPv6 for type 2);
   * ipv6_destopt_rcv() parses the options (ip6_parse_tlv: at most 7 bytes
   * of padding in a row, zero PadN bytes, max_dst_opts_number options,
   * max_dst_opts_length bytes) and an unknown option's two high bits say
   * skip, drop, or drop with a parameter problem (unrecognized option; 3:
   * not to a multicast destination). When the packet goes on, the offset
   * from the IPv6 header of the next-header field that named the header
   * reached (IP6CB(skb)->nhoff).
   */
  private ip6Exthdrs(pkt: Packet, dev: Link, ctx: PathCtx): TransportResult | number {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const end = nh + m[M_LEN]!;
    let next = d[nh + 6]!;
    let at = nh + 40;
    let field = nh + 6;
    const drop = (why: string): TransportResult => ({ socket: undefined, note: `${why}: dropped` });
    for (let hops = 0; hops < 32; hops++) {
      if (next !== 0 && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST && next !== NEXTHDR_FRAGMENT) return field - nh;
      if (at + 8 > end) return drop('an extension header past the packet');
      // an atomic fragment's header (the others wait for reassembly before this): ipv6_frag_rcv passes it
      const extlen = next === NEXTHDR_FRAGMENT ? 8 : (d[at + 1]! + 1) << 3;
      if (at + extlen > end) return drop('an extension header past the packet');
      if (next === NEXTHDR_ROUTING) {
        if (d[nh + 24] === 0xff || m[M_PKTTYPE] !== PACKET_HOST) return drop('ipv6_rthdr_rcv: a routing header to a multicast destination or not PACKET_HOST');
        const type = d[at + 2]!;
        const sys = this.node.sysctl;
        const conf = (k: string) => Math.min(sys.allConf(6, k), sys.devConf(6, dev.name, k));
        if (type === 4 && conf('seg6_enabled') <= 0) return drop('ipv6_srh_rcv: segment routing without seg6_enabled');
        if (type === 3 && conf('rpl_seg_enabled') <= 0) return drop('ipv6_rpl_srh_rcv: RPL segment routing without rpl_seg_enabled');
        if (type === 4 || type === 3) {
          this.env.note(ctx, `ipv6_rthdr_rcv: segment routing (type ${type}) is not modelled: the packet is taken as delivered`);
          return field - nh;
        }
        if (d[at + 3] !== 0) {
          if (this.answers(ctx)) icmp6Send(this.env, pkt, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, at + 2 - nh, dev, dev, ctx);
          return drop(`ipv6_rthdr_rcv: routing header type ${type} with ${d[at + 3]} segments left (parameter problem sent)`);
        }
      } else if (next === NEXTHDR_DEST) {
        // ipv6_destopt_rcv()
        const r = this.parseTlv(false, pkt, at, extlen, dev, ctx);
        if (r !== undefined) return drop(r);
      } else if (next === 0 && hops !== 0) {
        // a hop-by-hop header after the first: inet6_protos[0] is empty (ip6_protocol_deliver_rcu)
        if (this.answers(ctx)) icmp6Send(this.env, pkt, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR, field - nh, dev, dev, ctx);
        return drop('a hop-by-hop header after the first (parameter problem sent)');
      }
      field = at;
      next = d[at]!;
      at += extlen;
    }
    return field - nh;
  }

  hopByHop(pkt: Packet, dev: Link, ctx: PathCtx): string | undefined {
    const m = pkt.meta;
    const at = m[M_NHOFF]! + 40;
    const end = m[M_NHOFF]! + m[M_LEN]!;
    const extlen = at + 8 > end ? 0 : (pkt.data[at + 1]! + 1) << 3;
    if (extlen === 0 || at + extlen > end) return 'ipv6_parse_hopopts: the header past the packet';
    return this.parseTlv(true, pkt, at, extlen, dev, ctx);
  }

  /**
   * ip6_parse_tlv() over the options of the hop-by-hop (`hopbyhop`) or
   * destination options header at `at`: undefined when they pass, else why
   * the packet is dropped. Padding: at most 7 bytes in a row, PadN bytes
   * zero; at most max_hbh_opts_number / max_dst_opts_number options and
   * max_hbh_length / max_dst_opts_length bytes. Hop-by-hop: router alert
   * of length 2, and the jumbogram, CALIPSO and IOAM options taken as
   * they are (not modelled); every other option is unknown
   * (ip6_tlvopt_unknown: its two high bits skip it, drop the packet, or
   * drop it with a parameter problem, for 3 not to a multicast
   * destination).
   */
  private parseTlv(hopbyhop: boolean, pkt: Packet, at: number, extlen: number, dev: Link, ctx: PathCtx): string | undefined {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const lim = (this.tlvLimits ??= tlvLimits(this.node));
    const fn = hopbyhop ? 'ipv6_parse_hopopts' : 'ipv6_destopt_rcv';
    const cntName = hopbyhop ? 'max_hbh_opts_number' : 'max_dst_opts_number';
    const maxLen = hopbyhop ? lim.hbhLen : lim.dstLen;
    if (extlen > maxLen) return `${fn}: ${extlen} bytes of options (${hopbyhop ? 'max_hbh_length' : 'max_dst_opts_length'} ${maxLen})`;
    let maxCount = hopbyhop ? lim.hbhCount : lim.dstCount;
    const disallowUnknowns = maxCount < 0;
    if (disallowUnknowns) maxCount = -maxCount;
    let off = at + 2;
    let len = extlen - 2;
    let count = 0;
    let padlen = 0;
    while (len > 0) {
      const t = d[off]!;
      if (t === 0) { // IPV6_TLV_PAD1
        if (++padlen > 7) return 'ip6_parse_tlv: more than 7 bytes of padding';
        off++;
        len--;
        continue;
      }
      if (len < 2) return 'ip6_parse_tlv: an option past the header';
      const optlen = d[off + 1]! + 2;
      if (optlen > len) return 'ip6_parse_tlv: an option past the header';
      if (t === 1) { // IPV6_TLV_PADN
        padlen += optlen;
        if (padlen > 7) return 'ip6_parse_tlv: more than 7 bytes of padding';
        for (let i = 2; i < optlen; i++) if (d[off + i] !== 0) return 'ip6_parse_tlv: PadN with non-zero bytes';
      } else {
        if (++count > maxCount) return `ip6_parse_tlv: more than ${maxCount} options (${cntName})`;
        const known = hopbyhop && (t === IPV6_TLV_ROUTERALERT || t === IPV6_TLV_JUMBO || t === IPV6_TLV_CALIPSO || t === IPV6_TLV_IOAM);
        if (known) {
          if (t === IPV6_TLV_ROUTERALERT && d[off + 1] !== 2) return `ipv6_hop_ra: a router alert of length ${d[off + 1]}`;
        } else {
          // ip6_tlvopt_unknown() (no Mobile IPv6 home address option among the destination options)
          if (disallowUnknowns) return `ip6_parse_tlv: unknown option ${t} (${cntName} < 0)`;
          const action = t >> 6;
          if (action === 1) return `ip6_tlvopt_unknown: unknown option ${t}`;
          if (action === 2 || (action === 3 && d[nh + 24] !== 0xff)) {
            if (this.answers(ctx)) icmp6Send(this.env, pkt, ICMPV6_PARAMPROB, ICMPV6_UNK_OPTION, off - nh, dev, dev, ctx);
            return `ip6_tlvopt_unknown: unknown option ${t} (parameter problem sent)`;
          }
          if (action === 3) return `ip6_tlvopt_unknown: unknown option ${t} to a multicast destination`;
        }
        padlen = 0;
      }
      off += optlen;
      len -= optlen;
    }
    return undefined;
  }

  /**
   * ip_protocol_deliver_rcu() / ip6_protocol_deliver_rcu() for another
   * protocol: raw_local_deliver() hands it to the raw sockets of the
   * protocol; a protocol with a handler (protocols.txt) goes to it (not
   * modelled further: nothing is sent); without either, icmp_send(ICMP_DEST_UNREACH,
   * ICMP_PROT_UNREACH) or icmpv6_send(ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR)
   * pointing at the next-header field that named it (IP6CB(skb)->nhoff).
   */
  private otherProtocol(pf: number, pkt: Packet, dev: Link, proto: number, nhoff: number, ctx: PathCtx): TransportResult {
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const v4 = pf === NFPROTO_IPV4;
    const table = this.node.sockets;
    const raw = table && table.raw.length ? rawSocketFor(table, v4 ? 4 : 6, proto, v4 ? [u32(d, nh + 12)] : words(d, nh + 8), v4 ? [u32(d, nh + 16)] : words(d, nh + 24), dev.name) : undefined;
    const handlers = this.node.protocols;
    if (!handlers) {
      if (raw) return { socket: raw.text, note: '' };
      this.env.note(ctx, `protocol ${proto}: the snapshot has no protocols.txt: taken as handled by the kernel (no ${v4 ? 'ICMP protocol unreachable' : 'ICMPv6 parameter problem'})`);
      return NOTHING;
    }
    if ((v4 ? handlers.v4 : handlers.v6)[proto]) return raw ? { socket: raw.text, note: '' } : { socket: undefined, note: `protocol ${proto}: the kernel's handler (not modelled further)` };
    if (raw) return { socket: raw.text, note: `protocol ${proto}: no handler in the kernel (${handlers.file}): the raw socket takes it` };
    if (this.answers(ctx)) {
      if (v4) icmpSend(this.env, pkt, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, dev, ctx);
      else icmp6Send(this.env, pkt, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR, nhoff, dev, dev, ctx);
    }
    return { socket: undefined, note: `protocol ${proto}: no handler in the kernel (${handlers.file}) and no raw socket` };
  }

  private lookup(pf: number, pkt: Packet, proto: 'tcp' | 'udp', port: number, dev: Link, ctx: PathCtx) {
    if (!this.node.sockets) {
      this.noSocketTableUsed = true;
      this.env.note(ctx, 'no ss.txt in the snapshot: every TCP and UDP port is assumed closed');
      return undefined;
    }
    // skb->sk: the socket TPROXY gave the packet (skb_steal_sock)
    if (pkt.meta[M_SK] === SK_ASSIGNED) return socketAt(this.node.sockets, pkt.meta[M_SK_INDEX]!);
    const d = pkt.data;
    const nh = pkt.meta[M_NHOFF]!;
    const v4 = pf === NFPROTO_IPV4;
    let daddr: Uint32Array;
    let saddr: Uint32Array;
    if (v4) {
      daddr = this.lookupDaddr4;
      daddr[0] = u32(d, nh + 16);
      saddr = this.lookupSaddr4;
      saddr[0] = u32(d, nh + 12);
    } else {
      daddr = wordsInto(d, nh + 24, this.lookupDaddr);
      saddr = wordsInto(d, nh + 8, this.lookupSaddr);
    }
    // the connection (a connected UDP socket's peer) first, then the listeners
    const th = pkt.meta[M_THOFF]!;
    const c = lookupConnection(this.node.sockets, v4 ? 4 : 6, saddr, (d[th]! << 8) | d[th + 1]!, daddr, port, dev.name, proto);
    if (c) return c;
    return lookupListener(this.node.sockets, proto, v4 ? 4 : 6, daddr, port, dev.name);
  }

  private tcpRcv(pf: number, pkt: Packet, dev: Link, ctx: PathCtx): TransportResult {
    const bad = tcpRcvOk(pkt, pf);
    if (bad) return { socket: undefined, note: `tcp: ${bad}` };
    const d = pkt.data;
    const th = pkt.meta[M_THOFF]!;
    const port = (d[th + 2]! << 8) | d[th + 3]!;
    const flags = d[th + 13]!;
    const sock = this.lookup(pf, pkt, 'tcp', port, dev, ctx);
    if (sock?.peer) {
      let note = this.connNotes.get(sock);
      if (note === undefined) this.connNotes.set(sock, (note = `a segment of the connection ${sock.text} (${sock.state}; the connection's answers are not modelled)`));
      return this.took(sock.text, note);
    }
    if (sock) {
      if (flags & TH_RST) return this.took(sock.text, 'a RST to a listening socket: discarded');
      if (flags & TH_ACK) {
        this.reset(pf, pkt, dev, sock, `an ACK to the listening socket ${sock.text}`, ctx);
        return this.took(sock.text, 'an ACK to a listening socket: reset');
      }
      if (flags & TH_SYN && !(flags & TH_FIN)) return this.took(sock.text, 'a connection request (the SYN-ACK is not modelled)');
      return this.took(sock.text, 'not a SYN: discarded by the listening socket');
    }
    if (!(flags & TH_RST)) this.reset(pf, pkt, dev, undefined, `no socket listens on tcp port ${port}`, ctx);
    return { socket: undefined, note: `no socket on tcp port ${port}` };
  }

  /** tcp_v4_send_reset() / tcp_v6_send_reset() of a segment (`listener`: the socket it reached, if any). */
  private reset(pf: number, pkt: Packet, dev: Link, listener: ListenSocket | undefined, why: string, ctx: PathCtx): void {
    if (!this.answers(ctx)) return;
    if (pf === NFPROTO_IPV4) tcpV4SendReset(this.env, pkt, listener, why, ctx);
    else tcpV6SendReset(this.env, pkt, dev.name, listener, why, ctx);
  }

  /**
   * __udp4_lib_rcv() / __udp6_lib_rcv() for UDP and UDP-Lite (`lite`:
   * udplite_checksum_init(): a checksum is mandatory, the length field is
   * the checksum coverage (0: all), and the checksum covers that many bytes
   * with the whole datagram's length in the pseudo-header). ss cannot list
   * UDP-Lite sockets: every UDP-Lite port is taken as closed.
   */
  private udpRcv(pf: number, pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx, lite = false): TransportResult {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const th = m[M_THOFF]!;
    const name = lite ? 'udplite' : 'udp';
    const avail = nh + m[M_LEN]! - th;
    if (avail < 8) return { socket: undefined, note: `${name}: shorter than a UDP header: dropped` };
    let ulen = (d[th + 4]! << 8) | d[th + 5]!;
    const check = (d[th + 6]! << 8) | d[th + 7]!;
    let csumBad: boolean;
    if (lite) {
      if (ulen > avail) return { socket: undefined, note: `${name}: checksum coverage ${ulen} past the datagram: dropped` };
      if (check === 0) return { socket: undefined, note: `${name}: a zero checksum: dropped` };
      if (ulen !== 0 && ulen < 8) return { socket: undefined, note: `${name}: bad checksum coverage ${ulen}: dropped` };
      const cov = ulen === 0 ? avail : ulen;
      ulen = avail;
      const pseudo = pf === NFPROTO_IPV4
        ? pseudoHeaderSum(d.subarray(nh + 12, nh + 16), d.subarray(nh + 16, nh + 20), IPPROTO_UDPLITE, avail)
        : pseudoHeaderSum(d.subarray(nh + 8, nh + 24), d.subarray(nh + 24, nh + 40), IPPROTO_UDPLITE, avail);
      csumBad = inetChecksum(d, th, th + cov, pseudo) !== 0;
    } else {
      if (pf === NFPROTO_IPV6 && ulen === 0) ulen = avail; // a jumbogram's length is its payload's
      if (ulen > avail || ulen < 8) return { socket: undefined, note: `udp: bad length ${ulen}: dropped` };
      if (pf === NFPROTO_IPV6 && check === 0) return { socket: undefined, note: 'udp: a zero checksum over IPv6: dropped' };
      csumBad = check !== 0 && nfChecksum(d, pf, nh, th, th + ulen, IPPROTO_UDP) !== 0;
    }
    const port = (d[th + 2]! << 8) | d[th + 3]!;
    const sock = lite ? undefined : this.lookup(pf, pkt, 'udp', port, dev, ctx);
    if (csumBad) return { socket: undefined, note: `${name}: bad checksum: dropped` };
    if (cast !== 'unicast') return sock ? this.took(sock.text, '') : { socket: undefined, note: `no socket on ${name} port ${port} (${cast}: nothing sent)` };
    if (sock) return this.took(sock.text, '');
    if (this.answers(ctx)) {
      // __udp4_lib_rcv and __udp6_lib_rcv let go of the conntrack (nf_reset_ct) before the error is sent
      if (pf === NFPROTO_IPV4) icmpSend(this.env, pkt, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, dev, ctx, true);
      else icmp6Send(this.env, pkt, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, 0, dev, dev, ctx, true);
    }
    return { socket: undefined, note: `no socket on ${name} port ${port}` };
  }

  private icmpRcv(pkt: Packet, dev: Link, cast: Cast, ctx: PathCtx): TransportResult {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const th = m[M_THOFF]!;
    const end = nh + m[M_LEN]!;
    if (th + 8 > end) return NOTHING;
    if (nfChecksum(d, NFPROTO_IPV4, nh, th, end, IPPROTO_ICMP) !== 0) return { socket: undefined, note: 'icmp: bad checksum: dropped' };
    const type = d[th]!;
    if (cast !== 'unicast') {
      if ((type === ICMP_ECHO || type === ICMP_TIMESTAMP) && this.env.echoIgnoreBroadcasts) {
        this.env.note(ctx, `icmp_rcv: a ${cast} echo request is ignored (icmp_echo_ignore_broadcasts = 1)`);
        return NOTHING;
      }
      if (type !== ICMP_ECHO && type !== ICMP_TIMESTAMP && type !== ICMP_ADDRESS && type !== ICMP_ADDRESSREPLY) return NOTHING;
    }
    if (type === ICMP_ECHO) {
      if (this.env.echoIgnoreAll) this.env.note(ctx, 'icmp_echo: no reply (icmp_echo_ignore_all = 1)');
      else if (this.answers(ctx)) icmpEcho(this.env, pkt, dev, ctx);
    } else if (type === ICMP_TIMESTAMP && this.answers(ctx)) icmpTimestamp(this.env, pkt, dev, ctx);
    return NOTHING;
  }

  private icmpv6Rcv(pkt: Packet, dev: Link, ctx: PathCtx): TransportResult {
    const d = pkt.data;
    const m = pkt.meta;
    const nh = m[M_NHOFF]!;
    const th = m[M_THOFF]!;
    const end = nh + m[M_LEN]!;
    if (th + 4 > end) return NOTHING;
    if (nfChecksum(d, NFPROTO_IPV6, nh, th, end, IPPROTO_ICMPV6) !== 0) return { socket: undefined, note: 'icmpv6: bad checksum: dropped' };
    if (d[th] === NDISC_NEIGHBOUR_SOLICITATION) {
      ndiscRecvNs(this.env, pkt, dev, ctx, this.answers(ctx));
      return NOTHING;
    }
    if (d[th] !== ICMPV6_ECHO_REQUEST) return NOTHING;
    if (this.env.echo6IgnoreAll) this.env.note(ctx, 'icmpv6_rcv: no echo reply (echo_ignore_all = 1)');
    else if (th + 8 <= end && this.answers(ctx)) icmpv6EchoReply(this.env, pkt, dev, ctx);
    return NOTHING;
  }

  ipOptions(pkt: Packet, dev: Link, ctx: PathCtx): string | undefined {
    const r = ipRcvOptions(this.env, pkt, dev, ctx);
    if (r?.paramProblem !== undefined && this.answers(ctx)) icmpSend(this.env, pkt, ICMP_PARAMETERPROB, 0, r.paramProblem, dev, ctx);
    return r?.why;
  }

  forwardOptions(pkt: Packet, out: Link, ctx: PathCtx): void {
    ipForwardOptions(this.env, pkt, out, ctx);
  }

  redirect(pkt: Packet, dev: Link, gw: number, ctx: PathCtx): void {
    if (this.answers(ctx)) ipRtSendRedirect(this.env, pkt, gw, dev, ctx);
  }

  redirect6(pkt: Packet, dev: Link, target: Uint32Array, ctx: PathCtx): void {
    if (this.answers(ctx)) ndiscSendRedirect(this.env, pkt, target, dev, ctx);
  }

  icmpError(pf: number, pkt: Packet, type: number, code: number, info: number, dev: Link | undefined, ctx: PathCtx): void {
    if (!this.answers(ctx)) return;
    if (pf === NFPROTO_IPV4) icmpSend(this.env, pkt, type, code, info, dev, ctx);
    else icmp6Send(this.env, pkt, type, code, info, dev, dev, ctx);
  }

  routeError(pf: number, pkt: Packet, dev: Link, errno: number, ctx: PathCtx): void {
    if (!this.answers(ctx)) return;
    if (pf === NFPROTO_IPV4) ipError(this.env, pkt, dev, errno, ctx);
    else ip6PktDrop(this.env, pkt, dev, errno, ctx);
  }

  reject(pf: number, pkt: Packet, hook: number, reply: RejectReply, inDev: Link | undefined, ctx: PathCtx): void {
    if (!this.answers(ctx)) return;
    if (pf === NFPROTO_IPV4) {
      if (reply.tcpReset) nfSendReset4(this.env, pkt, hook, ctx);
      else nfSendUnreach4(this.env, pkt, reply.code, hook, inDev, ctx);
    } else if (reply.tcpReset) nfSendReset6(this.env, pkt, hook, ctx);
    else nfSendUnreach6(this.env, pkt, reply.code, hook, inDev, ctx);
  }
}

/** The limits of ip6_parse_tlv() (net.ipv6.max_{hbh,dst}_opts_{number,length}; read once: a snapshot's sysctls do not change). */
interface TlvLimits {
  readonly hbhCount: number;
  readonly hbhLen: number;
  readonly dstCount: number;
  readonly dstLen: number;
}

function tlvLimits(node: Node): TlvLimits {
  const v = (key: string, dflt: number) => {
    const n = node.sysctl.num(key);
    return Number.isFinite(n) ? n : dflt;
  };
  // IP6_DEFAULT_MAX_{HBH,DST}_OPTS_CNT 8, the lengths INT_MAX
  return { hbhCount: v('net.ipv6.max_hbh_opts_number', 8), hbhLen: v('net.ipv6.max_hbh_length', 0x7fffffff), dstCount: v('net.ipv6.max_dst_opts_number', 8), dstLen: v('net.ipv6.max_dst_opts_length', 0x7fffffff) };
}
