/**
 * IPv4 SNAT target (libxt_NAT.c, kernel xt_nat.c SNAT revision 0): the corpus
 * has only libip6t_SNAT.t. Expected save forms are what iptables-legacy 1.8.9
 * printed for these rules in a scratch network namespace; FAIL lines were
 * refused by iptables-restore (option errors) or by the kernel at COMMIT
 * (nat table only, POSTROUTING/INPUT only).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const P = 'POSTROUTING';
const LINES: Line[] = [
  ['nat', P, '-j SNAT --to-source 1.1.1.1', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1-1.1.1.10', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1:1025-65535', '', 'FAIL'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --to-source 2.2.2.2', '', 'FAIL'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random-fully', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --persistent', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random --persistent', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random --random-fully', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random --random-fully --persistent', '=', 'OK'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 --random-fully --random --persistent', '-j SNAT --to-source 1.1.1.1 --random --random-fully --persistent', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1:1025-65535', '=', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1-1.1.1.10:1025-65535', '=', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1-1.1.1.10:1025-65536', '', 'FAIL'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1-1.1.1.10:1025-65535 --to-source 2.2.2.2-2.2.2.20:1025-65535', '', 'FAIL'],
  ['nat', P, '-j SNAT', '', 'FAIL'],
  ['nat', P, '-p udp -j SNAT --to-source 1.1.1.1:ssh', '-p udp -j SNAT --to-source 1.1.1.1:22', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1:echo-ssh', '', 'FAIL'],
  ['nat', P, '-p sctp -j SNAT --to-source 1.1.1.1:100', '=', 'OK'],
  ['nat', P, '-p dccp -j SNAT --to-source 1.1.1.1:100-200', '=', 'OK'],
  // revision 0 (nf_nat_ipv4_multi_range_compat) has no room for the base port of a shifted range
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1:100-200/5', '-p tcp -j SNAT --to-source 1.1.1.1:100-200/0', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source :1000', '=', 'OK'],
  ['nat', P, '-p tcp -j SNAT --to-source 1.1.1.1:1000:2000', '', 'FAIL'],
  ['nat', P, '-j SNAT --to-source [1.1.1.1]', '', 'FAIL'],
  ['nat', P, '-j SNAT --to-source 1.1.1.256', '', 'FAIL'],
  ['nat', P, '-j SNAT --to 1.2.3.4', '-j SNAT --to-source 1.2.3.4', 'OK'],
  // `--ran` is ambiguous between --random and --random-fully
  ['nat', P, '-j SNAT --to 1.2.3.4 --ran', '', 'FAIL'],
  ['nat', P, '-j SNAT --to-source 1.1.1.1 -p tcp', '-p tcp -j SNAT --to-source 1.1.1.1', 'OK'],
  // the port check looks at the protocol given so far
  ['nat', P, '-j SNAT --to-source 1.1.1.1:80 -p tcp', '', 'FAIL'],
  ['nat', P, '-j SNAT ! --to-source 1.1.1.1', '', 'FAIL'],
  // kernel: nat table only, hooks POSTROUTING and INPUT only
  ['nat', 'INPUT', '-j SNAT --to-source 1.1.1.1', '=', 'OK'],
  ['nat', 'OUTPUT', '-j SNAT --to-source 1.1.1.1', '', 'FAIL'],
  ['nat', 'PREROUTING', '-j SNAT --to-source 1.1.1.1', '', 'FAIL'],
  ['filter', 'INPUT', '-j SNAT --to-source 1.1.1.1', '', 'FAIL'],
  ['nat', 'foo', '-j SNAT --to-source 1.1.1.1', '=', 'OK'],
];

describe('SNAT (IPv4)', () => {
  LINES.forEach(([table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'SNAT.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, 'ip');
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
