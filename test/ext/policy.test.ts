/**
 * IPv4 policy match (libxt_policy.c, kernel xt_policy.c): the corpus only has
 * libip6t_policy.t. Expected save forms are what iptables-legacy 1.8.9
 * printed for these rules in a scratch network namespace; FAIL lines were
 * refused by iptables-restore (option errors) or by the kernel at COMMIT
 * (hook restrictions of --dir).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type TCase } from '../helpers/tfile.js';

type Line = [table: string, chain: string, rule: string, expected: string, result: 'OK' | 'FAIL'];

const LINES: Line[] = [
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec', '=', 'OK'],
  ['filter', 'INPUT', '-m policy --dir in --pol none', '=', 'OK'],
  ['filter', 'INPUT', '-m policy --dir in', '-m policy --dir in --pol ipsec', 'OK'],
  [
    'filter', 'INPUT',
    '-m policy --dir in --pol ipsec --strict --reqid 1 --spi 0x1 --proto esp --mode tunnel --tunnel-dst 10.0.0.0/8 --tunnel-src 192.168.1.1 --next --reqid 2',
    '=', 'OK',
  ],
  [
    'filter', 'INPUT',
    '-m policy --dir in --pol ipsec ! --reqid 5 ! --spi 10 ! --proto ah ! --mode transport ! --tunnel-src 1.2.3.4/24',
    '-m policy --dir in --pol ipsec ! --reqid 5 ! --spi 0xa ! --proto ah ! --mode transport ! --tunnel-src 1.2.3.4/24',
    'OK',
  ],
  [
    'filter', 'INPUT',
    '-m policy --dir in --pol ipsec --strict --mode tunnel --tunnel-src 1.2.3.4/16 --tunnel-dst 5.6.7.8/32',
    '-m policy --dir in --pol ipsec --strict --mode tunnel --tunnel-dst 5.6.7.8 --tunnel-src 1.2.3.4/16',
    'OK',
  ],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --proto 108', '-m policy --dir in --pol ipsec --proto ipcomp', 'OK'],
  ['filter', 'INPUT', '-m policy --dir in --pol none --reqid 1', '-m policy --dir in --pol none', 'OK'],
  [
    'filter', 'INPUT',
    '-m policy --dir in --pol ipsec --strict --reqid 1 --next --reqid 2 --next --reqid 3 --next --reqid 4',
    '=', 'OK',
  ],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --strict --reqid 1 --next --reqid 2 --next --reqid 3 --next --reqid 4 --next --reqid 5', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --tunnel-src 1.2.3.4', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --next --reqid 2', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --strict', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --strict --reqid 1 --next', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --pol ipsec', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol none --strict', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --proto tcp', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --reqid 1 --reqid 2', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --dir out --pol ipsec', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir IN --pol ipsec', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --mode TUNNEL', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec --spi 4294967296', '', 'FAIL'],
  ['filter', 'INPUT', '-m policy --dir in --pol ipsec ! --strict', '', 'FAIL'],
  // kernel: an output policy is refused from PREROUTING/INPUT, an input policy from OUTPUT/POSTROUTING
  ['filter', 'INPUT', '-m policy --dir out --pol ipsec', '', 'FAIL'],
  ['mangle', 'PREROUTING', '-m policy --dir out --pol ipsec', '', 'FAIL'],
  ['filter', 'OUTPUT', '-m policy --dir in --pol ipsec', '', 'FAIL'],
  ['nat', 'POSTROUTING', '-m policy --dir in --pol ipsec', '', 'FAIL'],
  ['filter', 'OUTPUT', '-m policy --dir out --pol none', '=', 'OK'],
  ['nat', 'POSTROUTING', '-m policy --dir out --pol ipsec', '=', 'OK'],
  ['filter', 'FORWARD', '-m policy --dir in --pol ipsec', '=', 'OK'],
  ['filter', 'FORWARD', '-m policy --dir out --pol none', '=', 'OK'],
];

describe('policy (IPv4)', () => {
  LINES.forEach(([table, chain, rule, expected, result], i) => {
    it(`${i + 1} [${table}/${chain}] ${result}: ${rule}`, () => {
      const c: TCase = { file: 'policy.test.ts', line: i + 1, table, chain, rule, expected: expected === '=' ? rule : expected, result };
      const o = runCase(c, 'ip');
      expect(o.ok, o.detail).toBe(true);
    });
  });
});
