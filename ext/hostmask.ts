/**
 * Address options of the x6 option parser (libxtables/xtoptions.c) as the
 * conntrack, policy, ipvs and connlimit extensions use them:
 *
 *  - XTTYPE_HOST (`xtopt_parse_host`): one address resolved with
 *    getaddrinfo(), so IPv4 takes every inet_aton() spelling ("1.2" is
 *    1.0.0.2, "0x7f.1" is 127.0.0.1); the mask is all ones;
 *  - XTTYPE_PLENMASK (`xtopt_parse_plenmask`): a prefix length in any C base
 *    up to 32/128, or else a numeric mask address; a non-contiguous mask is
 *    kept as given (iptables >= 1.8.10);
 *  - XTTYPE_HOSTMASK: `host[/plenmask]`. Unlike `-s`/`-d`, the address is
 *    NOT ANDed with the mask: iptables-save prints it back as given.
 *
 * nfvm never does DNS: only the numeric forms and `localhost` resolve;
 * anything else fails as getaddrinfo does for an unknown name.
 */
import { fail } from '../core/errors.js';
import type { Family } from '../core/ast.js';
import { parsePort } from './protocols.js';
import { strtoulWhole } from './numbers.js';
import { addrBytes, parseIPv4Into, formatAddr, maskToCidr, parseIPv6, prefixMask, inetAton, parseIPv4, sharedPrefixMask } from '../core/addr.js';

/** An address with its mask, each 4 (IPv4) or 16 (IPv6) bytes. */
export interface HostMask {
  addr: Uint8Array;
  mask: Uint8Array;
}

/**
 * The address bytes and mask of `am` as arrays of their own, made once: what
 * a per-packet evaluator keeps (a rule keeps an IPv4 address as a number and
 * makes its bytes afresh on each read of `addr`).
 */
export function hostMaskBytes(am: HostMask): HostMask {
  return { addr: am.addr, mask: am.mask };
}

/** xtopt_parse_host: one address of the family (numeric, or `localhost`). */
export function parseHost(family: Family, s: string): Uint8Array {
  let a: Uint8Array | undefined;
  if (family === 'ip') {
    a = s === 'localhost' || s === 'localhost.localdomain' ? Uint8Array.of(127, 0, 0, 1) : inetAton(s);
  } else {
    a = s === 'localhost' || s === 'ip6-localhost' || s === 'ip6-loopback' ? parseIPv6('::1') : parseIPv6(s);
  }
  if (!a) fail('getaddrinfo: Name or service not known');
  return a;
}

/** xtopt_parse_plenmask: a prefix length or a numeric mask. */
export function parsePlenMask(family: Family, s: string, ext: string, opt: string): Uint8Array {
  const bits = family === 'ip' ? 32 : 128;
  const len = strtoulWhole(s, 0n, BigInt(bits));
  if (len !== undefined) return prefixMask(Number(len), bits / 8);
  const m = family === 'ip' ? inetAton(s) : parseIPv6(s);
  if (m) return m;
  return fail(`${ext}: bad value for option "--${opt}", neither a valid network mask nor valid CIDR (0-${bits}).`);
}

/** xtopt_parse_hostmask: `host[/plen-or-mask]`, the address kept unmasked. */
export function parseHostMask(family: Family, s: string, ext: string, opt: string): HostMask {
  const slash = s.indexOf('/');
  if (slash < 0) return { addr: parseHost(family, s), mask: prefixMask(family === 'ip' ? 32 : 128, family === 'ip' ? 4 : 16) };
  const addr = parseHost(family, s.slice(0, slash));
  const mask = parsePlenMask(family, s.slice(slash + 1), ext, opt);
  return { addr, mask };
}

/**
 * `xtables_ipaddr_to_numeric(addr)` + `xtables_ipmask_to_numeric(mask)` (and
 * the IPv6 pair): no suffix for a full mask, `/len`, or `/mask` when it is
 * not contiguous.
 */
export function formatHostMask(family: Family, hm: HostMask): string {
  const cidr = maskToCidr(hm.mask);
  const full = family === 'ip' ? 32 : 128;
  const suffix = cidr === full ? '' : cidr >= 0 ? `/${cidr}` : `/${formatAddr(family, hm.mask)}`;
  return formatAddr(family, hm.addr) + suffix;
}

/**
 * `xtables_getportbyname()` as iptables 1.8.x behaves with glibc: a decimal
 * number (leading blanks and `+` allowed, no `-`) that fits an unsigned long
 * is taken modulo 2^16 (`70000` is 4464, `070` is 70, `0x10` is nothing);
 * else a service name.
 * Returns undefined when nothing resolves.
 */
function gaiPort(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*\+?([0-9]+)$/.exec(s);
  if (m) {
    const v = BigInt(m[1]!);
    if (v <= 0xffffffffffffffffn) return Number(v & 0xffffn);
    return undefined;
  }
  // not a number: parsePort() then only knows it as a service name
  if (/^[ \t\n\v\f\r]*[-+]?[0-9]/.test(s)) return undefined;
  try {
    return parsePort(s);
  } catch {
    return undefined;
  }
}

