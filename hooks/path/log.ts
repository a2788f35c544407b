/**
 * The body of a netfilter log line, as nf_log_syslog prints it for LOG and
 * for TRACE (which logs with level 4 and NF_LOG_DEFAULT_MASK: TCP sequence
 * numbers, TCP options, IP options and UID).
 *
 * Mirrors net/netfilter/nf_log_syslog.c of Linux 6.18:
 *   nf_log_ip_packet() / nf_log_ip6_packet()  `IN=.. OUT=.. ` then the MAC header when there is an input device
 *   dump_ipv4_mac_header()                    `MAC=dst:src:type ` (hard_header_len bytes; empty without a link header)
 *   dump_ipv4_packet()                        SRC DST LEN TOS PREC TTL ID, CE/DF/MF, FRAG:, OPT (..), protocol part, MARK=
 *   nf_log_dump_tcp_header()                  PROTO=TCP SPT DPT SEQ ACK WINDOW RES flags URGP OPT (..)
 *   nf_log_dump_udp_header()                  PROTO=UDP SPT DPT LEN
 *   dump_ipv6_packet()                        fully expanded addresses (%pI6), LEN TC HOPLIMIT FLOWLBL, the extension
 *                                             headers as OPT ( .. ), TCP/UDP/ICMPv6 (errors quote the packet in [..])
 * Every field is followed by one space, the line too (as the kernel prints it).
 *   nf_log_dump_sk_uid_gid()                  UID= GID= of a packet whose socket has a file (NF_LOG_UID)
 *   nf_log_dump_packet_common()               `PHYSIN=.. PHYSOUT=.. ` after OUT= for a packet with nf_bridge_info
 *                                             (br_netfilter): the bridge port it came in on and the one it leaves
 *                                             by, each unless it is the hook's own device
 */
import {
  BRNF_PHYSOUT, BRNF_PRESENT, F_MAC_HEADER, M_BRNF, M_FLAGS, M_LEN, M_MACOFF, M_MARK, M_NFPROTO, M_NHOFF, M_PHYSINNAME, M_PHYSOUTNAME, M_SK, M_SKGID, M_SKUID, SK_FILE,
} from '../../vm/layout.js';
import { NFPROTO_IPV6 } from '../../core/netfilter.js';
import { formatIPv6Full } from '../../core/addr.js';
import { nameAt, type Packet } from '../../vm/packet.js';

/** NF_LOG_* flags (include/uapi/linux/netfilter/nf_log.h). */
export const NF_LOG_TCPSEQ = 0x01;
export const NF_LOG_TCPOPT = 0x02;
export const NF_LOG_IPOPT = 0x04;
export const NF_LOG_UID = 0x08;
export const NF_LOG_DEFAULT_MASK = 0x0f;

/** required_len[] of dump_ipv4_packet(): ICMP types whose body must be present. */
const ICMP_REQUIRED_LEN: ReadonlyMap<number, number> = new Map([
  [0, 8], [8, 8], [3, 8 + 20], [4, 8 + 20], [5, 8 + 20], [11, 8 + 20], [12, 8 + 20], [13, 20], [14, 20], [15, 8], [16, 8], [17, 12], [18, 12],
]);

const hex2 = (b: number) => b.toString(16).padStart(2, '0');
const HEX2 = (b: number) => b.toString(16).toUpperCase().padStart(2, '0');

