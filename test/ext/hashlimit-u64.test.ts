/**
 * hashlimit's credits without BigInt (ext/u64.ts, ext/match/hashlimit.ts):
 *  - each u64 operation on u32 halves equals the BigInt one modulo 2^64,
 *    at the edges (carries, borrows, wrap, shifts across the halves) too;
 *  - rateinfo_init / rateinfo_recalc / the spending of hashlimit_mt_common,
 *    run on the halves, follow the BigInt formula of xt_hashlimit.c
 *    (revision 3) step by step for generated configurations (packet and
 *    byte mode, rate match, rates from 1/day to the fastest, bursts, HZ
 *    100 to 1000) and generated packet sequences, including gaps long
 *    enough to wrap the credit.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { u64Add, u64FromNumber, u64Ge, u64Gt, u64Mul, u64r, u64Shl, u64Sub, u64Text } from '../../ext/u64.js';
import { rateinfoInit, rateinfoInitOf, rateinfoRecalc, rateinfoSpend, type Rateinfo } from '../../ext/match/hashlimit.js';
import { runs } from '../helpers/runs.js';

const U64 = (1n << 64n) - 1n;
const U32 = 0xffffffffn;
const big = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo);
const res = () => big(u64r.hi, u64r.lo);
const split = (v: bigint): [number, number] => [Number((v >> 32n) & U32), Number(v & U32)];

const edge = fc.oneof(
  fc.bigInt({ min: 0n, max: U64 }),
  fc.constantFrom(0n, 1n, U32, U32 + 1n, U64, U64 - 1n, 1n << 53n, (1n << 53n) - 1n, 1n << 63n),
);

describe('u64 on u32 halves', () => {
  it('add, sub, mul, shl, compare and decimal equal BigInt modulo 2^64', () => {
    fc.assert(fc.property(edge, edge, fc.integer({ min: 0, max: 63 }), (a, b, s) => {
      const [ah, al] = split(a);
      const [bh, bl] = split(b);
      u64Add(ah, al, bh, bl);
      expect(res()).toBe((a + b) & U64);
      u64Sub(ah, al, bh, bl);
      expect(res()).toBe((a - b) & U64);
      u64Mul(ah, al, bh, bl);
      expect(res()).toBe((a * b) & U64);
      u64Shl(ah, al, s);
      expect(res()).toBe((a << BigInt(s)) & U64);
      expect(u64Gt(ah, al, bh, bl)).toBe(a > b);
      expect(u64Ge(ah, al, bh, bl)).toBe(a >= b);
      expect(u64Text(ah, al)).toBe(a.toString());
    }), { numRuns: runs(2000) });
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (x) => {
      u64FromNumber(x);
      expect(res()).toBe(BigInt(x));
    }), { numRuns: runs(500) });
  });
});

/** xt_hashlimit.c revision 3 in BigInt: the formula the halves must follow. */
interface BigRi {
  prev: bigint;
  credit: bigint;
  cap: bigint;
  cost: bigint;
  interval: bigint;
  prevWindow: bigint;
  cur: bigint;
  rate: bigint;
  rburst: bigint;
}
const SCALE = 1000000n;
const pow2Below = (x: bigint) => {
  let p = 1n;
  while (p * 2n <= x) p *= 2n;
  return p;
};
function bigInit(mode: number, avg: bigint, burst: bigint, interval: number, hz: bigint, now: bigint): BigRi {
  const cpj = pow2Below(U64 / (hz * 86400n));
  const cpjBytes = pow2Below(U32 / hz);
  const user2credits = (user: bigint) => (SCALE >= hz * cpj ? user / (SCALE / (hz * cpj)) : user * ((hz * cpj) / SCALE)) & U64;
  const e: BigRi = { prev: now, credit: 0n, cap: 0n, cost: 0n, interval: 0n, prevWindow: 0n, cur: 0n, rate: 0n, rburst: 0n };
  if (mode & 0x40) {
    if (mode & 0x20) {
      const u = avg & U32;
      e.rate = (((u ? U32 / u : U32) - 1n) << 4n) & U64;
      e.rburst = burst ? (burst * e.rate) & U64 : e.rate;
    } else {
      e.rate = avg ? SCALE / avg : 0n;
      e.rburst = (burst + e.rate) & U64;
    }
    e.interval = BigInt(interval);
  } else if (mode & 0x20) {
    e.credit = cpjBytes * hz;
    e.cost = ((avg & U32) * hz * cpjBytes) >> 32n & U32;
    e.cap = burst;
  } else {
    e.credit = user2credits((avg * burst) & U64);
    e.cost = user2credits(avg);
    e.cap = e.credit;
  }
  return e;
}
function bigRecalc(e: BigRi, now: bigint, mode: number, hz: bigint): void {
  const delta = now - e.prev;
  if (delta === 0n) return;
  if (mode & 0x40) {
    const interval = (e.interval * hz) & U32;
    if (delta < interval) return;
    e.prev = now;
    e.prevWindow = ((e.cur * interval) & U64) > ((delta * e.rate) & U64) ? 1n : 0n;
    e.cur = 0n;
    return;
  }
  e.prev = now;
  let cap: bigint;
  if (mode & 0x20) {
    const tmp = e.credit;
    e.credit = (e.credit + pow2Below(U32 / hz) * delta) & U64;
    cap = pow2Below(U32 / hz) * hz;
    if (tmp >= e.credit) {
      e.credit = cap;
      return;
    }
  } else {
    e.credit = (e.credit + delta * pow2Below(U64 / (hz * 86400n))) & U64;
    cap = e.cap;
  }
  if (e.credit > cap) e.credit = cap;
}
function bigSpend(e: BigRi, mode: number, len: bigint, hz: bigint): boolean {
  if (mode & 0x40) {
    e.cur = (e.cur + (mode & 0x20 ? len : 1n)) & U64;
    return e.prevWindow === 0n && e.cur <= e.rburst;
  }
  let cost = e.cost;
  if (mode & 0x20) {
    const full = pow2Below(U32 / hz) * hz;
    let tmp = ((len >> 4n) + 1n) * e.cost;
    if (tmp > full) tmp = full;
    if (e.credit < tmp && e.cap) {
      e.cap = (e.cap - 1n) & U64;
      e.credit = full;
    }
    cost = tmp & U32;
  }
  if (e.credit >= cost) {
    e.credit -= cost;
    return true;
  }
  return false;
}

