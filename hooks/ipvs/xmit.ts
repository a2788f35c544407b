/**
 * The packet rewrites of IPVS's transmitters and of its reply path (Linux
 * 6.18 net/netfilter/ipvs/ip_vs_xmit.c ip_vs_nat_xmit / ip_vs_tunnel_xmit,
 * ip_vs_proto_tcp.c tcp_dnat_handler / tcp_snat_handler,
 * ip_vs_proto_udp.c udp_dnat_handler / udp_snat_handler,
 * ip_vs_proto_sctp.c sctp_dnat_handler, ip_vs_core.c handle_response).
 *
 * A NAT rewrite changes one address and port of the packet in place:
 * the transport checksum gets the incremental update of the pseudo-header
 * address and of the port (tcp_fast_csum_update / udp_fast_csum_update;
 * a UDP datagram without a checksum keeps none), SCTP its CRC32c over the
 * packet (sctp_nat_csum), then the address goes into the IP header and
 * IPv4's header checksum is made again (ip_send_check).
 */
import { csumReplace2, csumReplace4, sctpComputeCksum, sctpStoreCksum } from '../conntrack/checksum.js';
import { inetChecksum } from '../input/spec.js';
import { ipSendCheck } from '../path/ipv4.js';
import { M_END, M_NHOFF, M_THOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from './save.js';

const word = (d: Uint8Array, at: number) => ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
const wordOf = (a: Uint8Array, i: number) => ((a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!) >>> 0;

/**
 * Rewrites the destination (`dst` true: the DNAT of ip_vs_nat_xmit) or the
 * source (handle_response's SNAT) address and port of a TCP, UDP or SCTP
 * packet. false when the transport header is not all there (the
 * handler's skb_ensure_writable failing: the kernel drops).
 */
export function ipvsManip(pkt: Packet, protocol: number, dst: boolean, addr: Uint8Array, port: number): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  const th = m[M_THOFF]!;
  const v4 = addr.length === 4;
  const aAt = nh + (v4 ? (dst ? 16 : 12) : (dst ? 24 : 8));
  const pAt = th + (dst ? 2 : 0);
  const oldPort = (d[pAt]! << 8) | d[pAt + 1]!;
  if (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) {
    const check = th + (protocol === IPPROTO_TCP ? 16 : 6);
    if (th + (protocol === IPPROTO_TCP ? 20 : 8) > end) return false;
    if (protocol === IPPROTO_TCP || d[check] !== 0 || d[check + 1] !== 0) {
      for (let i = 0; i < addr.length; i += 4) csumReplace4(d, check, word(d, aAt + i), wordOf(addr, i));
      csumReplace2(d, check, oldPort, port);
      // udp_fast_csum_update: a sum that comes out 0 is sent as CSUM_MANGLED_0.
      if (protocol === IPPROTO_UDP && d[check] === 0 && d[check + 1] === 0) d[check] = d[check + 1] = 0xff;
    }
  } else if (protocol === IPPROTO_SCTP) {
    if (th + 12 > end) return false;
  }
  d[pAt] = port >>> 8;
  d[pAt + 1] = port & 0xff;
  if (v4) {
    csumReplace4(d, nh + 10, word(d, aAt), wordOf(addr, 0));
  }
  d.set(addr, aAt);
  if (protocol === IPPROTO_SCTP) {
    // sctp_nat_csum(): the CRC32c of the whole packet, made again.
    sctpStoreCksum(d, th, sctpComputeCksum(d, th, end));
  }
  return true;
}

/** IPPROTO_IPIP: the tunnel of ip_vs_tunnel_xmit (the default tun_type, IP_VS_CONN_F_TUNNEL_TYPE_IPIP). */
export const IPPROTO_IPIP = 4;

/**
 * ip_vs_tunnel_xmit(): the IPv4 packet `inner` in a new outer IPv4 header
 * from `saddr` to the real server `daddr`: protocol IPIP, the inner
 * header's DSCP/ECN byte (ipv4_get_dsfield), its DF bit and TTL; the IP id
 * is ip_select_ident's (a kernel field), 0 here.
 */
export function ipipEncap(inner: Uint8Array, saddr: Uint8Array, daddr: Uint8Array): Uint8Array {
  const out = new Uint8Array(20 + inner.length);
  out[0] = 0x45;
  out[1] = inner[1]!;
  const tot = out.length;
  out[2] = tot >>> 8;
  out[3] = tot & 0xff;
  out[6] = inner[6]! & 0x40;
  out[8] = inner[8]!;
  out[9] = IPPROTO_IPIP;
  out.set(saddr, 12);
  out.set(daddr, 16);
  const c = inetChecksum(out, 0, 20);
  out[10] = c >>> 8;
  out[11] = c & 0xff;
  out.set(inner, 20);
  return out;
}

/**
 * ip_vs_nat_icmp(): an IPv4 ICMP error about a masqueraded connection,
 * rewritten. `inout` true (handle_response_icmp: an error from the real
 * server's side about a request): the outer source and the embedded
 * destination become the virtual address, the embedded destination port
 * the virtual port. false (ip_vs_icmp_xmit: an error from the client's side
 * about a reply): the outer destination and the embedded source become the
 * real server's address, the embedded source port its port. Both IP header
 * checksums are made again (ip_send_check) and the ICMP checksum over the
 * whole message; the embedded transport checksum is left as it was, as the
 * kernel leaves it. `ciph` is the embedded IP header's offset.
 */
export function ipvsNatIcmp(pkt: Packet, ciph: number, inout: boolean, addr: Uint8Array, port: number): void {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  const icmp = m[M_THOFF]!;
  d.set(addr, nh + (inout ? 12 : 16));
  ipSendCheck(d, nh);
  d.set(addr, ciph + (inout ? 16 : 12));
  ipSendCheck(d, ciph);
  const p = d[ciph + 9]!;
  if (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP) {
    const ports = ciph + (d[ciph]! & 15) * 4 + (inout ? 2 : 0);
    d[ports] = port >>> 8;
    d[ports + 1] = port & 255;
  }
  d[icmp + 2] = d[icmp + 3] = 0;
  const c = inetChecksum(d, icmp, end);
  d[icmp + 2] = c >>> 8;
  d[icmp + 3] = c & 255;
}

