/**
 * The multipath hash and nexthop choice (hooks/route/multipath.ts). The
 * hash values were worked out by a C transcription of the kernel's
 * struct flow_keys, __flow_hash_consistentify and SipHash-2-4 (which gives
 * SipHash's reference vectors); test/kernel/node-context-kernel.test.ts
 * holds the choices against the running kernel.
 */
import { describe, expect, it } from 'vitest';
import { fibMultipathHash4, rt6MultipathHash, selectNexthop } from '../../hooks/route/multipath.js';
import type { Route } from '../../hooks/route/types.js';

/** An IPv4 packet: 20-byte header, then 4 bytes of ports. */
function ip(src: number[], dst: number[], proto: number, sport = 0, dport = 0, fragOff = 0): Uint8Array {
  const d = new Uint8Array(40);
  d[0] = 0x45;
  d[3] = 40;
  d[6] = fragOff >> 8;
  d[7] = fragOff & 255;
  d[9] = proto;
  d.set(src, 12);
  d.set(dst, 16);
  d[20] = sport >> 8;
  d[21] = sport & 255;
  d[22] = dport >> 8;
  d[23] = dport & 255;
  return d;
}

const route = (nhs: [number, string[]][]): Route => ({
  family: 4, table: 254, type: 1, dst: { family: 4, w: Uint32Array.of(0) }, plen: 0, tos: 0, metric: 0, scope: 0, protocol: 'static', prefsrc: undefined,
  nexthops: nhs.map(([weight, flags], i) => ({ gateway: undefined, dev: `eth${i}`, weight, flags })),
});

describe('fib_multipath_hash', () => {
  it('policy 0: the addresses, in order (both directions hash alike)', () => {
    expect(fibMultipathHash4(ip([10, 0, 0, 1], [10, 0, 0, 2], 17), 0, 40, 0, 7, 1)).toBe(84862428);
    expect(fibMultipathHash4(ip([10, 0, 0, 2], [10, 0, 0, 1], 6, 5, 9), 0, 40, 0, 7, 1)).toBe(84862428);
  });

  it('policy 1: addresses, protocol and ports; a fragment has no ports', () => {
    expect(fibMultipathHash4(ip([10, 0, 0, 1], [10, 0, 0, 2], 6, 12345, 80), 0, 40, 1, 7, 1)).toBe(1527339476);
    expect(fibMultipathHash4(ip([192, 168, 1, 10], [172, 16, 0, 5], 17, 40000, 443), 0, 40, 1, 7, 0x12345678)).toBe(333030860);
    const frag = fibMultipathHash4(ip([10, 0, 0, 1], [10, 0, 0, 2], 6, 12345, 80, 0x2000), 0, 40, 1, 7, 1);
    expect(frag).toBe(fibMultipathHash4(ip([10, 0, 0, 1], [10, 0, 0, 2], 6, 0, 0, 0x2000), 0, 40, 1, 7, 1));
    expect(frag).not.toBe(1527339476);
  });

  it('policy 0: an ICMP error by the header it quotes', () => {
    const err = new Uint8Array(20 + 8 + 28);
    err.set(ip([10, 9, 9, 9], [10, 0, 0, 1], 1).subarray(0, 20));
    err[3] = err.length;
    err[20] = 11; // time exceeded
    err.set(ip([10, 0, 0, 1], [10, 0, 0, 2], 17).subarray(0, 28), 28);
    expect(fibMultipathHash4(err, 0, err.length, 0, 7, 1)).toBe(84862428);
    // an echo request is hashed by its own addresses
    err[20] = 8;
    expect(fibMultipathHash4(err, 0, err.length, 0, 7, 1)).not.toBe(84862428);
  });
});

describe('rt6_multipath_hash', () => {
  // 2001:db8::1 > 2001:db8::2, flow label 0x12345, next header TCP
  const d = new Uint8Array(40);
  d.set([0x60, 0x01, 0x23, 0x45, 0, 0, 6, 64]);
  d.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
  d.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 24);

  it('policy 0: addresses, the flow label as the header holds it, the next header', () => {
    expect(rt6MultipathHash(d, 0, 40, -1, -1, false, 0, 7, 1)).toBe(2072005928);
  });

  it('policy 2: the flow label in host order hashes otherwise', () => {
    expect(rt6MultipathHash(d, 0, 40, -1, -1, false, 2, 7, 1)).toBe(1543785924);
  });

  it('the addresses are put in order: both directions hash alike', () => {
    const r = d.slice();
    r.set(d.subarray(24, 40), 8);
    r.set(d.subarray(8, 24), 24);
    expect(rt6MultipathHash(r, 0, 40, -1, -1, false, 0, 7, 1)).toBe(2072005928);
  });
});

describe('fib_select_multipath', () => {
  it('upper bounds by weight: DIV_ROUND_CLOSEST(w << 31, total) - 1', () => {
    const r = route([[1, []], [2, []], [3, []]]);
    expect(selectNexthop(r, 0x15555554, () => false, -1)).toBe(0);
    expect(selectNexthop(r, 0x15555555, () => false, -1)).toBe(1);
    expect(selectNexthop(r, 0x3fffffff, () => false, -1)).toBe(1);
    expect(selectNexthop(r, 0x40000000, () => false, -1)).toBe(2);
    expect(selectNexthop(r, 0x7fffffff, () => false, -1)).toBe(2);
  });

  it('a dead nexthop holds no hashes; a link-down one only with ignore_routes_with_linkdown', () => {
    const r = route([[1, ['dead']], [1, ['linkdown']], [1, []]]);
    expect(selectNexthop(r, 0, () => false, -1)).toBe(1);
    expect(selectNexthop(r, 0x3fffffff, () => false, -1)).toBe(1);
    expect(selectNexthop(r, 0x40000000, () => false, -1)).toBe(2);
    expect(selectNexthop(r, 0, () => true, -1)).toBe(2);
    expect(selectNexthop(route([[1, ['dead']]]), 5, () => false, 0)).toBe(0);
  });
});
