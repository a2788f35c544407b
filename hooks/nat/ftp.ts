/**
 * The FTP NAT helper: on a NATed control connection, the address and port
 * a command or reply announces are rewritten to what the other side must
 * use (the connection's translated address, and a port the node can
 * expect), the packet resized and its sequence numbers adjusted from then
 * on, and the announced connection NATed as its master is when it comes.
 *
 * Mirrors (Linux 6.18):
 *   net/netfilter/nf_nat_ftp.c     nf_nat_ftp, nf_nat_ftp_fmt_cmd
 *   net/netfilter/nf_nat_helper.c  nf_nat_exp_find_port, __nf_nat_mangle_tcp_packet (mangle_contents,
 *                                  enlarge_skb's 65535 limit), nf_nat_follow_master
 * The TCP checksum is computed whole (the bytes the receiver gets); a
 * packet on its way out is flagged F_CSUM_PARTIAL, as the kernel leaves
 * its sum to the device.
 */
import { IP_CT_IS_REPLY, NFPROTO_IPV4, NF_ACCEPT, NF_DROP, NF_INET_POST_ROUTING } from '../../core/netfilter.js';
import { F_CSUM_PARTIAL, M_END, M_FLAGS, M_LEN, M_NHOFF } from '../../vm/layout.js';
import type { Packet } from '../../vm/packet.js';
import { T_DST, T_PORTS, T_SRC, TUPLE_WORDS, word } from '../conntrack/tuple.js';
import { EBUSY, type ExpectPolicy, type Expectation } from '../conntrack/expect.js';
import { csumReplace2, recomputeTcpChecksum } from '../conntrack/checksum.js';
import { nfCtSeqadjSet } from '../conntrack/seqadj.js';
import { FtpType } from '../conntrack/helper_ftp.js';
import { NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC } from './proto.js';
import { NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED, NfNatRange2, type NfNat } from './core.js';

/** nf_nat_ftp_fmt_cmd(): the announcement's new text. */
function fmtCmd(type: FtpType, l3num: number, addr: Int32Array, at: number, port: number): string {
  const a = addr[at]!;
  switch (type) {
    case FtpType.PORT:
    case FtpType.PASV:
      return `${a >>> 24},${(a >>> 16) & 255},${(a >>> 8) & 255},${a & 255},${port >> 8},${port & 0xff}`;
    case FtpType.EPRT:
      if (l3num === NFPROTO_IPV4) return `|1|${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}|${port}|`;
      // %pI6: eight groups of four hex digits
      return `|2|${Array.from({ length: 8 }, (_, i) => ((addr[at + (i >> 1)]! >>> (i & 1 ? 0 : 16)) & 0xffff).toString(16).padStart(4, '0')).join(':')}|${port}|`;
    default:
      return `|||${port}|`;
  }
}

/** nf_nat_exp_find_port(): the announced port if the node can expect it, else up to 128 random ones above it; 0 when none. */
function findPort(nat: NfNat, exp: Expectation, port: number, policy: ExpectPolicy): number {
  const ct = nat.ct;
  const min = port;
  const range = 0xffff - port;
  let attempts = Math.min(range, 128);
  for (;;) {
    exp.tuple[T_PORTS] = port & 0xffff;
    const res = ct.expect.related(exp, policy, ct.jiffies, ct.sysctl.hz);
    if (res === 0) return port;
    if (res !== -EBUSY || --attempts < 0) break;
    // get_random_u32_below(range)
    port = min + Math.floor(((ct.rng.draw() >>> 0) / 0x100000000) * range);
  }
  return 0;
}

/**
 * __nf_nat_mangle_tcp_packet(): the payload bytes [matchoff, matchoff +
 * matchlen) from the TCP data at `dataoff` replaced by `rep`, the IP length
 * and the checksums made right, and the resize recorded for sequence
 * adjustment. False when the packet cannot grow (past 65535 bytes, or the
 * model's buffer).
 */
