/**
 * u32 match (libxt_u32.c, kernel xt_u32.c): the corpus has no libxt_u32.t.
 * Expected save forms are what iptables-legacy 1.8.9 printed for these rules
 * in a scratch network namespace (numbers in hex, no blanks, in quotes);
 * FAIL lines were refused by iptables-restore (grammar errors, more than 10
 * tests, locations or values, numbers above 2^32-1).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: 'ip' | 'ip6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0>>22&0x3C@12>>26&0x3C@0=0x50000000:0x5fffffff\"", "-m u32 --u32 \"0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x50000000:0x5fffffff\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \" 6 & 0xFF = 1 , 3:4 && 4&0x3FFF=0\"", "-m u32 --u32 \"0x6&0xff=0x1,0x3:0x4&&0x4&0x3fff=0x0\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 ! --u32 \"0=1\"", "-m u32 ! --u32 \"0x0=0x1\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&&\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0<1=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1,\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=4294967296\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=-1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=+1\"", "-m u32 --u32 \"0x0=0x1\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0x=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"1&2&3&4&5&6&7&8&9&10=1\"", "-m u32 --u32 \"0x1&0x2&0x3&0x4&0x5&0x6&0x7&0x8&0x9&0xa=0x1\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"1&2&3&4&5&6&7&8&9&10&11=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1,2,3,4,5,6,7,8,9,10\"", "-m u32 --u32 \"0x0=0x1,0x2,0x3,0x4,0x5,0x6,0x7,0x8,0x9,0xa\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1,2,3,4,5,6,7,8,9,10,11\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1\"", "-m u32 --u32 \"0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1&&0x0=0x1\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1&&0=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1 2\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1:\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=010\"", "-m u32 --u32 \"0x0=0x8\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=&&\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&2\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0>1=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0 @ 4 << 2 >> 1 = 5 : 6\"", "-m u32 --u32 \"0x0@0x4<<0x2>>0x1=0x5:0x6\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1\" --u32 \"4=2\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0x0=0x0:0xffffffff\"", "=", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0&0xFFFF=0x100:0xFFFF\"", "-m u32 --u32 \"0x0&0xffff=0x100:0xffff\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0>>22&0x3C@4>>16=0x50\"", "-m u32 --u32 \"0x0>>0x16&0x3c@0x4>>0x10=0x50\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0>>22&0x3C@12>>26&0x3C@0>>24=0x47\"", "-m u32 --u32 \"0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0>>0x18=0x47\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"6&0xFF=6&&0>>22&0x3C@12>>26&0x3C@8=0x474554\"", "-m u32 --u32 \"0x6&0xff=0x6&&0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x8=0x474554\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 ! --u32 \"3&0xFF=1:16 && 9&0xff=17\"", "-m u32 ! --u32 \"0x3&0xff=0x1:0x10&&0x9&0xff=0x11\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1\" --u32 \"4=2\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=0x\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0@@4=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0&=1\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1 : 2\"", "-m u32 --u32 \"0x0=0x1:0x2\"", "OK"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&\"", "", "FAIL"],
  ['ip', "filter", "INPUT", "-m u32 --u32 \"0=1&&=2\"", "", "FAIL"],
  ['ip6', "filter", "INPUT", "-m u32 --u32 \"6&0xff=17\"", "-m u32 --u32 \"0x6&0xff=0x11\"", "OK"],
  ['ip6', "filter", "INPUT", "-m u32 ! --u32 \"0>>28=6\"", "-m u32 ! --u32 \"0x0>>0x1c=0x6\"", "OK"],
];

describe('u32', () => {
  LINES.forEach(([family, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${family} ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'u32.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, family);
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