/** XTTYPE_PORT: one port (xtopt_parse_port). */
export function parsePortX(s: string): number {
  const p = gaiPort(s);
  if (p === undefined) fail(`Port "${s}" does not resolve to anything.`);
  return p;
}

/**
 * XTTYPE_PORTRC (xtopt_parse_mport): `p`, `p:q`, `:q`, `p:`; an empty side
 * is 0 / 65535, more than two components are refused.
 */
export function parsePortRangeX(s: string, ext: string, opt: string): [number, number] {
  const parts = s.split(':');
  if (parts.length > 2) fail(`${ext}: Too many components for option "--${opt}" (max: 2)`);
  const r: [number, number] = [0, 0xffff];
  parts.forEach((p, i) => {
    if (p !== '') r[i] = parsePortX(p);
  });
  if (parts.length === 1) r[1] = r[0];
  return r;
}

/** xtables' numeric_to_ipaddr / numeric_to_ip6addr: IPv4 takes 1 to 4 dotted parts ("10.1" is 10.1.0.0). */
export function parseAddr(family: Family, s: string): Uint8Array | undefined {
  return family === 'ip' ? parseIPv4(s, 1) : parseIPv6(s);
}

/**
 * An IPv4 address and mask as a rule keeps them: the address as an int32
 * (a Uint8Array of its own costs about 100 bytes, twice per rule of a big
 * dump), its bytes made afresh when asked for. Nothing changes a rule's
 * address bytes in place.
 */
class Addr4Mask {
  constructor(
    /** The address, big-endian, as an int32. */
    readonly word: number,
    readonly mask: Uint8Array,
  ) {}
  get addr(): Uint8Array {
    const v = this.word;
    return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }
}

const scratch4 = new Uint8Array(4);

/**
 * `xtables_ipparse_any` / `xtables_ip6parse_any` for one address: `addr`,
 * `addr/len` or `addr/mask`; the address is ANDed with the mask (as
 * iptables does before handing it to the kernel). Hostnames are not
 * resolved (nfvm never does DNS), except `localhost`.
 */
export function parseAddrMask(family: Family, s: string): { addr: Uint8Array; mask: Uint8Array } {
  const bytes = family === 'ip' ? 4 : 16;
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  let mask: Uint8Array;
  if (slash < 0) {
    mask = sharedPrefixMask(bytes * 8, bytes);
  } else {
    const m = s.slice(slash + 1);
    const asAddr = family === 'ip' && m.includes('.') ? parseIPv4(m, 1) : family === 'ip6' && m.includes(':') ? parseIPv6(m) : undefined;
    if (asAddr) {
      mask = asAddr;
    } else {
      const len = plainDecimal(m) ?? strtoulWhole(m, 0n, BigInt(bytes * 8), 10);
      if (len === undefined || len > bytes * 8) fail(`invalid mask \`${m}' specified`);
      mask = sharedPrefixMask(Number(len), bytes);
    }
  }
  if (family === 'ip' && host !== '') {
    // the common case: the address kept as a number
    const b = scratch4.fill(0);
    if (parseIPv4Into(host, 1, b)) {
      return new Addr4Mask((((b[0]! & mask[0]!) << 24) | ((b[1]! & mask[1]!) << 16) | ((b[2]! & mask[2]!) << 8) | (b[3]! & mask[3]!)) | 0, mask);
    }
  }
  let addr: Uint8Array | undefined;
  if (host === 'localhost' || host === 'localhost.localdomain' || (family === 'ip6' && host === 'ip6-localhost')) {
    addr = family === 'ip' ? Uint8Array.of(127, 0, 0, 1) : parseIPv6('::1');
  } else if (host === '' && family === 'ip') {
    addr = undefined;
  } else {
    addr = parseAddr(family, host);
  }
  if (!addr) fail(`host/network \`${host}' not found`);
  const kept = addrBytes(bytes);
  for (let i = 0; i < bytes; i++) kept[i] = addr[i]! & mask[i]!;
  return { addr: kept, mask };
}

/** 1 to 3 decimal digits as a number (a prefix length as usually written), else undefined. */
function plainDecimal(s: string): number | undefined {
  if (s.length === 0 || s.length > 3) return undefined;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    v = v * 10 + (c - 48);
  }
  return v;
}

/** `a/len`, or `a/dotted-mask` for a non-contiguous mask, as iptables-save prints addresses. */
export function formatAddrMask(family: Family, am: { addr: Uint8Array; mask: Uint8Array }): string {
  const cidr = maskToCidr(am.mask);
  const a = am instanceof Addr4Mask ? `${am.word >>> 24}.${(am.word >>> 16) & 255}.${(am.word >>> 8) & 255}.${am.word & 255}` : formatAddr(family, am.addr);
  return a + '/' + (cidr >= 0 ? String(cidr) : formatAddr(family, am.mask));
}

/** Whether `am`'s address is all zero (a kept IPv4 address's bytes are not made for it). */
export function addrIsZero(am: { addr: Uint8Array }): boolean {
  if (am instanceof Addr4Mask) return am.word === 0;
  const a = am.addr;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}