/** `IN=.. OUT=.. [MAC=..] ` + the network part, for a packet at a hook. */
export function logBody(pkt: Packet, inDev: string, outDev: string, logflags = NF_LOG_DEFAULT_MASK): string {
  const m = pkt.meta;
  let s = `IN=${inDev} OUT=${outDev} `;
  const brnf = m[M_BRNF]!;
  if ((brnf & BRNF_PRESENT) !== 0) {
    // nf_bridge_get_physindev() / nf_bridge_get_physoutdev(), printed when they differ from in / out
    const physin = nameAt(pkt, M_PHYSINNAME);
    if (physin !== '' && physin !== inDev) s += `PHYSIN=${physin} `;
    const physout = (brnf & BRNF_PHYSOUT) !== 0 ? nameAt(pkt, M_PHYSOUTNAME) : '';
    if (physout !== '' && physout !== outDev) s += `PHYSOUT=${physout} `;
  }
  if (inDev !== '') {
    s += 'MAC=';
    const nh = m[M_NHOFF]!;
    if ((m[M_FLAGS]! & F_MAC_HEADER) !== 0 && nh > m[M_MACOFF]!) {
      // hard_header_len of an Ethernet device: dst, src, type (a VLAN tag is in skb->vlan_tci, not here).
      const mac = m[M_MACOFF]!;
      const d = pkt.data;
      const bytes = [...d.subarray(mac, mac + 12), d[nh - 2]!, d[nh - 1]!];
      s += bytes.map(hex2).join(':');
    }
    s += ' ';
  }
  return s + (m[M_NFPROTO] === NFPROTO_IPV6 ? dumpIPv6(pkt, m[M_NHOFF]!, logflags, true) : dumpIPv4(pkt, m[M_NHOFF]!, logflags, true));
}

/** nf_log_dump_sk_uid_gid(): `UID=.. GID=.. ` of a socket with a file (the file's fsuid and fsgid), nothing otherwise. */
function skUidGid(pkt: Packet): string {
  const m = pkt.meta;
  return m[M_SK] === SK_FILE ? `UID=${m[M_SKUID]! >>> 0} GID=${m[M_SKGID]! >>> 0} ` : '';
}

function u16(d: Uint8Array, o: number): number {
  return (d[o]! << 8) | d[o + 1]!;
}
function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}
function ip4(d: Uint8Array, o: number): string {
  return `${d[o]}.${d[o + 1]}.${d[o + 2]}.${d[o + 3]}`;
}