export function nfNatMangleTcpPacket(nat: NfNat, pkt: Packet, hook: number, e: number, ctinfo: number, thoff: number, matchoff: number, matchlen: number, rep: string): boolean {
  const d = pkt.data;
  const m = pkt.meta;
  const nh = m[M_NHOFF]!;
  const end = m[M_END]!;
  const dataoff = thoff + (d[thoff + 12]! >> 4) * 4;
  const grow = rep.length - matchlen;
  const newEnd = end + grow;
  if (grow > 0 && (newEnd - nh > 0xffff || newEnd > d.length)) return false;
  const at = dataoff + matchoff;
  d.copyWithin(at + rep.length, at + matchlen, end);
  for (let i = 0; i < rep.length; i++) d[at + i] = rep.charCodeAt(i);
  m[M_END] = newEnd;
  m[M_LEN] = m[M_LEN]! + grow;
  if (pkt.len === end) pkt.len = newEnd;
  const pf = (d[nh]! >> 4) === 4 ? NFPROTO_IPV4 : 10;
  if (pf === NFPROTO_IPV4) {
    // ip_send_check() of a header whose sum was right: the same as the sum moved for the new length
    const old = (d[nh + 2]! << 8) | d[nh + 3]!;
    const tot = newEnd - nh;
    d[nh + 2] = tot >> 8;
    d[nh + 3] = tot & 0xff;
    csumReplace2(d, nh + 10, old, tot);
  } else {
    const pl = newEnd - nh - 40;
    d[nh + 4] = pl >> 8;
    d[nh + 5] = pl & 0xff;
  }
  recomputeTcpChecksum(d, pf, nh, thoff, newEnd);
  // nf_nat_csum_recalc(): a packet leaving by a device that sums it (every device the model has) becomes
  // CHECKSUM_PARTIAL, so a capture on the node sees the pseudo-header sum; one for the node is summed whole
  if (hook === NF_INET_POST_ROUTING) m[M_FLAGS] = m[M_FLAGS]! | F_CSUM_PARTIAL;
  if (grow !== 0) {
    nfCtSeqadjSet(nat.ct, e, ctinfo, word(d, thoff + 4), grow);
  }
  return true;
}

/**
 * nf_nat_ftp(): the expectation `exp` (made by the FTP helper for the
 * packet of `ctinfo` on control connection `e`) is for the connection's
 * translated address and a port the node can expect; the announcement at
 * `matchoff` (`matchlen` bytes of the TCP data) is rewritten to name them
 * (at `hook`: POST_ROUTING, or LOCAL_IN for the node's own server).
 * Returns the verdict (NF_DROP: no port, or the packet cannot be rewritten).
 */
export function nfNatFtp(nat: NfNat, pkt: Packet, hook: number, e: number, ctinfo: number, type: FtpType, thoff: number, matchoff: number, matchlen: number,
  exp: Expectation, policy: ExpectPolicy, l3num: number): number {
  const ct = nat.ct;
  const dir = ctinfo >= IP_CT_IS_REPLY ? 1 : 0;
  // the connection will come from wherever this packet goes: !dir
  const newaddr = (2 * e + (dir ^ 1)) * TUPLE_WORDS + T_DST;
  exp.savedPort = exp.tuple[T_PORTS]! & 0xffff;
  exp.dir = dir ^ 1;
  exp.follow = true;
  const port = findPort(nat, exp, exp.savedPort, policy);
  if (port === 0) {
    ct.confirmDropWhy = 'the FTP NAT helper dropped it: all ports in use (nf_nat_ftp)';
    return NF_DROP;
  }
  if (!nfNatMangleTcpPacket(nat, pkt, hook, e, ctinfo, thoff, matchoff, matchlen, fmtCmd(type, l3num, ct.tuples, newaddr, port))) {
    ct.expect.unexpect(exp);
    ct.confirmDropWhy = 'the FTP NAT helper dropped it: cannot mangle packet (nf_nat_ftp)';
    return NF_DROP;
  }
  return NF_ACCEPT;
}

/**
 * nf_nat_follow_master(): the expected conntrack `e` gets its master's
 * translation: its source becomes where the master sends to, its
 * destination the master's other end and the port first announced.
 */
export function nfNatFollowMaster(nat: NfNat, e: number, exp: Expectation): void {
  const ct = nat.ct;
  const r = new NfNatRange2();
  const od = (2 * exp.master + (exp.dir ^ 1)) * TUPLE_WORDS;
  r.flags = NF_NAT_RANGE_MAP_IPS;
  for (let i = 0; i < 4; i++) r.minAddr[i] = r.maxAddr[i] = ct.tuples[od + T_DST + i]!;
  nat.nfNatSetupInfo(e, r, NF_NAT_MANIP_SRC);
  r.flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
  r.minProto = r.maxProto = exp.savedPort;
  for (let i = 0; i < 4; i++) r.minAddr[i] = r.maxAddr[i] = ct.tuples[od + T_SRC + i]!;
  nat.nfNatSetupInfo(e, r, NF_NAT_MANIP_DST);
}
