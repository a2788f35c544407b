/**
 * IPv4/IPv6 addresses as 32-bit words (network order, most significant word
 * first): IPv4 is one word, IPv6 four. Parsing returns undefined on bad input
 * (callers raise a located error); nothing here throws. The text forms are
 * core/addr.ts's.
 */
import {
  formatIPv6 as formatIPv6Bytes, parseIPv4 as parseIPv4Bytes, parseIPv6 as parseIPv6Bytes,
} from '../../core/addr.js';

/** IPv4 dotted quad → unsigned 32-bit value, or -1. */
export function parseIPv4(s: string): number {
  const b = parseIPv4Bytes(s);
  return b ? ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 : -1;
}

export function formatIPv4(v: number): string {
  // The texts of recent addresses, direct-mapped: the packet path names the same few addresses over and over.
  const k = v | 0;
  const i = (Math.imul(k ^ (k >>> 13), 0x5bd1e995) >>> (32 - V4_TEXT_BITS)) & (V4_TEXT - 1);
  const t = v4Texts[i]!;
  if (t !== '' && v4Keys[i] === k) return t;
  const text = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  v4Keys[i] = k;
  v4Texts[i] = text;
  return text;
}

const V4_TEXT_BITS = 10;
const V4_TEXT = 1 << V4_TEXT_BITS;
const v4Keys = new Int32Array(V4_TEXT);
const v4Texts: string[] = new Array<string>(V4_TEXT).fill('');

/** IPv6 text (with ::, embedded IPv4) → four words, or undefined. */
export function parseIPv6(s: string): Uint32Array | undefined {
  const b = parseIPv6Bytes(s);
  if (!b) return undefined;
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((b[4 * i]! << 24) | (b[4 * i + 1]! << 16) | (b[4 * i + 2]! << 8) | b[4 * i + 3]!) >>> 0;
  return w;
}

/** Four words as text (inet_ntop, what iproute2 prints). */
export function formatIPv6(w: ArrayLike<number>): string {
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) for (let k = 0; k < 4; k++) b[4 * i + k] = (w[i]! >>> (24 - 8 * k)) & 0xff;
  return formatIPv6Bytes(b);
}

export type Family = 4 | 6;

/** An address of either family: `w` holds 1 (IPv4) or 4 (IPv6) words. */
export interface IpAddr {
  readonly family: Family;
  readonly w: Uint32Array;
}

export function parseAddr(s: string): IpAddr | undefined {
  if (s.includes(':')) {
    const w = parseIPv6(s);
    return w ? { family: 6, w } : undefined;
  }
  const v = parseIPv4(s);
  return v < 0 ? undefined : { family: 4, w: Uint32Array.of(v) };
}

export function formatAddr(a: IpAddr): string {
  return a.family === 4 ? formatIPv4(a.w[0]!) : formatIPv6(a.w);
}

/**
 * An address the FIB keeps (a nexthop's gateway: it hands out the route's
 * own object) as text, made once per address object, not per packet.
 */
export function keptAddrText(a: IpAddr): string {
  let t = KEPT_TEXT.get(a);
  if (t === undefined) {
    t = formatAddr(a);
    KEPT_TEXT.set(a, t);
  }
  return t;
}

const KEPT_TEXT = new WeakMap<IpAddr, string>();

/** "a.b.c.d/len", "addr" (host) or "default" → address and prefix length; undefined on bad input. */
export function parsePrefix(s: string, family?: Family): { addr: IpAddr; plen: number } | undefined {
  if (s === 'default' || s === 'all') {
    const f = family ?? 4;
    return { addr: { family: f, w: new Uint32Array(f === 4 ? 1 : 4) }, plen: 0 };
  }
  const slash = s.indexOf('/');
  const addr = parseAddr(slash < 0 ? s : s.slice(0, slash));
  if (!addr || (family && addr.family !== family)) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  let plen = max;
  if (slash >= 0) {
    const t = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(t)) return undefined;
    plen = Number(t);
    if (plen > max) return undefined;
  }
  return { addr, plen };
}

/** The word mask of prefix length `plen` for word `i`. */
export function maskWord(plen: number, i: number): number {
  const bits = plen - 32 * i;
  if (bits >= 32) return 0xffffffff;
  if (bits <= 0) return 0;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** `a` with the host bits of /plen cleared (a copy). */
export function maskAddr(a: IpAddr, plen: number): IpAddr {
  const w = new Uint32Array(a.w.length);
  for (let i = 0; i < w.length; i++) w[i] = (a.w[i]! & maskWord(plen, i)) >>> 0;
  return { family: a.family, w };
}

/** ((x ^ y) & mask(plen)) == 0 over all words, without allocating. */
export function prefixMatch(x: ArrayLike<number>, y: ArrayLike<number>, plen: number): boolean {
  for (let i = 0; i < x.length; i++) {
    const m = maskWord(plen, i);
    if (m === 0) return true;
    if ((((x[i]! ^ y[i]!) & m) >>> 0) !== 0) return false;
  }
  return true;
}

export function addrEqual(x: ArrayLike<number>, y: ArrayLike<number>): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function formatPrefix(a: IpAddr, plen: number): string {
  if (plen === 0) return 'default';
  return plen === (a.family === 4 ? 32 : 128) ? formatAddr(a) : `${formatAddr(a)}/${plen}`;
}
