/**
 * The packets the fuzzer and the diff try: a flat description that prints
 * as a packet spec (hooks/input/spec.ts, what `nfvm trace --packet` takes),
 * drawn from a ruleset's constants, and shrunk field by field towards the
 * spec's defaults while a property still fails.
 */
import { formatIPv4 } from '../core/addr.js';
import { parseSpec, specPacket } from '../hooks/input/spec.js';
import type { Packet } from '../vm/packet.js';
import type { Constants } from './constants.js';
import { chance, pick, type Rand } from './rand.js';

export interface FuzzPacket {
  /** An IPv6 packet (addresses src6, dst6) rather than IPv4 (src, dst). */
  v6: boolean;
  /** 6 tcp, 17 udp, 1 icmp (IPv4), 58 icmpv6 (IPv6), other: `ip proto N`. */
  proto: number;
  src: number;
  dst: number;
  /** IPv6 addresses as ip6tables prints them. */
  src6: string;
  dst6: string;
  sport: number;
  dport: number;
  /** TCP flags byte. */
  flags: number;
  icmpType: number;
  icmpCode: number;
  ttl: number;
  tos: number;
  /** A non-first fragment (offset 8 bytes). */
  frag: boolean;
  /** IPv6 extension headers as spec clauses (`hbh rt type 0 segsleft 1`), '' for none. */
  ext: string;
  len: number;
  /** '' none; with `local` the packet is sent from the node. */
  iif: string;
  oif: string;
  local: boolean;
  mark: number;
  ct: '' | 'new' | 'established' | 'related' | 'invalid' | 'untracked';
}

/** The spec's defaults: what a shrunk field goes back to. */
export const DEFAULT_PACKET: Readonly<FuzzPacket> = {
  v6: false, proto: 6, src: 0x0a000002, dst: 0x0a000001, src6: '2001:db8::2', dst6: '2001:db8::1', sport: 40000, dport: 80, flags: 0x02, icmpType: 8, icmpCode: 0, ttl: 64, tos: 0,
  frag: false, ext: '', len: 0, iif: '', oif: '', local: false, mark: 0, ct: '',
};

const FLAG_WORDS: readonly [number, string][] = [[0x01, 'fin'], [0x02, 'syn'], [0x04, 'rst'], [0x08, 'psh'], [0x10, 'ack'], [0x20, 'urg'], [0x40, 'ece'], [0x80, 'cwr']];

