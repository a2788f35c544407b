/**
 * mac match (libxt_mac.c, kernel xt_mac.c): no .t file in the corpus.
 * Expected save forms are what iptables-legacy / ip6tables-legacy 1.8.9
 * printed in a scratch network namespace (lower-case hex, two digits per
 * byte); FAIL lines were refused by iptables-restore, or by the kernel at
 * COMMIT outside PREROUTING/INPUT/FORWARD.
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: '4' | '6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:05:06', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac ! --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:AB:cd:03:EF:05', '-m mac --mac-source 42:ab:cd:03:ef:05', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 4:b:2:3:4:5', '-m mac --mac-source 04:0b:02:03:04:05', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42::02:03:04:05', '-m mac --mac-source 42:00:02:03:04:05', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 042:01:02:03:04:05', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:', '-m mac --mac-source 42:01:02:03:04:00', 'OK'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42-01-02-03-04-05', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:0g', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:05 --mac-source 42:01:02:03:04:06', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m mac --mac-source', '', 'FAIL'],
  ['4', 'filter', 'OUTPUT', '-m mac --mac-source 42:01:02:03:04:05', '', 'FAIL'],
  ['4', 'nat', 'PREROUTING', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'nat', 'POSTROUTING', '-m mac --mac-source 42:01:02:03:04:05', '', 'FAIL'],
  ['4', 'mangle', 'PREROUTING', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'mangle', 'INPUT', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'mangle', 'OUTPUT', '-m mac --mac-source 42:01:02:03:04:05', '', 'FAIL'],
  ['4', 'raw', 'PREROUTING', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['4', 'raw', 'OUTPUT', '-m mac --mac-source 42:01:02:03:04:05', '', 'FAIL'],
  ['6', 'filter', 'INPUT', '-m mac --mac-source 42:01:02:03:04:05', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m mac ! --mac-source aa:bb:cc:dd:ee:ff', '=', 'OK'],
  ['6', 'filter', 'OUTPUT', '-m mac --mac-source 42:01:02:03:04:05', '', 'FAIL'],
];

describe('mac', () => {
  LINES.forEach(([fam, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [ip${fam === '6' ? '6' : ''}tables ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'mac.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, fam === '6' ? 'ip6' : 'ip');
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
