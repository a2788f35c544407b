/**
 * IPv6 addresses as 128-bit integers for the fuzzer's model (prefix
 * ranges, their edges and the addresses just outside them); parsing and
 * printing are core/addr.ts's.
 */
import { formatIPv6, parseIPv6 } from '../core/addr.js';

/** An inclusive range of IPv6 addresses. */
export interface Range6 {
  lo: bigint;
  hi: bigint;
}

export const MAX6 = (1n << 128n) - 1n;

export function bigOf6(a: Uint8Array): bigint {
  let v = 0n;
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(a[i]!);
  return v;
}

/** The address `v` (0 ≤ v ≤ MAX6) as ip6tables prints it. */
export function text6(v: bigint): string {
  const a = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    a[i] = Number(v & 255n);
    v >>= 8n;
  }
  return formatIPv6(a);
}

/** `2001:db8::/32` or an address as a range; undefined when it is not one. */
export function addrRange6(s: string): Range6 | undefined {
  const [a, p] = s.split('/');
  const addr = parseIPv6(a!);
  if (!addr) return undefined;
  const plen = p === undefined ? 128 : /^\d{1,3}$/.test(p) && Number(p) <= 128 ? Number(p) : -1;
  if (plen < 0) return undefined;
  const host = plen === 128 ? 0n : (1n << BigInt(128 - plen)) - 1n;
  const lo = bigOf6(addr) & (MAX6 ^ host);
  return { lo, hi: lo | host };
}
