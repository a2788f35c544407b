/**
 * nfqueue_hash() (include/net/netfilter/nf_queue.h): both directions of a
 * flow pick one queue, the IPv4 hash is jhash_3words of the raw address
 * words (smaller first) and the protocol, the IPv6 hash reads words 3 and 1
 * only, and flows spread over every queue of the range.
 */
import { describe, expect, it } from 'vitest';
import { Packet, decodePacket, LINKTYPE_RAW } from '../../vm/packet.js';
import { nfqueueHash, NFQUEUE_JHASH_INITVAL } from '../../vm/expr/queue.js';
import { forceU32, jhash3words } from '../../vm/jhash.js';
import { reciprocalScale } from '../../vm/expr/numgen.js';

function v4(src: number[], dst: number[], proto: number): Packet {
  const p = new Packet();
  p.setFrame([0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0, ...src, ...dst, 0, 1, 0, 2, 0, 8, 0, 0]);
  decodePacket(p, LINKTYPE_RAW);
  return p;
}

function v6(src: number[], dst: number[]): Packet {
  const p = new Packet();
  p.setFrame([0x60, 0, 0, 0, 0, 8, 17, 64, ...src, ...dst, 0, 1, 0, 2, 0, 8, 0, 0]);
  decodePacket(p, LINKTYPE_RAW);
  return p;
}

const be = (b: number[]) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) | 0;

describe('nfqueue_hash', () => {
  it('IPv4: jhash_3words of the raw words, smaller first, and the protocol; one queue for both directions', () => {
    const a = [10, 0, 0, 2], b = [192, 168, 7, 1];
    const ra = forceU32(be(a)) >>> 0, rb = forceU32(be(b)) >>> 0;
    const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra];
    const want = 3 + reciprocalScale(jhash3words(lo | 0, hi | 0, 17, NFQUEUE_JHASH_INITVAL), 6);
    expect(nfqueueHash(v4(a, b, 17), 3, 6, NFQUEUE_JHASH_INITVAL)).toBe(want);
    expect(nfqueueHash(v4(b, a, 17), 3, 6, NFQUEUE_JHASH_INITVAL)).toBe(want);
  });

  it('IPv6: only words 3 and 1 of the addresses count; both directions meet', () => {
    const s = Array.from({ length: 16 }, (_, i) => i + 1);
    const d = Array.from({ length: 16 }, (_, i) => 0xf0 - i);
    const q = nfqueueHash(v6(s, d), 0, 1000, NFQUEUE_JHASH_INITVAL);
    expect(nfqueueHash(v6(d, s), 0, 1000, NFQUEUE_JHASH_INITVAL)).toBe(q);
    const s2 = s.slice();
    s2[0] = 0xaa; // word 0
    s2[9] = 0xbb; // word 2
    expect(nfqueueHash(v6(s2, d), 0, 1000, NFQUEUE_JHASH_INITVAL)).toBe(q);
    const s3 = s.slice();
    s3[15] = 0x77; // word 3
    const seen = new Set([q, nfqueueHash(v6(s3, d), 0, 1000, NFQUEUE_JHASH_INITVAL)]);
    expect(seen.size).toBe(2);
  });

  it('flows spread over every queue of the range', () => {
    const hits = new Set<number>();
    for (let i = 0; i < 200; i++) hits.add(nfqueueHash(v4([10, 0, i >> 8, i & 255], [10, 9, 9, 9], 6), 100, 4, NFQUEUE_JHASH_INITVAL));
    expect([...hits].sort()).toEqual([100, 101, 102, 103]);
  });
});
