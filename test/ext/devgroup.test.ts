/**
 * devgroup match (libxt_devgroup.c, kernel xt_devgroup.c): no .t file in the
 * corpus. Expected save forms are what iptables-legacy / ip6tables-legacy
 * 1.8.9 printed in a scratch network namespace whose /etc/iproute2/group is
 * iproute2's default (`0 default`, so group 0 saves as `default`); FAIL lines
 * were refused by iptables-restore, or by the kernel at COMMIT
 * (--src-group only from PREROUTING/INPUT/FORWARD, --dst-group only from
 * FORWARD/OUTPUT/POSTROUTING).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [family: '4' | '6', table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 0x2', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 2', '-m devgroup --src-group 0x2', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup ! --src-group 0x2', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --dst-group 0xc/0xc', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup ! --dst-group 0xc/0xc', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup ! --src-group 0x2 --dst-group 0xc/0xc', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --dst-group 23 --src-group 5', '-m devgroup --src-group 0x5 --dst-group 0x17', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 0', '-m devgroup --src-group default', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group default', '=', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 0/0xffffffff', '-m devgroup --src-group default', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 0/0xff', '-m devgroup --src-group 0x0/0xff', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 4294967295', '-m devgroup --src-group 0xffffffff', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 4294967296', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 010', '-m devgroup --src-group 0x8', 'OK'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 1/2/3', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 5x', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 5/x', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group -1', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group foo', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup --src-group 1 --src-group 2', '', 'FAIL'],
  ['4', 'filter', 'FORWARD', '-m devgroup', '', 'FAIL'],
  ['4', 'filter', 'INPUT', '-m devgroup --src-group 1', '-m devgroup --src-group 0x1', 'OK'],
  ['4', 'filter', 'INPUT', '-m devgroup --dst-group 1', '', 'FAIL'],
  ['4', 'filter', 'OUTPUT', '-m devgroup --src-group 1', '', 'FAIL'],
  ['4', 'filter', 'OUTPUT', '-m devgroup --dst-group 1', '-m devgroup --dst-group 0x1', 'OK'],
  ['4', 'mangle', 'PREROUTING', '-m devgroup --src-group 1', '-m devgroup --src-group 0x1', 'OK'],
  ['4', 'mangle', 'PREROUTING', '-m devgroup --dst-group 1', '', 'FAIL'],
  ['4', 'mangle', 'POSTROUTING', '-m devgroup --dst-group 1', '-m devgroup --dst-group 0x1', 'OK'],
  ['4', 'mangle', 'POSTROUTING', '-m devgroup --src-group 1', '', 'FAIL'],
  ['4', 'nat', 'PREROUTING', '-p tcp --dport 46000 -m devgroup --src-group 23', '-p tcp -m tcp --dport 46000 -m devgroup --src-group 0x17', 'OK'],
  ['6', 'filter', 'FORWARD', '-m devgroup --src-group 0x2 --dst-group 3', '-m devgroup --src-group 0x2 --dst-group 0x3', 'OK'],
  ['6', 'filter', 'INPUT', '-m devgroup --dst-group 3', '', 'FAIL'],
];

describe('devgroup', () => {
  LINES.forEach(([fam, table, chain, rule, expected, result], i) => {
    it(`${i + 1} [ip${fam === '6' ? '6' : ''}tables ${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'devgroup.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, fam === '6' ? 'ip6' : 'ip');
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
