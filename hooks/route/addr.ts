/**
 * IPv4/IPv6 addresses as 32-bit words (network order, most significant word
 * first): IPv4 is one word, IPv6 four. Parsing returns undefined on bad input
 * (callers raise a located error); nothing here throws.
 */

/** IPv4 dotted quad → unsigned 32-bit value, or -1. */
export function parseIPv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** IPv6 text (with ::, embedded IPv4) → four words, or undefined. */
export function parseIPv6(s: string): Uint32Array | undefined {
  if (s.length > 45 || s.length < 2) return undefined;
  let head = s;
  let tailV4 = -1;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    tailV4 = parseIPv4(s.slice(lastColon + 1));
    if (tailV4 < 0) return undefined;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.indexOf('::');
  if (dbl >= 0 && head.indexOf('::', dbl + 1) >= 0) return undefined;
  const groups: number[] = [];
  const pushAll = (txt: string): boolean => {
    if (txt === '') return true;
    for (const g of txt.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      groups.push(parseInt(g, 16));
    }
    return true;
  };
  if (dbl >= 0) {
    const left: number[] = [];
    if (!pushAll(head.slice(0, dbl))) return undefined;
    left.push(...groups.splice(0));
    if (!pushAll(head.slice(dbl + 2))) return undefined;
    const right = groups.splice(0);
    if (left.length + right.length > 7) return undefined;
    groups.push(...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right);
  } else if (!pushAll(head) || groups.length !== 8) return undefined;
  if (groups.length !== 8) return undefined;
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  if (tailV4 >= 0) w[3] = tailV4 >>> 0;
  return w;
}

/** RFC 5952 text (what iproute2 prints). */
export function formatIPv6(w: ArrayLike<number>): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(w[i]! >>> 16, w[i]! & 0xffff);
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
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