/** dump_ipv4_packet(); `top` is false for the packet quoted inside an ICMP error. */
function dumpIPv4(pkt: Packet, nh: number, logflags: number, top: boolean): string {
  const d = pkt.data;
  const end = pkt.meta[M_NHOFF]! + pkt.meta[M_LEN]!;
  if (nh + 20 > end) return 'TRUNCATED';
  const ihl = d[nh]! & 0x0f;
  const tos = d[nh + 1]!;
  const frag = u16(d, nh + 6);
  let s = `SRC=${ip4(d, nh + 12)} DST=${ip4(d, nh + 16)} `;
  s += `LEN=${u16(d, nh + 2)} TOS=0x${HEX2(tos & 0x1e)} PREC=0x${HEX2(tos & 0xe0)} TTL=${d[nh + 8]} ID=${u16(d, nh + 4)} `;
  if (frag & 0x8000) s += 'CE ';
  if (frag & 0x4000) s += 'DF ';
  if (frag & 0x2000) s += 'MF ';
  const off = frag & 0x1fff;
  if (off) s += `FRAG:${off} `;
  if ((logflags & NF_LOG_IPOPT) && ihl > 5) {
    if (nh + ihl * 4 > end) return s + 'TRUNCATED';
    s += `OPT (${[...d.subarray(nh + 20, nh + ihl * 4)].map(HEX2).join('')}) `;
  }
  const th = nh + ihl * 4;
  const proto = d[nh + 9]!;
  switch (proto) {
    case 6: {
      s += 'PROTO=TCP ';
      if (off) break;
      if (th + 20 > end) {
        s += `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
        return s;
      }
      s += `SPT=${u16(d, th)} DPT=${u16(d, th + 2)} `;
      if (logflags & NF_LOG_TCPSEQ) s += `SEQ=${u32(d, th + 4)} ACK=${u32(d, th + 8)} `;
      s += `WINDOW=${u16(d, th + 14)} `;
      // TCP_RESERVED_BITS (0x0F000000 of the flag word) >> 22
      s += `RES=0x${hex2((d[th + 12]! & 0x0f) << 2)} `;
      const f = d[th + 13]!;
      for (const [bit, name] of TCP_FLAG_WORDS) if (f & bit) s += `${name} `;
      s += `URGP=${u16(d, th + 18)} `;
      const doff = d[th + 12]! >> 4;
      if ((logflags & NF_LOG_TCPOPT) && doff * 4 > 20) {
        if (th + doff * 4 > end) {
          s += 'OPT (TRUNCATED)';
          return s;
        }
        s += `OPT (${[...d.subarray(th + 20, th + doff * 4)].map(HEX2).join('')}) `;
      }
      break;
    }
    case 17:
    case 136: {
      s += proto === 17 ? 'PROTO=UDP ' : 'PROTO=UDPLITE ';
      if (off) break;
      if (th + 8 > end) {
        s += `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
        return s;
      }
      s += `SPT=${u16(d, th)} DPT=${u16(d, th + 2)} LEN=${u16(d, th + 4)} `;
      break;
    }
    case 1: {
      s += 'PROTO=ICMP ';
      if (off) break;
      if (th + 4 > end) {
        s += `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
        break;
      }
      const type = d[th]!;
      const code = d[th + 1]!;
      s += `TYPE=${type} CODE=${code} `;
      const req = ICMP_REQUIRED_LEN.get(type);
      if (req !== undefined && end - th < req) {
        s += `INCOMPLETE [${end - th} bytes] `;
        break;
      }
      if (type === 0 || type === 8) s += `ID=${u16(d, th + 4)} SEQ=${u16(d, th + 6)} `;
      else if (type === 12) s += `PARAMETER=${d[th + 4]} `;
      else if (type === 5 || type === 3 || type === 4 || type === 11) {
        if (type === 5) s += `GATEWAY=${ip4(d, th + 4)} `;
        if (top) s += `[${dumpIPv4(pkt, th + 8, logflags, false)}] `;
        if (type === 3 && code === 4) s += `MTU=${u16(d, th + 6)} `;
      }
      break;
    }
    case 51: {
      s += 'PROTO=AH ';
      if (off) break;
      if (th + 8 > end) {
        s += `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
        break;
      }
      s += `SPI=0x${u32(d, th + 4).toString(16)} `;
      break;
    }
    case 50: {
      s += 'PROTO=ESP ';
      if (off) break;
      if (th + 8 > end) {
        s += `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
        break;
      }
      s += `SPI=0x${u32(d, th).toString(16)} `;
      break;
    }
    default:
      s += `PROTO=${proto} `;
  }
  if ((logflags & NF_LOG_UID) && top) s += skUidGid(pkt);
  if (top && pkt.meta[M_MARK] !== 0) s += `MARK=0x${(pkt.meta[M_MARK]! >>> 0).toString(16)} `;
  return s;
}

/** CWR ECE URG ACK PSH RST SYN FIN, in the kernel's order. */
const TCP_FLAG_WORDS: readonly (readonly [number, string])[] = [
  [0x80, 'CWR'], [0x40, 'ECE'], [0x20, 'URG'], [0x10, 'ACK'], [0x08, 'PSH'], [0x04, 'RST'], [0x02, 'SYN'], [0x01, 'FIN'],
];

/**
 * dump_ipv6_packet(): the fixed header, the extension headers as `OPT ( .. ) `
 * (NF_LOG_IPOPT; a fragment header as `FRAG:offset [INCOMPLETE ]ID:xxxxxxxx `),
 * then TCP/UDP/ICMPv6 (the packet quoted by an ICMPv6 error in brackets);
 * `recurse` is 0 for that quoted packet.
 */
function dumpIPv6(pkt: Packet, nh: number, logflags: number, recurse: boolean): string {
  const d = pkt.data;
  const base = pkt.meta[M_NHOFF]!;
  const end = base + pkt.meta[M_LEN]!;
  if (nh + 40 > end) return 'TRUNCATED';
  const w0 = u32(d, nh);
  let s = `SRC=${formatIPv6Full(d, nh + 8)} DST=${formatIPv6Full(d, nh + 24)} `;
  s += `LEN=${u16(d, nh + 4) + 40} TC=${(w0 >>> 20) & 0xff} HOPLIMIT=${d[nh + 7]} FLOWLBL=${w0 & 0xfffff} `;
  const opt = (logflags & NF_LOG_IPOPT) !== 0;
  let fragment = false;
  let ptr = nh + 40;
  let cur = d[nh + 6]!;
  // nf_ip6_ext_hdr(): hop-by-hop, routing, fragment, ESP, AH, destination options (not NONE).
  for (let n = 0; n < 64 && (cur === 0 || cur === 43 || cur === 44 || cur === 50 || cur === 51 || cur === 60); n++) {
    if (ptr + 2 > end) return s + 'TRUNCATED';
    if (opt) s += 'OPT ( ';
    let hdrlen: number;
    if (cur === 44) {
      s += 'FRAG:';
      if (ptr + 8 > end) return s + 'TRUNCATED ';
      const fo = u16(d, ptr + 2);
      s += `${fo & 0xfff8} `;
      if (fo & 1) s += 'INCOMPLETE ';
      s += `ID:${u32(d, ptr + 4).toString(16).padStart(8, '0')} `;
      if (fo & 0xfff8) fragment = true;
      hdrlen = 8;
    } else if (cur === 0 || cur === 43 || cur === 60) {
      if (fragment) return opt ? s + ')' : s;
      hdrlen = (d[ptr + 1]! + 1) << 3;
    } else if (cur === 51) {
      if (opt) {
        s += 'AH ';
        if (fragment) return s + ')';
        if (ptr + 12 > end) return s + `INCOMPLETE [${Math.max(0, end - ptr)} bytes] )`;
        s += `SPI=0x${u32(d, ptr + 4).toString(16)} `;
      }
      hdrlen = (d[ptr + 1]! + 2) << 2;
    } else {
      // ESP: nothing after it can be read.
      if (opt) {
        s += 'ESP ';
        if (fragment) return s + ')';
        if (ptr + 8 > end) return s + `INCOMPLETE [${Math.max(0, end - ptr)} bytes] )`;
        s += `SPI=0x${u32(d, ptr).toString(16)} )`;
      }
      return s;
    }
    if (opt) s += ') ';
    cur = d[ptr]!;
    ptr += hdrlen;
  }
  const th = ptr;
  if (cur === 6) {
    // nf_log_dump_tcp_header()
    s += 'PROTO=TCP ';
    if (!fragment) {
      if (th + 20 > end) return s + `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
      s += `SPT=${u16(d, th)} DPT=${u16(d, th + 2)} `;
      if (logflags & NF_LOG_TCPSEQ) s += `SEQ=${u32(d, th + 4)} ACK=${u32(d, th + 8)} `;
      s += `WINDOW=${u16(d, th + 14)} RES=0x${hex2((d[th + 12]! & 0x0f) << 2)} `;
      for (const [bit, name] of TCP_FLAG_WORDS) if (d[th + 13]! & bit) s += `${name} `;
      s += `URGP=${u16(d, th + 18)} `;
      const doff = d[th + 12]! >> 4;
      if ((logflags & NF_LOG_TCPOPT) && doff * 4 > 20) {
        if (th + doff * 4 > end) return s + 'OPT (TRUNCATED)';
        s += `OPT (${[...d.subarray(th + 20, th + doff * 4)].map(HEX2).join('')}) `;
      }
    }
  } else if (cur === 17 || cur === 136) {
    // nf_log_dump_udp_header()
    s += cur === 17 ? 'PROTO=UDP ' : 'PROTO=UDPLITE ';
    if (!fragment) {
      if (th + 8 > end) return s + `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
      s += `SPT=${u16(d, th)} DPT=${u16(d, th + 2)} LEN=${u16(d, th + 4)} `;
    }
  } else if (cur === 58) {
    s += 'PROTO=ICMPv6 ';
    if (!fragment) {
      if (th + 8 > end) return s + `INCOMPLETE [${Math.max(0, end - th)} bytes] `;
      const type = d[th]!;
      s += `TYPE=${type} CODE=${d[th + 1]} `;
      if (type === 128 || type === 129) s += `ID=${u16(d, th + 4)} SEQ=${u16(d, th + 6)} `;
      else if (type === 1 || type === 2 || type === 3 || type === 4) {
        if (type === 4) s += `POINTER=${u32(d, th + 4).toString(16).padStart(8, '0')} `;
        if (recurse) s += `[${dumpIPv6(pkt, th + 8, logflags, false)}] `;
        if (type === 2) s += `MTU=${u32(d, th + 4)} `;
      }
    }
  } else s += `PROTO=${cur} `;
  if ((logflags & NF_LOG_UID) && recurse) s += skUidGid(pkt);
  if (recurse && pkt.meta[M_MARK] !== 0) s += `MARK=0x${(pkt.meta[M_MARK]! >>> 0).toString(16)} `;
  return s;
}
