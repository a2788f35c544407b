/**
 * The flow dissector as skb_get_poff() runs it (net/core/flow_dissector.c,
 * Linux 6.18): __skb_flow_dissect() with the basic keys only (control and
 * basic: the transport offset, the fragment flags, the last protocols), no
 * flags, no BPF flow dissector; then __skb_get_poff(), the payload's offset
 * from skb->data. The bpf match's SKF_AD_PAY_OFFSET load reads it
 * (bpf_skb_get_pay_offset).
 *
 * The walk: IPv4 (a fragment after the first ends it), IPv6 and its
 * hop-by-hop, routing, destination and fragment headers, VLAN tags, PPPoE
 * session, MPLS (one label: the basic keys do not read the stack), ARP, TIPC,
 * FCoE and PTP headers, and the tunnels GRE (version 0, with Ethernet inside
 * for ETH_P_TEB, and PPTP's version 1), IPIP, IPv6-in-IP and MPLS-in-IP, at
 * most MAX_FLOW_DISSECT_HDRS headers. A protocol it does not know ends the
 * walk as a failure (skb_get_poff() then gives 0); so do HSR/PRP, batman-adv
 * and CFM, which nfvm does not parse (met only inside a GRE tunnel here).
 * Packets are linear, so a header that does not fit before `end` is a
 * failed __skb_header_pointer().
 */

const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_RARP = 0x8035;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_PPP_SES = 0x8864;
const ETH_P_MPLS_UC = 0x8847;
const ETH_P_MPLS_MC = 0x8848;
const ETH_P_TIPC = 0x88ca;
const ETH_P_FCOE = 0x8906;
const ETH_P_1588 = 0x88f7;
const ETH_P_TEB = 0x6558;
/** GRE_PROTO_PPP: PPTP's protocol field. */
const GRE_PROTO_PPP = 0x880b;

const IPPROTO_HOPOPTS = 0;
const IPPROTO_ICMP = 1;
const IPPROTO_IGMP = 2;
const IPPROTO_IPIP = 4;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_DCCP = 33;
const IPPROTO_IPV6 = 41;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_GRE = 47;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_DSTOPTS = 60;
const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;
const IPPROTO_MPLS = 137;

/* GRE flags (net/gre.h, as the first 16 bits of the header) */
const GRE_CSUM = 0x8000;
const GRE_ROUTING = 0x4000;
const GRE_KEY = 0x2000;
const GRE_SEQ = 0x1000;
const GRE_ACK = 0x0080;
const GRE_VERSION = 0x0007;
const PPP_IP = 0x21;
const PPP_IPV6 = 0x57;
const PPP_MPLS_UC = 0x281;
const PPP_MPLS_MC = 0x283;
/** PPP_HDRLEN: address, control, protocol. */
const PPP_HDRLEN = 4;
/** PPPOE_SES_HLEN: the PPPoE header and the PPP protocol. */
const PPPOE_SES_HLEN = 8;
const FCOE_HEADER_LEN = 38;
/** sizeof(struct ptp_header) */
const PTP_HLEN = 34;
const MAX_FLOW_DISSECT_HDRS = 15;

/* enum flow_dissect_ret */
const RET_OUT_GOOD = 0;
const RET_OUT_BAD = 1;
const RET_PROTO_AGAIN = 2;
const RET_IPPROTO_AGAIN = 3;
const RET_CONTINUE = 4;

const u16 = (d: Uint8Array, at: number): number => (d[at]! << 8) | d[at + 1]!;

/** ppp_proto_is_valid(): an odd low byte and an even high byte (RFC 1661). */
const pppProtoIsValid = (p: number): boolean => (p & 0x0101) === 0x0001;

/**
 * skb_get_poff(): the offset of the payload from the network header at
 * `nh` (skb->data) of a packet ending at `end`, whose skb->protocol is
 * `proto`; 0 when the dissector fails.
 */
