/**
 * Packets for conntrack and NAT tests: raw IPv4/IPv6 frames with TCP (flags,
 * sequence numbers, window, options, payload), UDP, UDP-Lite, ICMP/ICMPv6
 * (queries and errors quoting a packet), SCTP (chunks, CRC32c) and GRE, all
 * checksums right unless asked otherwise; and a driver that runs a packet
 * through conntrack as a forwarded packet does (PRE_ROUTING, confirm at
 * POST_ROUTING, release).
 */
import { crc32c, inetChecksum } from '../../hooks/input/spec.js';
import { parseIPv6 } from '../../hooks/route/addr.js';
import { NfConntrack } from '../../hooks/conntrack/core.js';
import { LINKTYPE_RAW, Packet, decodePacket } from '../../vm/packet.js';
import { M_CT_DIR, M_CT_ID, M_CT_MARK, M_CT_STATE, M_CT_STATUS } from '../../vm/layout.js';
import { NF_INET_PRE_ROUTING } from '../../core/netfilter.js';

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20;

export interface L4 {
  proto: 'tcp' | 'udp' | 'udplite' | 'icmp' | 'icmpv6' | 'sctp' | 'gre' | number;
  sport?: number;
  dport?: number;
  // TCP
  flags?: number;
  seq?: number;
  ack?: number;
  win?: number;
  /** TCP option bytes (padded to 4 with NOPs... callers pass a multiple of 4). */
  opts?: number[];
  // ICMP
  type?: number;
  code?: number;
  id?: number;
  /** Bytes after the 8-byte ICMP header (an error's quoted packet). */
  inner?: Uint8Array;
  // SCTP
  vtag?: number;
  /** Chunks as [type, flags, value bytes]; lengths are filled in. */
  chunks?: Array<[number, number, number[]]>;
  // GRE
  greFlags?: number;
  /** Payload length (zeros), or the bytes. */
  payload?: number | Uint8Array;
  /** Break the transport checksum. */
  badsum?: boolean;
  /** UDP: send with no checksum (0). */
  nosum?: boolean;
}

function addrBytes(a: string): Uint8Array {
  if (a.includes(':')) {
    const w = parseIPv6(a);
    if (!w) throw new Error(`bad address ${a}`);
    const b = new Uint8Array(16);
    for (let i = 0; i < 4; i++) { b[4 * i] = w[i]! >>> 24; b[4 * i + 1] = (w[i]! >>> 16) & 255; b[4 * i + 2] = (w[i]! >>> 8) & 255; b[4 * i + 3] = w[i]! & 255; }
    return b;
  }
  return Uint8Array.from(a.split('.').map(Number));
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, udplite: 136, icmp: 1, icmpv6: 58, sctp: 132, gre: 47 };

function sum(d: Uint8Array, from: number, to: number): number {
  return ~inetChecksum(d, from, to) & 0xffff;
}

