/**
 * Addresses as text: THE IPv4/IPv6 and MAC parsers and printers every layer
 * uses (byte arrays in network order: 4, 16 or 6 bytes), and the prefix/mask
 * helpers. Parsers return undefined on bad input (callers raise their own
 * located error); nothing here throws.
 */
import type { Family } from './ast.js';

/**
 * Dotted decimal: `minParts`..4 groups of 1-3 decimal digits, each ≤ 255
 * (inet_pton takes exactly four; xtables' __numeric_to_ipaddr also takes
 * fewer, `minParts` 1, and fills the missing trailing bytes with 0:
 * "10.1" is 10.1.0.0).
 */
export function parseIPv4(s: string, minParts = 4): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return parseIPv4Into(s, minParts, out) ? out : undefined;
}

/**
 * parseIPv4() into `out` (4 bytes, zeroed by the caller); false when `s` is not such an address.
 * `noLeadingZero`: a group may not start with 0 unless it is 0 (glibc inet_pton's inet_pton4).
 */
export function parseIPv4Into(s: string, minParts: number, out: Uint8Array, noLeadingZero = false): boolean {
  let part = 0;
  let digits = 0;
  let v = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || v > 255 || part >= 4) return false;
      out[part++] = v;
      digits = 0;
      v = 0;
    } else if (c >= 48 && c <= 57 && digits < 3 && !(noLeadingZero && digits === 1 && v === 0)) {
      v = v * 10 + (c - 48);
      digits++;
    } else {
      return false;
    }
  }
  return part >= minParts;
}

export function formatIPv4(a: ArrayLike<number>, off = 0): string {
  return `${a[off]}.${a[off + 1]}.${a[off + 2]}.${a[off + 3]}`;
}

/**
 * glibc `__inet_aton_exact()` (what getaddrinfo takes for a numeric IPv4
 * host): 1 to 4 parts, each decimal, octal (`0` prefix) or hex (`0x`); the
 * last part fills the remaining bytes (`1.2.3` is 1.2.0.3, `1` is 0.0.0.1).
 * Every part starts with a digit; only the last one must have a digit after
 * its prefix (`0x.1` is 0.0.0.1, `1.0x` is refused).
 */
export function inetAton(s: string): Uint8Array | undefined {
  const vals: number[] = [];
  let i = 0;
  for (;;) {
    if (!(s[i]! >= '0' && s[i]! <= '9')) return undefined;
    let base = 10;
    let digit = false;
    let v = 0;
    if (s[i] === '0') {
      i++;
      if (s[i] === 'x' || s[i] === 'X') {
        base = 16;
        i++;
      } else {
        base = 8;
        digit = true;
      }
    }
    for (;;) {
      const d = s[i] === undefined ? -1 : parseInt(s[i]!, 16);
      if (!(d >= 0 && (d < 10 || base === 16))) break;
      if (d >= base) return undefined; // 8 or 9 in an octal part
      v = v * base + d;
      if (v > 0xffffffff) return undefined;
      digit = true;
      i++;
    }
    if (s[i] !== '.') {
      vals.push(v);
      if (i !== s.length || !digit) return undefined;
      break;
    }
    if (vals.length > 2 || v > 0xff) return undefined;
    vals.push(v);
    i++;
  }
  const out = new Uint8Array(4);
  const last = vals.pop()!;
  const lastBytes = 4 - vals.length;
  if (lastBytes < 4 && last >= 2 ** (8 * lastBytes)) return undefined;
  vals.forEach((v, k) => (out[k] = v));
  for (let k = 0; k < lastBytes; k++) out[3 - k] = Math.floor(last / 2 ** (8 * k)) & 0xff;
  return out;
}

