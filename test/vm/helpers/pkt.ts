/**
 * A layered packet builder for VM tests (bpfilter e2e style):
 *
 *   frame(eth(), ipv4({ src: '192.168.1.7' }), tcp({ dport: 22 }))
 *   frame(ipv6(), ext('hbh'), ext('frag', { offset: 0 }), udp({ dport: 53 }))
 *
 * Lengths, protocol numbers and next-header chains are filled in from the
 * layers above unless given.
 */
import { M_MARK } from '../../../vm/layout.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../../vm/packet.js';

export interface Layer {
  kind?: string;
  /** Number identifying this layer in an Ethernet/VLAN parent (ethertype). */
  ethertype: number;
  /** Number identifying this layer in an IP / extension-header parent. */
  ipproto: number;
  build(inner: Uint8Array, above: Layer | undefined): Uint8Array;
}

export function ip4(a: string): number[] {
  return a.split('.').map((x) => Number(x));
}

export function ip6(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':').filter(Boolean) : [];
  const t = tail ? tail.split(':').filter(Boolean) : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]);
}

function cat(...parts: ArrayLike<number>[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<number>, at);
    at += p.length;
  }
  return out;
}

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];

export function eth(o: { dst?: number[]; src?: number[]; type?: number } = {}): Layer {
  return {
    kind: 'eth',
    ethertype: -1,
    ipproto: -1,
    build: (inner, above) =>
      cat(o.dst ?? [0x02, 0, 0, 0, 0, 1], o.src ?? [0x02, 0, 0, 0, 0, 2], be16(o.type ?? above?.ethertype ?? 0x0800), inner),
  };
}

export function vlan(o: { vid?: number; tpid?: number } = {}): Layer {
  // Placed after eth(): eth's type field carries the TPID, this tag carries the inner type.
  return {
    ethertype: o.tpid ?? 0x8100,
    ipproto: -1,
    build: (inner, above) => cat(be16(o.vid ?? 1), be16(above?.ethertype ?? 0x0800), inner),
  };
}

export interface Ipv4Opts {
  src?: string;
  dst?: string;
  proto?: number;
  ihl?: number;
  version?: number;
  ttl?: number;
  /** Fragment offset in 8-byte units. */
  fragoff?: number;
  mf?: boolean;
  totLen?: number;
  options?: number[];
}

export function ipv4(o: Ipv4Opts = {}): Layer {
  return {
    ethertype: 0x0800,
    ipproto: 4,
    build: (inner, above) => {
      const opts = o.options ?? [];
      const ihl = o.ihl ?? 5 + Math.ceil(opts.length / 4);
      const optBytes = [...opts];
      while (optBytes.length < (ihl - 5) * 4) optBytes.push(0);
      const hdrLen = 20 + optBytes.length;
      const tot = o.totLen ?? hdrLen + inner.length;
      const frag = ((o.mf ? 0x2000 : 0) | (o.fragoff ?? 0)) & 0xffff;
      return cat(
        [((o.version ?? 4) << 4) | (ihl & 0xf), 0], be16(tot), [0, 1], be16(frag), [o.ttl ?? 64, o.proto ?? (above && above.ipproto >= 0 ? above.ipproto : 0), 0, 0],
        ip4(o.src ?? '10.0.0.1'), ip4(o.dst ?? '10.0.0.2'), optBytes, inner,
      );
    },
  };
}

export function ipv6(o: { src?: string; dst?: string; nexthdr?: number; payloadLen?: number } = {}): Layer {
  return {
    ethertype: 0x86dd,
    ipproto: 41,
    build: (inner, above) =>
      cat([0x60, 0, 0, 0], be16(o.payloadLen ?? inner.length), [o.nexthdr ?? (above && above.ipproto >= 0 ? above.ipproto : 59), 64], ip6(o.src ?? '2001:db8::1'), ip6(o.dst ?? '2001:db8::2'), inner),
  };
}

/** IPv6 extension headers: hop-by-hop (0), routing (43), fragment (44), AH (51), destination options (60). */
export function ext(kind: 'hbh' | 'rt' | 'frag' | 'ah' | 'dst', o: { offset?: number; mf?: boolean; len?: number } = {}): Layer {
  const num = { hbh: 0, rt: 43, frag: 44, ah: 51, dst: 60 }[kind];
  return {
    ethertype: -1,
    ipproto: num,
    build: (inner, above) => {
      const nh = above && above.ipproto >= 0 ? above.ipproto : 59;
      if (kind === 'frag') {
        const fo = (((o.offset ?? 0) << 3) | (o.mf ? 1 : 0)) & 0xffff;
        return cat([nh, 0], be16(fo), [0, 0, 0, 1], inner);
      }
      if (kind === 'ah') {
        const words = o.len ?? 4; // payload len in 4-byte units minus 2
        return cat([nh, words], new Uint8Array((words + 2) * 4 - 2), inner);
      }
      const l = o.len ?? 0; // hdr ext len in 8-byte units minus 1
      return cat([nh, l], new Uint8Array((l + 1) * 8 - 2), inner);
    },
  };
}

export function tcp(o: { sport?: number; dport?: number; flags?: number; doff?: number; truncate?: number } = {}): Layer {
  return {
    ethertype: -1,
    ipproto: 6,
    build: (inner) => {
      const h = cat(be16(o.sport ?? 40000), be16(o.dport ?? 80), [0, 0, 0, 1, 0, 0, 0, 0], [((o.doff ?? 5) << 4) & 0xf0, o.flags ?? 0x02], be16(64240), [0, 0, 0, 0], inner);
      return o.truncate !== undefined ? h.slice(0, o.truncate) : h;
    },
  };
}

export function udp(o: { sport?: number; dport?: number } = {}): Layer {
  return {
    ethertype: -1,
    ipproto: 17,
    build: (inner) => cat(be16(o.sport ?? 40000), be16(o.dport ?? 53), be16(8 + inner.length), [0, 0], inner),
  };
}

export function raw(bytes: ArrayLike<number>): Layer {
  return { ethertype: -1, ipproto: -1, build: (inner) => cat(bytes, inner) };
}

/** Serialises the layers, outermost first. */
export function frame(...layers: Layer[]): Uint8Array {
  let inner: Uint8Array = new Uint8Array(0);
  for (let i = layers.length - 1; i >= 0; i--) inner = layers[i]!.build(inner, layers[i + 1]);
  return inner;
}

export interface PacketOpts {
  iif?: [number, string];
  oif?: [number, string];
  mark?: number;
}

/** A decoded Packet: an Ethernet frame when the first layer is eth(), raw IP otherwise. */
export function packet(layers: Layer[], o: PacketOpts = {}): Packet {
  const p = new Packet(4096);
  p.setFrame(frame(...layers));
  decodePacket(p, layers[0]!.kind === 'eth' ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
  if (o.iif) setDevice(p, 'in', o.iif[0], o.iif[1]);
  if (o.oif) setDevice(p, 'out', o.oif[0], o.oif[1]);
  if (o.mark !== undefined) p.meta[M_MARK] = o.mark;
  return p;
}
