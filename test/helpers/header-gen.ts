/**
 * Generators for the header and payload matches and the packet-rewriting
 * targets: IPv4 and IPv6 frames with the headers those modules read (IPv6
 * extension header chains with options, routing headers of type 0 and 4,
 * fragment and AH headers; TCP with options, UDP, SCTP chunks, DCCP, ESP,
 * IPComp, mobility header, ICMP), payloads that hold the strings the rules
 * look for, truncated headers and later fragments.
 */
import fc from 'fast-check';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, decodePacket, setDevice } from '../../vm/packet.js';
import { M_HOOK, M_NFPROTO } from '../../vm/layout.js';

export type Fam = 'ip' | 'ip6';

export const WORDS = ['GET /', 'abc', 'ABC', 'xyzzy', 'aaab', 'ab', '\u00e0\u00c0', 'GET / HTTP/1.1\r\n'];
export const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/** The EUI-64 source address derived from MAC (fe80::5054:ff:fe12:3456). */
export const EUI_SRC = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56];
export const SID = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

export interface HdrPacket {
  fam: Fam;
  ethernet: boolean;
  hook: number;
  bytes: number[];
}

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.oneof(pick([0, 22, 80, 443, 1024, 5060, 65535]), fc.integer({ min: 0, max: 65535 }));
const u32 = fc.oneof(pick([0, 1, 0x100, 0x10000, 0xffffffff]), fc.nat());

const be16 = (v: number) => [(v >> 8) & 255, v & 255];
const be32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const text = (s: string) => [...Buffer.from(s, 'latin1')];

const payload = fc.oneof(
  fc.array(u8, { maxLength: 24 }),
  fc.tuple(fc.array(u8, { maxLength: 8 }), pick(WORDS), fc.array(u8, { maxLength: 8 })).map(([a, w, b]) => [...a, ...text(w), ...b]),
);

const tcpOpts = fc.array(fc.oneof(
  fc.constant([1]),
  fc.constant([0]),
  pick([536, 1200, 1460, 9000]).map((m) => [2, 4, ...be16(m)]),
  fc.constant([4, 2]),
  fc.constant([3, 3, 7]),
  fc.constant([8, 10, 0, 0, 0, 1, 0, 0, 0, 0]),
  fc.constant([2, 0]),
), { maxLength: 4 }).map((os) => {
  const b = os.flat();
  while (b.length % 4) b.push(0);
  return b.slice(0, 40);
});

const tcp = fc.tuple(u16, u16, fc.integer({ min: 0, max: 255 }), tcpOpts, payload).map(([s, d, fl, o, p]) =>
  [...be16(s), ...be16(d), 0, 0, 0, 1, 0, 0, 0, 0, ((5 + o.length / 4) << 4), fl, 0xfa, 0xf0, 0, 0, 0, 0, ...o, ...p]);
const udp = fc.tuple(u16, u16, payload).map(([s, d, p]) => [...be16(s), ...be16(d), ...be16(8 + p.length), 0, 0, ...p]);
const chunk = fc.tuple(pick([0, 1, 2, 3, 4, 6, 7, 10, 11, 14, 64, 193]), u8, fc.integer({ min: 0, max: 12 }), fc.boolean()).map(([t, f, n, zero]) =>
  [t, f, ...be16(zero ? 0 : 4 + n), ...new Array<number>(n + ((4 - (n % 4)) % 4)).fill(0x5a)]);