/** RFC 4291 text form (with an embedded dotted quad allowed at the end). */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  let str = s;
  const out = new Uint8Array(16);
  let tail4: Uint8Array | undefined;
  const lastColon = str.lastIndexOf(':');
  if (str.indexOf('.', lastColon) >= 0) {
    tail4 = parseIPv4(str.slice(lastColon + 1));
    if (!tail4) return undefined;
    str = str.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = str.indexOf('::');
  if (dbl >= 0 && str.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const r: number[] = [];
    for (const x of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(x)) return undefined;
      r.push(parseInt(x, 16));
    }
    return r;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(str.slice(0, dbl));
    const tail = parseGroups(str.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const g = parseGroups(str);
    if (!g || g.length !== 8) return undefined;
    groups = g;
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

/** `inet_ntop(AF_INET6)` as glibc prints it (RFC 5952 with ::ffff:a.b.c.d), of the 16 bytes at `off`. */
export function formatIPv6(a: ArrayLike<number>, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!);
  // IPv4-mapped and IPv4-compatible: glibc's inet_ntop6 uses the dotted quad when the longest
  // zero run is exactly words 0..5, or words 0..4 followed by 0xffff (so ::2 stays ::2)
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && (g[5] === 0xffff || (g[5] === 0 && g[6]! !== 0))) {
    return (g[5] === 0xffff ? '::ffff:' : '::') + formatIPv4(a, off + 12);
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexs = g.map((x) => x.toString(16));
  if (bestStart < 0) return hexs.join(':');
  return hexs.slice(0, bestStart).join(':') + '::' + hexs.slice(bestStart + bestLen).join(':');
}

/** The kernel's `%pI6`: eight groups of four hex digits, nothing compressed. */
export function formatIPv6Full(a: ArrayLike<number>, off = 0): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(((a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!).toString(16).padStart(4, '0'));
  return g.join(':');
}

/** An address of the family as text. */
export function formatAddr(family: Family, a: ArrayLike<number>): string {
  return family === 'ip' ? formatIPv4(a) : formatIPv6(a);
}

/** An address and a port as text: `10.0.0.1:80`, `[2001:db8::1]:80` (an IPv6 address in brackets). */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

const maskCache = new Map<number, Uint8Array>();

/**
 * The mask of a prefix length, shared between all rules that use it (AST
 * values are never mutated after parsing): one array per (length, size)
 * keeps a 100,000-rule ruleset small. Callers that modify masks use
 * prefixMask().
 */
export function sharedPrefixMask(len: number, bytes: number): Uint8Array {
  const key = bytes * 256 + len;
  let m = maskCache.get(key);
  if (!m) maskCache.set(key, (m = prefixMask(len, bytes)));
  return m;
}

/** Bytes per slab of addrBytes(). */
const SLAB = 16384;
let slab = new ArrayBuffer(SLAB);
let slabUsed = 0;

/**
 * `n` zeroed bytes for an address that lives as long as the AST: a view on
 * a shared slab (a Uint8Array of its own costs about twice as much memory,
 * which adds up over 100,000 rules). Never transferred or resized.
 */
export function addrBytes(n: number): Uint8Array {
  if (slabUsed + n > SLAB) {
    slab = new ArrayBuffer(SLAB);
    slabUsed = 0;
  }
  const v = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return v;
}

/** A prefix length as a fresh mask of `bytes` bytes. */
export function prefixMask(len: number, bytes: number): Uint8Array {
  const m = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    m[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return m;
}

/** `xtables_ipmask_to_cidr`: the prefix length, or -1 for a non-contiguous mask. */
export function maskToCidr(m: Uint8Array): number {
  let len = 0;
  let i = 0;
  while (i < m.length && m[i] === 0xff) {
    len += 8;
    i++;
  }
  if (i < m.length) {
    const b = m[i]!;
    let bits = 0;
    while (bits < 8 && b & (0x80 >> bits)) bits++;
    if (((0xff << (8 - bits)) & 0xff) !== b) return -1;
    len += bits;
    for (i++; i < m.length; i++) if (m[i] !== 0) return -1;
  }
  return len;
}

/** A MAC address as iproute2 prints and nfvm's packet specs take it: six hex pairs separated by `:` (or `-`). */
export function parseMac(s: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) return undefined;
  return Uint8Array.from(m.slice(1, 7), (h) => parseInt(h, 16));
}

/** The 6 bytes at `off` as `xx:xx:xx:xx:xx:xx` (lower case, as iproute2 and iptables-save print them). */
export function formatMac(a: ArrayLike<number>, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + a[off + i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * glibc `ether_aton()`: six fields of one or two hex digits separated by
 * `:` (`0:1:2:3:4:5` is 00:01:02:03:04:05), nothing after the sixth. What
 * ebtables takes for MAC addresses and masks.
 */
export function etherAton(s: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{1,2}):([0-9a-f]{1,2}):([0-9a-f]{1,2}):([0-9a-f]{1,2}):([0-9a-f]{1,2}):([0-9a-f]{1,2})$/i.exec(s);
  if (!m) return undefined;
  return Uint8Array.from(m.slice(1, 7), (h) => parseInt(h, 16));
}

/** glibc `ether_ntoa()`: the 6 bytes at `off` without zero padding (`0:1:2:3:4:5`). */
export function etherNtoa(a: ArrayLike<number>, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + a[off + i]!.toString(16);
  return s;
}