/** A raw IP packet (no link header): `src > dst` with the transport described by l4. */
export function ipPacket(src: string, dst: string, l4: L4, o: { ttl?: number; frag?: number; ipid?: number } = {}): Uint8Array {
  const v6 = src.includes(':');
  const sa = addrBytes(src), da = addrBytes(dst);
  const proto = typeof l4.proto === 'number' ? l4.proto : PROTO[l4.proto]!;
  const payload = typeof l4.payload === 'number' ? new Uint8Array(l4.payload) : l4.payload ?? new Uint8Array(0);
  let th: Uint8Array;
  switch (proto) {
    case 6: {
      const opts = l4.opts ?? [];
      const hl = 20 + opts.length;
      th = new Uint8Array(hl + payload.length);
      const dv = new DataView(th.buffer);
      dv.setUint16(0, l4.sport ?? 40000);
      dv.setUint16(2, l4.dport ?? 80);
      dv.setUint32(4, (l4.seq ?? 0) >>> 0);
      dv.setUint32(8, (l4.ack ?? 0) >>> 0);
      th[12] = (hl / 4) << 4;
      th[13] = l4.flags ?? SYN;
      dv.setUint16(14, l4.win ?? 64240);
      th.set(opts, 20);
      th.set(payload, hl);
      break;
    }
    case 17:
    case 136: {
      th = new Uint8Array(8 + payload.length);
      const dv = new DataView(th.buffer);
      dv.setUint16(0, l4.sport ?? 40000);
      dv.setUint16(2, l4.dport ?? 53);
      dv.setUint16(4, proto === 136 ? 0 : th.length);
      th.set(payload, 8);
      break;
    }
    case 1:
    case 58: {
      const inner = l4.inner ?? payload;
      th = new Uint8Array(8 + inner.length);
      th[0] = l4.type ?? (proto === 1 ? 8 : 128);
      th[1] = l4.code ?? 0;
      new DataView(th.buffer).setUint16(4, l4.id ?? 1);
      new DataView(th.buffer).setUint16(6, 1);
      th.set(inner, 8);
      break;
    }
    case 132: {
      const chunks = (l4.chunks ?? []).map(([t, f, v]) => {
        const len = 4 + v.length;
        const c = new Uint8Array((len + 3) & ~3);
        c[0] = t; c[1] = f; c[2] = len >> 8; c[3] = len & 255;
        c.set(v, 4);
        return c;
      });
      const total = 12 + chunks.reduce((n, c) => n + c.length, 0);
      th = new Uint8Array(total);
      const dv = new DataView(th.buffer);
      dv.setUint16(0, l4.sport ?? 40000);
      dv.setUint16(2, l4.dport ?? 5000);
      dv.setUint32(4, (l4.vtag ?? 0) >>> 0);
      let at = 12;
      for (const c of chunks) { th.set(c, at); at += c.length; }
      break;
    }
    case 47: {
      th = new Uint8Array(8 + payload.length);
      th[0] = (l4.greFlags ?? 0) >> 8;
      th[1] = (l4.greFlags ?? 0) & 255;
      th[2] = 0x08; // IPv4 payload
      th.set(payload, 4);
      break;
    }
    default:
      th = payload;
  }
  const hl = v6 ? 40 : 20;
  const p = new Uint8Array(hl + th.length);
  const dv = new DataView(p.buffer);
  if (v6) {
    p[0] = 0x60;
    dv.setUint16(4, th.length);
    p[6] = proto;
    p[7] = o.ttl ?? 64;
    p.set(sa, 8);
    p.set(da, 24);
  } else {
    p[0] = 0x45;
    dv.setUint16(2, p.length);
    dv.setUint16(4, o.ipid ?? 1);
    dv.setUint16(6, o.frag ?? 0);
    p[8] = o.ttl ?? 64;
    p[9] = proto;
    p.set(sa, 12);
    p.set(da, 16);
    dv.setUint16(10, inetChecksum(p, 0, 20));
  }
  p.set(th, hl);
  const t = hl;
  const len = th.length;
  const pseudo = sum(p, v6 ? 8 : 12, v6 ? 40 : 20) + proto + (len >>> 16) + (len & 0xffff);
  if (proto === 6) dv.setUint16(t + 16, inetChecksum(p, t, p.length, pseudo) ^ (l4.badsum ? 1 : 0));
  else if (proto === 17) dv.setUint16(t + 6, l4.nosum ? 0 : (inetChecksum(p, t, p.length, pseudo) || 0xffff) ^ (l4.badsum ? 1 : 0));
  else if (proto === 136) dv.setUint16(t + 6, (inetChecksum(p, t, p.length, sum(p, v6 ? 8 : 12, v6 ? 40 : 20) + 17 + (len >>> 16) + (len & 0xffff)) || 0xffff) ^ (l4.badsum ? 1 : 0));
  else if (proto === 1) dv.setUint16(t + 2, inetChecksum(p, t, p.length) ^ (l4.badsum ? 1 : 0));
  else if (proto === 58) dv.setUint16(t + 2, inetChecksum(p, t, p.length, pseudo) ^ (l4.badsum ? 1 : 0));
  else if (proto === 132) {
    const c = crc32c(p, t, p.length) ^ (l4.badsum ? 1 : 0);
    p[t + 8] = c & 255; p[t + 9] = (c >>> 8) & 255; p[t + 10] = (c >>> 16) & 255; p[t + 11] = c >>> 24;
  }
  return p;
}

/** A decoded Packet of raw IP bytes. */
export function packet(bytes: Uint8Array): Packet {
  const p = new Packet(Math.max(2048, bytes.length));
  p.setFrame(bytes);
  decodePacket(p, LINKTYPE_RAW);
  return p;
}

/** What conntrack said about one packet. */
export interface CtSeen {
  verdict: number;
  confirm: number;
  id: number;
  state: number;
  dir: number;
  status: number;
  mark: number;
}

/** Runs bytes through conntrack as a forwarded packet: PRE_ROUTING conntrack, POST_ROUTING confirm, release. */
export function forward(ct: NfConntrack, bytes: Uint8Array, nowNs: number, hook = NF_INET_PRE_ROUTING): CtSeen {
  const p = packet(bytes);
  const verdict = ct.nfConntrackIn(p, hook, nowNs);
  const m = p.meta;
  const seen = { verdict, confirm: 0, id: m[M_CT_ID]!, state: m[M_CT_STATE]!, dir: m[M_CT_DIR]!, status: m[M_CT_STATUS]!, mark: m[M_CT_MARK]! };
  seen.confirm = verdict === 1 ? ct.nfConfirm(p, nowNs) : 0;
  seen.status = m[M_CT_STATUS]!;
  ct.nfResetCt(p);
  return seen;
}

/** Seconds to nanoseconds. */
export const sec = (s: number): number => s * 1e9;