export function skbGetPoff(d: Uint8Array, nh: number, end: number, proto: number): number {
  const len = end - nh;
  /** __skb_header_pointer(): `size` bytes at `off` from skb->data fit. */
  const fits = (off: number, size: number): boolean => off >= 0 && off + size <= len;
  let nhoff = 0;
  let ipProto = 0;
  let isFragment = false;
  let firstFrag = false;
  let numHdrs = 0;
  let ok = true;
  let p = proto & 0xffff;
  walk: for (;;) {
    // proto_again
    let ret = RET_CONTINUE;
    switch (p) {
      case ETH_P_IP: {
        if (!fits(nhoff, 20) || (d[nh + nhoff]! & 0x0f) < 5) {
          ret = RET_OUT_BAD;
          break;
        }
        const at = nh + nhoff;
        nhoff += (d[at]! & 0x0f) * 4;
        ipProto = d[at + 9]!;
        const frag = u16(d, at + 6);
        // ip_is_fragment(): MF or an offset
        if (frag & 0x3fff) {
          isFragment = true;
          if (frag & 0x1fff) ret = RET_OUT_GOOD;
          else {
            firstFrag = true;
            ret = RET_OUT_GOOD; // no FLOW_DISSECTOR_F_PARSE_1ST_FRAG
          }
        }
        break;
      }
      case ETH_P_IPV6:
        if (!fits(nhoff, 40)) {
          ret = RET_OUT_BAD;
          break;
        }
        ipProto = d[nh + nhoff + 6]!;
        nhoff += 40;
        break;
      case ETH_P_8021AD:
      case ETH_P_8021Q:
        // a tag in the packet (skb's own tag, if any, was taken off before these hooks)
        if (!fits(nhoff, 4)) {
          ret = RET_OUT_BAD;
          break;
        }
        p = u16(d, nh + nhoff + 2);
        nhoff += 4;
        ret = RET_PROTO_AGAIN;
        break;
      case ETH_P_PPP_SES: {
        // is_pppoe_ses_hdr_valid(): version 1, type 1, code 0
        if (!fits(nhoff, PPPOE_SES_HLEN) || d[nh + nhoff] !== 0x11 || d[nh + nhoff + 1] !== 0) {
          ret = RET_OUT_BAD;
          break;
        }
        let pp = u16(d, nh + nhoff + 6);
        // a compressed (one-byte) PPP protocol: the low bit of its first byte set
        if (pp & 0x0100) {
          pp >>= 8;
          nhoff += PPPOE_SES_HLEN - 1;
        } else nhoff += PPPOE_SES_HLEN;
        if (pp === PPP_IP) {
          p = ETH_P_IP;
          ret = RET_PROTO_AGAIN;
        } else if (pp === PPP_IPV6) {
          p = ETH_P_IPV6;
          ret = RET_PROTO_AGAIN;
        } else if (pp === PPP_MPLS_UC) {
          p = ETH_P_MPLS_UC;
          ret = RET_PROTO_AGAIN;
        } else if (pp === PPP_MPLS_MC) {
          p = ETH_P_MPLS_MC;
          ret = RET_PROTO_AGAIN;
        } else ret = pppProtoIsValid(pp) ? RET_OUT_GOOD : RET_OUT_BAD;
        break;
      }
      case ETH_P_TIPC:
        ret = fits(nhoff, 16) ? RET_OUT_GOOD : RET_OUT_BAD;
        break;
      case ETH_P_MPLS_UC:
      case ETH_P_MPLS_MC:
        // __skb_flow_dissect_mpls() without the MPLS keys: done, past the label
        ret = RET_OUT_GOOD;
        nhoff += 4;
        break;
      case ETH_P_FCOE:
        if (len - nhoff < FCOE_HEADER_LEN) ret = RET_OUT_BAD;
        else {
          nhoff += FCOE_HEADER_LEN;
          ret = RET_OUT_GOOD;
        }
        break;
      case ETH_P_ARP:
      case ETH_P_RARP:
        // __skb_flow_dissect_arp() without the ARP key
        ret = RET_OUT_GOOD;
        break;
      case ETH_P_1588:
        if (!fits(nhoff, PTP_HLEN)) ret = RET_OUT_BAD;
        else {
          nhoff += PTP_HLEN;
          ret = RET_OUT_GOOD;
        }
        break;
      default:
        ret = RET_OUT_BAD;
    }
    if (ret === RET_OUT_GOOD) break walk;
    if (ret === RET_PROTO_AGAIN) {
      if (++numHdrs <= MAX_FLOW_DISSECT_HDRS) continue walk;
      break walk;
    }
    if (ret === RET_OUT_BAD) {
      ok = false;
      break walk;
    }
    // ip_proto_again
    for (;;) {
      let r = RET_CONTINUE;
      switch (ipProto) {
        case IPPROTO_GRE:
          r = greDissect(d, nh, len, nhoff);
          if (r === RET_PROTO_AGAIN) {
            p = greProto;
            nhoff = greNhoff;
          }
          break;
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
          if (p !== ETH_P_IPV6) break;
          if (!fits(nhoff, 2)) {
            r = RET_OUT_BAD;
            break;
          }
          ipProto = d[nh + nhoff]!;
          nhoff += (d[nh + nhoff + 1]! + 1) << 3;
          r = RET_IPPROTO_AGAIN;
          break;
        case IPPROTO_FRAGMENT:
          if (p !== ETH_P_IPV6) break;
          if (!fits(nhoff, 8)) {
            r = RET_OUT_BAD;
            break;
          }
          isFragment = true;
          ipProto = d[nh + nhoff]!;
          if ((u16(d, nh + nhoff + 2) & 0xfff8) === 0) firstFrag = true;
          nhoff += 8;
          r = RET_OUT_GOOD;
          break;
        case IPPROTO_IPIP:
          p = ETH_P_IP;
          r = RET_PROTO_AGAIN;
          break;
        case IPPROTO_IPV6:
          p = ETH_P_IPV6;
          r = RET_PROTO_AGAIN;
          break;
        case IPPROTO_MPLS:
          p = ETH_P_MPLS_UC;
          r = RET_PROTO_AGAIN;
          break;
        default:
          break;
      }
      if (r === RET_PROTO_AGAIN) {
        if (++numHdrs <= MAX_FLOW_DISSECT_HDRS) continue walk;
        break walk;
      }
      if (r === RET_IPPROTO_AGAIN) {
        if (++numHdrs <= MAX_FLOW_DISSECT_HDRS) continue;
        break walk;
      }
      if (r === RET_OUT_BAD) ok = false;
      break walk;
    }
  }
  if (!ok) return 0;
  // key_control->thoff = min_t(u16, nhoff, skb->len)
  let poff = Math.min(nhoff & 0xffff, len & 0xffff);
  // __skb_get_poff(): the L4 header of fragments after the first is not there
  if (isFragment && !firstFrag) return poff;
  switch (ipProto) {
    case IPPROTO_TCP:
      if (!fits(poff + 12, 1)) return poff;
      poff += Math.max(20, (d[nh + poff + 12]! & 0xf0) >> 2);
      break;
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
      poff += 8;
      break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
    case IPPROTO_IGMP:
      poff += 8;
      break;
    case IPPROTO_DCCP:
      poff += 12;
      break;
    case IPPROTO_SCTP:
      poff += 12;
      break;
  }
  return poff;
}

