/**
 * iprange match (libxt_iprange.c revision 1, kernel xt_iprange.c): no .t
 * file in the corpus. Expected save forms are what iptables-legacy /
 * ip6tables-legacy 1.8.9 printed for these rules in a scratch network
 * namespace; FAIL lines were refused by iptables-restore. A single address
 * is saved as the range a-a; a reversed range loads (with a warning);
 * IPv4 bytes take any C base (010 is 8) and missing trailing bytes are 0.
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: '4' | '6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange ! --src-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --dst-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange ! --dst-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1', '-m iprange --src-range 1.1.1.1-1.1.1.1', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --dst-range 1.1.1.1', '-m iprange --dst-range 1.1.1.1-1.1.1.1', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --dst-range 1.1.1.1-1.1.1.2 ! --src-range 2.2.2.2-2.2.2.3', '-m iprange ! --src-range 2.2.2.2-2.2.2.3 --dst-range 1.1.1.1-1.1.1.2', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 10.0.0.0-10.255.255.255 --dst-range 192.168.0.1-192.168.0.254', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.10-1.1.1.1', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 010.1.1.1-0x0a.1.1.2', '-m iprange --src-range 8.1.1.1-10.1.1.2', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 10.1-10.2', '-m iprange --src-range 10.1.0.0-10.2.0.0', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 0.0.0.0-255.255.255.255', '=', 'OK'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1-', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range -1.1.1.1', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1-1.1.1.2-1.1.1.3', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1-1.1.1.2 --src-range 1.1.1.1-1.1.1.3', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 256.1.1.1', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1.1', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range 1.1.1.1/24', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range localhost', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range ::1', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src-range', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange --src 1.1.1.1-1.1.1.2', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m iprange ! --dst-range 1.1.1.1-1.1.1.2 ! --src-range 3.3.3.3-3.3.3.4', '-m iprange ! --src-range 3.3.3.3-3.3.3.4 ! --dst-range 1.1.1.1-1.1.1.2', 'OK'],
  ['4', 'nat', 'PREROUTING', '-m iprange --src-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['4', 'mangle', 'POSTROUTING', '-m iprange --dst-range 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range ::1-::2', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange ! --dst-range 2001:db8::1-2001:db8::ff:1', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range 2001:db8:0:0:0:0:0:1-2001:db8::2', '-m iprange --src-range 2001:db8::1-2001:db8::2', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range 2001:DB8::A', '-m iprange --src-range 2001:db8::a-2001:db8::a', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range ::ffff:1.2.3.4-::ffff:1.2.3.5', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range ::2-::1', '=', 'OK'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range 1.2.3.4', '', 'FAIL'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range 2001:db8::/64', '', 'FAIL'],
  ['6', 'filter', 'INPUT', '-m iprange --src-range 2001:db8:::1', '', 'FAIL'],
  ['6', 'filter', 'INPUT', '-m iprange', '', 'FAIL'],
];

describe('iprange', () => {
  LINES.forEach(([fam, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [ip${fam === '6' ? '6' : ''}tables ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'iprange.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, fam === '6' ? 'ip6' : 'ip');
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