function ip(v: number): string {
  return formatIPv4([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

/** The packet as a spec (defaults left out). */
export function specText(p: FuzzPacket): string {
  const ports = (p.proto === 6 || p.proto === 17) && !p.frag;
  const icmp = p.v6 ? 58 : 1;
  const head = p.proto === 6 ? 'tcp' : p.proto === 17 ? 'udp' : p.proto === icmp ? (p.v6 ? 'icmpv6' : 'icmp') : `${p.v6 ? 'ip6' : 'ip'} proto ${p.proto}`;
  const addr = (v4: number, v6: string, port: number) => (p.v6 ? (ports ? `[${v6}]:${port}` : v6) : ports ? `${ip(v4)}:${port}` : ip(v4));
  const out = [head, addr(p.src, p.src6, p.sport), '>', addr(p.dst, p.dst6, p.dport)];
  if (p.proto === 6 && !p.frag) {
    const words = FLAG_WORDS.filter(([b]) => p.flags & b).map(([, w]) => w);
    const dflt = p.ct === 'established' || p.ct === 'related' ? 0x10 : 0x02;
    if (p.flags !== dflt) out.push(words.length ? words.join(',') : 'flags 0');
  }
  if (p.proto === icmp && !p.frag && (p.icmpType !== (p.v6 ? 128 : 8) || p.icmpCode !== 0)) out.push(`type ${p.icmpType} code ${p.icmpCode}`);
  if (p.ttl !== 64) out.push(`${p.v6 ? 'hl' : 'ttl'} ${p.ttl}`);
  if (p.tos !== 0) out.push(`tos 0x${p.tos.toString(16)}`);
  if (p.v6 && p.ext) out.push(p.ext);
  if (p.frag && !/\bfrag\b/.test(p.ext)) out.push('frag offset 8');
  if (p.len !== 0) out.push(`len ${p.len}`);
  if (p.local) out.push('from local');
  else if (p.iif) out.push(`iif ${p.iif}`);
  if (p.oif) out.push(`oif ${p.oif}`);
  if (p.mark !== 0) out.push(`mark 0x${(p.mark >>> 0).toString(16)}`);
  if (p.ct) out.push(`ct ${p.ct}`);
  return out.join(' ');
}

/** The packet as the engines take it (parsed from its spec, so that what is reported is what ran). */
export function toPacket(p: FuzzPacket, into?: Packet): Packet {
  return specPacket(parseSpec(specText(p)), { packet: into });
}

const TCP_FLAGS = [0x02, 0x02, 0x10, 0x12, 0x11, 0x04, 0x14, 0x18, 0x00, 0x3f];
const TTLS = [64, 64, 64, 1, 2, 63, 255];
const TOSES = [0, 0, 0, 0x10, 0x08, 0xb8, 0x02];
const CT_STATES: FuzzPacket['ct'][] = ['new', 'established', 'related', 'invalid', 'untracked'];

export interface DrawOptions {
  /** Interfaces the packet may arrive on or leave by ([] : none named). */
  ifaces: readonly string[];
  /** Draw the `ct` clause (the table-level fuzzer: the packet carries its state). */
  ct: boolean;
  /** Allow `from local`. */
  local: boolean;
  /** IPv6 packets (addresses from the constants' addrs6). */
  v6?: boolean;
}

/** A value from the constants most of the time, else anything. */
function biased(r: Rand, pool: readonly number[], any: () => number): number {
  return pool.length > 0 && chance(r, 0.85) ? pick(r, pool) : any();
}

/** A packet drawn towards the constants. */
export function drawPacket(r: Rand, k: Constants, o: DrawOptions): FuzzPacket {
  const v6 = o.v6 === true;
  const icmp = v6 ? 58 : 1;
  const protos = k.protos.length ? [...k.protos, 6, 17, icmp] : [6, 6, 17, icmp, 47];
  const proto = chance(r, 0.9) ? pick(r, protos) : r.int(0, 255);
  // protocols the spec cannot give as an upper layer (IPv6 extension headers, IPv4 in the other family's ICMP)
  const odd = proto === 41 || proto === 0 || (v6 ? proto === 1 || proto === 43 || proto === 44 || proto === 60 || proto === 59 : proto === 58);
  const p: FuzzPacket = { ...DEFAULT_PACKET, v6, proto: odd ? 6 : proto };
  if (v6) {
    const any6 = () => `2001:db8:${r.int(0, 0xffff).toString(16)}::${r.int(1, 0xffff).toString(16)}`;
    p.src6 = k.addrs6.length && chance(r, 0.85) ? pick(r, k.addrs6) : any6();
    p.dst6 = k.addrs6.length && chance(r, 0.85) ? pick(r, k.addrs6) : any6();
  }
  p.src = biased(r, k.addrs, () => r.int(0, 0xffffffff));
  p.dst = biased(r, k.addrs, () => r.int(0, 0xffffffff));
  p.sport = biased(r, k.ports, () => r.int(0, 65535));
  p.dport = biased(r, k.ports, () => r.int(0, 65535));
  p.flags = pick(r, TCP_FLAGS);
  p.icmpType = pick(r, v6 ? [128, 129, 1, 3, 135, 136] : [8, 0, 3, 11, 5]);
  p.icmpCode = pick(r, [0, 1, 3, 4]);
  p.ttl = pick(r, TTLS);
  p.tos = pick(r, TOSES);
  p.frag = chance(r, 0.03);
  if (v6 && k.exthdrs.length && chance(r, 0.3)) p.ext = pick(r, k.exthdrs);
  p.len = chance(r, 0.2) ? r.int(1, 1400) : 0;
  const ifs = [...o.ifaces, ...k.ifaces.filter((i) => o.ifaces.length === 0 || o.ifaces.includes(i))];
  if (o.local && chance(r, 0.2)) p.local = true;
  else if (ifs.length) p.iif = pick(r, ifs);
  if (o.ct && chance(r, 0.7)) p.ct = pick(r, [...CT_STATES, ...k.ctstates.filter((s): s is FuzzPacket['ct'] => (CT_STATES as string[]).includes(s))]);
  if (o.ct && p.ct === '') p.ct = 'new';
  p.mark = k.marks.length && chance(r, 0.5) ? pick(r, k.marks) : chance(r, 0.1) ? r.int(0, 0xffffffff) : 0;
  if (p.ct === 'established' || p.ct === 'related') p.flags = chance(r, 0.7) ? 0x10 : p.flags;
  return p;
}

/**
 * Shrinks `p` while `fails` holds: each field back to its default, else
 * a number bisected towards it, until nothing changes. `fails` must be
 * deterministic for the packet alone.
 */
export function shrinkPacket(p: FuzzPacket, fails: (q: FuzzPacket) => boolean, budget = 400): FuzzPacket {
  let cur = { ...p };
  let tries = 0;
  const keys = Object.keys(DEFAULT_PACKET) as (keyof FuzzPacket)[];
  for (let changed = true; changed && tries < budget;) {
    changed = false;
    for (const key of keys) {
      const d = DEFAULT_PACKET[key];
      if (cur[key] === d || key === 'v6') continue;
      const cand = { ...cur, [key]: d } as FuzzPacket;
      if (++tries > budget) break;
      if (fails(cand)) {
        cur = cand;
        changed = true;
        continue;
      }
      const v = cur[key];
      if (typeof v === 'number' && typeof d === 'number' && key !== 'src' && key !== 'dst' && key !== 'mark' && key !== 'proto') {
        // the value nearest the default that still fails, by bisection (a boundary of a range, typically)
        let good = d;
        let bad = v;
        while (Math.abs(bad - good) > 1 && tries < budget) {
          const mid = Math.floor((good + bad) / 2);
          tries++;
          if (fails({ ...cur, [key]: mid } as FuzzPacket)) bad = mid;
          else good = mid;
        }
        if (bad !== v) {
          cur = { ...cur, [key]: bad } as FuzzPacket;
          changed = true;
        }
      }
    }
  }
  return cur;
}