const sctp = fc.tuple(u16, u16, fc.array(chunk, { maxLength: 4 })).map(([s, d, cs]) => [...be16(s), ...be16(d), 0, 0, 0, 1, 0, 0, 0, 0, ...cs.flat()]);
const dccp = fc.tuple(u16, u16, fc.integer({ min: 0, max: 15 }), fc.boolean(), fc.integer({ min: 0, max: 12 }), fc.array(pick([0, 1, 2, 32, 33, 44]), { maxLength: 6 })).map(([s, d, type, x, doffAdd, opts]) => {
  const hl = 12 + (x ? 4 : 0) + (type === 2 ? 0 : [3, 4, 5, 6, 8, 9].includes(type) ? 8 : type === 0 ? 4 : 12);
  const body = [...new Array<number>(hl - 12).fill(0), ...opts.map((o) => (o >= 32 ? [o, 3, 9] : [o])).flat()];
  while ((12 + body.length) % 4) body.push(0);
  const doff = Math.min(255, (12 + body.length) / 4 + (doffAdd > 9 ? -1 : 0));
  return [...be16(s), ...be16(d), doff, 0, 0, 0, ((type & 15) << 1) | (x ? 1 : 0), 0, 0, 1, ...body];
});
const esp = fc.tuple(u32, payload).map(([spi, p]) => [...be32(spi), 0, 0, 0, 1, ...p]);
const ipcomp = fc.tuple(u16, payload).map(([cpi, p]) => [4, 0, ...be16(cpi), ...p]);
const mh = fc.tuple(pick([59, 59, 59, 6]), fc.integer({ min: 0, max: 12 })).map(([proto, type]) => [proto, 1, type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const icmp = fc.tuple(u8, u8).map(([t, c]) => [t, c, 0, 0, 0, 1, 0, 1]);

/** An upper-layer header: [protocol, bytes]. */
const l4 = fc.oneof(
  { weight: 3, arbitrary: tcp.map((b) => [6, b] as const) },
  { weight: 2, arbitrary: udp.map((b) => [17, b] as const) },
  { weight: 2, arbitrary: sctp.map((b) => [132, b] as const) },
  { weight: 2, arbitrary: dccp.map((b) => [33, b] as const) },
  { weight: 1, arbitrary: esp.map((b) => [50, b] as const) },
  { weight: 1, arbitrary: fc.tuple(u32, fc.integer({ min: 1, max: 4 })).map(([spi, w]) => [51, [59, w, 0, 0, ...be32(spi), ...new Array<number>((w + 2) * 4 - 8).fill(0)]] as const) },
  { weight: 1, arbitrary: ipcomp.map((b) => [108, b] as const) },
  { weight: 1, arbitrary: mh.map((b) => [135, b] as const) },
  { weight: 1, arbitrary: icmp.map((b) => [1, b] as const) },
  { weight: 1, arbitrary: fc.constant([59, []] as const) },
);

/** TLV options of a hop-by-hop / destination header, padded to 8-byte units. */
const tlvOpts = fc.array(fc.oneof(fc.constant([0]), fc.constant([1, 0]), fc.constant([1, 2, 0, 0]), fc.constant([5, 2, 0, 0]), fc.constant([0xc2, 4, 0, 1, 0, 0])), { maxLength: 3 }).map((os) => {
  const b = os.flat();
  while ((b.length + 2) % 8) b.push(0);
  return b;
});

type Ext = { num: number; build: (next: number) => number[] };
const ext6: fc.Arbitrary<Ext> = fc.oneof(
  tlvOpts.map((o) => ({ num: 0, build: (n: number) => [n, (o.length + 2) / 8 - 1, ...o] })),
  tlvOpts.map((o) => ({ num: 60, build: (n: number) => [n, (o.length + 2) / 8 - 1, ...o] })),
  // type 0 routing header with addresses
  fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 }), fc.boolean()).map(([na, sl, res]) => ({
    num: 43,
    build: (n: number) => [n, na * 2, 0, sl, ...(res ? [0, 0, 0, 1] : [0, 0, 0, 0]), ...Array.from({ length: na }, (_, i) => [...SID.slice(0, 15), 1 + i]).flat()],
  })),
  // segment routing header (type 4)
  fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 3 }), u16).map(([ns, sl, tag]) => ({
    num: 43,
    build: (n: number) => [n, ns * 2, 4, sl, ns - 1, 0, ...be16(tag), ...Array.from({ length: ns }, (_, i) => [...SID.slice(0, 15), 1 + i]).flat()],
  })),
  fc.tuple(fc.integer({ min: 0, max: 400 }), fc.boolean(), u32, fc.boolean()).map(([off, mf, id, res]) => ({
    num: 44,
    build: (n: number) => [n, res ? 1 : 0, ...be16(((off << 3) | (mf ? 1 : 0) | (res ? 2 : 0)) & 0xffff), ...be32(id)],
  })),
  fc.tuple(u32, fc.integer({ min: 1, max: 4 })).map(([spi, w]) => ({ num: 51, build: (n: number) => [n, w, 0, 0, ...be32(spi), ...new Array<number>((w + 2) * 4 - 8).fill(0)] })),
);

/** A frame of family `fam` reaching hook `hooks` (one of). */
export function hdrPacket(fam: Fam, hooks: readonly number[]): fc.Arbitrary<HdrPacket> {
  return fc.record({
    hook: pick(hooks),
    ethernet: fc.boolean(),
    l4,
    exts: fam === 'ip6' ? fc.array(ext6, { maxLength: 3 }) : fc.constant([] as Ext[]),
    tos: pick([0, 0x10, 0xb8, 0x03, 0x02, 0x01, 0x28]),
    ttl: pick([0, 1, 2, 63, 64, 255]),
    frag: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: pick([1, 185]) }),
    eui: fc.boolean(),
    cut: fc.option(fc.integer({ min: 0, max: 30 }), { freq: 6 }),
  }).map((g) => {
    let body: number[] = g.l4[1].slice();
    let next: number = g.l4[0];
    if (fam === 'ip6' && next === 1) next = 58;
    for (let i = g.exts.length - 1; i >= 0; i--) {
      body = [...g.exts[i]!.build(next), ...body];
      next = g.exts[i]!.num;
    }
    if (g.cut !== null) body = body.slice(0, g.cut);
    let l3: number[];
    if (fam === 'ip') {
      const len = 20 + body.length;
      l3 = [0x45, g.tos, ...be16(len), 0, 1, ...be16(g.frag), g.ttl, next, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, ...body];
    } else {
      const src = g.eui ? EUI_SRC : [...SID.slice(0, 15), 9];
      l3 = [0x60 | (g.tos >> 4), (g.tos & 15) << 4, 0, 0, ...be16(body.length), next, g.ttl, ...src, ...SID, ...body];
    }
    const bytes = g.ethernet ? [0x02, 0, 0, 0, 0, 1, ...MAC, ...(fam === 'ip' ? [8, 0] : [0x86, 0xdd]), ...l3] : l3;
    return { fam, ethernet: g.ethernet, hook: g.hook, bytes };
  });
}

/** The packet as the engines take it (decoded, with its hook and devices). */
export function hdrPacketOf(p: HdrPacket): Packet {
  const pkt = new Packet(2048);
  pkt.setFrame(p.bytes);
  decodePacket(pkt, p.ethernet ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
  pkt.meta[M_NFPROTO] = p.fam === 'ip' ? 2 : 10;
  pkt.meta[M_HOOK] = p.hook;
  // device groups (ip -d link) vary with the frame: 0, 1 or 2, and 0xc for the output device of every fourth
  if (p.hook <= 2) setDevice(pkt, 'in', 2, 'eth0', 1, p.bytes.length % 3);
  if (p.hook >= 2) setDevice(pkt, 'out', 3, 'eth1', 1, p.bytes.length % 4 === 0 ? 0xc : p.bytes.length % 3);
  return pkt;
}