/** __skb_flow_dissect_gre()'s outputs when it asks for another protocol (the walk's proto and nhoff). */
let greProto = 0;
let greNhoff = 0;

/** __skb_flow_dissect_gre() at `nhoff`: RET_PROTO_AGAIN with greProto and greNhoff set, or where the walk ends. */
function greDissect(d: Uint8Array, nh: number, len: number, nhoff: number): number {
  if (nhoff < 0 || nhoff + 4 > len) return RET_OUT_BAD;
  const flags = u16(d, nh + nhoff);
  // only without routing, versions 0 and 1
  if (flags & GRE_ROUTING) return RET_OUT_GOOD;
  const ver = flags & GRE_VERSION;
  if (ver > 1) return RET_OUT_GOOD;
  let proto = u16(d, nh + nhoff + 2);
  // version 1 must be PPTP
  if (ver === 1 && !(proto === GRE_PROTO_PPP && flags & GRE_KEY)) return RET_OUT_GOOD;
  let offset = 4;
  if (flags & GRE_CSUM) offset += 4;
  if (flags & GRE_KEY) {
    if (nhoff + offset + 4 > len) return RET_OUT_BAD;
    offset += 4;
  }
  if (flags & GRE_SEQ) offset += 4;
  if (ver === 0) {
    if (proto === ETH_P_TEB) {
      if (nhoff + offset + 14 > len) return RET_OUT_BAD;
      proto = u16(d, nh + nhoff + offset + 12);
      offset += 14;
    }
  } else {
    if (flags & GRE_ACK) offset += 4;
    if (nhoff + offset + PPP_HDRLEN > len) return RET_OUT_BAD;
    // PPP_PROTOCOL(): the third and fourth bytes
    const pp = u16(d, nh + nhoff + offset + 2);
    if (pp === PPP_IP) proto = ETH_P_IP;
    else if (pp === PPP_IPV6) proto = ETH_P_IPV6;
    offset += PPP_HDRLEN;
  }
  greProto = proto;
  greNhoff = nhoff + offset;
  return RET_PROTO_AGAIN;
}