const halves = (e: Rateinfo, mode: number) => mode & 0x40
  ? [e.prev, big(e.curHi, e.curLo), big(e.rateHi, e.rateLo), big(e.rburstHi, e.rburstLo), e.interval, e.prevWindow]
  : [e.prev, big(e.creditHi, e.creditLo), big(e.capHi, e.capLo), big(e.costHi, e.costLo)];
const bigs = (e: BigRi, mode: number) => mode & 0x40
  ? [Number(e.prev), e.cur, e.rate, e.rburst, Number(e.interval), Number(e.prevWindow)]
  : [Number(e.prev), e.credit, e.cap, e.cost];

describe('hashlimit rateinfo on u32 halves', () => {
  it('follows the BigInt formula of xt_hashlimit.c packet by packet', () => {
    const cfg = fc.record({
      mode: fc.constantFrom(0, 0x20, 0x40, 0x60),
      // packet mode: 1e-6 s per packet, from the fastest rate to 1/day; byte mode: a cost below 2^32
      avg: fc.oneof(fc.bigInt({ min: 1n, max: 86400n * SCALE }), fc.bigInt({ min: 1n, max: U32 }), fc.constantFrom(1n, 1000n, 3600n * SCALE)),
      burst: fc.oneof(fc.bigInt({ min: 1n, max: 10000n }), fc.constantFrom(1n, 5n, 1000000n)),
      interval: fc.integer({ min: 1, max: 100 }),
      hz: fc.constantFrom(100, 250, 300, 1000),
    });
    // gaps in jiffies: same jiffy, short, long, and long enough to wrap the packet-mode credit
    const steps = fc.array(fc.tuple(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 1e7 }), fc.integer({ min: 2 ** 26, max: 2 ** 40 })), fc.integer({ min: 20, max: 65535 })), { minLength: 1, maxLength: 40 });
    fc.assert(fc.property(cfg, steps, (c, seq) => {
      const ri = rateinfoInitOf({ mode: c.mode, avg: c.avg, burst: c.burst, interval: c.interval }, c.hz);
      const hz = BigInt(c.hz);
      let now = 1000;
      const e = {} as Rateinfo;
      rateinfoInit(e, ri, now);
      const b = bigInit(c.mode, c.avg, c.burst, c.interval, hz, BigInt(now));
      expect(halves(e, c.mode)).toEqual(bigs(b, c.mode));
      for (const [gap, len] of seq) {
        now += gap;
        rateinfoRecalc(e, now, c.mode, ri);
        bigRecalc(b, BigInt(now), c.mode, hz);
        expect(rateinfoSpend(e, c.mode, len, ri)).toBe(bigSpend(b, c.mode, BigInt(len), hz));
        expect(halves(e, c.mode)).toEqual(bigs(b, c.mode));
      }
    }), { numRuns: runs(400) });
  });
});
